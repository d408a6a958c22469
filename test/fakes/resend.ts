import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, sendJson, type FakeRequest } from './http-fake.js';

/**
 * A Resend stand-in on 127.0.0.1 speaking POST /emails as Resend does:
 *
 * - `Authorization: Bearer re_…`: missing → 401 missing_api_key, wrong → 403 invalid_api_key;
 * - errors as `{"statusCode","message","name"}`: missing from/to/subject → 422
 *   missing_required_field, a malformed `to` → 422 validation_error "Invalid `to` field…", a
 *   malformed from → 422 invalid_from_address, a from domain outside `verifiedDomains` → 403
 *   validation_error, bad tags → 422 validation_error;
 * - `Idempotency-Key`: 1 to 256 characters or 400 invalid_idempotency_key; the same key with the
 *   same body within the fake's life answers the first id again without a second send, with a
 *   different body 409 invalid_idempotent_request;
 * - 200 `{"id":"<uuid>"}` on success;
 * - scripted failures, one per request: any status and error name, 429 rate_limit_exceeded with
 *   Retry-After and the ratelimit-* headers, or no answer at all.
 *
 * It also plays the webhook sender: events shaped like Resend's, signed the Svix way with the
 * endpoint secret (`whsec_` + base64), as Rapport's inbound route would receive them.
 */

export interface ResendSend {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
  id: string;
}

export type ResendFailure =
  | { kind: 'error'; status: number; name: string; message?: string }
  | { kind: 'rate_limit'; retryAfterSeconds?: number }
  | { kind: 'hang' };

