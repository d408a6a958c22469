import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enrollAll, seedContacts, THREE_STEPS, THREE_STEPS_HISTORY } from '../bench/engine-workload.js';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import type { Db } from '../src/store/db.js';
import { ingestEvents } from '../src/store/events.js';
import { openPostgres } from '../src/store/postgres.js';
import { createTenant } from '../src/store/tenants.js';
import { freshDatabaseUrl, TEST_DATABASE_URL } from './helpers/db.js';
import { allowAnyTime, publishJourney } from './helpers/journeys.js';

/**
 * Real `rapport worker` processes sharing one PostgreSQL database: the delivery guarantees of
 * the brief (a due step runs once; a worker that dies loses nothing; new work wakes workers in
 * other processes at once) hold between processes, not only between workers of one process.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Steps the process reports on a clean stop ("stopped after N steps"). */
  steps(): number;
}

const running = new Set<ChildProcess>();

function startWorker(url: string, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['bin/rapport.js', 'worker', '--concurrency', '1'], {
    cwd: ROOT,
    // The scoring service of the crash test listens on loopback, which webhooks may not reach unless allowed.
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn', RAPPORT_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, steps: () => Number(/stopped after (\d+) steps/.exec(out)?.[1] ?? NaN) };
}

async function untilRunning(...procs: WorkerProcess[]): Promise<void> {
  for (const p of procs) {
    await expect.poll(() => (p.child.exitCode === null ? p.output() : `exited ${p.child.exitCode}: ${p.output()}`), { timeout: 30_000, interval: 25 }).toMatch(/running/);
  }
}

function stop(p: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.kill(signal);
  });
}

/** Polls until nothing is due: every enrollment ended and every message left the outbox. */
async function untilDone(db: Db, timeout: number): Promise<void> {
  await expect
    .poll(
      async () => {
        const { rows } = await db.query<{ due: number; open: number }>(
          `select (select count(*) from enrollments where ended_at is null) as open, (select count(*) from messages where due_at is not null) as due`,
        );
        return rows[0];
      },
      { timeout, interval: 200 },
    )
    .toEqual({ open: 0, due: 0 });
}

interface Setup {
  url: string;
  db: Db;
  tenant: string;
  contacts: string[];
  drop(): Promise<void>;
}

async function setup(contacts: number): Promise<Setup> {
  const { url, drop } = await freshDatabaseUrl();
  const db = openPostgres({ connectionString: url, max: 4 });
  const tenant = (await createTenant(db, { name: 'Workers' })).id;
  await allowAnyTime(db, tenant);
  const ids = await seedContacts(db, tenant, contacts);
  return {
    url,
    db,
    tenant,
    contacts: ids,
    async drop() {
      await db.close();
      await drop();
    },
  };
}

/** The invariants of a finished run, whatever the workers went through on the way. */
async function expectEveryStepOnce(db: Db, enrollments: number, history: string[], messagesEach: number): Promise<void> {
  const { rows: statuses } = await db.query<{ status: string; n: number }>('select status, count(*) as n from enrollments group by status');
  expect(statuses).toEqual([{ status: 'completed', n: enrollments }]);

  const { rows: steps } = await db.query<{ enrollments: number; rows: number; wrong: number }>(
    `select count(*) as enrollments, sum(n)::int as rows, count(*) filter (where h <> $1::text[] or lo <> 1 or hi <> n) as wrong
       from (select enrollment_id, array_agg(node || ':' || outcome order by seq) as h, min(seq) as lo, max(seq) as hi, count(*) as n
               from enrollment_steps group by enrollment_id) s`,
    [history],
  );
  expect(steps[0]).toEqual({ enrollments, rows: enrollments * history.length, wrong: 0 });
  const { rows: counters } = await db.query<{ n: number }>('select count(*) as n from enrollments where steps <> $1', [history.length]);
  expect(counters[0]!.n).toBe(0);

  const { rows: msgs } = await db.query<{ total: number; sent: number; keys: number; enrollments: number; wrong: number }>(
    `select count(*) as total, count(*) filter (where status = 'sent') as sent, count(distinct idempotency_key) as keys,
            count(distinct enrollment_id) as enrollments,
            (select count(*) from (select 1 from messages group by enrollment_id having count(*) <> $1 or count(distinct node) <> $1) x) as wrong
       from messages`,
    [messagesEach],
  );
  expect(msgs[0]).toEqual({ total: enrollments * messagesEach, sent: enrollments * messagesEach, keys: enrollments * messagesEach, enrollments, wrong: 0 });
}

