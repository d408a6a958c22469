import type { SendChannel } from '../core/journey/definition.js';
import type { ReceiptStatus } from '../store/message-status.js';
import type { HttpRequester } from './http-client.js';

/**
 * The contract between Rapport and a provider. One adapter per provider, in its own file under
 * src/channels/adapters/; each declares the channels it serves, sends one rendered message, and,
 * when the provider calls back, verifies and parses its webhooks into InboundItems. Adapters hold
 * no state and touch no database: accounts (with decrypted credentials) are handed in, results
 * handed back, and everything durable is the dispatcher's and the inbound pipeline's business.
 */

export const PROVIDER_KINDS = [
  'sandbox',
  'twilio',
  'vonage',
  'meta_whatsapp',
  'twilio_whatsapp',
  'smtp',
  'sendgrid',
  'resend',
  'twilio_voice',
  'vapi',
  'webhook',
] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** A tenant's configured provider account, credentials already decrypted. */
export interface ProviderAccount {
  id: string;
  tenant_id: string;
  name: string;
  kind: ProviderKind;
  channel: SendChannel;
  /** Lower goes first; the next one for the channel takes over when this one fails. */
  priority: number;
  /** Secrets: auth tokens, API keys, signing secrets. Encrypted at rest. */
  credentials: Record<string, string>;
  /**
   * Everything else: sender numbers and addresses, WhatsApp phone_number_id, a `base_url`
   * replacing the provider's API root (tests point it at a local fake), throughput limits.
   */
  config: Record<string, unknown>;
}

/** A field-level problem with an account's credentials or config, for a 400 naming it. */
export interface AccountProblem {
  field: string;
  message: string;
}

/** A rendered, addressed message as an adapter receives it. */
export interface OutgoingMessage {
  id: string;
  tenant_id: string;
  channel: SendChannel;
  /** E.164 phone number, e-mail address, or URL (webhook channel). */
  to: string | null;
  /** enrollment:node:step; stable across retries of the same message. */
  idempotency_key: string;
  subject?: string;
  /** Plain text: the SMS, the WhatsApp session text, the e-mail text part, the voice script. */
  body?: string;
  /** E-mail HTML part. */
  html?: string;
  /** An approved WhatsApp template with its body parameters, filled by Liquid. */
  whatsapp_template?: { name: string; language: string; parameters: string[]; buttons?: TemplateButtonParam[] };
  /** Webhook channel: where to POST. */
  url?: string;
  /** The send node's options: buttons, media, voice settings, headers. See each adapter. */
  options?: Record<string, unknown>;
  /** Contact details some providers need: the voice language, a display name. */
  contact?: { name: string | null; locale: string | null };
  /** E-mail headers to add (List-Unsubscribe...). */
  headers?: Record<string, string>;
  /** The account to try first: a reply goes out from the number the contact wrote to. */
  via_account?: string;
}

/** A dynamic parameter of a template button: the URL suffix, or a quick reply's payload. */
export interface TemplateButtonParam {
  index: number;
  sub_type: 'quick_reply' | 'url';
  parameter: string;
}

/**
 * Why a send failed, as far as the dispatcher needs to know:
 * - `rate_limited`: the provider said slow down (HTTP 429, WhatsApp 130429, Twilio 20429); wait
 *   `retry_after_ms` and try again without counting an attempt;
 * - `invalid_recipient`: the address can never receive (not a mobile number, not on WhatsApp,
 *   no such mailbox); the step is skipped and the journey goes on;
 * - `unsubscribed` / `blocked`: the recipient or carrier refuses; stop, record, and suppress;
 * - `auth` / `config`: our side is wrong (bad credentials, unknown sender); try the next
 *   provider, the message is not at fault;
 * - `timeout` / `server` / `network`: temporary; retry with backoff, fail over.
 * - `rejected`: the provider refused this message for good (content, template not approved);
 * - `unavailable`: no provider was asked (every account's circuit is open); try later without
 *   counting an attempt.
 */
export type FailureCode = 'rate_limited' | 'invalid_recipient' | 'unsubscribed' | 'blocked' | 'auth' | 'config' | 'timeout' | 'server' | 'network' | 'rejected' | 'unavailable';

export type SendResult =
  | { ok: true; provider_message_id: string; cost?: number; currency?: string; status?: 'sent' | 'delivered' }
  | { ok: false; permanent: boolean; error: string; code?: FailureCode; provider_code?: string; retry_after_ms?: number };

