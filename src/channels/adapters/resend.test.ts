import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResendFake } from '../../../test/fakes/resend.js';
import { oneByteChanged, welcomeEmail } from '../../../test/helpers/adapters.js';
import type { InboundRequest, InboundStatus, OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { resendAdapter } from './resend.js';

let fake: ResendFake;
beforeAll(async () => {
  fake = await ResendFake.start({ verifiedDomains: ['acme.example'] });
});
afterAll(async () => {
  await fake.close();
});

function account(over: Partial<ProviderAccount> = {}): ProviderAccount {
  return {
    id: 'acc-rs-1',
    tenant_id: 't1',
    name: 'Resend',
    kind: 'resend',
    channel: 'email',
    priority: 1,
    credentials: { api_key: fake.apiKey, webhook_secret: fake.webhookSecret },
    config: { from: 'Acme News <news@acme.example>', reply_to: 'help@acme.example', base_url: fake.url },
    ...over,
  };
}

function ctx(acc = account(), timeoutMs = 2000): SendContext {
  return { account: acc, fetch, publicUrl: 'https://rapport.example', timeoutMs };
}

let seq = 0;
// Each message its own id and idempotency key, so Resend's idempotency never answers a test with an earlier send.
function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  seq++;
  return welcomeEmail({ id: `0190a8f4-7c1e-7b3a-9d2e-${String(seq).padStart(12, '0')}`, idempotency_key: `enr${seq}:welcome:0`, ...over });
}

