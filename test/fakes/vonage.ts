import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, jsonWebhookToInbound, sendJson, type FakeRequest, type ScriptedAnswer } from './http-fake.js';

export type { ScriptedAnswer } from './http-fake.js';

/**
 * A stand-in for the Vonage Messages API v1 on 127.0.0.1: `POST /v1/messages` with Basic auth
 * (API key and secret), the SMS request validated as Vonage does, answered with `202
 * {message_uuid}` or an RFC 7807 problem. Tests script failures per request.
 *
 * Beside it, builders for the webhooks Vonage sends to Rapport (inbound SMS, message statuses),
 * signed as Vonage signs them: `Authorization: Bearer <JWT>`, HS256 with the signature secret,
 * claims iat, jti, iss "Vonage", payload_hash (SHA-256 hex of the body), api_key.
 */

export interface VonageFakeOptions {
  apiKey: string;
  apiSecret: string;
  /** Numbers (digits) Vonage refuses to send to: answered with 1050 "Number barred". */
  barred?: string[];
}

export interface RecordedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  messageUuid: string;
}

/** A Messages API problem body. */
export function vonageProblem(type: string, title: string, detail: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type, title, detail, instance: randomUUID(), ...extra };
}

const MESSAGES_ERRORS = 'https://developer.vonage.com/api-errors/messages';

export class VonageFake {
  readonly requests: RecordedRequest[] = [];
  readonly received: { path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  private readonly scripted: ScriptedAnswer[] = [];
  private http!: HttpFake;

  private constructor(private readonly opts: VonageFakeOptions) {}

  static async start(opts: VonageFakeOptions): Promise<VonageFake> {
    const fake = new VonageFake(opts);
    fake.http = await HttpFake.listen((req, res) => fake.handle(req, res));
    return fake;
  }

  /** The fake's root URL: an account's `base_url`. */
  get url(): string {
    return this.http.url;
  }

  script(...answers: ScriptedAnswer[]): void {
    this.scripted.push(...answers);
  }

  /** The next request is throttled: 429 with Vonage's problem body and, when given, Retry-After. */
  throttleNext(retryAfterSeconds?: number): void {
    this.script({
      status: 429,
      body: vonageProblem('https://developer.vonage.com/api-errors#throttled', 'Rate Limit Hit', 'Please wait, then retry your request'),
      headers: retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {},
    });
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async handle(req: FakeRequest, res: ServerResponse): Promise<void> {
    const { path, body: raw } = req;
    this.received.push({ path, headers: req.headers, body: raw });

    const next = this.scripted.shift();
    if (next) return this.http.answer(res, next, send);

    if (req.method !== 'POST' || path !== '/v1/messages') return send(res, 404, vonageProblem('https://developer.vonage.com/api-errors#not-found', 'Not Found', 'The requested resource does not exist, or you do not have access to it'));
    if (req.headers.authorization !== `Basic ${Buffer.from(`${this.opts.apiKey}:${this.opts.apiSecret}`).toString('base64')}`) {
      return send(res, 401, vonageProblem('https://developer.vonage.com/api-errors#unauthorized', 'Unauthorized', 'You did not provide correct credentials.'));
    }
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 422, invalidParams([{ name: 'body', reason: 'malformed JSON' }]));
    }
    const problems = validate(body);
    if (problems.length) return send(res, 422, invalidParams(problems));
    if (this.opts.barred?.includes(body.to)) {
      return send(res, 422, vonageProblem(`${MESSAGES_ERRORS}#1050`, 'Number barred', 'The number you are trying to submit to is blacklisted and may not receive messages.'));
    }
    const messageUuid = randomUUID();
    this.requests.push({ path, headers: req.headers, body, messageUuid });
    send(res, 202, { message_uuid: messageUuid });
  }
}

/** Vonage answers errors as RFC 7807 problems. */
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers });
}

function invalidParams(invalid: { name: string; reason: string }[]): Record<string, unknown> {
  return vonageProblem(`${MESSAGES_ERRORS}#1150`, 'Invalid params', 'The value of one or more parameters is invalid.', { invalid_parameters: invalid });
}

