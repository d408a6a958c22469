/**
 * Twilio's Messages API and SendGrid's v3 Mail Send on 127.0.0.1, in a process of its own, for
 * bench/dispatch.ts and bench/engine.ts: the workers under measurement pay for a real HTTP round
 * trip (keep-alive, as the adapters' client keeps its connections), and the fake's CPU is not
 * theirs.
 *
 * Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, Basic auth with
 * the Account SID and Auth Token (FAKE_TWILIO_ACCOUNT_SID, FAKE_TWILIO_AUTH_TOKEN), answered 201
 * with a Message resource (`SM…` sid, status `queued`) or Twilio's error JSON `{code, message,
 * more_info, status}`: 401/20003 for bad credentials, 404/20404 for another path, 400 for a
 * message Twilio would refuse (21211 To, 21603 From, 21602 Body).
 *
 * SendGrid: `POST /v3/mail/send`, JSON, `Authorization: Bearer <key>` (FAKE_SENDGRID_API_KEY),
 * answered 202 with an empty body and the message's id in `X-Message-Id`, or SendGrid's error
 * JSON `{errors: [{message, field, help}]}`: 401 for a bad key, 400 naming the first field of
 * personalizations[].to[].email, from.email, subject and content[] that is missing.
 *
 * For each accepted message it notes when the request arrived (epoch ms, sub-millisecond) under
 * the outbox id: "ref <uuid>" in the body text, or for SendGrid the custom_args.rapport_message_id
 * Rapport's adapter sets. An SMS without a ref counts as unmatched and is noted under its `To`
 * number instead (bench/trigger.ts sends one SMS per contact and matches them that way).
 *
 * Run with `node --import tsx` and an IPC channel: it sends `{ url }` once listening, answers
 * 'reset' with `{ reset: true }` once it has forgotten everything, 'report' with what it saw
 * since, and exits on 'stop'.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeCommand = 'reset' | 'report' | 'stop';

export type FakeProvider = 'twilio' | 'sendgrid';

/** What one of the two APIs saw. */
export interface FakeProviderCounts {
  /** Requests to its send resource, accepted or not. */
  requests: number;
  accepted: number;
  /** Accepted messages without an outbox id the fake could read. */
  unmatched: number;
  /** Keys (outbox ids, or `To` numbers of SMS without one) accepted more than once. */
  duplicates: number;
  /** Refusals by Twilio error code or SendGrid HTTP status. */
  refused: Record<string, number>;
}

export interface FakeReport {
  /** Requests to either send resource, accepted or not. */
  requests: number;
  /** Accepted messages with an outbox id (or an SMS without one, by its `To` number): the key and arrival time (epoch ms), in arrival order. */
  received: [id: string, at: number][];
  /** Keys accepted more than once. */
  duplicates: number;
  /** Accepted messages without an outbox id. */
  unmatched: number;
  /** Refusals: Twilio error codes as they are, SendGrid's as "sendgrid <status>". */
  refused: Record<string, number>;
  byProvider: Record<FakeProvider, FakeProviderCounts>;
  /** CPU seconds this process used since the last reset. */
  cpuSeconds: number;
}

export type FakeMessage = { url: string } | { reset: true } | FakeReport;

const ACCOUNT_SID = process.env.FAKE_TWILIO_ACCOUNT_SID ?? '';
const AUTH_TOKEN = process.env.FAKE_TWILIO_AUTH_TOKEN ?? '';
const SENDGRID_KEY = process.env.FAKE_SENDGRID_API_KEY ?? '';
const E164 = /^\+[1-9]\d{6,14}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REF = /\bref ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/;
const TWILIO_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const SENDGRID_PATH = '/v3/mail/send';
const EXPECTED_AUTH = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;
const SENDGRID_HELP = 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html';

