import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/api/app.js';
import { builtInAdapters } from '../src/channels/adapters/index.js';
import type { InboundRequest } from '../src/channels/types.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { SandboxProvider, type Delivery, type OutgoingMessage, type ProviderRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import type { Db } from '../src/store/db.js';
import { ingestEvents } from '../src/store/events.js';
import { createAccount } from '../src/store/provider-accounts.js';
import { createTenant } from '../src/store/tenants.js';
import { metaInbound, metaNotification, metaStatus, metaVerification, type WebhookRequest } from './fakes/meta-whatsapp.js';
import { SendgridFake } from './fakes/sendgrid.js';
import { callStatusCallback, gatherResult, incomingMessage, messageStatusCallback, sid, type TwilioWebhook } from './fakes/twilio.js';
import { inboundSms as vonageInboundSms, signedWebhook as vonageSigned } from './fakes/vonage.js';
import { freshDb } from './helpers/db.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/**
 * Providers' webhooks through the real HTTP app: signatures computed the way each provider
 * computes them, routing by the receiving number to the right tenant, exactly-once recording,
 * keywords, and replies waking journeys.
 */

const PUBLIC = 'https://rapport.example.com';
const box = new SecretBox('inbound-test-secret-key-0123456789abcdef');
const hex = (n: number) => randomBytes(n).toString('hex').slice(0, n);

/** Records every send; answers with an id in the provider's own format. */
class RecordingProvider implements ProviderRegistry {
  readonly calls: OutgoingMessage[] = [];
  async send(msg: OutgoingMessage): Promise<Delivery> {
    this.calls.push(msg);
    const provider = msg.channel === 'whatsapp' ? 'meta_whatsapp' : 'twilio';
    const id = provider === 'meta_whatsapp' ? `wamid.${randomBytes(12).toString('base64url')}` : sid('SM');
    return { provider, account_id: null, result: { ok: true, provider_message_id: id } };
  }
}

let db: Db;
let app: App;
let clock: ManualClock;

interface TwilioTenant {
  id: string;
  number: string;
  accountSid: string;
  authToken: string;
  accountId: string;
}

async function twilioTenant(name: string, number: string, config: Record<string, unknown> = {}): Promise<TwilioTenant> {
  const t = await createTenant(db, { name });
  await allowAnyTime(db, t.id);
  const accountSid = `AC${hex(32)}`;
  const authToken = hex(32);
  const account = await createAccount(
    db,
    { secrets: box, adapters: builtInAdapters(new SandboxProvider()) },
    t.id,
    { name: 'twilio', kind: 'twilio', credentials: { account_sid: accountSid, auth_token: authToken }, config: { from: number, ...config } },
    'test',
    clock.now(),
  );
  return { id: t.id, number, accountSid, authToken, accountId: account.id };
}

async function post(w: TwilioWebhook | WebhookRequest | InboundRequest): Promise<{ status: number; body: string; type: string }> {
  const url = new URL(w.url);
  const body = 'rawBody' in w ? w.rawBody : w.body;
  const res = await app.inject({ method: w.method, url: url.pathname + url.search, headers: w.headers as Record<string, string>, ...(w.method === 'POST' ? { payload: body } : {}) });
  return { status: res.statusCode, body: res.body, type: String(res.headers['content-type'] ?? '') };
}

const count = async (sql: string, params: unknown[]) => Number((await db.query<{ n: string }>(`select count(*)::int as n from ${sql}`, params)).rows[0]!.n);

async function snapshot(tenantId: string): Promise<Record<string, number>> {
  const tables = ['contacts', 'conversations', 'inbound_messages', 'events', 'consent_records', 'messages', 'suppressions'];
  const out: Record<string, number> = {};
  for (const t of tables) out[t] = await count(`${t} where tenant_id = $1`, [tenantId]);
  out.message_status = await count('message_status s join messages m on m.id = s.message_id where m.tenant_id = $1', [tenantId]);
  out.pending = await count('pending_receipts', []);
  const { rows } = await db.query<{ at: Date | null }>('select max(last_inbound_at) as at from conversations where tenant_id = $1', [tenantId]);
  out.last_inbound = rows[0]?.at ? new Date(rows[0].at).getTime() : 0;
  return out;
}

