import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maintain } from '../src/store/pglite.js';

describe('PGlite maintenance (in place of autovacuum)', () => {
  let pg: PGlite;
  beforeAll(async () => {
    pg = await PGlite.create();
    await pg.exec('create table small (id int primary key); create table big (id int primary key, v text)');
  });
  afterAll(() => pg.close());

  const reltuples = async (t: string) => (await pg.query<{ n: number }>(`select reltuples::int as n from pg_class where relname = $1`, [t])).rows[0]!.n;

  it('vacuums and analyses a table that grew, leaves small and unchanged ones alone', async () => {
    await pg.exec(`insert into big select g, repeat('x', 100) from generate_series(1, 20000) g; insert into small values (1)`);
    expect(await reltuples('big')).toBeLessThanOrEqual(0);
    const seen = new Map<string, number>();
    expect(await maintain(pg, seen)).toEqual(['big']);
    expect(await reltuples('big')).toBe(20000);
    // Nothing changed since: nothing to do.
    expect(await maintain(pg, seen)).toEqual([]);
  });

  it('comes back to a table once updates have grown it by a fifth', async () => {
    const seen = new Map<string, number>();
    await maintain(pg, seen);
    await pg.exec(`update big set v = repeat('y', 100) where id <= 2000`);
    expect(await maintain(pg, seen)).toEqual([]);
    await pg.exec(`update big set v = repeat('z', 100) where id <= 8000`);
    expect(await maintain(pg, seen)).toEqual(['big']);
    const updated = await pg.query<{ n: number }>(`select count(*)::int as n from big where v like 'z%'`);
    expect(updated.rows[0]!.n).toBe(8000);
  });
});