const ADDRESS = /^(?:[^<>]*<\s*([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)\s*>|([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+))$/;
const TAG = /^[A-Za-z0-9_-]{1,256}$/;

function addressOf(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = ADDRESS.exec(value.trim());
  return m ? (m[1] ?? m[2] ?? null) : null;
}

export class ResendFake {
  readonly apiKey: string;
  readonly webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
  /** Every e-mail Resend accepted (an idempotent replay adds none). */
  readonly sends: ResendSend[] = [];
  /** Every request that reached the server. */
  readonly requests: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  private readonly verifiedDomains: string[] | null;
  private readonly failures: ResendFailure[] = [];
  private readonly idempotency = new Map<string, { body: string; id: string }>();
  private http!: HttpFake;
  url = '';

  private constructor(opts: { apiKey?: string; verifiedDomains?: string[] }) {
    this.apiKey = opts.apiKey ?? `re_${randomBytes(6).toString('base64url')}_${randomBytes(18).toString('base64url')}`;
    this.verifiedDomains = opts.verifiedDomains ?? null;
  }

  static async start(opts: { apiKey?: string; verifiedDomains?: string[] } = {}): Promise<ResendFake> {
    const fake = new ResendFake(opts);
    fake.http = await HttpFake.listen((req, res) => fake.handle(req, res));
    fake.url = fake.http.url;
    return fake;
  }

  fail(...failures: ResendFailure[]): void {
    this.failures.push(...failures);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private handle(req: FakeRequest, res: ServerResponse): void {
    const { path, body: raw } = req;
    this.requests.push({ method: req.method, path, headers: req.headers, body: raw });
    const error = (statusCode: number, name: string, message: string, headers: Record<string, string> = {}) => sendJson(res, statusCode, { statusCode, message, name }, headers);
    if (path !== '/emails') return error(404, 'not_found', 'The requested endpoint does not exist.');
    if (req.method !== 'POST') return error(405, 'method_not_allowed', 'Method is not allowed for the requested path.');
    const auth = req.headers.authorization;
    if (!auth) return error(401, 'missing_api_key', 'Missing API key in the authorization header.');
    if (auth !== `Bearer ${this.apiKey}`) return error(403, 'invalid_api_key', 'API key is invalid');

    const scripted = this.failures.shift();
    if (scripted?.kind === 'hang') return this.http.hang(res);
    if (scripted?.kind === 'rate_limit') {
      const after = String(scripted.retryAfterSeconds ?? 1);
      return error(429, 'rate_limit_exceeded', 'Too many requests. You can only make 2 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.', {
        'retry-after': after,
        'ratelimit-limit': '2',
        'ratelimit-remaining': '0',
        'ratelimit-reset': after,
      });
    }
    if (scripted?.kind === 'error') return error(scripted.status, scripted.name, scripted.message ?? scripted.name);

    const key = req.headers['idempotency-key'];
    if (typeof key === 'string' && (key.length < 1 || key.length > 256)) return error(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.');

    let body: Record<string, any>;
    try {
      body = JSON.parse(raw) as Record<string, any>;
    } catch {
      return error(422, 'validation_error', 'Invalid JSON body.');
    }
    for (const field of ['from', 'to', 'subject']) {
      if (body[field] === undefined || body[field] === '' || (Array.isArray(body[field]) && body[field].length === 0)) {
        return error(422, 'missing_required_field', `Missing \`${field}\` field.`);
      }
    }
    if (!body.html && !body.text && !body.react && !body.template) return error(422, 'validation_error', 'Missing `html` or `text` field.');
    const from = addressOf(body.from);
    if (!from) return error(422, 'invalid_from_address', 'Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.');
    const to: unknown[] = Array.isArray(body.to) ? body.to : [body.to];
    if (to.length > 50) return error(422, 'validation_error', 'Invalid `to` field. The maximum number of recipients is 50.');
    if (!to.every((t) => addressOf(t))) {
      return error(422, 'validation_error', 'Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.');
    }
    for (const tag of Array.isArray(body.tags) ? body.tags : []) {
      if (!TAG.test(String(tag?.name)) || !TAG.test(String(tag?.value))) {
        return error(422, 'validation_error', 'Tags should only contain ASCII letters, numbers, underscores, or dashes.');
      }
    }
    const domain = from.split('@')[1]!.toLowerCase();
    if (this.verifiedDomains && !this.verifiedDomains.includes(domain)) {
      return error(403, 'validation_error', `The ${domain} domain is not verified. Please, add and verify your domain on https://resend.com/domains`);
    }

    if (typeof key === 'string') {
      const seen = this.idempotency.get(key);
      if (seen && seen.body !== raw) return error(409, 'invalid_idempotent_request', 'Same idempotency key used with a different request payload. Change your idempotency key or payload.');
      if (seen) return this.ok(res, seen.id);
    }
    const id = randomUUID();
    if (typeof key === 'string') this.idempotency.set(key, { body: raw, id });
    this.sends.push({ headers: req.headers, body, id });
    this.ok(res, id);
  }

  private ok(res: ServerResponse, id: string): void {
    sendJson(res, 200, { id }, { 'ratelimit-limit': '2', 'ratelimit-remaining': '1', 'ratelimit-reset': '1' });
  }

  /** A webhook event about an accepted e-mail, shaped like Resend's (tags come back as an object). */
  event(send: ResendSend, type: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const tags = Object.fromEntries((send.body.tags ?? []).map((t: { name: string; value: string }) => [t.name, t.value]));
    return {
      type,
      created_at: new Date().toISOString(),
      data: {
        created_at: new Date().toISOString(),
        email_id: send.id,
        from: send.body.from,
        to: send.body.to,
        subject: send.body.subject,
        ...(Object.keys(tags).length ? { tags } : {}),
        ...extra,
      },
    };
  }

  /** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed by the decoded secret. */
  sign(id: string, timestamp: string, body: Buffer, secret = this.webhookSecret): string {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
  }

  /** The signed webhook POST for one event, as Rapport's route hands it to the adapter. */
  webhook(accountId: string, event: Record<string, unknown>, opts: { publicUrl?: string; timestamp?: number; receivedAt?: Date; id?: string } = {}): InboundRequest {
    const receivedAt = opts.receivedAt ?? new Date();
    const timestamp = String(opts.timestamp ?? Math.floor(receivedAt.getTime() / 1000));
    const id = opts.id ?? `msg_${randomBytes(20).toString('base64url')}`;
    const rawBody = Buffer.from(JSON.stringify(event));
    return {
      method: 'POST',
      url: `${opts.publicUrl ?? 'https://rapport.example'}/webhooks/resend/${accountId}`,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Svix-Webhooks/1.24.0',
        'svix-id': id,
        'svix-timestamp': timestamp,
        'svix-signature': this.sign(id, timestamp, rawBody),
      },
      rawBody,
      query: {},
      json: event,
      receivedAt,
    };
  }
}
