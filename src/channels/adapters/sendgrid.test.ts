import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SendgridFake } from '../../../test/fakes/sendgrid.js';
import { oneByteChanged, welcomeEmail as message } from '../../../test/helpers/adapters.js';
import type { InboundRequest, InboundStatus, ProviderAccount, SendContext } from '../types.js';
import { sendgridAdapter } from './sendgrid.js';

let fake: SendgridFake;
beforeAll(async () => {
  fake = await SendgridFake.start({ verifiedSenders: ['news@acme.example'] });
});
afterAll(async () => {
  await fake.close();
});

function account(over: Partial<ProviderAccount> = {}): ProviderAccount {
  return {
    id: 'acc-sg-1',
    tenant_id: 't1',
    name: 'SendGrid',
    kind: 'sendgrid',
    channel: 'email',
    priority: 1,
    credentials: { api_key: fake.apiKey, webhook_public_key: fake.publicKey },
    config: { from: 'Acme News <news@acme.example>', reply_to: 'help@acme.example', base_url: fake.url },
    ...over,
  };
}

function ctx(acc = account(), timeoutMs = 2000): SendContext {
  return { account: acc, fetch, publicUrl: 'https://rapport.example', timeoutMs };
}

describe('sendgrid adapter: send', () => {
  it('posts v3 mail/send with the Bearer key and returns X-Message-Id', async () => {
    const before = fake.sends.length;
    const res = await sendgridAdapter.send(message(), ctx());
    expect(fake.sends).toHaveLength(before + 1);
    const sent = fake.sends.at(-1)!;
    expect(res).toEqual({ ok: true, provider_message_id: sent.messageId });
    expect(sent.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(sent.body).toEqual({
      personalizations: [{ to: [{ email: 'ada@example.org' }] }],
      from: { email: 'news@acme.example', name: 'Acme News' },
      reply_to: { email: 'help@acme.example' },
      subject: 'Welcome, Ada',
      content: [
        { type: 'text/plain', value: 'Hello Ada' },
        { type: 'text/html', value: '<p>Hello <b>Ada</b></p>' },
      ],
      headers: {
        'List-Unsubscribe': '<https://rapport.example/u/tok>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Rapport-Message-Id': '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e',
      },
      custom_args: { rapport_message_id: '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e' },
      tracking_settings: { click_tracking: { enable: false, enable_text: false }, open_tracking: { enable: false } },
    });
  });

  it('leaves SendGrid tracking alone when provider_tracking is on, and sends HTML-only mail', async () => {
    const acc = account({ config: { ...account().config, provider_tracking: true } });
    const res = await sendgridAdapter.send(message({ body: undefined, headers: { From: 'x@evil.example' } }), ctx(acc));
    expect(res.ok).toBe(true);
    const body = fake.sends.at(-1)!.body;
    expect(body.tracking_settings).toBeUndefined();
    expect(body.content).toEqual([{ type: 'text/html', value: '<p>Hello <b>Ada</b></p>' }]);
    expect(body.headers).toEqual({ 'X-Rapport-Message-Id': '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e' });
  });

  it('a wrong key is an auth failure', async () => {
    const res = await sendgridAdapter.send(message(), ctx(account({ credentials: { api_key: 'SG.wrong.key' } })));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'auth' });
  });

  it('an unverified sender is a config failure naming the field', async () => {
    const res = await sendgridAdapter.send(message(), ctx(account({ config: { from: 'other@acme.example', base_url: fake.url } })));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'config' });
    expect(res.ok || res.error).toMatch(/from: The from address does not match a verified Sender Identity/);
  });

  it("SendGrid's invalid-address error is an invalid recipient", async () => {
    fake.fail({ kind: 'status', status: 400, errors: [{ message: 'Does not contain a valid address.', field: 'personalizations.0.to.0.email', help: null }] });
    const res = await sendgridAdapter.send(message(), ctx());
    expect(res).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
  });

  it('an address that is not one never leaves', async () => {
    const before = fake.requests.length;
    expect(await sendgridAdapter.send(message({ to: 'ada' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(fake.requests).toHaveLength(before);
  });

  it('a body SendGrid refuses is rejected for good', async () => {
    const res = await sendgridAdapter.send(message({ body: undefined, html: undefined }), ctx());
    expect(res).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
  });

  it('429 waits until X-RateLimit-Reset', async () => {
    fake.fail({ kind: 'rate_limit', resetInSeconds: 5 });
    const res = await sendgridAdapter.send(message(), ctx());
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'rate_limited' });
    if (res.ok) throw new Error('unreachable');
    expect(res.retry_after_ms).toBeGreaterThan(3000);
    expect(res.retry_after_ms).toBeLessThanOrEqual(5000);
  });

  it('5xx is temporary', async () => {
    fake.fail({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });
    expect(await sendgridAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
    expect(await sendgridAdapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
  });

  it('no answer in time is a timeout', async () => {
    fake.fail({ kind: 'hang' });
    expect(await sendgridAdapter.send(message(), ctx(account(), 200))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
  });

  it('a closed port is a network failure', async () => {
    const res = await sendgridAdapter.send(message(), ctx(account({ config: { ...account().config, base_url: 'http://127.0.0.1:9' } })));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'network' });
  });
});

describe('sendgrid adapter: check()', () => {
  it('accepts a complete account', () => {
    expect(sendgridAdapter.check({ api_key: 'SG.abc.def', webhook_public_key: fake.publicKey }, { from: 'news@acme.example' })).toEqual([]);
  });

  it('names each bad field', () => {
    const problems = sendgridAdapter.check({ api_key: 'abc', webhook_public_key: 'not a key' }, { from: 'nope', reply_to: 3, provider_tracking: 'yes' });
    expect(problems.map((p) => p.field).sort()).toEqual(
      ['config.from', 'config.provider_tracking', 'config.reply_to', 'credentials.api_key', 'credentials.webhook_public_key'].sort(),
    );
    expect(sendgridAdapter.check({}, {}).map((p) => p.field)).toEqual(['credentials.api_key', 'config.from']);
  });
});

describe('sendgrid adapter: event webhook', () => {
  const inbound = sendgridAdapter.inbound!;

  async function sent(): Promise<{ send: (typeof fake.sends)[number]; providerId: string }> {
    const res = await sendgridAdapter.send(message(), ctx());
    if (!res.ok) throw new Error(res.error);
    return { send: fake.sends.at(-1)!, providerId: res.provider_message_id };
  }

  it('routes by the account id in the URL', () => {
    const req = fake.webhook('acc-sg-1', []);
    expect(inbound.route(req)).toEqual({ account_id: 'acc-sg-1' });
    expect(inbound.route({ ...req, url: 'https://rapport.example/webhooks/sendgrid' })).toBeNull();
    expect(inbound.route({ ...req, url: 'https://rapport.example/webhooks/sendgrid/acc%2D9/' })).toEqual({ account_id: 'acc-9' });
  });

  it("verifies SendGrid's own published test vector", () => {
    // From sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js.
    const payload = JSON.stringify({ category: 'example_payload', event: 'test_event', message_id: 'message_id' });
    const req: InboundRequest = {
      method: 'POST',
      url: 'https://rapport.example/webhooks/sendgrid/acc-sg-1',
      headers: {
        'x-twilio-email-event-webhook-signature': 'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=',
        'x-twilio-email-event-webhook-timestamp': '1588788367',
      },
      rawBody: Buffer.from(payload),
      query: {},
      receivedAt: new Date(1588788367_000 + 60_000),
    };
    const acc = account({ credentials: { api_key: 'SG.x', webhook_public_key: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==' } });
    expect(inbound.verify(req, acc)).toBe(true);
    expect(inbound.verify({ ...req, rawBody: Buffer.from('payload') }, acc)).toBe(false);
  });

  it('refuses unsigned, forged, stale and wrongly keyed requests', async () => {
    const { send } = await sent();
    const req = fake.webhook('acc-sg-1', [fake.event(send, 'delivered')]);
    const acc = account();
    expect(inbound.verify(req, acc)).toBe(true);
    const { ['x-twilio-email-event-webhook-signature']: _sig, ...unsigned } = req.headers;
    expect(inbound.verify({ ...req, headers: unsigned }, acc)).toBe(false);
    expect(inbound.verify({ ...req, rawBody: Buffer.from(req.rawBody.toString().replace('delivered', 'bounce')) }, acc)).toBe(false);
    expect(inbound.verify({ ...req, headers: { ...req.headers, 'x-twilio-email-event-webhook-timestamp': String(Number(req.headers['x-twilio-email-event-webhook-timestamp']) + 1) } }, acc)).toBe(false);
    const other = await SendgridFake.start();
    try {
      expect(inbound.verify(req, account({ credentials: { api_key: fake.apiKey, webhook_public_key: other.publicKey } }))).toBe(false);
      expect(inbound.verify(other.webhook('acc-sg-1', [fake.event(send, 'delivered')]), acc)).toBe(false);
    } finally {
      await other.close();
    }
    expect(inbound.verify(req, account({ credentials: { api_key: fake.apiKey } }))).toBe(false);
    const old = fake.webhook('acc-sg-1', [], { timestamp: Math.floor(Date.now() / 1000) - 4 * 24 * 3600 });
    expect(inbound.verify(old, acc)).toBe(false);
  });

  it('property: any body verifies when signed, and any single changed byte fails', () => {
    const acc = account();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, pos, flip) => {
        const body = Buffer.from(bytes);
        const timestamp = String(Math.floor(Date.now() / 1000));
        const req: InboundRequest = {
          method: 'POST',
          url: 'https://rapport.example/webhooks/sendgrid/acc-sg-1',
          headers: { 'x-twilio-email-event-webhook-signature': fake.sign(timestamp, body), 'x-twilio-email-event-webhook-timestamp': timestamp },
          rawBody: body,
          query: {},
          receivedAt: new Date(),
        };
        expect(inbound.verify(req, acc)).toBe(true);
        const tampered = oneByteChanged(body, pos, flip);
        expect(inbound.verify({ ...req, rawBody: tampered }, acc)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('parses each event kind into statuses keyed by the id send() returned', async () => {
    const { send, providerId } = await sent();
    const events = [
      fake.event(send, 'processed'),
      fake.event(send, 'deferred', { response: '400 try again later', attempt: '1' }),
      fake.event(send, 'delivered', { response: '250 OK' }),
      fake.event(send, 'open', { useragent: 'Mozilla/5.0', ip: '203.0.113.9', sg_machine_open: false }),
      fake.event(send, 'click', { url: 'https://acme.example/pricing', url_offset: { index: 0, type: 'html' } }),
      fake.event(send, 'bounce', { type: 'bounce', reason: '550 5.1.1 The email account that you tried to reach does not exist', status: '5.1.1' }),
      fake.event(send, 'bounce', { type: 'blocked', reason: '421 4.7.0 Try again later', status: '4.7.0' }),
      fake.event(send, 'dropped', { reason: 'Bounced Address', status: '5.0.0' }),
      fake.event(send, 'dropped', { reason: 'Invalid', status: '5.0.0' }),
      fake.event(send, 'spamreport'),
      fake.event(send, 'unsubscribe'),
      fake.event(send, 'group_unsubscribe', { asm_group_id: 42 }),
      fake.event(send, 'group_resubscribe', { asm_group_id: 42 }),
    ];
    const req = fake.webhook('acc-sg-1', events);
    expect(inbound.verify(req, account())).toBe(true);
    const items = inbound.parse(req, account()) as InboundStatus[];
    expect(items.every((i) => i.type === 'status' && i.provider_message_id === providerId)).toBe(true);
    expect(items.every((i) => i.detail?.rapport_message_id === '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e')).toBe(true);
    expect(items.map((i) => [i.detail?.event, i.status, i.suppress ?? null])).toEqual([
      ['processed', 'sent', null],
      ['delivered', 'delivered', null],
      ['open', 'opened', null],
      ['click', 'clicked', null],
      ['bounce', 'bounced', 'bounce'],
      ['bounce', 'failed', null],
      ['dropped', 'failed', 'bounce'],
      ['dropped', 'failed', null],
      ['spamreport', 'failed', 'complaint'],
      ['unsubscribe', 'delivered', 'unsubscribe'],
      ['group_unsubscribe', 'delivered', 'unsubscribe'],
    ]);
    expect(items[3]!.detail?.url).toBe('https://acme.example/pricing');
    expect(items[4]).toMatchObject({ error: '550 5.1.1 The email account that you tried to reach does not exist', provider_code: '5.1.1' });
    expect(items[0]!.at.getTime()).toBe(Number(events[0]!.timestamp) * 1000);
    // No IP address or user agent is kept.
    expect(JSON.stringify(items)).not.toMatch(/203\.0\.113\.9|Mozilla/);
  });

  it('ignores bodies that are not an event array', () => {
    const req = fake.webhook('acc-sg-1', []);
    expect(inbound.parse({ ...req, json: undefined, rawBody: Buffer.from('not json') }, account())).toEqual([]);
    expect(inbound.parse({ ...req, json: { event: 'delivered' } }, account())).toEqual([]);
  });
});
