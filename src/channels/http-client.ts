import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

/**
 * The HTTP client provider calls go through. Measured on the dispatch path, WHATWG fetch with an
 * AbortSignal.timeout costs 200–300 µs of CPU per call against 40–60 µs for node:http on a
 * keep-alive agent (request and response objects, streams and a timer signal per call), and a
 * provider call is most of what a send costs. So sends use this; fetch stays for anything this
 * does not handle (multipart bodies) and for tests that pass a fetch of their own.
 */

export interface HttpAnswer {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
}

export interface HttpRequest {
  method?: string;
  headers?: RequestInit['headers'];
  body?: string | Buffer | URLSearchParams | null;
}

export type HttpRequester = (url: string, init: HttpRequest, timeoutMs: number) => Promise<HttpAnswer>;

/** A call given up on: callers map it to a `timeout` failure, as fetch's TimeoutError. */
export class HttpTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export interface KeepAliveOptions {
  /** Connections kept open per provider origin; a batch of 500 sends shares them. */
  maxSockets?: number;
  /** Resolves host names for new connections (channels/webhook-guard.ts checks addresses in it). */
  lookup?: LookupFunction;
}

/** A requester with keep-alive agents of its own; close() ends their idle connections. */
export function keepAliveRequester(opts: KeepAliveOptions = {}): HttpRequester & { close(): void } {
  const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64, scheduling: 'lifo' as const, ...(opts.lookup ? { lookup: opts.lookup } : {}) };
  const httpAgent = new http.Agent(agentOpts);
  const httpsAgent = new https.Agent(agentOpts);

  const request = (url: string, init: HttpRequest, timeoutMs: number): Promise<HttpAnswer> =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const secure = u.protocol === 'https:';
      if (!secure && u.protocol !== 'http:') {
        reject(new Error(`unsupported protocol ${u.protocol}`));
        return;
      }
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      let body: string | Buffer | undefined;
      if (init.body instanceof URLSearchParams) {
        body = init.body.toString();
        headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
      } else if (typeof init.body === 'string') {
        body = init.body;
        headers['content-type'] ??= 'text/plain;charset=UTF-8';
      } else if (init.body) body = init.body;
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));

      let settled = false;
      const req = (secure ? https : http).request(
        {
          protocol: u.protocol,
          // node:http wants an IPv6 literal without the URL's brackets.
          hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: u.port || undefined,
          path: u.pathname + u.search,
          method: init.method ?? 'GET',
          headers,
          agent: secure ? httpsAgent : httpAgent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const h = res.headers;
            resolve({
              status: res.statusCode ?? 0,
              headers: {
                get(name: string): string | null {
                  const v = h[name.toLowerCase()];
                  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
                },
              },
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
          res.on('error', fail);
        },
      );
      // One timer for the whole exchange, connection included, as fetch's signal would.
      const timer = setTimeout(() => {
        if (settled) return;
        req.destroy(new HttpTimeoutError(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      function fail(err: Error): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
      req.on('error', fail);
      req.end(body);
    });

  return Object.assign(request, {
    close(): void {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  });
}

/** Whether the requester can carry this body; FormData, Blob and streams go through fetch. */
export function requesterCanSend(body: unknown): body is HttpRequest['body'] {
  return body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body) || body instanceof URLSearchParams;
}
