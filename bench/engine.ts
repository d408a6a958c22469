/**
 * Engine throughput and trigger latency, on PostgreSQL and on embedded PGlite:
 *
 *   steps    N contacts (100,000; 10,000 with --quick) over twelve time zones, all with consent,
 *            enrolled at once in SMS → wait 0 → email (Liquid bodies reading three attributes),
 *            sends allowed at any hour. Timed from the commit of the enrolments to the last
 *            enrollment ended and the last message recorded as sent. On PostgreSQL with 1, 2 and
 *            4 worker processes (`node bin/rapport.js worker`), and once with one scheduler-only
 *            process (bench/engine-worker.ts), which shows how the time splits between walking
 *            journeys and delivering. On PGlite one in-process worker, end to end and
 *            scheduler-only. End to end runs once per provider (--provider): `sandbox`, the
 *            in-process sandbox provider, and `http`, the tenant's Twilio (SMS) and SendGrid
 *            (e-mail) accounts pointed at bench/provider-fake.ts, both APIs played on loopback by
 *            a process of its own, so that every message costs a real keep-alive HTTP round trip
 *            through the adapter. The http runs check that the fake accepted each message once.
 *            Every run also reports the peak memory of the processes doing the work (VmHWM of
 *            each worker process, and its VmRSS sampled every 500 ms; for PGlite the bench's own
 *            RSS sampled the same way, which includes the in-memory database) and how much the
 *            database grew (pg_database_size after the run minus before the enrolments) per
 *            message.
 *   latency  the API server with its in-process worker (bench/ingest-server.ts, RAPPORT_WORKERS=1)
 *            on PostgreSQL; events posted one per request to POST /v1/events at a steady rate
 *            for 20 s (10 s with --quick), each enrolling a new contact into a journey whose
 *            first node sends: 100/s, which one small machine serves with room to spare, then
 *            500/s. Latency is messages.created_at − events.received_at (outbox row written) and
 *            messages.sent_at − events.received_at, both stamped by the server's clock; the HTTP
 *            figure runs from the moment the client was due to send, so a server that falls
 *            behind cannot hide it by slowing the client down.
 *
 *   npm run bench:engine -- [--quick] [--contacts 100000] [--processes 1,2,4]
 *                           [--backend all|postgres|pglite] [--phase all|steps|latency]
 *                           [--provider both|sandbox|http] [--rate 100,500] [--seconds 20] [--profile]
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * databases rapport_bench_<random>_* there and drops them, touching nothing else. Each run starts
 * from a copy of one seeded template database, so runs differ only in their workers. Workers
 * run the compiled CLI: dist/ is rebuilt first when a source file is newer.
 *
 * Every run reports CPU seconds of the workers, of the PostgreSQL backends serving them (read
 * from /proc when the server is on this machine), of the provider fake on http runs, and how
 * busy the whole machine was: on a shared machine compare CPU seconds per message, not only the
 * rate. --profile runs the workers under
 * --cpu-prof, prints their hottest functions and leaves the profiles in a temporary folder.
 * Results go to bench/results/<date>-<host>-engine.json (-quick.json with --quick).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { builtInAdapters } from '../src/channels/adapters/index.js';
import { deliveryFor } from '../src/channels/delivery.js';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { systemClock } from '../src/engine/clock.js';
import { SecretBox } from '../src/core/secrets.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import type { Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { createAccount } from '../src/store/provider-accounts.js';
import { hottest } from './engine-profile.js';
import { benchTenant, enrollAll, publish, seedContacts, THREE_STEPS, THREE_STEPS_HISTORY } from './engine-workload.js';
import type { ClientMessage, ServerMessage } from './ingest-server.js';
import { ProviderFake } from './lib.js';
import type { FakeReport } from './provider-fake.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const BIN = join(ROOT, 'bin/rapport.js');
const SCHEDULER_ONLY = fileURLToPath(new URL('./engine-worker.ts', import.meta.url));
const SERVER = fileURLToPath(new URL('./ingest-server.ts', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contacts: { type: 'string' },
    processes: { type: 'string', default: '1,2,4' },
    backend: { type: 'string', default: 'all' },
    phase: { type: 'string', default: 'all' },
    rate: { type: 'string', default: '100,500' },
    seconds: { type: 'string' },
    profile: { type: 'boolean', default: false },
    provider: { type: 'string', default: 'both' },
  },
});
const CONTACTS = Number(args.contacts ?? (args.quick ? 10_000 : 100_000));
const PROCESSES = args.processes.split(',').map(Number);
const RATES = args.rate.split(',').map(Number);
const SECONDS = Number(args.seconds ?? (args.quick ? 10 : 20));
const BACKENDS = args.backend === 'all' ? ['postgres', 'pglite'] : [args.backend];
const PHASES = args.phase === 'all' ? ['steps', 'latency'] : [args.phase];
const PROVIDERS = (args.provider === 'both' ? ['sandbox', 'http'] : [args.provider]) as Provider[];
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
for (const [name, v] of Object.entries({ contacts: CONTACTS, seconds: SECONDS, ...Object.fromEntries(RATES.map((r, i) => [`rate ${i + 1}`, r])) })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}
if (!PROCESSES.every((p) => Number.isInteger(p) && p >= 1 && p <= 32)) throw new Error('--processes is a comma-separated list of process counts, e.g. 1,2,4');
for (const b of BACKENDS) if (b !== 'postgres' && b !== 'pglite') throw new Error('--backend is one of all, postgres, pglite');
for (const p of PHASES) if (p !== 'steps' && p !== 'latency') throw new Error('--phase is one of all, steps, latency');
for (const p of PROVIDERS) if (p !== 'sandbox' && p !== 'http') throw new Error('--provider is one of both, sandbox, http');

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

// ---------------------------------------------------------------------------------------------
// Measuring: CPU of processes from /proc, of the machine from os.cpus().

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds a process has used so far, or undefined when /proc cannot tell (another machine, or it is gone). */
function processCpu(pid: number, expect?: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  if (expect && !stat.includes(`(${expect})`)) return undefined;
  // Fields after "pid (comm) ": state is the first, utime the 12th, stime the 13th (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The bench's own connections carry this name, so their backends are not charged to the workers. */
const BENCH_APP = 'rapport-bench';

/** CPU seconds used so far by the PostgreSQL backends of `database` other than the bench's own, by pid. */
async function backendCpu(admin: pg.Client, database: string): Promise<Map<number, number> | undefined> {
  const { rows } = await admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and application_name <> $2', [database, BENCH_APP]);
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    const s = processCpu(pid, 'postgres');
    if (s === undefined) return undefined;
    out.set(pid, s);
  }
  return out;
}

