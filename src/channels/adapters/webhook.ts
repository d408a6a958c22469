import { createHmac, randomBytes } from 'node:crypto';
import { BlockedDestinationError, guardedRequester } from '../webhook-guard.js';
import type { HttpRequester } from '../http-client.js';
import { callProvider, failure, failureFromStatus, isCallFailure, retryAfterMs, safeEqual } from '../http.js';
import type { AccountProblem, ChannelAdapter, OutgoingMessage, SendContext, SendResult } from '../types.js';

/**
 * The webhook channel: a journey step POSTs the rendered message as JSON to a tenant's endpoint,
 * signed as the Standard Webhooks spec (https://www.standardwebhooks.com, v1.0.0) prescribes, so
 * any receiver with a Standard Webhooks library, or a dozen lines of node:crypto, can check it.
 *
 *   webhook-id         the Rapport message id: the same on every retry, the receiver's idempotency key
 *   webhook-timestamp  integer Unix seconds of this attempt (receivers refuse it after 5 minutes)
 *   webhook-signature  `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, space-separated when
 *                      a previous secret is still being rotated out
 *
 * The secret is `whsec_` + base64 of 24 to 64 random bytes; the HMAC key is the decoded bytes.
 * There is no inbound side: a receiver answers with its HTTP status, nothing calls back.
 *
 * The URL is the tenant's (the send step's, the account's, or a result webhook's, which may come
 * from any API caller's event), so the request goes through the destination guard of
 * channels/webhook-guard.ts, never the router's plain client: a refused destination fails the
 * message for good with `blocked_destination: …`.
 */

const PREFIX = 'whsec_';
/** The spec's bounds for a symmetric secret: 192 to 512 bits. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
/** How far a timestamp may be from the receiver's clock, either way, as the reference libraries allow. */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The HMAC key inside a `whsec_` secret, or null when it is not one. */
export function webhookSecretKey(secret: string): Buffer | null {
  const b64 = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (!b64 || !BASE64.test(b64)) return null;
  const key = Buffer.from(b64, 'base64');
  return key.length > 0 ? key : null;
}

/**
 * The `v1,<base64>` signature of one delivery. `timestamp` is in Unix seconds. Throws on a secret
 * that is not base64 and on an id containing a full stop, which would make the signed content
 * ambiguous (the spec forbids it).
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  const key = webhookSecretKey(secret);
  if (!key) throw new Error('webhook secret must be "whsec_" followed by base64');
  if (!id || id.includes('.')) throw new Error('webhook id must be non-empty and contain no "."');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new Error('webhook timestamp must be integer Unix seconds');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

type HeaderBag = Record<string, string | string[] | undefined> | Headers;

function header(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(' ') : v;
  }
  return undefined;
}

/**
 * True when the request carries a `v1` signature of this body, id and timestamp made with this
 * secret, and the timestamp is within 5 minutes of `now`. Takes Node's request headers, a
 * fetch Headers, or a plain object; `body` must be the exact bytes received.
 */
export function verifyWebhookSignature(secret: string, headers: HeaderBag, body: string | Buffer, now: Date | number = Date.now()): boolean {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (!id || !ts || !sigs || id.includes('.') || !/^\d{1,15}$/.test(ts)) return false;
  const timestamp = Number(ts);
  const nowSeconds = Math.floor((typeof now === 'number' ? now : now.getTime()) / 1000);
  if (Math.abs(nowSeconds - timestamp) > WEBHOOK_TOLERANCE_SECONDS) return false;
  let expected: string;
  try {
    expected = signWebhook(secret, id, timestamp, body);
  } catch {
    return false;
  }
  // Every candidate is compared, so the time taken does not say which one matched.
  let ok = false;
  for (const candidate of sigs.split(' ')) {
    if (candidate.startsWith('v1,') && safeEqual(candidate, expected)) ok = true;
  }
  return ok;
}

/** A fresh `whsec_` secret of 32 random bytes, for account set-up and tests. */
export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

function secretProblem(field: string, value: string | undefined, required: boolean): AccountProblem | null {
  if (value === undefined || value === '') return required ? { field, message: 'required: "whsec_" followed by base64 of 24 to 64 random bytes' } : null;
  if (!value.startsWith(PREFIX)) return { field, message: 'must start with "whsec_"' };
  const key = webhookSecretKey(value);
  if (!key) return { field, message: 'must be "whsec_" followed by base64' };
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    return { field, message: `must decode to ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes (got ${key.length})` };
  }
  return null;
}

