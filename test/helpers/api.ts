import { buildApp, type App, type AppDeps } from '../../src/api/app.js';
import { ManualClock } from '../../src/engine/clock.js';
import { createApiKey } from '../../src/store/apikeys.js';
import type { Db } from '../../src/store/db.js';
import { createTenant } from '../../src/store/tenants.js';
import { freshDb } from './db.js';

export interface TestTenant {
  id: string;
  key: string;
}

export interface TestApi {
  app: App;
  db: Db;
  clock: ManualClock;
  adminToken: string;
  /** Creates a tenant with an API key. */
  tenant(name?: string): Promise<TestTenant>;
  /** Sends a request as the given tenant; body is sent as JSON. */
  call(t: TestTenant | null, method: string, url: string, body?: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface TestApiOptions extends Pick<AppDeps, 'llm' | 'embeddings'> {
  /** The database to serve (the caller closes it); a fresh one, closed with the app, by default. */
  db?: Db;
  clock?: ManualClock;
}

/** The real API, on a fresh database unless given one, driven in-process through Fastify's inject. */
export async function testApi(opts: TestApiOptions = {}): Promise<TestApi> {
  const db = opts.db ?? (await freshDb());
  const clock = opts.clock ?? new ManualClock('2026-03-02T10:00:00Z');
  const adminToken = 'test-admin-token-0123456789';
  const app = await buildApp({ db, clock, adminToken, llm: opts.llm, embeddings: opts.embeddings });
  return {
    app,
    db,
    clock,
    adminToken,
    async tenant(name = 'Acme') {
      const t = await createTenant(db, { name });
      const k = await createApiKey(db, t.id, 'test', 'test');
      return { id: t.id, key: k.secret };
    },
    async call(t, method, url, body) {
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: { ...(t ? { authorization: `Bearer ${t.key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
      let parsed: unknown = res.body;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        /* not JSON */
      }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
    async close() {
      await app.close();
      if (!opts.db) await db.close();
    },
  };
}