describe.skipIf(!TEST_DATABASE_URL)('worker processes on PostgreSQL', () => {
  beforeAll(() => {
    // `npm test` builds dist/ before the integration tests; a bare `vitest run` may not have.
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  }, 120_000);

  afterEach(async () => {
    // A failed test must not leave workers behind.
    await Promise.all([...running].map((c) => new Promise<void>((resolve) => (c.once('exit', () => resolve()), c.kill('SIGKILL')))));
  });

  it('4 worker processes, 20,000 enrollments, every step exactly once', async () => {
    const s = await setup(20_000);
    try {
      const journey = await publishJourney(s.db, s.tenant, THREE_STEPS);
      expect(await enrollAll(s.db, s.tenant, journey, s.contacts, { chunk: 5_000 })).toBe(20_000);

      const started = performance.now();
      const procs = Array.from({ length: 4 }, () => startWorker(s.url));
      await untilDone(s.db, 60_000);
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(procs.map((p) => stop(p)));

      await expectEveryStepOnce(s.db, 20_000, THREE_STEPS_HISTORY, 2);
      const { rows } = await s.db.query<{ attempts: number; n: number }>('select attempts, count(*) as n from messages group by attempts');
      expect(rows, 'no provider call repeated').toEqual([{ attempts: 1, n: 40_000 }]);
      const { rows: timeline } = await s.db.query<{ wrong: number }>(
        `select count(*) as wrong from (select message_id from message_status group by message_id
            having array_agg(status order by id) <> array['queued', 'sent']) x`,
      );
      expect(timeline[0]!.wrong).toBe(0);

      // Each process reports the steps it recorded; together exactly one per history row.
      const perProcess = procs.map((p) => p.steps());
      console.log(`4 processes: 20,000 enrollments in ${seconds.toFixed(1)} s (from spawn), steps per process ${perProcess.join(', ')}`);
      expect(perProcess.reduce((a, b) => a + b, 0)).toBe(80_000);
      for (const n of perProcess) expect(n, 'every process took part').toBeGreaterThan(0);
    } finally {
      await s.drop();
    }
  }, 120_000);

  describe('a worker killed mid-batch', () => {
    let hook: Server;
    let hookUrl: string;
    const calls = new Map<string, number>();
    const inFlight = new Set<string>();
    beforeAll(async () => {
      // A slow scoring service: each call takes a while, so a dispatcher batch spends most of
      // its time with its messages marked 'sending' and the provider calls in flight.
      hook = createServer((req, res) => {
        const key = String(req.headers['idempotency-key']);
        calls.set(key, (calls.get(key) ?? 0) + 1);
        inFlight.add(key);
        req.resume();
        req.on('end', () =>
          setTimeout(() => {
            inFlight.delete(key);
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ value: 42 }));
          }, 300),
        );
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/score`;
    });
    afterAll(() => new Promise<void>((r) => hook.close(() => r())));

    it('loses nothing: an open transaction rolls back, leased messages are sent again once', async () => {
      const slow: JourneyDefinition = {
        name: 'Scored',
        entry: { api: true },
        nodes: [
          { id: 'sms', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.first_name }}' }, next: 'tally' },
          // Most of a millisecond of Liquid per enrollment, inside the scheduler's transaction: a batch of 500 keeps it open for a few hundred ms.
          {
            id: 'tally',
            type: 'action',
            update: { attributes: { tally: '{% assign x = 0 %}{% for i in (1..200) %}{% assign x = x | plus: i %}{% endfor %}{{ x }}' } },
            next: 'score',
          },
          { id: 'score', type: 'action', webhook: { url: hookUrl, body: { contact: '{{ contact.external_id }}' }, save_as: 'score', timeout: '2m' }, next: 'mail' },
          { id: 'mail', type: 'send', channel: 'email', content: { subject: 'Your score', body: 'It is {{ vars.score.value }}, {{ contact.first_name }}' } },
        ],
      };
      const history = ['sms:queued', 'tally:updated', 'score:calling_webhook', 'score:webhook_answered', 'mail:queued', 'mail:completed'];
      const s = await setup(5_000);
      try {
        const journey = await publishJourney(s.db, s.tenant, slow);
        await enrollAll(s.db, s.tenant, journey, s.contacts, { chunk: 5_000 });

        // Each victim's connections carry a name, so its backends can be watched in pg_stat_activity.
        // Leases differ by process so that a 'sending' row tells whose it is: due_at − updated_at is the lease.
        const LEASE = 6_000;
        const VICTIM_LEASE = 4_000;
        const named = (name: string) => {
          const u = new URL(s.url);
          u.searchParams.set('application_name', name);
          return u.toString();
        };
        const inTransaction = startWorker(named('rapport-victim-tx'), { RAPPORT_SEND_LEASE_MS: String(LEASE) });
        const inDispatch = startWorker(named('rapport-victim-lease'), { RAPPORT_SEND_LEASE_MS: String(VICTIM_LEASE) });
        await untilRunning(inTransaction, inDispatch);
        const sent = async () => (await s.db.query<{ n: number }>(`select count(*) as n from messages where status = 'sent'`)).rows[0]!.n;
        const gone = async (name: string) =>
          expect
            .poll(async () => (await s.db.query<{ n: number }>('select count(*) as n from pg_stat_activity where application_name = $1', [name])).rows[0]!.n, { timeout: 10_000 })
            .toBe(0);

        // 1. Killed inside a scheduler transaction: a backend idle in transaction for over 100 ms is
        //    waiting on the Liquid of its batch, with the batch's enrollments locked and its writes uncommitted.
        let openForMs = 0;
        await expect
          .poll(
            async () => {
              const { rows } = await s.db.query<{ ms: number }>(
                `select extract(epoch from clock_timestamp() - xact_start) * 1000 as ms from pg_stat_activity
                  where application_name = 'rapport-victim-tx' and state = 'idle in transaction' and xact_start < clock_timestamp() - interval '100 ms'`,
              );
              openForMs = Number(rows[0]?.ms ?? 0);
              return rows.length > 0 && (await sent()) >= 500;
            },
            { timeout: 45_000, interval: 10 },
          )
          .toBe(true);
        await stop(inTransaction, 'SIGKILL');
        // A commit already on its way would finish before the backend notices the client is gone.
        await gone('rapport-victim-tx');
        const afterFirstKill = await sent();
        const replacements = [startWorker(s.url, { RAPPORT_SEND_LEASE_MS: String(LEASE) })];

        // 2. Killed while a scoring service works on calls it made: their messages are leased to
        //    it and never recorded, so they are sent again once the lease runs out, and the calls repeat.
        const leased = `select id, kind, idempotency_key as key from messages where status = 'sending' and due_at - updated_at = make_interval(secs => ${VICTIM_LEASE / 1000})`;
        await expect
          .poll(
            async () => {
              const { rows } = await s.db.query<{ key: string; kind: string }>(leased);
              return rows.some((m) => m.kind === 'action_webhook' && inFlight.has(m.key)) && (await sent()) >= 1_500;
            },
            { timeout: 45_000, interval: 10 },
          )
          .toBe(true);
        await stop(inDispatch, 'SIGKILL');
        await gone('rapport-victim-lease');
        const { rows: orphans } = await s.db.query<{ id: string; kind: string; key: string }>(leased);
        const afterSecondKill = await sent();
        expect(afterSecondKill, 'killed before the end').toBeLessThan(15_000);
        replacements.push(startWorker(s.url, { RAPPORT_SEND_LEASE_MS: String(LEASE) }));

        await untilDone(s.db, 60_000);
        await Promise.all(replacements.map((p) => stop(p)));

        await expectEveryStepOnce(s.db, 5_000, history, 3);

        // Exactly what the second victim held was sent twice; nothing of the first, whose batch rolled back.
        const { rows: again } = await s.db.query<{ id: string; attempts: number }>(`select id, attempts from messages where attempts <> 1 order by id`);
        expect(again.map((m) => m.id)).toEqual(orphans.map((o) => o.id).sort());
        for (const m of again) expect(m.attempts).toBe(2);
        const repeated = [...calls].filter(([, n]) => n > 1).map(([key]) => key);
        expect([...calls.values()].every((n) => n <= 2), 'no call made three times').toBe(true);
        const orphanKeys = new Set(orphans.map((o) => o.key));
        expect(repeated.every((k) => orphanKeys.has(k)), 'only calls of the killed process repeat').toBe(true);
        expect(repeated.length, 'calls in flight at the kill are made again').toBeGreaterThan(0);
        console.log(
          `first kill inside a transaction open for ${openForMs.toFixed(0)} ms, after ${afterFirstKill} of 15,000 messages sent; ` +
            `second kill after ${afterSecondKill} sent: ${orphans.length} messages leased by that process were sent again ` +
            `(${orphans.filter((o) => o.kind === 'action_webhook').length} webhook calls, ${repeated.length} of which the service had already received: the repeats); ` +
            `steps by the replacements ${replacements.map((p) => p.steps()).join(' + ')}`,
        );
      } finally {
        await s.drop();
      }
    }, 120_000);
  });

  it('LISTEN/NOTIFY wakes a worker in another process at once', async () => {
    const s = await setup(5);
    try {
      await publishJourney(s.db, s.tenant, {
        entry: { event: 'doorbell' },
        nodes: [{ id: 'ring', type: 'send', channel: 'sms', content: { body: 'Someone is at the door, {{ contact.first_name }}' } }],
      });
      // Polling every minute: only a notification can explain a quick send.
      const worker = startWorker(s.url, { RAPPORT_POLL_MS: '60000' });
      await untilRunning(worker);
      await sleep(500);

      const seen: number[] = [];
      const stamped: number[] = [];
      for (const contact of s.contacts) {
        const t = performance.now();
        await ingestEvents(s.db, s.tenant, [{ name: 'doorbell', contact_id: contact }], new Date(), {});
        await expect
          .poll(
            async () => {
              const { rows } = await s.db.query<{ status: string }>('select status from messages where contact_id = $1', [contact]);
              return rows[0]?.status;
            },
            { timeout: 5_000, interval: 5 },
          )
          .toBe('sent');
        seen.push(performance.now() - t);
        // Let the worker go back to sleep, so the next event has to wake it again.
        await sleep(300);
      }
      const { rows } = await s.db.query<{ ms: number }>(
        `select extract(epoch from (m.sent_at - e.received_at)) * 1000 as ms from messages m join events e on e.contact_id = m.contact_id order by m.sent_at`,
      );
      stamped.push(...rows.map((r) => Number(r.ms)));
      console.log(`event → sent by another process: seen by the test after ${seen.map((x) => x.toFixed(0)).join(', ')} ms; sent_at − received_at ${stamped.map((x) => x.toFixed(0)).join(', ')} ms`);
      for (const ms of seen) expect(ms).toBeLessThan(2_000);
      await stop(worker);
    } finally {
      await s.drop();
    }
  }, 60_000);
});
