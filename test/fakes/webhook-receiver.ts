import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpFake, sendJson } from './http-fake.js';

/**
 * A tenant's webhook endpoint: a real HTTP server on 127.0.0.1 that checks every request's
 * Standard Webhooks signature the way a receiver following the spec would (its own HMAC code,
 * deliberately not Rapport's, so a signing bug cannot verify itself), records it, and answers
 * 2xx, or what a test scripted: a 5xx, 410 Gone, 429 with Retry-After, a redirect, or no answer.
 */

export interface ReceivedWebhook {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  /** The signature checked out against the receiver's secret and its clock. */
  verified: boolean;
  /** Why it did not, when it did not. */
  problem?: string;
}

export type ReceiverScript =
  | { status: number; body?: string; headers?: Record<string, string> }
  | { hang: true };

export interface WebhookReceiverOptions {
  /** The `whsec_` secret the endpoint was given. */
  secret: string;
  /** The receiver's clock in ms (tests move it to age a delivery); default Date.now. */
  now?: () => number;
  /** Answer 401 to requests whose signature fails, as a careful receiver does; default true. */
  rejectUnsigned?: boolean;
}

const TOLERANCE_SECONDS = 300;

/** The receiver side of the spec, written out independently of src/channels/adapters/webhook.ts. */
export function checkStandardSignature(secret: string, headers: IncomingHttpHeaders, body: string, nowMs: number): string | null {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return 'missing webhook-id, webhook-timestamp or webhook-signature';
  const seconds = Number.parseInt(ts, 10);
  if (!Number.isFinite(seconds) || String(seconds) !== ts) return 'webhook-timestamp is not integer seconds';
  const now = Math.floor(nowMs / 1000);
  if (now - seconds > TOLERANCE_SECONDS) return 'timestamp too old';
  if (seconds - now > TOLERANCE_SECONDS) return 'timestamp too new';
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = Buffer.from(createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64'));
  for (const versioned of sig.split(' ')) {
    const [version, value] = versioned.split(',');
    if (version !== 'v1' || value === undefined) continue;
    const given = Buffer.from(value);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
  }
  return 'no matching v1 signature';
}

export class FakeWebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly script: ReceiverScript[] = [];
  private http: HttpFake | null = null;

  constructor(private readonly opts: WebhookReceiverOptions) {}

  /** The endpoint's URL; `path` defaults to /hooks/rapport. */
  url(path = '/hooks/rapport'): string {
    return `${this.http?.url ?? 'http://127.0.0.1:0'}${path}`;
  }

  /** Answers the next requests with these, in order, before going back to 204. */
  next(...answers: ReceiverScript[]): this {
    this.script.push(...answers);
    return this;
  }

  async start(): Promise<this> {
    const http = await HttpFake.listen(({ method, url, headers, body }, res) => {
      const problem = checkStandardSignature(this.opts.secret, headers, body, (this.opts.now ?? Date.now)());
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const record: ReceivedWebhook = { method, path: url, headers, body, json, verified: problem === null };
      if (problem) record.problem = problem;
      this.received.push(record);

      const scripted = this.script.shift();
      if (scripted && 'hang' in scripted) return http.hang(res);
      if (scripted) {
        res.writeHead(scripted.status, scripted.headers ?? {});
        res.end(scripted.body ?? '');
        return;
      }
      if (problem && this.opts.rejectUnsigned !== false) return sendJson(res, 401, { error: problem });
      res.writeHead(204);
      res.end();
    });
    this.http = http;
    return this;
  }

  async close(): Promise<void> {
    await this.http?.close();
  }
}
