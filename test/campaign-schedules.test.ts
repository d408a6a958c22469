import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCampaigns } from '../src/engine/campaign-runner.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/** Recurring (cron in the tenant's zone) and recipient-local schedules, through the API and the runner. */

let api: TestApi;
let t: TestTenant;
let providers: ReturnType<typeof sandboxRegistry>;
let worker: Worker;

beforeAll(async () => {
  api = await testApi();
});
afterAll(() => api.close());

beforeEach(async () => {
  t = await api.tenant(`Shop ${Math.random()}`);
  await api.db.query(`update tenants set time_zone = 'America/New_York' where id = $1`, [t.id]);
  await allowAnyTime(api.db, t.id);
  providers = sandboxRegistry();
  worker = new Worker({ db: api.db, clock: api.clock, providers });
});

let phoneSeq = 0;
async function contacts(zones: (string | null)[]): Promise<string[]> {
  const ids: string[] = [];
  for (const time_zone of zones) {
    const phone = `+4470000${String(10000 + phoneSeq++).padStart(5, '0')}`;
    ids.push((await createContact(api.db, t.id, { phone, name: `C${phoneSeq}`, time_zone: time_zone ?? undefined }, {}, api.clock.now())).id);
  }
  await grantAll(api.db, t.id, ids, ['sms']);
  return ids;
}

async function create(body: Record<string, unknown>, status = 201) {
  const res = await api.call(t, 'POST', '/v1/campaigns', { name: `c-${Math.random()}`, type: 'custom', action: { send: { channel: 'sms', content: { body: 'Hello {{ contact.name }}' } } }, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}
async function act(id: string, action: string, status = 200) {
  const res = await api.call(t, 'POST', `/v1/campaigns/${id}/${action}`);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}
const get = async (id: string) => (await api.call(t, 'GET', `/v1/campaigns/${id}`)).body;
const occurrences = async (id: string) =>
  (await api.db.query<{ occurrence_key: string; local_at: string | null; status: string; written: number }>('select occurrence_key, local_at, status, written from campaign_occurrences where campaign_id = $1 order by scheduled_for', [id])).rows;
const messagesOf = async (id: string) =>
  (
    await api.db.query<{ contact_id: string; due_at: Date | null; status: string; occurrence_key: string }>(
      `select r.contact_id, m.due_at, m.status, o.occurrence_key from campaign_recipients r join campaign_occurrences o on o.id = r.occurrence_id
         join messages m on m.id = r.message_id where r.campaign_id = $1 order by o.scheduled_for, m.due_at`,
      [id],
    )
  ).rows;

/** Several workers sweeping at the same instant, as several processes would. */
async function sweepTogether(n = 4): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const sweeps = await Promise.all(Array.from({ length: n }, () => runCampaigns(api.db, api.clock.now(), { batchSize: 50 })));
    if (!sweeps.some((s) => s.batches || s.started)) return;
  }
}

