import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { TEST_DATABASE_URL } from './helpers/db.js';
import { publishJourney } from './helpers/journeys.js';

/**
 * Events for the same contacts recorded by concurrent transactions, in different orders, end,
 * wake and enrol the same enrollments. They must queue behind each other, not deadlock: PGlite
 * has one connection and cannot show it, so this runs on PostgreSQL only.
 */

const ROUNDS = 8;
const CONTACTS = 8;
const REQUESTS = 6;

function shuffle<T>(list: T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe.skipIf(!TEST_DATABASE_URL)('events for overlapping contacts in concurrent transactions', () => {
  let api: TestApi;
  let t: TestTenant;
  let worker: Worker;
  const journeys: Record<'goalA' | 'goalB' | 'waits' | 'd' | 'e', string> = { goalA: '', goalB: '', waits: '', d: '', e: '' };

  beforeAll(async () => {
    api = await testApi();
    t = await api.tenant();
    worker = new Worker({ db: api.db, clock: api.clock, providers: sandboxRegistry(new SandboxProvider()), dispatch: false });
    const hold = [{ id: 'w', type: 'wait' as const, duration: '1d' }];
    // 'goal' converts one and exits the other, 'leave' the reverse: each transaction both converts
    // and exits, in two statements, enrollments another transaction exits and converts.
    journeys.goalA = await publishJourney(api.db, t.id, { entry: { event: 'start' }, goals: [{ event: 'goal' }], exit_on: [{ event: 'leave' }], nodes: hold });
    journeys.goalB = await publishJourney(api.db, t.id, { entry: { event: 'start' }, goals: [{ event: 'leave' }], exit_on: [{ event: 'goal' }], nodes: hold });
    journeys.waits = await publishJourney(api.db, t.id, {
      entry: { event: 'start' },
      nodes: [{ id: 'w', type: 'wait', until_event: { events: [{ event: 'goal' }, { event: 'leave' }], timeout: '1d' } }],
    });
    // Two entry events, posted in either order: the journeys are enrolled in either order.
    journeys.d = await publishJourney(api.db, t.id, { entry: { event: 'd' }, nodes: hold });
    journeys.e = await publishJourney(api.db, t.id, { entry: { event: 'e' }, nodes: hold });
  });
  afterAll(() => api?.close());

  it('answers every batch and ends, wakes and enrols each enrollment exactly once', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { rows: made } = await api.db.query<{ id: string }>(
        `insert into contacts (id, tenant_id, external_id) select gen_random_uuid(), $1, $2 || '-' || n from generate_series(1, $3) as n returning id`,
        [t.id, `r${round}`, CONTACTS],
      );
      const contacts = made.map((r) => r.id);
      const start = await api.call(t, 'POST', '/v1/events/batch', { events: contacts.map((c) => ({ name: 'start', contact_id: c })) });
      expect(start.status).toBe(202);
      // The waiting journey's enrollments reach their wait.
      await worker.drain();

      // Not every batch ends every contact's enrollments: transactions overlap partly, and the
      // entry events of one may meet the ends of another.
      const batches = Array.from({ length: REQUESTS }, () =>
        shuffle(
          contacts.flatMap((c) => [
            ...(Math.random() < 0.5 ? [{ name: Math.random() < 0.5 ? 'goal' : 'leave', contact_id: c }] : []),
            { name: 'd', contact_id: c },
            { name: 'e', contact_id: c },
          ]),
        ),
      );
      const answers = await Promise.all(batches.map((events) => api.call(t, 'POST', '/v1/events/batch', { events })));
      expect(answers.map((a) => [a.status, a.body.recorded])).toEqual(batches.map((b) => [202, b.length]));
      const ending = new Set(batches.flat().flatMap((e) => (e.name === 'goal' || e.name === 'leave' ? [e.contact_id] : [])));

      const { rows: ends } = await api.db.query<{ contact_id: string; status: string; ends: number }>(
        `select e.contact_id, e.status, (select count(*)::int from enrollment_steps s where s.enrollment_id = e.id and s.outcome in ('converted', 'exited')) as ends
           from enrollments e where e.contact_id = any($1::uuid[]) and e.journey_id = any($2::uuid[])`,
        [contacts, [journeys.goalA, journeys.goalB]],
      );
      expect(ends).toHaveLength(2 * CONTACTS);
      for (const e of ends) {
        expect([e.status, e.ends]).toEqual(ending.has(e.contact_id) ? [expect.stringMatching(/^(converted|exited)$/), 1] : ['active', 0]);
      }

      const { rows: waiting } = await api.db.query<{ contact_id: string; woken: string | null }>(
        `select contact_id, wait->'woken'->>'name' as woken from enrollments where contact_id = any($1::uuid[]) and journey_id = $2`,
        [contacts, journeys.waits],
      );
      expect(waiting).toHaveLength(CONTACTS);
      for (const w of waiting) expect(w.woken).toEqual(ending.has(w.contact_id) ? expect.stringMatching(/^(goal|leave)$/) : null);

      const { rows: entered } = await api.db.query<{ journey_id: string; contact_id: string; enrollments: number; entries: number }>(
        `select je.journey_id, je.contact_id, je.entries, (select count(*)::int from enrollments e where e.journey_id = je.journey_id and e.contact_id = je.contact_id) as enrollments
           from journey_entries je where je.contact_id = any($1::uuid[]) and je.journey_id = any($2::uuid[])`,
        [contacts, [journeys.d, journeys.e]],
      );
      expect(entered).toHaveLength(2 * CONTACTS);
      for (const e of entered) expect([e.entries, e.enrollments]).toEqual([1, 1]);
    }
  }, 120_000);
});
