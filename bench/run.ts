/**
 * `npm run bench`: the ingest benchmark, then the engine benchmark, then the dispatch benchmark,
 * each in a process of its own so that one's heap and JIT state do not colour another's figures.
 *
 *   npm run bench -- [--quick] [--backend all|postgres|pglite] [--profile] [--only ingest|engine|dispatch]
 *                    [any option of a bench, passed to the ones that take it]
 *
 * `npm run bench:ingest`, `npm run bench:engine` and `npm run bench:dispatch` run one of them;
 * each documents its options.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BENCHES = {
  ingest: { file: 'ingest.ts', options: ['quick', 'rows', 'batch', 'concurrency', 'backend', 'profile'] },
  engine: { file: 'engine.ts', options: ['quick', 'contacts', 'processes', 'backend', 'phase', 'rate', 'seconds', 'profile'] },
  dispatch: { file: 'dispatch.ts', options: ['quick', 'messages', 'processes', 'backend', 'repeats'] },
} as const;
const FLAGS = new Set(['quick', 'profile']);

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean' },
    profile: { type: 'boolean' },
    ...Object.fromEntries(['rows', 'batch', 'concurrency', 'backend', 'contacts', 'processes', 'phase', 'rate', 'seconds', 'messages', 'repeats'].map((o) => [o, { type: 'string' as const }])),
  },
});
const only = values.only;
if (only !== undefined && !(only in BENCHES)) throw new Error(`--only is one of ${Object.keys(BENCHES).join(', ')}`);

let failed = false;
for (const [name, bench] of Object.entries(BENCHES)) {
  if (only && only !== name) continue;
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
