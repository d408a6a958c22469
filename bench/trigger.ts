/**
 * Trigger latency (issue 5, item 3): how long from the API accepting an event to the provider
 * receiving the message that the event's journey sends, with events arriving at a steady rate.
 * PostgreSQL only.
 *
 *   For each shape, a fresh database holds one contact per event to come (with consent on SMS),
 *   a journey entered on `signed_up` whose first node sends an SMS at once (Liquid reading two
 *   attributes), and the tenant's Twilio account pointed at bench/provider-fake.ts, a process of
 *   its own that notes when each SMS arrives, by its `To` number. Events are posted one per
 *   request to POST /v1/events in an open loop (the client never waits for an answer before the
 *   next is due) at each --rate for --seconds, each naming a new contact by contact_id.
 *
 *   shapes (--shape):
 *     split   the API server (bench/ingest-server.ts with RAPPORT_WORKERS=0) and `rapport worker`
 *             processes, how production runs: once per count in --workers (1 and 2)
 *     single  the API server with one in-process worker (RAPPORT_WORKERS=1), as `rapport start`
 *
 *   npm run bench:trigger -- [--quick] [--rate 500,2000] [--seconds 60] [--shape split,single]
 *                            [--workers 1,2] [--profile]
 *
 *   --quick: 2 s per rate, the API server and 2 worker processes only.
 *
 * Figures per rate: accepted → provider, the fake's arrival time minus events.received_at (the
 * server's stamp when it handled the request; both clocks are this machine's); due → provider,
 * the same from when the client was due to post, so a server that falls behind in accepting
 * shows there; accepted → queued (messages.created_at); and the POST's answer from when it was
 * due. CPU of the server, the workers and the PostgreSQL backends serving them, per event (the
 * fake's and the client's apart): on a shared machine compare those. --profile runs the server
 * and workers under --cpu-prof and prints their hottest functions.
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * databases rapport_bench_<random>_* there and drops them. Workers run the compiled CLI: dist/ is
 * rebuilt first when a source file is newer. Results go to bench/results/<date>-<host>-trigger.json
 * (-quick.json with --quick).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import type { Db } from '../src/store/db.js';
import { openPostgres } from '../src/store/postgres.js';
import { hottest } from './engine-profile.js';
import { addHttpAccounts, HTTP_SECRET_KEY, publish, seedContacts, sendAnyHour, SENDGRID, TWILIO } from './engine-workload.js';
import {
  backendCpu,
  backendDelta,
  BENCH_APP,
  BenchDatabases,
  BenchServer,
  commit,
  ensureBuilt,
  finish,
  hostBusyPercent,
  hostCpu,
  hostPercent,
  jsonPoster,
  machine,
  markdownTable,
  ownCpu,
  percentiles,
  ProviderFake,
  round,
  sleep,
  startWorkers,
  stopWorkers,
  waitFor,
  workersCpu,
  type JsonPoster,
  type Percentiles,
  type WorkerProcess,
} from './lib.js';

type Shape = 'split' | 'single';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rate: { type: 'string', default: '500,2000' },
    seconds: { type: 'string' },
    shape: { type: 'string' },
    workers: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
const RATES = args.rate.split(',').map(Number);
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 60));
const WORKERS = (args.workers ?? (args.quick ? '2' : '1,2')).split(',').map(Number);
const SHAPES = (args.shape ?? (args.quick ? 'split' : 'split,single')).split(',') as Shape[];
for (const [name, v] of Object.entries({ seconds: SECONDS, ...Object.fromEntries(RATES.map((r, i) => [`rate ${i + 1}`, r])), ...Object.fromEntries(WORKERS.map((w, i) => [`workers ${i + 1}`, w])) })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name.split(' ')[0]} must be a positive integer`);
}
for (const s of SHAPES) if (s !== 'split' && s !== 'single') throw new Error('--shape is a comma-separated list of split and single');
/** Each shape to run, with its worker processes (0: the worker is in the server). */
const RUNS = SHAPES.flatMap((shape): { shape: Shape; workers: number }[] => (shape === 'split' ? WORKERS.map((workers) => ({ shape, workers })) : [{ shape, workers: 0 }]));
const label = (r: { shape: Shape; workers: number }) => (r.shape === 'split' ? `API + ${r.workers} worker process${r.workers > 1 ? 'es' : ''}` : 'one process');

/** Events posted before the measured ones, one at a time: they warm the JIT, the pools and the caches. */
const WARM_UP = 200;
/** How long the last messages may take after the last event before the run counts as failed. */
const DRAIN_MS = 120_000;

const JOURNEY: JourneyDefinition = {
  name: 'Welcome',
  entry: { event: 'signed_up' },
  nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { body: 'Welcome {{ contact.first_name }}, your {{ contact.plan }} plan is ready' } }],
};

