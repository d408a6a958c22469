import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asInboundRequest, FakeTwilio, incomingMessage, messageStatusCallback, sid, signedWebhook } from '../../../test/fakes/twilio.js';
import type { InboundRequest, OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { twilioSmsAdapter } from './twilio-sms.js';

const ACCOUNT_SID = `AC${'1'.repeat(32)}`;
const TOKEN = 'abcdef0123456789abcdef0123456789';
const FROM = '+14155550100';
const SERVICE = `MG${'2'.repeat(32)}`;
const PUBLIC = 'https://rapport.example';

let fake: FakeTwilio;
beforeEach(async () => {
  fake = await FakeTwilio.start({ [ACCOUNT_SID]: TOKEN });
});
afterEach(() => fake.close());

function account(config: Record<string, unknown> = { from: FROM }, credentials: Record<string, string> = { account_sid: ACCOUNT_SID, auth_token: TOKEN }): ProviderAccount {
  return { id: 'acc_tw', tenant_id: 't1', name: 'Twilio SMS', kind: 'twilio', channel: 'sms', priority: 0, credentials, config: { base_url: fake.url, ...config } };
}

function ctx(acc = account(), publicUrl: string | null = PUBLIC, timeoutMs = 2000): SendContext {
  return { account: acc, fetch: globalThis.fetch, publicUrl, timeoutMs };
}

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: 'msg_1', tenant_id: 't1', channel: 'sms', to: '+14155552671', idempotency_key: 'enr1:n1:0', body: 'Your movers arrive Tuesday & Wednesday.', ...overrides };
}

const send = (msg = message(), c = ctx()) => twilioSmsAdapter.send(msg, c);
const inbound = twilioSmsAdapter.inbound!;

describe('send', () => {
  it('creates a Message with Basic auth, the form fields Twilio documents, and a status callback', async () => {
    const result = await send(message({ options: { media: ['https://cdn.example/a.png', 'https://cdn.example/b.pdf'] } }));
    expect(result).toMatchObject({ ok: true });
    const [req] = fake.accepted;
    expect(req!.accountSid).toBe(ACCOUNT_SID);
    expect(req!.headers.authorization).toBe(`Basic ${Buffer.from(`${ACCOUNT_SID}:${TOKEN}`).toString('base64')}`);
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.params).toEqual({
      To: '+14155552671',
      From: FROM,
      Body: 'Your movers arrive Tuesday & Wednesday.',
      MediaUrl: ['https://cdn.example/a.png', 'https://cdn.example/b.pdf'],
      StatusCallback: `${PUBLIC}/webhooks/twilio`,
    });
    expect(result.ok && result.provider_message_id).toBe(req!.sid);
    expect(req!.sid).toMatch(/^SM[0-9a-f]{32}$/);
    // Twilio's Messages API documents no idempotency key; none is invented.
    expect(Object.keys(req!.headers).filter((h) => h.includes('idempotency'))).toEqual([]);
  });

  it('reports the price as a positive cost when Twilio already knows it', async () => {
    fake.setPrice('-0.00790', 'USD');
    expect(await send()).toEqual({ ok: true, provider_message_id: fake.accepted[0]!.sid, cost: 0.0079, currency: 'USD' });
  });

  it('sends through a Messaging Service with callbacks to the account URL, and without a callback when there is no public URL', async () => {
    expect(await send(message(), ctx(account({ messaging_service_sid: SERVICE })))).toMatchObject({ ok: true });
    expect(fake.accepted[0]!.params).toMatchObject({ MessagingServiceSid: SERVICE, StatusCallback: `${PUBLIC}/webhooks/twilio/acc_tw` });
    expect(fake.accepted[0]!.params.From).toBeUndefined();
    await send(message(), ctx(account(), null));
    expect(fake.accepted[1]!.params.StatusCallback).toBeUndefined();
  });

  it('refuses a message with nowhere to go or nothing to say without calling Twilio', async () => {
    expect(await send(message({ to: '0155 123' }))).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(await send(message({ body: '' }))).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
    expect(fake.requests).toHaveLength(0);
  });

  it.each([
    [{ status: 500, code: 20500, message: 'Internal Server Error' }, { permanent: false, code: 'server', provider_code: '20500' }],
    [{ status: 503, code: 20503, message: 'Service Unavailable' }, { permanent: false, code: 'server' }],
    [{ status: 429, code: 20429, message: 'Too Many Requests', retryAfter: '3' }, { permanent: false, code: 'rate_limited', provider_code: '20429', retry_after_ms: 3000 }],
    [{ status: 400, code: 21611, message: "This 'From' number has exceeded the maximum number of queued messages" }, { permanent: false, code: 'rate_limited', retry_after_ms: 1000 }],
    [{ status: 400, code: 21408, message: 'Permission to send an SMS has not been enabled for the region' }, { permanent: false, code: 'config' }],
    [{ status: 400, code: 21617, message: 'The concatenated message body exceeds the 1600 character limit.' }, { permanent: true, code: 'rejected' }],
  ])('maps a scripted %o', async (script, expected) => {
    fake.script(script);
    expect(await send()).toMatchObject({ ok: false, ...expected });
  });

  it.each([
    ['+15005550001', 'invalid_recipient', '21211'],
    ['+15005550009', 'invalid_recipient', '21614'],
    ['+15005550002', 'invalid_recipient', '21612'],
    ['+15005550004', 'unsubscribed', '21610'],
  ])("maps Twilio's answer for %s to %s", async (to, code, providerCode) => {
    expect(await send(message({ to }))).toMatchObject({ ok: false, permanent: true, code, provider_code: providerCode });
  });

  it('treats wrong credentials as an auth failure worth another provider', async () => {
    const result = await send(message(), ctx(account({ from: FROM }, { account_sid: ACCOUNT_SID, auth_token: 'f'.repeat(32) })));
    expect(result).toMatchObject({ ok: false, permanent: false, code: 'auth', provider_code: '20003' });
    expect(fake.accepted).toHaveLength(0);
  });

  it('times out a hung request and reports an unreachable API as a network failure, both temporary', async () => {
    fake.script({ hang: true });
    const started = Date.now();
    expect(await send(message(), ctx(account(), PUBLIC, 300))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await send(message(), ctx(account({ from: FROM, base_url: 'http://127.0.0.1:1' })))).toMatchObject({ ok: false, permanent: false, code: 'network' });
  });
});

