import type { Db } from './db.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';

export type StoreTarget = { kind: 'postgres'; url: string; poolSize?: number } | { kind: 'pglite'; dataDir?: string };

/** Opens the database a configuration points at. */
export async function openDb(target: StoreTarget): Promise<Db> {
  if (target.kind === 'postgres') return openPostgres({ connectionString: target.url, max: target.poolSize });
  return openPglite(target.dataDir);
}