describe('resend adapter: send', () => {
  it('posts /emails with the Bearer key, the idempotency key and the rapport tag', async () => {
    const msg = message();
    const res = await resendAdapter.send(msg, ctx());
    const sent = fake.sends.at(-1)!;
    expect(res).toEqual({ ok: true, provider_message_id: sent.id });
    expect(sent.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(sent.headers['idempotency-key']).toBe(msg.idempotency_key);
    expect(sent.body).toEqual({
      from: 'Acme News <news@acme.example>',
      to: ['ada@example.org'],
      subject: 'Welcome, Ada',
      html: '<p>Hello <b>Ada</b></p>',
      text: 'Hello Ada',
      reply_to: 'help@acme.example',
      headers: {
        'List-Unsubscribe': '<https://rapport.example/u/tok>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Rapport-Message-Id': msg.id,
      },
      tags: [{ name: 'rapport_message_id', value: msg.id }],
    });
  });

  it('a retry with the same idempotency key gets the same id and sends nothing new', async () => {
    const msg = message();
    const first = await resendAdapter.send(msg, ctx());
    const count = fake.sends.length;
    const second = await resendAdapter.send(msg, ctx());
    expect(second).toEqual(first);
    expect(fake.sends).toHaveLength(count);
  });

  it('a missing or wrong key is an auth failure', async () => {
    expect(await resendAdapter.send(message(), ctx(account({ credentials: { api_key: 're_wrong' } })))).toMatchObject({
      ok: false,
      permanent: false,
      code: 'auth',
      provider_code: 'invalid_api_key',
    });
    expect(await resendAdapter.send(message(), ctx(account({ credentials: {} })))).toMatchObject({ ok: false, code: 'auth' });
  });

  it('an unverified domain is a config failure', async () => {
    const res = await resendAdapter.send(message(), ctx(account({ config: { from: 'news@other.example', base_url: fake.url } })));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'config', provider_code: 'validation_error' });
  });

  it("Resend's invalid `to` error is an invalid recipient", async () => {
    // The adapter's own check lets this address through; Resend's is stricter.
    fake.fail({ kind: 'error', status: 422, name: 'validation_error', message: 'Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.' });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(await resendAdapter.send(message({ to: 'nope' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
  });

  it('other refusals are permanent', async () => {
    fake.fail({ kind: 'error', status: 451, name: 'security_error', message: 'We may have found a security issue with the request.' });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: 'security_error' });
    expect(await resendAdapter.send(message({ body: undefined, html: undefined }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
  });

  it('an exhausted quota fails over to the next provider', async () => {
    fake.fail({ kind: 'error', status: 429, name: 'daily_quota_exceeded', message: 'You have reached your daily email sending quota.' });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'config' });
  });

  it('429 rate_limit_exceeded waits Retry-After', async () => {
    fake.fail({ kind: 'rate_limit', retryAfterSeconds: 3 });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 3000 });
  });

  it('5xx, no answer and a closed port are temporary', async () => {
    fake.fail({ kind: 'error', status: 500, name: 'internal_server_error', message: 'An unexpected error occurred.' });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
    fake.fail({ kind: 'error', status: 409, name: 'concurrent_idempotent_requests' });
    expect(await resendAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
    fake.fail({ kind: 'hang' });
    expect(await resendAdapter.send(message(), ctx(account(), 200))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    const closed = account({ config: { ...account().config, base_url: 'http://127.0.0.1:9' } });
    expect(await resendAdapter.send(message(), ctx(closed))).toMatchObject({ ok: false, permanent: false, code: 'network' });
  });
});

describe('resend adapter: check()', () => {
  it('accepts a complete account', () => {
    expect(resendAdapter.check({ api_key: 're_123', webhook_secret: fake.webhookSecret }, { from: 'news@acme.example' })).toEqual([]);
  });

  it('names each bad field', () => {
    expect(resendAdapter.check({ api_key: 'sk_123', webhook_secret: 'secret' }, { from: '', reply_to: 'x' }).map((p) => p.field).sort()).toEqual(
      ['config.from', 'config.reply_to', 'credentials.api_key', 'credentials.webhook_secret'].sort(),
    );
  });
});

describe('resend adapter: webhooks', () => {
  const inbound = resendAdapter.inbound!;

  async function sent(): Promise<{ send: (typeof fake.sends)[number]; providerId: string; messageId: string }> {
    const msg = message();
    const res = await resendAdapter.send(msg, ctx());
    if (!res.ok) throw new Error(res.error);
    return { send: fake.sends.at(-1)!, providerId: res.provider_message_id, messageId: msg.id };
  }

  it('routes by the account id in the URL', () => {
    const req = fake.webhook('acc-rs-1', { type: 'email.sent', data: {} });
    expect(inbound.route(req)).toEqual({ account_id: 'acc-rs-1' });
    expect(inbound.route({ ...req, url: 'https://rapport.example/webhooks/resend' })).toBeNull();
  });

  it("verifies Svix's published test vector", () => {
    // From the svix library's own tests: secret, id, timestamp and body give this signature.
    const req: InboundRequest = {
      method: 'POST',
      url: 'https://rapport.example/webhooks/resend/acc-rs-1',
      headers: { 'svix-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'svix-timestamp': '1614265330', 'svix-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' },
      rawBody: Buffer.from('{"test": 2432232314}'),
      query: {},
      receivedAt: new Date(1614265330_000),
    };
    const acc = account({ credentials: { api_key: 're_x', webhook_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
    expect(inbound.verify(req, acc)).toBe(true);
    // Several signatures during a rotation: one match is enough.
    expect(inbound.verify({ ...req, headers: { ...req.headers, 'svix-signature': 'v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' } }, acc)).toBe(true);
    expect(inbound.verify({ ...req, headers: { ...req.headers, 'svix-signature': 'v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' } }, acc)).toBe(false);
  });

  it('refuses unsigned, forged, tampered, stale and future requests', async () => {
    const { send } = await sent();
    const req = fake.webhook('acc-rs-1', fake.event(send, 'email.delivered'));
    const acc = account();
    expect(inbound.verify(req, acc)).toBe(true);
    const { ['svix-signature']: _s, ...unsigned } = req.headers;
    expect(inbound.verify({ ...req, headers: unsigned }, acc)).toBe(false);
    expect(inbound.verify({ ...req, rawBody: Buffer.from(req.rawBody.toString().replace('delivered', 'bounced')) }, acc)).toBe(false);
    expect(inbound.verify({ ...req, headers: { ...req.headers, 'svix-id': 'msg_other' } }, acc)).toBe(false);
    expect(inbound.verify(req, account({ credentials: { api_key: 're_x', webhook_secret: `whsec_${Buffer.alloc(24, 7).toString('base64')}` } }))).toBe(false);
    expect(inbound.verify(req, account({ credentials: { api_key: 're_x' } }))).toBe(false);
    expect(inbound.verify({ ...req, receivedAt: new Date(req.receivedAt.getTime() + 6 * 60_000) }, acc)).toBe(false);
    expect(inbound.verify({ ...req, receivedAt: new Date(req.receivedAt.getTime() - 6 * 60_000) }, acc)).toBe(false);
    expect(inbound.verify({ ...req, receivedAt: new Date(req.receivedAt.getTime() + 4 * 60_000) }, acc)).toBe(true);
  });

  it('property: any body and id verify when signed, and any single changed byte fails', () => {
    const acc = account();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.stringMatching(/^msg_[A-Za-z0-9]{1,30}$/), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, id, pos, flip) => {
        const body = Buffer.from(bytes);
        const now = new Date();
        const timestamp = String(Math.floor(now.getTime() / 1000));
        const req: InboundRequest = {
          method: 'POST',
          url: 'https://rapport.example/webhooks/resend/acc-rs-1',
          headers: { 'svix-id': id, 'svix-timestamp': timestamp, 'svix-signature': fake.sign(id, timestamp, body) },
          rawBody: body,
          query: {},
          receivedAt: now,
        };
        expect(inbound.verify(req, acc)).toBe(true);
        const tampered = oneByteChanged(body, pos, flip);
        expect(inbound.verify({ ...req, rawBody: tampered }, acc)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('parses each event kind into statuses keyed by the id send() returned', async () => {
    const { send, providerId, messageId } = await sent();
    const cases: [Record<string, unknown>, string | null, string | null][] = [
      [fake.event(send, 'email.sent'), 'sent', null],
      [fake.event(send, 'email.delivered'), 'delivered', null],
      [fake.event(send, 'email.delivery_delayed'), null, null],
      [fake.event(send, 'email.opened'), 'opened', null],
      [fake.event(send, 'email.clicked', { click: { ipAddress: '203.0.113.9', link: 'https://acme.example/pricing', timestamp: new Date().toISOString(), userAgent: 'Mozilla/5.0' } }), 'clicked', null],
      [fake.event(send, 'email.bounced', { bounce: { message: "The recipient's email address does not exist.", subType: 'General', type: 'Permanent' } }), 'bounced', 'bounce'],
      [fake.event(send, 'email.complained'), 'failed', 'complaint'],
      [fake.event(send, 'email.failed', { failed: { reason: 'reached_daily_quota' } }), 'failed', null],
      [fake.event(send, 'email.suppressed', { suppressed: { message: 'On the suppression list after a bounce', type: 'bounce' } }), 'failed', 'bounce'],
      [fake.event(send, 'email.scheduled'), null, null],
    ];
    for (const [event, status, suppress] of cases) {
      const req = fake.webhook('acc-rs-1', event);
      expect(inbound.verify(req, account())).toBe(true);
      const items = inbound.parse(req, account()) as InboundStatus[];
      if (status === null) {
        expect(items, String(event.type)).toEqual([]);
        continue;
      }
      expect(items, String(event.type)).toHaveLength(1);
      expect(items[0]).toMatchObject({ type: 'status', provider_message_id: providerId, status, detail: { event: event.type, rapport_message_id: messageId } });
      expect(items[0]!.suppress ?? null).toBe(suppress);
      expect(items[0]!.at.toISOString()).toBe(event.created_at);
    }
    const click = inbound.parse(fake.webhook('acc-rs-1', cases[4]![0]), account())[0] as InboundStatus;
    expect(click.detail?.url).toBe('https://acme.example/pricing');
    expect(JSON.stringify(click)).not.toMatch(/203\.0\.113\.9|Mozilla/);
    const bounce = inbound.parse(fake.webhook('acc-rs-1', cases[5]![0]), account())[0] as InboundStatus;
    expect(bounce).toMatchObject({ error: "The recipient's email address does not exist.", provider_code: 'Permanent/General' });
  });

  it('reads tags in the older array form too, and ignores what is not an e-mail event', () => {
    const req = fake.webhook('acc-rs-1', { type: 'email.opened', created_at: '2026-01-02T03:04:05.000Z', data: { email_id: 'e-1', tags: [{ name: 'rapport_message_id', value: 'm-1' }] } });
    expect(inbound.parse(req, account())).toEqual([
      { type: 'status', provider_message_id: 'e-1', status: 'opened', at: new Date('2026-01-02T03:04:05.000Z'), detail: { event: 'email.opened', rapport_message_id: 'm-1' } },
    ]);
    expect(inbound.parse(fake.webhook('acc-rs-1', { type: 'contact.created', data: { id: 'c1' } }), account())).toEqual([]);
    expect(inbound.parse({ ...req, json: undefined, rawBody: Buffer.from('nope') }, account())).toEqual([]);
  });
});
