import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { newId } from '../src/store/ids.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/**
 * POST /v1/sandbox/replies through the real HTTP app: a simulated reply does what a provider's
 * webhook does with a real one (wakes the journey, marks the message replied, keywords), once
 * per id, and only within the caller's tenant.
 */

let api: TestApi;
let sandbox: SandboxProvider;
let worker: Worker;
let acme: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  api = await testApi();
  acme = await api.tenant('Acme Parking');
  other = await api.tenant('Bistro Uno');
  await allowAnyTime(api.db, acme.id);
});
afterAll(() => api.close());
beforeEach(() => {
  api.clock.advance(60_000);
  sandbox = new SandboxProvider();
  worker = new Worker({ db: api.db, clock: api.clock, providers: sandboxRegistry(sandbox) });
});

const reply = (body: Record<string, unknown>, t: TestTenant = acme) => api.call(t, 'POST', '/v1/sandbox/replies', body);

async function contact(fields: Record<string, unknown>, channels: string[] = ['sms', 'whatsapp'], t: TestTenant = acme): Promise<string> {
  const res = await api.call(t, 'POST', '/v1/contacts', fields);
  expect(res.status).toBe(201);
  if (channels.length) await grantAll(api.db, t.id, [res.body.id], channels);
  return res.body.id;
}

const count = async (sql: string, params: unknown[]) => Number((await api.db.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params)).rows[0]!.n);

async function snapshot(tenantId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['contacts', 'conversations', 'inbound_messages', 'events', 'consent_records', 'messages']) out[t] = await count(`${t} where tenant_id = $1`, [tenantId]);
  out.message_status = await count('message_status s join messages m on m.id = s.message_id where m.tenant_id = $1', [tenantId]);
  return out;
}

/** A parking alert: ask on the channel, wait an hour for an answer, thank a "moving now". */
function parkingAlert(channel: 'whatsapp' | 'sms', entry: string): JourneyDefinition {
  return {
    entry: { event: entry },
    nodes: [
      { id: 'ask', type: 'send', channel, content: { body: 'Your car is blocking the exit. Can you move it?' }, next: 'answer' },
      { id: 'answer', type: 'wait', until_event: { reply: {}, timeout: '1h' }, on_reply: 'route', on_timeout: 'late', next: 'late' },
      { id: 'route', type: 'branch', branches: [{ name: 'moving', when: { reply_to: 'ask', payload: 'moving_now' }, next: 'thanks' }], default: 'other' },
      { id: 'thanks', type: 'send', channel, content: { body: 'Thank you!' }, next: 'end' },
      { id: 'other', type: 'send', channel, content: { body: 'A person will read your answer.' }, next: 'end' },
      { id: 'late', type: 'send', channel, content: { body: 'We will call you.' }, next: 'end' },
      { id: 'end', type: 'exit' },
    ],
  } as JourneyDefinition;
}

/** Enrols the contact and runs the worker until the question is out; returns the question's id. */
async function ask(contactId: string, entry: string): Promise<string> {
  expect((await api.call(acme, 'POST', '/v1/events', { name: entry, contact_id: contactId })).status).toBe(202);
  await worker.drain();
  const { rows } = await api.db.query<{ id: string; status: string; provider: string }>(`select id, status, provider from messages where contact_id = $1 and node = 'ask'`, [contactId]);
  expect(rows).toEqual([{ id: expect.any(String), status: 'sent', provider: 'sandbox' }]);
  return rows[0]!.id;
}

const bodiesTo = (to: string) => sandbox.sent.filter((s) => s.message.to === to).map((s) => s.message.body);