describe('a recurring campaign', () => {
  it('fires every Monday at 09:00 in the tenant\'s zone, each tick once however many workers sweep, until stopped', async () => {
    api.clock.set('2026-03-01T12:00:00Z'); // a Sunday
    const people = await contacts(['Europe/Madrid', null, 'Asia/Tokyo']);
    const c = await create({ audience: { contact_ids: people }, schedule: { cron: '0 9 * * 1' } });
    const started = await act(c.id, 'start');
    // 09:00 in New York (EST) is 14:00 UTC.
    expect(started).toMatchObject({ status: 'scheduled', next_run_at: '2026-03-02T14:00:00.000Z', next_local: null });

    await sweepTogether();
    expect(await occurrences(c.id)).toEqual([]);
    api.clock.set('2026-03-02T14:00:00Z');
    await sweepTogether();
    // One occurrence (complete once its sends fell due), and New York's clocks go forward on
    // 2026-03-08: the next Monday is at 13:00 UTC.
    expect(await occurrences(c.id)).toEqual([{ occurrence_key: '2026-03-02T14:00:00.000Z', local_at: null, status: 'completed', written: 3 }]);
    expect(await get(c.id)).toMatchObject({ status: 'running', next_run_at: '2026-03-09T13:00:00.000Z' });
    await worker.drain();
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(3);
    // Recurring: the campaign is not completed while ticks remain.
    expect((await get(c.id)).status).toBe('running');

    api.clock.set('2026-03-09T13:00:00Z');
    await sweepTogether();
    await worker.drain();
    expect((await occurrences(c.id)).map((o) => o.occurrence_key)).toEqual(['2026-03-02T14:00:00.000Z', '2026-03-09T13:00:00.000Z']);
    const sent = providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id);
    expect(sent).toHaveLength(6);
    // Each week's message is its own: one per contact per occurrence.
    expect(new Set(sent.map((s) => s.message.id)).size).toBe(6);
    expect((await get(c.id)).totals.recipients).toBe(6);

    const stopped = await act(c.id, 'stop');
    expect(stopped).toMatchObject({ status: 'cancelled', next_run_at: null });
    api.clock.set('2026-03-16T13:00:00Z');
    await sweepTogether();
    expect(await occurrences(c.id)).toHaveLength(2);
  });

  it('does not make up a tick missed while paused, and completes after until', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const people = await contacts(['Europe/Madrid']);
    const c = await create({ audience: { contact_ids: people }, schedule: { cron: '30 8 * * *', zone: 'Europe/Madrid', until: '2026-03-05T00:00:00Z' } });
    expect((await act(c.id, 'start')).next_run_at).toBe('2026-03-02T07:30:00.000Z');
    api.clock.set('2026-03-02T07:30:00Z');
    await sweepTogether();
    await act(c.id, 'pause');
    api.clock.set('2026-03-03T10:00:00Z'); // Tuesday 08:30 Madrid went by during the pause
    const resumed = await act(c.id, 'resume');
    expect(resumed).toMatchObject({ status: 'running', next_run_at: '2026-03-04T07:30:00.000Z' });
    await sweepTogether();
    api.clock.set('2026-03-04T07:30:00Z');
    await sweepTogether();
    await worker.drain();
    expect((await occurrences(c.id)).map((o) => o.occurrence_key)).toEqual(['2026-03-02T07:30:00.000Z', '2026-03-04T07:30:00.000Z']);
    // Thursday's tick is after until: nothing is left, and the campaign completes.
    expect((await get(c.id)).next_run_at).toBeNull();
    await sweepTogether();
    expect(await get(c.id)).toMatchObject({ status: 'completed' });
  });

  it('refuses bad schedules with a 400 naming the field, and writes nothing', async () => {
    const people = await contacts([null]);
    const cases: [Record<string, unknown>, string][] = [
      [{ cron: '0 9 * *' }, 'schedule.cron'],
      [{ cron: '0 0 9 * * 1' }, 'schedule.cron'],
      [{ cron: '0 9 * * 1', zone: 'Mars/Olympus' }, 'schedule.zone'],
      [{ cron: '0 9 * * 1', until: '2020-01-01T00:00:00Z' }, 'schedule.until'],
      [{ at: '2026-04-01T00:00:00Z', cron: '0 9 * * 1' }, 'schedule'],
      [{ recipient_local: true }, 'schedule.recipient_local'],
      [{ local_at: 'monday 9am' }, 'schedule.local_at'],
    ];
    for (const [schedule, field] of cases) {
      const res = await create({ audience: { contact_ids: people }, schedule }, 400);
      expect(res.error.fields.map((e: { field: string }) => e.field), JSON.stringify(schedule)).toContain(field);
    }
    expect((await api.db.query<{ n: number }>('select count(*)::int as n from campaigns where tenant_id = $1', [t.id])).rows[0]!.n).toBe(0);
  });
});