beforeAll(async () => {
  db = await freshDb();
  clock = new ManualClock('2026-03-02T15:00:00Z');
  app = await buildApp({ db, clock, secrets: box, adapters: builtInAdapters(new SandboxProvider()), publicUrl: PUBLIC });
});
afterAll(async () => {
  await app.close();
  await db.close();
});
beforeEach(() => clock.advance(60_000));

const sms = (t: TwilioTenant, from: string, body: string, extra: { messageSid?: string } = {}) =>
  incomingMessage({ authToken: t.authToken, url: `${PUBLIC}/webhooks/twilio`, accountSid: t.accountSid, from, to: t.number, body, ...extra });

describe('Twilio inbound messages', () => {
  let a: TwilioTenant;
  let b: TwilioTenant;
  beforeAll(async () => {
    a = await twilioTenant('Acme Parking', '+14155550101');
    b = await twilioTenant('Bistro Uno', '+14155550102');
  });

  it('routes an unknown sender by the receiving number, creates the contact there, opens the thread and records the reply event', async () => {
    const res = await post(sms(b, '+12125550123', 'Is the terrace open tonight?'));
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/xml');
    expect(res.body).toBe('<Response/>');
    const contact = (await db.query<{ id: string; tenant_id: string; phone: string }>('select id, tenant_id, phone from contacts where phone = $1', ['+12125550123'])).rows;
    expect(contact).toEqual([expect.objectContaining({ tenant_id: b.id, phone: '+12125550123' })]);
    const inbound = (await db.query<any>('select * from inbound_messages where contact_id = $1', [contact[0]!.id])).rows;
    expect(inbound).toHaveLength(1);
    expect(inbound[0]).toMatchObject({ tenant_id: b.id, channel: 'sms', provider: 'twilio', account_id: b.accountId, from_address: '+12125550123', to_address: b.number, text: 'Is the terrace open tonight?', keyword: null });
    const convo = (await db.query<any>('select * from conversations where contact_id = $1', [contact[0]!.id])).rows[0];
    expect(convo).toMatchObject({ channel: 'sms', status: 'open' });
    expect(new Date(convo.last_inbound_at).getTime()).toBe(clock.now().getTime());
    const events = (await db.query<any>('select name, properties from events where contact_id = $1', [contact[0]!.id])).rows;
    expect(events).toEqual([{ name: 'message.received', properties: expect.objectContaining({ channel: 'sms', text: 'Is the terrace open tonight?', message_id: inbound[0].id }) }]);
    expect(await count('contacts where tenant_id = $1 and phone = $2', [a.id, '+12125550123'])).toBe(0);
  });

  it('records a webhook delivered twice once, also when both deliveries race', async () => {
    const w = sms(a, '+12125550124', 'Moving it now');
    expect((await post(w)).status).toBe(200);
    const after = await snapshot(a.id);
    clock.advance(5_000);
    expect((await post(w)).status).toBe(200);
    expect(await snapshot(a.id)).toEqual(after);

    const raced = sms(a, '+12125550125', 'On my way');
    const answers = await Promise.all([post(raced), post(raced), post(raced)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await count('inbound_messages where tenant_id = $1 and from_address = $2', [a.id, '+12125550125'])).toBe(1);
    expect(await count('contacts where tenant_id = $1 and phone = $2', [a.id, '+12125550125'])).toBe(1);
    expect(await count(`events e join contacts c on c.id = e.contact_id where c.phone = $1`, ['+12125550125'])).toBe(1);
  });

  it('refuses a forged, re-signed or unsigned request with 401 and changes nothing', async () => {
    const before = await snapshot(a.id);
    const forged = incomingMessage({ authToken: hex(32), url: `${PUBLIC}/webhooks/twilio`, accountSid: a.accountSid, from: '+12125550126', to: a.number, body: 'STOP' });
    expect((await post(forged)).status).toBe(401);
    const tampered = sms(a, '+12125550126', 'hello');
    tampered.body = tampered.body.replace('hello', 'STOP');
    expect((await post(tampered)).status).toBe(401);
    const unsigned = sms(a, '+12125550126', 'hello');
    delete unsigned.headers['x-twilio-signature'];
    const res = await post(unsigned);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).error.code).toBe('invalid_signature');
    expect(await snapshot(a.id)).toEqual(before);
  });

  it('answers 404 for a number no account holds and for a provider Rapport has no webhook for', async () => {
    const stranger = incomingMessage({ authToken: a.authToken, url: `${PUBLIC}/webhooks/twilio`, accountSid: a.accountSid, from: '+12125550127', to: '+14155550199', body: 'hi' });
    expect((await post(stranger)).status).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/webhooks/nope', payload: '' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/webhooks/smtp', payload: '' })).statusCode).toBe(404);
    // An account id that is not valid percent-encoding, or names no account, is a client error, never a server error.
    for (const kind of ['sendgrid', 'resend', 'vapi', 'meta_whatsapp', 'vonage', 'twilio']) {
      const bad = await app.inject({ method: 'POST', url: `/webhooks/${kind}/%E0%A4%A`, headers: { 'content-type': 'application/json' }, payload: '{}' });
      expect([400, 404], kind).toContain(bad.statusCode);
      const unknown = await app.inject({ method: 'POST', url: `/webhooks/${kind}/not-an-account`, headers: { 'content-type': 'application/json' }, payload: '{}' });
      expect(unknown.statusCode, kind).toBe(404);
    }
  });

  it('moves a sent message forward on status callbacks, keeps early ones, and suppresses a dead number', async () => {
    const c = await createContact(db, a.id, { phone: '+12125550128' }, {}, clock.now());
    const id = randomUUIDv4();
    const messageSid = sid('SM');
    await db.query(
      `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
       values ($1, $2, $3, 'sms', 'sent', $4, '{}', '+12125550128', 'twilio', $5, $6, $6, $6)`,
      [id, a.id, c.id, `k-${id}`, messageSid, clock.now()],
    );
    const callback = (status: string, errorCode?: string) =>
      messageStatusCallback({ authToken: a.authToken, url: `${PUBLIC}/webhooks/twilio`, accountSid: a.accountSid, from: a.number, to: '+12125550128', messageSid, status, ...(errorCode ? { errorCode } : {}) });
    expect((await post(callback('delivered'))).status).toBe(200);
    expect((await db.query<any>('select status, delivered_at from messages where id = $1', [id])).rows[0]).toMatchObject({ status: 'delivered' });
    expect((await post(callback('failed', '30006'))).status).toBe(200);
    // Forward only: undeliverable ranks above delivered, so it is recorded, and the landline is suppressed.
    const after = (await db.query<any>('select status from messages where id = $1', [id])).rows[0];
    expect(after.status).toBe('undeliverable');
    expect((await db.query<any>('select channel, address, reason, source from suppressions where tenant_id = $1', [a.id])).rows).toEqual([
      { channel: 'sms', address: '+12125550128', reason: 'bounce (twilio 30006)', source: 'provider:twilio' },
    ]);

    const early = sid('SM');
    const pending = await count('pending_receipts where provider_message_id = $1', [early]);
    expect(pending).toBe(0);
    const res = await post(
      messageStatusCallback({ authToken: a.authToken, url: `${PUBLIC}/webhooks/twilio`, accountSid: a.accountSid, from: a.number, to: '+12125550128', messageSid: early, status: 'delivered' }),
    );
    expect(res.status).toBe(200);
    expect(await count('pending_receipts where provider_message_id = $1', [early])).toBe(1);
  });
});

