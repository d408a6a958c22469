/**
 * What the benchmarks share: statistics over samples, CPU and memory readings from /proc and
 * os.cpus(), databases created and dropped on the PostgreSQL server, the compiled CLI kept fresh,
 * `rapport worker` processes, the API server in a process of its own (bench/ingest-server.ts) and
 * a keep-alive client for it, the Twilio and SendGrid fake in its own process, and the recorded
 * result file.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import pg from 'pg';
import type { Queryable } from '../src/store/db.js';
import type { ClientMessage, ServerMessage } from './ingest-server.js';
import type { FakeCommand, FakeMessage, FakeReport } from './provider-fake.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where result files go: bench/results, or RAPPORT_BENCH_RESULTS for runs that are not to be recorded. */
export const RESULTS = process.env.RAPPORT_BENCH_RESULTS || fileURLToPath(new URL('./results/', import.meta.url));
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Statistics

/** The q-quantile of ascending samples (nearest rank); NaN for none. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(xs: readonly number[], digits = 1): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const q = (x: number) => round(quantile(s, x), digits);
  return { p50: q(0.5), p90: q(0.9), p95: q(0.95), p99: q(0.99), max: round(s[s.length - 1] ?? NaN, digits) };
}

/**
 * The repeat whose `key` is the median (the lower middle one of an even count): one real run
 * stands for all, rather than a mix of fields from several.
 */
