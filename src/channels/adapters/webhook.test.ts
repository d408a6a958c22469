import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeWebhookReceiver } from '../../../test/fakes/webhook-receiver.js';
import { oneByteChanged } from '../../../test/helpers/adapters.js';
import { guardedRequester, parsePrivateAllowList } from '../webhook-guard.js';
import type { OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { guardedWebhookAdapter, newWebhookSecret, signWebhook, verifyWebhookSignature, webhookAdapter as strictAdapter } from './webhook.js';

const SECRET = newWebhookSecret();
// The receiver listens on loopback, which the webhook channel reaches only when the operator allows it.
const webhookAdapter = guardedWebhookAdapter(guardedRequester({ allowPrivate: parsePrivateAllowList('127.0.0.1') }));

function account(credentials: Record<string, string> = { signing_secret: SECRET }, config: Record<string, unknown> = {}): ProviderAccount {
  return { id: 'acc_hook', tenant_id: 't1', name: 'hooks', kind: 'webhook', channel: 'webhook', priority: 0, credentials, config };
}

function ctx(acc = account(), timeoutMs = 2000): SendContext {
  return { account: acc, fetch: globalThis.fetch, publicUrl: null, timeoutMs };
}

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    tenant_id: 't1',
    channel: 'webhook',
    to: null,
    idempotency_key: 'enr1:notify:0',
    subject: 'Order shipped',
    body: 'Your order is on its way',
    options: { data: { order: 42, items: ['a', 'b'] } },
    ...overrides,
  };
}

describe('Standard Webhooks signing', () => {
  it('matches the reference library known-answer vector', () => {
    // From standard-webhooks/libraries/javascript/src/webhook.test.ts ("sign function works").
    expect(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('verifies a fresh signature and refuses missing, stale, future and forged ones', () => {
    const body = '{"hello":"world"}';
    const ts = 1_700_000_000;
    const now = ts * 1000;
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(SECRET, 'msg_1', ts, body) };
    expect(verifyWebhookSignature(SECRET, headers, body, now)).toBe(true);
    expect(verifyWebhookSignature(SECRET, headers, Buffer.from(body), new Date(now + 299_000))).toBe(true);
    expect(verifyWebhookSignature(SECRET, { ...headers, 'webhook-signature': undefined }, body, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, { ...headers, 'webhook-id': undefined }, body, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, { ...headers, 'webhook-timestamp': 'yesterday' }, body, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, headers, body, now + 301_000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, headers, body, now - 301_000)).toBe(false);
    expect(verifyWebhookSignature(newWebhookSecret(), headers, body, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, { ...headers, 'webhook-signature': 'v1,' }, body, now)).toBe(false);
    expect(verifyWebhookSignature('not base64 at all!', headers, body, now)).toBe(false);
  });

  it('accepts any matching v1 signature in a space-separated list, ignores other versions, reads any header casing', () => {
    const body = 'x';
    const ts = 1_700_000_000;
    const good = signWebhook(SECRET, 'msg_2', ts, body);
    const other = signWebhook(newWebhookSecret(), 'msg_2', ts, body);
    const headers = { 'Webhook-Id': 'msg_2', 'WEBHOOK-TIMESTAMP': String(ts), 'webhook-signature': `${other} v1a,${good.slice(3)} ${good}` };
    expect(verifyWebhookSignature(SECRET, headers, body, ts * 1000)).toBe(true);
    expect(verifyWebhookSignature(SECRET, { ...headers, 'webhook-signature': `v1a,${good.slice(3)}` }, body, ts * 1000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, new Headers(headers), body, ts * 1000)).toBe(true);
  });

  it('refuses to sign an id with a full stop, which would make the signed content ambiguous', () => {
    expect(() => signWebhook(SECRET, 'a.b', 1, 'x')).toThrow(/"\."/);
    expect(verifyWebhookSignature(SECRET, { 'webhook-id': 'a.b', 'webhook-timestamp': '1', 'webhook-signature': 'v1,AAAA' }, 'x', 1000)).toBe(false);
  });

  const secretArb = fc.uint8Array({ minLength: 24, maxLength: 64 }).map((b) => `whsec_${Buffer.from(b).toString('base64')}`);
  const idArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
  const tsArb = fc.integer({ min: 1_000_000_000, max: 4_000_000_000 });
  const bodyArb = fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b));

  it('property: verify(sign(x)) holds for any body, secret, id and timestamp within the window', () => {
    fc.assert(
      fc.property(secretArb, idArb, tsArb, bodyArb, fc.integer({ min: -300, max: 300 }), (secret, id, ts, body, skew) => {
        const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, id, ts, body) };
        return verifyWebhookSignature(secret, headers, body, (ts + skew) * 1000);
      }),
      { numRuns: 300 },
    );
  });

  it('property: changing one byte of the body, the timestamp or the id breaks the signature', () => {
    fc.assert(
      fc.property(
        secretArb,
        idArb,
        tsArb,
        bodyArb.filter((b) => b.length > 0),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: -300, max: 300 }).filter((d) => d !== 0),
        idArb,
        (secret, id, ts, body, at, flip, dt, otherId) => {
          const signature = signWebhook(secret, id, ts, body);
          const tampered = oneByteChanged(body, at, flip);
          const base = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature };
          const now = ts * 1000;
          return (
            !verifyWebhookSignature(secret, base, tampered, now) &&
            !verifyWebhookSignature(secret, { ...base, 'webhook-timestamp': String(ts + dt) }, body, now) &&
            (otherId === id || !verifyWebhookSignature(secret, { ...base, 'webhook-id': otherId }, body, now))
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: a correct signature older than 5 minutes fails', () => {
    fc.assert(
      fc.property(secretArb, idArb, tsArb, bodyArb, fc.integer({ min: 301, max: 10_000_000 }), (secret, id, ts, body, age) => {
        const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, id, ts, body) };
        return !verifyWebhookSignature(secret, headers, body, (ts + age) * 1000);
      }),
      { numRuns: 200 },
    );
  });
});

