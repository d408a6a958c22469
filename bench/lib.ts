/**
 * What the benchmarks share: statistics over samples, CPU readings from /proc and os.cpus(),
 * databases created and dropped on the PostgreSQL server, the compiled CLI kept fresh, the
 * Twilio and SendGrid fake in its own process, and the recorded result file. bench/dispatch.ts and
 * bench/baseline-graphile.ts use it; bench/engine.ts (which takes only the fake from here) and
 * bench/ingest.ts still carry their own copies of most of it.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { FakeCommand, FakeMessage, FakeReport } from './provider-fake.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
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
  p99: number;
  max: number;
}

export function percentiles(xs: readonly number[], digits = 1): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(quantile(s, 0.5), digits), p90: round(quantile(s, 0.9), digits), p99: round(quantile(s, 0.99), digits), max: round(s[s.length - 1] ?? NaN, digits) };
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
// PostgreSQL databases for a run

/** Databases named rapport_bench_<random>_<suffix> on the server at DATABASE_URL; close() drops every one this made. */
export class BenchDatabases {
  private readonly created = new Set<string>();

  private constructor(
    readonly admin: pg.Client,
    readonly version: string,
    private readonly prefix: string,
  ) {}

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

  async close(): Promise<void> {
    for (const name of [...this.created]) await this.drop(name).catch(() => {});
    await this.admin.end();
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

/** A Markdown table: the first column left-aligned, the others right-aligned. */
export function markdownTable(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : c)));
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...cells.map((r) => `| ${r.join(' | ')} |`)].join('\n');
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