describe('a simulated reply wakes the journey waiting for it', () => {
  beforeAll(async () => {
    await publishJourney(api.db, acme.id, parkingAlert('whatsapp', 'blocking'));
    await publishJourney(api.db, acme.id, parkingAlert('sms', 'blocking_sms'));
  });

  it('a WhatsApp button press takes the payload path and marks the question replied', async () => {
    const c = await contact({ phone: '+447911123001', name: 'Sam' });
    // Session text goes out only within 24 hours of the contact's last message: a first simulated
    // message opens the window, as a real one would.
    expect((await reply({ channel: 'whatsapp', contact_id: c, text: 'Hi, I parked at the back' })).status).toBe(201);
    // The contact's export shows the thread, and when we last wrote on it.
    const thread = async () => (await api.call(acme, 'GET', `/v1/contacts/${c}/export`)).body.conversations.find((x: { channel: string }) => x.channel === 'whatsapp');
    expect((await thread()).last_outbound_at).toBeNull();
    const question = await ask(c, 'blocking');
    expect((await thread()).last_outbound_at).toBe(api.clock.now().toISOString());

    api.clock.advance(5 * 60_000);
    const res = await reply({ channel: 'whatsapp', contact_id: c, payload: 'moving_now', text: 'Moving now', message_id: question });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(String), contact_id: c, duplicate: false, keyword: 'intent', intent: 'moving_now', replied_to: question });

    const detail = await api.call(acme, 'GET', `/v1/messages/${question}`);
    expect(detail.body.status).toBe('replied');
    const stored = (await api.db.query<any>('select provider, account_id, provider_message_id, from_address, text, payload, in_reply_to from inbound_messages where id = $1', [res.body.id])).rows[0];
    expect(stored).toEqual({
      provider: 'sandbox',
      account_id: null,
      provider_message_id: expect.stringMatching(/^sandbox-reply:/),
      from_address: '+447911123001',
      text: 'Moving now',
      payload: 'moving_now',
      in_reply_to: question,
    });
    // The WhatsApp window opens from the reply, as with a real one.
    const convo = (await api.db.query<any>(`select last_inbound_at from conversations where contact_id = $1 and channel = 'whatsapp'`, [c])).rows[0];
    expect(new Date(convo.last_inbound_at).getTime()).toBe(api.clock.now().getTime());

    await worker.drain();
    expect(bodiesTo('+447911123001')).toEqual(['Your car is blocking the exit. Can you move it?', 'Thank you!']);
    expect((await thread()).last_outbound_at).toBe(api.clock.now().toISOString());
  });

  it('an SMS text reply without a message id answers the latest message and takes the default path', async () => {
    const c = await contact({ phone: '+447911123002' });
    const question = await ask(c, 'blocking_sms');
    const res = await reply({ channel: 'sms', from: '+44 7911 123002', text: 'Who is this?' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(String), contact_id: c, duplicate: false, replied_to: question });
    expect((await api.call(acme, 'GET', `/v1/messages/${question}`)).body.status).toBe('replied');
    await worker.drain();
    expect(bodiesTo('+447911123002')).toEqual(['Your car is blocking the exit. Can you move it?', 'A person will read your answer.']);
  });

});

describe('keywords', () => {
  it('STOP revokes consent on the channel and queues the confirmation, which the worker sends', async () => {
    const c = await contact({ phone: '+14155550140' }, ['sms']);
    const res = await reply({ channel: 'sms', contact_id: c, text: 'STOP' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(String), contact_id: c, duplicate: false, keyword: 'opt_out', confirmation_id: expect.any(String) });

    const consent = (await api.call(acme, 'GET', `/v1/contacts/${c}/consent`)).body;
    expect(consent.current.filter((s: { channel: string }) => s.channel === 'sms')).toEqual([expect.objectContaining({ status: 'revoked' })]);
    expect(consent.records).toEqual([
      expect.objectContaining({ channel: 'sms', status: 'revoked', source: 'keyword', wording: 'STOP', proof: expect.objectContaining({ provider: 'sandbox', provider_message_id: expect.stringMatching(/^sandbox-reply:/) }) }),
    ]);
    const queued = (await api.db.query<any>('select kind, status, transactional from messages where id = $1', [res.body.confirmation_id])).rows;
    expect(queued).toEqual([{ kind: 'reply', status: 'queued', transactional: true }]);

    await worker.drain();
    expect(bodiesTo('+14155550140')).toEqual(['Acme Parking: You have been unsubscribed and will receive no more messages. Reply START to resubscribe.']);
  });

  it('an unknown number that writes HELP becomes a contact and gets the help text', async () => {
    const res = await reply({ channel: 'sms', from: '+14155550141', text: 'HELP' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ duplicate: false, created_contact: true, keyword: 'help', confirmation_id: expect.any(String) });
    const created = (await api.call(acme, 'GET', `/v1/contacts/${res.body.contact_id}`)).body;
    expect(created).toMatchObject({ phone: '+14155550141', email: null });
    await worker.drain();
    expect(bodiesTo('+14155550141')).toEqual([expect.stringContaining('Reply STOP to unsubscribe')]);
  });
});

