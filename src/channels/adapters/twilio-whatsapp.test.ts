import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asInboundRequest, FakeTwilio, incomingMessage, messageStatusCallback, sid } from '../../../test/fakes/twilio.js';
import type { OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { twilioWhatsappAdapter } from './twilio-whatsapp.js';

const ACCOUNT_SID = `AC${'3'.repeat(32)}`;
const TOKEN = '0123456789abcdef0123456789abcdef';
const FROM = '+14155238886';
const PUBLIC = 'https://rapport.example';
const REMINDER = `HX${'a'.repeat(32)}`;
const REMINDER_DE = `HX${'b'.repeat(32)}`;

let fake: FakeTwilio;
beforeEach(async () => {
  fake = await FakeTwilio.start({ [ACCOUNT_SID]: TOKEN });
});
afterEach(() => fake.close());

function account(config: Record<string, unknown> = {}): ProviderAccount {
  return {
    id: 'acc_twa',
    tenant_id: 't1',
    name: 'Twilio WhatsApp',
    kind: 'twilio_whatsapp',
    channel: 'whatsapp',
    priority: 0,
    credentials: { account_sid: ACCOUNT_SID, auth_token: TOKEN },
    config: { base_url: fake.url, from: FROM, content_sids: { move_reminder: REMINDER, 'move_reminder:de': REMINDER_DE }, ...config },
  };
}

const ctx = (acc = account(), publicUrl: string | null = PUBLIC): SendContext => ({ account: acc, fetch: globalThis.fetch, publicUrl, timeoutMs: 2000 });

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: 'msg_w', tenant_id: 't1', channel: 'whatsapp', to: '+447700900123', idempotency_key: 'enr2:n1:0', body: 'Hi Ada, your movers arrive at 9.', ...overrides };
}

const send = (msg = message(), c = ctx()) => twilioWhatsappAdapter.send(msg, c);
const inbound = twilioWhatsappAdapter.inbound!;

describe('send', () => {
  it('sends session text and media with whatsapp: addresses', async () => {
    const result = await send(message({ options: { media: 'https://cdn.example/checklist.pdf' } }));
    expect(result).toMatchObject({ ok: true, provider_message_id: fake.accepted[0]!.sid });
    expect(fake.accepted[0]!.params).toEqual({
      To: 'whatsapp:+447700900123',
      From: `whatsapp:${FROM}`,
      Body: 'Hi Ada, your movers arrive at 9.',
      MediaUrl: 'https://cdn.example/checklist.pdf',
      StatusCallback: `${PUBLIC}/webhooks/twilio_whatsapp`,
    });
  });

  it('sends a template by Content SID with numbered ContentVariables and no Body', async () => {
    const template = { name: REMINDER, language: 'en', parameters: ['Ada', 'Tuesday "9:00" & early'] };
    expect(await send(message({ whatsapp_template: template }))).toMatchObject({ ok: true });
    const params = fake.accepted[0]!.params;
    expect(params).toMatchObject({ To: 'whatsapp:+447700900123', From: `whatsapp:${FROM}`, ContentSid: REMINDER });
    expect(params.Body).toBeUndefined();
    expect(JSON.parse(params.ContentVariables as string)).toEqual({ 1: 'Ada', 2: 'Tuesday "9:00" & early' });
  });

  it('finds a template by name, per language first, in config.content_sids', async () => {
    await send(message({ whatsapp_template: { name: 'move_reminder', language: 'de', parameters: [] } }));
    await send(message({ whatsapp_template: { name: 'move_reminder', language: 'fr', parameters: ['x'] } }));
    expect(fake.accepted.map((r) => r.params.ContentSid)).toEqual([REMINDER_DE, REMINDER]);
    expect(fake.accepted[0]!.params.ContentVariables).toBeUndefined();
    const unknown = await send(message({ whatsapp_template: { name: 'welcome', language: 'en', parameters: [] } }));
    expect(unknown).toMatchObject({ ok: false, permanent: false, code: 'config' });
    expect(fake.requests).toHaveLength(2);
  });

  it('uses a Messaging Service when there is no sender number', async () => {
    const service = `MG${'4'.repeat(32)}`;
    await send(message(), ctx(account({ from: undefined, messaging_service_sid: service })));
    expect(fake.accepted[0]!.params).toMatchObject({ MessagingServiceSid: service, StatusCallback: `${PUBLIC}/webhooks/twilio_whatsapp/acc_twa` });
    expect(fake.accepted[0]!.params.From).toBeUndefined();
  });

  it.each([
    [{ status: 400, code: 63016, message: 'Failed to send freeform message because you are outside the allowed window.' }, { permanent: true, code: 'rejected', provider_code: '63016' }],
    [{ status: 400, code: 63003, message: 'Channel could not find To address' }, { permanent: true, code: 'invalid_recipient' }],
    [{ status: 400, code: 63007, message: 'Twilio could not find a Channel with the specified From address' }, { permanent: false, code: 'config' }],
    [{ status: 429, code: 63018, message: 'Rate limit exceeded for Channel', retryAfter: '1' }, { permanent: false, code: 'rate_limited', retry_after_ms: 1000 }],
    [{ status: 400, code: 63014, message: 'Channel message blocked by user action' }, { permanent: true, code: 'blocked' }],
    [{ status: 502, code: 20502, message: 'Bad Gateway' }, { permanent: false, code: 'server' }],
  ])('maps a scripted %o', async (script, expected) => {
    fake.script(script);
    expect(await send()).toMatchObject({ ok: false, ...expected });
  });

  it("relays Twilio's own validation: an unknown ContentSid format is refused", async () => {
    expect(await send(message({ whatsapp_template: { name: 'HXnot-a-sid', language: 'en', parameters: [] } }))).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '21655' });
  });
});