describe('a recipient-local campaign', () => {
  it('reaches each recipient at Monday 09:00 in their own zone, from one occurrence', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const [tokyo, madrid, la, unknown] = await contacts(['Asia/Tokyo', 'Europe/Madrid', 'America/Los_Angeles', null]);
    const c = await create({ audience: { contact_ids: [tokyo, madrid, la, unknown] }, schedule: { cron: '0 9 * * 1', recipient_local: true } });
    // Monday 09:00 comes first at UTC+14, Sunday 19:00 UTC.
    expect(await act(c.id, 'start')).toMatchObject({ next_run_at: '2026-03-01T19:00:00.000Z', next_local: '2026-03-02T09:00' });
    api.clock.set('2026-03-01T19:00:00Z');
    await sweepTogether();
    expect(await occurrences(c.id)).toEqual([{ occurrence_key: 'local:2026-03-02T09:00', local_at: '2026-03-02T09:00', status: 'running', written: 4 }]);
    expect(await get(c.id)).toMatchObject({ next_local: '2026-03-09T09:00' });
    const due = new Map((await messagesOf(c.id)).map((m) => [m.contact_id, new Date(m.due_at!).toISOString()]));
    expect(Object.fromEntries(due)).toEqual({
      [tokyo!]: '2026-03-02T00:00:00.000Z',
      [madrid!]: '2026-03-02T08:00:00.000Z',
      [la!]: '2026-03-02T17:00:00.000Z',
      // No zone of its own: its UK number places it in London.
      [unknown!]: '2026-03-02T09:00:00.000Z',
    });
    api.clock.set('2026-03-02T08:00:00Z');
    await worker.drain();
    const sentIds = providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id).map((s) => s.message.id);
    const sentTo = (await api.db.query<{ contact_id: string }>('select contact_id from messages where id = any($1::uuid[])', [sentIds])).rows.map((r) => r.contact_id);
    expect(sentTo.sort()).toEqual([tokyo, madrid].sort());
    // The occurrence stays open until Los Angeles has had its message.
    await sweepTogether();
    expect((await occurrences(c.id))[0]!.status).toBe('running');
    api.clock.set('2026-03-02T17:00:00Z');
    await worker.drain();
    await sweepTogether();
    expect((await occurrences(c.id))[0]!.status).toBe('completed');
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(4);
  });

  it('starts a journey campaign at each recipient\'s local time, without a throttle too', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const [tokyo, la] = await contacts(['Asia/Tokyo', 'America/Los_Angeles']);
    const journeyId = await publishJourney(api.db, t.id, { entry: { api: true }, nodes: [{ id: 'hi', type: 'send', channel: 'sms', content: { body: 'Good morning' } }] } as never);
    const c = await create({ audience: { contact_ids: [tokyo, la] }, action: { journey_id: journeyId }, schedule: { local_at: '2026-03-02T09:00' } });
    await act(c.id, 'start');
    api.clock.set('2026-03-01T19:00:00Z');
    await sweepTogether();
    const { rows } = await api.db.query<{ contact_id: string; due_at: Date }>('select contact_id, due_at from enrollments where journey_id = $1', [journeyId]);
    expect(Object.fromEntries(rows.map((r) => [r.contact_id, new Date(r.due_at).toISOString()]))).toEqual({
      [tokyo!]: '2026-03-02T00:00:00.000Z',
      [la!]: '2026-03-02T17:00:00.000Z',
    });
  });

  it('resumed, keeps each held message at its local time, and cancels those whose time went by during the pause', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const [tokyo, madrid, la] = await contacts(['Asia/Tokyo', 'Europe/Madrid', 'America/Los_Angeles']);
    const c = await create({ audience: { contact_ids: [tokyo, madrid, la] }, schedule: { local_at: '2026-03-02T09:00' } });
    await act(c.id, 'start');
    api.clock.set('2026-03-01T19:00:00Z');
    await sweepTogether();
    await act(c.id, 'pause');
    api.clock.set('2026-03-01T19:05:00Z');
    await act(c.id, 'resume');
    const due = async () => Object.fromEntries((await messagesOf(c.id)).map((m) => [m.contact_id, m.status === 'queued' ? new Date(m.due_at!).toISOString() : m.status]));
    expect(await due()).toEqual({ [tokyo!]: '2026-03-02T00:00:00.000Z', [madrid!]: '2026-03-02T08:00:00.000Z', [la!]: '2026-03-02T17:00:00.000Z' });

    await act(c.id, 'pause');
    api.clock.set('2026-03-02T09:00:00Z'); // 18:00 in Tokyo, 10:00 in Madrid, 01:00 in Los Angeles
    await act(c.id, 'resume');
    expect(await due()).toEqual({ [tokyo!]: 'cancelled', [madrid!]: 'cancelled', [la!]: '2026-03-02T17:00:00.000Z' });
    const reasons = (await api.db.query<{ reason: string }>(`select m.reason from campaign_recipients r join messages m on m.id = r.message_id where r.campaign_id = $1 and m.status = 'cancelled'`, [c.id])).rows;
    expect(reasons.map((r) => r.reason)).toEqual(['local_time_passed', 'local_time_passed']);
  });

  it('started late, skips those whose local time has passed instead of sending hours late', async () => {
    api.clock.set('2026-03-02T12:00:00Z'); // Monday noon UTC: 21:00 in Tokyo, 13:00 in Madrid, 04:00 in Los Angeles
    const [tokyo, madrid, la] = await contacts(['Asia/Tokyo', 'Europe/Madrid', 'America/Los_Angeles']);
    const c = await create({ audience: { contact_ids: [tokyo, madrid, la] }, schedule: { local_at: '2026-03-02T09:00' } });
    expect(await act(c.id, 'start')).toMatchObject({ next_run_at: '2026-03-02T12:00:00.000Z', next_local: '2026-03-02T09:00' });
    await sweepTogether();
    const messages = await messagesOf(c.id);
    expect(messages.map((m) => [m.contact_id, new Date(m.due_at!).toISOString()])).toEqual([[la, '2026-03-02T17:00:00.000Z']]);
    const skipped = await api.call(t, 'GET', `/v1/campaigns/${c.id}/recipients?state=skipped`);
    expect(skipped.body.data.map((r: { contact_id: string; reason: string }) => [r.contact_id, r.reason]).sort()).toEqual(
      [
        [tokyo, 'local_time_passed'],
        [madrid, 'local_time_passed'],
      ].sort(),
    );
    // A one-off: nothing after it.
    expect((await get(c.id)).next_run_at).toBeNull();
  });
});