function randomUUIDv4(): string {
  return globalThis.crypto.randomUUID();
}

describe('keywords', () => {
  let t: TwilioTenant;
  let provider: RecordingProvider;
  let worker: Worker;
  beforeAll(async () => {
    // Rapport, not Twilio, answers keywords on this number.
    t = await twilioTenant('Corner Cafe', '+14155550103', { keyword_replies: 'rapport' });
  });
  beforeEach(() => {
    provider = new RecordingProvider();
    worker = new Worker({ db, clock, providers: provider });
  });

  const consentOf = async (contactId: string) =>
    (await db.query<{ status: string; source: string }>(`select s.status, r.source from consent_state s join consent_records r on r.id = s.record_id where s.contact_id = $1 and s.channel = 'sms'`, [contactId])).rows[0];

  it('STOP revokes SMS consent, cancels queued sends, and the confirmation still goes out', async () => {
    const c = await createContact(db, t.id, { phone: '+12125550140' }, {}, clock.now());
    await grantAll(db, t.id, [c.id], ['sms']);
    await publishJourney(db, t.id, {
      entry: { event: 'visit' },
      nodes: [
        { id: 'wait', type: 'wait', duration: '1h', next: 'promo' },
        { id: 'promo', type: 'send', channel: 'sms', content: { body: 'A free coffee for you' } },
      ],
    });
    await ingestEvents(db, t.id, [{ name: 'visit', contact_id: c.id }], clock.now(), {});
    await worker.drain();

    const res = await post(sms(t, '+12125550140', '  Stop! '));
    expect(res.status).toBe(200);
    expect(await consentOf(c.id)).toEqual({ status: 'revoked', source: 'keyword' });
    const stored = (await db.query<any>('select keyword, intent from inbound_messages where contact_id = $1', [c.id])).rows[0];
    expect(stored).toEqual({ keyword: 'opt_out', intent: null });
    expect((await db.query<any>(`select status from enrollments where contact_id = $1`, [c.id])).rows[0]).toMatchObject({ status: 'exited' });
    // The keyword is not a reply to a journey.
    expect((await db.query<any>('select name from events where contact_id = $1 order by occurred_at', [c.id])).rows.map((r) => r.name)).toEqual(['visit', 'message.keyword']);

    clock.advance(2 * 3600_000);
    await worker.drain();
    expect(provider.calls).toHaveLength(1);
    expect(provider.calls[0]).toMatchObject({ channel: 'sms', to: '+12125550140' });
    expect(provider.calls[0]!.body).toBe('Corner Cafe: You have been unsubscribed and will receive no more messages. Reply START to resubscribe.');
    const reply = (await db.query<any>(`select kind, status, transactional from messages where contact_id = $1`, [c.id])).rows;
    expect(reply).toEqual([{ kind: 'reply', status: 'sent', transactional: true }]);
  });

  it('START opts back in, YES only after an opt-out, HELP answers without touching consent', async () => {
    const c = await createContact(db, t.id, { phone: '+12125550141' }, {}, clock.now());
    await grantAll(db, t.id, [c.id], ['sms']);
    expect((await post(sms(t, '+12125550141', 'yes'))).status).toBe(200);
    // An ordinary answer: no consent record, a reply event.
    expect(await count('consent_records where contact_id = $1', [c.id])).toBe(0);
    expect((await db.query<any>('select keyword from inbound_messages where contact_id = $1', [c.id])).rows[0].keyword).toBeNull();

    await post(sms(t, '+12125550141', 'HELP'));
    expect(await count('consent_records where contact_id = $1', [c.id])).toBe(0);
    clock.advance(1000);
    await post(sms(t, '+12125550141', 'Arrêt'));
    expect((await consentOf(c.id))!.status).toBe('revoked');
    clock.advance(1000);
    await post(sms(t, '+12125550141', 'Yes'));
    expect(await consentOf(c.id)).toEqual({ status: 'granted', source: 'keyword' });
    await worker.drain();
    const bodies = provider.calls.map((m) => m.body);
    expect(bodies).toHaveLength(3);
    expect(bodies[0]).toContain('Reply STOP to unsubscribe');
    expect(bodies[1]).toMatch(/^Corner Cafe : Vous êtes désabonné/);
    expect(bodies[2]).toContain('resubscribed');
  });

  it('a typed answer carries its intent to the journey waiting for it', async () => {
    const c = await createContact(db, t.id, { phone: '+12125550143' }, {}, clock.now());
    await grantAll(db, t.id, [c.id], ['sms']);
    await publishJourney(db, t.id, {
      entry: { event: 'blocked_exit' },
      nodes: [
        { id: 'ask', type: 'send', channel: 'sms', transactional: true, content: { body: 'Can you move your car?' }, next: 'answer' },
        { id: 'answer', type: 'wait', until_event: { reply: {}, timeout: '5m' }, on_reply: 'route', on_timeout: 'done' },
        { id: 'route', type: 'branch', branches: [{ name: 'moving', when: { reply_to: 'ask', intent: 'moving_now' }, next: 'thanks' }], default: 'done' },
        { id: 'thanks', type: 'send', channel: 'sms', transactional: true, content: { body: 'Thanks, {{ reply.intent }}' }, next: 'done' },
        { id: 'done', type: 'exit' },
      ],
    });
    await ingestEvents(db, t.id, [{ name: 'blocked_exit', contact_id: c.id }], clock.now(), {});
    await worker.drain();
    await post(sms(t, '+12125550143', 'On my way!'));
    await worker.drain();
    expect(provider.calls.filter((m) => m.to === '+12125550143').map((m) => m.body)).toEqual(['Can you move your car?', 'Thanks, moving_now']);
    expect((await db.query<any>('select name, properties from events where contact_id = $1 and name = $2', [c.id, 'message.received'])).rows[0].properties).toMatchObject({
      intent: 'moving_now',
      keyword: 'intent',
      text: 'On my way!',
    });
  });

  it('leaves the confirmation to Twilio when its Advanced Opt-Out answers the number', async () => {
    const twilioAnswers = await twilioTenant('Garage Nord', '+14155550104');
    const c = await createContact(db, twilioAnswers.id, { phone: '+12125550142' }, {}, clock.now());
    await grantAll(db, twilioAnswers.id, [c.id], ['sms']);
    await post(sms(twilioAnswers, '+12125550142', 'STOP'));
    expect(await count('messages where contact_id = $1', [c.id])).toBe(0);
    expect((await db.query<any>(`select status from consent_state where contact_id = $1 and channel = 'sms'`, [c.id])).rows[0].status).toBe('revoked');
  });
});

