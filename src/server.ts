import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { buildApp, type App } from './api/app.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './engine/clock.js';
import { deliveryFor } from './channels/delivery.js';
import type { ProviderRegistry } from './engine/providers.js';
import { embeddingsFromEnv } from './engine/embeddings-http.js';
import { llmFromEnv } from './engine/llm-client.js';
import { Worker } from './engine/worker.js';
import type { Db } from './store/db.js';
import { lockDataDir, type DataDirLock } from './store/datadir-lock.js';
import { migrate } from './store/migrate.js';
import { openDb } from './store/open.js';
import { secretBox } from './store/secret-key.js';
import { createTenantWithKey } from './store/tenants.js';

export interface RunningServer {
  app: App;
  db: Db;
  workers: Worker[];
  url: string;
  /** Set when this start created the first tenant: the only time its key is shown. */
  firstTenant?: { id: string; name: string; apiKey: string };
  close(): Promise<void>;
}

/** Opens the store (taking the embedded data folder), migrates and returns it. */
export async function openStore(config: Config, logger?: Logger): Promise<{ db: Db; lock?: DataDirLock; localAdminToken?: string }> {
  let lock: DataDirLock | undefined;
  let localAdminToken: string | undefined;
  if (config.store.kind === 'pglite' && config.store.dataDir) {
    localAdminToken = config.adminToken ?? randomBytes(24).toString('base64url');
    lock = lockDataDir(config.store.dataDir, { adminToken: localAdminToken });
  }
  try {
    const db = await openDb(config.store);
    const applied = await migrate(db);
    if (applied.length) logger?.info({ applied }, 'migrations applied');
    return { db, lock, localAdminToken };
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/** Creates a tenant with an API key when the database has none, so a new install is usable at once. */
export async function ensureFirstTenant(db: Db): Promise<RunningServer['firstTenant']> {
  return db.transaction(async (tx) => {
    // Two servers starting on one empty database must not both create a tenant.
    await tx.query('select pg_advisory_xact_lock(727701002)');
    const { rows } = await tx.query('select 1 from tenants limit 1');
    if (rows.length) return undefined;
    const { tenant, apiKey } = await createTenantWithKey(tx, { name: 'My business' }, 'system', 'first key');
    return { id: tenant.id, name: tenant.name, apiKey };
  });
}

export async function startServer(config: Config, opts: { clock?: Clock; logger?: Logger; providers?: ProviderRegistry } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? pino({ level: config.logLevel });
  const { db, lock, localAdminToken } = await openStore(config, logger);
  const clock = opts.clock ?? systemClock;
  const workers: Worker[] = [];
  try {
    const firstTenant = await ensureFirstTenant(db);
    const secrets = secretBox({ secretKey: config.secretKey, dataDir: config.store.kind === 'pglite' ? config.store.dataDir : undefined });
    const delivery = deliveryFor(db, { secrets, publicUrl: config.publicUrl ?? null, webhookAllowPrivate: config.webhookAllowPrivate });
    // The chat model and the embeddings endpoint are configured by environment (RAPPORT_LLM_*,
    // RAPPORT_EMBEDDINGS_*), read here once; the routes take them as they take the database, and
    // the workers refine pulses with the same model.
    const llm = llmFromEnv(process.env);
    const app = await buildApp({
      db,
      clock,
      logger,
      adminToken: localAdminToken ?? config.adminToken,
      publicUrl: config.publicUrl,
      secrets,
      adapters: delivery.adapters,
      llm,
      embeddings: embeddingsFromEnv(process.env),
    });
    await app.listen({ port: config.port, host: config.host });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
    lock?.update({ url });
    const providers = opts.providers ?? delivery.router;
    for (let i = 0; i < config.workers; i++) {
      const w = new Worker({ db, clock, providers, logger, pollMs: config.pollMs, email: delivery.email, actionWebhooks: delivery.actionWebhooks, llm });
      await w.start();
      workers.push(w);
    }
    return {
      app,
      db,
      url,
      workers,
      firstTenant,
      async close() {
        await app.close();
        await Promise.all(workers.map((w) => w.stop()));
        await db.close();
        lock?.release();
      },
    };
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop()));
    await db.close();
    lock?.release();
    throw err;
  }
}
