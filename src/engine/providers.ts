import { randomUUID } from 'node:crypto';
import type { OutgoingMessage, SendResult } from '../channels/types.js';

export type { OutgoingMessage, SendResult } from '../channels/types.js';

/** Where a message went and what the provider answered. */
export interface Delivery {
  result: SendResult;
  /** The provider kind ('sandbox', 'twilio', ...). */
  provider: string;
  /** The tenant's provider account; null for the built-in sandbox. */
  account_id: string | null;
}

/** Hands a message to the provider configured for its tenant and channel. */
export interface ProviderRegistry {
  send(msg: OutgoingMessage): Promise<Delivery>;
}

export interface SandboxSend {
  message: OutgoingMessage;
  provider_message_id: string;
  repeat: boolean;
}

/**
 * Records what would have been sent instead of sending it. A call repeated with an idempotency
 * key it has seen (a worker died after the call and before recording it) answers with the first
 * provider id and is counted, so the rare repeat the delivery guarantee allows is measured.
 */
export class SandboxProvider {
  readonly name = 'sandbox';
  readonly sent: SandboxSend[] = [];
  repeats = 0;
  private readonly seen = new Map<string, string>();
  constructor(private readonly opts: { keep?: number; onSend?: (s: SandboxSend) => void } = {}) {}

  send(msg: OutgoingMessage): Promise<SendResult> {
    const known = this.seen.get(msg.idempotency_key);
    const id = known ?? `sbx_${randomUUID()}`;
    if (known) this.repeats++;
    else {
      this.seen.set(msg.idempotency_key, id);
      // Bounded: a long-running process must not keep every key it ever saw.
      if (this.seen.size > 200_000) this.seen.delete(this.seen.keys().next().value!);
    }
    const record = { message: msg, provider_message_id: id, repeat: known !== undefined };
    if ((this.opts.keep ?? 10_000) > 0) {
      this.sent.push(record);
      if (this.sent.length > (this.opts.keep ?? 10_000)) this.sent.shift();
    }
    this.opts.onSend?.(record);
    return Promise.resolve({ ok: true, provider_message_id: id });
  }
}

/** Every channel of every tenant goes to one sandbox: the default until providers are configured. */
export function sandboxRegistry(sandbox = new SandboxProvider()): ProviderRegistry & { sandbox: SandboxProvider } {
  return { sandbox, send: async (msg) => ({ result: await sandbox.send(msg), provider: sandbox.name, account_id: null }) };
}
