import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amdAnswerRequest, asInboundRequest, callStatusCallback, FakeTwilio, gatherResult, sid } from '../../../test/fakes/twilio.js';
import type { InboundRequest, OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { twilioVoiceAdapter } from './twilio-voice.js';

const ACCOUNT_SID = `AC${'5'.repeat(32)}`;
const TOKEN = 'fedcba9876543210fedcba9876543210';
const FROM = '+14155550142';
const CUSTOMER = '+4915112345678';
const PUBLIC = 'https://rapport.example';
const HOOK = `${PUBLIC}/webhooks/twilio_voice`;

let fake: FakeTwilio;
beforeEach(async () => {
  fake = await FakeTwilio.start({ [ACCOUNT_SID]: TOKEN });
});
afterEach(() => fake.close());

function account(config: Record<string, unknown> = {}): ProviderAccount {
  return { id: 'acc_tv', tenant_id: 't1', name: 'Twilio Voice', kind: 'twilio_voice', channel: 'voice', priority: 0, credentials: { account_sid: ACCOUNT_SID, auth_token: TOKEN }, config: { base_url: fake.url, from: FROM, ...config } };
}

const ctx = (acc = account(), publicUrl: string | null = PUBLIC, timeoutMs = 2000): SendContext => ({ account: acc, fetch: globalThis.fetch, publicUrl, timeoutMs });

const MENU = [
  { digit: '1', say: 'Drücken Sie 1, wenn Sie jetzt umziehen.', payload: 'moving_now' },
  { digit: '2', say: 'Drücken Sie 2, um mit uns zu sprechen.', payload: 'talk_to_us', transfer: true },
];

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: 'msg_v',
    tenant_id: 't1',
    channel: 'voice',
    to: CUSTOMER,
    idempotency_key: 'enr3:call:0',
    body: 'Hallo Ada, Ihr Umzug ist am Dienstag.',
    contact: { name: 'Ada', locale: 'de_DE' },
    ...overrides,
  };
}

const send = (msg = message(), c = ctx()) => twilioVoiceAdapter.send(msg, c);
const inbound = twilioVoiceAdapter.inbound!;

/** The action URL of the <Gather> in a TwiML document, as Twilio will read it. */
function gatherAction(twiml: string): string {
  const start = twiml.indexOf('action="') + 'action="'.length;
  return twiml.slice(start, twiml.indexOf('"', start)).replaceAll('&amp;', '&');
}

const parties = { authToken: TOKEN, accountSid: ACCOUNT_SID, from: FROM, to: CUSTOMER };

