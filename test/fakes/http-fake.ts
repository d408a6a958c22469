import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InboundRequest } from '../../src/channels/types.js';

/**
 * The HTTP side the provider fakes share: a server on 127.0.0.1 at a free port that reads each
 * request's body whole before handing it to the fake, can hold an answer back (a provider that
 * answers late or never), and on close cuts whatever it still holds so no test waits on a socket.
 * What a provider checks and answers stays in each fake.
 */

/** A request as it reached the fake, its body read whole. */
export interface FakeRequest {
  method: string;
  /** The request target as sent, query included. */
  url: string;
  /** The target's path alone. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body as UTF-8. */
  body: string;
}

export type FakeHandler = (req: FakeRequest, res: ServerResponse) => void | Promise<void>;

/** An answer scripted for the next request: a status and body, extra headers, and how long to hold it. */
export interface ScriptedAnswer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Hold the request this long before answering (longer than the adapter's timeout: a timeout). */
  hangMs?: number;
}

export class HttpFake {
  private readonly held = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    /** The root URL, `http://127.0.0.1:<port>`. */
    readonly url: string,
  ) {}

  /** Listens on 127.0.0.1 at a port the system picks, passing each request to `handler`. */
  static async listen(handler: FakeHandler): Promise<HttpFake> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new HttpFake(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void fake.receive(req, res, handler));
    return fake;
  }

  /** Never answers: the client waits until it gives up or the fake closes. */
  hang(res: ServerResponse): void {
    this.held.add(res);
  }

  /** Holds the answer for `ms`; false when the client has gone meanwhile, leaving no one to answer. */
  async delay(res: ServerResponse, ms: number): Promise<boolean> {
    this.held.add(res);
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.held.delete(res);
    return !res.destroyed;
  }

  /** Answers with a scripted answer once its hold is over; `send` writes it (JSON by default). */
  async answer(res: ServerResponse, a: ScriptedAnswer, send: typeof sendJson = sendJson): Promise<void> {
    if (a.hangMs && !(await this.delay(res, a.hangMs))) return;
    send(res, a.status ?? 200, a.body ?? {}, a.headers);
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.held.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(req: IncomingMessage, res: ServerResponse, handler: FakeHandler): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = req.url ?? '/';
    await handler({ method: req.method ?? '', url, path: new URL(url, 'http://x').pathname, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, res);
  }
}

/** A JSON answer; `headers` may replace the content type. A response whose client has gone is left alone. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A JSON webhook as the provider puts it on the wire. */
export interface JsonWebhook {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A JSON webhook as Rapport's inbound route hands it to an adapter: headers lower-cased, body parsed when it is JSON. */
export function jsonWebhookToInbound(w: JsonWebhook, receivedAt = new Date()): InboundRequest {
  let json: unknown;
  try {
    json = w.body ? JSON.parse(w.body) : undefined;
  } catch {
    json = undefined;
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(w.headers)) headers[k.toLowerCase()] = v;
  return { method: w.method, url: w.url, headers, rawBody: Buffer.from(w.body, 'utf8'), query: Object.fromEntries(new URL(w.url).searchParams), json, receivedAt };
}
