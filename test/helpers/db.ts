import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { pgliteDb } from '../../src/store/pglite.js';
import { openPostgres } from '../../src/store/postgres.js';

/**
 * Integration tests run on PGlite by default and on a PostgreSQL server when
 * RAPPORT_TEST_DATABASE_URL is set (CI sets it). Each call gives a fresh database.
 */
export const TEST_DATABASE_URL = process.env.RAPPORT_TEST_DATABASE_URL;
/** Per test run (set by the global setup), so runs on one server at the same time stay apart. */
export const TEMPLATE_DB = process.env.RAPPORT_TEST_TEMPLATE_DB ?? `rapport_test_template_${process.pid}`;

async function onServer(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(sql).finally(() => admin.end());
}

/** A new database on the test server, migrated (cloned from the template) unless `empty`. */
async function serverDatabase(empty: boolean): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error('a server database needs RAPPORT_TEST_DATABASE_URL');
  const name = `rapport_test_${randomBytes(6).toString('hex')}`;
  await onServer(`create database ${name}${empty ? '' : ` template ${TEMPLATE_DB}`}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => onServer(`drop database if exists ${name} with (force)`) };
}

async function serverDb(empty: boolean): Promise<Db> {
  const { url, drop } = await serverDatabase(empty);
  const db = openPostgres({ connectionString: url, max: 8 });
  return {
    ...db,
    async close() {
      await db.close();
      await drop();
    },
  };
}

let migratedPglite: Promise<PGlite> | undefined;

/** A fresh migrated database: a clone of a migrated PGlite, or a server database from the template. */
export async function freshDb(): Promise<Db> {
  if (TEST_DATABASE_URL) return serverDb(false);
  migratedPglite ??= (async () => {
    const base = await PGlite.create();
    await migrate(pgliteDb(base));
    return base;
  })();
  return pgliteDb(await (await migratedPglite).clone());
}

/** A fresh database with no migrations applied (for migration tests). */
export async function emptyDb(): Promise<Db> {
  if (TEST_DATABASE_URL) return serverDb(true);
  return pgliteDb(await PGlite.create());
}

/**
 * On PostgreSQL (RAPPORT_TEST_DATABASE_URL set), the URL of a fresh migrated database, for code
 * that opens its own connections (the CLI with DATABASE_URL); drop() removes it.
 */
export function freshDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  return serverDatabase(false);
}