export function medianRun<T>(runs: readonly T[], key: (r: T) => number): T | undefined {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

// ---------------------------------------------------------------------------------------------
// CPU

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds a process has used so far, or undefined when /proc cannot tell (another machine, or it is gone). */
export function processCpu(pid: number, expectComm?: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  if (expectComm && !stat.includes(`(${expectComm})`)) return undefined;
  // Fields after "pid (comm) ": state is the first, utime the 12th, stime the 13th (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU seconds this process has used since `since`. */
export function ownCpu(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

export interface HostCpu {
  busy: number;
  total: number;
}

/** Busy and total CPU time of the machine, summed over its cores, in ms. */
export function hostCpu(): HostCpu {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    busy += times.user + times.nice + times.sys + times.irq;
    total += times.user + times.nice + times.sys + times.irq + times.idle;
  }
  return { busy, total };
}

/** How busy the whole machine was between two readings, 100 meaning every core. */
export const hostPercent = (a: HostCpu, b: HostCpu) => Math.round((100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total));

/** How busy other work keeps the machine over `ms` while the caller is idle. */
export async function hostBusyPercent(ms: number): Promise<number> {
  const before = hostCpu();
  await sleep(ms);
  return hostPercent(before, hostCpu());
}

/** The bench's own connections carry this name, so their backends are not charged to what is measured. */
export const BENCH_APP = 'rapport-bench';

/** CPU seconds used so far by the PostgreSQL backends of `database` other than the bench's own, by pid. */
export async function backendCpu(admin: pg.Client, database: string): Promise<Map<number, number> | undefined> {
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
export function backendDelta(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number | undefined {
  if (!before || !after) return undefined;
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Memory

export const MiB = 1024 * 1024;

/** A "VmHWM:   123456 kB" line of /proc/<pid>/status in MiB, or undefined when /proc cannot tell. */
export function procStatusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
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
export class RssSampler {
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

/** pg_database_size() of the database `db` is connected to. */
export async function databaseBytes(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ bytes: string | number }>('select pg_database_size(current_database()) as bytes');
  return Number(rows[0]!.bytes);
}

/** Calls `check` every `everyMs` until it answers true (then true) or `timeoutMs` has passed (then false). */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL databases for a run

/**
 * Databases named rapport_bench_<random>_<suffix> on the server at DATABASE_URL; close() drops
 * every one this made, and so does Ctrl-C before it.
 */
export class BenchDatabases {
  private readonly created = new Set<string>();
  private closed: Promise<void> | undefined;
  private readonly onSignal = () => void this.close().finally(() => process.exit(130));

  private constructor(
    readonly admin: pg.Client,
    readonly version: string,
    private readonly prefix: string,
  ) {
    process.once('SIGINT', this.onSignal);
  }

  static async open(): Promise<BenchDatabases> {
    const admin = new pg.Client({ connectionString: DATABASE_URL, application_name: BENCH_APP });
    await admin.connect();
    const version = (await admin.query<{ v: string }>('select version() as v')).rows[0]!.v.split(' on ')[0]!;
    return new BenchDatabases(admin, version, `rapport_bench_${randomBytes(4).toString('hex')}`);
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
    this.created.add(name);
    return name;
  }

  async drop(name: string): Promise<void> {
    await this.admin.query(`drop database if exists ${name} with (force)`);
    this.created.delete(name);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      process.off('SIGINT', this.onSignal);
      for (const name of [...this.created]) await this.drop(name).catch(() => {});
      await this.admin.end();
    })();
    return this.closed;
  }
}

// ---------------------------------------------------------------------------------------------
// The build, the commit, the result file

/** dist/ is what `rapport worker` runs; a stale build would measure old code. */
export function ensureBuilt(): void {
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

/** The checked-out commit, with "+dirty" when tracked files differ from it. */
export function commit(): string | undefined {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return undefined;
  }
}

/** The machine, for the result file: "2 × AMD EPYC". */
export function machine(): { host: string; cpu: string; node: string } {
  return { host: hostname(), cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`, node: process.version };
}

/** PGlite's version as installed. */
export function pgliteVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string }).version;
}

/** Writes bench/results/<date>-<host>-<bench>[-quick].json and returns its path. */
export function writeResult(bench: string, quick: boolean, summary: unknown): string {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${new Date().toISOString().slice(0, 10)}-${hostname()}-${bench}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, JSON.stringify(summary, null, 2) + '\n');
  return file;
}

/**
 * The end of a bench: writes its result file, prints its tables, problems and notes, then the
 * summary as the last line of stdout (bench/run.ts reads it). Any problem makes the exit code 1.
 */
export function finish(bench: string, quick: boolean, summary: { problems: readonly string[]; notes?: readonly string[] }, tables: string): void {
  const file = writeResult(bench, quick, summary);
  console.log('\n' + tables + '\n');
  for (const p of summary.problems) console.log(`PROBLEM ${p}`);
  for (const n of summary.notes ?? []) console.log(n);
  console.error(`written to ${file}`);
  console.log(JSON.stringify(summary));
  if (summary.problems.length) process.exitCode = 1;
}

/** A Markdown table: the first column left-aligned, the others right-aligned. */
export function markdownTable(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : c)));
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...cells.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Worker processes and the API server, each in a process of its own

const BIN = join(ROOT, 'bin/rapport.js');
const SERVER = fileURLToPath(new URL('./ingest-server.ts', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** What it has printed so far. */
  output: () => string;
}

/**
 * Starts `n` worker processes on the database at `url` and waits until each says it is running:
 * `node bin/rapport.js worker --concurrency 1` (the compiled CLI: call ensureBuilt() first), or
 * with `script` a TypeScript file run through tsx that prints the same lines (bench/engine-worker.ts).
 * `profileDir` runs them under --cpu-prof.
 */
export async function startWorkers(n: number, url: string, opts: { script?: string; profileDir?: string; env?: Record<string, string> } = {}): Promise<WorkerProcess[]> {
  const prof = opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : [];
  const procs = Array.from({ length: n }, () => {
    const argv = opts.script ? [...prof, '--import', 'tsx', opts.script] : [...prof, BIN, 'worker', '--concurrency', '1'];
    const child = spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...opts.env, DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return { child, output: () => out };
  });
  const deadline = Date.now() + 60_000;
  while (!procs.every((p) => /running/.test(p.output()))) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) {
      await stopWorkers(procs);
      throw new Error(`a worker process exited (${dead.child.exitCode}) before it was running: ${dead.output()}`);
    }
    if (Date.now() > deadline) {
      await stopWorkers(procs);
      throw new Error('worker processes did not start within 60 s');
    }
    await sleep(25);
  }
  return procs;
}

/** Stops the processes with SIGTERM and returns the steps each reports ("stopped after N steps"). */
export async function stopWorkers(procs: WorkerProcess[]): Promise<number[]> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
        }),
    ),
  );
  return procs.map((p) => Number(/stopped after (\d+) steps/.exec(p.output())?.[1] ?? NaN));
}

/** CPU seconds the worker processes have used so far; NaN when /proc cannot tell. */
export const workersCpu = (procs: WorkerProcess[]) => procs.reduce((sum, p) => sum + (processCpu(p.child.pid!) ?? NaN), 0);

function nextServerMessage(child: ChildProcess): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the bench server exited (${code}) before answering`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as ServerMessage);
    });
  });
}

