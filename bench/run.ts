/**
 * `npm run bench`: the ingest, engine and dispatch benchmarks, the graphile-worker baseline
 * and the micro-figures, in that order, each in a process of its own so that one's heap and JIT
 * state do not colour another's figures.
 *
 *   npm run bench -- [--quick] [--backend all|postgres|pglite] [--profile]
 *                    [--only ingest|engine|dispatch|baseline|micro]
 *                    [any option of a bench, passed to the ones that take it]
 *
 * The baseline runs on PostgreSQL only, so `--backend pglite` leaves it out. `npm run
 * bench:ingest`, `bench:engine`, `bench:dispatch`, `bench:baseline` and `bench:micro` run one of
 * them; each documents its options.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** `postgresOnly`: skipped when --backend pglite, and not given --backend. */
const BENCHES: Record<string, { file: string; options: readonly string[]; postgresOnly?: boolean }> = {
  ingest: { file: 'ingest.ts', options: ['quick', 'rows', 'batch', 'concurrency', 'backend', 'profile'] },
  engine: { file: 'engine.ts', options: ['quick', 'contacts', 'processes', 'backend', 'phase', 'rate', 'seconds', 'profile'] },
  dispatch: { file: 'dispatch.ts', options: ['quick', 'messages', 'processes', 'backend', 'repeats'] },
  baseline: { file: 'baseline-graphile.ts', options: ['quick', 'jobs', 'contacts', 'noop-concurrency', 'steps-concurrency', 'local-queue', 'provider'], postgresOnly: true },
  micro: { file: 'micro.ts', options: ['quick', 'rounds', 'round-ms'] },
  segments: { file: 'segments.ts', options: ['quick', 'contacts', 'batch', 'repeats'], postgresOnly: true },
};
const FLAGS = new Set(['quick', 'profile']);

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean' },
    profile: { type: 'boolean' },
    ...Object.fromEntries(
      [
        'rows',
        'batch',
        'concurrency',
        'backend',
        'contacts',
        'processes',
        'phase',
        'rate',
        'seconds',
        'messages',
        'repeats',
        'jobs',
        'noop-concurrency',
        'steps-concurrency',
        'local-queue',
        'provider',
        'rounds',
        'round-ms',
      ].map((o) => [o, { type: 'string' as const }]),
    ),
  },
});
const only = values.only;
if (only !== undefined && !(only in BENCHES)) throw new Error(`--only is one of ${Object.keys(BENCHES).join(', ')}`);

let failed = false;
for (const [name, bench] of Object.entries(BENCHES)) {
  if (only && only !== name) continue;
  if (bench.postgresOnly && (values as Record<string, unknown>).backend === 'pglite') {
    console.error(`\n== bench ${name} skipped: it runs on PostgreSQL only`);
    continue;
  }
  const argv = bench.options.flatMap((o) => {
    const v = (values as Record<string, string | boolean | undefined>)[o];
    if (v === undefined || v === false) return [];
    return FLAGS.has(o) ? [`--${o}`] : [`--${o}`, String(v)];
  });
  console.error(`\n== bench ${name} ${argv.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(bench.file, import.meta.url)), ...argv], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
