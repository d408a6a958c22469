import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, sendJson, type FakeRequest } from './http-fake.js';

/**
 * A SendGrid stand-in on 127.0.0.1 speaking v3 Mail Send as SendGrid does:
 *
 * - `Authorization: Bearer <key>` or 401 `{"errors":[{"field":null,"message":"The provided
 *   authorization grant is invalid, expired, or revoked","help":null}]}`;
 * - the body validated like SendGrid (personalizations, each `to` address, from, subject, content
 *   with text/plain before text/html, reserved headers, string custom_args), 400 with
 *   `{"errors":[{"message","field","help"}]}` naming the field;
 * - a from address outside `verifiedSenders` answered 403 like an unverified Sender Identity;
 * - 202, empty body, `X-Message-Id: <22 characters>` on success;
 * - scripted failures, one per request: a status with SendGrid's error body, 429 with the
 *   X-RateLimit-* headers SendGrid sends, or a request that never gets an answer.
 *
 * It also plays the Event Webhook: it holds an ECDSA P-256 key pair, exposes the public half as
 * SendGrid's settings page shows it (base64 DER SubjectPublicKeyInfo), and builds signed event
 * posts (signature over timestamp + raw body) as Rapport's inbound routes would receive them.
 */

export interface SendgridSend {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
  messageId: string;
}

export type SendgridFailure =
  | { kind: 'status'; status: number; errors?: { message: string; field?: string | null; help?: string | null }[] }
  | { kind: 'rate_limit'; resetInSeconds?: number }
  | { kind: 'hang' };