const zero = (): FakeProviderCounts => ({ requests: 0, accepted: 0, unmatched: 0, duplicates: 0, refused: {} });
let counts: Record<FakeProvider, FakeProviderCounts> = { twilio: zero(), sendgrid: zero() };
let received: [string, number][] = [];
let seen = new Set<string>();
let cpuSince = process.cpuUsage();

const now = () => performance.timeOrigin + performance.now();

/** Notes an accepted message under its outbox id, or when it carries none (unmatched) under `fallback`. */
function accept(provider: FakeProvider, ref: string | undefined, at: number, fallback?: string): void {
  const c = counts[provider];
  c.accepted++;
  if (!ref) c.unmatched++;
  const key = ref ?? fallback;
  if (!key) return;
  if (seen.has(key)) c.duplicates++;
  seen.add(key);
  received.push([key, at]);
}

// ---------------------------------------------------------------------------------------------
// Twilio

function refuseTwilio(res: ServerResponse, status: number, code: number, message: string): void {
  const r = counts.twilio.refused;
  r[code] = (r[code] ?? 0) + 1;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
}

function twilio(req: IncomingMessage, res: ServerResponse, accountSid: string, raw: string, at: number): void {
  counts.twilio.requests++;
  if (req.headers.authorization !== EXPECTED_AUTH || decodeURIComponent(accountSid) !== ACCOUNT_SID) return refuseTwilio(res, 401, 20003, 'Authenticate');
  const form = new URLSearchParams(raw);
  const to = form.get('To') ?? '';
  const from = form.get('From');
  const body = form.get('Body') ?? '';
  if (!E164.test(to)) return refuseTwilio(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  if (!from && !form.get('MessagingServiceSid')) return refuseTwilio(res, 400, 21603, "A 'From' phone number is required.");
  if (!body && !form.get('MediaUrl')) return refuseTwilio(res, 400, 21602, 'Message body is required.');

  accept('twilio', REF.exec(body)?.[1], at, to);
  const sid = `SM${randomBytes(16).toString('hex')}`;
  const date = new Date().toUTCString().replace('GMT', '+0000');
  res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' });
  res.end(
    JSON.stringify({
      account_sid: ACCOUNT_SID,
      api_version: '2010-04-01',
      body,
      date_created: date,
      date_sent: null,
      date_updated: date,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from,
      messaging_service_sid: form.get('MessagingServiceSid'),
      num_media: '0',
      num_segments: '1',
      price: null,
      price_unit: 'USD',
      sid,
      status: 'queued',
      subresource_uris: { media: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${sid}/Media.json` },
      to,
      uri: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${sid}.json`,
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// SendGrid

interface SendgridError {
  message: string;
  field: string | null;
  help: string | null;
}

function refuseSendgrid(res: ServerResponse, status: number, errors: SendgridError[]): void {
  const r = counts.sendgrid.refused;
  r[status] = (r[status] ?? 0) + 1;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors }));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const filled = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** The first thing SendGrid would refuse in a Mail Send body, as its error object; null when it would accept it. */
function sendgridProblem(body: Record<string, unknown>): SendgridError | null {
  const p = body.personalizations;
  if (!Array.isArray(p) || p.length === 0) {
    return { message: 'The personalizations field is required and must have at least one personalization.', field: 'personalizations', help: `${SENDGRID_HELP}#-Personalizations-Errors` };
  }
  for (const [i, pers] of p.entries()) {
    const to = isObject(pers) ? pers.to : undefined;
    if (!Array.isArray(to) || to.length === 0) {
      return { message: 'The to array is required for all personalization objects, and must have at least one email object with a valid email address.', field: `personalizations.${i}.to`, help: `${SENDGRID_HELP}#message.personalizations.to` };
    }
    for (const [j, r] of to.entries()) {
      if (!isObject(r) || !filled(r.email) || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(r.email)) {
        return { message: 'Does not contain a valid address.', field: `personalizations.${i}.to.${j}.email`, help: `${SENDGRID_HELP}#message.personalizations.to` };
      }
    }
  }
  if (!isObject(body.from) || !filled(body.from.email)) {
    return { message: 'The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.', field: 'from.email', help: `${SENDGRID_HELP}#message.from` };
  }
  // A subject in every personalization stands in for the top-level one.
  if (!filled(body.subject) && !p.every((x) => isObject(x) && filled(x.subject))) {
    return { message: 'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.', field: 'subject', help: `${SENDGRID_HELP}#message.subject` };
  }
  const content = body.content;
  if (!Array.isArray(content) || content.length === 0) {
    return { message: 'Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.', field: 'content', help: `${SENDGRID_HELP}#message.content` };
  }
  for (const [i, c] of content.entries()) {
    if (!isObject(c) || !filled(c.type) || !filled(c.value)) {
      return { message: 'The content value must be a string at least one character in length.', field: `content.${i}.value`, help: `${SENDGRID_HELP}#message.content.value` };
    }
  }
  return null;
}

function sendgrid(req: IncomingMessage, res: ServerResponse, raw: string, at: number): void {
  counts.sendgrid.requests++;
  if (!SENDGRID_KEY || req.headers.authorization !== `Bearer ${SENDGRID_KEY}`) {
    return refuseSendgrid(res, 401, [{ message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null }]);
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return refuseSendgrid(res, 400, [{ message: 'Bad Request', field: null, help: null }]);
  }
  if (!isObject(body)) return refuseSendgrid(res, 400, [{ message: 'Bad Request', field: null, help: null }]);
  const problem = sendgridProblem(body);
  if (problem) return refuseSendgrid(res, 400, [problem]);

  const text = (body.content as { value: string }[]).map((c) => c.value).join('\n');
  const args = isObject(body.custom_args) ? body.custom_args.rapport_message_id : undefined;
  accept('sendgrid', REF.exec(text)?.[1] ?? (typeof args === 'string' && UUID.test(args) ? args : undefined), at);
  res.writeHead(202, { 'x-message-id': randomBytes(16).toString('base64url').slice(0, 22), 'content-length': '0' });
  res.end();
}

// ---------------------------------------------------------------------------------------------

const server = createServer((req, res) => {
  const at = now();
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const path = (req.url ?? '').split('?')[0]!;
    const raw = Buffer.concat(chunks).toString('utf8');
    const m = TWILIO_PATH.exec(path);
    if (req.method === 'POST' && m) return twilio(req, res, m[1]!, raw, at);
    if (req.method === 'POST' && path === SENDGRID_PATH) return sendgrid(req, res, raw, at);
    if (path === SENDGRID_PATH) return refuseSendgrid(res, 405, [{ message: 'POST method allowed only', field: null, help: null }]);
    return refuseTwilio(res, 404, 20404, `The requested resource ${req.url} was not found`);
  });
});
// Dispatcher batches open hundreds of connections at once.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } satisfies FakeMessage);
});

function report(): FakeReport {
  const cpu = process.cpuUsage(cpuSince);
  const all = Object.values(counts);
  const refused: Record<string, number> = { ...counts.twilio.refused };
  for (const [status, n] of Object.entries(counts.sendgrid.refused)) refused[`sendgrid ${status}`] = n;
  return {
    requests: all.reduce((s, c) => s + c.requests, 0),
    received,
    duplicates: all.reduce((s, c) => s + c.duplicates, 0),
    unmatched: all.reduce((s, c) => s + c.unmatched, 0),
    refused,
    byProvider: counts,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

process.on('message', (cmd: FakeCommand) => {
  if (cmd === 'reset') {
    counts = { twilio: zero(), sendgrid: zero() };
    received = [];
    seen = new Set();
    cpuSince = process.cpuUsage();
    process.send!({ reset: true } satisfies FakeMessage);
  } else if (cmd === 'report') {
    process.send!(report() satisfies FakeMessage);
  } else if (cmd === 'stop') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