/** Backends come and go with pools: what each used between two readings, counting new ones from zero. */
function backendDelta(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number | undefined {
  if (!before || !after) return undefined;
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return round(s, 2);
}

function hostCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    busy += times.user + times.nice + times.sys + times.irq;
    total += times.user + times.nice + times.sys + times.irq + times.idle;
  }
  return { busy, total };
}
const hostPercent = (a: { busy: number; total: number }, b: { busy: number; total: number }) => Math.round((100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total));

const ownCpu = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return round((u.user + u.system) / 1e6, 2);
};

// ---------------------------------------------------------------------------------------------
// Measuring: memory of processes from /proc, of this one from process.memoryUsage().

const MiB = 1024 * 1024;

/** A "VmHWM:   123456 kB" line of /proc/<pid>/status in MiB, or undefined when /proc cannot tell. */
function procStatusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The largest RSS seen for each of some processes (or this one, pid 0), read every 500 ms: VmHWM
 * alone cannot tell a peak during the run from one while the bench was seeding in the same
 * process.
 */
class RssSampler {
  private readonly max: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: number[]) {
    this.max = pids.map(() => 0);
    this.sample();
    this.timer = setInterval(() => this.sample(), 500);
  }

  private sample(): void {
    this.pids.forEach((pid, i) => {
      const mib = pid === 0 ? process.memoryUsage().rss / MiB : procStatusMiB(pid, 'VmRSS');
      if (mib !== undefined) this.max[i] = Math.max(this.max[i]!, mib);
    });
  }

  /** Takes a last sample and stops; the maxima in MiB, one per pid. */
  stop(): number[] {
    this.sample();
    clearInterval(this.timer);
    return this.max.map((m) => round(m, 1));
  }
}

async function databaseBytes(db: Db): Promise<number> {
  const { rows } = await db.query<{ bytes: string | number }>('select pg_database_size(current_database()) as bytes');
  return Number(rows[0]!.bytes);
}