describe('send', () => {
  it('places a call with inline TwiML in the contact\'s language and all four progress events', async () => {
    const result = await send();
    const [req] = fake.accepted;
    expect(result).toEqual({ ok: true, provider_message_id: req!.sid });
    expect(req!.sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(req!.resource).toBe('Calls');
    expect(req!.params).toEqual({
      To: CUSTOMER,
      From: FROM,
      Twiml: '<Response><Say language="de-DE" voice="Google.de-DE-Standard-A">Hallo Ada, Ihr Umzug ist am Dienstag.</Say><Hangup/></Response>',
      StatusCallback: HOOK,
      StatusCallbackMethod: 'POST',
      StatusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
    });
    expect(req!.params.MachineDetection).toBeUndefined();
  });

  it('lets the message and the account choose language and voice', async () => {
    await send(message({ options: { language: 'fr-CA' } }));
    await send(message({ contact: { name: null, locale: null } }), ctx(account({ voices: { 'en-US': 'Polly.Joanna' } })));
    await send(message({ options: { voice: 'Polly.Vicki' } }));
    expect(fake.accepted.map((r) => (r.params.Twiml as string).split('>')[1])).toEqual([
      '<Say language="fr-CA" voice="Google.fr-CA-Standard-A"',
      '<Say language="en-US" voice="Polly.Joanna"',
      '<Say language="de-DE" voice="Polly.Vicki"',
    ]);
  });

  it('adds a keypad menu whose action URL carries each key\'s payload and the transfer', async () => {
    await send(message({ options: { menu: MENU, transfer_to: '+4930123456' } }));
    const twiml = fake.accepted[0]!.params.Twiml as string;
    expect(twiml).toContain('<Gather input="dtmf" numDigits="1" timeout="6" action=');
    expect(twiml).toContain('>Drücken Sie 2, um mit uns zu sprechen.</Say></Gather><Hangup/></Response>');
    const action = new URL(gatherAction(twiml));
    expect(`${action.origin}${action.pathname}`).toBe(HOOK);
    expect(Object.fromEntries(action.searchParams)).toEqual({ e: 'gather', l: 'de-DE', v: 'Google.de-DE-Standard-A', p1: 'moving_now', p2: 'talk_to_us', x: '2', t: '+4930123456' });
  });

  it('places a voicemail call with synchronous detection and the plan in its signed Url', async () => {
    await send(message({ options: { menu: MENU, transfer_to: '+4930123456', voicemail: 'Bitte rufen Sie uns zurück & nennen Sie "Umzug".' } }));
    const params = fake.accepted[0]!.params;
    expect(params).toMatchObject({ To: CUSTOMER, From: FROM, Method: 'POST', MachineDetection: 'DetectMessageEnd', StatusCallback: HOOK });
    expect(params.Twiml).toBeUndefined();
    const url = params.Url as string;
    expect(url.startsWith(`${HOOK}?e=answer&s=`)).toBe(true);
    const call = { ...parties, callSid: sid('CA') };

    const machine = asInboundRequest(amdAnswerRequest({ ...call, url, answeredBy: 'machine_end_beep' }));
    expect(inbound.route(machine)).toEqual({ address: FROM });
    expect(inbound.verify(machine, account())).toBe(true);
    expect(inbound.parse(machine, account())).toMatchObject([{ type: 'status', provider_message_id: call.callSid, status: 'delivered', detail: { answered_by: 'machine_end_beep' } }]);
    expect(inbound.respond!(machine, account(), [])).toEqual({
      status: 200,
      contentType: 'text/xml',
      body: '<Response><Say language="de-DE" voice="Google.de-DE-Standard-A">Bitte rufen Sie uns zurück &amp; nennen Sie &quot;Umzug&quot;.</Say><Hangup/></Response>',
    });

    const human = asInboundRequest(amdAnswerRequest({ ...call, url, answeredBy: 'human' }));
    const humanTwiml = inbound.respond!(human, account(), []).body!;
    expect(humanTwiml).toContain('<Gather input="dtmf" numDigits="1"');
    expect(humanTwiml).toContain('>Hallo Ada, Ihr Umzug ist am Dienstag.</Say>');
    expect(Object.fromEntries(new URL(gatherAction(humanTwiml)).searchParams)).toMatchObject({ e: 'gather', p1: 'moving_now', x: '2', t: '+4930123456' });
    expect(inbound.respond!(asInboundRequest(amdAnswerRequest({ ...call, url, answeredBy: 'unknown' })), account(), []).body).toBe(humanTwiml);
    expect(inbound.respond!(asInboundRequest(amdAnswerRequest({ ...call, url, answeredBy: 'fax' })), account(), []).body).toBe('<Response><Hangup/></Response>');

    // The plan is covered by the signature: a Url edited on the way fails verification.
    const edited = asInboundRequest(amdAnswerRequest({ ...call, url, answeredBy: 'human' }));
    expect(inbound.verify({ ...edited, url: url.replace(/s=./, 's=A') }, account())).toBe(false);
  });

  it('refuses what cannot be called without calling Twilio', async () => {
    const refused = [
      await send(message({ to: null })),
      await send(message({ body: '' })),
      await send(message({ options: { menu: [{ digit: '12', say: 'x', payload: 'p' }] } })),
      await send(message({ options: { menu: [{ digit: '1', say: 'x', payload: 'p' }, { digit: '1', say: 'y', payload: 'q' }] } })),
      await send(message({ options: { menu: [{ digit: '1', say: 'x', payload: 'p', transfer: true }] } })),
      await send(message({ options: { transfer_to: '030 123' } })),
      await send(message({ body: 'x'.repeat(4000) })),
      await send(message({ body: 'x'.repeat(3500), options: { voicemail: 'Call us.' } })),
    ];
    expect(refused.map((r) => !r.ok && `${r.code}:${r.permanent}`)).toEqual([
      'invalid_recipient:true',
      'rejected:true',
      'rejected:true',
      'rejected:true',
      'rejected:true',
      'rejected:true',
      'rejected:true',
      'rejected:true',
    ]);
    expect(await send(message({ options: { menu: MENU.slice(0, 1) } }), ctx(account(), null))).toMatchObject({ ok: false, permanent: false, code: 'config' });
    expect(fake.requests).toHaveLength(0);
    // A plain script needs no public URL, and then no status callback is asked for.
    expect(await send(message(), ctx(account(), null))).toMatchObject({ ok: true });
    expect(fake.accepted[0]!.params.StatusCallback).toBeUndefined();
  });

  it.each([
    [{ status: 400, code: 21217, message: 'Phone number does not appear to be valid' }, { permanent: true, code: 'invalid_recipient' }],
    [{ status: 400, code: 21215, message: 'Geo Permission configuration is not permitting call' }, { permanent: false, code: 'config' }],
    [{ status: 429, code: 20429, message: 'Too Many Requests', retryAfter: '2' }, { permanent: false, code: 'rate_limited', retry_after_ms: 2000 }],
    [{ status: 500, code: 20500, message: 'Internal Server Error' }, { permanent: false, code: 'server' }],
    [{ status: 401, code: 20003, message: 'Authenticate' }, { permanent: false, code: 'auth' }],
  ])('maps a scripted %o', async (script, expected) => {
    fake.script(script);
    expect(await send()).toMatchObject({ ok: false, ...expected });
  });

  it('times out when Twilio does not answer', async () => {
    fake.script({ hang: true });
    expect(await send(message(), ctx(account(), PUBLIC, 250))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
  });
});

describe('check', () => {
  it('names bad fields', () => {
    const creds = { account_sid: ACCOUNT_SID, auth_token: TOKEN };
    expect(twilioVoiceAdapter.check(creds, { from: FROM, voices: { 'de-DE': 'Polly.Marlene' } })).toEqual([]);
    expect(twilioVoiceAdapter.check({ account_sid: ACCOUNT_SID, auth_token: '' }, { from: 'Rapport', voices: { 'de-DE': 3 } }).map((p) => p.field)).toEqual([
      'credentials.auth_token',
      'config.from',
      'config.voices',
    ]);
  });
});

describe('webhooks', () => {
  const callSid = sid('CA');
  const call = { ...parties, callSid, url: HOOK };
  const status = (s: string, extra: Partial<Parameters<typeof callStatusCallback>[0]> = {}): InboundRequest =>
    asInboundRequest(callStatusCallback({ ...call, status: s, timestamp: new Date('2026-03-02T12:00:00Z'), ...extra }));

  it('routes by the calling number and verifies the signature', () => {
    expect(inbound.route(status('ringing'))).toEqual({ address: FROM });
    expect(inbound.route(asInboundRequest(callStatusCallback({ ...call, url: `${HOOK}/acc_tv`, status: 'ringing' })))).toEqual({ account_id: 'acc_tv' });
    expect(inbound.verify(status('ringing'), account())).toBe(true);
    const other = asInboundRequest(callStatusCallback({ ...call, authToken: '9'.repeat(32), status: 'completed', duration: 30 }));
    expect(inbound.verify(other, account())).toBe(false);
  });

  it('turns call progress into statuses: answered and completed are delivered, busy and no-answer failed', () => {
    const at = new Date('2026-03-02T12:00:00Z');
    expect(inbound.parse(status('initiated'), account())).toEqual([]);
    expect(inbound.parse(status('ringing'), account())).toEqual([]);
    expect(inbound.parse(status('in-progress'), account())).toEqual([{ type: 'status', provider_message_id: callSid, status: 'delivered', at, detail: { call_status: 'in-progress' } }]);
    expect(inbound.parse(status('completed', { duration: 47, answeredBy: 'human' }), account())).toEqual([
      { type: 'status', provider_message_id: callSid, status: 'delivered', at, detail: { call_status: 'completed', answered_by: 'human', duration_s: 47 } },
    ]);
    expect(inbound.parse(status('busy'), account())).toMatchObject([{ status: 'failed', provider_code: 'busy', error: 'call busy' }]);
    expect(inbound.parse(status('no-answer'), account())).toMatchObject([{ status: 'failed', provider_code: 'no-answer' }]);
    expect(inbound.respond!(status('completed'), account(), [])).toEqual({ status: 200, contentType: 'text/xml', body: '<Response/>' });
  });

  it('turns a key press into a reply carrying the menu payload, and thanks the caller in their language', async () => {
    await send(message({ options: { menu: MENU, transfer_to: '+4930123456', thanks: 'Danke & tschüss!' } }));
    const action = gatherAction(fake.accepted[0]!.params.Twiml as string);
    const press = (digits: string) => asInboundRequest(gatherResult({ ...call, url: action, digits }), new Date('2026-03-02T12:01:00Z'));

    expect(inbound.route(press('1'))).toEqual({ address: FROM });
    expect(inbound.verify(press('1'), account())).toBe(true);
    expect(inbound.parse(press('1'), account())).toEqual([
      { type: 'message', channel: 'voice', from: CUSTOMER, to: FROM, text: null, payload: 'moving_now', provider_message_id: `${callSid}:gather`, at: new Date('2026-03-02T12:01:00Z'), in_reply_to: callSid },
    ]);
    expect(inbound.respond!(press('1'), account(), []).body).toBe('<Response><Say language="de-DE" voice="Google.de-DE-Standard-A">Danke &amp; tschüss!</Say><Hangup/></Response>');
    // A key outside the menu arrives as the raw keys.
    expect(inbound.parse(press('9'), account())).toMatchObject([{ payload: '9' }]);

    expect(inbound.parse(press('2'), account())).toMatchObject([{ payload: 'talk_to_us' }]);
    expect(inbound.respond!(press('2'), account(), [])).toEqual({ status: 200, contentType: 'text/xml', body: `<Response><Dial callerId="${FROM}">+4930123456</Dial></Response>` });

    // Payloads ride in the signed URL: changing one on the way breaks the signature.
    const forged = press('1');
    expect(inbound.verify({ ...forged, url: forged.url.replace('p1=moving_now', 'p1=cancel_move') }, account())).toBe(false);
  });

  it('takes a spoken answer as text', () => {
    const req = asInboundRequest(gatherResult({ ...call, url: `${HOOK}?e=gather&l=en-US&p1=yes`, speech: 'yes, moving now' }));
    expect(inbound.parse(req, account())).toMatchObject([{ type: 'message', channel: 'voice', text: 'yes, moving now', payload: null }]);
    expect(inbound.parse(asInboundRequest(gatherResult({ ...call, url: `${HOOK}?e=gather&l=en-US` })), account())).toEqual([]);
  });
});
