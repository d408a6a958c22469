import { fork } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.js';
import { loadMigrations, migrate, type Migration } from '../src/store/migrate.js';
import type { ChildMessage } from './fixtures/migrate-child.js';
import { emptyDb, freshDb, TEST_DATABASE_URL } from './helpers/db.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../src/store/migrations/', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/migrate-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Not idempotent on purpose: a second run inserts a second row, so "applied once" is counted rather than inferred.
const PROBE: Migration = { version: 9999, name: '9999_probe', sql: 'create table probe_runs (at timestamptz default now()); insert into probe_runs default values;', checksum: 'probe' };

const open: Db[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function track(db: Promise<Db>): Promise<Db> {
  const d = await db;
  open.push(d);
  return d;
}

/** A copy of the shipped migrations that a test may edit; loadMigrations wants the trailing slash. */
function migrationsCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rapport-migrations-'));
  dirs.push(dir);
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  return dir + '/';
}

const count = async (db: Db, sql: string) => Number((await db.query<{ n: number }>(`select count(*)::int as n from ${sql}`)).rows[0]!.n);

describe('migrate', () => {
  it('applies each migration once when several callers start at once', async () => {
    // On PostgreSQL every call runs its transactions on connections of its own from the pool,
    // so they race as separate sessions would; PGlite has one session and serialises them.
    const db = await track(emptyDb());
    const migrations = [...loadMigrations(), PROBE];
    const results = await Promise.all(Array.from({ length: 6 }, () => migrate(db, migrations)));
    expect(results.flat().sort()).toEqual(migrations.map((m) => m.name).sort());
    expect(await count(db, 'rapport_migrations')).toBe(migrations.length);
    expect(await count(db, 'probe_runs')).toBe(1);
  });

  it.runIf(TEST_DATABASE_URL)('applies each migration once when three processes start at once', async () => {
    const db = await track(emptyDb());
    const { rows } = await db.query<{ name: string }>('select current_database() as name');
    const url = new URL(TEST_DATABASE_URL!);
    url.pathname = `/${rows[0]!.name}`;

    // Real processes, not pools in this one: that is how Rapport is deployed (API and workers
    // starting together against one database), and it also proves the lock id is shared by
    // separately loaded copies of migrate.ts.
    const children = Array.from({ length: 3 }, () =>
      fork(CHILD, [url.toString()], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const next = (child: (typeof children)[number]) =>
      new Promise<ChildMessage>((resolve, reject) => {
        child.once('message', (m) => resolve(m as ChildMessage));
        child.once('exit', (code) => reject(new Error(`migrate child exited with ${code} before answering`)));
      });
    try {
      const ready = await Promise.all(children.map(next));
      expect(ready).toEqual(children.map(() => ({ ready: true })));
      const answers = children.map(next);
      for (const c of children) c.send('go');
      const results = await Promise.all(answers);
      expect(results.filter((r) => 'error' in r)).toEqual([]);
      const applied = results.flatMap((r) => ('applied' in r ? r.applied : []));
      expect(applied.sort()).toEqual(loadMigrations().map((m) => m.name).sort());
      expect(await count(db, 'rapport_migrations')).toBe(loadMigrations().length);
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill();
    }
  });

  it('refuses a migration edited after it was applied, and applies nothing after it', async () => {
    const db = await track(emptyDb());
    const dir = migrationsCopy();
    await migrate(db, loadMigrations(dir));

    const [first] = loadMigrations(dir);
    writeFileSync(`${dir}${first!.name}.sql`, first!.sql.replace('create table tenants', '-- a second thought\ncreate table tenants'));
    writeFileSync(`${dir}9998_later.sql`, 'create table later (id int);');

    await expect(migrate(db, loadMigrations(dir))).rejects.toThrow(`migration ${first!.name} was changed after it was applied; add a new migration instead`);
    expect(await count(db, "pg_tables where tablename = 'later'")).toBe(0);
    expect(await count(db, 'rapport_migrations')).toBe(loadMigrations().length);
  });

  it('leaves no trace of a migration that fails, and applies it once it is fixed', async () => {
    const db = await track(emptyDb());
    const dir = migrationsCopy();
    writeFileSync(`${dir}9998_broken.sql`, 'create table half_done (id int);\nselect 1 / 0;');
    await expect(migrate(db, loadMigrations(dir))).rejects.toThrow(/division by zero/);
    expect(await count(db, "pg_tables where tablename = 'half_done'")).toBe(0);
    expect(await count(db, 'rapport_migrations')).toBe(loadMigrations().length);

    writeFileSync(`${dir}9998_broken.sql`, 'create table half_done (id int);');
    expect(await migrate(db, loadMigrations(dir))).toEqual(['9998_broken']);
  });

  it('applies nothing to an up-to-date database', async () => {
    const db = await track(freshDb());
    const before = await db.query('select version, name, checksum, applied_at from rapport_migrations order by version');
    expect(await migrate(db)).toEqual([]);
    const after = await db.query('select version, name, checksum, applied_at from rapport_migrations order by version');
    expect(after.rows).toEqual(before.rows);
  });
});
