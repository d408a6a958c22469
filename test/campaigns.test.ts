import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCampaigns } from '../src/engine/campaign-runner.js';
import { recordInbound } from '../src/engine/inbound.js';
import { applyOptOuts } from '../src/engine/opt-out.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import { newId } from '../src/store/ids.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/** Campaigns end to end: the API, the runner in the worker loop, the sandbox provider. */

let api: TestApi;
let t: TestTenant;
let providers: ReturnType<typeof sandboxRegistry>;
let worker: Worker;
const MINUTE = 60_000;

beforeAll(async () => {
  api = await testApi();
});
afterAll(() => api.close());

beforeEach(async () => {
  t = await api.tenant(`Shop ${Math.random()}`);
  await allowAnyTime(api.db, t.id);
  providers = sandboxRegistry();
  worker = new Worker({ db: api.db, clock: api.clock, providers });
});

let phoneSeq = 0;
/** Contacts with an SMS number and consent; `active` ones had a message sent to them last week. */
async function contacts(n: number, active = false): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const phone = `+1415555${String(1000 + phoneSeq++).padStart(4, '0')}`;
    ids.push((await createContact(api.db, t.id, { phone, name: `C${phoneSeq}` }, {}, api.clock.now())).id);
  }
  await grantAll(api.db, t.id, ids, ['sms']);
  if (active) {
    const lastWeek = new Date(api.clock.now().getTime() - 7 * 86_400_000);
    for (const id of ids) {
      await api.db.query(
        `insert into messages (id, tenant_id, contact_id, kind, channel, status, idempotency_key, content, created_at, updated_at, sent_at)
         values ($1, $2, $3, 'send', 'sms', 'sent', $5, '{}', $4, $4, $4)`,
        [newId(), t.id, id, lastWeek, `earlier-${id}`],
      );
    }
  }
  return ids;
}

async function create(body: Record<string, unknown>): Promise<string> {
  const res = await api.call(t, 'POST', '/v1/campaigns', { name: `c-${Math.random()}`, type: 'custom', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.status).toBe('draft');
  return res.body.id;
}

async function act(id: string, action: string, status = 200) {
  const res = await api.call(t, 'POST', `/v1/campaigns/${id}/${action}`);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}

async function sweepAll(batchSize: number): Promise<void> {
  for (let i = 0; i < 100; i++) if (!(await runCampaigns(api.db, api.clock.now(), { batchSize, maxBatches: 1 })).batches) return;
  throw new Error('campaign never finished writing');
}

const sentTo = () => providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id);
const campaignMessages = async (id: string) =>
  (
    await api.db.query<{ contact_id: string; seq: number; status: string; due_at: Date | null; idempotency_key: string }>(
      `select r.contact_id, r.seq, m.status, m.due_at, m.idempotency_key from campaign_recipients r join messages m on m.id = r.message_id where r.campaign_id = $1 order by r.seq`,
      [id],
    )
  ).rows;

