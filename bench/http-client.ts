/**
 * `npm run bench:http`: what one provider call costs the sending process, WHATWG fetch with an
 * AbortSignal timeout (what the adapters used first) against Rapport's keep-alive client
 * (src/channels/http-client.ts), both against a local server shaped like Twilio's Messages API.
 * CPU µs per request covers client and server, which run in this one process; the server's part
 * is the same in every row, so the differences are the clients'.
 *
 *   npm run bench:http -- [--requests 20000] [--concurrency 50] [--rounds 3]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { keepAliveRequester } from '../src/channels/http-client.js';

const { values } = parseArgs({ options: { requests: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.requests ?? 20_000);
const CONCURRENCY = Number(values.concurrency ?? 50);
const ROUNDS = Number(values.rounds ?? 3);

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","price":null}');
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/2010-04-01/Accounts/AC0/Messages.json`;
const headers = { authorization: `Basic ${Buffer.from('AC0:token').toString('base64')}` };
const form = () => new URLSearchParams({ To: '+14155550100', From: '+14155550199', Body: 'Hello from the benchmark' });

const request = keepAliveRequester();
const clients: Record<string, () => Promise<unknown>> = {
  'fetch + AbortSignal.timeout': async () => (await fetch(url, { method: 'POST', headers, body: form(), signal: AbortSignal.timeout(15_000) })).text(),
  'keep-alive client (http-client.ts)': () => request(url, { method: 'POST', headers, body: form() }, 15_000),
};

async function measure(call: () => Promise<unknown>): Promise<{ perSecond: number; cpuMicros: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < N) await call();
    }),
  );
  const used = process.cpuUsage(cpu);
  return { perSecond: N / ((performance.now() - start) / 1000), cpuMicros: (used.user + used.system) / N };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { perSecond: number; cpuMicros: number }[]> = {};
for (const call of Object.values(clients)) for (let i = 0; i < 1000; i++) await call();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, call] of Object.entries(clients)) (results[name] ??= []).push(await measure(call));
}
console.log(`\n${N} POSTs, ${CONCURRENCY} at a time, median of ${ROUNDS} rounds\n`);
console.log('| client | requests/s | CPU µs per request (client + server) |');
console.log('|---|---:|---:|');
const summary: Record<string, { perSecond: number; cpuMicros: number }> = {};
for (const [name, rs] of Object.entries(results)) {
  summary[name] = { perSecond: Math.round(median(rs.map((r) => r.perSecond))), cpuMicros: Math.round(median(rs.map((r) => r.cpuMicros))) };
  console.log(`| ${name} | ${summary[name].perSecond.toLocaleString('en-US')} | ${summary[name].cpuMicros} |`);
}
console.log(JSON.stringify({ bench: 'http-client', requests: N, concurrency: CONCURRENCY, rounds: ROUNDS, results: summary }));
request.close();
server.close();