describe('Meta WhatsApp', () => {
  let tenantId: string;
  let accountId: string;
  const appSecret = hex(32);
  const waAccount = { appSecret, phoneNumberId: '106540352242922', displayPhoneNumber: '15550783881', url: '' };
  let provider: RecordingProvider;
  let worker: Worker;

  beforeAll(async () => {
    tenantId = (await createTenant(db, { name: 'City Parking' })).id;
    await allowAnyTime(db, tenantId);
    const account = await createAccount(
      db,
      { secrets: box, adapters: builtInAdapters(new SandboxProvider()) },
      tenantId,
      { name: 'wa', kind: 'meta_whatsapp', credentials: { access_token: 'EAAG' + hex(40), app_secret: appSecret, verify_token: 'let-me-in-please' }, config: { phone_number_id: waAccount.phoneNumberId } },
      'test',
      clock.now(),
    );
    accountId = account.id;
    waAccount.url = `${PUBLIC}/webhooks/meta_whatsapp/${accountId}`;
    provider = new RecordingProvider();
    worker = new Worker({ db, clock, providers: provider });
  });

  it('answers the subscription handshake only with the verify token', async () => {
    const ok = await post(metaVerification({ url: waAccount.url, verifyToken: 'let-me-in-please', challenge: '1158201444' }));
    expect(ok).toMatchObject({ status: 200, body: '1158201444' });
    const wrong = await post(metaVerification({ url: waAccount.url, verifyToken: 'guess', challenge: '1158201444' }));
    expect(wrong.status).toBeGreaterThanOrEqual(400);
    expect(wrong.body).not.toContain('1158201444');
  });

  it('a quick-reply button wakes the journey waiting for it, with the payload as intent, and marks the message replied', async () => {
    const c = await createContact(db, tenantId, { phone: '+447911123123', name: 'Sam' }, {}, clock.now());
    await grantAll(db, tenantId, [c.id], ['whatsapp']);
    await publishJourney(db, tenantId, {
      entry: { event: 'blocking' },
      nodes: [
        {
          id: 'ask',
          type: 'send',
          channel: 'whatsapp',
          // Sam never wrote on WhatsApp: outside the window only the template can go.
          content: { body: 'Your car is blocking the exit. Can you move it?', whatsapp_template: { name: 'exit_blocked', language: 'en', parameters: ['{{ contact.name }}'] } },
          next: 'answer',
        },
        { id: 'answer', type: 'wait', until_event: { reply: { channel: 'whatsapp' }, timeout: '5m' }, on_reply: 'route', on_timeout: 'late' },
        {
          id: 'route',
          type: 'branch',
          branches: [{ name: 'moving', when: { reply_to: 'ask', payload: 'moving_now' }, next: 'thanks' }],
          default: 'late',
        },
        { id: 'thanks', type: 'send', channel: 'whatsapp', content: { body: 'Thank you!' }, next: 'end' },
        { id: 'late', type: 'send', channel: 'whatsapp', content: { body: 'We will call you.' }, next: 'end' },
        { id: 'end', type: 'exit' },
      ],
    });
    await ingestEvents(db, tenantId, [{ name: 'blocking', contact_id: c.id }], clock.now(), {});
    await worker.drain();
    const sent = (await db.query<any>(`select id, provider_message_id from messages where contact_id = $1 and node = 'ask'`, [c.id])).rows[0];
    expect(sent.provider_message_id).toMatch(/^wamid\./);
    // A send opens no thread: Sam has none until he writes.
    expect(await count('conversations where contact_id = $1', [c.id])).toBe(0);

    clock.advance(60_000);
    const w = metaNotification(waAccount, metaInbound.buttonReply({ from: '447911123123', name: 'Sam P', context: sent.provider_message_id, timestamp: Math.floor(clock.now().getTime() / 1000) }, 'moving_now', 'Moving now'));
    expect((await post(w)).status).toBe(200);
    const stored = (await db.query<any>('select payload, intent, in_reply_to, channel from inbound_messages where contact_id = $1', [c.id])).rows[0];
    expect(stored).toEqual({ payload: 'moving_now', intent: 'moving_now', in_reply_to: sent.id, channel: 'whatsapp' });
    expect((await db.query<any>('select status, replied_at from messages where id = $1', [sent.id])).rows[0].status).toBe('replied');
    await worker.drain();
    // The alert went as the template; the reply opened the window, so the thanks goes as text.
    const calls = provider.calls.filter((m) => m.tenant_id === tenantId);
    expect(calls.map((m) => [m.body, m.whatsapp_template?.name])).toEqual([
      [undefined, 'exit_blocked'],
      ['Thank you!', undefined],
    ]);
    expect(calls[0]!.whatsapp_template!.parameters).toEqual(['Sam']);
    // The existing contact keeps its name; the WhatsApp window is open from the reply.
    expect((await db.query<any>('select name from contacts where id = $1', [c.id])).rows[0].name).toBe('Sam');
    const convo = (await db.query<any>(`select last_inbound_at, last_outbound_at from conversations where contact_id = $1 and channel = 'whatsapp'`, [c.id])).rows[0];
    expect(new Date(convo.last_inbound_at).getTime()).toBe(Math.floor(clock.now().getTime() / 1000) * 1000);
    // The thanks went out on the thread the reply opened: it records when we last wrote.
    const thanks = (await db.query<any>(`select sent_at from messages where contact_id = $1 and node = 'thanks'`, [c.id])).rows[0];
    expect(new Date(convo.last_outbound_at).getTime()).toBe(new Date(thanks.sent_at).getTime());
  });

  it('a new WhatsApp sender becomes a contact with the profile name; a forged signature changes nothing', async () => {
    const before = await snapshot(tenantId);
    const forged = metaNotification({ ...waAccount, appSecret: hex(32) }, metaInbound.text({ from: '447911123999', name: 'Robin' }, 'hello'));
    expect((await post(forged)).status).toBe(401);
    expect(await snapshot(tenantId)).toEqual(before);
    expect((await post(metaNotification(waAccount, metaInbound.text({ from: '447911123999', name: 'Robin' }, 'hello')))).status).toBe(200);
    expect((await db.query<any>('select name, phone, whatsapp from contacts where tenant_id = $1 and whatsapp = $2', [tenantId, '+447911123999'])).rows).toEqual([
      { name: 'Robin', phone: '+447911123999', whatsapp: '+447911123999' },
    ]);
  });

  it('a status notification for a sent message records read with its time', async () => {
    const c = await createContact(db, tenantId, { phone: '+447911123124' }, {}, clock.now());
    await grantAll(db, tenantId, [c.id], ['whatsapp']);
    const id = randomUUIDv4();
    const wamid = `wamid.${hex(20)}`;
    await db.query(
      `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
       values ($1, $2, $3, 'whatsapp', 'sent', $4, '{}', '+447911123124', 'meta_whatsapp', $5, $6, $6, $6)`,
      [id, tenantId, c.id, `k-${id}`, wamid, clock.now()],
    );
    const at = Math.floor(clock.now().getTime() / 1000) + 30;
    expect((await post(metaNotification(waAccount, metaStatus({ id: wamid, status: 'read', recipient: '447911123124', timestamp: at })))).status).toBe(200);
    const m = (await db.query<any>('select status, opened_at from messages where id = $1', [id])).rows[0];
    expect(m.status).toBe('read');
  });
});