export interface SendContext {
  account: ProviderAccount;
  /** The HTTP client for what `request` cannot carry, and for tests that bring their own. */
  fetch: typeof fetch;
  /** The keep-alive client provider calls use when set (see http-client.ts). */
  request?: HttpRequester;
  /** Rapport's public base URL (no trailing slash), for status-callback URLs; null when unknown. */
  publicUrl: string | null;
  /** How long a provider call may take before it counts as a timeout. */
  timeoutMs: number;
}

/** An HTTP request a provider made to Rapport, as the inbound routes hand it to an adapter. */
export interface InboundRequest {
  method: 'GET' | 'POST';
  /** The full URL the provider called, as it computed it (public scheme, host, path and query). */
  url: string;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
  /** The exact bytes received: signatures are computed over them. */
  rawBody: Buffer;
  query: Record<string, string>;
  /** The body parsed as application/x-www-form-urlencoded (Twilio, Vonage), when it is one. */
  form?: Record<string, string>;
  /** The body parsed as JSON, when it is one. */
  json?: unknown;
  /** When Rapport received it. */
  receivedAt: Date;
}

/** What a provider's webhook tells Rapport. */
export type InboundItem = InboundMessage | InboundStatus;

export interface InboundMessage {
  type: 'message';
  channel: SendChannel;
  /** The sender's address: E.164 number (without `whatsapp:`), or e-mail address. */
  from: string;
  /** The address that received it: one of the tenant's sender numbers or addresses. */
  to: string;
  text: string | null;
  /** A button or list reply's payload / id; IVR digits for a voice gather. */
  payload: string | null;
  provider_message_id: string;
  at: Date;
  /** The sender's profile name, when the provider gives one (WhatsApp). */
  profile_name?: string;
  media?: { url: string; content_type?: string }[];
  /** The provider id of the message this one answers, when the provider says (WhatsApp context). */
  in_reply_to?: string;
}

export interface InboundStatus {
  type: 'status';
  provider_message_id: string;
  status: 'sent' | ReceiptStatus;
  at: Date;
  error?: string;
  provider_code?: string;
  /** A failure that means the address is dead or refuses mail (hard bounce, complaint, unsubscribe). */
  suppress?: 'bounce' | 'complaint' | 'unsubscribe';
  cost?: number;
  currency?: string;
  /** Anything worth keeping on the timeline: a call's duration and transcript, a clicked URL. */
  detail?: Record<string, unknown>;
}

/** What to answer the provider; most want 200 with an empty body, Twilio voice wants TwiML. */
export interface InboundResponse {
  status: number;
  contentType?: string;
  body?: string;
}

/**
 * The keys by which an inbound request finds its account before anything in it is trusted:
 * the receiving number (Twilio, Vonage), the WhatsApp phone_number_id (Meta), or the account id
 * in the URL (SendGrid, Resend, Vapi, whose webhook URL is per account).
 */
export interface RouteKeys {
  account_id?: string;
  /** A sender address as stored in the account's config (E.164 or e-mail). */
  address?: string;
  /** A provider-side id stored in the account's config, e.g. Meta's phone_number_id. */
  external_id?: string;
}

export interface InboundAdapter {
  /** Where the request says it belongs. May read the body; nothing read here is trusted yet. */
  route(req: InboundRequest): RouteKeys | null;
  /** True only when the request is provably from the provider for this account. */
  verify(req: InboundRequest, account: ProviderAccount): boolean;
  parse(req: InboundRequest, account: ProviderAccount): InboundItem[];
  /** A GET handshake (Meta's hub.challenge); absent when the provider has none. */
  handshake?(req: InboundRequest, account: ProviderAccount): InboundResponse | null;
  /** The answer to a verified, processed request; default 200 with an empty body. */
  respond?(req: InboundRequest, account: ProviderAccount, items: InboundItem[]): InboundResponse;
}

export interface ChannelAdapter {
  readonly kind: ProviderKind;
  readonly channels: readonly SendChannel[];
  /** Problems with an account's credentials and config, checked when it is saved. */
  check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[];
  send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult>;
  /** The webhook side; absent for providers that never call back (plain SMTP). */
  readonly inbound?: InboundAdapter;
  /**
   * The adapter's default throughput per sender, in messages per second (1 for a US long code,
   * 80 for a WhatsApp number); an account's config `rate_per_second` overrides it.
   */
  readonly defaultRatePerSecond?: number;
}