describe('a win-back campaign to a segment', () => {
  it('sends one message to each member, paced by the throttle, and reports each recipient', async () => {
    const dormant = await contacts(25);
    const active = await contacts(5, true);
    const segment = await api.call(t, 'POST', '/v1/segments', { name: 'dormant', definition: { not: { last: 'interaction', op: 'within_last', value: '180d' } } });
    expect(segment.status).toBe(201);
    const id = await create({
      type: 'win_back',
      audience: { segment_id: segment.body.id },
      action: { send: { channel: 'sms', content: { body: 'We miss you, {{ contact.name }}!' } } },
      throttle: { per_minute: 10 },
    });
    const started = api.clock.now();
    expect((await act(id, 'start')).status).toBe('scheduled');
    await sweepAll(7);

    const queued = await campaignMessages(id);
    expect(queued.map((m) => m.contact_id).sort()).toEqual([...dormant].sort());
    expect(queued.some((m) => active.includes(m.contact_id))).toBe(false);
    queued.forEach((m, i) => {
      expect(m.seq).toBe(i);
      expect(new Date(m.due_at!).getTime()).toBe(started.getTime() + Math.floor(i / 10) * MINUTE);
      expect(m.idempotency_key).toMatch(new RegExp(`^campaign:[0-9a-f-]{36}:${m.contact_id}$`));
    });
    // Written, but its messages are still falling due: it can still be paused.
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}`)).body.status).toBe('running');

    await worker.drain();
    expect(sentTo()).toHaveLength(10);
    api.clock.advance(MINUTE);
    await worker.drain();
    expect(sentTo()).toHaveLength(20);
    api.clock.advance(MINUTE);
    await worker.drain();
    expect(sentTo()).toHaveLength(25);
    expect(new Set(sentTo().map((s) => s.message.to)).size).toBe(25);
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}`)).body).toMatchObject({ status: 'completed', completed_at: api.clock.now().toISOString() });
    expect(sentTo()[0]!.message.body).toMatch(/^We miss you, C\d+!$/);

    // One of them answers.
    const first = (await api.db.query<{ phone: string }>('select phone from contacts where id = $1', [dormant[0]])).rows[0]!.phone;
    await recordInbound(
      api.db,
      { tenant_id: t.id, provider: 'sandbox', account_id: null },
      [{ type: 'message', channel: 'sms', from: first, to: 'sandbox', text: 'hi again', payload: null, provider_message_id: `in-${Math.random()}`, at: api.clock.now() }],
      api.clock.now(),
    );

    const detail = await api.call(t, 'GET', `/v1/campaigns/${id}`);
    const statuses = (await campaignMessages(id)).map((m) => m.status);
    const answered = statuses.filter((s) => s === 'replied').length;
    expect(answered).toBe(1);
    expect(detail.body.totals.recipients).toBe(25);
    expect(detail.body.totals.responded).toBe(answered);
    expect(detail.body.totals.sent + detail.body.totals.delivered + detail.body.totals.responded).toBe(25);

    const page1 = await api.call(t, 'GET', `/v1/campaigns/${id}/recipients?limit=20`);
    expect(page1.status).toBe(200);
    expect(page1.body.data).toHaveLength(20);
    const page2 = await api.call(t, 'GET', `/v1/campaigns/${id}/recipients?limit=20&cursor=${page1.body.next_cursor}`);
    expect(page2.body.data).toHaveLength(5);
    expect(page2.body.next_cursor).toBeNull();
    const listed = [...page1.body.data, ...page2.body.data];
    expect(listed.map((r: { contact_id: string }) => r.contact_id)).toEqual([...dormant].sort());
    const replied = await api.call(t, 'GET', `/v1/campaigns/${id}/recipients?state=responded`);
    expect(replied.body.data.map((r: { contact_id: string }) => r.contact_id)).toEqual([dormant[0]]);

    const csv = await api.app.inject({ method: 'GET', url: `/v1/campaigns/${id}/recipients?format=csv`, headers: { authorization: `Bearer ${t.key}` } });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe('contact_id,external_id,name,phone,email,occurrence_key,state,detail,reason,message_id,enrollment_id,sent_at,delivered_at,replied_at');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([...dormant].sort());
    const stateCol = lines[0]!.split(',').indexOf('state');
    expect(lines.slice(1).every((l) => ['sent', 'delivered', 'responded'].includes(l.split(',')[stateCol]!))).toBe(true);
  });
});

describe('a call campaign', () => {
  it('counts a call picked up as answered and a key pressed in it as responded', async () => {
    const people = await contacts(3);
    await grantAll(api.db, t.id, people, ['voice']);
    const id = await create({ type: 'win_back', audience: { contact_ids: people }, action: { send: { channel: 'voice', content: { body: 'Hello {{ contact.name }}' } } } });
    await act(id, 'start');
    await sweepAll(10);
    await worker.drain();
    const [picked, pressed] = (await campaignMessages(id)).map((m) => m.contact_id);
    const at = api.clock.now();
    await api.db.query(`update messages set status = 'delivered', delivered_at = $2 where contact_id = $1 and channel = 'voice'`, [picked, at]);
    await api.db.query(`update messages set status = 'replied', delivered_at = $2, replied_at = $2 where contact_id = $1 and channel = 'voice'`, [pressed, at]);
    const { totals } = (await api.call(t, 'GET', `/v1/campaigns/${id}`)).body;
    expect(totals).toMatchObject({ recipients: 3, answered: 1, responded: 1, sent: 1, delivered: 0 });
  });
});