describe('check', () => {
  const good = { account_sid: ACCOUNT_SID, auth_token: TOKEN };
  const fields = (credentials: Record<string, string>, config: Record<string, unknown>) => twilioSmsAdapter.check(credentials, config).map((p) => p.field);

  it('accepts a number, an alphanumeric sender or a Messaging Service', () => {
    expect(fields(good, { from: FROM })).toEqual([]);
    expect(fields(good, { from: 'Rapport' })).toEqual([]);
    expect(fields(good, { messaging_service_sid: SERVICE, rate_per_second: 30 })).toEqual([]);
  });

  it('names each bad field', () => {
    expect(fields({}, {})).toEqual(['credentials.account_sid', 'credentials.auth_token', 'config.from']);
    expect(fields({ account_sid: 'SK123', auth_token: 'secret' }, { from: '555-0100', base_url: 'ftp://x', rate_per_second: 0 })).toEqual([
      'credentials.account_sid',
      'credentials.auth_token',
      'config.base_url',
      'config.rate_per_second',
      'config.from',
    ]);
    expect(fields(good, { from: 'Far Too Long Sender', messaging_service_sid: 'MG1' })).toEqual(['config.from', 'config.messaging_service_sid']);
  });
});

describe('webhooks', () => {
  const URL_ = `${PUBLIC}/webhooks/twilio`;
  const acc = () => account();
  const customer = '+14155552671';

  function incoming(extra: Partial<Parameters<typeof incomingMessage>[0]> = {}): InboundRequest {
    return asInboundRequest(incomingMessage({ authToken: TOKEN, url: URL_, accountSid: ACCOUNT_SID, from: customer, to: FROM, body: 'STOP? no: moving_now', ...extra }), new Date('2026-03-02T10:00:00Z'));
  }

  function status(messageSid: string, s: string, extra: Partial<Parameters<typeof messageStatusCallback>[0]> = {}): InboundRequest {
    return asInboundRequest(messageStatusCallback({ authToken: TOKEN, url: URL_, accountSid: ACCOUNT_SID, from: FROM, to: customer, messageSid, status: s, ...extra }), new Date('2026-03-02T10:00:05Z'));
  }

  it('routes an incoming message by the number it was sent to, a status callback by the sender, a per-account URL by its id', () => {
    expect(inbound.route(incoming())).toEqual({ address: FROM });
    expect(inbound.route(status(sid('SM'), 'delivered'))).toEqual({ address: FROM });
    const perAccount = asInboundRequest(messageStatusCallback({ authToken: TOKEN, url: `${URL_}/acc_tw`, accountSid: ACCOUNT_SID, from: '+14155550199', to: customer, messageSid: sid('SM'), status: 'sent' }));
    expect(inbound.route(perAccount)).toEqual({ account_id: 'acc_tw' });
  });

  it('verifies what Twilio signed with the account token and refuses forged, unsigned and tampered requests', () => {
    const req = incoming();
    expect(inbound.verify(req, acc())).toBe(true);
    expect(inbound.verify(req, account({ from: FROM }, { account_sid: ACCOUNT_SID, auth_token: 'f'.repeat(32) }))).toBe(false);
    const forged = asInboundRequest(incomingMessage({ authToken: '0'.repeat(32), url: URL_, accountSid: ACCOUNT_SID, from: customer, to: FROM, body: 'hi' }));
    expect(inbound.verify(forged, acc())).toBe(false);
    expect(inbound.verify({ ...req, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, acc())).toBe(false);
    const tampered = Buffer.from(req.rawBody.toString().replace('moving_now', 'moving_later'));
    expect(inbound.verify({ ...req, rawBody: tampered, form: Object.fromEntries(new URLSearchParams(tampered.toString())) }, acc())).toBe(false);
    expect(inbound.verify({ ...req, url: `${PUBLIC}/webhooks/twilio_whatsapp` }, acc())).toBe(false);
  });

  it('parses an incoming SMS with its media', () => {
    const messageSid = sid('MM');
    const req = incoming({ messageSid, media: [{ url: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1', contentType: 'image/jpeg' }] });
    expect(inbound.parse(req, acc())).toEqual([
      {
        type: 'message',
        channel: 'sms',
        from: customer,
        to: FROM,
        text: 'STOP? no: moving_now',
        payload: null,
        provider_message_id: messageSid,
        at: new Date('2026-03-02T10:00:00Z'),
        media: [{ url: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1', content_type: 'image/jpeg' }],
      },
    ]);
  });

  it('parses status callbacks: sent and delivered, nothing for queued, and dead or refusing addresses marked for suppression', () => {
    const id = sid('SM');
    const at = new Date('2026-03-02T10:00:05Z');
    expect(inbound.parse(status(id, 'queued'), acc())).toEqual([]);
    expect(inbound.parse(status(id, 'sent'), acc())).toEqual([{ type: 'status', provider_message_id: id, status: 'sent', at }]);
    expect(inbound.parse(status(id, 'delivered'), acc())).toEqual([{ type: 'status', provider_message_id: id, status: 'delivered', at }]);
    expect(inbound.parse(status(id, 'undelivered', { errorCode: '30003', errorMessage: 'Unreachable destination handset' }), acc())).toEqual([
      { type: 'status', provider_message_id: id, status: 'undeliverable', at, provider_code: '30003', error: 'Unreachable destination handset' },
    ]);
    expect(inbound.parse(status(id, 'undelivered', { errorCode: '30006' }), acc())).toEqual([
      { type: 'status', provider_message_id: id, status: 'undeliverable', at, provider_code: '30006', error: 'Twilio error 30006', suppress: 'bounce' },
    ]);
    expect(inbound.parse(status(id, 'failed', { errorCode: '21610' }), acc())).toMatchObject([{ status: 'failed', suppress: 'unsubscribe', provider_code: '21610' }]);
    expect(inbound.parse(status(id, 'failed', { errorCode: '30007' }), acc())).toMatchObject([{ status: 'failed', provider_code: '30007' }]);
  });

  it('gives the status callback the provider id send() returned', async () => {
    const sent = await send();
    const id = sent.ok ? sent.provider_message_id : '';
    const req = asInboundRequest(messageStatusCallback({ authToken: TOKEN, url: fake.accepted[0]!.params.StatusCallback as string, accountSid: ACCOUNT_SID, from: FROM, to: customer, messageSid: id, status: 'delivered' }));
    expect(inbound.verify(req, acc())).toBe(true);
    expect(inbound.parse(req, acc())).toMatchObject([{ provider_message_id: id, status: 'delivered' }]);
  });

  it('answers with an empty TwiML response and reads a form the route did not parse', () => {
    expect(inbound.respond!(incoming(), acc(), [])).toEqual({ status: 200, contentType: 'text/xml', body: '<Response/>' });
    const req = asInboundRequest(signedWebhook(TOKEN, URL_, { SmsStatus: 'received', MessageSid: 'SM9', From: customer, To: FROM, Body: 'hi' }));
    delete req.form;
    expect(inbound.parse(req, acc())).toMatchObject([{ provider_message_id: 'SM9', text: 'hi' }]);
  });
});
