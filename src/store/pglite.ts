import { PGlite, type PGliteInterface } from '@electric-sql/pglite';
import type { Db, QueryResult, Tx } from './db.js';

/**
 * A Db on embedded PGlite. dataDir undefined keeps the database in memory (tests).
 * PGlite runs one statement at a time, so its transactions serialise every other caller.
 */
export async function openPglite(dataDir?: string): Promise<Db> {
  return pgliteDb(await PGlite.create(dataDir ? { dataDir } : {}));
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