describe('a campaign into a journey', () => {
  it("enrols each listed contact into the journey's live version", async () => {
    const [a, b, c] = await contacts(3);
    const journeyId = await publishJourney(api.db, t.id, {
      entry: { api: true },
      nodes: [{ id: 'ask', type: 'send', channel: 'sms', content: { body: 'How did we do?' } }],
    } as never);
    const id = await create({ type: 'feedback', audience: { contact_ids: [a, b, c] }, action: { journey_id: journeyId } });
    await act(id, 'start');
    await worker.drain();
    const { rows } = await api.db.query<{ contact_id: string; source: string; version: number }>(
      'select contact_id, source, version from enrollments where journey_id = $1 order by contact_id',
      [journeyId],
    );
    expect(rows.map((r) => r.contact_id)).toEqual([a, b, c].sort());
    expect(rows.every((r) => r.source === 'campaign' && r.version === 1)).toBe(true);
    expect(sentTo().map((s) => s.message.body)).toEqual(['How did we do?', 'How did we do?', 'How did we do?']);
    const recipients = await api.call(t, 'GET', `/v1/campaigns/${id}/recipients`);
    expect(recipients.body.data.every((r: { enrollment_id: string | null; state: string }) => r.enrollment_id && ['sent', 'delivered'].includes(r.state))).toBe(true);

    await api.db.query(`update enrollments set status = 'converted', ended_at = now() where journey_id = $1 and contact_id = $2`, [journeyId, a]);
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}`)).body.totals.converted).toBe(1);

    // Already in the journey: skipped, with the reason.
    const again = await create({ type: 'feedback', audience: { contact_ids: [b] }, action: { journey_id: journeyId } });
    await act(again, 'start');
    await worker.drain();
    const skipped = await api.call(t, 'GET', `/v1/campaigns/${again}/recipients`);
    expect(skipped.body.data).toMatchObject([{ contact_id: b, state: 'skipped', reason: 'reentry_not_allowed' }]);
  });

  it('refuses to start into a journey that is not active', async () => {
    const [a] = await contacts(1);
    const journeyId = await publishJourney(api.db, t.id, { entry: { api: true }, nodes: [{ id: 'x', type: 'send', channel: 'sms', content: { body: 'x' } }] } as never);
    await api.db.query(`update journeys set status = 'paused' where id = $1`, [journeyId]);
    const id = await create({ audience: { contact_ids: [a] }, action: { journey_id: journeyId } });
    const res = await api.call(t, 'POST', `/v1/campaigns/${id}/start`);
    expect(res.status).toBe(409);
    expect(res.body.error.fields[0].field).toBe('action.journey_id');
  });
});

describe('pause, resume and stop', () => {
  it('holds queued messages while paused, paces them again on resume, and cancels them on stop', async () => {
    await contacts(5);
    const id = await create({ audience: { definition: { field: 'phone', op: 'exists' } }, action: { send: { channel: 'sms', content: { body: 'Sale' } } }, throttle: { per_minute: 1 } });
    await act(id, 'start');
    await worker.drain();
    expect(sentTo()).toHaveLength(1);

    expect((await act(id, 'pause')).status).toBe('paused');
    expect((await campaignMessages(id)).filter((m) => m.status === 'queued').every((m) => m.due_at === null)).toBe(true);
    api.clock.advance(10 * MINUTE);
    await worker.drain();
    expect(sentTo()).toHaveLength(1);
    // One of those waiting opts out meanwhile: theirs is cancelled, and they count as opted out.
    const last = (await campaignMessages(id)).at(-1)!;
    await api.db.transaction((tx) => applyOptOuts(tx, t.id, [{ contact_id: last.contact_id, channel: 'sms', topic: 'all' }], api.clock.now()));

    const resumedAt = api.clock.now().getTime();
    expect((await act(id, 'resume')).status).toBe('running');
    const held = (await campaignMessages(id)).filter((m) => m.status === 'queued');
    expect(held.map((m) => new Date(m.due_at!).getTime() - resumedAt)).toEqual([0, 1, 2].map((i) => i * MINUTE));
    await worker.drain();
    expect(sentTo()).toHaveLength(2);

    expect((await act(id, 'stop')).status).toBe('cancelled');
    api.clock.advance(10 * MINUTE);
    await worker.drain();
    expect(sentTo()).toHaveLength(2);
    const totals = (await api.call(t, 'GET', `/v1/campaigns/${id}`)).body.totals;
    expect(totals).toMatchObject({ recipients: 5, cancelled: 2, opted_out: 1 });
    expect(totals.sent + totals.delivered).toBe(2);

    const res = await api.call(t, 'POST', `/v1/campaigns/${id}/resume`);
    expect(res.status).toBe(409);
    expect(res.body.error.fields[0].field).toBe('status');
  });

  it('writes no further batches while paused and goes on from where it stopped', async () => {
    const all = await contacts(6);
    const id = await create({ audience: { contact_ids: all }, action: { send: { channel: 'sms', content: { body: 'Hi' } } } });
    await act(id, 'start');
    await runCampaigns(api.db, api.clock.now(), { batchSize: 2, maxBatches: 1 });
    await act(id, 'pause');
    await runCampaigns(api.db, api.clock.now(), { batchSize: 2, maxBatches: 5 });
    expect(await campaignMessages(id)).toHaveLength(2);
    await act(id, 'resume');
    await sweepAll(2);
    expect((await campaignMessages(id)).map((m) => m.contact_id)).toEqual([...all].sort());
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}`)).body.status).toBe('completed');
  });
});