function httpUrl(value: string): URL | null {
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u : null;
  } catch {
    return null;
  }
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  const current = secretProblem('credentials.signing_secret', credentials.signing_secret, true);
  if (current) problems.push(current);
  const previous = secretProblem('credentials.previous_signing_secret', credentials.previous_signing_secret, false);
  if (previous) problems.push(previous);
  if (config.url !== undefined && (typeof config.url !== 'string' || !httpUrl(config.url))) {
    problems.push({ field: 'config.url', message: 'must be an http(s) URL' });
  }
  return problems;
}

async function send(msg: OutgoingMessage, ctx: SendContext, request: HttpRequester): Promise<SendResult> {
  const { credentials, config } = ctx.account;
  const target = msg.url ?? (typeof config.url === 'string' ? config.url : undefined);
  // No URL anywhere is the account's fault and will not heal by retrying; a bad rendered URL is
  // this message's (its Liquid produced something that is not an address).
  if (!target) return failure('config', 'no URL: the send step has no url and the account no config.url', { permanent: true });
  const url = httpUrl(target);
  if (!url) return failure('invalid_recipient', `not an http(s) URL: ${target.slice(0, 200)}`);

  const id = msg.id;
  const timestamp = Math.floor(Date.now() / 1000);
  const data = msg.options?.data;
  const payload = JSON.stringify({
    id: msg.id,
    idempotency_key: msg.idempotency_key,
    tenant_id: msg.tenant_id,
    channel: 'webhook',
    to: msg.to,
    ...(msg.subject !== undefined ? { subject: msg.subject } : {}),
    ...(msg.body !== undefined ? { body: msg.body } : {}),
    data: data === undefined ? null : data,
    sent_at: new Date(timestamp * 1000).toISOString(),
  });
  let signature: string;
  try {
    // During a rotation both signatures go out, so receivers can switch secrets at their pace.
    const secrets = [credentials.signing_secret, credentials.previous_signing_secret].filter((s): s is string => !!s);
    signature = secrets.map((s) => signWebhook(s, id, timestamp, payload)).join(' ');
  } catch (err) {
    return failure('config', `signing: ${(err as Error).message}`, { permanent: true });
  }

  const seen: { blocked?: BlockedDestinationError } = {};
  const guarded: HttpRequester = (u, init, timeoutMs) =>
    request(u, init, timeoutMs).catch((err: unknown) => {
      if (err instanceof BlockedDestinationError) seen.blocked = err;
      throw err;
    });
  const res = await callProvider({ ...ctx, request: guarded }, url.toString(), {
    method: 'POST',
    // A redirect is a failure by the spec: following it would re-send signed data to somewhere
    // the tenant never configured.
    redirect: 'manual',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Rapport-Webhook/1',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
    },
    body: payload,
  });
  // No code: a provider fault would fail over to the next account and be retried, and the
  // refusal is the same wherever the message goes.
  if (seen.blocked) return { ok: false, permanent: true, error: seen.blocked.message };
  if (isCallFailure(res)) return res;
  if (res.status >= 200 && res.status < 300) return { ok: true, provider_message_id: id, status: 'delivered' };

  const said = res.text.trim().slice(0, 200) || 'no body';
  if (res.status === 410) {
    // The spec's "stop sending": the endpoint is gone for good. Not this message's fault, and no
    // retry or contact suppression will help; someone has to change the URL.
    return failure('config', `HTTP 410: the endpoint is gone (${said})`, { permanent: true, provider_code: '410' });
  }
  if (res.status >= 300 && res.status < 400) {
    const where = res.headers.get('location');
    return failure('rejected', `HTTP ${res.status}: redirects are not followed${where ? ` (to ${where.slice(0, 200)})` : ''}; update the URL`, { provider_code: String(res.status) });
  }
  if (res.status === 408) return failure('timeout', `HTTP 408: ${said}`, { provider_code: '408' });
  if (res.status >= 500) {
    const wait = retryAfterMs(res.headers);
    return failure('server', `HTTP ${res.status}: ${said}`, { provider_code: String(res.status), ...(wait !== undefined ? { retry_after_ms: wait } : {}) });
  }
  return failureFromStatus(res, said, String(res.status));
}

/**
 * The webhook channel calling through `request`, a guarded requester (channels/webhook-guard.ts)
 * with the operator's allow-list: what deliveryFor() puts in the adapters.
 */
export function guardedWebhookAdapter(request: HttpRequester): ChannelAdapter {
  return { kind: 'webhook', channels: ['webhook'], check, send: (msg, ctx) => send(msg, ctx, request) };
}

let strictGuard: HttpRequester | undefined;

/** The webhook channel with no private range allowed; made on first use, as its agents keep connections. */
export const webhookAdapter: ChannelAdapter = guardedWebhookAdapter((url, init, timeoutMs) => (strictGuard ??= guardedRequester())(url, init, timeoutMs));