/**
 * Rapport's server (bench/ingest-server.ts: `rapport start` as a child process with an IPC
 * channel) on an empty database: PGlite in RAPPORT_DATA_DIR, or PostgreSQL at DATABASE_URL. It
 * runs RAPPORT_WORKERS in-process workers (1 unless `env` says otherwise) and creates the first
 * tenant, whose API key it reports.
 */
export class BenchServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly apiKey: string,
  ) {}

  static async start(env: Record<string, string>, profileDir?: string): Promise<BenchServer> {
    const child = fork(SERVER, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: '', RAPPORT_ADMIN_TOKEN: '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const first = await nextServerMessage(child);
    if (!('url' in first)) throw new Error('the bench server did not report its URL');
    return new BenchServer(child, first.url, first.apiKey);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async cpuSeconds(): Promise<number> {
    const answer = nextServerMessage(this.child);
    this.child.send('cpu' satisfies ClientMessage);
    const m = await answer;
    if (!('cpuSeconds' in m)) throw new Error('the bench server did not report its CPU time');
    return m.cpuSeconds;
  }

  /** Stops it, letting --cpu-prof write its profile. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.connected) this.child.send('stop' satisfies ClientMessage);
    else this.child.kill('SIGTERM');
    await exited;
  }
}

export interface JsonPoster {
  post(path: string, body: string): Promise<{ status: number; text: string }>;
  close(): void;
}

/**
 * POSTs JSON with a bearer token over keep-alive node:http connections, which cost the client a
 * fraction of what fetch does: the client shares the machine with the server it measures.
 */
export function jsonPoster(baseUrl: string, apiKey: string, maxSockets = 256): JsonPoster {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
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

// ---------------------------------------------------------------------------------------------
// The Twilio and SendGrid fake (bench/provider-fake.ts), in a process of its own

const FAKE = fileURLToPath(new URL('./provider-fake.ts', import.meta.url));

/** bench/provider-fake.ts run as a child process: its URL, and what it received since the last reset. */
export class ProviderFake {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** The fake's process id, for reading its CPU or memory from /proc. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the fake; it accepts only these Twilio credentials and, when given, this SendGrid API key (without one it refuses every e-mail). */
  static async start(credentials: { account_sid: string; auth_token: string }, sendgrid?: { api_key: string }): Promise<ProviderFake> {
    const child = fork(FAKE, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        FAKE_TWILIO_ACCOUNT_SID: credentials.account_sid,
        FAKE_TWILIO_AUTH_TOKEN: credentials.auth_token,
        FAKE_SENDGRID_API_KEY: sendgrid?.api_key ?? '',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const first = await nextFakeMessage(child);
    if (!('url' in first)) throw new Error('the provider fake did not report its URL');
    return new ProviderFake(child, first.url);
  }

  async reset(): Promise<void> {
    const answer = nextFakeMessage(this.child);
    this.child.send('reset' satisfies FakeCommand);
    await answer;
  }

  async report(): Promise<FakeReport> {
    const answer = nextFakeMessage(this.child);
    this.child.send('report' satisfies FakeCommand);
    const m = await answer;
    if (!('received' in m)) throw new Error('the provider fake did not report');
    return m;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send('stop' satisfies FakeCommand);
    await exited;
  }
}

function nextFakeMessage(child: ChildProcess): Promise<FakeMessage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the provider fake exited (${code})`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as FakeMessage);
    });
  });
}