describe('SendGrid events', () => {
  it('a bounce suppresses the address and a spam report also revokes email consent', async () => {
    const fake = await SendgridFake.start();
    try {
      const tenantId = (await createTenant(db, { name: 'Newsletter Co' })).id;
      const account = await createAccount(
        db,
        { secrets: box, adapters: builtInAdapters(new SandboxProvider()) },
        tenantId,
        { name: 'sg', kind: 'sendgrid', credentials: { api_key: fake.apiKey, webhook_public_key: fake.publicKey }, config: { from: 'news@example.com', base_url: fake.url } },
        'test',
        clock.now(),
      );
      const insert = async (email: string, providerId: string) => {
        const c = await createContact(db, tenantId, { email }, {}, clock.now());
        await grantAll(db, tenantId, [c.id], ['email']);
        const id = randomUUIDv4();
        await db.query(
          `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
           values ($1, $2, $3, 'email', 'sent', $4, '{}', $5, 'sendgrid', $6, $7, $7, $7)`,
          [id, tenantId, c.id, `k-${id}`, email, providerId, clock.now()],
        );
        return c.id;
      };
      const bounced = await insert('gone@example.org', 'sgid-bounce');
      const complained = await insert('angry@example.org', 'sgid-spam');
      const ts = Math.floor(clock.now().getTime() / 1000);
      const req = fake.webhook(
        account.id,
        [
          { email: 'gone@example.org', event: 'bounce', type: 'bounce', reason: '550 5.1.1 no such user', status: '5.1.1', timestamp: ts, sg_message_id: 'sgid-bounce.filter', sg_event_id: 'e1' },
          { email: 'angry@example.org', event: 'spamreport', timestamp: ts, sg_message_id: 'sgid-spam.filter', sg_event_id: 'e2' },
        ],
        { publicUrl: PUBLIC, receivedAt: clock.now() },
      );
      expect((await post(req)).status).toBe(200);
      const list = (await db.query<any>('select address, reason from suppressions where tenant_id = $1 order by address', [tenantId])).rows;
      expect(list.map((r) => r.address)).toEqual(['angry@example.org', 'gone@example.org']);
      const consent = async (id: string) => (await db.query<any>(`select status from consent_state where contact_id = $1 and channel = 'email'`, [id])).rows[0].status;
      expect(await consent(bounced)).toBe('granted');
      expect(await consent(complained)).toBe('revoked');
    } finally {
      await fake.close();
    }
  });
});

