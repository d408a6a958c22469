/**
 * `npm run bench`: the benchmarks one after another, each in a process of its own so that one's
 * heap and JIT state do not colour another's figures, then one summary of the headline figures
 * of issue 5 (the sequence workload over HTTP and in the sandbox, per backend and worker
 * processes; trigger latency at each rate; the graphile-worker baseline and Rapport's ratios to
 * it; PGlite; the micro-figures; the pulse) as a table, and the same as the last line of stdout,
 * in JSON.
 *
 *   npm run bench -- [--quick] [--backend all|postgres|pglite] [--profile]
 *                    [--only engine,trigger,…] [any option of a bench, passed to those that take it]
 *
 * --quick runs each bench at its CI size and leaves out the ones marked below as not quick
 * (ingest, dispatch, segments: they run in the full run and with --only); it takes under two
 * minutes on a quiet 2-core machine. The baseline runs on PostgreSQL only, so `--backend pglite`
 * leaves it out. `npm run bench:<name>` runs one bench; each documents its options. Each bench
 * writes its own result file in bench/results/ and prints its summary as its last line of stdout,
 * which is where the figures here come from. Any bench that fails (a problem in its checks, or a
 * crash) makes the exit code 1.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commit, machine, markdownTable, round } from './lib.js';

interface Bench {
  file: string;
  options: readonly string[];
  /** Skipped with --backend pglite, and not given --backend. */
  postgresOnly?: boolean;
  /** Part of --quick (the others run with --only). */
  quick: boolean;
}

const BENCHES: Record<string, Bench> = {
  ingest: { file: 'ingest.ts', options: ['quick', 'rows', 'batch', 'concurrency', 'backend', 'profile'], quick: false },
  engine: { file: 'engine.ts', options: ['quick', 'contacts', 'processes', 'backend', 'provider', 'no-scheduler-only', 'profile'], quick: true },
  trigger: { file: 'trigger.ts', options: ['quick', 'rate', 'seconds', 'shape', 'workers', 'profile'], postgresOnly: true, quick: true },
  dispatch: { file: 'dispatch.ts', options: ['quick', 'messages', 'processes', 'backend', 'repeats'], quick: false },
  baseline: { file: 'baseline-graphile.ts', options: ['quick', 'jobs', 'contacts', 'noop-concurrency', 'steps-concurrency', 'local-queue', 'provider'], postgresOnly: true, quick: true },
  micro: { file: 'micro.ts', options: ['quick', 'rounds', 'round-ms'], quick: true },
  segments: { file: 'segments.ts', options: ['quick', 'contacts', 'batch', 'repeats'], postgresOnly: true, quick: false },
  pulse: { file: 'pulse.ts', options: ['quick', 'contacts', 'db'], quick: true },
};
const FLAGS = new Set(['quick', 'profile', 'no-scheduler-only']);
const STRINGS = [
  'rows',
  'batch',
  'concurrency',
  'backend',
  'contacts',
  'processes',
  'provider',
  'rate',
  'seconds',
  'shape',
  'workers',
  'messages',
  'repeats',
  'jobs',
  'noop-concurrency',
  'steps-concurrency',
  'local-queue',
  'rounds',
  'round-ms',
  'db',
];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    ...Object.fromEntries([...FLAGS].map((o) => [o, { type: 'boolean' as const }])),
    ...Object.fromEntries(STRINGS.map((o) => [o, { type: 'string' as const }])),
  },
});
const opts = values as Record<string, string | boolean | undefined>;
const only = typeof opts.only === 'string' ? opts.only.split(',') : undefined;
for (const name of only ?? []) if (!(name in BENCHES)) throw new Error(`--only is a comma-separated list of ${Object.keys(BENCHES).join(', ')}`);
// The pulse runs on one backend, named --db; --backend postgres or pglite chooses it too.
if (opts.db === undefined && (opts.backend === 'postgres' || opts.backend === 'pglite')) opts.db = opts.backend;

/** What a bench printed last on stdout: its summary. */
type Summary = Record<string, unknown>;

interface Ran {
  name: string;
  ok: boolean;
  seconds: number;
  summary?: Summary;
}

