/**
 * Dispatch throughput to an HTTP provider, on PostgreSQL and on embedded PGlite:
 *
 *   backlog  N SMS (20,000; 1,000 with --quick) wait in the outbox, one per contact, each with its
 *            contact's consent, sendable at any hour, its body carrying its own outbox id
 *            ("ref <uuid>"). They are made due at one instant a moment ahead, and the workers send
 *            them all through the tenant's Twilio account, whose base_url is
 *            bench/provider-fake.ts: Twilio's Messages API in a process of its own, which notes
 *            when each request arrives. The baseline is the same messages with the account
 *            disabled, so they go to the in-process sandbox provider: the ratio between the two is
 *            what the HTTP call and the adapter cost.
 *   steady   the first 2,000 messages (400 with --quick) due one after another at 200/s, one
 *            worker: the latency of a message when the workers keep up.
 *
 *   On PostgreSQL the workers are `node bin/rapport.js worker` processes (1 and 2 for the
 *   backlog; 1 with --quick), each run on a fresh copy of one seeded database; on PGlite one worker in the bench's
 *   own process, on an in-memory database seeded for each run. Every configuration runs
 *   --repeats times (3; once with --quick), interleaved, and the tables show the median run.
 *
 *   npm run bench:dispatch -- [--quick] [--messages 20000] [--processes 1,2]
 *                             [--backend all|postgres|pglite] [--repeats 3]
 *
 * Figures: messages/s is N / (last sent_at − due), sent_at being when the dispatcher recorded
 * the provider's answer. "due → provider" is, per message, when the fake received the request
 * minus the due time; "due → sent" the same to sent_at. In the backlog all N are due at once,
 * so these are mostly each message's place in the queue divided by the rate: p50 is about half
 * the run.
 * CPU is read from /proc for the worker processes, the PostgreSQL backends serving them and the
 * fake. PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench
 * creates databases rapport_bench_<random>_* there and drops them. Results go to
 * bench/results/<date>-<host>-dispatch.json (-quick.json with --quick).
 */
