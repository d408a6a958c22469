import { resolve } from 'node:path';
import { parsePrivateAllowList, type PrivateAllowList } from './channels/webhook-guard.js';
import type { StoreTarget } from './store/open.js';

export interface Config {
  port: number;
  host: string;
  store: StoreTarget;
  /** Set by the operator to manage tenants over HTTP; see docs/operations.md. */
  adminToken?: string;
  logLevel: string;
  publicUrl?: string;
  /** Workers `rapport start` runs inside the server (0 leaves all work to `rapport worker` processes). */
  workers: number;
  /** Longest a worker sleeps between looks for due work when no notification arrives. */
  pollMs: number;
  /** Seals provider credentials at rest; embedded, a key file beside the data is used when unset. */
  secretKey?: string;
  /** Private ranges that journey webhooks, the webhook channel and result webhooks may call (RAPPORT_WEBHOOK_ALLOW_PRIVATE); none by default. */
  webhookAllowPrivate: PrivateAllowList;
}

export const DEFAULT_DATA_DIR = '.rapport/data';

/** Reads the configuration from the environment; every setting has a default that runs locally. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT ? Number(env.PORT) : 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`);
  const url = env.DATABASE_URL?.trim();
  if (url && !/^postgres(ql)?:\/\//.test(url)) throw new Error('DATABASE_URL must start with postgres:// (leave it unset to use the embedded database)');
  return {
    port,
    host: env.HOST ?? '127.0.0.1',
    store: url
      ? { kind: 'postgres', url, poolSize: env.DATABASE_POOL_SIZE ? Number(env.DATABASE_POOL_SIZE) : undefined }
      : { kind: 'pglite', dataDir: resolve(env.RAPPORT_DATA_DIR ?? DEFAULT_DATA_DIR) },
    adminToken: env.RAPPORT_ADMIN_TOKEN || undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
    publicUrl: env.RAPPORT_PUBLIC_URL || undefined,
    workers: intSetting(env, 'RAPPORT_WORKERS', 1, 0, 64),
    pollMs: intSetting(env, 'RAPPORT_POLL_MS', 1000, 10, 60_000),
    secretKey: env.RAPPORT_SECRET_KEY?.trim() || undefined,
    webhookAllowPrivate: allowPrivateSetting(env.RAPPORT_WEBHOOK_ALLOW_PRIVATE),
  };
}

function allowPrivateSetting(raw: string | undefined): PrivateAllowList {
  try {
    return parsePrivateAllowList(raw);
  } catch (err) {
    throw new Error(`RAPPORT_WEBHOOK_ALLOW_PRIVATE must be "all" or comma-separated CIDR ranges such as "10.0.0.0/8,fd00::/8": ${(err as Error).message}`, { cause: err });
  }
}

function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}
