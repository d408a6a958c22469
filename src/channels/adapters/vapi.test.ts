import { createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endOfCallReport, FakeVapi, statusUpdate, vapiServerRequest, type VapiAuth, type VapiCall } from '../../../test/fakes/vapi.js';
import { oneByteChanged } from '../../../test/helpers/adapters.js';
import type { InboundMessage, InboundRequest, InboundStatus, OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { vapiAdapter } from './vapi.js';

const API_KEY = randomUUID();
const PHONE_ID = randomUUID();
const PHONE = '+14155550100';
const ASSISTANT = randomUUID();
const OTHER_ASSISTANT = randomUUID();
const SECRET = 'vapi-server-secret-0123456789';
const inbound = vapiAdapter.inbound!;

function account(fake?: FakeVapi, over: { credentials?: Record<string, string>; config?: Record<string, unknown> } = {}): ProviderAccount {
  return {
    id: 'acc_vapi',
    tenant_id: 't1',
    name: 'voice',
    kind: 'vapi',
    channel: 'voice',
    priority: 0,
    credentials: { api_key: API_KEY, webhook_secret: SECRET, ...over.credentials },
    config: { phone_number_id: PHONE_ID, assistant_id: ASSISTANT, ...(fake ? { base_url: fake.baseUrl } : {}), ...over.config },
  };
}

function ctx(acc: ProviderAccount, timeoutMs = 2000): SendContext {
  return { account: acc, fetch: globalThis.fetch, publicUrl: 'https://rapport.example.com', timeoutMs };
}

function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: randomUUID(),
    tenant_id: 't1',
    channel: 'voice',
    to: '+14155550199',
    idempotency_key: 'enr1:call:0',
    body: 'Your appointment is tomorrow at 10. Can you confirm?',
    options: { variables: { first_name: 'Ada' } },
    contact: { name: 'Ada Lovelace', locale: 'en-GB' },
    ...over,
  };
}

describe('vapiAdapter.check', () => {
  it('accepts a complete account', () => {
    expect(vapiAdapter.check({ api_key: API_KEY, webhook_secret: SECRET }, { phone_number_id: PHONE_ID, assistant_id: ASSISTANT, phone_number: PHONE })).toEqual([]);
    expect(vapiAdapter.check({ api_key: API_KEY, webhook_secret: SECRET }, { phone_number_id: PHONE_ID, hmac_algorithm: 'sha512', hmac_payload_format: '{body}', hmac_signature_encoding: 'base64' })).toEqual([]);
  });

  it('names each bad field', () => {
    const fields = (creds: Record<string, string>, config: Record<string, unknown>) => vapiAdapter.check(creds, config).map((p) => p.field);
    expect(fields({}, {})).toEqual(['credentials.api_key', 'credentials.webhook_secret', 'config.phone_number_id']);
    expect(fields({ api_key: API_KEY, webhook_secret: 'short' }, { phone_number_id: PHONE })).toEqual(['credentials.webhook_secret', 'config.phone_number_id']);
    expect(
      fields(
        { api_key: API_KEY, webhook_secret: SECRET },
        { phone_number_id: PHONE_ID, assistant_id: 'my-assistant', phone_number: '0415 555 0100', base_url: 'api.vapi.ai', hmac_algorithm: 'md5' },
      ),
    ).toEqual(['config.assistant_id', 'config.phone_number', 'config.base_url', 'config.hmac_algorithm']);
    expect(fields({ api_key: API_KEY, webhook_secret: SECRET }, { phone_number_id: PHONE_ID, hmac_payload_format: '{timestamp}' })).toEqual(['config.hmac_payload_format']);
    expect(fields({ api_key: API_KEY, webhook_secret: SECRET }, { phone_number_id: PHONE_ID, hmac_payload_format: '{svix-id}.{body}' })).toEqual(['config.hmac_payload_format']);
    expect(fields({ api_key: API_KEY, webhook_secret: SECRET }, { phone_number_id: PHONE_ID, hmac_signature_encoding: 'base32' })).toEqual(['config.hmac_signature_encoding']);
  });
});

