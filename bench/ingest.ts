/**
 * Ingest throughput through the HTTP API, on embedded PGlite and on PostgreSQL:
 *   1. contacts created with POST /v1/contacts/bulk (phone, email, zone, locale, 3 attributes, tags);
 *   2. the same contacts upserted again (every row an update);
 *   3. events recorded with POST /v1/events/batch, naming their contact by external_id.
 *
 *   npm run bench:ingest -- [--quick] [--concurrency 2] [--batch 5000] [--rows 100000]
 *                           [--backend all|pglite|postgres] [--profile]
 *
 * --quick: 5,000 rows in batches of 1,000.
 *
 * The server runs in a child process (bench/ingest-server.ts): the client's work (serialising
 * 1.5 MB bodies, parsing 5,000 outcomes per answer) would otherwise run on the server's event loop
 * and be counted as ingest time, and a profile of the server would be mixed with the client's.
 * Bodies are serialised before the clock starts, so the client only waits on the server.
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * a database rapport_bench_<random> on that server and drops it afterwards, touching nothing else.
 * PGlite runs on disk in a temporary folder. Results go to bench/results/<date>-<host>-ingest.json
 * (-quick.json with --quick).
 *
 * Besides rows/s, each phase reports the CPU seconds of the server, of the PostgreSQL backends
 * serving it (read from /proc when the database runs on this machine) and of the client, and how
 * busy the whole machine was: on a shared machine compare CPU seconds, not only rows/s. --profile
 * runs the server under --cpu-prof and leaves its profiles in a temporary folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { contacts, events, updates } from './ingest-workload.js';
import { backendCpu, backendDelta, BenchDatabases, BenchServer, commit, finish, hostCpu, hostPercent, machine, markdownTable, pgliteVersion, quantile, round, sleep } from './lib.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rows: { type: 'string' },
    batch: { type: 'string' },
    concurrency: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'all' },
    profile: { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows ?? (args.quick ? 5_000 : 100_000));
const BATCH = Number(args.batch ?? (args.quick ? 1_000 : 5_000));
const CONCURRENCY = Number(args.concurrency);
const BACKENDS = args.backend === 'all' ? (['pglite', 'postgres'] as const) : ([args.backend] as ('pglite' | 'postgres')[]);
for (const [name, v] of Object.entries({ rows: ROWS, batch: BATCH, concurrency: CONCURRENCY })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}
for (const b of BACKENDS) if (b !== 'pglite' && b !== 'postgres') throw new Error('--backend is one of all, pglite, postgres');

function batches<T>(rows: T[], key: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rows.length; i += BATCH) out.push(JSON.stringify({ [key]: rows.slice(i, i + BATCH) }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server and the client.

interface PhaseResult {
  phase: string;
  backend: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  medianBatchMs: number;
  p95BatchMs: number;
  /** CPU seconds over the phase of the Node server, of the PostgreSQL backends serving it (when on this machine), and of this client. */
  cpuSeconds: { server: number; postgres?: number; client: number };
  /** How busy the whole machine was over the phase, 100 meaning every core: anything beyond the three above is someone else's. */
  hostCpuPercent: number;
  problems: string[];
}

/**
 * How busy other processes keep the machine, as a share of all its cores, over `ms` while the
 * bench itself is idle: another job running would skew every figure.
 */
async function othersBusyPercent(target: Target, ms: number): Promise<number> {
  const before = { host: hostCpu(), server: await target.server.cpuSeconds(), postgres: (await target.postgresCpu()) ?? 0, client: process.cpuUsage() };
  await sleep(ms);
  const host = hostCpu();
  const client = process.cpuUsage(before.client);
  const ours = (await target.server.cpuSeconds()) - before.server + ((await target.postgresCpu()) ?? 0) - before.postgres + (client.user + client.system) / 1e6;
  return Math.max(0, Math.round((100 * (host.busy - before.host.busy - ours * 1000)) / (host.total - before.host.total)));
}

const sortedQuantile = (xs: number[], q: number) => quantile([...xs].sort((a, b) => a - b), q);

interface Target {
  backend: 'pglite' | 'postgres';
  server: BenchServer;
  postgresCpu: () => Promise<number | undefined>;
}

