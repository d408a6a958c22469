import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordInbound } from '../src/engine/inbound.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { isSuppressed } from '../src/store/suppressions.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

let api: TestApi;
let t: TestTenant;
let other: TestTenant;

const PHONE = '+14155552671';
const EMAIL = 'dana.private@example.com';

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
  other = await api.tenant('Other');
});
afterAll(() => api.close());

/** A contact with consent, events and a suppression of its email. */
async function populated(externalId: string, phone: string, email: string): Promise<string> {
  const c = await api.call(t, 'POST', '/v1/contacts', { external_id: externalId, name: 'Dana', phone, email, whatsapp: phone });
  expect(c.status).toBe(201);
  const id: string = c.body.id;
  await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'granted', type: 'express_written', source: 'web_form', wording: 'Yes, text me', ip: '203.0.113.9' });
  await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'email', topic: 'news', status: 'revoked', source: 'unsubscribe_link' });
  const ev = await api.call(t, 'POST', '/v1/events/batch', {
    events: Array.from({ length: 25 }, (_, i) => ({ name: 'page_view', id: `${externalId}-pv-${i}`, contact_id: id, properties: { path: `/p/${i}` } })),
  });
  expect(ev.body.recorded).toBe(25);
  expect((await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: email, reason: 'unsubscribed' })).status).toBe(201);
  expect((await api.call(t, 'POST', '/v1/suppressions', { channel: 'all', address: phone, reason: 'legal' })).status).toBe(201);
  return id;
}

describe('contact detail', () => {
  it('shows the contact with its current consent and its latest 20 events', async () => {
    const id = await populated('pv-1', '+14155550111', 'detail@example.com');
    const res = await api.call(t, 'GET', `/v1/contacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, external_id: 'pv-1', phone: '+14155550111' });
    expect(res.body.consent).toEqual([
      { channel: 'email', topic: 'news', status: 'revoked', type: null, recorded_at: '2026-03-02T10:00:00.000Z' },
      { channel: 'sms', topic: 'all', status: 'granted', type: 'express_written', recorded_at: '2026-03-02T10:00:00.000Z' },
    ]);
    expect(res.body.recent_events).toHaveLength(20);
    expect(res.body.recent_events[0].properties).toEqual({ path: '/p/24' });
    expect((await api.call(other, 'GET', `/v1/contacts/${id}`)).status).toBe(404);
  });
});

describe('export', () => {
  it('holds the contact, its consent, events, suppressions and audit trail in one document', async () => {
    const id = await populated('pv-2', '+14155550122', 'export@example.com');
    const res = await api.call(t, 'GET', `/v1/contacts/${id}/export`);
    expect(res.status).toBe(200);
    expect(res.body.exported_at).toBe('2026-03-02T10:00:00.000Z');
    expect(res.body.contact).toMatchObject({ id, email: 'export@example.com' });
    expect(res.body.consent.records.map((r: { channel: string; wording: string | null }) => [r.channel, r.wording])).toEqual([
      ['sms', 'Yes, text me'],
      ['email', null],
    ]);
    expect(res.body.consent.current).toHaveLength(2);
    expect(res.body.events).toHaveLength(25);
    expect(res.body.events[0].properties).toEqual({ path: '/p/0' });
    expect(res.body.suppressions.map((s: { channel: string; address: string }) => [s.channel, s.address])).toEqual([
      ['email', 'export@example.com'],
      ['all', '+14155550122'],
    ]);
    expect(res.body.audit.map((a: { action: string }) => a.action)).toEqual(['consent.recorded', 'consent.recorded']);
    expect((await api.call(other, 'GET', `/v1/contacts/${id}/export`)).status).toBe(404);
  });
});

describe('erasure', () => {
  it('erases the contact and its ledger and events; its addresses stay suppressed by hash alone', async () => {
    const id = await populated('pv-3', PHONE, EMAIL);
    const keep = await populated('pv-keep', '+14155550133', 'keep@example.com');
    expect((await api.call(other, 'DELETE', `/v1/contacts/${id}`)).status).toBe(404);

    const res = await api.call(t, 'DELETE', `/v1/contacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id,
      erased: true,
      counts: {
        events: 25,
        consent_records: 2,
        messages: 0,
        inbound_messages: 0,
        conversations: 0,
        enrollments: 0,
        review_tasks: 0,
        campaign_recipients: 0,
        synthesized_messages: 0,
        pending_receipts: 0,
        suppressions_anonymised: 2,
      },
    });

    expect((await api.call(t, 'GET', `/v1/contacts/${id}`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/contacts/${id}/consent`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/contacts/${id}/export`)).status).toBe(404);
    expect((await api.call(t, 'DELETE', `/v1/contacts/${id}`)).status).toBe(404);
    for (const table of ['events', 'consent_records', 'consent_state']) {
      const { rows } = await api.db.query(`select count(*)::int as n from ${table} where contact_id = $1`, [id]);
      expect(rows[0], table).toEqual({ n: 0 });
    }
    const { rows: kept } = await api.db.query('select count(*)::int as n from events where contact_id = $1', [keep]);
    expect(kept[0]).toEqual({ n: 25 });

    const sup = await api.call(t, 'GET', '/v1/suppressions?limit=1000');
    const blanked = sup.body.data.filter((s: { address: string | null }) => s.address === null);
    expect(blanked.map((s: { channel: string }) => s.channel)).toEqual(['email', 'all']);
    expect(await isSuppressed(api.db, t.id, 'email', EMAIL)).toBe(true);
    expect(await isSuppressed(api.db, t.id, 'sms', PHONE)).toBe(true);
    const again = await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: EMAIL.toUpperCase(), reason: 'unsubscribed' });
    expect(again.status).toBe(200);
    expect(again.body.address).toBeNull();
  });

  it('leaves an audit trail of ids and counts that holds no email or phone anywhere', async () => {
    const trail = await api.call(t, 'GET', '/v1/audit-log?entity_type=contact&limit=1');
    expect(trail.body.data[0]).toMatchObject({ action: 'contact.erased', data: { events: 25, consent_records: 2, suppressions_anonymised: 2 } });
    const erasedId = trail.body.data[0].entity_id;
    const history = await api.call(t, 'GET', `/v1/audit-log?entity_type=contact&entity_id=${erasedId}`);
    expect(history.body.data.map((e: { action: string }) => e.action)).toEqual(['contact.erased', 'consent.recorded', 'consent.recorded']);

    const { rows } = await api.db.query('select * from audit_log');
    const dump = JSON.stringify(rows);
    for (const secret of [PHONE, PHONE.slice(2), EMAIL, 'dana.private', 'Yes, text me', '203.0.113.9']) expect(dump).not.toContain(secret);
  });

  it('pages the audit log with before', async () => {
    const first = await api.call(t, 'GET', '/v1/audit-log?limit=2');
    expect(first.body.data).toHaveLength(2);
    const second = await api.call(t, 'GET', `/v1/audit-log?limit=2&before=${first.body.next_before}`);
    expect(second.body.data[0].id).toBeLessThan(first.body.data[1].id);
    const theirs = await api.call(other, 'GET', '/v1/audit-log?limit=1000');
    expect(theirs.body.data.map((e: { action: string }) => e.action)).toEqual(['api_key.created', 'tenant.created']);
  });
});