import { parseArgs } from 'node:util';
import { deliveryFor } from '../src/channels/delivery.js';
import { SecretBox } from '../src/core/secrets.js';
import { systemClock } from '../src/engine/clock.js';
import { Worker } from '../src/engine/worker.js';
import type { Db } from '../src/store/db.js';
import { notifyWork } from '../src/store/enrollments.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { addHttpAccounts, benchTenant, HTTP_SECRET_KEY, seedContacts, TWILIO } from './engine-workload.js';
import {
  backendCpu,
  backendDelta,
  BENCH_APP,
  BenchDatabases,
  commit,
  ensureBuilt,
  finish,
  hostBusyPercent,
  hostCpu,
  hostPercent,
  machine,
  markdownTable,
  medianRun,
  ownCpu,
  percentiles,
  pgliteVersion,
  ProviderFake,
  round,
  startWorkers,
  stopWorkers,
  waitFor,
  workersCpu,
  type Percentiles,
} from './lib.js';
import type { FakeReport } from './provider-fake.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    messages: { type: 'string' },
    processes: { type: 'string' },
    backend: { type: 'string', default: 'all' },
    repeats: { type: 'string' },
  },
});
const MESSAGES = Number(args.messages ?? (args.quick ? 1_000 : 20_000));
const PROCESSES = (args.processes ?? (args.quick ? '1' : '1,2')).split(',').map(Number);
const REPEATS = Number(args.repeats ?? (args.quick ? 1 : 3));
const BACKENDS = args.backend === 'all' ? ['postgres', 'pglite'] : [args.backend];
for (const [name, v] of Object.entries({ messages: MESSAGES, repeats: REPEATS })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
if (!PROCESSES.every((p) => Number.isInteger(p) && p >= 1 && p <= 32)) throw new Error('--processes is a comma-separated list of process counts, e.g. 1,2');
for (const b of BACKENDS) if (b !== 'postgres' && b !== 'pglite') throw new Error('--backend is one of all, postgres, pglite');

/** How far ahead the messages are made due: the update that releases them must be committed by then. */
const LEAD_MS = 1500;
/** Parked: in the outbox, not yet due. */
const PARKED = new Date('2100-01-01T00:00:00Z');
const runTimeout = () => Math.max(120_000, MESSAGES * 10);
/** The steady phase: messages due one after another at this rate, well within what one worker sends. */
const STEADY = { rate: 200, seconds: args.quick ? 2 : 10 };
const steadyCount = () => Math.min(MESSAGES, STEADY.rate * STEADY.seconds);

type Provider = 'sandbox' | 'http';
/** All due at once, or due one after another at a steady rate. */
type Phase = 'backlog' | 'steady';

interface RunResult {
  phase: Phase;
  backend: 'postgres' | 'pglite';
  provider: Provider;
  processes: number;
  repeat: number;
  messages: number;
  sent: number;
  seconds: number;
  messagesPerSecond: number;
  /** Due → request received by the fake (HTTP runs only). */
  dueToProviderMs?: Percentiles;
  /** Due → sent_at, the dispatcher's record of the answer. */
  dueToSentMs: Percentiles;
  cpuSeconds: { workers?: number; postgres?: number; fake?: number; bench?: number };
  /** Workers and PostgreSQL (or the bench process on PGlite), per message sent. */
  cpuMicrosPerMessage?: number;
  hostCpuPercent: number;
  problems: string[];
}

// ---------------------------------------------------------------------------------------------
// The provider fake, in its own process.


// ---------------------------------------------------------------------------------------------
// The workload: a tenant, its Twilio account, N contacts and one parked message for each.

async function seed(db: Db, fakeUrl: string): Promise<void> {
  const tenant = await benchTenant(db, 'Dispatch bench');
  // A Messaging Service or short code sends hundreds per second; the sender's limit is not what is measured.
  await addHttpAccounts(db, tenant, fakeUrl, ['sms']);
  await seedContacts(db, tenant, MESSAGES);
  await db.query(
    `with x as (select gen_random_uuid() as id, c.id as contact_id, c.phone from contacts c where c.tenant_id = $1),
          m as (
            insert into messages (id, tenant_id, contact_id, kind, channel, topic, status, idempotency_key, due_at, content, to_address, created_at, updated_at)
            select x.id, $1, x.contact_id, 'send', 'sms', 'updates', 'queued', 'bench:' || x.id, $2,
                   jsonb_build_object('inline', jsonb_build_object('body', 'Your parcel is on its way (ref ' || x.id || ')')), x.phone, now(), now()
              from x
            returning id)
     insert into message_status (message_id, status, at) select id, 'queued', now() from m`,
    [tenant, PARKED],
  );
  await db.query('vacuum analyze');
}

interface Released {
  /** Due time (epoch ms) of each released message, by outbox id. */
  dues: Map<string, number>;
  first: number;
}

/**
 * Makes messages due, from LEAD_MS from now, and wakes the workers: all of them at that instant
 * (backlog), or the first STEADY.rate × seconds one after another at STEADY.rate per second.
 */
async function release(db: Db, phase: Phase, notes: string[]): Promise<Released> {
  const first = new Date(Date.now() + LEAD_MS);
  const { rows } = await db.transaction(async (tx) => {
    const r =
      phase === 'backlog'
        ? await tx.query<{ id: string; due_at: Date }>('update messages set due_at = $1 returning id, due_at', [first])
        : await tx.query<{ id: string; due_at: Date }>(
            `with x as (select id, row_number() over (order by id) - 1 as n from messages order by id limit $3)
             update messages m set due_at = $1::timestamptz + x.n * $2 * interval '1 millisecond' from x where m.id = x.id returning m.id, m.due_at`,
            [first, 1000 / STEADY.rate, steadyCount()],
          );
    await notifyWork(tx);
    return r;
  });
  if (Date.now() > first.getTime()) notes.push(`${phase}: releasing the messages took longer than the ${LEAD_MS} ms lead, so latencies are understated`);
  return { dues: new Map(rows.map((r) => [r.id, new Date(r.due_at).getTime()])), first: first.getTime() };
}

/** Waits until no released message is left in the outbox; false on timeout. */
async function untilSent(db: Db, timeoutMs: number): Promise<boolean> {
  return waitFor(async () => {
    const { rows } = await db.query<{ busy: boolean }>('select exists (select 1 from messages where due_at < $1) as busy', [PARKED]);
    return !rows[0]!.busy;
  }, timeoutMs);
}

interface Outbox {
  sent: number;
  notSent: number;
  repeated: number;
  /** Epoch ms of the last sent_at. */
  last: number;
  dueToSentMs: Percentiles;
  providers: string[];
}

async function outbox(db: Db, released: Released): Promise<Outbox> {
  const { rows } = await db.query<{ id: string; status: string; attempts: number; provider: string | null; sent_at: Date | null }>(
    'select id, status, attempts, provider, sent_at from messages where due_at is null or due_at < $1',
    [PARKED],
  );
  const sent = rows.filter((r) => r.status === 'sent' && r.sent_at);
  return {
    sent: sent.length,
    notSent: rows.length - sent.length,
    repeated: rows.filter((r) => r.attempts !== 1).length,
    last: Math.max(...sent.map((r) => new Date(r.sent_at!).getTime())),
    dueToSentMs: percentiles(sent.map((r) => new Date(r.sent_at!).getTime() - released.dues.get(r.id)!)),
    providers: [...new Set(rows.flatMap((r) => (r.provider ? [r.provider] : [])))],
  };
}

function problemsOf(o: Outbox, released: Released, provider: Provider, fake: FakeReport, done: boolean): string[] {
  const n = released.dues.size;
  const p: string[] = [];
  if (!done) p.push(`messages still due ${runTimeout() / 1000} s after the start`);
  if (o.sent !== n) p.push(`${o.sent} of ${n} messages sent (${o.notSent} in another status)`);
  if (o.repeated) p.push(`${o.repeated} messages took other than one attempt`);
  const want = provider === 'http' ? 'twilio' : 'sandbox';
  if (o.providers.some((x) => x !== want)) p.push(`sent by ${o.providers.join(', ')}, expected only ${want}`);
  if (provider === 'http') {
    if (fake.received.length !== n) p.push(`the fake accepted ${fake.received.length} of ${n} messages`);
    if (fake.duplicates) p.push(`the fake received ${fake.duplicates} messages twice`);
    if (fake.unmatched) p.push(`${fake.unmatched} requests without a ref`);
    if (fake.received.some(([id]) => !released.dues.has(id))) p.push('the fake received messages that were not released');
    if (Object.keys(fake.refused).length) p.push(`the fake refused requests: ${JSON.stringify(fake.refused)}`);
  } else if (fake.requests) p.push(`${fake.requests} requests reached the fake in a sandbox run`);
  return p;
}

/** CPU seconds over a run: of the worker processes and the PostgreSQL backends serving them, or of this process. */
interface CpuProbe {
  start(): Promise<void>;
  stop(): Promise<Omit<RunResult['cpuSeconds'], 'fake'>>;
}

/** One run: reset the fake, release the messages, wait until they are sent, read what happened. */
async function measure(db: Db, fake: ProviderFake, probe: CpuProbe, base: Pick<RunResult, 'phase' | 'backend' | 'provider' | 'processes' | 'repeat'>, notes: string[]): Promise<RunResult> {
  await fake.reset();
  await probe.start();
  const host0 = hostCpu();
  const released = await release(db, base.phase, notes);
  const done = await untilSent(db, runTimeout());
  const used = await probe.stop();
  const host = hostPercent(host0, hostCpu());
  const report = await fake.report();
  const o = await outbox(db, released);
  const cpu: RunResult['cpuSeconds'] = {};
  for (const [k, v] of Object.entries(used) as [keyof typeof used, number | undefined][]) if (v !== undefined && Number.isFinite(v)) cpu[k] = round(v, 2);
  if (base.provider === 'http') cpu.fake = round(report.cpuSeconds, 2);
  const own = (cpu.workers ?? cpu.bench ?? NaN) + (cpu.postgres ?? 0);
  const seconds = Math.max(0.001, (o.last - released.first) / 1000);
  const r: RunResult = {
    ...base,
    messages: released.dues.size,
    sent: o.sent,
    seconds: round(seconds, 2),
    messagesPerSecond: Math.round(o.sent / seconds),
    ...(base.provider === 'http' ? { dueToProviderMs: percentiles(report.received.flatMap(([id, at]) => (released.dues.has(id) ? [at - released.dues.get(id)!] : []))) } : {}),
    dueToSentMs: o.dueToSentMs,
    cpuSeconds: cpu,
    ...(Number.isFinite(own) && o.sent ? { cpuMicrosPerMessage: Math.round((own * 1e6) / o.sent) } : {}),
    hostCpuPercent: host,
    problems: problemsOf(o, released, base.provider, report, done),
  };
  const lat = r.dueToProviderMs ? `due → provider p50 ${r.dueToProviderMs.p50} ms, p99 ${r.dueToProviderMs.p99} ms` : `due → sent p50 ${r.dueToSentMs.p50} ms, p99 ${r.dueToSentMs.p99} ms`;
  console.error(`    ${r.phase} ${r.provider}: ${r.messagesPerSecond.toLocaleString('en-US')} msg/s, ${lat}${r.problems.length ? `; PROBLEMS: ${r.problems.join('; ')}` : ''}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: `rapport worker` processes on a copy of a seeded template.

/** The runs of one repeat, interleaved so that a noisy moment does not fall on one configuration only. */
function plan(processes: number[]): { phase: Phase; processes: number; provider: Provider }[] {
  const out: { phase: Phase; processes: number; provider: Provider }[] = [];
  for (const p of processes) for (const provider of ['sandbox', 'http'] as const) out.push({ phase: 'backlog', processes: p, provider });
  for (const provider of ['sandbox', 'http'] as const) out.push({ phase: 'steady', processes: 1, provider });
  return out;
}

async function onPostgres(dbs: BenchDatabases, fake: ProviderFake, notes: string[]): Promise<RunResult[]> {
  console.error(`postgres: seeding ${MESSAGES.toLocaleString('en-US')} contacts and messages into a template database…`);
  const template = await dbs.create('template');
  {
    const db = openPostgres({ connectionString: dbs.url(template, BENCH_APP), max: 2 });
    try {
      await migrate(db);
      await seed(db, fake.url);
    } finally {
      await db.close();
    }
  }
  const results: RunResult[] = [];
  for (let repeat = 1; repeat <= REPEATS; repeat++) {
    console.error(`postgres, run ${repeat} of ${REPEATS}:`);
    for (const { phase, processes, provider } of plan(PROCESSES)) {
      const name = await dbs.create(`r${repeat}_${phase}_${processes}_${provider}`, template);
      const db = openPostgres({ connectionString: dbs.url(name, BENCH_APP), max: 2 });
      try {
        if (provider === 'sandbox') await db.query('update provider_accounts set enabled = false');
        const procs = await startWorkers(processes, dbs.url(name), { env: { RAPPORT_SECRET_KEY: HTTP_SECRET_KEY } });
        try {
          let before: { workers: number; backends: Map<number, number> | undefined; bench: NodeJS.CpuUsage } | undefined;
          const probe: CpuProbe = {
            start: async () => {
              before = { workers: workersCpu(procs), backends: await backendCpu(dbs.admin, name), bench: process.cpuUsage() };
            },
            stop: async () => ({ workers: workersCpu(procs) - before!.workers, postgres: backendDelta(before!.backends, await backendCpu(dbs.admin, name)), bench: ownCpu(before!.bench) }),
          };
          results.push(await measure(db, fake, probe, { phase, backend: 'postgres', provider, processes, repeat }, notes));
        } finally {
          await stopWorkers(procs);
        }
      } finally {
        await db.close();
        await dbs.drop(name);
      }
    }
  }
  await dbs.drop(template);
  return results;
}

// ---------------------------------------------------------------------------------------------
// PGlite: one worker in this process, on an in-memory database seeded for each run.

async function onPglite(fake: ProviderFake, notes: string[]): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (let repeat = 1; repeat <= REPEATS; repeat++) {
    console.error(`pglite, run ${repeat} of ${REPEATS}, one in-process worker:`);
    for (const { phase, provider } of plan([1])) {
      const db = await openPglite();
      try {
        await migrate(db);
        await seed(db, fake.url);
        if (provider === 'sandbox') await db.query('update provider_accounts set enabled = false');
        // What `rapport start` sends through: the tenant's accounts, the sandbox for channels without one.
        const { router } = deliveryFor(db, { secrets: new SecretBox(HTTP_SECRET_KEY) });
        const worker = new Worker({ db, clock: systemClock, providers: router });
        await worker.start();
        try {
          let since = process.cpuUsage();
          const probe: CpuProbe = {
            start: async () => {
              since = process.cpuUsage();
            },
            stop: async () => ({ bench: ownCpu(since) }),
          };
          results.push(await measure(db, fake, probe, { phase, backend: 'pglite', provider, processes: 1, repeat }, notes));
        } finally {
          await worker.stop();
        }
      } finally {
        await db.close();
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------

interface Config {
  phase: Phase;
  backend: 'postgres' | 'pglite';
  processes: number;
  provider: Provider;
  /** The repeat that stands for all: median msg/s for the backlog, median latency p50 for the steady phase. */
  median: RunResult;
  /** msg/s (backlog) or latency p50 in ms (steady) of every repeat, in run order. */
  samples: number[];
}

const latencyP50 = (r: RunResult) => (r.dueToProviderMs ?? r.dueToSentMs).p50;

function configs(results: RunResult[]): Config[] {
  const out: Config[] = [];
  const same = (a: Omit<Config, 'median' | 'samples'>, b: RunResult) => a.phase === b.phase && a.backend === b.backend && a.processes === b.processes && a.provider === b.provider;
  for (const r of results) {
    if (out.some((c) => same(c, r))) continue;
    const runs = results.filter((x) => same(r, x));
    const key = r.phase === 'backlog' ? (x: RunResult) => x.messagesPerSecond : latencyP50;
    out.push({ phase: r.phase, backend: r.backend, processes: r.processes, provider: r.provider, median: medianRun(runs, key)!, samples: runs.map(key) });
  }
  return out;
}

const label = (c: Config) => [c.backend === 'postgres' ? 'PostgreSQL' : 'PGlite', c.provider === 'http' ? 'HTTP (Twilio fake)' : 'sandbox'];
const pair = (p: Percentiles | undefined) => (p ? `${Math.round(p.p50)} / ${Math.round(p.p99)}` : '–');
const range = (xs: number[]) => `${Math.min(...xs).toLocaleString('en-US')}–${Math.max(...xs).toLocaleString('en-US')}`;

function baselineOf(cs: Config[], c: Config): Config | undefined {
  return cs.find((b) => b.phase === c.phase && b.backend === c.backend && b.processes === c.processes && b.provider === 'sandbox');
}

function tables(cs: Config[]): string {
  const backlog = cs.filter((c) => c.phase === 'backlog');
  const steady = cs.filter((c) => c.phase === 'steady');
  const out = [
    markdownTable(
      ['backend', 'provider', 'processes', 'msg/s (median)', 'msg/s range', '× sandbox', 'due → provider p50 / p99 ms', 'due → sent p50 / p99 ms', 'CPU s workers / postgres', 'CPU µs per msg', 'fake CPU s', 'host busy'],
      backlog.map((c) => {
        const m = c.median;
        const base = baselineOf(cs, c);
        return [
          ...label(c),
          m.processes,
          m.messagesPerSecond,
          range(c.samples),
          c.provider === 'http' && base ? String(round(m.messagesPerSecond / base.median.messagesPerSecond, 2)) : '1',
          pair(m.dueToProviderMs),
          pair(m.dueToSentMs),
          m.cpuSeconds.workers !== undefined ? `${m.cpuSeconds.workers} / ${m.cpuSeconds.postgres ?? '–'}` : `${m.cpuSeconds.bench} (one process)`,
          m.cpuMicrosPerMessage ?? '–',
          m.cpuSeconds.fake ?? '–',
          `${m.hostCpuPercent}%`,
        ];
      }),
    ),
  ];
  if (steady.length) {
    out.push(
      '',
      markdownTable(
        [`steady ${STEADY.rate} msg/s, 1 worker`, 'provider', 'due → provider p50 / p90 / p99 / max ms', 'due → sent p50 / p99 ms', 'p50 range over repeats', 'CPU µs per msg'],
        steady.map((c) => {
          const p = c.median.dueToProviderMs;
          return [...label(c), p ? `${p.p50} / ${p.p90} / ${p.p99} / ${p.max}` : '–', pair(c.median.dueToSentMs), range(c.samples), c.median.cpuMicrosPerMessage ?? '–'];
        }),
      ),
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const hostBusyBeforePercent = await hostBusyPercent(args.quick ? 500 : 2000);
  const notes: string[] = [];
  const versions: Record<string, string> = {};
  const results: RunResult[] = [];
  const fake = await ProviderFake.start(TWILIO);
  try {
    if (BACKENDS.includes('postgres')) {
      ensureBuilt();
      const dbs = await BenchDatabases.open();
      try {
        versions.postgres = dbs.version;
        results.push(...(await onPostgres(dbs, fake, notes)));
      } finally {
        await dbs.close();
      }
    }
    if (BACKENDS.includes('pglite')) {
      versions.pglite = `PGlite ${pgliteVersion()} (in memory)`;
      results.push(...(await onPglite(fake, notes)));
    }
  } finally {
    await fake.stop();
  }

  const cs = configs(results);
  const ratios = Object.fromEntries(
    cs.flatMap((c) => {
      const base = baselineOf(cs, c);
      return c.phase === 'backlog' && c.provider === 'http' && base ? [[`${c.backend} ×${c.processes}`, round(c.median.messagesPerSecond / base.median.messagesPerSecond, 2)]] : [];
    }),
  );
  const summary = {
    bench: 'dispatch',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    hostBusyBeforePercent,
    options: { messages: MESSAGES, processes: PROCESSES, repeats: REPEATS, leadMs: LEAD_MS, steady: { ...STEADY, messages: steadyCount() }, provider: 'twilio adapter → bench/provider-fake.ts (separate process)' },
    versions,
    medians: cs.map((c) => ({ ...c.median, problems: c.median.problems.length, samples: c.samples })),
    httpToSandbox: ratios,
    runs: results.map((r) => ({ ...r, problems: r.problems.length })),
    problems: results.flatMap((r) => r.problems.map((p) => `${r.backend} ${r.phase} ${r.provider} ×${r.processes} run ${r.repeat}: ${p}`)),
    notes: [...new Set(notes)],
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  finish('dispatch', args.quick, summary, tables(cs));
}

await main();