describe('a recipient-local campaign with a throttle', () => {
  it('paces the recipients of each local instant from it, counted across batches and over a pause', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    // Madrid and Paris share an offset, so Monday 09:00 is one instant for both.
    const zones = ['Europe/Madrid', 'Asia/Tokyo', 'Europe/Paris', 'Europe/Madrid', 'Europe/Madrid', 'Europe/Paris', 'Asia/Tokyo', 'Europe/Madrid', 'Europe/Paris', 'Europe/Madrid'];
    const people = await contacts(zones);
    const zoneOf = new Map(people.map((id, i) => [id, zones[i]!]));
    const c = await create({ audience: { contact_ids: people }, schedule: { local_at: '2026-03-02T09:00' }, throttle: { per_minute: 2 } });
    await act(c.id, 'start');
    /** Each zone's due times (HH:mm UTC) in order, and what else its messages are. */
    const dueByZone = async () => {
      const byZone: Record<string, string[]> = {};
      for (const m of await messagesOf(c.id)) {
        const zone = zoneOf.get(m.contact_id)!.startsWith('Europe') ? 'Europe' : 'Tokyo';
        (byZone[zone] ??= []).push(m.status === 'queued' ? new Date(m.due_at!).toISOString().slice(11, 16) : m.status);
      }
      for (const times of Object.values(byZone)) times.sort();
      return byZone;
    };

    api.clock.set('2026-03-01T19:00:00Z');
    await runCampaigns(api.db, api.clock.now(), { batchSize: 4, maxBatches: 1 });
    await act(c.id, 'pause');
    api.clock.set('2026-03-01T19:02:00Z');
    await act(c.id, 'resume');
    for (let i = 0; i < 5; i++) await runCampaigns(api.db, api.clock.now(), { batchSize: 4, maxBatches: 1 });
    expect((await occurrences(c.id))[0]).toMatchObject({ written: 10 });
    // Two a minute from 09:00 local, not all ten at once; the batch written before the pause and
    // the ones after count on from each other.
    expect(await dueByZone()).toEqual({ Europe: ['08:00', '08:00', '08:01', '08:01', '08:02', '08:02', '08:03', '08:03'], Tokyo: ['00:00', '00:00'] });

    // Paused when Madrid's 09:00 came and resumed six minutes later: its held messages go out two a
    // minute from then, not in a burst.
    api.clock.set('2026-03-02T08:00:00Z');
    await worker.drain();
    await act(c.id, 'pause');
    api.clock.set('2026-03-02T08:06:00Z');
    await act(c.id, 'resume');
    expect(await dueByZone()).toEqual({ Europe: ['08:06', '08:06', '08:07', '08:07', '08:08', '08:08', 'sent', 'sent'], Tokyo: ['sent', 'sent'] });
  });
});