interface Phase {
  phase: string;
  path: string;
  bodies: string[];
  rows: number;
  /** Returns what is wrong with the answer to bodies[index]. */
  check: (answer: unknown, index: number) => string[];
}

/** POSTs every body with CONCURRENCY requests in flight over keep-alive connections (fetch's undici pool keeps them open). */
async function runPhase({ backend, server, postgresCpu }: Target, { phase, path, bodies, rows, check }: Phase): Promise<PhaseResult> {
  const latencies: number[] = [];
  const problems: string[] = [];
  let next = 0;
  const before = { server: await server.cpuSeconds(), postgres: await postgresCpu(), client: process.cpuUsage(), host: hostCpu() };
  const started = performance.now();
  const worker = async () => {
    while (next < bodies.length) {
      const index = next++;
      const t = performance.now();
      const res = await fetch(server.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' },
        body: bodies[index]!,
      });
      const text = await res.text();
      latencies.push(performance.now() - t);
      if (res.status >= 300) problems.push(`batch ${index}: HTTP ${res.status} ${text.slice(0, 300)}`);
      else problems.push(...check(JSON.parse(text), index));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, bodies.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const host = hostCpu();
  const client = process.cpuUsage(before.client);
  const serverCpu = (await server.cpuSeconds()) - before.server;
  const pgAfter = await postgresCpu();
  return {
    phase,
    backend,
    rows,
    seconds: round(seconds, 2),
    rowsPerSecond: Math.round(rows / seconds),
    medianBatchMs: Math.round(sortedQuantile(latencies, 0.5)),
    p95BatchMs: Math.round(sortedQuantile(latencies, 0.95)),
    cpuSeconds: {
      server: round(serverCpu, 2),
      ...(pgAfter !== undefined && before.postgres !== undefined ? { postgres: round(pgAfter - before.postgres, 2) } : {}),
      client: round((client.user + client.system) / 1e6, 2),
    },
    hostCpuPercent: hostPercent(before.host, host),
    problems,
  };
}

const expectCounts =
  (want: Record<string, number>, batchRows: (index: number) => number) =>
  (answer: unknown, index: number): string[] => {
    const a = answer as Record<string, number>;
    return Object.entries(want)
      .map(([k, share]) => [k, share * batchRows(index)] as const)
      .filter(([k, n]) => a[k] !== n)
      .map(([k, n]) => `batch ${index}: ${k} ${a[k]}, expected ${n}`);
  };

/** Whether the events route exists yet: an empty batch is refused by validation (400), an absent route is 404. */
async function hasEventsRoute(server: BenchServer): Promise<boolean> {
  const res = await fetch(`${server.url}/v1/events/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' },
    body: '{"events":[]}',
  });
  await res.text();
  return res.status !== 404;
}

// ---------------------------------------------------------------------------------------------
// A backend: a fresh empty database, its server, the phases, then everything removed.

interface Workload {
  create: string[];
  update: string[];
  events: string[];
}

interface BackendRun {
  results: PhaseResult[];
  version: string;
  /** Machine load from other processes just before the run. */
  hostBusyBeforePercent: number;
  notes: string[];
}

async function benchBackend(backend: 'pglite' | 'postgres', work: Workload, profileDir?: string): Promise<BackendRun> {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  let version: string;
  let measurePostgres: () => Promise<number | undefined> = async () => undefined;
  if (backend === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'rapport-bench-'));
    env = { RAPPORT_DATA_DIR: dir };
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
    version = `PGlite ${pgliteVersion()} (on disk)`;
  } else {
    // Stays open for the run: it creates and drops the bench database and reads its backends' CPU.
    const dbs = await BenchDatabases.open();
    const name = await dbs.create('ingest');
    version = dbs.version;
    env = { DATABASE_URL: dbs.url(name) };
    // CPU of every backend serving the server so far: they live as long as its pool keeps them, longer than a phase.
    measurePostgres = async () => backendDelta(new Map(), await backendCpu(dbs.admin, name));
    cleanup = () => dbs.close();
  }
  const cleanupOnSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', cleanupOnSignal);

  const notes: string[] = [];
  const results: PhaseResult[] = [];
  let hostBusyBeforePercent: number | undefined;
  try {
    const server = await BenchServer.start({ RAPPORT_WORKERS: '1', ...env }, profileDir);
    try {
      const target: Target = { backend, server, postgresCpu: measurePostgres };
      hostBusyBeforePercent = await othersBusyPercent(target, 2000);
      if (hostBusyBeforePercent > 10) {
        const note = `other processes kept the machine ${hostBusyBeforePercent}% busy just before the run: these figures understate the server`;
        notes.push(note);
        console.error(`  ${backend}: ${note}`);
      }
      const sizeOf = (index: number) => Math.min(BATCH, ROWS - index * BATCH);
      const run = async (phase: Phase) => {
        const r = await runPhase(target, phase);
        results.push(r);
        report(r);
      };
      await run({ phase: 'contacts create', path: '/v1/contacts/bulk', bodies: work.create, rows: ROWS, check: expectCounts({ created: 1, updated: 0, rejected: 0 }, sizeOf) });
      await run({ phase: 'contacts update', path: '/v1/contacts/bulk', bodies: work.update, rows: ROWS, check: expectCounts({ created: 0, updated: 1, rejected: 0 }, sizeOf) });
      if (await hasEventsRoute(server)) {
        await run({ phase: 'events', path: '/v1/events/batch', bodies: work.events, rows: ROWS, check: expectCounts({ recorded: 1, duplicate: 0, rejected: 0 }, sizeOf) });
      } else {
        const note = 'events phase skipped: POST /v1/events/batch does not exist yet (404)';
        notes.push(note);
        console.error(`  ${backend}: ${note}`);
      }
    } finally {
      await server.stop();
    }
  } finally {
    process.off('SIGINT', cleanupOnSignal);
    await cleanup();
  }
  return { results, version, hostBusyBeforePercent: hostBusyBeforePercent ?? 0, notes };
}

function report(r: PhaseResult): void {
  console.error(`  ${r.backend} ${r.phase}: ${r.rowsPerSecond.toLocaleString('en-US')} rows/s${r.problems.length ? ` (${r.problems.length} problems)` : ''}`);
  for (const p of r.problems.slice(0, 5)) console.error(`    ${p}`);
}

function table(rows: PhaseResult[]): string {
  return markdownTable(
    ['phase', 'backend', 'rows', 'seconds', 'rows/s', 'median batch ms', 'p95 batch ms', 'CPU s server / postgres / client', 'host busy'],
    rows.map((r) => [r.phase, r.backend, r.rows, r.seconds, r.rowsPerSecond, r.medianBatchMs, r.p95BatchMs, `${r.cpuSeconds.server} / ${r.cpuSeconds.postgres ?? '–'} / ${r.cpuSeconds.client}`, `${r.hostCpuPercent}%`]),
  );
}

async function main(): Promise<void> {
  console.error(`preparing ${ROWS.toLocaleString('en-US')} contacts and events in batches of ${BATCH} (${CONCURRENCY} in flight)…`);
  const people = contacts(ROWS);
  const work: Workload = { create: batches(people, 'contacts'), update: batches(updates(people), 'contacts'), events: batches(events(ROWS, ROWS), 'events') };

  // Profiles are tens of MB each and belong to one investigation, not to the recorded results.
  const profileDir = args.profile ? mkdtempSync(join(tmpdir(), 'rapport-bench-profile-')) : undefined;
  if (profileDir) console.error(`server CPU profiles go to ${profileDir} (open them in Chrome DevTools or speedscope)`);

  const results: PhaseResult[] = [];
  const backends: Record<string, { version: string; hostBusyBeforePercent: number }> = {};
  const notes: string[] = [];
  for (const backend of BACKENDS) {
    console.error(`${backend}:`);
    const r = await benchBackend(backend, work, profileDir);
    results.push(...r.results);
    backends[backend] = { version: r.version, hostBusyBeforePercent: r.hostBusyBeforePercent };
    notes.push(...r.notes.map((n) => `${backend}: ${n}`));
  }

  const summary = {
    bench: 'ingest',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    options: { rows: ROWS, batch: BATCH, concurrency: CONCURRENCY },
    backends,
    results: results.map(({ problems, ...r }) => ({ ...r, problems: problems.length })),
    problems: results.flatMap((r) => r.problems.map((p) => `${r.backend} ${r.phase}: ${p}`)),
    notes,
  };
  finish('ingest', args.quick, summary, table(results));
}

await main();
