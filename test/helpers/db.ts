import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { pgliteDb } from '../../src/store/pglite.js';
import { openPostgres } from '../../src/store/postgres.js';

/**
 * Integration tests run on PGlite by default and on a PostgreSQL server when
 * RAPPORT_TEST_DATABASE_URL is set (CI sets it). Each call gives a fresh, migrated database.
 */
export const TEST_DATABASE_URL = process.env.RAPPORT_TEST_DATABASE_URL;
export const TEMPLATE_DB = 'rapport_test_template';

let migratedPglite: Promise<PGlite> | undefined;

/** A fresh migrated database: a clone of a migrated PGlite, or a server database from the template. */
export async function freshDb(): Promise<Db> {
  if (TEST_DATABASE_URL) {
    const name = `rapport_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      await admin.query(`create database ${name} template ${TEMPLATE_DB}`);
    } finally {
      await admin.end();
    }
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    const db = openPostgres({ connectionString: url.toString(), max: 8 });
    return {
      ...db,
      async close() {
        await db.close();
        const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`).finally(() => c.end());
      },
    };
  }
  migratedPglite ??= (async () => {
    const base = await PGlite.create();
    await migrate(pgliteDb(base));
    return base;
  })();
  return pgliteDb(await (await migratedPglite).clone());
}

/** A fresh database with no migrations applied (for migration tests). */
export async function emptyDb(): Promise<Db> {
  if (TEST_DATABASE_URL) {
    const name = `rapport_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${name}`).finally(() => admin.end());
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    const db = openPostgres({ connectionString: url.toString(), max: 8 });
    return {
      ...db,
      async close() {
        await db.close();
        const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`).finally(() => c.end());
      },
    };
  }
  return pgliteDb(await PGlite.create());
}

/**
 * On PostgreSQL (RAPPORT_TEST_DATABASE_URL set), the URL of a fresh migrated database, for code
 * that opens its own connections (the CLI with DATABASE_URL); drop() removes it.
 */
export async function freshDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error('freshDatabaseUrl needs RAPPORT_TEST_DATABASE_URL');
  const name = `rapport_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${name} template ${TEMPLATE_DB}`).finally(() => admin.end());
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`).finally(() => c.end());
    },
  };
}