describe('webhookAdapter.check', () => {
  it('accepts a whsec_ secret of 24 to 64 bytes and an http(s) config.url', () => {
    expect(webhookAdapter.check({ signing_secret: SECRET }, { url: 'https://example.com/hook' })).toEqual([]);
    expect(webhookAdapter.check({ signing_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }, {})).toEqual([]);
  });

  it('names each bad field', () => {
    const fields = (creds: Record<string, string>, config: Record<string, unknown> = {}) => webhookAdapter.check(creds, config).map((p) => p.field);
    expect(fields({})).toEqual(['credentials.signing_secret']);
    expect(fields({ signing_secret: randomBytes(32).toString('base64') })).toEqual(['credentials.signing_secret']);
    expect(fields({ signing_secret: 'whsec_***' })).toEqual(['credentials.signing_secret']);
    expect(fields({ signing_secret: `whsec_${randomBytes(16).toString('base64')}` })).toEqual(['credentials.signing_secret']);
    expect(fields({ signing_secret: `whsec_${randomBytes(65).toString('base64')}` })).toEqual(['credentials.signing_secret']);
    expect(fields({ signing_secret: SECRET, previous_signing_secret: 'whsec_x' })).toEqual(['credentials.previous_signing_secret']);
    expect(fields({ signing_secret: SECRET }, { url: 'ftp://example.com' })).toEqual(['config.url']);
    expect(fields({ signing_secret: SECRET }, { url: 42 })).toEqual(['config.url']);
  });
});

