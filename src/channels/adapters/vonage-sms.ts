import { createHash, createHmac } from 'node:crypto';
import { accountIdFromPath, apiBase, basicAuth, bodyJson, callProvider, failure, failureFromStatus, isCallFailure, isHttpUrl, retryAfterMs, safeEqual, type CallFailure, type ProviderResponse } from '../http.js';
import type {
  AccountProblem,
  ChannelAdapter,
  InboundItem,
  InboundMessage,
  InboundRequest,
  InboundStatus,
  OutgoingMessage,
  ProviderAccount,
  RouteKeys,
  SendContext,
  SendResult,
} from '../types.js';

/**
 * SMS through the Vonage Messages API v1, authenticated with the account's API key and secret
 * (Basic auth, the "account-level settings" flavour of the Messages API: no Vonage application).
 *
 * Each message names its own status URL (`webhook_url`, the per-account Rapport URL) when
 * Rapport's public URL is known, so receipts find their account even from an alphanumeric sender;
 * inbound SMS arrive at the account-level inbound URL set in the Vonage dashboard.
 *
 * Every Messages API webhook carries `Authorization: Bearer <JWT>`, HS256-signed with the
 * account's signature secret; its `payload_hash` claim is the SHA-256 of the body and `iat` when
 * it was signed. A request passes when all three hold: signature, body hash, and an `iat` within
 * five minutes of its arrival (a captured webhook cannot be replayed later).
 */

const API_ROOT = 'https://api.nexmo.com';
const KIND = 'vonage';
const CLIENT_REF_MAX = 100;
// Vonage's limit for the text of an SMS sent through the Messages API.
const TEXT_MAX = 1000;
const MAX_TOKEN_AGE_MS = 5 * 60_000;

