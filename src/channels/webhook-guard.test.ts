import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { BlockedDestinationError, destinationProblem, guardedRequester, NO_PRIVATE, parsePrivateAllowList, type HostLookup } from './webhook-guard.js';

describe('destinationProblem', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.8.9.10', 'a loopback address'],
    ['10.0.0.5', 'a private address'],
    ['172.16.3.4', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['169.254.169.254', 'a link-local address'],
    ['100.64.0.1', 'a carrier-grade NAT address'],
    ['100.127.255.255', 'a carrier-grade NAT address'],
    ['0.0.0.0', 'an unspecified address'],
    ['224.0.0.251', 'a multicast address'],
    ['255.255.255.255', 'the broadcast address'],
    ['240.0.0.1', 'a reserved address (reserved)'],
    ['::1', 'a loopback address'],
    ['::', 'an unspecified address'],
    ['fe80::1', 'a link-local address'],
    ['fc00::1', 'a unique-local address'],
    ['fd12:3456::1', 'a unique-local address'],
    ['ff02::1', 'a multicast address'],
    ['fec0::1', 'a site-local address'],
    ['::ffff:127.0.0.1', 'a loopback address (IPv4-mapped 127.0.0.1)'],
    ['::ffff:a00:5', 'a private address (IPv4-mapped 10.0.0.5)'],
    ['::ffff:169.254.169.254', 'a link-local address (IPv4-mapped 169.254.169.254)'],
    ['64:ff9b::10.0.0.1', 'a private address (NAT64 10.0.0.1)'],
    ['2002:c0a8:0101::1', 'a private address (6to4 192.168.1.1)'],
    ['::7f00:1', 'a loopback address (IPv4-compatible 127.0.0.1)'],
  ])('refuses %s: %s', (address, why) => {
    expect(destinationProblem(address, NO_PRIVATE)).toBe(why);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8'])('lets %s through', (address) => {
    expect(destinationProblem(address, NO_PRIVATE)).toBeNull();
  });

  it('lets through what the allow-list names, and nothing beside it', () => {
    const allow = parsePrivateAllowList('127.0.0.1, 10.1.0.0/16, fd00::/8');
    expect(destinationProblem('127.0.0.1', allow)).toBeNull();
    expect(destinationProblem('::ffff:127.0.0.1', allow)).toBeNull();
    expect(destinationProblem('10.1.200.3', allow)).toBeNull();
    expect(destinationProblem('fd12::1', allow)).toBeNull();
    expect(destinationProblem('127.0.0.2', allow)).toBe('a loopback address');
    expect(destinationProblem('10.2.0.1', allow)).toBe('a private address');
    expect(destinationProblem('::1', allow)).toBe('a loopback address');
    expect(destinationProblem('169.254.169.254', allow)).toBe('a link-local address');
    expect(destinationProblem('169.254.169.254', 'all')).toBeNull();
    expect(destinationProblem('::1', 'all')).toBeNull();
  });
});

describe('parsePrivateAllowList', () => {
  it('reads nothing, all, CIDRs and bare addresses', () => {
    expect(parsePrivateAllowList(undefined)).toEqual([]);
    expect(parsePrivateAllowList('  ')).toEqual([]);
    expect(parsePrivateAllowList('ALL')).toBe('all');
    const list = parsePrivateAllowList('10.0.0.0/8,::1, 192.168.0.0/16');
    expect(list !== 'all' && list.map(([a, bits]) => `${a.toString()}/${bits}`)).toEqual(['10.0.0.0/8', '::1/128', '192.168.0.0/16']);
  });

  it.each(['10/8', '10.0.0.0/33', '::1/129', 'localhost', '10.0.0.0/8/8', '10.0.0.0/', '0x7f.0.0.1', '10.0.0.0/8,'])('refuses %j', (raw) => {
    expect(() => parsePrivateAllowList(raw)).toThrow(/is not a CIDR range or an IP address/);
  });
});

describe('RAPPORT_WEBHOOK_ALLOW_PRIVATE', () => {
  it('is read by loadConfig, and a value that is not CIDRs stops the start', () => {
    expect(loadConfig({}).webhookAllowPrivate).toEqual([]);
    expect(loadConfig({ RAPPORT_WEBHOOK_ALLOW_PRIVATE: 'all' }).webhookAllowPrivate).toBe('all');
    expect(destinationProblem('10.20.0.7', loadConfig({ RAPPORT_WEBHOOK_ALLOW_PRIVATE: '10.20.0.0/16' }).webhookAllowPrivate)).toBeNull();
    expect(() => loadConfig({ RAPPORT_WEBHOOK_ALLOW_PRIVATE: '10.0.0.0/8,intranet' })).toThrow(/^RAPPORT_WEBHOOK_ALLOW_PRIVATE must be .*"intranet" is not a CIDR range/);
  });
});