const HELP = 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html';
const RESERVED = ['x-sg-id', 'x-sg-eid', 'received', 'dkim-signature', 'content-type', 'content-transfer-encoding', 'to', 'from', 'subject', 'reply-to', 'cc', 'bcc'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export class SendgridFake {
  readonly apiKey: string;
  /** Every accepted send, in order. */
  readonly sends: SendgridSend[] = [];
  /** Every request that reached the server, accepted or not. */
  readonly requests: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  /** SendGrid's Signed Event Webhook verification key: base64 DER SPKI. */
  readonly publicKey: string;
  private readonly privateKey: KeyObject;
  private readonly verifiedSenders: string[] | null;
  private readonly failures: SendgridFailure[] = [];
  private http!: HttpFake;
  url = '';

  private constructor(opts: { apiKey?: string; verifiedSenders?: string[] }) {
    this.apiKey = opts.apiKey ?? `SG.${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    this.verifiedSenders = opts.verifiedSenders ?? null;
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  }

  static async start(opts: { apiKey?: string; verifiedSenders?: string[] } = {}): Promise<SendgridFake> {
    const fake = new SendgridFake(opts);
    fake.http = await HttpFake.listen((req, res) => fake.handle(req, res));
    fake.url = fake.http.url;
    return fake;
  }

  /** Queues failures, each answering one request before normal service resumes. */
  fail(...failures: SendgridFailure[]): void {
    this.failures.push(...failures);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private handle(req: FakeRequest, res: ServerResponse): void {
    const { path, body: raw } = req;
    this.requests.push({ method: req.method, path, headers: req.headers, body: raw });
    const answer = (status: number, errors: { message: string; field?: string | null; help?: string | null }[], headers: Record<string, string> = {}) =>
      sendJson(res, status, { errors: errors.map((e) => ({ field: e.field ?? null, message: e.message, help: e.help ?? null })) }, headers);
    if (path !== '/v3/mail/send') return answer(404, [{ message: 'not found' }]);
    if (req.method !== 'POST') return answer(405, [{ message: 'POST method allowed only' }]);
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return answer(401, [{ message: 'The provided authorization grant is invalid, expired, or revoked' }]);

    const scripted = this.failures.shift();
    if (scripted?.kind === 'hang') return this.http.hang(res);
    if (scripted?.kind === 'rate_limit') {
      const reset = Math.floor(Date.now() / 1000) + (scripted.resetInSeconds ?? 2);
      return answer(429, [{ message: 'too many requests' }], { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) });
    }
    if (scripted?.kind === 'status') return answer(scripted.status, scripted.errors ?? [{ message: scripted.status >= 500 ? 'Internal Server Error' : 'Bad Request' }]);

    let body: Record<string, any>;
    try {
      body = JSON.parse(raw) as Record<string, any>;
    } catch {
      return answer(400, [{ message: 'Bad Request', field: null, help: null }]);
    }
    const errors = this.validate(body);
    if (errors.length) return answer(400, errors);
    const from = String(body.from.email).toLowerCase();
    if (this.verifiedSenders && !this.verifiedSenders.map((s) => s.toLowerCase()).includes(from)) {
      return answer(403, [
        {
          message:
            'The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender Identity requirements',
          field: 'from',
        },
      ]);
    }
    const messageId = randomBytes(16).toString('base64url').slice(0, 22);
    this.sends.push({ headers: req.headers, body, messageId });
    res.writeHead(202, { 'x-message-id': messageId, 'content-length': '0' });
    res.end();
  }

  private validate(body: Record<string, any>): { message: string; field: string; help: string }[] {
    const errors: { message: string; field: string; help: string }[] = [];
    const p = body.personalizations;
    if (!Array.isArray(p) || p.length === 0) {
      errors.push({ message: 'The personalizations field is required and must have at least one personalization.', field: 'personalizations', help: `${HELP}#-Personalizations-Errors` });
    } else {
      p.forEach((pers: any, i: number) => {
        if (!Array.isArray(pers?.to) || pers.to.length === 0) {
          errors.push({ message: 'The to array is required for all personalization objects, and must have at least one email object with a valid email address.', field: `personalizations.${i}.to`, help: `${HELP}#message.personalizations.to` });
          return;
        }
        pers.to.forEach((to: any, j: number) => {
          if (typeof to?.email !== 'string' || !EMAIL.test(to.email)) {
            errors.push({ message: 'Does not contain a valid address.', field: `personalizations.${i}.to.${j}.email`, help: `${HELP}#message.personalizations.to` });
          }
        });
      });
    }
    if (typeof body.from?.email !== 'string' || !body.from.email) {
      errors.push({
        message: 'The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.  e.g. {"email" : "example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}.',
        field: 'from.email',
        help: `${HELP}#message.from`,
      });
    } else if (!EMAIL.test(body.from.email)) {
      errors.push({ message: 'The from email does not contain a valid address.', field: 'from.email', help: `${HELP}#message.from` });
    }
    const everySubject = Array.isArray(p) && p.length > 0 && p.every((x: any) => typeof x?.subject === 'string' && x.subject);
    if ((typeof body.subject !== 'string' || !body.subject) && !everySubject) {
      errors.push({
        message: 'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.',
        field: 'subject',
        help: `${HELP}#message.subject`,
      });
    }
    const content = body.content;
    if (!Array.isArray(content) || content.length === 0) {
      errors.push({
        message: 'Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.',
        field: 'content',
        help: `${HELP}#message.content`,
      });
    } else {
      content.forEach((c: any, i: number) => {
        if (typeof c?.value !== 'string' || c.value.length === 0) {
          errors.push({ message: 'The content value must be a string at least one character in length.', field: `content.${i}.value`, help: `${HELP}#message.content.value` });
        }
      });
      const types = content.map((c: any) => c?.type);
      const plain = types.indexOf('text/plain');
      if (plain > 0) errors.push({ message: 'If present, text/plain must be first, followed by text/html, followed by any other content.', field: 'content', help: `${HELP}#message.content` });
    }
    for (const name of Object.keys(body.headers ?? {})) {
      if (RESERVED.includes(name.toLowerCase())) errors.push({ message: `The header ${name} is reserved and cannot be set.`, field: 'headers', help: `${HELP}#message.headers` });
    }
    for (const [k, v] of Object.entries(body.custom_args ?? {})) {
      if (typeof v !== 'string') errors.push({ message: `Custom args values must be strings: ${k}`, field: 'custom_args', help: `${HELP}#message.custom_args` });
    }
    return errors;
  }

  /**
   * One event as SendGrid would post it about an accepted send: sg_message_id is the X-Message-Id
   * plus SendGrid's filter suffix, custom_args appear as top-level fields.
   */
  event(send: SendgridSend, event: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const email = send.body.personalizations?.[0]?.to?.[0]?.email;
    return {
      email,
      timestamp: Math.floor(Date.now() / 1000),
      'smtp-id': `<${send.messageId}@ismtpd0001p1lon1.sendgrid.net>`,
      event,
      sg_event_id: randomBytes(16).toString('base64url'),
      sg_message_id: `${send.messageId}.filterdrecv-5f54b5d587-pczjm-1-67BADEEA-6.0`,
      ...(send.body.custom_args ?? {}),
      ...extra,
    };
  }

  /** Signs `timestamp + body` as SendGrid does: ECDSA P-256 over SHA-256, base64 of the DER signature. */
  sign(timestamp: string, body: Buffer): string {
    return sign('sha256', Buffer.concat([Buffer.from(timestamp), body]), this.privateKey).toString('base64');
  }

  /**
   * The signed Event Webhook POST for these events, as Rapport's route hands it to the adapter.
   * SendGrid's raw body ends with CRLF; the signature covers exactly these bytes.
   */
  webhook(accountId: string, events: Record<string, unknown>[], opts: { publicUrl?: string; timestamp?: number; receivedAt?: Date } = {}): InboundRequest {
    const receivedAt = opts.receivedAt ?? new Date();
    const timestamp = String(opts.timestamp ?? Math.floor(receivedAt.getTime() / 1000));
    const rawBody = Buffer.from(`${JSON.stringify(events)}\r\n`);
    return {
      method: 'POST',
      url: `${opts.publicUrl ?? 'https://rapport.example'}/webhooks/sendgrid/${accountId}`,
      headers: {
        'content-type': 'application/json;charset=utf-8',
        'user-agent': 'SendGrid Event API',
        'x-twilio-email-event-webhook-signature': this.sign(timestamp, rawBody),
        'x-twilio-email-event-webhook-timestamp': timestamp,
      },
      rawBody,
      query: {},
      json: events,
      receivedAt,
    };
  }
}