export const vonageSmsAdapter: ChannelAdapter = {
  kind: KIND,
  channels: ['sms'],
  // Vonage's default API throughput per account; US long codes under 10DLC need rate_per_second lower.
  defaultRatePerSecond: 30,
  check,
  send,
  inbound: { route, verify, parse },
};

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (!nonEmpty(credentials.api_key)) problems.push({ field: 'credentials.api_key', message: 'required: the Vonage API key' });
  if (!nonEmpty(credentials.api_secret)) problems.push({ field: 'credentials.api_secret', message: 'required: the Vonage API secret' });
  if (!nonEmpty(credentials.signature_secret)) problems.push({ field: 'credentials.signature_secret', message: 'required: the signature secret of the API key (Dashboard, API Settings), which signs webhooks' });
  if (!isSender(config.from)) problems.push({ field: 'config.from', message: 'required: the sender, an E.164 number such as +447700900001 or an alphanumeric sender ID of up to 11 characters' });
  if (config.base_url !== undefined && !isHttpUrl(config.base_url)) problems.push({ field: 'config.base_url', message: 'must be an http(s) URL' });
  if (config.rate_per_second !== undefined && !(typeof config.rate_per_second === 'number' && config.rate_per_second > 0)) problems.push({ field: 'config.rate_per_second', message: 'must be a positive number' });
  return problems;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { account } = ctx;
  const { api_key: key, api_secret: secret } = account.credentials;
  if (!nonEmpty(key) || !nonEmpty(secret)) return failure('auth', 'the account has no api_key / api_secret');
  if (!isSender(account.config.from)) return failure('config', 'the account has no valid sender in config.from');
  const to = digits(msg.to);
  if (!to) return failure('invalid_recipient', `not a phone number: ${JSON.stringify(msg.to)}`);
  const text = msg.body ?? '';
  if (!text.trim()) return failure('rejected', 'an SMS needs a body');
  if ([...text].length > TEXT_MAX) return failure('rejected', `Vonage accepts at most ${TEXT_MAX} characters of SMS text (this one has ${[...text].length})`);

  const body: Record<string, unknown> = {
    message_type: 'text',
    channel: 'sms',
    to,
    from: sender(account.config.from as string),
    text,
    // Echoed in every status webhook; Vonage does not deduplicate on it.
    client_ref: msg.id.slice(0, CLIENT_REF_MAX),
  };
  if (ctx.publicUrl) {
    body.webhook_url = `${ctx.publicUrl}/webhooks/${KIND}/${encodeURIComponent(account.id)}`;
    body.webhook_version = 'v1';
  }

  const res = await callProvider(ctx, `${apiBase(account.config, API_ROOT)}/v1/messages`, {
    method: 'POST',
    headers: { authorization: basicAuth(key, secret), 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (isCallFailure(res)) return res;
  if (res.status >= 200 && res.status < 300) {
    const id = (res.json as { message_uuid?: unknown } | undefined)?.message_uuid;
    if (typeof id === 'string' && id) return { ok: true, provider_message_id: id };
    return failure('server', `HTTP ${res.status} without a message_uuid: ${res.text.slice(0, 200)}`);
  }
  return vonageFailure(res);
}

/** RFC 7807 problem body of the Messages API. */
interface Problem {
  type?: string;
  title?: string;
  detail?: string;
  instance?: string;
  invalid_parameters?: { name?: string; reason?: string }[];
}

/** The Messages API error code: the fragment of the problem type (`…/api-errors/messages#1150`). */
function problemCode(p: { type?: string }): string | undefined {
  const fragment = p.type?.split('#')[1];
  return fragment || undefined;
}

function vonageFailure(res: ProviderResponse): CallFailure {
  const p = (res.json ?? {}) as Problem;
  const code = problemCode(p);
  const invalid = Array.isArray(p.invalid_parameters) ? p.invalid_parameters : [];
  const text = [p.title, p.detail, ...invalid.map((i) => `${i.name}: ${i.reason}`)].filter(Boolean).join(' - ') || res.text.slice(0, 300) || 'no body';
  const opts = { provider_code: code ?? String(res.status) };
  if (res.status === 429 || code === '1000' || code === 'throttled') return failure('rate_limited', text, { ...opts, retry_after_ms: retryAfterMs(res.headers) ?? 1000 });
  if (res.status === 401 || res.status === 403) return failure('auth', text, opts);
  switch (code) {
    case 'low-balance': // HTTP 402: the account, not the message; another provider can send it
    case '1060': // account barred
    case '1070': // pre-paid credit exhausted
    case '1080': // account not enabled for REST
    case '1120': // sender ID refused by local regulations
      return failure('config', text, opts);
    case '1040': // unrecognised number prefix
      return failure('invalid_recipient', text, opts);
    case '1050': // number barred from receiving messages
      return failure('blocked', text, opts);
    case '1030': // platform error
    case '1100': // communication failure
      return failure('server', text, opts);
  }
  if (res.status === 402) return failure('config', text, opts);
  if (invalid.some((i) => i.name === 'to')) return failure('invalid_recipient', text, opts);
  return failureFromStatus(res, text, opts.provider_code);
}

// ---- Inbound ----

/** A Messages API webhook: an inbound SMS, or a status (which has `status`). */
interface Webhook {
  channel?: string;
  message_uuid?: string;
  to?: string;
  from?: string;
  timestamp?: string;
  text?: string;
  message_type?: string;
  client_ref?: string;
  status?: string;
  error?: { type?: string; title?: string | number; detail?: string; instance?: string };
  usage?: { price?: string | number; currency?: string };
  sms?: Record<string, unknown>;
  destination?: { network_code?: string };
  origin?: { network_code?: string };
}

/**
 * Inbound SMS route by the number they were sent to, statuses by the number they were sent from;
 * an alphanumeric sender has no number, and its statuses come to the per-account URL instead.
 */
function route(req: InboundRequest): RouteKeys | null {
  const w = webhook(req);
  const number = w ? (w.status !== undefined ? w.from : w.to) : undefined;
  if (number && /^\+?\d{5,15}$/.test(number)) return { address: `+${number.replace(/^\+/, '')}` };
  const accountId = accountIdFromPath(req.url, KIND);
  return accountId ? { account_id: accountId } : null;
}


function verify(req: InboundRequest, account: ProviderAccount): boolean {
  const secret = account.credentials.signature_secret;
  const auth = req.headers.authorization;
  if (!nonEmpty(secret) || !auth) return false;
  const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
  if (!m) return false;
  const claims = verifyHs256(m[1]!, secret);
  if (!claims) return false;
  // The body is what was signed: its SHA-256 must be the one in the token.
  const hash = typeof claims.payload_hash === 'string' ? claims.payload_hash.toLowerCase() : '';
  if (!safeEqual(hash, createHash('sha256').update(req.rawBody).digest('hex'))) return false;
  if (typeof claims.iat !== 'number') return false;
  const age = req.receivedAt.getTime() - claims.iat * 1000;
  if (Math.abs(age) > MAX_TOKEN_AGE_MS) return false;
  if (typeof claims.exp === 'number' && claims.exp * 1000 < req.receivedAt.getTime()) return false;
  // The token names the API key whose secret signed it; another key's webhook is not this account's.
  if (typeof claims.api_key === 'string' && nonEmpty(account.credentials.api_key) && claims.api_key !== account.credentials.api_key) return false;
  return true;
}

/**
 * The claims of a compact JWS signed with HMAC-SHA256 under `secret`, or null when it is not one:
 * any other `alg` (none, RS256...) is refused rather than trusted.
 */
export function verifyHs256(token: string, secret: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [head, payload, signature] = parts as [string, string, string];
  const header = decodeSegment(head);
  if (!header || header.alg !== 'HS256') return null;
  const expected = createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  if (!safeEqual(signature.replace(/=+$/, ''), expected)) return null;
  return decodeSegment(payload);
}

function decodeSegment(segment: string): Record<string, unknown> | null {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(segment)) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function parse(req: InboundRequest, _account: ProviderAccount): InboundItem[] {
  const w = webhook(req);
  if (!w || !w.message_uuid) return [];
  if (w.channel !== undefined && w.channel !== 'sms') return [];
  const at = w.timestamp ? new Date(w.timestamp) : req.receivedAt;
  const when = Number.isNaN(at.getTime()) ? req.receivedAt : at;
  return [w.status !== undefined ? parseStatus(w, when) : parseMessage(w, when)].filter((x): x is InboundItem => x !== null);
}

function parseMessage(w: Webhook, at: Date): InboundMessage | null {
  if (!w.from || !w.to) return null;
  return {
    type: 'message',
    channel: 'sms',
    from: number(w.from),
    to: number(w.to),
    text: typeof w.text === 'string' ? w.text : null,
    payload: null,
    provider_message_id: w.message_uuid!,
    at,
  };
}

/**
 * submitted: handed to the carrier (and charged); delivered: the handset's receipt; rejected: the
 * platform, the carrier or the TTL refused it; undeliverable: Vonage could not reach the carrier.
 * Neither failure says the number is dead, so both are 'failed'.
 */
const STATUSES: Record<string, InboundStatus['status']> = { submitted: 'sent', delivered: 'delivered', read: 'read', rejected: 'failed', undeliverable: 'failed' };

function parseStatus(w: Webhook, at: Date): InboundStatus | null {
  const status = w.status ? STATUSES[w.status] : undefined;
  if (!status) return null;
  const item: InboundStatus = { type: 'status', provider_message_id: w.message_uuid!, status, at };
  if (w.error && status === 'failed') {
    const code = w.error.title !== undefined && /^\d+$/.test(String(w.error.title)) ? String(w.error.title) : problemCode(w.error);
    item.error = [w.error.title, w.error.detail].filter((x) => x !== undefined && x !== '').join(': ') || w.status!;
    if (code) item.provider_code = code;
  }
  const price = Number(w.usage?.price);
  if (w.usage?.price !== undefined && Number.isFinite(price)) {
    item.cost = price;
    if (w.usage.currency) item.currency = w.usage.currency;
  }
  const detail: Record<string, unknown> = { vonage_status: w.status };
  if (w.client_ref) detail.client_ref = w.client_ref;
  if (w.sms) detail.sms = w.sms;
  if (w.destination?.network_code) detail.network_code = w.destination.network_code;
  item.detail = detail;
  return item;
}

function webhook(req: InboundRequest): Webhook | undefined {
  const json = bodyJson(req);
  return json && typeof json === 'object' && !Array.isArray(json) ? (json as Webhook) : undefined;
}

// ---- helpers ----

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.trim().length > 0;
}

/** An E.164 number (or short code), or an alphanumeric sender ID of 1 to 11 characters. */
function isSender(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  return /^\+?\d{3,15}$/.test(v) || /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/.test(v);
}

/** Vonage takes numbers without the leading +; an alphanumeric sender goes as it is. */
function sender(from: string): string {
  return /^\+?\d+$/.test(from) ? from.replace(/^\+/, '') : from;
}

function digits(to: string | null): string | null {
  if (!to) return null;
  const d = to.replace(/[\s().-]/g, '').replace(/^\+/, '');
  return /^\d{7,15}$/.test(d) ? d : null;
}

function number(n: string): string {
  return /^\+?\d+$/.test(n) ? `+${n.replace(/^\+/, '')}` : n;
}
