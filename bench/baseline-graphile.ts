/**
 * The baseline Rapport is measured against: the same journey built on graphile-worker, a
 * well-made PostgreSQL job queue, on the same server. PostgreSQL only.
 *
 *   noop   N jobs (100,000; 5,000 with --quick) added with one add_jobs call while an idle
 *          graphile-worker process waits, whose task does nothing: jobs/s from the commit of
 *          the add to the queue found empty. Run once per --noop-concurrency (concurrentJobs: 8,
 *          24 and 32; 32 with --quick);
 *          the best is what a PostgreSQL queue does on this machine, the ceiling of any engine
 *          that keeps one job per step in a table.
 *   steps  the workload of bench/engine.ts (bench/engine-workload.ts: contacts over twelve time
 *          zones with consent, SMS → wait 0 → email, Liquid reading three attributes; --contacts,
 *          100,000, 1,000 with --quick) as bench/baseline-graphile-worker.ts builds it: one job
 *          per send, each reading the contact, consent, policy and suppressions with Rapport's
 *          store functions, deciding with Rapport's policy, rendering with Rapport's renderer,
 *          sending with Rapport's Twilio adapter to bench/provider-fake.ts (a process of its
 *          own) and recording the message and its status row; the SMS job adds the e-mail job.
 *          All N `sms` jobs are added in one call while the worker waits. messages/s is 2N /
 *          (last sent_at − commit of the add). Run once per --steps-concurrency (16 and 32; 32
 *          with --quick) and
 *          --provider (http: the Twilio fake; sandbox: Rapport's in-process sandbox provider,
 *          comparable with bench/engine.ts).
 *
 *   npm run bench:baseline -- [--quick] [--jobs 100000] [--contacts 100000] [--phase all|noop|steps]
 *                             [--noop-concurrency 8,24,32] [--steps-concurrency 16,32]
 *                             [--local-queue 500] [--provider http|sandbox|both]
 *
 * graphile-worker runs in one process with its local queue (--local-queue jobs fetched per
 * query) and batched completion (completeJobBatchDelay and failJobBatchDelay 0), the settings
 * of its own performance page; its pg pool, shared with the tasks, holds concurrency + 1
 * connections up to 33. Each run gets a fresh copy of one seeded template database. CPU is read
 * from /proc for the worker process and the PostgreSQL backends serving it; the fake's is
 * reported apart. Rapport's figures are not re-measured here: the ratios printed come from the
 * newest bench/results files of bench/engine.ts and bench/dispatch.ts, other runs, and say so.
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench
 * creates databases rapport_bench_<random>_* there and drops them. Results go to
 * bench/results/<date>-<host>-baseline.json (-quick.json with --quick).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import type { Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { openPostgres } from '../src/store/postgres.js';
import type { BaselineWorkerConfig, WorkerCommand, WorkerReport } from './baseline-graphile-worker.js';
import { benchTenant, seedContacts, TWILIO } from './engine-workload.js';
import {
  backendCpu,
  backendDelta,
  BENCH_APP,
  BenchDatabases,
  commit,
  finish,
  hostBusyPercent,
  hostCpu,
  hostPercent,
  machine,
  markdownTable,
  processCpu,
  ProviderFake,
  RESULTS,
  ROOT,
  round,
  waitFor,
} from './lib.js';

const WORKER = fileURLToPath(new URL('./baseline-graphile-worker.ts', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    contacts: { type: 'string' },
    phase: { type: 'string', default: 'all' },
    'noop-concurrency': { type: 'string' },
    'steps-concurrency': { type: 'string' },
    'local-queue': { type: 'string', default: '500' },
    provider: { type: 'string', default: 'http' },
  },
});
const JOBS = Number(args.jobs ?? (args.quick ? 5_000 : 100_000));
const CONTACTS = Number(args.contacts ?? (args.quick ? 1_000 : 100_000));
const LOCAL_QUEUE = Number(args['local-queue']);
const list = (name: string, raw: string) => {
  const xs = raw.split(',').map(Number);
  if (!xs.every((x) => Number.isInteger(x) && x >= 1 && x <= 1000)) throw new Error(`--${name} is a comma-separated list of whole numbers, e.g. 8,24`);
  return xs;
};
const NOOP_CONCURRENCY = list('noop-concurrency', args['noop-concurrency'] ?? (args.quick ? '32' : '8,24,32'));
const STEPS_CONCURRENCY = list('steps-concurrency', args['steps-concurrency'] ?? (args.quick ? '32' : '16,32'));
const PHASES = args.phase === 'all' ? ['noop', 'steps'] : [args.phase];
const PROVIDERS = args.provider === 'both' ? (['http', 'sandbox'] as const) : [args.provider as 'http' | 'sandbox'];
for (const [name, v] of Object.entries({ jobs: JOBS, contacts: CONTACTS, 'local-queue': LOCAL_QUEUE })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
for (const p of PHASES) if (p !== 'noop' && p !== 'steps') throw new Error('--phase is one of all, noop, steps');
for (const p of PROVIDERS) if (p !== 'http' && p !== 'sandbox') throw new Error('--provider is one of http, sandbox, both');

const FROM = '+14155550100';
/**
 * Connections graphile-worker and the tasks share: concurrency + 1, as its performance page pairs
 * them, but at most 33 so that a run leaves most of a default max_connections (100) to whatever
 * else uses the server. Above 32 jobs at once graphile-worker warns that the pool is smaller.
 */
