/**
 * Knowledge search on one tenant with 10,000 chunks (1,000 documents of ten chunks), 1,536-dimension
 * vectors, on PGlite and PostgreSQL: the time of a full-text query, a misspelt one (trigram
 * corrections) and a hybrid one (sketch pass over every chunk, exact rerank of 200), median of
 * seven runs after a warm-up.
 *
 *   npx tsx bench/knowledge.ts [--backend all|postgres|pglite] [--docs 1000] [--dims 1536]
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * a database rapport_bench_knowledge_<random> there with pg_trgm and drops it.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { normalise, type EmbeddingsClient } from '../src/core/embeddings.js';
import type { Db } from '../src/store/db.js';
import { searchKnowledge } from '../src/store/knowledge-search.js';
import { createKnowledgeItem } from '../src/store/knowledge.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { createTenant } from '../src/store/tenants.js';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'all' }, docs: { type: 'string', default: '1000' }, dims: { type: 'string', default: '1536' } } });
const DOCS = Number(args.docs);
const DIMS = Number(args.dims);

let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
};
const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'qua', 'bri', 'den', 'for', 'gal', 'hum', 'jor'];
const vocabulary = Array.from({ length: 20_000 }, () => Array.from({ length: 2 + Math.floor(rand() * 3) }, () => syllables[Math.floor(rand() * syllables.length)]).join(''));
const sentence = () => Array.from({ length: 12 }, () => vocabulary[Math.floor(rand() * vocabulary.length)]).join(' ') + '.';
// ten paragraphs of about a thousand characters: ten chunks
const documentBody = () => Array.from({ length: 10 }, () => Array.from({ length: 9 }, sentence).join(' ')).join('\n\n');

const randomVectors: EmbeddingsClient = {
  space: `bench:${DIMS}`,
  embed: async (texts) => texts.map(() => normalise(Array.from({ length: DIMS }, () => rand() - 0.5))),
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await fn();
    runs.push(performance.now() - t);
  }
  return runs.sort((a, b) => a - b)[3]!;
}

async function run(name: string, db: Db): Promise<void> {
  await migrate(db);
  const tenant = await createTenant(db, { name: 'bench' });
  const began = performance.now();
  for (let i = 0; i < DOCS; i++) {
    await createKnowledgeItem(db, tenant.id, { kind: 'document', title: `Document ${i} ${sentence()}`, body: documentBody() }, { actor: 'bench', now: new Date(), embeddings: randomVectors });
  }
  const loadS = (performance.now() - began) / 1000;
  await db.exec('vacuum analyze');
  const { rows } = await db.query<{ chunks: number; terms: number }>(
    'select (select count(*)::int from knowledge_chunks) as chunks, (select count(*)::int from knowledge_terms) as terms',
  );
  const word = vocabulary[123]!;
  const misspelt = word.slice(0, -2) + word.slice(-1) + word.slice(-2, -1);
  const base = { validAt: new Date(), limit: 10 };
  const text = await timed(() => searchKnowledge(db, tenant.id, { ...base, query: `${word} ${vocabulary[456]}` }));
  const fuzzy = await timed(() => searchKnowledge(db, tenant.id, { ...base, query: misspelt }));
  const hybrid = await timed(() => searchKnowledge(db, tenant.id, { ...base, query: `${word} ${vocabulary[456]}`, embeddings: randomVectors }));
  console.log(
    `${name}: ${rows[0]!.chunks} chunks, ${rows[0]!.terms} terms, loaded in ${loadS.toFixed(1)} s; ` +
      `search median: text ${text.toFixed(0)} ms, misspelt ${fuzzy.toFixed(0)} ms, hybrid ${hybrid.toFixed(0)} ms (${DIMS} dims)`,
  );
}

if (args.backend !== 'postgres') {
  const db = await openPglite(undefined, { maintenanceMs: 0 });
  await run('pglite', db).finally(() => db.close());
}
if (args.backend !== 'pglite') {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  const name = `rapport_bench_knowledge_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`create database ${name}`);
  url.pathname = `/${name}`;
  const db = openPostgres({ connectionString: url.toString(), max: 2 });
  try {
    await db.query('create extension if not exists pg_trgm');
    await run('postgres', db);
  } finally {
    await db.close();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}
