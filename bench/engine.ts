/**
 * Engine throughput, the sequence workload (issue 5, item 2), on PostgreSQL and on embedded
 * PGlite: N contacts (100,000; 2,000 with --quick) over twelve time zones, all with consent,
 * enrolled at once in SMS → wait 0 → email (Liquid bodies reading three attributes), sends
 * allowed at any hour. Timed from the commit of the enrolments to the last enrollment ended and
 * the last message recorded as sent.
 *
 *   On PostgreSQL with --processes worker processes (1, 2 and 4; 1 with --quick: `node
 *   bin/rapport.js worker`), and once with one scheduler-only process (bench/engine-worker.ts,
 *   not with --quick or --no-scheduler-only), which shows how the time splits between walking
 *   journeys and delivering. On PGlite one in-process worker, end to end
 *   and scheduler-only. End to end runs once per provider (--provider): `http`, the tenant's
 *   Twilio (SMS) and SendGrid (e-mail) accounts pointed at bench/provider-fake.ts, both APIs
 *   played on loopback by a process of its own, so that every message costs a real keep-alive
 *   HTTP round trip through the adapter (the run checks that the fake accepted each message
 *   once); and `sandbox`, the in-process sandbox provider, which shows what the HTTP call costs.
 *   Every run also reports the peak memory of the processes doing the work (VmHWM of each worker
 *   process, and its VmRSS sampled every 500 ms; for PGlite the bench's own RSS sampled the same
 *   way, which includes the in-memory database) and how much the database grew
 *   (pg_database_size after the run minus before the enrolments) per message.
 *
 *   npm run bench:engine -- [--quick] [--contacts 100000] [--processes 1,2,4]
 *                           [--backend all|postgres|pglite] [--provider both|http|sandbox]
 *                           [--no-scheduler-only] [--profile]
 *
 * Trigger latency, which this bench measured before, is bench/trigger.ts.
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * databases rapport_bench_<random>_* there and drops them, touching nothing else. Each run starts
 * from a copy of one seeded template database, so runs differ only in their workers. Workers
 * run the compiled CLI: dist/ is rebuilt first when a source file is newer.
 *
 * Every run reports CPU seconds of the workers, of the PostgreSQL backends serving them (read
 * from /proc when the server is on this machine), of the provider fake on http runs, and how
 * busy the whole machine was: on a shared machine compare CPU seconds per message, not only the
 * rate. --profile runs the workers under --cpu-prof, prints their hottest functions and leaves
 * the profiles in a temporary folder. Results go to bench/results/<date>-<host>-engine.json
 * (-quick.json with --quick).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deliveryFor } from '../src/channels/delivery.js';
import { SecretBox } from '../src/core/secrets.js';
import { systemClock } from '../src/engine/clock.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import type { Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { hottest } from './engine-profile.js';
import { addHttpAccounts, benchTenant, enrollAll, HTTP_SECRET_KEY, publish, seedContacts, SENDGRID, THREE_STEPS, THREE_STEPS_HISTORY, TWILIO } from './engine-workload.js';
import {
  backendCpu,
  backendDelta,
  BENCH_APP,
  BenchDatabases,
  commit,
  databaseBytes,
  ensureBuilt,
  finish,
  hostBusyPercent,
  hostCpu,
  hostPercent,
  machine,
  markdownTable,
  ownCpu,
  pgliteVersion,
  procStatusMiB,
  processCpu,
  ProviderFake,
  round,
  RssSampler,
  startWorkers,
  stopWorkers,
  waitFor,
} from './lib.js';
import type { FakeReport } from './provider-fake.js';

const SCHEDULER_ONLY = fileURLToPath(new URL('./engine-worker.ts', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contacts: { type: 'string' },
    processes: { type: 'string' },
    backend: { type: 'string', default: 'all' },
    provider: { type: 'string', default: 'both' },
    'no-scheduler-only': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
const CONTACTS = Number(args.contacts ?? (args.quick ? 2_000 : 100_000));
const PROCESSES = (args.processes ?? (args.quick ? '1' : '1,2,4')).split(',').map(Number);
const BACKENDS = args.backend === 'all' ? ['postgres', 'pglite'] : [args.backend];
// http first: it is the headline, and alternating with the sandbox at each process count lets a change in the machine's load fall on both.
const PROVIDERS = (args.provider === 'both' ? ['http', 'sandbox'] : [args.provider]) as Provider[];
const SCHEDULER_ONLY_RUN = !args['no-scheduler-only'] && !args.quick;
if (!Number.isInteger(CONTACTS) || CONTACTS < 1) throw new Error('--contacts must be a positive integer');
if (!PROCESSES.every((p) => Number.isInteger(p) && p >= 1 && p <= 32)) throw new Error('--processes is a comma-separated list of process counts, e.g. 1,2,4');
for (const b of BACKENDS) if (b !== 'postgres' && b !== 'pglite') throw new Error('--backend is one of all, postgres, pglite');
for (const p of PROVIDERS) if (p !== 'sandbox' && p !== 'http') throw new Error('--provider is one of both, http, sandbox');

/** Where messages go: the in-process sandbox, or the tenant's Twilio and SendGrid accounts pointed at bench/provider-fake.ts. */
type Provider = 'sandbox' | 'http';

