import type { SandboxProvider } from '../../engine/providers.js';
import type { ChannelAdapter, ProviderKind } from '../types.js';
import { metaWhatsappAdapter } from './meta-whatsapp.js';
import { resendAdapter } from './resend.js';
import { sandboxAdapter } from './sandbox.js';
import { sendgridAdapter } from './sendgrid.js';
import { smtpAdapter } from './smtp.js';
import { twilioSmsAdapter } from './twilio-sms.js';
import { twilioVoiceAdapter } from './twilio-voice.js';
import { twilioWhatsappAdapter } from './twilio-whatsapp.js';
import { vapiAdapter } from './vapi.js';
import { vonageSmsAdapter } from './vonage-sms.js';
import { webhookAdapter } from './webhook.js';

/** Every provider Rapport speaks, by kind: what an account's `kind` may name. */
export function builtInAdapters(sandbox: SandboxProvider): ReadonlyMap<ProviderKind, ChannelAdapter> {
  const list = [
    sandboxAdapter(sandbox),
    twilioSmsAdapter,
    vonageSmsAdapter,
    metaWhatsappAdapter,
    twilioWhatsappAdapter,
    smtpAdapter,
    sendgridAdapter,
    resendAdapter,
    twilioVoiceAdapter,
    vapiAdapter,
    webhookAdapter,
  ];
  return new Map(list.map((a) => [a.kind, a]));
}
