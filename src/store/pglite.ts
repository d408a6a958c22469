import { PGlite, type PGliteInterface } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import type { Db, QueryResult, Tx } from './db.js';

/**
 * A Db on embedded PGlite. dataDir undefined keeps the database in memory (tests).
 * PGlite runs one statement at a time, so its transactions serialise every other caller.
 */
export async function openPglite(dataDir?: string, opts: { maintenanceMs?: number } = {}): Promise<Db> {
  const pg = await PGlite.create({ ...(dataDir ? { dataDir } : {}), extensions: PGLITE_EXTENSIONS });
  // Knowledge search corrects misspelt words with pg_trgm when the database has it (see
  // store/knowledge.ts); the embedded database always can, so it always does.
  await pg.exec('create extension if not exists pg_trgm');
  // The pages are in memory or the OS cache: an index probe costs little more than a sequential
  // read, and with the default (4.0) the planner hashes whole tables to join a batch of 500 ids.
  await pg.exec('set random_page_cost = 1.1');
  const db = pgliteDb(pg);
  const every = opts.maintenanceMs ?? MAINTENANCE_MS;
  if (every <= 0) return db;
  const seen = new Map<string, number>();
  let running = false;
  const timer = setInterval(() => {
    if (running || pg.closed) return;
    running = true;
    maintain(pg, seen)
      .catch(() => undefined)
      .finally(() => (running = false));
  }, every);
  timer.unref();
  const close = db.close;
  return {
    ...db,
    close: async () => {
      clearInterval(timer);
      await close();
    },
  };
}

/** The contrib extensions the embedded database loads; each is a small bundle unpacked at start. */
export const PGLITE_EXTENSIONS = { pg_trgm };

const MAINTENANCE_MS = 60_000;
const PAGE = 8192;

/**
 * PGlite runs no autovacuum: without this, planner statistics stay those of an empty database
 * (so a batch's joins hash whole tables) and the dead rows of updated messages never go. A table
 * that grew by a fifth (and 64 pages) since it was last seen is vacuumed and analysed; growth is
 * what inserts and updates leave behind, and the size is cheap to read, unlike PGlite's
 * statistics views, which it never fills.
 */
export async function maintain(pg: Pick<PGliteInterface, 'query' | 'exec'>, seen: Map<string, number>): Promise<string[]> {
  const { rows } = await pg.query<{ name: string; pages: number }>(
    `select quote_ident(c.relname) as name, (pg_relation_size(c.oid) / ${PAGE})::int as pages
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname = current_schema()`,
  );
  const done: string[] = [];
  for (const { name, pages } of rows) {
    const last = seen.get(name) ?? 0;
    if (pages <= last * 1.2 + 64) continue;
    await pg.exec(`vacuum analyze ${name}`);
    const { rows: after } = await pg.query<{ pages: number }>(`select (pg_relation_size('${name.replace(/'/g, "''")}') / ${PAGE})::int as pages`);
    seen.set(name, after[0]?.pages ?? pages);
    done.push(name);
  }
  return done;
}

/** Wraps an open PGlite instance as a Db; closing the Db closes the instance. */
export function pgliteDb(pg: PGliteInterface): Db {

  const run = async <T>(q: Pick<PGliteInterface, 'query'>, text: string, params?: readonly unknown[]): Promise<QueryResult<T>> => {
    const res = await q.query<T>(text, params as unknown[] | undefined);
    return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
  };

  return {
    kind: 'pglite',
    query: (text, params) => run(pg, text, params),
    transaction: (fn) =>
      pg.transaction(async (t) => {
        const tx: Tx = {
          query: (text, params) => run(t, text, params),
          exec: async (sql) => {
            await t.exec(sql);
          },
        };
        return fn(tx);
      }),
    async exec(sql) {
      await pg.exec(sql);
    },
    async listen(channel, onNotify) {
      const stop = await pg.listen(channel, () => onNotify());
      return async () => {
        if (!pg.closed) await stop();
      };
    },
    close: () => pg.close(),
  };
}