describe('a contact who went through a journey, replied, had a draft reviewed and got a campaign message', () => {
  const DANA = { phone: '+14155550177', email: 'dana.secret@example.com', name: 'Dana Secretname' };
  const KIM = { phone: '+14155550188', email: 'kim.keeper@example.com', name: 'Kim Keeper' };
  /** Dana's words and data, in every form they take in the database. */
  const SECRETS = [DANA.name, 'Secretname', DANA.phone, DANA.phone.slice(1), DANA.email, 'dana.secret', 'apiculture', 'My secret answer about bees', 'secret hive plan'];
  let f: TestTenant;
  let dana: string;
  let kim: string;
  let journey: string;
  let campaign: string;
  let providers: ReturnType<typeof sandboxRegistry>;

  const count = async (sql: string, params: unknown[]) => (await api.db.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params)).rows[0]!.n;
  const inbound = (from: string, text: string) =>
    recordInbound(
      api.db,
      { tenant_id: f.id, provider: 'sandbox', account_id: null },
      [{ type: 'message', channel: 'sms', from, to: 'sandbox', text, payload: null, provider_message_id: `in-${Math.random()}`, at: api.clock.now() }],
      api.clock.now(),
    );
  const campaignMessage = async (contact: string) =>
    (await api.db.query<{ id: string; provider_message_id: string }>('select m.id, m.provider_message_id from campaign_recipients r join messages m on m.id = r.message_id where r.contact_id = $1', [contact]))
      .rows[0]!;

  beforeAll(async () => {
    f = await api.tenant('Hives');
    await allowAnyTime(api.db, f.id);
    providers = sandboxRegistry();
    const worker = new Worker({ db: api.db, clock: api.clock, providers });
    const person = async (p: typeof DANA, interest: string) => {
      const r = await api.call(f, 'POST', '/v1/contacts', { ...p, locale: 'en', attributes: { interests: [interest] } });
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    dana = await person(DANA, 'apiculture');
    kim = await person(KIM, 'knitting');
    await grantAll(api.db, f.id, [dana, kim], ['sms']);

    // A journey that asks, and ends on the reply.
    journey = await publishJourney(api.db, f.id, {
      entry: { api: true },
      nodes: [
        { id: 'ask', type: 'send', channel: 'sms', content: { body: 'Journey question for {{ contact.name }}' }, next: 'answer' },
        { id: 'answer', type: 'wait', until_event: { reply: {}, timeout: '1d' }, on_reply: 'done', on_timeout: 'done' },
        { id: 'done', type: 'exit' },
      ],
    } as never);
    for (const id of [dana, kim]) expect((await api.call(f, 'POST', `/v1/journeys/${journey}/enrollments`, { contact_id: id })).status).toBe(200);
    await worker.drain();
    await inbound(DANA.phone, 'My secret answer about bees');
    await inbound(KIM.phone, 'Kim answers too');
    // HELP is answered with a confirmation: a message of kind reply.
    await inbound(DANA.phone, 'HELP');
    await worker.drain();

    // A campaign message to both.
    const c = await api.call(f, 'POST', '/v1/campaigns', {
      name: 'spring hives',
      type: 'promotional',
      audience: { contact_ids: [dana, kim] },
      action: { send: { channel: 'sms', content: { body: 'Campaign offer for {{ contact.name }}' } } },
    });
    expect(c.status).toBe(201);
    campaign = c.body.id;
    expect((await api.call(f, 'POST', `/v1/campaigns/${campaign}/start`)).status).toBe(200);
    await worker.drain();
    // As a pulse records what its message was built from; and a receipt that waits for a message.
    for (const [contact, element] of [
      [dana, 'interest:apiculture'],
      [kim, 'interest:knitting'],
    ] as const) {
      const m = await campaignMessage(contact);
      await api.db.query(
        `insert into synthesized_messages (message_id, tenant_id, campaign_id, contact_id, source, items, elements, personalization_score, created_at)
         values ($1, $2, $3, $4, 'composer', '[]', $5, 1, now())`,
        [m.id, f.id, campaign, contact, [element]],
      );
      await api.db.query(
        `insert into pending_receipts (provider, provider_message_id, status, at, detail, received_at) values ('sandbox', $1, 'delivered', now(), $2, now())`,
        [m.provider_message_id, JSON.stringify({ to: contact === dana ? DANA.phone : KIM.phone })],
      );
    }

    // A synthesized draft, held for review and edited.
    expect((await api.call(f, 'PATCH', '/v1/tenant', { settings: { synthesis_review: true } })).status).toBe(200);
    const draft = await api.call(f, 'POST', '/v1/synthesis/drafts', { contact_id: dana, channel: 'sms', cta: { text: 'See the hives:', url: 'https://hives.example/spring' } });
    expect(draft.status, JSON.stringify(draft.body)).toBe(201);
    const task = draft.body.review_task;
    const edited = await api.call(f, 'POST', `/v1/reviews/${task.id}/edit`, { text: `Dana, your secret hive plan is ready. See the hives: https://hives.example/spring\n\n${task.rules.footer}` });
    expect(edited.status, JSON.stringify(edited.body)).toBe(200);
  });

  it('exports all of it, and nothing of anyone else', async () => {
    const res = await api.call(f, 'GET', `/v1/contacts/${dana}/export`);
    expect(res.status).toBe(200);
    const x = res.body;

    const sends = x.messages.filter((m: { kind: string }) => m.kind === 'send');
    const asked = sends.find((m: { journey_id: string | null }) => m.journey_id === journey);
    expect(asked).toMatchObject({ channel: 'sms', to_address: DANA.phone, status: 'replied', enrollment_id: expect.any(String), rendered: { body: 'Journey question for Dana Secretname' } });
    expect(asked.status_history.map((h: { status: string }) => h.status)).toEqual(expect.arrayContaining(['sent', 'replied']));
    const offer = sends.find((m: { id: string }) => m.id === x.campaigns[0].message_id);
    expect(offer).toMatchObject({ rendered: { body: 'Campaign offer for Dana Secretname' }, synthesis: { source: 'composer', elements: ['interest:apiculture'], campaign_id: campaign } });
    expect(offer.status_history.length).toBeGreaterThan(0);
    expect(x.messages.filter((m: { kind: string }) => m.kind === 'reply')).toEqual([expect.objectContaining({ to_address: DANA.phone, transactional: true })]);
    expect(x.messages).toHaveLength(3);

    expect(x.inbound_messages.map((i: { text: string }) => i.text)).toEqual(['My secret answer about bees', 'HELP']);
    expect(x.inbound_messages[0]).toMatchObject({ from_address: DANA.phone, in_reply_to: asked.id });
    expect(x.conversations).toEqual([expect.objectContaining({ channel: 'sms', id: x.inbound_messages[0].conversation_id })]);
    expect(x.enrollments).toEqual([expect.objectContaining({ id: asked.enrollment_id, journey_id: journey, journey_name: 'test journey', status: 'completed' })]);
    expect(x.enrollments[0].steps.map((s: { node: string }) => s.node)).toEqual(expect.arrayContaining(['ask', 'answer']));
    expect(x.review_tasks).toEqual([expect.objectContaining({ status: 'edited', channel: 'sms', final: expect.stringContaining('secret hive plan'), draft: expect.stringContaining('Dana') })]);
    expect(x.campaigns).toEqual([expect.objectContaining({ campaign_id: campaign, campaign_name: 'spring hives', outcome: 'queued', message_id: offer.id })]);
    expect(x.audit.map((a: { action: string }) => a.action)).toEqual(expect.arrayContaining(['review.created', 'review.edited']));

    const dump = JSON.stringify(x);
    for (const theirs of [kim, KIM.phone, KIM.email, 'Kim answers too', 'knitting', 'Kim Keeper']) expect(dump).not.toContain(theirs);
    const trail = (await api.call(f, 'GET', `/v1/audit-log?entity_type=contact&entity_id=${dana}&limit=1`)).body.data[0];
    expect(trail).toMatchObject({ action: 'contact.exported', data: { messages: 3, inbound_messages: 2, enrollments: 1 } });
  });

  it('erases every row that held it in one go, leaves no text or address behind, and leaves the other contact whole', async () => {
    const tables = (await api.db.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`)).rows.map(
      (r) => r.table_name,
    );
    const dumpAll = async () => {
      const out: Record<string, string> = {};
      for (const t of tables) out[t] = JSON.stringify((await api.db.query(`select * from ${t}`)).rows);
      return out;
    };
    const before = await dumpAll();
    // The scan below can fail: before erasure, Dana is all over the database.
    for (const secret of SECRETS) expect(Object.values(before).some((d) => d.includes(secret)), secret).toBe(true);
    const kimBefore = {
      messages: await count('messages where contact_id = $1', [kim]),
      inbound: await count('inbound_messages where contact_id = $1', [kim]),
      enrollments: await count('enrollments where contact_id = $1', [kim]),
      receipts: await count('pending_receipts where provider_message_id = $1', [(await campaignMessage(kim)).provider_message_id]),
    };
    expect(kimBefore).toEqual({ messages: 2, inbound: 1, enrollments: 1, receipts: 1 });
    const events = await count('events where contact_id = $1', [dana]);

    const res = await api.call(f, 'DELETE', `/v1/contacts/${dana}`);
    expect(res.status).toBe(200);
    expect(res.body.counts).toEqual({
      events,
      consent_records: 0,
      messages: 3,
      inbound_messages: 2,
      conversations: 1,
      enrollments: 1,
      review_tasks: 1,
      campaign_recipients: 1,
      synthesized_messages: 1,
      pending_receipts: 1,
      suppressions_anonymised: 0,
    });

    const after = await dumpAll();
    for (const [table, rows] of Object.entries(after)) {
      for (const secret of SECRETS) expect(rows.includes(secret), `${table} still holds ${secret}`).toBe(false);
      // Only the audit log (ids and counts) and the campaign's own audience list still name the id.
      if (table !== 'audit_log' && table !== 'campaigns') expect(rows.includes(dana), `${table} still names the contact`).toBe(false);
    }

    // The outbox and the histories have no foreign keys: nothing may be left naming what is gone.
    expect(await count('message_status s where not exists (select 1 from messages m where m.id = s.message_id)', [])).toBe(0);
    expect(await count('enrollment_steps s where not exists (select 1 from enrollments e where e.id = s.enrollment_id)', [])).toBe(0);
    expect(await count('messages m where not exists (select 1 from contacts c where c.id = m.contact_id)', [])).toBe(0);

    expect({
      messages: await count('messages where contact_id = $1', [kim]),
      inbound: await count('inbound_messages where contact_id = $1', [kim]),
      enrollments: await count('enrollments where contact_id = $1', [kim]),
      receipts: await count('pending_receipts where provider_message_id = $1', [(await campaignMessage(kim)).provider_message_id]),
    }).toEqual(kimBefore);
    expect(JSON.parse(after.synthesized_messages!)).toEqual([expect.objectContaining({ contact_id: kim, elements: ['interest:knitting'] })]);
    // The campaign counts its remaining recipient, in its state; nothing reads as a failed send.
    const totals = (await api.call(f, 'GET', `/v1/campaigns/${campaign}`)).body.totals;
    expect(totals.recipients).toBe(1);
    expect(totals.sent + totals.delivered).toBe(1);
    expect(totals.failed).toBe(0);
    const kimExport = await api.call(f, 'GET', `/v1/contacts/${kim}/export`);
    expect(kimExport.body.campaigns).toHaveLength(1);
    expect(kimExport.body.inbound_messages.map((i: { text: string }) => i.text)).toEqual(['Kim answers too']);
  });
});