describe('resuming a paused campaign', () => {
  it('after its next recipient-local tick began, still sends that tick to the zones it has not reached yet', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const [tokyo, madrid, la] = await contacts(['Asia/Tokyo', 'Europe/Madrid', 'America/Los_Angeles']);
    const c = await create({ audience: { contact_ids: [tokyo, madrid, la] }, schedule: { cron: '0 9 * * 1', recipient_local: true } });
    await act(c.id, 'start');
    api.clock.set('2026-03-01T19:00:00Z');
    await sweepTogether();
    api.clock.set('2026-03-02T17:00:00Z');
    await worker.drain();
    await sweepTogether();
    await act(c.id, 'pause');
    // Monday 9 March, 10:00 UTC: 19:00 in Tokyo, 11:00 in Madrid, 03:00 in Los Angeles.
    api.clock.set('2026-03-09T10:00:00Z');
    expect(await act(c.id, 'resume')).toMatchObject({ status: 'running', next_run_at: '2026-03-09T10:00:00.000Z', next_local: '2026-03-09T09:00' });
    await sweepTogether();
    expect((await occurrences(c.id)).map((o) => o.occurrence_key)).toEqual(['local:2026-03-02T09:00', 'local:2026-03-09T09:00']);
    const thisWeek = (await messagesOf(c.id)).filter((m) => m.occurrence_key === 'local:2026-03-09T09:00');
    // Los Angeles is on summer time since 8 March: 09:00 there is 16:00 UTC.
    expect(thisWeek.map((m) => [m.contact_id, new Date(m.due_at!).toISOString()])).toEqual([[la, '2026-03-09T16:00:00.000Z']]);
    const skipped = await api.call(t, 'GET', `/v1/campaigns/${c.id}/recipients?state=skipped`);
    expect(skipped.body.data.map((r: { contact_id: string; reason: string; occurrence_key: string }) => [r.contact_id, r.reason, r.occurrence_key]).sort()).toEqual(
      [
        [tokyo, 'local_time_passed', 'local:2026-03-09T09:00'],
        [madrid, 'local_time_passed', 'local:2026-03-09T09:00'],
      ].sort(),
    );
    expect(await get(c.id)).toMatchObject({ next_local: '2026-03-16T09:00' });
  });

  it('after its until, completes a recurring campaign that was started but had not fired', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const people = await contacts(['Europe/Madrid']);
    const c = await create({ audience: { contact_ids: people }, schedule: { cron: '30 8 * * *', zone: 'Europe/Madrid', until: '2026-03-04T00:00:00Z' } });
    await act(c.id, 'start');
    await act(c.id, 'pause');
    api.clock.set('2026-03-05T12:00:00Z');
    expect(await act(c.id, 'resume')).toMatchObject({ status: 'completed', next_run_at: null, completed_at: '2026-03-05T12:00:00.000Z' });
    await sweepTogether();
    expect(await occurrences(c.id)).toEqual([]);
    expect((await get(c.id)).status).toBe('completed');
  });

  it('after its time, fires a one-off at once (it has no later time to wait for)', async () => {
    api.clock.set('2026-03-01T12:00:00Z');
    const people = await contacts(['Europe/Madrid']);
    const c = await create({ audience: { contact_ids: people }, schedule: { at: '2026-03-02T09:00:00Z' } });
    await act(c.id, 'start');
    api.clock.set('2026-03-02T08:00:00Z');
    await act(c.id, 'pause');
    api.clock.set('2026-03-02T11:00:00Z');
    expect(await act(c.id, 'resume')).toMatchObject({ status: 'scheduled', next_run_at: '2026-03-02T09:00:00.000Z' });
    await sweepTogether();
    expect(await occurrences(c.id)).toMatchObject([{ occurrence_key: '2026-03-02T09:00:00.000Z', written: 1 }]);
    await worker.drain();
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(1);
    await sweepTogether();
    expect(await get(c.id)).toMatchObject({ status: 'completed', next_run_at: null });
  });
});

