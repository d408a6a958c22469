import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_VONAGE_WEBHOOK_URL, VonageFake, inboundSms, signedWebhook, smsStatus, toInboundRequest, vonageJwt, vonageProblem, type VonageWebhookAccount } from '../../../test/fakes/vonage.js';
import { oneByteChanged } from '../../../test/helpers/adapters.js';
import type { OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { verifyHs256, vonageSmsAdapter as adapter } from './vonage-sms.js';

const API_KEY = 'a1b2c3d4';
const API_SECRET = 'Zx9Yw8Vu7Ts6Rq5P';
const SIGNATURE_SECRET = 'sig-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const FROM = '+447700900001';
const inbound = adapter.inbound!;

let fake: VonageFake;

beforeAll(async () => {
  fake = await VonageFake.start({ apiKey: API_KEY, apiSecret: API_SECRET, barred: ['447700900666'] });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
  fake.received.length = 0;
});

function account(over: Partial<ProviderAccount> = {}, config: Record<string, unknown> = {}): ProviderAccount {
  return {
    id: 'acc_vonage_1',
    tenant_id: 'ten_1',
    name: 'Vonage UK',
    kind: 'vonage',
    channel: 'sms',
    priority: 1,
    credentials: { api_key: API_KEY, api_secret: API_SECRET, signature_secret: SIGNATURE_SECRET },
    config: { from: FROM, base_url: fake.url, ...config },
    ...over,
  };
}

function ctx(acc = account(), opts: { timeoutMs?: number; publicUrl?: string | null } = {}): SendContext {
  return { account: acc, fetch, publicUrl: opts.publicUrl === undefined ? 'https://rapport.example.com' : opts.publicUrl, timeoutMs: opts.timeoutMs ?? 2000 };
}

function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: 'msg_01', tenant_id: 'ten_1', channel: 'sms', to: '+447700900000', idempotency_key: 'enr_1:n1:0', body: 'Your table for 2 is booked for 7pm.', ...over };
}

describe('check', () => {
  it('accepts a complete account, with a number or an alphanumeric sender', () => {
    expect(adapter.check(account().credentials, { from: FROM })).toEqual([]);
    expect(adapter.check(account().credentials, { from: 'Rapport' })).toEqual([]);
  });

  it('names each bad field', () => {
    const problems = adapter.check({ api_key: '' }, { from: 'A sender that is too long', base_url: 'nope', rate_per_second: 0 });
    expect(problems.map((p) => p.field).sort()).toEqual(['config.base_url', 'config.from', 'config.rate_per_second', 'credentials.api_key', 'credentials.api_secret', 'credentials.signature_secret']);
  });
});