/** What an http run must leave: each of the n contacts' SMS accepted once by "Twilio" and its e-mail once by "SendGrid", each under its own provider id. */
async function httpProblems(db: Db, fake: FakeReport, n: number): Promise<string[]> {
  const p: string[] = [];
  for (const provider of ['twilio', 'sendgrid'] as const) {
    const c = fake.byProvider[provider];
    if (c.accepted !== n) p.push(`the fake accepted ${c.accepted} ${provider} requests, expected ${n}`);
    if (c.duplicates) p.push(`the fake accepted ${c.duplicates} ${provider} messages twice`);
  }
  if (Object.keys(fake.refused).length) p.push(`the fake refused requests: ${JSON.stringify(fake.refused)}`);
  const { rows } = await db.query<{ provider: string | null; n: number; ids: number }>(
    `select provider, count(*)::int as n, count(distinct provider_message_id)::int as ids from messages where status = 'sent' group by provider order by provider`,
  );
  const by = new Map(rows.map((r) => [r.provider, r]));
  for (const provider of ['twilio', 'sendgrid']) {
    const r = by.get(provider);
    if (r?.n !== n || r.ids !== n) p.push(`${r?.n ?? 0} messages recorded as sent by ${provider} under ${r?.ids ?? 0} distinct provider ids, expected ${n}`);
  }
  const other = rows.filter((r) => r.provider !== 'twilio' && r.provider !== 'sendgrid');
  if (other.length) p.push(`messages sent by other providers: ${other.map((r) => `${r.provider}: ${r.n}`).join(', ')}`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Steps: throughput of enrollments through the journey.

interface StepsResult {
  phase: 'steps';
  backend: 'postgres' | 'pglite';
  mode: 'end-to-end' | 'scheduler-only';
  /** Where messages went: none (scheduler only), the in-process sandbox, or Twilio and SendGrid adapters over loopback HTTP. */
  provider: Provider | 'none';
  processes: number;
  enrollments: number;
  /** History rows written (enrollment_steps), 4 per enrollment. */
  steps: number;
  messages: number;
  seconds: number;
  stepsPerSecond: number;
  /** Messages sent (end to end) or queued in the outbox (scheduler only), per second. */
  messagesPerSecond: number;
  /** CPU over the run: the workers, the PostgreSQL backends serving them, and this process (PGlite runs in it). */
  cpuSeconds: { workers?: number; postgres?: number; bench: number; fake?: number };
  /** CPU microseconds per message of the workers and PostgreSQL (on PGlite the bench process), not the fake: comparable on a busy machine. */
  cpuMicrosPerMessage?: number;
  hostCpuPercent: number;
  perProcessSteps?: number[];
  /**
   * Peak memory in MiB of what did the work. PostgreSQL: per worker process, VmHWM at the end of
   * the run and the largest VmRSS sampled every 500 ms. PGlite: the bench process's largest RSS
   * sampled during the run, in-memory database included.
   */
  memoryMiB: { peakPerProcess?: number[]; sampledMaxPerProcess: number[] };
  /** pg_database_size() after the run minus before the enrolments, in all and per message. */
  databaseGrowth?: { bytes: number; bytesPerMessage: number };
  /** http runs: requests the fake accepted, by API. */
  fakeAccepted?: { twilio: number; sendgrid: number };
  problems: string[];
}

interface Counts {
  steps: number;
  completed: number;
  sent: number;
  queued: number;
  badHistories: number;
  end: Date | null;
}

/** What the database holds after a run, and whether every enrollment walked exactly the expected path. */
async function counts(db: Db, schedulerOnly: boolean): Promise<Counts> {
  const { rows } = await db.query<{ steps: number; completed: number; sent: number; queued: number; ended: Date | null; last_sent: Date | null }>(
    `select (select count(*) from enrollment_steps) as steps,
            (select count(*) from enrollments where status = 'completed') as completed,
            (select count(*) from messages where status = 'sent') as sent,
            (select count(*) from messages where status = 'queued') as queued,
            (select max(ended_at) from enrollments) as ended,
            (select max(sent_at) from messages) as last_sent`,
  );
  const { rows: bad } = await db.query<{ n: number }>(
    `select count(*) as n from (
       select enrollment_id from enrollment_steps group by enrollment_id
       having array_agg(node || ':' || outcome order by seq) <> $1::text[] or min(seq) <> 1 or max(seq) <> count(*)) b`,
    [THREE_STEPS_HISTORY],
  );
  const r = rows[0]!;
  const end = schedulerOnly ? r.ended : r.ended && r.last_sent ? new Date(Math.max(r.ended.getTime(), r.last_sent.getTime())) : null;
  return { steps: r.steps, completed: r.completed, sent: r.sent, queued: r.queued, badHistories: bad[0]!.n, end };
}

function problemsOf(c: Counts, n: number, schedulerOnly: boolean): string[] {
  const p: string[] = [];
  if (c.completed !== n) p.push(`${c.completed} of ${n} enrollments completed`);
  if (c.steps !== n * THREE_STEPS_HISTORY.length) p.push(`${c.steps} history rows, expected ${n * THREE_STEPS_HISTORY.length}`);
  if (c.badHistories) p.push(`${c.badHistories} enrollments with a history other than ${THREE_STEPS_HISTORY.join(' → ')}`);
  if (schedulerOnly ? c.queued !== 2 * n : c.sent !== 2 * n) p.push(`${schedulerOnly ? c.queued : c.sent} messages ${schedulerOnly ? 'queued' : 'sent'}, expected ${2 * n}`);
  return p;
}

/** Done when nothing is due: every enrollment ended and (end to end) every message left the outbox. */
async function done(db: Db, schedulerOnly: boolean): Promise<boolean> {
  const sql = schedulerOnly
    ? 'select exists (select 1 from enrollments where due_at is not null) as busy'
    : 'select exists (select 1 from enrollments where due_at is not null) or exists (select 1 from messages where due_at is not null) as busy';
  const { rows } = await db.query<{ busy: boolean }>(sql);
  return !rows[0]!.busy;
}

const runTimeout = () => Math.max(120_000, CONTACTS * 5);

async function stepsOnPostgres(dbs: BenchDatabases, fake: ProviderFake | undefined, profileDir: string | undefined, notes: string[]): Promise<StepsResult[]> {
  console.error(`postgres: seeding ${CONTACTS.toLocaleString('en-US')} contacts into a template database…`);
  const template = await dbs.create('template');
  let tenant: string;
  let journey: string;
  let contactIds: string[];
  {
    const db = openPostgres({ connectionString: dbs.url(template, BENCH_APP), max: 2 });
    try {
      await migrate(db);
      tenant = await benchTenant(db);
      contactIds = await seedContacts(db, tenant, CONTACTS);
      journey = await publish(db, tenant, THREE_STEPS);
      // Contacts are usually loaded well before a journey runs, so autovacuum has analysed them.
      await db.query('vacuum analyze');
    } finally {
      await db.close();
    }
  }

  const runs: { mode: StepsResult['mode']; provider: StepsResult['provider']; processes: number }[] = [
    ...(SCHEDULER_ONLY_RUN ? [{ mode: 'scheduler-only' as const, provider: 'none' as const, processes: 1 }] : []),
    ...PROCESSES.flatMap((processes) => PROVIDERS.map((provider) => ({ mode: 'end-to-end' as const, provider, processes }))),
  ];
  const results: StepsResult[] = [];
  for (const [i, run] of runs.entries()) {
    const schedulerOnly = run.mode === 'scheduler-only';
    const http = run.provider === 'http';
    const label = `${run.mode}${schedulerOnly ? '' : ` (${run.provider})`}, ${run.processes} process${run.processes > 1 ? 'es' : ''}`;
    const name = await dbs.create(`run${i}`, template);
    const db = openPostgres({ connectionString: dbs.url(name, BENCH_APP), max: 2 });
    const procDir = profileDir ? mkdtempSync(join(profileDir, `${run.mode}-${run.provider}-${run.processes}-`)) : undefined;
    try {
      if (http) await addHttpAccounts(db, tenant, fake!.url);
      const procs = await startWorkers(run.processes, dbs.url(name), { ...(schedulerOnly ? { script: SCHEDULER_ONLY } : {}), profileDir: procDir, env: http ? { RAPPORT_SECRET_KEY: HTTP_SECRET_KEY } : {} });
      let perProcess: number[] = [];
      let workersCpu: number | undefined;
      let pgCpu: number | undefined;
      let c: Counts;
      let t0: number;
      let host: number;
      let peak: (number | undefined)[] = [];
      let sampled: number[] = [];
      let sizeBefore: number;
      let sizeAfter: number;
      let report: FakeReport | undefined;
      const benchCpu0 = process.cpuUsage();
      try {
        if (http) await fake!.reset();
        sizeBefore = await databaseBytes(db);
        const rss = new RssSampler(procs.map((p) => p.child.pid!));
        const enrolStart = performance.now();
        const workerCpu0 = procs.map((p) => processCpu(p.child.pid!) ?? NaN);
        const pg0 = await backendCpu(dbs.admin, name);
        const host0 = hostCpu();
        await enrollAll(db, tenant, journey, contactIds, { oneTransaction: true });
        t0 = Date.now();
        console.error(`  ${label}: enrolled in ${Math.round(performance.now() - enrolStart)} ms, running…`);
        const finished = await waitFor(() => done(db, schedulerOnly), runTimeout());
        const workerCpu1 = procs.map((p) => processCpu(p.child.pid!) ?? NaN);
        const pg1 = await backendCpu(dbs.admin, name);
        host = hostPercent(host0, hostCpu());
        sampled = rss.stop();
        peak = procs.map((p) => procStatusMiB(p.child.pid!, 'VmHWM'));
        if (http) report = await fake!.report();
        const w = workerCpu1.reduce((s, x, k) => s + x - workerCpu0[k]!, 0);
        workersCpu = Number.isFinite(w) ? round(w, 2) : undefined;
        const pgUsed = backendDelta(pg0, pg1);
        pgCpu = pgUsed === undefined ? undefined : round(pgUsed, 2);
        c = await counts(db, schedulerOnly);
        sizeAfter = await databaseBytes(db);
        if (!finished) notes.push(`postgres ${label}: not done after ${runTimeout() / 1000} s`);
      } finally {
        perProcess = await stopWorkers(procs);
      }
      const seconds = c.end ? Math.max(0.001, (c.end.getTime() - t0) / 1000) : NaN;
      const messages = schedulerOnly ? c.queued : c.sent;
      const bench = round(ownCpu(benchCpu0), 2);
      const total = (workersCpu ?? NaN) + (pgCpu ?? NaN);
      const growth = sizeAfter - sizeBefore;
      results.push({
        phase: 'steps',
        backend: 'postgres',
        mode: run.mode,
        provider: run.provider,
        processes: run.processes,
        enrollments: CONTACTS,
        steps: c.steps,
        messages,
        seconds: round(seconds, 2),
        stepsPerSecond: Math.round(c.steps / seconds),
        messagesPerSecond: Math.round(messages / seconds),
        cpuSeconds: {
          ...(workersCpu !== undefined ? { workers: workersCpu } : {}),
          ...(pgCpu !== undefined ? { postgres: pgCpu } : {}),
          bench,
          ...(report ? { fake: round(report.cpuSeconds, 2) } : {}),
        },
        ...(Number.isFinite(total) ? { cpuMicrosPerMessage: Math.round((total * 1e6) / messages) } : {}),
        hostCpuPercent: host,
        perProcessSteps: perProcess,
        memoryMiB: { ...(peak.every((m) => m !== undefined) ? { peakPerProcess: peak.map((m) => round(m, 1)) } : {}), sampledMaxPerProcess: sampled },
        databaseGrowth: { bytes: growth, bytesPerMessage: Math.round(growth / Math.max(1, messages)) },
        ...(report ? { fakeAccepted: { twilio: report.byProvider.twilio.accepted, sendgrid: report.byProvider.sendgrid.accepted } } : {}),
        problems: [
          ...problemsOf(c, CONTACTS, schedulerOnly),
          ...(perProcess.length > 1 && perProcess.some((s) => !(s > 0)) ? [`a process did no work: ${perProcess.join(', ')}`] : []),
          ...(report ? await httpProblems(db, report, CONTACTS) : []),
        ],
      });
      if (procDir) notes.push(`postgres ${label}, hottest functions of the workers:\n${hottest(procDir, 12)}`);
    } finally {
      await db.close();
      await dbs.drop(name);
    }
  }
  await dbs.drop(template);
  return results;
}

async function stepsOnPglite(fake: ProviderFake | undefined): Promise<StepsResult[]> {
  const results: StepsResult[] = [];
  const runs: { mode: StepsResult['mode']; provider: StepsResult['provider'] }[] = [
    ...(SCHEDULER_ONLY_RUN ? [{ mode: 'scheduler-only' as const, provider: 'none' as const }] : []),
    ...PROVIDERS.map((provider) => ({ mode: 'end-to-end' as const, provider })),
  ];
  for (const { mode, provider } of runs) {
    const schedulerOnly = mode === 'scheduler-only';
    const http = provider === 'http';
    const label = `${mode}${schedulerOnly ? '' : ` (${provider})`}`;
    console.error(`pglite: seeding ${CONTACTS.toLocaleString('en-US')} contacts in memory…`);
    const db = await openPglite();
    try {
      await migrate(db);
      const tenant = await benchTenant(db);
      const ids = await seedContacts(db, tenant, CONTACTS);
      const journey = await publish(db, tenant, THREE_STEPS);
      if (http) await addHttpAccounts(db, tenant, fake!.url);
      await db.query('vacuum analyze');
      // The sandbox keeps nothing: its log of sent messages would grow the heap that is measured.
      const sandbox = new SandboxProvider({ keep: 0 });
      // No e-mail preparer on either provider, as before, so that the two differ only in where messages go.
      const providers = http ? deliveryFor(db, { secrets: new SecretBox(HTTP_SECRET_KEY), sandbox }).router : sandboxRegistry(sandbox);
      if (http) await fake!.reset();
      const sizeBefore = await databaseBytes(db);
      await enrollAll(db, tenant, journey, ids, { oneTransaction: true });
      console.error(`  ${label}, one in-process worker: running…`);
      const worker = new Worker({ db, clock: systemClock, providers, dispatch: !schedulerOnly });
      const rss = new RssSampler([0]);
      const cpu0 = process.cpuUsage();
      const host0 = hostCpu();
      const t0 = performance.now();
      await worker.drain();
      const seconds = (performance.now() - t0) / 1000;
      const bench = round(ownCpu(cpu0), 2);
      const host = hostPercent(host0, hostCpu());
      const sampled = rss.stop();
      const report = http ? await fake!.report() : undefined;
      const c = await counts(db, schedulerOnly);
      const growth = (await databaseBytes(db)) - sizeBefore;
      const messages = schedulerOnly ? c.queued : c.sent;
      results.push({
        phase: 'steps',
        backend: 'pglite',
        mode,
        provider,
        processes: 1,
        enrollments: CONTACTS,
        steps: c.steps,
        messages,
        seconds: round(seconds, 2),
        stepsPerSecond: Math.round(c.steps / seconds),
        messagesPerSecond: Math.round(messages / seconds),
        cpuSeconds: { bench, ...(report ? { fake: round(report.cpuSeconds, 2) } : {}) },
        cpuMicrosPerMessage: Math.round((bench * 1e6) / messages),
        hostCpuPercent: host,
        memoryMiB: { sampledMaxPerProcess: sampled },
        databaseGrowth: { bytes: growth, bytesPerMessage: Math.round(growth / Math.max(1, messages)) },
        ...(report ? { fakeAccepted: { twilio: report.byProvider.twilio.accepted, sendgrid: report.byProvider.sendgrid.accepted } } : {}),
        problems: [...problemsOf(c, CONTACTS, schedulerOnly), ...(report ? await httpProblems(db, report, CONTACTS) : [])],
      });
    } finally {
      await db.close();
    }
  }
  return results;
}

/** Peak MiB per process: VmHWM where /proc gave it, else the sampled maximum. */
const peakMiB = (r: StepsResult) => (r.memoryMiB.peakPerProcess ?? r.memoryMiB.sampledMaxPerProcess).map((m) => Math.round(m)).join(' / ');

interface HttpOverSandbox {
  backend: StepsResult['backend'];
  processes: number;
  /** http messages/s ÷ sandbox messages/s. */
  rate: number;
  /** http CPU µs per message ÷ sandbox's (the fake's CPU not counted). */
  cpuPerMessage?: number;
}

/** The http run beside the sandbox run of the same backend and process count. */
function httpOverSandbox(steps: StepsResult[]): HttpOverSandbox[] {
  const out: HttpOverSandbox[] = [];
  for (const h of steps.filter((r) => r.provider === 'http')) {
    const s = steps.find((r) => r.provider === 'sandbox' && r.backend === h.backend && r.processes === h.processes);
    if (!s) continue;
    out.push({
      backend: h.backend,
      processes: h.processes,
      rate: round(h.messagesPerSecond / s.messagesPerSecond, 2),
      ...(h.cpuMicrosPerMessage && s.cpuMicrosPerMessage ? { cpuPerMessage: round(h.cpuMicrosPerMessage / s.cpuMicrosPerMessage, 2) } : {}),
    });
  }
  return out;
}

function table(steps: StepsResult[]): string {
  const out = [
    markdownTable(
      ['backend', 'run', 'provider', 'processes', 'seconds', 'steps/s', 'messages/s', 'CPU s workers / postgres / fake', 'CPU µs per message', 'peak MiB per process', 'DB bytes per message', 'host busy'],
      steps.map((r) => [
        r.backend,
        r.mode,
        r.provider,
        r.processes,
        r.seconds,
        r.stepsPerSecond,
        r.messagesPerSecond,
        `${r.cpuSeconds.workers ?? r.cpuSeconds.bench} / ${r.cpuSeconds.postgres ?? '–'} / ${r.cpuSeconds.fake ?? '–'}`,
        r.cpuMicrosPerMessage ?? '–',
        peakMiB(r),
        r.databaseGrowth?.bytesPerMessage ?? '–',
        `${r.hostCpuPercent}%`,
      ]),
    ),
  ];
  const ratios = httpOverSandbox(steps);
  if (ratios.length) {
    out.push('', markdownTable(['http ÷ sandbox', 'processes', 'messages/s', 'CPU µs per message'], ratios.map((x) => [x.backend, x.processes, x.rate, x.cpuPerMessage ?? '–'])));
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const profileDir = args.profile ? mkdtempSync(join(tmpdir(), 'rapport-bench-engine-profile-')) : undefined;
  if (profileDir) console.error(`CPU profiles go to ${profileDir} (open them in Chrome DevTools or speedscope)`);
  const steps: StepsResult[] = [];
  const notes: string[] = [];
  const versions: Record<string, string> = {};
  // How busy other work keeps the machine before this bench adds any: figures taken on a busy host are not comparable.
  const hostBusyBeforePercent = await hostBusyPercent(args.quick ? 500 : 2000);

  const fake = PROVIDERS.includes('http') ? await ProviderFake.start(TWILIO, SENDGRID) : undefined;
  try {
    if (BACKENDS.includes('postgres')) {
      ensureBuilt();
      const dbs = await BenchDatabases.open();
      try {
        versions.postgres = dbs.version;
        steps.push(...(await stepsOnPostgres(dbs, fake, profileDir, notes)));
      } finally {
        await dbs.close();
      }
    }
    if (BACKENDS.includes('pglite')) {
      versions.pglite = `PGlite ${pgliteVersion()} (in memory)`;
      steps.push(...(await stepsOnPglite(fake)));
    }
  } finally {
    await fake?.stop();
  }

  const summary = {
    bench: 'engine',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    hostBusyBeforePercent,
    options: { contacts: CONTACTS, processes: PROCESSES, providers: PROVIDERS, schedulerOnly: SCHEDULER_ONLY_RUN, journey: THREE_STEPS_HISTORY.join(' → ') },
    versions,
    results: steps.map((r) => ({ ...r, problems: r.problems.length })),
    httpOverSandbox: httpOverSandbox(steps),
    problems: steps.flatMap((r) => r.problems.map((p) => `${r.backend} ${r.mode}${r.provider === 'none' ? '' : ` ${r.provider}`} ×${r.processes}: ${p}`)),
    notes,
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  finish('engine', args.quick, summary, table(steps));
}

await main();