// ---------------------------------------------------------------------------------------------
// The http provider: the tenant's Twilio and SendGrid accounts, pointed at bench/provider-fake.ts.

type Provider = 'sandbox' | 'http';

/** The workers open the accounts' sealed credentials with it (RAPPORT_SECRET_KEY). */
const SECRET_KEY = 'rapport-bench-engine-secret-key-0123456789ab';
const TWILIO = { account_sid: `AC${'e'.repeat(32)}`, auth_token: 'b'.repeat(32) };
const SENDGRID = { api_key: `SG.rapport-bench-engine.${'k'.repeat(43)}` };

/**
 * Gives the tenant one account per channel of the journey, first in priority, with a sender
 * rate no run reaches: the providers' throughput limits are not what is measured.
 */
async function addHttpAccounts(db: Db, tenantId: string, fakeUrl: string): Promise<void> {
  const deps = { secrets: new SecretBox(SECRET_KEY), adapters: builtInAdapters(new SandboxProvider()) };
  const now = new Date();
  await createAccount(
    db,
    deps,
    tenantId,
    { name: 'Bench Twilio', kind: 'twilio', channel: 'sms', priority: 1, credentials: TWILIO, config: { from: '+14155550100', base_url: fakeUrl, rate_per_second: 1_000_000 } },
    'bench',
    now,
  );
  await createAccount(
    db,
    deps,
    tenantId,
    { name: 'Bench SendGrid', kind: 'sendgrid', channel: 'email', priority: 1, credentials: SENDGRID, config: { from: 'Rapport Bench <bench@example.com>', base_url: fakeUrl, rate_per_second: 1_000_000 } },
    'bench',
    now,
  );
}

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
// Databases on the server.

class Server {
  private constructor(
    readonly admin: pg.Client,
    readonly version: string,
    private readonly prefix: string,
  ) {}
  private readonly created: string[] = [];

  static async open(): Promise<Server> {
    const admin = new pg.Client({ connectionString: DATABASE_URL, application_name: BENCH_APP });
    await admin.connect();
    const version = (await admin.query<{ v: string }>('select version() as v')).rows[0]!.v.split(' on ')[0]!;
    return new Server(admin, version, `rapport_bench_${randomBytes(4).toString('hex')}`);
  }

  url(name: string, app?: string): string {
    const u = new URL(DATABASE_URL);
    u.pathname = `/${name}`;
    if (app) u.searchParams.set('application_name', app);
    return u.toString();
  }

  async create(suffix: string, template?: string): Promise<string> {
    const name = `${this.prefix}_${suffix}`;
    await this.admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
    this.created.push(name);
    return name;
  }

  async drop(name: string): Promise<void> {
    await this.admin.query(`drop database if exists ${name} with (force)`);
  }

  async close(): Promise<void> {
    for (const name of this.created) await this.drop(name).catch(() => {});
    await this.admin.end();
  }
}

/** dist/ is what `rapport worker` runs; a stale build would measure old code. */
function ensureBuilt(): void {
  const built = join(ROOT, 'dist/.tsbuildinfo');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  if (existsSync(join(ROOT, 'dist/cli/main.js')) && existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) return;
  console.error('building dist/ for the worker processes…');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
}

// ---------------------------------------------------------------------------------------------
// Worker processes.

interface Proc {
  child: ChildProcess;
  output: () => string;
}

