import pg from 'pg';
import { migrate } from '../src/store/migrate.js';
import { openPostgres } from '../src/store/postgres.js';
import { TEMPLATE_DB, TEST_DATABASE_URL } from './helpers/db.js';

/** On PostgreSQL, builds the migrated template database that every test database is cloned from. */
export default async function setup(): Promise<void> {
  if (!TEST_DATABASE_URL) return;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${TEMPLATE_DB} with (force)`);
    await admin.query(`create database ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${TEMPLATE_DB}`;
  const db = openPostgres({ connectionString: url.toString(), max: 1 });
  await migrate(db);
  await db.close();
}