describe('check', () => {
  it('names bad fields, including Content SIDs that are not', () => {
    const creds = { account_sid: ACCOUNT_SID, auth_token: TOKEN };
    expect(twilioWhatsappAdapter.check(creds, { from: FROM, content_sids: { a: REMINDER } })).toEqual([]);
    expect(twilioWhatsappAdapter.check(creds, { from: 'Rapport', content_sids: { a: REMINDER, b: 'welcome', c: 3 } })).toEqual([
      { field: 'config.from', message: "must be an E.164 number, e.g. '+14155550100'" },
      { field: 'config.content_sids', message: "must map template names to Content SIDs ('HX' followed by 32 hex digits); not one: b, c" },
    ]);
    expect(twilioWhatsappAdapter.check(creds, { from: FROM, content_sids: ['x'] }).map((p) => p.field)).toEqual(['config.content_sids']);
  });
});

describe('webhooks', () => {
  const URL_ = `${PUBLIC}/webhooks/twilio_whatsapp`;
  const customer = '+447700900123';

  it('parses a quick-reply button press with the profile name and the message it answers', () => {
    const sent = sid('SM');
    const req = asInboundRequest(
      incomingMessage({
        authToken: TOKEN,
        url: URL_,
        accountSid: ACCOUNT_SID,
        whatsapp: true,
        from: customer,
        to: FROM,
        body: 'Moving now',
        buttonText: 'Moving now',
        buttonPayload: 'moving_now',
        profileName: 'Ada <Lovelace>',
        originalRepliedMessageSid: sent,
        messageSid: 'SMreply1',
      }),
      new Date('2026-03-02T11:00:00Z'),
    );
    expect(inbound.route(req)).toEqual({ address: FROM });
    expect(inbound.verify(req, account())).toBe(true);
    expect(inbound.parse(req, account())).toEqual([
      {
        type: 'message',
        channel: 'whatsapp',
        from: customer,
        to: FROM,
        text: 'Moving now',
        payload: 'moving_now',
        provider_message_id: 'SMreply1',
        at: new Date('2026-03-02T11:00:00Z'),
        profile_name: 'Ada <Lovelace>',
        in_reply_to: sent,
      },
    ]);
  });

  it('parses read receipts and the 24-hour window failure, and routes them by the sender', () => {
    const id = sid('SM');
    const status = (s: string, errorCode?: string) =>
      asInboundRequest(messageStatusCallback({ authToken: TOKEN, url: URL_, accountSid: ACCOUNT_SID, whatsapp: true, from: FROM, to: customer, messageSid: id, status: s, errorCode }));
    expect(inbound.route(status('read'))).toEqual({ address: FROM });
    expect(inbound.verify(status('read'), account())).toBe(true);
    expect(inbound.parse(status('read'), account())).toMatchObject([{ type: 'status', provider_message_id: id, status: 'read' }]);
    expect(inbound.parse(status('failed', '63016'), account())).toMatchObject([{ status: 'failed', provider_code: '63016' }]);
    expect(inbound.parse(status('undelivered', '63024'), account())).toMatchObject([{ status: 'undeliverable', suppress: 'bounce' }]);
    expect(inbound.parse(status('failed', '63014'), account())).toMatchObject([{ status: 'failed', suppress: 'unsubscribe' }]);
  });

  it('refuses a callback signed with another token', () => {
    const req = asInboundRequest(incomingMessage({ authToken: 'f'.repeat(32), url: URL_, accountSid: ACCOUNT_SID, whatsapp: true, from: customer, to: FROM, body: 'hi' }));
    expect(inbound.verify(req, account())).toBe(false);
  });
});
