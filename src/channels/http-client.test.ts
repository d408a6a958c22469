import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callProvider } from './http.js';
import { keepAliveRequester } from './http-client.js';
import type { SendContext } from './types.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  socket: number;
}

let server: http.Server;
let base: string;
const seen: Seen[] = [];
const sockets = new WeakMap<object, number>();
let socketCount = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (!sockets.has(req.socket)) sockets.set(req.socket, ++socketCount);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: sockets.get(req.socket)! });
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 500);
      if (req.url === '/limited') {
        res.writeHead(429, { 'retry-after': '7', 'x-multi': ['a', 'b'] });
        return void res.end('{"code":20429}');
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sid: 'SM1', got: body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('the keep-alive provider client', () => {
  it('sends form and JSON bodies with the content type fetch would, and reuses its connection', async () => {
    const request = keepAliveRequester();
    try {
      const form = await request(`${base}/form?x=1`, { method: 'POST', headers: { authorization: 'Basic abc' }, body: new URLSearchParams({ To: '+14155550100', Body: 'Hi & bye' }) }, 1000);
      expect(form.status).toBe(201);
      expect(JSON.parse(form.text)).toEqual({ sid: 'SM1', got: 'To=%2B14155550100&Body=Hi+%26+bye' });
      expect(form.headers.get('Content-Type')).toBe('application/json');
      const json = await request(`${base}/json`, { method: 'POST', headers: new Headers({ 'content-type': 'application/json' }), body: '{"a":1}' }, 1000);
      expect(json.status).toBe(201);
      const [a, b] = seen.slice(-2);
      expect(a).toMatchObject({ method: 'POST', url: '/form?x=1', headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8', authorization: 'Basic abc', 'content-length': '33' } });
      expect(b!.headers['content-type']).toBe('application/json');
      expect(b!.socket).toBe(a!.socket);
    } finally {
      request.close();
    }
  });

  it('gives up after the timeout and reports what callProvider maps to timeout and network failures', async () => {
    const request = keepAliveRequester();
    const ctx = { request, fetch, timeoutMs: 100, publicUrl: null } as unknown as SendContext;
    try {
      expect(await callProvider(ctx, `${base}/slow`, { method: 'GET' })).toEqual({ ok: false, permanent: false, code: 'timeout', error: 'no answer within 100 ms' });
      const limited = await callProvider(ctx, `${base}/limited`, { method: 'POST', body: 'x' });
      expect(limited).toMatchObject({ status: 429, json: { code: 20429 } });
      expect('headers' in limited && limited.headers.get('retry-after')).toBe('7');
      expect('headers' in limited && limited.headers.get('x-multi')).toBe('a, b');
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      expect(await callProvider(ctx, `http://127.0.0.1:${port}/`, { method: 'GET' })).toEqual({ ok: false, permanent: false, code: 'network', error: 'network: ECONNREFUSED' });
    } finally {
      request.close();
    }
  });
});