describe('voice and Vonage through the webhook routes', () => {
  it('a key pressed in a Twilio call menu is a voice reply with the menu item as intent, answered with TwiML; call progress moves the message', async () => {
    const t = await createTenant(db, { name: 'Gate Co' });
    const accountSid = `AC${hex(32)}`;
    const authToken = hex(32);
    const number = '+14155550105';
    await createAccount(
      db,
      { secrets: box, adapters: builtInAdapters(new SandboxProvider()) },
      t.id,
      { name: 'calls', kind: 'twilio_voice', credentials: { account_sid: accountSid, auth_token: authToken }, config: { from: number } },
      'test',
      clock.now(),
    );
    const c = await createContact(db, t.id, { phone: '+12125550150' }, {}, clock.now());
    const callSid = sid('CA');
    const id = randomUUIDv4();
    await db.query(
      `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
       values ($1, $2, $3, 'voice', 'sent', $4, '{}', '+12125550150', 'twilio_voice', $5, $6, $6, $6)`,
      [id, t.id, c.id, `k-${id}`, callSid, clock.now()],
    );
    const parties = { authToken, accountSid, callSid, from: number, to: '+12125550150' };
    const progress = await post(callStatusCallback({ ...parties, url: `${PUBLIC}/webhooks/twilio_voice`, status: 'completed', duration: 42 }));
    expect(progress.status).toBe(200);
    expect((await db.query<any>('select status from messages where id = $1', [id])).rows[0].status).toBe('delivered');

    const gather = await post(gatherResult({ ...parties, url: `${PUBLIC}/webhooks/twilio_voice?e=gather&l=en-US&p1=moving_now&p2=talk`, digits: '1' }));
    expect(gather.status).toBe(200);
    expect(gather.type).toContain('text/xml');
    expect(gather.body).toBe('<Response><Say language="en-US">Thank you. Goodbye.</Say><Hangup/></Response>');
    const reply = (await db.query<any>('select channel, payload, intent, in_reply_to from inbound_messages where contact_id = $1', [c.id])).rows;
    expect(reply).toEqual([{ channel: 'voice', payload: 'moving_now', intent: 'moving_now', in_reply_to: id }]);

    const forged = gatherResult({ ...parties, authToken: hex(32), url: `${PUBLIC}/webhooks/twilio_voice?e=gather&p1=moving_now`, digits: '1' });
    expect((await post(forged)).status).toBe(401);
  });

  it('a Vonage inbound SMS is routed by the number it was sent to and verified by its signed JWT', async () => {
    const t = await createTenant(db, { name: 'Vonage Co' });
    const signatureSecret = hex(32);
    const apiKey = hex(8);
    await createAccount(
      db,
      { secrets: box, adapters: builtInAdapters(new SandboxProvider()) },
      t.id,
      { name: 'vonage', kind: 'vonage', credentials: { api_key: apiKey, api_secret: hex(16), signature_secret: signatureSecret }, config: { from: '+447700900500' } },
      'test',
      clock.now(),
    );
    const body = vonageInboundSms({ from: '447911123999', to: '447700900500', text: 'STOP' });
    const ok = await post(vonageSigned({ apiKey, signatureSecret, url: `${PUBLIC}/webhooks/vonage` }, body, { iat: Math.floor(clock.now().getTime() / 1000) }));
    expect(ok.status).toBe(200);
    const stored = (await db.query<any>('select keyword, from_address from inbound_messages where tenant_id = $1', [t.id])).rows;
    expect(stored).toEqual([{ keyword: 'opt_out', from_address: '+447911123999' }]);
    const forged = await post(vonageSigned({ apiKey, signatureSecret: hex(32), url: `${PUBLIC}/webhooks/vonage` }, vonageInboundSms({ from: '447911123998', to: '447700900500', text: 'hi' })));
    expect(forged.status).toBe(401);
  });
});
