/**
 * Twilio's Messages API on 127.0.0.1, in a process of its own, for bench/dispatch.ts: the
 * workers under measurement pay for a real HTTP round trip, and the fake's CPU is not theirs.
 *
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, Basic auth with the
 * Account SID and Auth Token (FAKE_TWILIO_ACCOUNT_SID, FAKE_TWILIO_AUTH_TOKEN), answered 201 with
 * a Message resource (`SM…` sid, status `queued`) or Twilio's error JSON `{code, message,
 * more_info, status}`: 401/20003 for bad credentials, 404/20404 for another path, 400 for a
 * message Twilio would refuse (21211 To, 21603 From, 21602 Body).
 *
 * For each accepted message it notes when the request arrived (epoch ms, sub-millisecond) and
 * the outbox id the bench put in the body as "ref <uuid>". Run with `node --import tsx` and an
 * IPC channel: it sends `{ url }` once listening, answers 'reset' with `{ reset: true }` once it
 * has forgotten everything, 'report' with what it saw since, and exits on 'stop'.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeCommand = 'reset' | 'report' | 'stop';

export interface FakeReport {
  /** Requests to the Messages resource, accepted or not. */
  requests: number;
  /** Accepted messages: outbox id and arrival time (epoch ms), in arrival order. */
  received: [id: string, at: number][];
  /** Outbox ids accepted more than once. */
  duplicates: number;
  /** Accepted bodies without a "ref <uuid>". */
  unmatched: number;
  /** Refusals by Twilio error code. */
  refused: Record<string, number>;
  /** CPU seconds this process used since the last reset. */
  cpuSeconds: number;
}

export type FakeMessage = { url: string } | { reset: true } | FakeReport;

const ACCOUNT_SID = process.env.FAKE_TWILIO_ACCOUNT_SID ?? '';
const AUTH_TOKEN = process.env.FAKE_TWILIO_AUTH_TOKEN ?? '';
const E164 = /^\+[1-9]\d{6,14}$/;
const REF = /\bref ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/;
const PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const EXPECTED_AUTH = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;

let requests = 0;
let received: [string, number][] = [];
let seen = new Set<string>();
let duplicates = 0;
let unmatched = 0;
let refused: Record<string, number> = {};
let cpuSince = process.cpuUsage();

const now = () => performance.timeOrigin + performance.now();

function refuse(res: ServerResponse, status: number, code: number, message: string): void {
  refused[code] = (refused[code] ?? 0) + 1;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
}

const server = createServer((req, res) => {
  const at = now();
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const m = PATH.exec((req.url ?? '').split('?')[0]!);
    if (req.method !== 'POST' || !m) return refuse(res, 404, 20404, `The requested resource ${req.url} was not found`);
    requests++;
    if (req.headers.authorization !== EXPECTED_AUTH || decodeURIComponent(m[1]!) !== ACCOUNT_SID) return refuse(res, 401, 20003, 'Authenticate');
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const to = form.get('To') ?? '';
    const from = form.get('From');
    const body = form.get('Body') ?? '';
    if (!E164.test(to)) return refuse(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!from && !form.get('MessagingServiceSid')) return refuse(res, 400, 21603, "A 'From' phone number is required.");
    if (!body && !form.get('MediaUrl')) return refuse(res, 400, 21602, 'Message body is required.');

    const ref = REF.exec(body)?.[1];
    if (!ref) unmatched++;
    else {
      if (seen.has(ref)) duplicates++;
      seen.add(ref);
      received.push([ref, at]);
    }
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
  });
});
// Dispatcher batches open hundreds of connections at once.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } satisfies FakeMessage);
});

process.on('message', (cmd: FakeCommand) => {
  if (cmd === 'reset') {
    requests = 0;
    received = [];
    seen = new Set();
    duplicates = 0;
    unmatched = 0;
    refused = {};
    cpuSince = process.cpuUsage();
    process.send!({ reset: true } satisfies FakeMessage);
  } else if (cmd === 'report') {
    const cpu = process.cpuUsage(cpuSince);
    process.send!({ requests, received, duplicates, unmatched, refused, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies FakeMessage);
  } else if (cmd === 'stop') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