async function startWorkers(n: number, url: string, schedulerOnly: boolean, profileDir?: string, env: Record<string, string> = {}): Promise<Proc[]> {
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const procs = Array.from({ length: n }, () => {
    const argv = schedulerOnly ? [...prof, '--import', 'tsx', SCHEDULER_ONLY] : [...prof, BIN, 'worker', '--concurrency', '1'];
    const child = spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, ...env, DATABASE_URL: url, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return { child, output: () => out };
  });
  const deadline = Date.now() + 60_000;
  while (!procs.every((p) => /running/.test(p.output()))) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a worker process exited (${dead.child.exitCode}) before it was running: ${dead.output()}`);
    if (Date.now() > deadline) throw new Error('worker processes did not start within 60 s');
    await sleep(25);
  }
  return procs;
}

/** Stops the processes with SIGTERM and returns the steps each reports. */
async function stopWorkers(procs: Proc[]): Promise<number[]> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
        }),
    ),
  );
  return procs.map((p) => Number(/stopped after (\d+) steps/.exec(p.output())?.[1] ?? NaN));
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
async function waitUntilDone(db: Db, schedulerOnly: boolean, timeoutMs: number): Promise<boolean> {
  const sql = schedulerOnly
    ? 'select exists (select 1 from enrollments where due_at is not null) as busy'
    : 'select exists (select 1 from enrollments where due_at is not null) or exists (select 1 from messages where due_at is not null) as busy';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await db.query<{ busy: boolean }>(sql);
    if (!rows[0]!.busy) return true;
    await sleep(100);
  }
  return false;
}

const runTimeout = () => Math.max(120_000, CONTACTS * 5);

async function stepsOnPostgres(server: Server, fake: ProviderFake | undefined, profileDir: string | undefined, notes: string[]): Promise<StepsResult[]> {
  console.error(`postgres: seeding ${CONTACTS.toLocaleString('en-US')} contacts into a template database…`);
  const template = await server.create('template');
  let tenant: string;
  let journey: string;
  let contactIds: string[];
  {
    const db = openPostgres({ connectionString: server.url(template, BENCH_APP), max: 2 });
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

  // Sandbox and http alternate at each process count, so a change in the machine's load falls on both.
  const runs: { mode: StepsResult['mode']; provider: StepsResult['provider']; processes: number }[] = [
    { mode: 'scheduler-only', provider: 'none', processes: 1 },
    ...PROCESSES.flatMap((processes) => PROVIDERS.map((provider) => ({ mode: 'end-to-end' as const, provider, processes }))),
  ];
  const results: StepsResult[] = [];
  for (const [i, run] of runs.entries()) {
    const schedulerOnly = run.mode === 'scheduler-only';
    const http = run.provider === 'http';
    const label = `${run.mode}${schedulerOnly ? '' : ` (${run.provider})`}, ${run.processes} process${run.processes > 1 ? 'es' : ''}`;
    const name = await server.create(`run${i}`, template);
    const db = openPostgres({ connectionString: server.url(name, BENCH_APP), max: 2 });
    const procDir = profileDir ? mkdtempSync(join(profileDir, `${run.mode}-${run.provider}-${run.processes}-`)) : undefined;
    try {
      if (http) await addHttpAccounts(db, tenant, fake!.url);
      const procs = await startWorkers(run.processes, server.url(name), schedulerOnly, procDir, http ? { RAPPORT_SECRET_KEY: SECRET_KEY } : {});
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
        const pg0 = await backendCpu(server.admin, name);
        const host0 = hostCpu();
        await enrollAll(db, tenant, journey, contactIds, { oneTransaction: true });
        t0 = Date.now();
        console.error(`  ${label}: enrolled in ${Math.round(performance.now() - enrolStart)} ms, running…`);
        const done = await waitUntilDone(db, schedulerOnly, runTimeout());
        const workerCpu1 = procs.map((p) => processCpu(p.child.pid!) ?? NaN);
        const pg1 = await backendCpu(server.admin, name);
        host = hostPercent(host0, hostCpu());
        sampled = rss.stop();
        peak = procs.map((p) => procStatusMiB(p.child.pid!, 'VmHWM'));
        if (http) report = await fake!.report();
        const w = workerCpu1.reduce((s, x, k) => s + x - workerCpu0[k]!, 0);
        workersCpu = Number.isFinite(w) ? round(w, 2) : undefined;
        pgCpu = backendDelta(pg0, pg1);
        c = await counts(db, schedulerOnly);
        sizeAfter = await databaseBytes(db);
        if (!done) notes.push(`postgres ${label}: not done after ${runTimeout() / 1000} s`);
      } finally {
        perProcess = await stopWorkers(procs);
      }
      const seconds = c.end ? Math.max(0.001, (c.end.getTime() - t0) / 1000) : NaN;
      const messages = schedulerOnly ? c.queued : c.sent;
      const bench = ownCpu(benchCpu0);
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
      await server.drop(name);
    }
  }
  await server.drop(template);
  return results;
}

async function stepsOnPglite(fake: ProviderFake | undefined): Promise<StepsResult[]> {
  const results: StepsResult[] = [];
  const runs: { mode: StepsResult['mode']; provider: StepsResult['provider'] }[] = [
    { mode: 'scheduler-only', provider: 'none' },
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
      const providers = http ? deliveryFor(db, { secrets: new SecretBox(SECRET_KEY), sandbox }).router : sandboxRegistry(sandbox);
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
      const bench = ownCpu(cpu0);
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

// ---------------------------------------------------------------------------------------------
// Latency: from an event accepted by the API to its journey's first message.

interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
const percentiles = (xs: number[]): Percentiles => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(quantile(s, 0.5), 1), p95: round(quantile(s, 0.95), 1), p99: round(quantile(s, 0.99), 1), max: round(s[s.length - 1] ?? NaN, 1) };
};

interface LatencyResult {
  phase: 'latency';
  backend: 'postgres';
  events: number;
  targetPerSecond: number;
  /** Events the client started per second (it never waits for answers before sending the next: an open loop). */
  postedPerSecond: number;
  /** Event received → outbox message written (messages.created_at − events.received_at). */
  queuedMs: Percentiles;
  /** Event received → provider answered (messages.sent_at − events.received_at). */
  sentMs: Percentiles;
  /** From when the client was due to post to the answer of POST /v1/events. */
  httpMs: Percentiles;
  cpuSeconds: { server?: number; postgres?: number; bench: number };
  hostCpuPercent: number;
  problems: string[];
}

const LATENCY_JOURNEY: JourneyDefinition = {
  name: 'Welcome',
  entry: { event: 'signed_up' },
  nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { body: 'Welcome {{ contact.first_name }}, your {{ contact.plan }} plan is ready' } }],
};

function nextMessage(child: ChildProcess): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the bench server exited (${code}) before answering`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as ServerMessage);
    });
  });
}