const poolSize = (concurrency: number) => Math.min(concurrency + 1, 33);
const runTimeout = (jobs: number) => Math.max(120_000, jobs * 10);

interface NoopResult {
  phase: 'noop';
  concurrency: number;
  jobs: number;
  /** How long the one add_jobs call took. */
  addSeconds: number;
  seconds: number;
  jobsPerSecond: number;
  cpuSeconds: { worker?: number; postgres?: number };
  cpuMicrosPerJob?: number;
  hostCpuPercent: number;
  problems: string[];
}

interface StepsResult {
  phase: 'steps';
  provider: 'http' | 'sandbox';
  concurrency: number;
  contacts: number;
  /** Jobs run: two per contact when nothing fails. */
  jobs: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** Commit of the add → queue empty (completion is batched, so a little after the last message). */
  queueEmptySeconds: number;
  cpuSeconds: { worker?: number; postgres?: number; fake?: number };
  /** Worker and PostgreSQL per message sent, as bench/engine.ts and bench/dispatch.ts count it. */
  cpuMicrosPerMessage?: number;
  hostCpuPercent: number;
  problems: string[];
}

// ---------------------------------------------------------------------------------------------
// The graphile-worker process

class GraphileWorker {
  private readonly reports: WorkerReport[] = [];
  private waiter: (() => void) | null = null;
  private exitCode: number | null = null;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m) => {
      this.reports.push(m as WorkerReport);
      this.waiter?.();
    });
    child.once('exit', (code) => {
      this.exitCode = code ?? -1;
      this.waiter?.();
    });
  }

  static async start(config: BaselineWorkerConfig): Promise<GraphileWorker> {
    const child = fork(WORKER, [JSON.stringify(config)], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w = new GraphileWorker(child);
    await w.next((r) => ('running' in r ? r : undefined), 60_000);
    return w;
  }

  /** The first report `pick` accepts, or undefined when the process exits or `timeoutMs` passes. */
  async next<T>(pick: (r: WorkerReport) => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const r of this.reports) {
        const v = pick(r);
        if (v !== undefined) return v;
      }
      if (this.exitCode !== null || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  cpu(): number {
    return processCpu(this.child.pid!) ?? NaN;
  }

  async stop(): Promise<{ handled: number; errors: number; firstError: string | null } | undefined> {
    if (this.exitCode !== null) return undefined;
    this.child.send('stop' satisfies WorkerCommand);
    const stopped = await this.next((r) => ('stopped' in r ? r.stopped : undefined), 30_000);
    if (this.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    return stopped;
  }
}

const epochNow = () => performance.timeOrigin + performance.now();

/** Waits until graphile-worker's table holds no job: when it found it empty (epoch ms), or undefined on timeout. */
async function untilQueueEmpty(db: Db, timeoutMs: number): Promise<number | undefined> {
  const empty = await waitFor(
    async () => {
      const { rows } = await db.query<{ busy: boolean }>('select exists (select 1 from graphile_worker._private_jobs) as busy');
      return !rows[0]!.busy;
    },
    timeoutMs,
    10,
  );
  return empty ? epochNow() : undefined;
}

// ---------------------------------------------------------------------------------------------
// One run

interface Run {
  db: Db;
  utils: WorkerUtils;
  worker: GraphileWorker;
  name: string;
}

async function withRun<T>(dbs: BenchDatabases, template: string, suffix: string, config: Omit<BaselineWorkerConfig, 'connectionString'>, fn: (r: Run) => Promise<T>): Promise<T> {
  const name = await dbs.create(suffix, template);
  const db = openPostgres({ connectionString: dbs.url(name, BENCH_APP), max: 2 });
  const utils = await workerUtils(dbs.url(name, BENCH_APP));
  try {
    const worker = await GraphileWorker.start({ ...config, connectionString: dbs.url(name) });
    try {
      return await fn({ db, utils, worker, name });
    } finally {
      const stopped = await worker.stop();
      if (stopped?.errors) console.error(`    the worker counted ${stopped.errors} failed jobs, the first: ${stopped.firstError}`);
    }
  } finally {
    await utils.release();
    await db.close();
    await dbs.drop(name);
  }
}

/**
 * graphile-worker's utilities on a pool of the bench's own, whose end it awaits: the database is
 * dropped right after, and a pool that is still closing must not take the bench down with it.
 */
async function workerUtils(connectionString: string): Promise<WorkerUtils & { release(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString, max: 1 });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const utils = await makeWorkerUtils({ pgPool: pool });
  const release = utils.release;
  return Object.assign(utils, {
    release: async () => {
      await release();
      await pool.end();
    },
  });
}

interface Usage {
  worker?: number;
  postgres?: number;
  host: number;
}

async function usage<T>(dbs: BenchDatabases, r: Run, fn: () => Promise<T>): Promise<{ value: T; used: Usage }> {
  const w0 = r.worker.cpu();
  const pg0 = await backendCpu(dbs.admin, r.name);
  const host0 = hostCpu();
  const value = await fn();
  const host = hostPercent(host0, hostCpu());
  const worker = r.worker.cpu() - w0;
  const postgres = backendDelta(pg0, await backendCpu(dbs.admin, r.name));
  return { value, used: { ...(Number.isFinite(worker) ? { worker: round(worker, 2) } : {}), ...(postgres !== undefined ? { postgres: round(postgres, 2) } : {}), host } };
}

async function noopRun(dbs: BenchDatabases, template: string, concurrency: number): Promise<NoopResult> {
  const config = { mode: 'noop' as const, concurrency, localQueueSize: LOCAL_QUEUE, poolSize: poolSize(concurrency), expect: JOBS };
  return withRun(dbs, template, `noop_${concurrency}`, config, async (r) => {
    const specs = Array.from({ length: JOBS }, () => ({ identifier: 'noop', payload: {} }));
    const { value, used } = await usage(dbs, r, async () => {
      const added0 = epochNow();
      await r.utils.addJobs(specs);
      const t0 = epochNow();
      const handled = await r.worker.next((x) => ('handled' in x ? x : undefined), runTimeout(JOBS));
      const empty = handled ? await untilQueueEmpty(r.db, 30_000) : undefined;
      return { t0, addSeconds: (t0 - added0) / 1000, handled, empty };
    });
    const problems: string[] = [];
    if (!value.handled) problems.push(`fewer than ${JOBS} jobs finished within ${runTimeout(JOBS) / 1000} s`);
    if (!value.empty) problems.push('jobs were still in the queue 30 s after the last one finished');
    const seconds = ((value.empty ?? NaN) - value.t0) / 1000;
    const cpu = (used.worker ?? NaN) + (used.postgres ?? NaN);
    const result: NoopResult = {
      phase: 'noop',
      concurrency,
      jobs: JOBS,
      addSeconds: round(value.addSeconds, 2),
      seconds: round(seconds, 2),
      jobsPerSecond: Math.round(JOBS / seconds),
      cpuSeconds: { worker: used.worker, postgres: used.postgres },
      ...(Number.isFinite(cpu) ? { cpuMicrosPerJob: Math.round((cpu * 1e6) / JOBS) } : {}),
      hostCpuPercent: used.host,
      problems,
    };
    console.error(`  noop, concurrency ${concurrency}: ${result.jobsPerSecond.toLocaleString('en-US')} jobs/s${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`);
    return result;
  });
}

async function stepsRun(dbs: BenchDatabases, template: string, tenant: string, contactIds: string[], provider: 'http' | 'sandbox', httpFake: ProviderFake | undefined, concurrency: number): Promise<StepsResult> {
  const fake = provider === 'http' ? httpFake : undefined;
  const config: Omit<BaselineWorkerConfig, 'connectionString'> = {
    mode: 'steps',
    concurrency,
    localQueueSize: LOCAL_QUEUE,
    poolSize: poolSize(concurrency),
    expect: 2 * contactIds.length,
    provider: provider === 'http' ? { kind: 'http', url: fake!.url, ...TWILIO, from: FROM } : { kind: 'sandbox' },
  };
  return withRun(dbs, template, `steps_${provider}_${concurrency}`, config, async (r) => {
    await fake?.reset();
    const specs = contactIds.map((contact) => ({ identifier: 'sms', payload: { tenant, contact } }));
    const { value, used } = await usage(dbs, r, async () => {
      await r.utils.addJobs(specs);
      const t0 = epochNow();
      const handled = await r.worker.next((x) => ('handled' in x ? x : undefined), runTimeout(config.expect));
      const empty = handled ? await untilQueueEmpty(r.db, 30_000) : undefined;
      return { t0, handled, empty };
    });
    const report = await fake?.report();
    const { rows } = await r.db.query<{ sent: number; other: number; last: Date | null; sms: number; email: number }>(
      `select count(*) filter (where status = 'sent')::int as sent, count(*) filter (where status <> 'sent')::int as other, max(sent_at) as last,
              count(*) filter (where channel = 'sms')::int as sms, count(*) filter (where channel = 'email')::int as email
         from messages`,
    );
    const m = rows[0]!;
    const n = contactIds.length;
    const problems: string[] = [];
    if (!value.handled) problems.push(`fewer than ${config.expect} jobs finished within ${runTimeout(config.expect) / 1000} s`);
    if (value.handled && !value.empty) problems.push('jobs were still in the queue 30 s after the last one finished');
    if (m.sent !== 2 * n || m.sms !== n || m.email !== n) problems.push(`${m.sent} messages sent (${m.sms} SMS, ${m.email} e-mail, ${m.other} in another status), expected ${n} of each`);
    if (report) {
      if (report.received.length !== 2 * n) problems.push(`the fake accepted ${report.received.length} of ${2 * n} messages`);
      if (report.duplicates) problems.push(`the fake received ${report.duplicates} messages twice`);
      if (report.unmatched) problems.push(`${report.unmatched} requests without a ref`);
      if (Object.keys(report.refused).length) problems.push(`the fake refused requests: ${JSON.stringify(report.refused)}`);
    }
    const seconds = m.last ? (m.last.getTime() - value.t0) / 1000 : NaN;
    const cpu = (used.worker ?? NaN) + (used.postgres ?? NaN);
    const result: StepsResult = {
      phase: 'steps',
      provider,
      concurrency,
      contacts: n,
      jobs: value.handled?.handled ?? NaN,
      messages: m.sent,
      seconds: round(seconds, 2),
      messagesPerSecond: Math.round(m.sent / seconds),
      queueEmptySeconds: round(((value.empty ?? NaN) - value.t0) / 1000, 2),
      cpuSeconds: { worker: used.worker, postgres: used.postgres, ...(report ? { fake: round(report.cpuSeconds, 2) } : {}) },
      ...(Number.isFinite(cpu) && m.sent ? { cpuMicrosPerMessage: Math.round((cpu * 1e6) / m.sent) } : {}),
      hostCpuPercent: used.host,
      problems,
    };
    console.error(`  steps ${provider}, concurrency ${concurrency}: ${result.messagesPerSecond.toLocaleString('en-US')} msg/s${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`);
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// Rapport's recorded figures, from other runs

interface Recorded {
  file: string;
  label: string;
  messagesPerSecond: number;
  cpuMicrosPerMessage?: number;
  provider: 'http' | 'sandbox';
}

/** The newest full (not --quick) result file of a bench, parsed; undefined when there is none. */
function newestResult(bench: string): { file: string; data: Record<string, unknown> } | undefined {
  const file = readdirSync(RESULTS)
    .filter((f) => f.endsWith(`-${bench}.json`))
    .sort()
    .at(-1);
  return file ? { file: `bench/results/${file}`, data: JSON.parse(readFileSync(join(RESULTS, file), 'utf8')) as Record<string, unknown> } : undefined;
}

/** Rapport with one worker process on PostgreSQL: end to end with the sandbox (engine), and the dispatcher alone to the Twilio fake (dispatch). */
function recordedRapport(): Recorded[] {
  const out: Recorded[] = [];
  type Row = { phase?: string; backend?: string; mode?: string; provider?: string; processes?: number; messagesPerSecond?: number; cpuMicrosPerMessage?: number };
  const engine = newestResult('engine');
  const e = (engine?.data.results as Row[] | undefined)?.find((r) => r.phase === 'steps' && r.backend === 'postgres' && r.mode === 'end-to-end' && r.processes === 1);
  if (engine && e?.messagesPerSecond) {
    out.push({ file: engine.file, label: 'engine end to end, sandbox provider, 1 worker process', messagesPerSecond: e.messagesPerSecond, cpuMicrosPerMessage: e.cpuMicrosPerMessage, provider: 'sandbox' });
  }
  const dispatch = newestResult('dispatch');
  const d = (dispatch?.data.medians as Row[] | undefined)?.find((r) => r.phase === 'backlog' && r.backend === 'postgres' && r.provider === 'http' && r.processes === 1);
  if (dispatch && d?.messagesPerSecond) {
    out.push({ file: dispatch.file, label: 'dispatch only (messages already queued), Twilio fake, 1 worker process', messagesPerSecond: d.messagesPerSecond, cpuMicrosPerMessage: d.cpuMicrosPerMessage, provider: 'http' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function tables(noop: NoopResult[], steps: StepsResult[], ratios: { label: string; file: string; against: string; ratio: number }[]): string {
  const out: string[] = [];
  if (noop.length) {
    out.push(
      markdownTable(
        ['graphile-worker no-op jobs', 'concurrency', 'jobs/s', 'seconds', 'add_jobs s', 'CPU s worker / postgres', 'CPU µs per job', 'host busy'],
        noop.map((r) => [`${r.jobs.toLocaleString('en-US')} jobs`, r.concurrency, r.jobsPerSecond, r.seconds, r.addSeconds, `${r.cpuSeconds.worker ?? '–'} / ${r.cpuSeconds.postgres ?? '–'}`, r.cpuMicrosPerJob ?? '–', `${r.hostCpuPercent}%`]),
      ),
    );
  }
  if (steps.length) {
    out.push(
      '',
      markdownTable(
        ['graphile-worker same work', 'concurrency', 'messages/s', 'seconds', 'queue empty s', 'CPU s worker / postgres', 'CPU µs per msg', 'fake CPU s', 'host busy'],
        steps.map((r) => [
          `${r.contacts.toLocaleString('en-US')} contacts, ${r.provider === 'http' ? 'HTTP (Twilio fake)' : 'sandbox'}`,
          r.concurrency,
          r.messagesPerSecond,
          r.seconds,
          r.queueEmptySeconds,
          `${r.cpuSeconds.worker ?? '–'} / ${r.cpuSeconds.postgres ?? '–'}`,
          r.cpuMicrosPerMessage ?? '–',
          r.cpuSeconds.fake ?? '–',
          `${r.hostCpuPercent}%`,
        ]),
      ),
    );
  }
  if (ratios.length) {
    out.push('', markdownTable(['Rapport (recorded in another run)', 'against', 'Rapport ÷ baseline'], ratios.map((r) => [`${r.label} (${r.file})`, r.against, String(r.ratio)])));
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const hostBusyBeforePercent = await hostBusyPercent(args.quick ? 500 : 2000);
  const noop: NoopResult[] = [];
  const steps: StepsResult[] = [];
  const dbs = await BenchDatabases.open();
  const fake = PHASES.includes('steps') && PROVIDERS.includes('http') ? await ProviderFake.start(TWILIO) : undefined;
  try {
    const seeded = Math.max(PHASES.includes('steps') ? CONTACTS : 0, 1);
    console.error(`postgres: seeding ${seeded.toLocaleString('en-US')} contacts and graphile-worker's schema into a template database…`);
    const template = await dbs.create('template');
    let tenant: string;
    let contactIds: string[];
    {
      const db = openPostgres({ connectionString: dbs.url(template, BENCH_APP), max: 2 });
      const utils = await workerUtils(dbs.url(template, BENCH_APP));
      try {
        await migrate(db);
        await utils.migrate();
        tenant = await benchTenant(db, 'Baseline bench');
        contactIds = await seedContacts(db, tenant, seeded);
        await db.query('vacuum analyze');
      } finally {
        await utils.release();
        await db.close();
      }
    }
    if (PHASES.includes('noop')) {
      console.error(`no-op jobs, ${JOBS.toLocaleString('en-US')} per run, local queue ${LOCAL_QUEUE}:`);
      for (const c of NOOP_CONCURRENCY) noop.push(await noopRun(dbs, template, c));
    }
    if (PHASES.includes('steps')) {
      console.error(`same work, ${CONTACTS.toLocaleString('en-US')} contacts (${(2 * CONTACTS).toLocaleString('en-US')} messages) per run:`);
      for (const provider of PROVIDERS) for (const c of STEPS_CONCURRENCY) steps.push(await stepsRun(dbs, template, tenant, contactIds, provider, fake, c));
    }
  } finally {
    await fake?.stop();
    await dbs.close();
  }

  const best = <T>(xs: T[], key: (x: T) => number) => xs.reduce<T | undefined>((b, x) => (b === undefined || key(x) > key(b) ? x : b), undefined);
  const bestNoop = best(noop, (r) => r.jobsPerSecond);
  const bestSteps = Object.fromEntries(PROVIDERS.map((p) => [p, best(steps.filter((r) => r.provider === p), (r) => r.messagesPerSecond)]));
  const recorded = recordedRapport();
  const ratios = recorded.flatMap((rec) => {
    const out: { label: string; file: string; against: string; ratio: number }[] = [];
    const same = bestSteps[rec.provider];
    if (same) out.push({ label: rec.label, file: rec.file, against: `same work, ${rec.provider}, concurrency ${same.concurrency} (${same.messagesPerSecond.toLocaleString('en-US')} msg/s)`, ratio: round(rec.messagesPerSecond / same.messagesPerSecond, 2) });
    if (bestNoop) out.push({ label: rec.label, file: rec.file, against: `no-op jobs, concurrency ${bestNoop.concurrency} (${bestNoop.jobsPerSecond.toLocaleString('en-US')} jobs/s)`, ratio: round(rec.messagesPerSecond / bestNoop.jobsPerSecond, 2) });
    return out;
  });
  const summary = {
    bench: 'baseline',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    hostBusyBeforePercent,
    options: {
      jobs: JOBS,
      contacts: CONTACTS,
      noopConcurrency: NOOP_CONCURRENCY,
      stepsConcurrency: STEPS_CONCURRENCY,
      localQueueSize: LOCAL_QUEUE,
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
      poolSize: 'concurrency + 1, at most 33, shared by graphile-worker and the tasks',
      providers: PROVIDERS,
      processes: 1,
    },
    versions: { postgres: dbs.version, graphileWorker: graphileVersion() },
    best: {
      noop: bestNoop ? { concurrency: bestNoop.concurrency, jobsPerSecond: bestNoop.jobsPerSecond, cpuMicrosPerJob: bestNoop.cpuMicrosPerJob } : null,
      steps: Object.fromEntries(
        Object.entries(bestSteps).map(([p, r]) => [p, r ? { concurrency: r.concurrency, messagesPerSecond: r.messagesPerSecond, cpuMicrosPerMessage: r.cpuMicrosPerMessage } : null]),
      ),
    },
    rapportRecorded: recorded,
    rapportToBaseline: ratios,
    results: [...noop, ...steps].map((r) => ({ ...r, problems: r.problems.length })),
    problems: [...noop, ...steps].flatMap((r) => r.problems.map((p) => `${r.phase}${'provider' in r ? ` ${r.provider}` : ''} concurrency ${r.concurrency}: ${p}`)),
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  finish('baseline', args.quick, summary, tables(noop, steps, ratios));
}

function graphileVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules/graphile-worker/package.json'), 'utf8')) as { version: string }).version;
}

await main();