describe('vapiAdapter.send', () => {
  let fake: FakeVapi;
  beforeEach(async () => {
    fake = await new FakeVapi({ apiKey: API_KEY, phoneNumbers: { [PHONE_ID]: PHONE }, assistants: [ASSISTANT, OTHER_ASSISTANT] }).start();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('creates an outbound call with the rendered text as {{message}} and returns the call id', async () => {
    const msg = message();
    const result = await vapiAdapter.send(msg, ctx(account(fake)));
    expect(fake.calls).toHaveLength(1);
    expect(result).toEqual({ ok: true, provider_message_id: fake.calls[0]!.id, status: 'sent' });

    const req = fake.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/call');
    expect(req.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({
      assistantId: ASSISTANT,
      phoneNumberId: PHONE_ID,
      customer: { number: '+14155550199', name: 'Ada Lovelace' },
      assistantOverrides: {
        variableValues: { first_name: 'Ada', message: msg.body },
        metadata: { rapport_message_id: msg.id, rapport_tenant_id: 't1' },
      },
    });
  });

  it('lets the step choose the assistant, and leaves out a name it does not know', async () => {
    const result = await vapiAdapter.send(message({ options: { assistant_id: OTHER_ASSISTANT }, contact: { name: null, locale: null }, body: undefined }), ctx(account(fake)));
    expect(result.ok).toBe(true);
    expect(fake.requests[0]!.body).toMatchObject({ assistantId: OTHER_ASSISTANT, customer: { number: '+14155550199' }, assistantOverrides: { variableValues: {} } });
    expect((fake.requests[0]!.body as any).customer).not.toHaveProperty('name');
  });

  it('refuses a number that is not E.164 without calling Vapi', async () => {
    expect(await vapiAdapter.send(message({ to: '0415550199' }), ctx(account(fake)))).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(await vapiAdapter.send(message({ to: null }), ctx(account(fake)))).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(fake.requests).toHaveLength(0);
  });

  it("maps Vapi's customer.number validation error to invalid_recipient", async () => {
    fake.next({ status: 400, body: { message: ['customer.number must be a valid phone number in the E.164 format. Hot tip, you may be missing the country code (Eg. US: +1).'], error: 'Bad Request', statusCode: 400 } });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient', provider_code: '400' });
  });

  it('maps a bad private key to auth (temporary: another provider may do better)', async () => {
    const result = await vapiAdapter.send(message(), ctx(account(fake, { credentials: { api_key: randomUUID() } })));
    expect(result).toMatchObject({ ok: false, permanent: false, code: 'auth' });
    expect(result.ok || result.error).toMatch(/Invalid Key/);
  });

  it('maps an unknown assistant or phone number, or none configured, to config', async () => {
    expect(await vapiAdapter.send(message(), ctx(account(fake, { config: { assistant_id: randomUUID() } })))).toMatchObject({ ok: false, code: 'config' });
    expect(await vapiAdapter.send(message(), ctx(account(fake, { config: { phone_number_id: randomUUID() } })))).toMatchObject({ ok: false, code: 'config' });
    const before = fake.requests.length;
    expect(await vapiAdapter.send(message(), ctx(account(fake, { config: { assistant_id: undefined } })))).toMatchObject({ ok: false, code: 'config' });
    expect(fake.requests).toHaveLength(before);
  });

  it('waits on 429 for Retry-After (default 1 s)', async () => {
    fake.next({ status: 429, headers: { 'retry-after': '5' }, body: { statusCode: 429, message: 'ThrottlerException: Too Many Requests' } }, { status: 429, body: { statusCode: 429, message: 'ThrottlerException: Too Many Requests' } });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 5000 });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 1000 });
  });

  it('treats a call blocked by the concurrency limit as rate limited, whichever way Vapi says it', async () => {
    fake.next({ concurrencyBlocked: true }, { status: 400, body: { error: 'Over Concurrency Limit' } });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 30_000 });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 30_000 });
    expect(fake.calls).toHaveLength(0);
  });

  it('treats 5xx, a hang and a 2xx without a call id as temporary', async () => {
    fake.next({ status: 500, body: { statusCode: 500, message: 'Internal server error' } }, { status: 503 }, { status: 201, body: {} });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'server' });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'server' });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: false, code: 'server' });
    fake.next({ hang: true });
    expect(await vapiAdapter.send(message(), ctx(account(fake), 300))).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
  });

  it('refuses other 400s for good', async () => {
    fake.next({ status: 400, body: { message: ['assistantOverrides.variableValues must be an object'], error: 'Bad Request', statusCode: 400 } });
    // "assistant" appears in the message, but it names a field of the request, not a missing resource.
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
    fake.next({ status: 400, body: { message: ['firstMessage must be shorter than or equal to 1000 characters'], error: 'Bad Request', statusCode: 400 } });
    expect(await vapiAdapter.send(message(), ctx(account(fake)))).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '400' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('vapi inbound: route and verify', () => {
  const body = { message: { type: 'status-update', status: 'ringing', call: { id: randomUUID(), type: 'outboundPhoneCall' } } };
  const req = (auth: VapiAuth, receivedAt?: Date) => vapiServerRequest(body, { accountId: 'acc_vapi', auth, ...(receivedAt ? { receivedAt } : {}) });

  it('routes by the account id at the end of the URL', () => {
    expect(inbound.route(req({ kind: 'none' }))).toEqual({ account_id: 'acc_vapi' });
    const other = (url: string): InboundRequest => ({ ...req({ kind: 'none' }), url });
    expect(inbound.route(other('https://r.example/webhooks/vapi/acc%2F1?x=1'))).toEqual({ account_id: 'acc/1' });
    expect(inbound.route(other('https://r.example/webhooks/vapi'))).toBeNull();
    expect(inbound.route(other('https://r.example/webhooks/vapi/'))).toBeNull();
    expect(inbound.route(other('https://r.example/webhooks/twilio/acc_vapi'))).toBeNull();
    expect(inbound.route(other('https://r.example/webhooks/vapi/%E0%A4%A'))).toBeNull();
  });

  it('accepts the secret in x-vapi-secret or as a Bearer token, and nothing else', () => {
    const acc = account();
    expect(inbound.verify(req({ kind: 'x-vapi-secret', secret: SECRET }), acc)).toBe(true);
    expect(inbound.verify(req({ kind: 'bearer', secret: SECRET }), acc)).toBe(true);
    expect(inbound.verify(req({ kind: 'x-vapi-secret', secret: `${SECRET}x` }), acc)).toBe(false);
    expect(inbound.verify(req({ kind: 'bearer', secret: 'someone-elses-secret-value' }), acc)).toBe(false);
    expect(inbound.verify(req({ kind: 'none' }), acc)).toBe(false);
    expect(inbound.verify(req({ kind: 'x-vapi-secret', secret: SECRET }), account(undefined, { credentials: { webhook_secret: '' } }))).toBe(false);
    // A right secret beside a wrong one is still a forgery.
    const mixed = req({ kind: 'x-vapi-secret', secret: SECRET });
    expect(inbound.verify({ ...mixed, headers: { ...mixed.headers, authorization: 'Bearer nope' } }, acc)).toBe(false);
  });

  it("verifies Vapi's default HMAC credential (sha256, hex, x-signature over {timestamp}.{body})", () => {
    const acc = account();
    const now = new Date();
    expect(inbound.verify(req({ kind: 'hmac', secret: SECRET }, now), acc)).toBe(true);
    expect(inbound.verify(req({ kind: 'hmac', secret: SECRET, timestamp: String(Math.floor(now.getTime() / 1000)) }, now), acc)).toBe(true);
    expect(inbound.verify(req({ kind: 'hmac', secret: 'another-secret-altogether' }, now), acc)).toBe(false);
    // Replays: a correct signature made long ago, or with no timestamp at all.
    expect(inbound.verify(req({ kind: 'hmac', secret: SECRET, timestamp: String(now.getTime() - 301_000) }, now), acc)).toBe(false);
    const signed = req({ kind: 'hmac', secret: SECRET }, now);
    const { 'x-timestamp': _t, ...noStamp } = signed.headers;
    expect(inbound.verify({ ...signed, headers: noStamp }, acc)).toBe(false);
    // Tampering with the body after signing.
    const tampered = Buffer.from(signed.rawBody.toString().replace('ringing', 'ended'));
    expect(inbound.verify({ ...signed, rawBody: tampered }, acc)).toBe(false);
  });

  it('follows the HMAC settings the account mirrors from its Vapi credential', () => {
    const acc = account(undefined, {
      config: { hmac_algorithm: 'sha512', hmac_signature_header: 'X-Vapi-Signature', hmac_payload_format: '{body}', hmac_signature_encoding: 'base64', hmac_signature_prefix: 'sha512=' },
    });
    const auth: VapiAuth = { kind: 'hmac', secret: SECRET, algorithm: 'sha512', signatureHeader: 'x-vapi-signature', payloadFormat: '{body}', encoding: 'base64', signaturePrefix: 'sha512=' };
    expect(inbound.verify(req(auth), acc)).toBe(true);
    expect(inbound.verify(req({ ...auth, signaturePrefix: 'sha256=' }), acc)).toBe(false);
    expect(inbound.verify(req({ ...auth, algorithm: 'sha256' }), acc)).toBe(false);
    // Default settings do not accept a body-only signature: that would drop the replay guard.
    expect(inbound.verify(req({ kind: 'hmac', secret: SECRET, payloadFormat: '{body}' }), account())).toBe(false);
    const withUrl = account(undefined, { config: { hmac_payload_format: '{method} {url}\n{body}' } });
    expect(inbound.verify(req({ kind: 'hmac', secret: SECRET, payloadFormat: '{method} {url}\n{body}' }), withUrl)).toBe(true);
  });

  it('property: an HMAC-signed body verifies, and any one changed byte does not', () => {
    const acc = account(undefined, { config: { hmac_payload_format: '{body}' } });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 1000 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, flip) => {
        const raw = Buffer.from(bytes);
        const sig = createHmac('sha256', SECRET).update(raw).digest('hex');
        const base: InboundRequest = { method: 'POST', url: 'https://r.example/webhooks/vapi/acc_vapi', headers: { 'x-signature': sig }, rawBody: raw, query: {}, receivedAt: new Date() };
        const changed = oneByteChanged(raw, at, flip);
        return inbound.verify(base, acc) && !inbound.verify({ ...base, rawBody: changed }, acc);
      }),
      { numRuns: 300 },
    );
  });

  it('property: any single-character change to the x-vapi-secret fails', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 16, maxLength: 64 }), fc.nat(), fc.string({ minLength: 1, maxLength: 1 }), (secret, at, ch) => {
        const acc = account(undefined, { credentials: { webhook_secret: secret } });
        const ok = req({ kind: 'x-vapi-secret', secret });
        const i = at % secret.length;
        const forged = secret.slice(0, i) + ch + secret.slice(i + 1);
        return inbound.verify(ok, acc) && (forged === secret || !inbound.verify({ ...ok, headers: { ...ok.headers, 'x-vapi-secret': forged } }, acc));
      }),
      { numRuns: 300 },
    );
  });
});