describe('send', () => {
  it('posts the SMS with Basic auth and returns the message_uuid', async () => {
    const r = await adapter.send(message(), ctx());
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(r).toEqual({ ok: true, provider_message_id: req.messageUuid });
    expect(req.path).toBe('/v1/messages');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64')}`);
    expect(req.body).toEqual({
      message_type: 'text',
      channel: 'sms',
      to: '447700900000',
      from: '447700900001',
      text: 'Your table for 2 is booked for 7pm.',
      client_ref: 'msg_01',
      webhook_url: 'https://rapport.example.com/webhooks/vonage/acc_vonage_1',
      webhook_version: 'v1',
    });
  });

  it('sends an alphanumeric sender as it is, and no webhook_url without a public URL', async () => {
    await adapter.send(message(), ctx(account({}, { from: 'Rapport' }), { publicUrl: null }));
    expect(fake.requests[0]!.body.from).toBe('Rapport');
    expect(fake.requests[0]!.body.webhook_url).toBeUndefined();
  });

  it('refuses, without calling Vonage, what Vonage would refuse', async () => {
    expect(await adapter.send(message({ to: 'not-a-number' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(await adapter.send(message({ body: '  ' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
    expect(await adapter.send(message({ body: 'x'.repeat(1001) }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected', error: expect.stringContaining('1000') });
    expect(fake.received).toHaveLength(0);
  });

  describe('failures', () => {
    it('5xx is temporary', async () => {
      fake.script({ status: 500, body: vonageProblem('https://developer.vonage.com/api-errors/messages#1030', 'Internal error', 'There was an error processing your request in the Platform.') });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
      fake.script({ status: 503, body: '<html>unavailable</html>' });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
    });

    it('a hang past the timeout is a temporary timeout', async () => {
      fake.script({ hangMs: 1500 });
      expect(await adapter.send(message(), ctx(account(), { timeoutMs: 200 }))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    });

    it('429 is rate_limited, honouring Retry-After', async () => {
      fake.throttleNext(3);
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 3000, provider_code: 'throttled' });
      fake.throttleNext();
      expect(await adapter.send(message(), ctx())).toMatchObject({ code: 'rate_limited', retry_after_ms: 1000 });
    });

    it('wrong credentials are auth, temporary so another account can take over', async () => {
      const r = await adapter.send(message(), ctx(account({ credentials: { api_key: API_KEY, api_secret: 'wrong', signature_secret: SIGNATURE_SECRET } })));
      expect(r).toMatchObject({ ok: false, permanent: false, code: 'auth', provider_code: 'unauthorized' });
    });

    it('an invalid `to` (1150 naming to) is invalid_recipient', async () => {
      // Passes the adapter's own check (7 to 15 digits) but not Vonage's, which the fake keeps stricter.
      fake.script({ status: 422, body: vonageProblem('https://developer.vonage.com/api-errors/messages#1150', 'Invalid params', 'The value of one or more parameters is invalid.', { invalid_parameters: [{ name: 'to', reason: 'Invalid number' }] }) });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient', provider_code: '1150' });
    });

    it('a barred number (1050) is blocked; another invalid parameter is rejected', async () => {
      expect(await adapter.send(message({ to: '+447700900666' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'blocked', provider_code: '1050' });
      fake.script({ status: 422, body: vonageProblem('https://developer.vonage.com/api-errors/messages#1150', 'Invalid params', 'The value of one or more parameters is invalid.', { invalid_parameters: [{ name: 'text', reason: 'too long' }] }) });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected', error: expect.stringContaining('text: too long') });
    });

    it('low balance (402) and a refused sender ID (1120) are config', async () => {
      fake.script({ status: 402, body: vonageProblem('https://developer.vonage.com/api-errors#low-balance', 'Low balance', 'This request could not be performed due to your account balance being low.') });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'config', provider_code: 'low-balance' });
      fake.script({ status: 422, body: vonageProblem('https://developer.vonage.com/api-errors/messages#1120', 'Illegal Sender Address - rejected', 'Due to local regulations, the SenderID you set in from in the request was not accepted.') });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'config', provider_code: '1120' });
    });
  });
});

// ---- inbound ----

const hook: VonageWebhookAccount = { apiKey: API_KEY, signatureSecret: SIGNATURE_SECRET };
const NOW = new Date('2026-03-02T10:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const at = (w: ReturnType<typeof signedWebhook>, receivedAt = NOW) => toInboundRequest(w, receivedAt);

describe('route', () => {
  it('routes inbound SMS by the number they went to, statuses by the sending number', () => {
    expect(inbound.route(at(signedWebhook(hook, inboundSms({ from: '447700900000', to: '447700900001', text: 'hi' }))))).toEqual({ address: '+447700900001' });
    expect(inbound.route(at(signedWebhook(hook, smsStatus({ uuid: 'u1', status: 'delivered', to: '447700900000', from: '447700900001' }))))).toEqual({ address: '+447700900001' });
  });

  it('routes statuses from an alphanumeric sender by the account id in the URL', () => {
    const w = signedWebhook({ ...hook, url: `${DEFAULT_VONAGE_WEBHOOK_URL}/acc_vonage_1` }, smsStatus({ uuid: 'u1', status: 'delivered', to: '447700900000', from: 'Rapport' }));
    expect(inbound.route(at(w))).toEqual({ account_id: 'acc_vonage_1' });
    expect(inbound.route(at(signedWebhook(hook, smsStatus({ uuid: 'u1', status: 'delivered', to: '447700900000', from: 'Rapport' }))))).toBeNull();
  });
});

describe('verify', () => {
  const payload = () => inboundSms({ from: '447700900000', to: '447700900001', text: 'Yes please' });

  it('accepts a webhook signed with the signature secret, issued just now', () => {
    expect(inbound.verify(at(signedWebhook(hook, payload(), { iat: NOW_S - 2 })), account())).toBe(true);
  });

  it('rejects unsigned, wrongly keyed, tampered, stale, future-dated, other-key and alg-swapped tokens', () => {
    const good = signedWebhook(hook, payload(), { iat: NOW_S });
    const token = good.headers.authorization!.slice(7);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    const cases = {
      unsigned: { ...good, headers: { 'content-type': 'application/json' } },
      notBearer: { ...good, headers: { ...good.headers, authorization: `Basic ${token}` } },
      otherSecret: signedWebhook({ ...hook, signatureSecret: 'another-secret' }, payload(), { iat: NOW_S }),
      tamperedBody: { ...good, body: good.body.replace('Yes please', 'No thanks') },
      stale: signedWebhook(hook, payload(), { iat: NOW_S - 301 }),
      future: signedWebhook(hook, payload(), { iat: NOW_S + 301 }),
      noIat: signedWebhook(hook, payload(), { claims: { iat: undefined } }),
      otherApiKey: signedWebhook(hook, payload(), { iat: NOW_S, claims: { api_key: 'zzzzzzzz' } }),
      algNone: { ...good, headers: { ...good.headers, authorization: `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${token.split('.')[1]}.` } },
      hashOfOtherBody: { ...good, headers: { ...good.headers, authorization: `Bearer ${vonageJwt(SIGNATURE_SECRET, { ...claims, payload_hash: createHash('sha256').update('{}').digest('hex') })}` } },
      garbage: { ...good, headers: { ...good.headers, authorization: 'Bearer a.b.c' } },
    };
    for (const [name, w] of Object.entries(cases)) expect({ name, ok: inbound.verify(at(w), account()) }).toEqual({ name, ok: false });
    expect(inbound.verify(at(good), account({ credentials: { api_key: API_KEY, api_secret: API_SECRET, signature_secret: '' } }))).toBe(false);
  });

  it('accepts tokens at the edge of the five-minute window', () => {
    expect(inbound.verify(at(signedWebhook(hook, payload(), { iat: NOW_S - 299 })), account())).toBe(true);
    expect(inbound.verify(at(signedWebhook(hook, payload(), { iat: NOW_S + 60 })), account())).toBe(true);
  });

  it('round-trips any body, and fails when any single byte of body or token changes', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.integer({ min: 1, max: 255 }), (json, pos, delta) => {
        const w = signedWebhook(hook, json, { iat: NOW_S });
        const req = at(w);
        expect(inbound.verify(req, account())).toBe(true);
        const body = oneByteChanged(req.rawBody, pos, delta);
        expect(inbound.verify({ ...req, rawBody: body }, account())).toBe(false);
        const auth = req.headers.authorization!;
        const j = 7 + (pos % (auth.length - 7));
        const flipped = auth.slice(0, j) + (auth[j] === 'A' ? 'B' : 'A') + auth.slice(j + 1);
        expect(inbound.verify({ ...req, headers: { ...req.headers, authorization: flipped } }, account())).toBe(false);
      }),
    );
  });

  it('verifyHs256 returns the claims only for a valid HS256 signature', () => {
    const t = vonageJwt('k', { iat: 1, iss: 'Vonage' });
    expect(verifyHs256(t, 'k')).toEqual({ iat: 1, iss: 'Vonage' });
    expect(verifyHs256(t, 'k2')).toBeNull();
    expect(verifyHs256(vonageJwt('k', { iat: 1 }, { alg: 'HS512', typ: 'JWT' }), 'k')).toBeNull();
    expect(verifyHs256('only.two', 'k')).toBeNull();
  });
});

describe('parse', () => {
  const parse = (payload: unknown) => inbound.parse(at(signedWebhook(hook, payload, { iat: NOW_S })), account());

  it('reads an inbound SMS', () => {
    expect(parse(inboundSms({ from: '447700900000', to: '447700900001', text: 'STOP', uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab', timestamp: '2026-03-02T09:59:58Z' }))).toEqual([
      { type: 'message', channel: 'sms', from: '+447700900000', to: '+447700900001', text: 'STOP', payload: null, provider_message_id: 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab', at: new Date('2026-03-02T09:59:58Z') },
    ]);
  });

  it('reads submitted as sent, with its price', () => {
    expect(parse(smsStatus({ uuid: 'u-1', status: 'submitted', to: '447700900000', from: '447700900001', clientRef: 'msg_01', timestamp: '2026-03-02T10:00:01Z', price: '0.0333' }))).toEqual([
      {
        type: 'status',
        provider_message_id: 'u-1',
        status: 'sent',
        at: new Date('2026-03-02T10:00:01Z'),
        cost: 0.0333,
        currency: 'EUR',
        detail: { vonage_status: 'submitted', client_ref: 'msg_01', sms: { count_total: '1' }, network_code: '23410' },
      },
    ]);
  });

  it('reads delivered, rejected and undeliverable', () => {
    expect(parse(smsStatus({ uuid: 'u-2', status: 'delivered', to: '447700900000', from: '447700900001' }))).toMatchObject([{ status: 'delivered', provider_message_id: 'u-2' }]);
    expect(parse(smsStatus({ uuid: 'u-3', status: 'rejected', to: '447700900000', from: '447700900001', error: { code: '1360', detail: 'TTL expired' } }))).toMatchObject([
      { status: 'failed', provider_code: '1360', error: '1360: TTL expired', detail: { vonage_status: 'rejected' } },
    ]);
    expect(parse(smsStatus({ uuid: 'u-4', status: 'undeliverable', to: '447700900000', from: '447700900001', error: { code: 1100, detail: 'Communication Failed' } }))).toMatchObject([
      { status: 'failed', provider_code: '1100', detail: { vonage_status: 'undeliverable' } },
    ]);
  });

  it('ignores other channels and unknown statuses', () => {
    expect(parse({ ...inboundSms({ from: '447700900000', to: '447700900001', text: 'hi' }), channel: 'whatsapp' })).toEqual([]);
    expect(parse({ ...smsStatus({ uuid: 'u-5', status: 'delivered', to: '1', from: '2' }), status: 'buffered' })).toEqual([]);
  });

  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        const req = at(signedWebhook(hook, json, { iat: NOW_S }));
        expect(Array.isArray(inbound.parse(req, account()))).toBe(true);
        inbound.route(req);
      }),
    );
  });
});