/** The Messages API's checks on an SMS request. */
function validate(b: any): { name: string; reason: string }[] {
  const p: { name: string; reason: string }[] = [];
  if (b?.channel !== 'sms') p.push({ name: 'channel', reason: 'must be sms for this fake' });
  if (b?.message_type !== 'text') p.push({ name: 'message_type', reason: 'must be text for SMS' });
  if (typeof b?.to !== 'string' || !/^\d{7,15}$/.test(b.to)) p.push({ name: 'to', reason: 'Invalid number: E.164 without a leading + or 00' });
  if (typeof b?.from !== 'string' || !b.from || (!/^\d{3,15}$/.test(b.from) && !/^[A-Za-z0-9 ]{1,11}$/.test(b.from))) p.push({ name: 'from', reason: 'must be a number or an alphanumeric sender ID of up to 11 characters' });
  if (typeof b?.text !== 'string' || !b.text || [...b.text].length > 1000) p.push({ name: 'text', reason: 'must be 1 to 1000 characters' });
  if (b?.client_ref !== undefined && (typeof b.client_ref !== 'string' || b.client_ref.length > 100)) p.push({ name: 'client_ref', reason: 'must be at most 100 characters' });
  if (b?.webhook_url !== undefined && !/^https?:\/\//.test(String(b.webhook_url))) p.push({ name: 'webhook_url', reason: 'must be a URL' });
  if (b?.webhook_version !== undefined && !['v0.1', 'v1'].includes(b.webhook_version)) p.push({ name: 'webhook_version', reason: 'must be v0.1 or v1' });
  return p;
}

// ---- Webhooks Vonage sends to Rapport ----

export interface WebhookRequest {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface VonageWebhookAccount {
  apiKey: string;
  signatureSecret: string;
  /** Where the webhook goes; defaults to Rapport's shared Vonage URL. */
  url?: string;
}

export const DEFAULT_VONAGE_WEBHOOK_URL = 'https://rapport.example.com/webhooks/vonage';

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** A JWT as Vonage signs webhooks; `claims` overrides (iat, payload_hash...) for forged variants. */
export function vonageJwt(secret: string, claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }): string {
  const head = b64url(header);
  const payload = b64url(claims);
  return `${head}.${payload}.${createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url')}`;
}

/** A signed webhook carrying `payload`, its JWT issued at `iat` (unix seconds; now by default). */
export function signedWebhook(account: VonageWebhookAccount, payload: unknown, opts: { iat?: number; claims?: Record<string, unknown> } = {}): WebhookRequest {
  const body = JSON.stringify(payload);
  const token = vonageJwt(account.signatureSecret, {
    iat: opts.iat ?? Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    iss: 'Vonage',
    payload_hash: createHash('sha256').update(body).digest('hex'),
    api_key: account.apiKey,
    application_id: randomUUID(),
    ...opts.claims,
  });
  return {
    method: 'POST',
    url: account.url ?? DEFAULT_VONAGE_WEBHOOK_URL,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'user-agent': 'Vonage-Messages-API' },
    body,
  };
}

/** An inbound SMS webhook body (Messages API v1). Numbers are digits without +. */
export function inboundSms(m: { from: string; to: string; text: string; uuid?: string; timestamp?: string }): Record<string, unknown> {
  return {
    channel: 'sms',
    message_uuid: m.uuid ?? randomUUID(),
    to: m.to,
    from: m.from,
    timestamp: m.timestamp ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    text: m.text,
    message_type: 'text',
    sms: { num_messages: '1', count_total: '1' },
    usage: { price: '0.0057', currency: 'EUR' },
    origin: { network_code: '23410' },
  };
}

/** A message status webhook body (Messages API v1). */
export function smsStatus(s: {
  uuid: string;
  status: 'submitted' | 'delivered' | 'rejected' | 'undeliverable';
  to: string;
  from: string;
  clientRef?: string;
  timestamp?: string;
  price?: string;
  error?: { code: string | number; detail: string };
}): Record<string, unknown> {
  return {
    message_uuid: s.uuid,
    to: s.to,
    from: s.from,
    timestamp: s.timestamp ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    status: s.status,
    channel: 'sms',
    ...(s.clientRef ? { client_ref: s.clientRef } : {}),
    ...(s.status === 'submitted' || s.price ? { usage: { currency: 'EUR', price: s.price ?? '0.0333' } } : {}),
    ...(s.error ? { error: { type: `${MESSAGES_ERRORS}#${s.error.code}`, title: s.error.code, detail: s.error.detail, instance: randomBytes(16).toString('hex') } } : {}),
    destination: { network_code: '23410' },
    sms: { count_total: '1' },
  };
}

export const toInboundRequest: (w: WebhookRequest, receivedAt?: Date) => InboundRequest = jsonWebhookToInbound;