describe("the worker's idle sleep", () => {
  // A database of its own: the sleep reads every tenant's due times.
  let own: TestApi;
  beforeAll(async () => {
    own = await testApi();
  });
  afterAll(() => own.close());

  it('ends at the next tick of a scheduled campaign, and is not cut short by a paused one', async () => {
    const DAY = 24 * 3_600_000;
    own.clock.set('2026-03-01T12:00:00Z');
    const tenant = await own.tenant('Idle');
    const contact = await createContact(own.db, tenant.id, { phone: '+447000010000' }, {}, own.clock.now());
    const idle = new Worker({ db: own.db, clock: own.clock, providers: sandboxRegistry() }) as unknown as { untilNextDue(max: number): Promise<number> };
    const campaign = async (schedule: Record<string, unknown>) => {
      const body = { name: `c-${Math.random()}`, type: 'custom', audience: { contact_ids: [contact.id] }, action: { send: { channel: 'sms', content: { body: 'Hi' } } }, schedule };
      const id = (await own.call(tenant, 'POST', '/v1/campaigns', body)).body.id as string;
      expect((await own.call(tenant, 'POST', `/v1/campaigns/${id}/start`)).status).toBe(200);
      return id;
    };
    expect(await idle.untilNextDue(DAY)).toBe(DAY);
    await campaign({ cron: '0 9 * * 1', zone: 'UTC' }); // Monday 2 March, 09:00 UTC
    expect(await idle.untilNextDue(DAY)).toBe(21 * 3_600_000);
    const paused = await campaign({ at: '2026-03-01T12:30:00Z' });
    expect(await idle.untilNextDue(DAY)).toBe(30 * 60_000);
    await own.call(tenant, 'POST', `/v1/campaigns/${paused}/pause`);
    expect(await idle.untilNextDue(DAY)).toBe(21 * 3_600_000);
    own.clock.set('2026-03-01T12:45:00Z'); // the paused one is past its time
    expect(await idle.untilNextDue(DAY)).toBe(20 * 3_600_000 + 15 * 60_000);
    // Resumed, it is due now: no sleep.
    await own.call(tenant, 'POST', `/v1/campaigns/${paused}/resume`);
    expect(await idle.untilNextDue(DAY)).toBe(0);
  });
});