/** POSTs JSON over keep-alive connections with node:http, which costs the client a fraction of what fetch does: the client shares the machine with the server. */
function poster(baseUrl: string, apiKey: string): { post(path: string, body: string): Promise<{ status: number; text: string }>; close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const url = new URL(baseUrl);
  return {
    post: (path, body) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

async function latencyOnPostgres(server: Server, profileDir: string | undefined, notes: string[]): Promise<LatencyResult[]> {
  const name = await server.create('latency');
  const serverDir = profileDir ? mkdtempSync(join(profileDir, 'latency-server-')) : undefined;
  const child = fork(SERVER, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', ...(serverDir ? ['--cpu-prof', `--cpu-prof-dir=${serverDir}`] : [])],
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: server.url(name), RAPPORT_WORKERS: '1', RAPPORT_ADMIN_TOKEN: '', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const db = openPostgres({ connectionString: server.url(name, BENCH_APP), max: 2 });
  let client: ReturnType<typeof poster> | undefined;
  try {
    const first = await nextMessage(child);
    if (!('url' in first)) throw new Error('the bench server did not report its URL');
    const serverCpu = async () => {
      const answer = nextMessage(child);
      child.send('cpu' satisfies ClientMessage);
      const m = await answer;
      return 'cpuSeconds' in m ? m.cpuSeconds : NaN;
    };
    const { rows } = await db.query<{ id: string }>('select id from tenants');
    const tenant = rows[0]!.id;
    await db.query(`update tenants set send_window = '{"days":[1,2,3,4,5,6,7],"start":"00:00","end":"00:00"}', quiet_hours = '{}' where id = $1`, [tenant]);
    const totals = RATES.map((r) => r * SECONDS);
    const ids = await seedContacts(db, tenant, totals.reduce((a, b) => a + b, 0) + 100);
    await publish(db, tenant, LATENCY_JOURNEY);
    await db.query('vacuum analyze');
    client = poster(first.url, first.apiKey);
    const post = (contactId: string) => client!.post('/v1/events', JSON.stringify({ name: 'signed_up', contact_id: contactId, properties: { source: 'bench' } }));

    // A hundred events first warm the JIT, the pools and the server's caches.
    for (const id of ids.splice(0, 100)) await post(id);
    if (!(await waitUntilDone(db, false, 30_000))) notes.push('latency: the warm-up events were not all sent within 30 s');

    const results: LatencyResult[] = [];
    for (const [k, rate] of RATES.entries()) {
      const batch = ids.splice(0, totals[k]!);
      console.error(`latency: posting ${batch.length.toLocaleString('en-US')} events at ${rate}/s…`);
      const since = new Date();
      const cpu0 = { server: await serverCpu(), pg: await backendCpu(server.admin, name), bench: process.cpuUsage(), host: hostCpu() };
      const answers: Promise<{ ms: number; problem: string | null }>[] = [];
      const start = performance.now();
      for (let i = 0; i < batch.length; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        answers.push(
          post(batch[i]!).then(
            (r) => ({ ms: performance.now() - due, problem: r.status === 202 ? null : `HTTP ${r.status}: ${r.text.slice(0, 200)}` }),
            (err: Error) => ({ ms: performance.now() - due, problem: err.message }),
          ),
        );
      }
      const postedFor = (performance.now() - start) / 1000;
      const answered = await Promise.all(answers);
      const done = await waitUntilDone(db, false, 120_000);
      const cpu1 = { server: await serverCpu(), pg: await backendCpu(server.admin, name) };
      const host = hostPercent(cpu0.host, hostCpu());
      const { rows: lat } = await db.query<{ queued_ms: number; sent_ms: number | null }>(
        `select extract(epoch from (m.created_at - e.received_at)) * 1000 as queued_ms, extract(epoch from (m.sent_at - e.received_at)) * 1000 as sent_ms
           from messages m join enrollments n on n.id = m.enrollment_id join events e on e.id = (n.vars->'trigger'->>'event_id')::uuid
          where e.received_at >= $1`,
        [since],
      );
      const problems = answered.flatMap((a) => (a.problem ? [a.problem] : [])).slice(0, 10);
      if (!done) problems.push('messages still queued 120 s after the last event');
      if (lat.length !== batch.length) problems.push(`${lat.length} messages for ${batch.length} events`);
      const sent = lat.flatMap((l) => (l.sent_ms === null ? [] : [Number(l.sent_ms)]));
      if (sent.length !== batch.length) problems.push(`${sent.length} of ${batch.length} messages sent`);
      const pgUsed = backendDelta(cpu0.pg, cpu1.pg);
      results.push({
        phase: 'latency',
        backend: 'postgres',
        events: batch.length,
        targetPerSecond: rate,
        postedPerSecond: Math.round(batch.length / postedFor),
        queuedMs: percentiles(lat.map((l) => Number(l.queued_ms))),
        sentMs: percentiles(sent),
        httpMs: percentiles(answered.map((a) => a.ms)),
        cpuSeconds: {
          ...(Number.isFinite(cpu1.server - cpu0.server) ? { server: round(cpu1.server - cpu0.server, 2) } : {}),
          ...(pgUsed !== undefined ? { postgres: pgUsed } : {}),
          bench: ownCpu(cpu0.bench),
        },
        hostCpuPercent: host,
        problems,
      });
    }
    return results;
  } finally {
    client?.close();
    await db.close();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.connected) child.send('stop' satisfies ClientMessage);
    else child.kill('SIGTERM');
    await exited;
    await server.drop(name);
    if (serverDir) notes.push(`latency, hottest functions of the server:\n${hottest(serverDir, 12)}`);
  }
}

// ---------------------------------------------------------------------------------------------

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

function table(steps: StepsResult[], latency: LatencyResult[]): string {
  const lines = [
    '| backend | run | provider | processes | seconds | steps/s | messages/s | CPU s workers / postgres / fake | CPU µs per message | peak MiB per process | DB bytes per message | host busy |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...steps.map(
      (r) =>
        `| ${r.backend} | ${r.mode} | ${r.provider} | ${r.processes} | ${r.seconds} | ${r.stepsPerSecond.toLocaleString('en-US')} | ${r.messagesPerSecond.toLocaleString('en-US')} | ${r.cpuSeconds.workers ?? r.cpuSeconds.bench} / ${r.cpuSeconds.postgres ?? '–'} / ${r.cpuSeconds.fake ?? '–'} | ${r.cpuMicrosPerMessage ?? '–'} | ${peakMiB(r)} | ${r.databaseGrowth?.bytesPerMessage.toLocaleString('en-US') ?? '–'} | ${r.hostCpuPercent}% |`,
    ),
  ];
  const ratios = httpOverSandbox(steps);
  if (ratios.length) {
    lines.push('', '| http ÷ sandbox | processes | messages/s | CPU µs per message |', '|---|---|---|---|');
    for (const x of ratios) lines.push(`| ${x.backend} | ${x.processes} | ${x.rate} | ${x.cpuPerMessage ?? '–'} |`);
  }
  if (latency.length) {
    lines.push('', '| trigger latency | events/s | p50 ms | p95 ms | p99 ms | max ms |', '|---|---|---|---|---|---|');
    for (const l of latency) {
      lines.push(`| event → message queued | ${l.postedPerSecond} | ${l.queuedMs.p50} | ${l.queuedMs.p95} | ${l.queuedMs.p99} | ${l.queuedMs.max} |`);
      lines.push(`| event → message sent | ${l.postedPerSecond} | ${l.sentMs.p50} | ${l.sentMs.p95} | ${l.sentMs.p99} | ${l.sentMs.max} |`);
      lines.push(`| POST /v1/events answered | ${l.postedPerSecond} | ${l.httpMs.p50} | ${l.httpMs.p95} | ${l.httpMs.p99} | ${l.httpMs.max} |`);
    }
  }
  return lines.join('\n');
}

function commit(): string | undefined {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const profileDir = args.profile ? mkdtempSync(join(tmpdir(), 'rapport-bench-engine-profile-')) : undefined;
  if (profileDir) console.error(`CPU profiles go to ${profileDir} (open them in Chrome DevTools or speedscope)`);
  const steps: StepsResult[] = [];
  const latency: LatencyResult[] = [];
  const notes: string[] = [];
  const versions: Record<string, string> = {};
  // How busy other work keeps the machine before this bench adds any: figures taken on a busy host are not comparable.
  const idle0 = hostCpu();
  await sleep(2000);
  const hostBusyBeforePercent = hostPercent(idle0, hostCpu());

  const fake = PHASES.includes('steps') && PROVIDERS.includes('http') ? await ProviderFake.start(TWILIO, SENDGRID) : undefined;
  try {
    await runBackends(fake, profileDir, steps, latency, notes, versions);
  } finally {
    await fake?.stop();
  }

  const summary = {
    bench: 'engine',
    date: new Date().toISOString(),
    host: hostname(),
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    node: process.version,
    commit: commit(),
    hostBusyBeforePercent,
    options: { contacts: CONTACTS, processes: PROCESSES, providers: PROVIDERS, rates: RATES, seconds: SECONDS, journey: THREE_STEPS_HISTORY.join(' → ') },
    versions,
    results: [...steps, ...latency].map((r) => ({ ...r, problems: r.problems.length })),
    httpOverSandbox: httpOverSandbox(steps),
    problems: [...steps, ...latency].flatMap((r) => r.problems.map((p) => `${r.backend} ${r.phase}${'mode' in r ? ` ${r.mode}${r.provider === 'none' ? '' : ` ${r.provider}`} ×${r.processes}` : ''}: ${p}`)),
    notes,
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${new Date().toISOString().slice(0, 10)}-${hostname()}-engine${args.quick ? '-quick' : ''}.json`);
  writeFileSync(file, JSON.stringify(summary, null, 2) + '\n');

  console.log('\n' + table(steps, latency) + '\n');
  for (const p of summary.problems) console.log(`PROBLEM ${p}`);
  for (const n of notes) console.log(n);
  console.error(`written to ${file}`);
  console.log(JSON.stringify(summary));
  if (summary.problems.length) process.exitCode = 1;
}

async function runBackends(
  fake: ProviderFake | undefined,
  profileDir: string | undefined,
  steps: StepsResult[],
  latency: LatencyResult[],
  notes: string[],
  versions: Record<string, string>,
): Promise<void> {
  if (BACKENDS.includes('postgres')) {
    ensureBuilt();
    const server = await Server.open();
    const onSignal = () => void server.close().finally(() => process.exit(130));
    process.once('SIGINT', onSignal);
    try {
      versions.postgres = server.version;
      if (PHASES.includes('steps')) steps.push(...(await stepsOnPostgres(server, fake, profileDir, notes)));
      if (PHASES.includes('latency')) latency.push(...(await latencyOnPostgres(server, profileDir, notes)));
    } finally {
      process.off('SIGINT', onSignal);
      await server.close();
    }
  }
  if (BACKENDS.includes('pglite') && PHASES.includes('steps')) {
    const pglite = JSON.parse(readFileSync(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string };
    versions.pglite = `PGlite ${pglite.version} (in memory)`;
    steps.push(...(await stepsOnPglite(fake)));
  }
}

await main();