/** Runs one bench, passing its stdout through, and returns the JSON of its last line. */
function runBench(name: string, bench: Bench, argv: string[]): Promise<Ran> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(bench.file, import.meta.url)), ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (d: Buffer) => {
      process.stdout.write(d);
      tail = (tail + d.toString('utf8')).slice(-4_000_000);
    });
    child.on('close', (code) => {
      const last = tail.trimEnd().split('\n').at(-1) ?? '';
      let summary: Summary | undefined;
      try {
        summary = last.startsWith('{') ? (JSON.parse(last) as Summary) : undefined;
      } catch {
        summary = undefined;
      }
      resolve({ name, ok: code === 0 && summary !== undefined, seconds: round((performance.now() - started) / 1000, 1), summary });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The headline figures, read defensively: a bench may have run with other options or failed.

interface SequenceRow {
  backend: string;
  provider: string;
  processes: number;
  messagesPerSecond: number;
  cpuMicrosPerMessage?: number;
  peakMiB?: number;
  bytesPerMessage?: number;
}

interface TriggerRow {
  shape: string;
  workerProcesses: number;
  rate: number;
  posted: number;
  p50: number;
  p95: number;
  p99: number;
  cpuMsPerEvent?: number;
}

type Row = Record<string, unknown>;
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const rows = (s: Summary | undefined, key: string) => (Array.isArray(s?.[key]) ? (s[key] as Row[]) : []);

function sequence(s: Summary | undefined): SequenceRow[] {
  return rows(s, 'results')
    .filter((r) => r.mode === 'end-to-end')
    .map((r) => {
      const mem = r.memoryMiB as { peakPerProcess?: number[]; sampledMaxPerProcess?: number[] } | undefined;
      const peaks = mem?.peakPerProcess ?? mem?.sampledMaxPerProcess ?? [];
      return {
        backend: String(r.backend),
        provider: String(r.provider),
        processes: num(r.processes) ?? 1,
        messagesPerSecond: num(r.messagesPerSecond) ?? NaN,
        cpuMicrosPerMessage: num(r.cpuMicrosPerMessage),
        peakMiB: peaks.length ? Math.round(Math.max(...peaks)) : undefined,
        bytesPerMessage: num((r.databaseGrowth as Row | undefined)?.bytesPerMessage),
      };
    });
}

function trigger(s: Summary | undefined): TriggerRow[] {
  return rows(s, 'results').map((r) => {
    const p = (r.acceptedToProviderMs ?? {}) as Row;
    return {
      shape: String(r.shape),
      workerProcesses: num(r.workerProcesses) ?? 0,
      rate: num(r.targetPerSecond) ?? NaN,
      posted: num(r.postedPerSecond) ?? NaN,
      p50: num(p.p50) ?? NaN,
      p95: num(p.p95) ?? NaN,
      p99: num(p.p99) ?? NaN,
      cpuMsPerEvent: num(r.cpuMsPerEvent),
    };
  });
}

function baseline(s: Summary | undefined) {
  const best = (s?.best ?? {}) as { noop?: Row | null; steps?: Record<string, Row | null> };
  const steps = best.steps ?? {};
  return {
    noop: best.noop ? { jobsPerSecond: num(best.noop.jobsPerSecond), concurrency: num(best.noop.concurrency) } : undefined,
    sameWork: Object.fromEntries(
      Object.entries(steps).flatMap(([provider, r]) => (r ? [[provider, { messagesPerSecond: num(r.messagesPerSecond), concurrency: num(r.concurrency) }]] : [])),
    ) as Record<string, { messagesPerSecond?: number; concurrency?: number }>,
  };
}

function micro(s: Summary | undefined): { name: string; nsPerOp: number }[] {
  return rows(s, 'figures').map((f) => ({ name: String(f.name), nsPerOp: num(f.nsPerOp) ?? NaN }));
}

function pulse(s: Summary | undefined) {
  if (!s) return undefined;
  const rss = (s.rss_mib ?? {}) as Row;
  return {
    backend: s.backend,
    contacts: num(s.contacts),
    secondsToLastProviderCall: num(s.seconds_to_last_provider_call),
    recipientsPerSecond: num(s.recipients_per_second),
    rssMiB: { start: num(rss.start), max: num(rss.max), end: num(rss.end) },
  };
}

const shapeLabel = (t: TriggerRow) => (t.shape === 'split' ? `API + ${t.workerProcesses} worker process${t.workerProcesses === 1 ? '' : 'es'}` : 'one process');
const fmt = (x: number | undefined, digits = 0) => (x === undefined || !Number.isFinite(x) ? '–' : round(x, digits).toLocaleString('en-US'));

async function main(): Promise<void> {
  const started = performance.now();
  const ran: Ran[] = [];
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (only ? !only.includes(name) : opts.quick && !bench.quick) continue;
    if (!existsSync(fileURLToPath(new URL(bench.file, import.meta.url)))) {
      console.error(`\n== bench ${name} skipped: bench/${bench.file} does not exist`);
      continue;
    }
    if (bench.postgresOnly && opts.backend === 'pglite') {
      console.error(`\n== bench ${name} skipped: it runs on PostgreSQL only`);
      continue;
    }
    const argv = bench.options.flatMap((o) => {
      const v = opts[o];
      if (v === undefined || v === false) return [];
      return FLAGS.has(o) ? [`--${o}`] : [`--${o}`, String(v)];
    });
    console.error(`\n== bench ${name} ${argv.join(' ')}`);
    const r = await runBench(name, bench, argv);
    console.error(`== bench ${name}: ${r.ok ? 'done' : 'FAILED'} in ${r.seconds} s`);
    ran.push(r);
  }

  const of = (name: string) => ran.find((r) => r.name === name)?.summary;
  const seq = sequence(of('engine'));
  const trig = trigger(of('trigger'));
  const base = baseline(of('baseline'));
  const figures = micro(of('micro'));
  const pul = pulse(of('pulse'));

  // Rapport's headline: the sequence over HTTP on PostgreSQL, one worker process (the baseline
  // runs in one process too) and the best of the process counts.
  const httpPg = seq.filter((r) => r.backend === 'postgres' && r.provider === 'http').sort((a, b) => a.processes - b.processes);
  const onePg = httpPg[0];
  const bestPg = [...httpPg].sort((a, b) => b.messagesPerSecond - a.messagesPerSecond)[0];
  const same = base.sameWork.http?.messagesPerSecond;
  const noop = base.noop?.jobsPerSecond;
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? round(a / b, 2) : undefined);
  const ratios = {
    sameWork: { oneProcess: ratio(onePg?.messagesPerSecond, same), best: ratio(bestPg?.messagesPerSecond, same) },
    noop: { oneProcess: ratio(onePg?.messagesPerSecond, noop), best: ratio(bestPg?.messagesPerSecond, noop) },
  };
  const pgliteHttp = seq.find((r) => r.backend === 'pglite' && r.provider === 'http');
  const trigger500 = trig.filter((t) => t.rate === 500);

  const tables: string[] = [];
  if (seq.length) {
    const keys = [...new Map(seq.map((r) => [`${r.backend}|${r.processes}`, r])).values()];
    tables.push(
      markdownTable(
        ['sequence (SMS → wait 0 → e-mail)', 'worker processes', 'HTTP msg/s', 'sandbox msg/s', 'HTTP CPU µs per msg', 'peak MiB per process', 'DB bytes per msg'],
        keys.map((k) => {
          const http = seq.find((r) => r.backend === k.backend && r.processes === k.processes && r.provider === 'http');
          const sandbox = seq.find((r) => r.backend === k.backend && r.processes === k.processes && r.provider === 'sandbox');
          return [
            k.backend === 'postgres' ? 'PostgreSQL' : 'PGlite',
            k.processes,
            fmt(http?.messagesPerSecond),
            fmt(sandbox?.messagesPerSecond),
            fmt(http?.cpuMicrosPerMessage),
            fmt((http ?? sandbox)?.peakMiB),
            fmt((http ?? sandbox)?.bytesPerMessage),
          ];
        }),
      ),
    );
  }
  if (trig.length) {
    tables.push(
      markdownTable(
        ['trigger → provider (PostgreSQL)', 'events/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms per event'],
        trig.map((t) => [shapeLabel(t), fmt(t.posted), fmt(t.p50), fmt(t.p95), fmt(t.p99), fmt(t.cpuMsPerEvent, 2)]),
      ),
    );
  }
  if (base.noop || Object.keys(base.sameWork).length) {
    tables.push(
      markdownTable(
        ['graphile-worker baseline (1 process)', 'rate', 'Rapport ÷ it, 1 process', 'Rapport ÷ it, best'],
        [
          ...Object.entries(base.sameWork).map(([provider, r]) => [
            `same work, ${provider}, concurrency ${r.concurrency ?? '?'}`,
            `${fmt(r.messagesPerSecond)} msg/s`,
            provider === 'http' ? fmt(ratios.sameWork.oneProcess, 2) : '–',
            provider === 'http' ? fmt(ratios.sameWork.best, 2) : '–',
          ]),
          ...(base.noop ? [[`no-op jobs, concurrency ${base.noop.concurrency ?? '?'}`, `${fmt(noop)} jobs/s`, fmt(ratios.noop.oneProcess, 2), fmt(ratios.noop.best, 2)]] : []),
        ],
      ),
    );
  }
  if (figures.length) tables.push(markdownTable(['micro-figure', 'ns per operation'], figures.map((f) => [f.name, fmt(f.nsPerOp, f.nsPerOp < 100 ? 1 : 0)])));
  if (pul) {
    tables.push(
      markdownTable(
        ['pulse', 'contacts', 's to last provider call', 'recipients/s', 'RSS MiB start / max / end'],
        [[String(pul.backend), fmt(pul.contacts), fmt(pul.secondsToLastProviderCall, 1), fmt(pul.recipientsPerSecond), `${fmt(pul.rssMiB.start)} / ${fmt(pul.rssMiB.max)} / ${fmt(pul.rssMiB.end)}`]],
      ),
    );
  }
  const targets = [
    { target: 'sequence over HTTP, PostgreSQL: ≥ 10,000 msg/s', value: bestPg ? `${fmt(bestPg.messagesPerSecond)} (${bestPg.processes} process${bestPg.processes === 1 ? '' : 'es'})` : '–' },
    { target: 'Rapport ÷ graphile-worker same work: ≥ 3', value: fmt(ratios.sameWork.best, 2) },
    { target: "Rapport ÷ graphile-worker's no-op rate: ≥ 1", value: fmt(ratios.noop.best, 2) },
    { target: 'trigger → provider p99 at 500 events/s: < 250 ms', value: trigger500.length ? trigger500.map((t) => `${fmt(t.p99)} ms (${shapeLabel(t)})`).join(', ') : '–' },
    { target: 'PGlite sequence over HTTP: ≥ 2,000 msg/s', value: fmt(pgliteHttp?.messagesPerSecond) },
    { target: "pulse: Rapport's memory flat", value: pul ? `RSS ${fmt(pul.rssMiB.start)} → max ${fmt(pul.rssMiB.max)} MiB` : '–' },
  ];
  tables.push(markdownTable(['target (issue 5)', 'this run'], targets.map((t) => [t.target, t.value])));
  tables.push(markdownTable(['bench', 'result', 'seconds'], ran.map((r) => [r.name, r.ok ? 'ok' : 'FAILED', r.seconds])));

  const totalSeconds = round((performance.now() - started) / 1000, 1);
  const failed = ran.filter((r) => !r.ok).map((r) => r.name);
  console.log(`\n## Summary${opts.quick ? ' (--quick: CI sizes, not figures to quote)' : ''}\n\n${tables.join('\n\n')}\n\n${ran.length} benches in ${totalSeconds} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}\n`);
  console.log(
    JSON.stringify({
      bench: 'summary',
      date: new Date().toISOString(),
      ...machine(),
      commit: commit(),
      quick: opts.quick === true,
      benches: Object.fromEntries(ran.map((r) => [r.name, { ok: r.ok, seconds: r.seconds }])),
      sequence: seq,
      trigger: trig,
      baseline: base,
      rapportToBaseline: ratios,
      pgliteSequence: seq.filter((r) => r.backend === 'pglite'),
      micro: figures,
      pulse: pul ?? null,
      targets,
      totalSeconds,
      failed,
    }),
  );
  process.exitCode = failed.length ? 1 : 0;
}

await main();