describe('vapi inbound: parse', () => {
  let fake: FakeVapi;
  let call: VapiCall;
  let sentId: string;
  const acc = () => account(fake);
  const parse = (body: unknown) => inbound.parse(vapiServerRequest(body, { accountId: 'acc_vapi', auth: { kind: 'x-vapi-secret', secret: SECRET } }), acc());
  const conversation = [
    { role: 'bot' as const, message: 'Hi Ada, this is Acme Dental. Your appointment is tomorrow at 10. Can you confirm?' },
    { role: 'user' as const, message: 'Yes, that works, see you then.' },
    { role: 'bot' as const, message: 'Great, goodbye!' },
  ];

  beforeEach(async () => {
    fake = await new FakeVapi({ apiKey: API_KEY, phoneNumbers: { [PHONE_ID]: PHONE }, assistants: [ASSISTANT] }).start();
    const result = await vapiAdapter.send(message(), ctx(account(fake)));
    if (!result.ok) throw new Error(result.error);
    sentId = result.provider_message_id;
    call = fake.calls[0]!;
  });
  afterEach(async () => {
    await fake.close();
  });

  it('marks an answered call delivered on status-update in-progress, and ignores ringing/queued', () => {
    const at = new Date('2030-01-02T03:04:05.678Z');
    expect(parse(statusUpdate(fake, call, 'in-progress', undefined, at))).toEqual([
      { type: 'status', provider_message_id: sentId, status: 'delivered', at, detail: { call_status: 'in-progress' } },
    ]);
    expect(parse(statusUpdate(fake, call, 'ringing'))).toEqual([]);
    expect(parse(statusUpdate(fake, call, 'queued'))).toEqual([]);
  });

  it('settles only uncontradictable endings on status-update ended', () => {
    expect(parse(statusUpdate(fake, call, 'ended', 'customer-did-not-answer'))).toMatchObject([{ status: 'failed', provider_code: 'customer-did-not-answer', detail: { outcome: 'no-answer' } }]);
    expect(parse(statusUpdate(fake, call, 'ended', 'voicemail'))).toMatchObject([{ status: 'delivered', detail: { voicemail: true } }]);
    expect(parse(statusUpdate(fake, call, 'ended', 'call.start.error-get-assistant'))).toMatchObject([{ status: 'failed', error: 'call.start.error-get-assistant' }]);
    // These wait for the end-of-call report, which knows whether the customer spoke.
    expect(parse(statusUpdate(fake, call, 'ended', 'customer-ended-call'))).toEqual([]);
    expect(parse(statusUpdate(fake, call, 'ended', 'pipeline-error-openai-llm-failed'))).toEqual([]);
    expect(parse(statusUpdate(fake, call, 'ended'))).toEqual([]);
  });

  it('turns a conversation into replied plus an InboundMessage that wakes a waiting journey', () => {
    const endedAt = new Date('2030-01-02T03:10:00.000Z');
    const items = parse(
      endOfCallReport(fake, call, {
        endedReason: 'customer-ended-call',
        turns: conversation,
        summary: 'Ada confirmed the appointment for tomorrow at 10.',
        structuredData: { intent: 'confirm', date: '2030-01-03' },
        successEvaluation: 'true',
        cost: 0.1234,
        durationSeconds: 42.5,
        recordingUrl: 'https://storage.vapi.ai/rec-stereo.wav',
        endedAt,
      }),
    );
    expect(items).toHaveLength(2);
    const status = items[0] as InboundStatus;
    expect(status).toEqual({
      type: 'status',
      provider_message_id: sentId,
      status: 'replied',
      at: endedAt,
      cost: 0.1234,
      currency: 'USD',
      detail: {
        ended_reason: 'customer-ended-call',
        outcome: 'conversation',
        transcript: conversation.map((t) => `${t.role === 'bot' ? 'AI' : 'User'}: ${t.message}`).join('\n'),
        summary: 'Ada confirmed the appointment for tomorrow at 10.',
        structured_data: { intent: 'confirm', date: '2030-01-03' },
        success_evaluation: 'true',
        duration_seconds: 42.5,
        recording_url: 'https://storage.vapi.ai/rec-stereo.wav',
        cost: 0.1234,
      },
    });
    const reply = items[1] as InboundMessage;
    expect(reply).toEqual({
      type: 'message',
      channel: 'voice',
      from: '+14155550199',
      to: PHONE,
      text: 'Ada confirmed the appointment for tomorrow at 10.',
      payload: 'confirm',
      provider_message_id: `${sentId}:report`,
      at: endedAt,
      in_reply_to: sentId,
    });
  });

  it('falls back to the transcript as text and the structured data as JSON payload', () => {
    const items = parse(endOfCallReport(fake, call, { endedReason: 'assistant-ended-call', turns: conversation, structuredData: { confirmed: true } }));
    const reply = items.find((i) => i.type === 'message') as InboundMessage;
    expect(reply.text).toContain('User: Yes, that works');
    expect(reply.payload).toBe('{"confirmed":true}');
    expect(parse(endOfCallReport(fake, call, { endedReason: 'assistant-ended-call', turns: conversation })).find((i) => i.type === 'message')).toMatchObject({ payload: null });
  });

  it('maps the endings that are not a conversation', () => {
    const one = (endedReason: string, turns: { role: 'bot' | 'user'; message: string }[] = []) => parse(endOfCallReport(fake, call, { endedReason, turns }));
    // A voicemail greeting is transcribed as user speech; it is still not a reply.
    const vm = one('voicemail', [{ role: 'user', message: "Hi, you've reached Ada, leave a message." }, { role: 'bot', message: 'Hi Ada, calling about tomorrow.' }]);
    expect(vm).toHaveLength(1);
    expect(vm[0]).toMatchObject({ status: 'delivered', detail: { voicemail: true, outcome: 'voicemail' } });
    expect(one('customer-did-not-answer')).toMatchObject([{ status: 'failed', provider_code: 'customer-did-not-answer', detail: { outcome: 'no-answer' } }]);
    expect(one('customer-busy')).toMatchObject([{ status: 'failed', detail: { outcome: 'busy' } }]);
    expect(one('call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable')).toMatchObject([{ status: 'failed', detail: { outcome: 'no-answer' } }]);
    expect(one('twilio-reported-customer-misdialed')).toMatchObject([{ status: 'undeliverable', detail: { outcome: 'misdialed' } }]);
    expect(one('silence-timed-out', [{ role: 'bot', message: 'Hello? Anyone there?' }])).toMatchObject([{ status: 'delivered', detail: { outcome: 'answered' } }]);
    expect(one('pipeline-error-openai-llm-failed')).toMatchObject([{ status: 'failed', provider_code: 'pipeline-error-openai-llm-failed', detail: { outcome: 'error' } }]);
    // The assistant failed mid-call, but the customer had spoken: that is still a reply.
    const broken = one('call.in-progress.error-vapifault-worker-died', conversation.slice(0, 2));
    expect(broken.map((i) => (i.type === 'status' ? i.status : i.type))).toEqual(['replied', 'message']);
  });

  it('turns a conversation on a call the customer placed into a message only', () => {
    const inboundCall = { ...call, id: randomUUID(), type: 'inboundPhoneCall' } as VapiCall;
    const items = parse(endOfCallReport(fake, inboundCall, { endedReason: 'customer-ended-call', turns: conversation, summary: 'Ada called to confirm.' }));
    expect(items).toEqual([
      expect.objectContaining({ type: 'message', from: '+14155550199', to: PHONE, text: 'Ada called to confirm.', provider_message_id: `${inboundCall.id}:report` }),
    ]);
    expect(items[0]).not.toHaveProperty('in_reply_to');
  });

  it('ignores other server messages and bodies without a call', () => {
    expect(parse({ message: { type: 'conversation-update', call, messages: [] } })).toEqual([]);
    expect(parse({ message: { type: 'tool-calls', call, toolCallList: [] } })).toEqual([]);
    expect(parse({ message: { type: 'end-of-call-report', endedReason: 'customer-ended-call' } })).toEqual([]);
    expect(parse({ hello: 'world' })).toEqual([]);
    // Read from the raw bytes when the route did not parse the JSON.
    const { json: _json, ...raw } = vapiServerRequest(statusUpdate(fake, call, 'in-progress'), { accountId: 'acc_vapi', auth: { kind: 'none' } });
    expect(inbound.parse(raw, acc())).toMatchObject([{ status: 'delivered', provider_message_id: sentId }]);
  });

  it('answers 200 with an empty JSON object', () => {
    const req = vapiServerRequest(statusUpdate(fake, call, 'ringing'), { accountId: 'acc_vapi', auth: { kind: 'none' } });
    expect(inbound.respond!(req, acc(), [])).toEqual({ status: 200, contentType: 'application/json', body: '{}' });
  });
});