interface RateResult {
  shape: Shape;
  /** Worker processes beside the server (split), or 0 with the worker in the server (single). */
  workerProcesses: number;
  targetPerSecond: number;
  events: number;
  /** Events the client started per second. */
  postedPerSecond: number;
  /** events.received_at → the fake received the SMS. */
  acceptedToProviderMs: Percentiles;
  /** When the client was due to post → the fake received the SMS. */
  dueToProviderMs: Percentiles;
  /** events.received_at → messages.created_at: the journey's first step has queued the SMS. */
  acceptedToQueuedMs: Percentiles;
  /** When the client was due to post → the answer of POST /v1/events. */
  answeredMs: Percentiles;
  /**
   * Events per transaction: of the API (rows of events written together), of the scheduler (its
   * batches that took these enrollments) and of the dispatcher (its batches recording the sends).
   * Rows written by one transaction carry its id in xmin.
   */
  eventsPerTransaction: { api: number; scheduler: number; dispatcher: number };
  cpuSeconds: { server: number; workers?: number; postgres?: number; fake: number; client: number };
  /** Server, workers and PostgreSQL per event, in ms of CPU. */
  cpuMsPerEvent?: number;
  hostCpuPercent: number;
  problems: string[];
}

interface Posted {
  contactId: string;
  phone: string;
  /** Epoch ms when the client was due to post it. */
  due: number;
  answered?: number;
  eventId?: string;
  problem?: string;
}

const epoch = () => performance.timeOrigin + performance.now();

/** Posts one event per contact at `rate` per second, in an open loop; resolves when every answer is in. */
async function postAtRate(client: JsonPoster, contacts: { id: string; phone: string }[], rate: number): Promise<{ posted: Posted[]; seconds: number }> {
  const posted: Posted[] = [];
  const answers: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < contacts.length; i++) {
    const dueAt = start + (i * 1000) / rate;
    const wait = dueAt - performance.now();
    if (wait > 1) await sleep(wait);
    const p: Posted = { contactId: contacts[i]!.id, phone: contacts[i]!.phone, due: performance.timeOrigin + dueAt };
    posted.push(p);
    answers.push(
      client.post('/v1/events', JSON.stringify({ name: 'signed_up', contact_id: p.contactId, properties: { source: 'bench' } })).then(
        (r) => {
          p.answered = epoch();
          if (r.status === 202) p.eventId = (JSON.parse(r.text) as { id: string }).id;
          else p.problem = `HTTP ${r.status}: ${r.text.slice(0, 200)}`;
        },
        (err: Error) => {
          p.answered = epoch();
          p.problem = err.message;
        },
      ),
    );
  }
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(answers);
  return { posted, seconds };
}

/** Nothing left to do: no enrollment due and no message queued or being sent. */
async function idle(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ busy: boolean }>('select exists (select 1 from enrollments where due_at is not null) or exists (select 1 from messages where due_at is not null) as busy');
  return !rows[0]!.busy;
}

interface Setup {
  dbs: BenchDatabases;
  name: string;
  db: Db;
  server: BenchServer;
  workers: WorkerProcess[];
  fake: ProviderFake;
  client: JsonPoster;
}