describe('guardedRequester', () => {
  let server: Server;
  let port: number;
  const seen: { host?: string; headers: IncomingHttpHeaders }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ host: req.headers.host, headers: req.headers });
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    });
    // Both loopbacks, so 127.0.0.1, ::1 and localhost would all get through were they not refused.
    await new Promise<void>((r) => server.listen({ port: 0, host: '::', ipv6Only: false }, r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
  });

  const stub =
    (table: Record<string, string[]>, calls: string[] = []): HostLookup =>
    (hostname) => {
      calls.push(hostname);
      const found = table[hostname];
      if (!found) return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${hostname}`));
      return Promise.resolve(found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
    };

  it('refuses loopback, localhost and private hosts before anything is sent', async () => {
    const request = guardedRequester({ lookup: stub({ 'pricing.internal.test': ['10.0.0.5'], 'dual.example.test': ['93.184.215.14', '192.168.1.20'] }) });
    const refusals: [string, RegExp][] = [
      [`http://127.0.0.1:${port}/`, /^blocked_destination: 127\.0\.0\.1 is a loopback address$/],
      [`http://[::1]:${port}/`, /^blocked_destination: ::1 is a loopback address$/],
      [`http://[::ffff:127.0.0.1]:${port}/`, /^blocked_destination: ::ffff:7f00:1 is a loopback address \(IPv4-mapped 127\.0\.0\.1\)$/],
      [`http://2130706433:${port}/`, /^blocked_destination: 127\.0\.0\.1 is a loopback address$/],
      [`http://pricing.internal.test:${port}/`, /^blocked_destination: pricing\.internal\.test resolves to 10\.0\.0\.5, a private address$/],
      // One public address does not make up for a private one beside it.
      [`http://dual.example.test:${port}/`, /^blocked_destination: dual\.example\.test resolves to 192\.168\.1\.20, a private address$/],
      [`ftp://example.com/`, /^blocked_destination: only http and https URLs are called, not ftp:$/],
      [`data:application/json,%7B%7D`, /^blocked_destination: only http and https URLs are called, not data:$/],
    ];
    for (const [url, message] of refusals) {
      const err = await request(url, { method: 'POST', body: '{}' }, 2000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(BlockedDestinationError);
      expect((err as Error).message, url).toMatch(message);
    }
    expect(seen).toEqual([]);
  });

  it('refuses localhost through the system resolver', async () => {
    const err = await guardedRequester()(`http://localhost:${port}/`, {}, 2000).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^blocked_destination: localhost resolves to (127\.0\.0\.1|::1), a loopback address$/);
    expect(seen).toEqual([]);
  });

  it('connects to the address it checked, resolving once per connection', async () => {
    const calls: string[] = [];
    // hooks.example.test exists only in the stub: reaching the server proves the checked address was used.
    const request = guardedRequester({ allowPrivate: parsePrivateAllowList('127.0.0.1'), lookup: stub({ 'hooks.example.test': ['127.0.0.1'] }, calls) });
    for (let i = 0; i < 2; i++) {
      const res = await request(`http://hooks.example.test:${port}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }, 2000);
      expect(res.status).toBe(200);
      expect(res.text).toBe('{"ok":true}');
    }
    expect(seen.map((s) => s.host)).toEqual([`hooks.example.test:${port}`, `hooks.example.test:${port}`]);
    expect(calls).toEqual(['hooks.example.test']);
    request.close();
  });

  it('lets the allow-list reach a literal loopback address, IPv4 or IPv6, and only the one it names', async () => {
    const request = guardedRequester({ allowPrivate: parsePrivateAllowList('127.0.0.1') });
    expect((await request(`http://127.0.0.1:${port}/`, {}, 2000)).status).toBe(200);
    await expect(request(`http://[::1]:${port}/`, {}, 2000)).rejects.toThrow(/^blocked_destination: ::1 is a loopback address$/);
    expect(seen).toHaveLength(1);
    request.close();
    const v6 = guardedRequester({ allowPrivate: parsePrivateAllowList('::1') });
    expect((await v6(`http://[::1]:${port}/`, {}, 2000)).status).toBe(200);
    expect(seen.map((s) => s.host)).toEqual([`127.0.0.1:${port}`, `[::1]:${port}`]);
    v6.close();
  });
});
