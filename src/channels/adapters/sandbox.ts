import type { ChannelAdapter, SendResult } from '../types.js';
import type { SandboxProvider } from '../../engine/providers.js';

/**
 * The sandbox as a provider kind: a tenant may configure it explicitly (to keep one channel in
 * test mode while others go out for real), and it is what a channel with no account uses.
 */
export function sandboxAdapter(sandbox: SandboxProvider): ChannelAdapter {
  return {
    kind: 'sandbox',
    channels: ['sms', 'email', 'whatsapp', 'voice', 'webhook'],
    check: () => [],
    send: (msg): Promise<SendResult> => sandbox.send(msg),
  };
}