describe('several workers at once', () => {
  it('never starts an occurrence or writes a recipient twice', async () => {
    const all = await contacts(40);
    const id = await create({ audience: { contact_ids: all }, action: { send: { channel: 'sms', content: { body: 'Once' } } } });
    await act(id, 'start');
    await Promise.all([1, 2, 3, 4].map(() => runCampaigns(api.db, api.clock.now(), { batchSize: 5, maxBatches: 20 })));
    await sweepAll(5);
    const count = async (sql: string) => Number((await api.db.query<{ n: string }>(sql, [id])).rows[0]!.n);
    expect(await count('select count(*) as n from campaign_occurrences where campaign_id = $1')).toBe(1);
    expect(await count('select count(*) as n from campaign_recipients where campaign_id = $1')).toBe(40);
    expect(await count('select count(distinct m.id) as n from campaign_recipients r join messages m on m.id = r.message_id where r.campaign_id = $1')).toBe(40);

    // The same occurrence due again (a process that read the schedule before it moved on) is not fired again.
    const key = (await api.db.query<{ occurrence_key: string }>('select occurrence_key from campaign_occurrences where campaign_id = $1', [id])).rows[0]!.occurrence_key;
    await api.db.query(`update campaigns set status = 'running', next_run_at = $2 where id = $1`, [id, key]);
    await Promise.all([1, 2].map(() => runCampaigns(api.db, api.clock.now())));
    expect(await count('select count(*) as n from campaign_occurrences where campaign_id = $1')).toBe(1);
    expect(await count('select count(*) as n from campaign_recipients where campaign_id = $1')).toBe(40);

    const w2 = new Worker({ db: api.db, clock: api.clock, providers });
    await Promise.all([worker.drain(), w2.drain()]);
    expect(sentTo()).toHaveLength(40);
  });
});