describe('idempotency', () => {
  it('the same id twice records once: 200, duplicate, the first outcome, nothing new', async () => {
    const c = await contact({ phone: '+14155550150' }, ['sms']);
    const first = await reply({ channel: 'sms', contact_id: c, text: 'STOP', id: 'retry-me' });
    expect(first.status).toBe(201);
    const before = await snapshot(acme.id);
    api.clock.advance(1000);
    const again = await reply({ channel: 'sms', contact_id: c, text: 'STOP', id: 'retry-me' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ id: first.body.id, contact_id: c, duplicate: true, keyword: 'opt_out' });
    // Even with other words: the id is what identifies the reply.
    const changed = await reply({ channel: 'sms', contact_id: c, text: 'START', id: 'retry-me' });
    expect(changed.body).toMatchObject({ id: first.body.id, duplicate: true, keyword: 'opt_out' });
    expect(await snapshot(acme.id)).toEqual(before);
    // Without an id, every request is a new reply.
    expect((await reply({ channel: 'sms', contact_id: c, text: 'hello' })).body.duplicate).toBe(false);
    expect((await reply({ channel: 'sms', contact_id: c, text: 'hello' })).body.duplicate).toBe(false);
    expect(await count('inbound_messages where contact_id = $1', [c])).toBe(3);
  });

  it('the same id in two tenants is two replies', async () => {
    const a = await reply({ channel: 'sms', from: '+14155550151', text: 'hi', id: 'shared-id' });
    const b = await reply({ channel: 'sms', from: '+14155550151', text: 'hi', id: 'shared-id' }, other);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.contact_id).not.toBe(b.body.contact_id);
  });
});

describe('a message sent through a real provider', () => {
  /** A message as the dispatcher records one that went out through the tenant's Twilio account. */
  async function sentThroughTwilio(contactId: string, to: string, at: Date): Promise<string> {
    const id = newId();
    await api.db.query(
      `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
       values ($1, $2, $3, 'sms', 'sent', $4, '{}', $5, 'twilio', $6, $7, $7, $7)`,
      [id, acme.id, contactId, `k-${id}`, to, `SM${id.replace(/-/g, '')}`, at],
    );
    return id;
  }

  it('is answered by name even when a later message exists, and the reply is filed under that provider', async () => {
    const c = await contact({ phone: '+14155550160' }, ['sms']);
    const older = await sentThroughTwilio(c, '+14155550160', new Date(api.clock.now().getTime() - 3600_000));
    await sentThroughTwilio(c, '+14155550160', api.clock.now());
    const res = await reply({ channel: 'sms', contact_id: c, text: 'yes please', message_id: older, id: 'named' });
    expect(res.body).toMatchObject({ replied_to: older, duplicate: false });
    expect((await api.db.query<any>('select status from messages where id = $1', [older])).rows[0].status).toBe('replied');
    expect((await api.db.query<any>('select provider from inbound_messages where id = $1', [res.body.id])).rows[0].provider).toBe('twilio');

    // A repeat of the id without the message (so under the sandbox) still finds the first reply.
    const again = await reply({ channel: 'sms', contact_id: c, text: 'yes please', id: 'named' });
    expect(again).toMatchObject({ status: 200, body: { id: res.body.id, duplicate: true, replied_to: older } });
    expect(await count('inbound_messages where contact_id = $1', [c])).toBe(1);
  });
});