describe('webhookAdapter.send', () => {
  let receiver: FakeWebhookReceiver;

  beforeEach(async () => {
    receiver = await new FakeWebhookReceiver({ secret: SECRET }).start();
  });
  afterEach(async () => {
    await receiver.close();
  });

  it('POSTs the message as signed JSON and returns the webhook id as the provider id', async () => {
    const before = Math.floor(Date.now() / 1000);
    const msg = message({ url: receiver.url('/orders?source=rapport') });
    const result = await webhookAdapter.send(msg, ctx());
    expect(result).toEqual({ ok: true, provider_message_id: msg.id, status: 'delivered' });

    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.verified).toBe(true);
    expect(got.method).toBe('POST');
    expect(got.path).toBe('/orders?source=rapport');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('Rapport-Webhook/1');
    expect(got.headers['webhook-id']).toBe(msg.id);
    const ts = Number(got.headers['webhook-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(before + 5);
    expect(got.json).toEqual({
      id: msg.id,
      idempotency_key: 'enr1:notify:0',
      tenant_id: 't1',
      channel: 'webhook',
      to: null,
      subject: 'Order shipped',
      body: 'Your order is on its way',
      data: { order: 42, items: ['a', 'b'] },
      sent_at: new Date(ts * 1000).toISOString(),
    });
  });

  it('keeps the same webhook-id across retries so the receiver can deduplicate', async () => {
    const msg = message({ url: receiver.url() });
    receiver.next({ status: 503 });
    const first = await webhookAdapter.send(msg, ctx());
    const second = await webhookAdapter.send(msg, ctx());
    expect(first.ok).toBe(false);
    expect(second).toMatchObject({ ok: true, provider_message_id: msg.id });
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([msg.id, msg.id]);
  });

  it('falls back to config.url and omits subject/body when the message has none', async () => {
    const msg = message({ subject: undefined, body: undefined, options: undefined });
    const result = await webhookAdapter.send(msg, ctx(account(undefined, { url: receiver.url('/from-config') })));
    expect(result.ok).toBe(true);
    expect(receiver.received[0]!.path).toBe('/from-config');
    expect(receiver.received[0]!.json).not.toHaveProperty('subject');
    expect(receiver.received[0]!.json).not.toHaveProperty('body');
    expect(receiver.received[0]!.json).toMatchObject({ data: null });
  });

  it('signs with the previous secret as well while it is rotated out', async () => {
    const old = newWebhookSecret();
    const oldReceiver = await new FakeWebhookReceiver({ secret: old }).start();
    try {
      const acc = account({ signing_secret: SECRET, previous_signing_secret: old });
      expect((await webhookAdapter.send(message({ url: oldReceiver.url() }), ctx(acc))).ok).toBe(true);
      expect((await webhookAdapter.send(message({ url: receiver.url() }), ctx(acc))).ok).toBe(true);
      expect(oldReceiver.received[0]!.verified).toBe(true);
      expect(String(oldReceiver.received[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
      expect(receiver.received[0]!.verified).toBe(true);
    } finally {
      await oldReceiver.close();
    }
  });

  it('fails without a URL (config, permanent) and on a rendered URL that is not http(s) (invalid_recipient)', async () => {
    expect(await webhookAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'config' });
    expect(await webhookAdapter.send(message({ url: 'javascript:alert(1)' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(await webhookAdapter.send(message({ url: 'not a url' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
  });

  it('treats 5xx as temporary, with Retry-After when the receiver gives one', async () => {
    receiver.next({ status: 500, body: 'boom' }, { status: 503, headers: { 'retry-after': '12' } });
    expect(await webhookAdapter.send(message({ url: receiver.url() }), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server', provider_code: '500' });
    const second = await webhookAdapter.send(message({ url: receiver.url() }), ctx());
    expect(second).toMatchObject({ ok: false, permanent: false, code: 'server', retry_after_ms: 12_000 });
  });

  it('honours Retry-After on 429', async () => {
    receiver.next({ status: 429, headers: { 'retry-after': '7' } });
    expect(await webhookAdapter.send(message({ url: receiver.url() }), ctx())).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 7000 });
  });

  it('treats 410 Gone as a permanent config failure: the endpoint asked to stop', async () => {
    receiver.next({ status: 410, body: 'gone' });
    expect(await webhookAdapter.send(message({ url: receiver.url() }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'config', provider_code: '410' });
  });

  it('times out on a receiver that never answers, as a temporary failure', async () => {
    receiver.next({ hang: true });
    const started = Date.now();
    const result = await webhookAdapter.send(message({ url: receiver.url() }), ctx(account(), 300));
    expect(result).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses other 4xx for good, and maps 401 from a receiver with another secret to auth', async () => {
    receiver.next({ status: 404 }, { status: 422, body: '{"error":"bad"}' });
    expect(await webhookAdapter.send(message({ url: receiver.url() }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '404' });
    expect(await webhookAdapter.send(message({ url: receiver.url() }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '422' });
    const wrong = await webhookAdapter.send(message({ url: receiver.url() }), ctx(account({ signing_secret: newWebhookSecret() })));
    expect(wrong).toMatchObject({ ok: false, permanent: false, code: 'auth' });
    expect(receiver.received.at(-1)!.verified).toBe(false);
  });

  it('does not follow redirects', async () => {
    receiver.next({ status: 302, headers: { location: receiver.url('/elsewhere') } });
    const result = await webhookAdapter.send(message({ url: receiver.url() }), ctx());
    expect(result).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '302' });
    expect(receiver.received).toHaveLength(1);
  });

  it('reports a refused connection as a temporary network failure', async () => {
    const url = receiver.url();
    await receiver.close();
    expect(await webhookAdapter.send(message({ url }), ctx())).toMatchObject({ ok: false, permanent: false, code: 'network' });
  });
});

describe('webhook channel destinations', () => {
  let receiver: FakeWebhookReceiver;
  beforeEach(async () => {
    receiver = await new FakeWebhookReceiver({ secret: SECRET }).start();
  });
  afterEach(async () => {
    await receiver.close();
  });

  const resolvingTo = (address: string) => async (hostname: string) => {
    if (hostname !== 'hooks.example.test') throw new Error(`unexpected lookup of ${hostname}`);
    return [{ address, family: 4 }];
  };

  it('refuses loopback for good by default, whatever fetch the router hands it, and nothing arrives', async () => {
    let fetched = 0;
    const tell: typeof fetch = (input, init) => {
      fetched++;
      return globalThis.fetch(input, init);
    };
    const result = await strictAdapter.send(message({ url: receiver.url() }), { ...ctx(), fetch: tell });
    expect(result).toEqual({ ok: false, permanent: true, error: expect.stringMatching(/^blocked_destination: 127\.0\.0\.1 is a loopback address/) });
    // The account's URL is guarded as the step's is.
    const fromConfig = await strictAdapter.send(message({ url: undefined }), ctx(account(undefined, { url: receiver.url('/from-config') })));
    expect(fromConfig).toMatchObject({ ok: false, permanent: true, error: expect.stringMatching(/^blocked_destination:/) });
    expect(fetched).toBe(0);
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses a name resolving to a private address, and reaches it when the allow-list says so', async () => {
    const port = new URL(receiver.url()).port;
    const url = `http://hooks.example.test:${port}/hooks/rapport`;
    const refused = guardedWebhookAdapter(guardedRequester({ lookup: resolvingTo('10.1.2.3') }));
    expect(await refused.send(message({ url }), ctx())).toEqual({ ok: false, permanent: true, error: 'blocked_destination: hooks.example.test resolves to 10.1.2.3, a private address' });
    const notListed = guardedWebhookAdapter(guardedRequester({ allowPrivate: parsePrivateAllowList('10.0.0.0/8'), lookup: resolvingTo('127.0.0.1') }));
    expect(await notListed.send(message({ url }), ctx())).toMatchObject({ ok: false, permanent: true, error: expect.stringMatching(/^blocked_destination: hooks\.example\.test resolves to 127\.0\.0\.1/) });
    expect(receiver.received).toHaveLength(0);

    const allowed = guardedWebhookAdapter(guardedRequester({ allowPrivate: parsePrivateAllowList('127.0.0.0/8'), lookup: resolvingTo('127.0.0.1') }));
    expect(await allowed.send(message({ url }), ctx())).toMatchObject({ ok: true });
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.verified).toBe(true);
  });
});