describe('the API', () => {
  it('refuses invalid campaigns with 400s naming the field', async () => {
    const base = { name: 'x', type: 'promotional', action: { send: { channel: 'sms', content: { body: 'x' } } } };
    const two = await api.call(t, 'POST', '/v1/campaigns', { ...base, audience: { segment_id: newId(), contact_ids: [newId()] } });
    expect(two.status).toBe(400);
    expect(two.body.error.fields.map((f: { field: string }) => f.field)).toContain('audience');
    const unknown = await api.call(t, 'POST', '/v1/campaigns', { ...base, audience: { segment_id: newId() } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.fields[0].field).toBe('audience.segment_id');
    const badDef = await api.call(t, 'POST', '/v1/campaigns', { ...base, audience: { definition: { last: 'interaction', op: 'within_next', value: 'soon' } } });
    expect(badDef.status).toBe(400);
    expect(badDef.body.error.fields[0].field).toMatch(/^audience\.definition/);
    const badType = await api.call(t, 'POST', '/v1/campaigns', { ...base, type: 'spam', audience: { contact_ids: [newId()] } });
    expect(badType.status).toBe(400);
  });

  it('answers 409 naming status or name on a wrong state or a taken name, and filters the list by status', async () => {
    const [a] = await contacts(1);
    const body = { name: 'spring', type: 'promotional', audience: { contact_ids: [a] }, action: { send: { channel: 'sms', content: { body: 'x' } } } };
    const first = await api.call(t, 'POST', '/v1/campaigns', body);
    const dup = await api.call(t, 'POST', '/v1/campaigns', body);
    expect(dup.status).toBe(409);
    expect(dup.body.error.fields[0].field).toBe('name');
    const id = first.body.id;
    await act(id, 'pause', 409);
    await act(id, 'resume', 409);
    await act(id, 'start');
    await act(id, 'start', 409);
    const patched = await api.call(t, 'PATCH', `/v1/campaigns/${id}`, { schedule: { at: '2026-03-09T09:00:00Z' } });
    expect(patched.status).toBe(200);
    expect(new Date(patched.body.next_run_at).toISOString()).toBe('2026-03-09T09:00:00.000Z');
    await worker.drain();
    expect(sentTo()).toHaveLength(0);
    expect((await api.call(t, 'GET', '/v1/campaigns?status=scheduled')).body.data.map((c: { id: string }) => c.id)).toEqual([id]);
    expect((await api.call(t, 'GET', '/v1/campaigns?status=draft')).body.data).toEqual([]);

    api.clock.set('2026-03-09T09:00:00Z');
    await worker.drain();
    expect(sentTo()).toHaveLength(1);
    const res = await api.call(t, 'PATCH', `/v1/campaigns/${id}`, { name: 'renamed' });
    expect(res.status).toBe(409);
    expect(res.body.error.fields[0].field).toBe('status');
    const del = await api.call(t, 'DELETE', `/v1/campaigns/${id}`);
    expect(del.status).toBe(200);
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}`)).status).toBe(404);
  });

  it("keeps one tenant's campaigns from another", async () => {
    const [a] = await contacts(1);
    const id = await create({ audience: { contact_ids: [a] }, action: { send: { channel: 'sms', content: { body: 'x' } } } });
    const other = await api.tenant(`Other ${Math.random()}`);
    expect((await api.call(other, 'GET', `/v1/campaigns/${id}`)).status).toBe(404);
    expect((await api.call(other, 'POST', `/v1/campaigns/${id}/start`)).status).toBe(404);
    expect((await api.call(other, 'GET', '/v1/campaigns')).body.data).toEqual([]);
    // Another tenant's contact ids are left out of an explicit list.
    const theirs = await api.call(other, 'POST', '/v1/campaigns', {
      name: 'poach',
      type: 'custom',
      audience: { contact_ids: [a] },
      action: { send: { channel: 'sms', content: { body: 'x' } } },
    });
    await api.call(other, 'POST', `/v1/campaigns/${theirs.body.id}/start`);
    await worker.drain();
    expect((await api.call(other, 'GET', `/v1/campaigns/${theirs.body.id}`)).body.totals.recipients).toBe(0);
    expect(providers.sandbox.sent).toHaveLength(0);
  });
});
