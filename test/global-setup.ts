import pg from 'pg';
import { migrate } from '../src/store/migrate.js';
import { openPostgres } from '../src/store/postgres.js';
import { TEST_DATABASE_URL } from './helpers/db.js';

const PREFIX = 'rapport_test_template_';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * On PostgreSQL, builds the migrated template database that every test database of this run is
 * cloned from. Its name carries this process's pid, so two runs on one server (two checkouts,
 * CI beside a developer) never drop each other's template; templates of runs that died are
 * dropped here.
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (!TEST_DATABASE_URL) return undefined;
  const template = `${PREFIX}${process.pid}`;
  process.env.RAPPORT_TEST_TEMPLATE_DB = template;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname like '${PREFIX}%'`);
    for (const { datname } of rows) {
      const pid = Number(datname.slice(PREFIX.length));
      if (datname === template || !alive(pid)) await admin.query(`drop database if exists ${datname} with (force)`);
    }
    await admin.query(`create database ${template}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${template}`;
  const db = openPostgres({ connectionString: url.toString(), max: 1 });
  await migrate(db);
  await db.close();
  return async () => {
    const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await c.connect();
    await c.query(`drop database if exists ${template} with (force)`).finally(() => c.end());
  };
}