describe('refusals', () => {
  let c: string;
  let emailOnly: string;
  let question: string;
  beforeAll(async () => {
    c = await contact({ phone: '+14155550170' }, ['sms']);
    emailOnly = await contact({ email: 'ana@example.com' }, ['email']);
    question = newId();
    await api.db.query(
      `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, due_at, created_at, updated_at)
       values ($1, $2, $3, 'sms', 'queued', $4, '{}', '+14155550170', $5, $5, $5)`,
      [question, acme.id, c, `k-${question}`, api.clock.now()],
    );
  });

  const fieldsOf = (res: { body: any }) => res.body.error.fields.map((f: { field: string }) => f.field);

  it('names the field of each malformed request, and records nothing', async () => {
    const before = await snapshot(acme.id);
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ channel: 'sms', contact_id: c }, 'text', /or payload is required/],
      [{ channel: 'sms', text: 'hi' }, 'contact_id', /or from is required/],
      [{ channel: 'sms', contact_id: c, from: '+14155550170', text: 'hi' }, 'from', /cannot be given with contact_id/],
      [{ channel: 'sms', contact_id: emailOnly, text: 'hi' }, 'contact_id', /has no phone/],
      [{ channel: 'whatsapp', contact_id: emailOnly, text: 'hi' }, 'contact_id', /has no whatsapp number or phone/],
      [{ channel: 'email', contact_id: c, text: 'hi' }, 'contact_id', /has no email/],
      [{ channel: 'sms', from: 'ana@example.com', text: 'hi' }, 'from', /phone number/],
      [{ channel: 'sms', from: '12', text: 'hi' }, 'from', /international format/],
      [{ channel: 'email', from: 'not-an-address', text: 'hi' }, 'from', /not an email address/],
      [{ channel: 'fax', from: '+14155550170', text: 'hi' }, 'channel', /must be one of/],
      [{ channel: 'sms', contact_id: 'nope', text: 'hi' }, 'contact_id', /uuid/],
      [{ channel: 'sms', contact_id: c, text: '' }, 'text', /fewer than 1/],
      [{ channel: 'sms', contact_id: c, text: 'hi', priority: 1 }, 'priority', /not a known field/],
      [{ channel: 'whatsapp', contact_id: c, text: 'hi', message_id: question }, 'message_id', /was sent on sms/],
      [{ channel: 'sms', contact_id: emailOnly, text: 'hi', message_id: question }, 'contact_id', /has no phone/],
    ];
    for (const [body, field, message] of cases) {
      const res = await reply(body);
      expect({ body, status: res.status, fields: fieldsOf(res) }).toEqual({ body, status: 400, fields: [field] });
      expect(res.body.error.fields[0].message).toMatch(message);
    }
    expect(await snapshot(acme.id)).toEqual(before);
  });

  it('refuses a message sent to someone else, and one not sent yet', async () => {
    const someoneElse = await contact({ phone: '+14155550171' }, ['sms']);
    const wrong = await reply({ channel: 'sms', contact_id: someoneElse, text: 'hi', message_id: question });
    expect(wrong).toMatchObject({ status: 400, body: { error: { fields: [{ field: 'message_id', message: 'was sent to another contact' }] } } });
    const byAddress = await reply({ channel: 'sms', from: '+14155550171', text: 'hi', message_id: question });
    expect(fieldsOf(byAddress)).toEqual(['message_id']);
    const unsent = await reply({ channel: 'sms', contact_id: c, text: 'hi', message_id: question });
    expect(unsent.status).toBe(409);
    expect(unsent.body.error).toMatchObject({ code: 'conflict', fields: [{ field: 'message_id' }] });
    expect(unsent.body.error.message).toMatch(/has not been sent \(it is queued\)/);
  });

  it("answers 404 for another tenant's contact or message, and 401 without a key", async () => {
    const theirs = await contact({ phone: '+14155550172' }, ['sms'], other);
    const before = await snapshot(acme.id);
    const theirsBefore = await snapshot(other.id);
    const res = await reply({ channel: 'sms', contact_id: theirs, text: 'STOP' });
    expect(res).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'contact not found' } } });
    const theirMessage = await reply({ channel: 'sms', contact_id: c, text: 'hi', message_id: question }, other);
    expect(theirMessage.status).toBe(404);
    expect((await api.call(null, 'POST', '/v1/sandbox/replies', { channel: 'sms', contact_id: c, text: 'hi' })).status).toBe(401);
    expect(await snapshot(acme.id)).toEqual(before);
    expect(await snapshot(other.id)).toEqual(theirsBefore);
    expect((await api.db.query<any>(`select status from consent_state where contact_id = $1`, [theirs])).rows).toEqual([{ status: 'granted' }]);
  });

  it('refuses a contact whose number another contact holds as its WhatsApp number', async () => {
    const phoneOwner = await contact({ phone: '+14155550173' }, ['sms']);
    await contact({ phone: '+14155550174', whatsapp: '+14155550173' }, ['whatsapp']);
    const res = await reply({ channel: 'sms', contact_id: phoneOwner, text: 'hi' });
    expect(res.status).toBe(409);
    expect(res.body.error.fields).toEqual([{ field: 'contact_id', message: expect.stringMatching(/also has \+14155550173.*by its address \(from\)/) }]);
  });
});

it('is in the OpenAPI document with its examples', async () => {
  const doc = (await api.call(null, 'GET', '/openapi.json')).body;
  const op = doc.paths['/v1/sandbox/replies'].post;
  expect(op.tags).toEqual(['sandbox']);
  expect(op.description).toMatch(/button press is payload plus the button text/);
  const examples = Object.values(op.requestBody.content['application/json'].examples).map((e: any) => e.value);
  expect(examples).toContainEqual(expect.objectContaining({ payload: 'moving_now', channel: 'whatsapp' }));
  expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '201', '400', '404', '409']));
});
