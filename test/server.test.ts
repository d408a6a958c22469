import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { DataDirInUseError, readLock } from '../src/store/datadir-lock.js';
import { startServer } from '../src/server.js';
import { freshDatabaseUrl, TEST_DATABASE_URL } from './helpers/db.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rapport-server-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const quiet = pino({ enabled: false });
const configFor = (dataDir: string) => loadConfig({ PORT: '0', RAPPORT_DATA_DIR: dataDir });

describe('embedded server', () => {
  it('starts on a new folder, creates the first tenant once, and owns the folder while running', async () => {
    const dir = tempDir();
    const first = await startServer(configFor(dir), { logger: quiet });
    try {
      expect(first.firstTenant?.apiKey).toMatch(/^rpk_/);
      const health = await fetch(`${first.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok', database: 'pglite' });
      const me = await fetch(`${first.url}/v1/tenant`, { headers: { authorization: `Bearer ${first.firstTenant!.apiKey}` } });
      expect(((await me.json()) as any).id).toBe(first.firstTenant!.id);

      expect(readLock(dir)).toMatchObject({ pid: process.pid, url: first.url });
      await expect(startServer(configFor(dir), { logger: quiet })).rejects.toBeInstanceOf(DataDirInUseError);
    } finally {
      await first.close();
    }
    const again = await startServer(configFor(dir), { logger: quiet });
    try {
      expect(again.firstTenant).toBeUndefined();
    } finally {
      await again.close();
    }
  });

  it('takes over a lock left by a process that died', async () => {
    const dir = tempDir();
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(join(dir, 'rapport.lock'), JSON.stringify({ pid: dead.pid, startedAt: new Date().toISOString() }));
    const s = await startServer(configFor(dir), { logger: quiet });
    await s.close();
  });

  it('`rapport start` prints the URL, the docs URL and the first API key', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['bin/rapport.js', 'start'], { env: { ...process.env, PORT: '0', RAPPORT_DATA_DIR: dir, LOG_LEVEL: 'warn' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await expect.poll(() => out, { timeout: 30_000, interval: 100 }).toMatch(/API docs: +http:\/\/\S+\/docs/);
      const url = /running at (http:\/\/\S+)/.exec(out)![1]!;
      const key = /rpk_[\w-]+/.exec(out)![0];
      const res = await fetch(`${url}/v1/contacts`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      const docs = await fetch(`${url}/docs/`);
      expect(docs.status).toBe(200);
      const openapi = (await (await fetch(`${url}/openapi.json`)).json()) as any;
      expect(Object.keys(openapi.paths)).toContain('/v1/contacts/bulk');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
    expect(readLock(dir)).toBeUndefined();
  });

  it.runIf(TEST_DATABASE_URL)('runs the same on PostgreSQL: two servers starting together create one first tenant', async () => {
    const { url, drop } = await freshDatabaseUrl();
    try {
      const config = loadConfig({ PORT: '0', DATABASE_URL: url });
      const servers = await Promise.all([startServer(config, { logger: quiet }), startServer(config, { logger: quiet })]);
      try {
        expect(servers.filter((s) => s.firstTenant)).toHaveLength(1);
        for (const s of servers) {
          const health = await fetch(`${s.url}/health`);
          expect(await health.json()).toEqual({ status: 'ok', database: 'postgres' });
        }
        const key = servers.find((s) => s.firstTenant)!.firstTenant!.apiKey;
        // Either process answers for the tenant the other created: nothing lives in process memory.
        for (const s of servers) expect((await fetch(`${s.url}/v1/tenant`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      } finally {
        await Promise.all(servers.map((s) => s.close()));
      }
    } finally {
      await drop();
    }
  });
});