async function measureRate(s: Setup, shape: Shape, rate: number, contacts: { id: string; phone: string }[]): Promise<RateResult> {
  console.error(`  ${label({ shape, workers: s.workers.length })}: posting ${contacts.length.toLocaleString('en-US')} events at ${rate}/s…`);
  await s.fake.reset();
  const since = new Date();
  const cpu0 = { server: await s.server.cpuSeconds(), workers: workersCpu(s.workers), pg: await backendCpu(s.dbs.admin, s.name), client: process.cpuUsage(), host: hostCpu() };
  const { posted, seconds } = await postAtRate(s.client, contacts, rate);
  const drained = await waitFor(() => idle(s.db), DRAIN_MS);
  const cpu1 = { server: await s.server.cpuSeconds(), workers: workersCpu(s.workers), pg: await backendCpu(s.dbs.admin, s.name) };
  const host = hostPercent(cpu0.host, hostCpu());
  const client = ownCpu(cpu0.client);
  const report = await s.fake.report();

  const problems = posted.flatMap((p) => (p.problem ? [p.problem] : [])).slice(0, 10);
  if (!drained) problems.push(`messages still queued ${DRAIN_MS / 1000} s after the last event`);
  const arrived = new Map(report.received);
  if (report.duplicates) problems.push(`the fake received ${report.duplicates} SMS twice`);
  if (Object.keys(report.refused).length) problems.push(`the fake refused requests: ${JSON.stringify(report.refused)}`);

  const ids = posted.flatMap((p) => (p.eventId ? [p.eventId] : []));
  const { rows } = await s.db.query<{ contact_id: string; received: number; queued: number | null }>(
    `select e.contact_id, extract(epoch from e.received_at) * 1000 as received, extract(epoch from m.created_at) * 1000 as queued
       from events e left join messages m on m.contact_id = e.contact_id
      where e.id = any($1::uuid[])`,
    [ids],
  );
  const byContact = new Map(rows.map((r) => [r.contact_id, { received: Number(r.received), queued: r.queued === null ? null : Number(r.queued) }]));
  if (rows.length !== ids.length) problems.push(`${rows.length} events and messages found for ${ids.length} events accepted`);
  const acceptedToProvider: number[] = [];
  const dueToProvider: number[] = [];
  const acceptedToQueued: number[] = [];
  let missing = 0;
  for (const p of posted) {
    const e = byContact.get(p.contactId);
    const at = arrived.get(p.phone);
    if (!e || at === undefined) {
      missing++;
      continue;
    }
    acceptedToProvider.push(at - e.received);
    dueToProvider.push(at - p.due);
    if (e.queued !== null) acceptedToQueued.push(e.queued - e.received);
  }
  if (missing) problems.push(`${missing} of ${posted.length} events have no SMS at the fake`);
  if (report.received.length !== posted.length) problems.push(`the fake received ${report.received.length} SMS for ${posted.length} events`);

  const { rows: tx } = await s.db.query<{ api: number; scheduler: number; dispatcher: number }>(
    `select (select count(distinct xmin::text) from events where id = any($1::uuid[]))::int as api,
            (select count(distinct xmin::text) from enrollment_steps where at >= $2)::int as scheduler,
            (select count(distinct xmin::text) from message_status where status = 'sent' and at >= $2)::int as dispatcher`,
    [ids, since],
  );
  const perTx = (n: number) => round(posted.length / Math.max(1, n), 1);
  const workers = s.workers.length ? round(cpu1.workers - cpu0.workers, 2) : undefined;
  const postgres = backendDelta(cpu0.pg, cpu1.pg);
  const serverCpu = round(cpu1.server - cpu0.server, 2);
  const total = serverCpu + (workers ?? 0) + (postgres ?? NaN);
  const r: RateResult = {
    shape,
    workerProcesses: s.workers.length,
    targetPerSecond: rate,
    events: posted.length,
    postedPerSecond: Math.round(posted.length / seconds),
    acceptedToProviderMs: percentiles(acceptedToProvider),
    dueToProviderMs: percentiles(dueToProvider),
    acceptedToQueuedMs: percentiles(acceptedToQueued),
    answeredMs: percentiles(posted.map((p) => p.answered! - p.due)),
    eventsPerTransaction: { api: perTx(tx[0]!.api), scheduler: perTx(tx[0]!.scheduler), dispatcher: perTx(tx[0]!.dispatcher) },
    cpuSeconds: {
      server: serverCpu,
      ...(workers !== undefined ? { workers } : {}),
      ...(postgres !== undefined ? { postgres: round(postgres, 2) } : {}),
      fake: round(report.cpuSeconds, 2),
      client,
    },
    ...(Number.isFinite(total) ? { cpuMsPerEvent: round((total * 1000) / posted.length, 2) } : {}),
    hostCpuPercent: host,
    problems,
  };
  const a = r.acceptedToProviderMs;
  const t = r.eventsPerTransaction;
  console.error(
    `    accepted → provider p50 ${a.p50} / p95 ${a.p95} / p99 ${a.p99} ms, ${r.cpuMsPerEvent ?? '–'} ms CPU per event, events per transaction ${t.api} / ${t.scheduler} / ${t.dispatcher}${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`,
  );
  return r;
}

