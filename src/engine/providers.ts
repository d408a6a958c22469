import { randomUUID } from 'node:crypto';
import type { SendChannel } from '../core/journey/definition.js';

/** A message rendered and addressed, as a provider adapter receives it. */
export interface OutgoingMessage {
  id: string;
  tenant_id: string;
  channel: SendChannel;
  to: string | null;
  idempotency_key: string;
  subject?: string;
  body?: string;
  html?: string;
  whatsapp_template?: { name: string; language: string; parameters: string[] };
  url?: string;
  options?: Record<string, unknown>;
}

export type SendResult =
  | { ok: true; provider_message_id: string; cost?: number; currency?: string }
  | { ok: false; permanent: boolean; error: string; retry_after_ms?: number };

export interface Provider {
  readonly name: string;
  send(msg: OutgoingMessage): Promise<SendResult>;
}

/** Chooses the provider for a tenant's channel. Real adapters plug in here; sandbox is the default. */
export interface ProviderRegistry {
  providerFor(tenantId: string, channel: SendChannel): Provider;
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
export class SandboxProvider implements Provider {
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
  return { sandbox, providerFor: () => sandbox };
}