async function runShape(dbs: BenchDatabases, fake: ProviderFake, run: { shape: Shape; workers: number }, profileDir: string | undefined, notes: string[]): Promise<RateResult[]> {
  const { shape } = run;
  const tag = `${shape}${run.workers || ''}`;
  const name = await dbs.create(`trigger_${tag}`);
  const serverDir = profileDir ? mkdtempSync(join(profileDir, `${tag}-server-`)) : undefined;
  const workersDir = profileDir && run.workers ? mkdtempSync(join(profileDir, `${tag}-workers-`)) : undefined;
  const env = { RAPPORT_SECRET_KEY: HTTP_SECRET_KEY };
  let server: BenchServer | undefined;
  let workers: WorkerProcess[] = [];
  let client: JsonPoster | undefined;
  const db = openPostgres({ connectionString: dbs.url(name, BENCH_APP), max: 2 });
  try {
    server = await BenchServer.start({ ...env, DATABASE_URL: dbs.url(name), RAPPORT_WORKERS: shape === 'single' ? '1' : '0' }, serverDir);
    const tenant = (await db.query<{ id: string }>('select id from tenants')).rows[0]!.id;
    await sendAnyHour(db, tenant);
    const total = RATES.reduce((n, r) => n + r * SECONDS, 0);
    const ids = await seedContacts(db, tenant, WARM_UP + total);
    const { rows: phones } = await db.query<{ id: string; phone: string }>('select id, phone from contacts where id = any($1::uuid[])', [ids]);
    const phoneOf = new Map(phones.map((r) => [r.id, r.phone]));
    const contacts = ids.map((id) => ({ id, phone: phoneOf.get(id)! }));
    await publish(db, tenant, JOURNEY);
    await addHttpAccounts(db, tenant, fake.url, ['sms']);
    await db.query('vacuum analyze');
    if (run.workers) workers = await startWorkers(run.workers, dbs.url(name), { env, profileDir: workersDir });
    client = jsonPoster(server.url, server.apiKey);
    const setup: Setup = { dbs, name, db, server, workers, fake, client };

    for (const c of contacts.splice(0, WARM_UP)) await client.post('/v1/events', JSON.stringify({ name: 'signed_up', contact_id: c.id }));
    if (!(await waitFor(() => idle(db), 30_000))) notes.push(`${label(run)}: the warm-up events were not all sent within 30 s`);

    const results: RateResult[] = [];
    for (const rate of RATES) results.push(await measureRate(setup, shape, rate, contacts.splice(0, rate * SECONDS)));
    return results;
  } finally {
    client?.close();
    await stopWorkers(workers);
    await server?.stop();
    await db.close();
    await dbs.drop(name);
    if (serverDir) notes.push(`${label(run)}, hottest functions of the API server${shape === 'single' ? ' and its worker' : ''}:\n${hottest(serverDir, 15)}`);
    if (workersDir) notes.push(`${label(run)}, hottest functions of the worker processes:\n${hottest(workersDir, 15)}`);
  }
}

const trio = (p: Percentiles) => `${Math.round(p.p50)} / ${Math.round(p.p95)} / ${Math.round(p.p99)}`;

function table(results: RateResult[]): string {
  return markdownTable(
    [
      'shape',
      'events/s',
      'accepted → provider p50 / p95 / p99 ms',
      'max ms',
      'due → provider p50 / p95 / p99 ms',
      'accepted → queued p50 / p99 ms',
      'POST answered p50 / p99 ms',
      'events per tx API / scheduler / dispatcher',
      'CPU s server / workers / postgres',
      'CPU ms per event',
      'host busy',
    ],
    results.map((r) => [
      label({ shape: r.shape, workers: r.workerProcesses }),
      r.postedPerSecond,
      trio(r.acceptedToProviderMs),
      Math.round(r.acceptedToProviderMs.max),
      trio(r.dueToProviderMs),
      `${Math.round(r.acceptedToQueuedMs.p50)} / ${Math.round(r.acceptedToQueuedMs.p99)}`,
      `${Math.round(r.answeredMs.p50)} / ${Math.round(r.answeredMs.p99)}`,
      `${r.eventsPerTransaction.api} / ${r.eventsPerTransaction.scheduler} / ${r.eventsPerTransaction.dispatcher}`,
      `${r.cpuSeconds.server} / ${r.cpuSeconds.workers ?? '–'} / ${r.cpuSeconds.postgres ?? '–'}`,
      r.cpuMsPerEvent ?? '–',
      `${r.hostCpuPercent}%`,
    ]),
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  const hostBusyBeforePercent = await hostBusyPercent(args.quick ? 500 : 2000);
  const profileDir = args.profile ? mkdtempSync(join(tmpdir(), 'rapport-bench-trigger-profile-')) : undefined;
  if (profileDir) console.error(`CPU profiles go to ${profileDir} (open them in Chrome DevTools or speedscope)`);
  if (SHAPES.includes('split')) ensureBuilt();
  const notes: string[] = [];
  const results: RateResult[] = [];
  const dbs = await BenchDatabases.open();
  const fake = await ProviderFake.start(TWILIO, SENDGRID);
  try {
    for (const run of RUNS) {
      console.error(`${label(run)}:`);
      results.push(...(await runShape(dbs, fake, run, profileDir, notes)));
    }
  } finally {
    await fake.stop();
    await dbs.close();
  }

  const summary = {
    bench: 'trigger',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    hostBusyBeforePercent,
    options: { rates: RATES, seconds: SECONDS, shapes: SHAPES, workers: WORKERS, warmUp: WARM_UP, journey: 'signed_up → SMS through the Twilio adapter to bench/provider-fake.ts' },
    versions: { postgres: dbs.version },
    results: results.map((r) => ({ ...r, problems: r.problems.length })),
    problems: results.flatMap((r) => r.problems.map((p) => `${label({ shape: r.shape, workers: r.workerProcesses })}, ${r.targetPerSecond}/s: ${p}`)),
    notes,
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  finish('trigger', args.quick, summary, table(results));
}

await main();
