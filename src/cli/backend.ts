import type { ContactFields } from '../core/contact.js';
import type { RowOutcome } from '../core/identity.js';
import type { Tenant, TenantSettings } from '../core/tenant.js';
import { loadConfig } from '../config.js';
import { systemClock } from '../engine/clock.js';
import { simulateReply, type SandboxReplyInput, type SandboxReplyOutcome } from '../engine/sandbox-reply.js';
import { openStore } from '../server.js';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from '../store/apikeys.js';
import { upsertContacts } from '../store/contacts.js';
import { createJourney, listJourneys, patchJourney, publishJourney, type JourneyStatus, type JourneySummary } from '../store/journeys.js';
import { listTemplates } from '../store/templates.js';
import { readLock } from '../store/datadir-lock.js';
import type { Db } from '../store/db.js';
import { createTenantWithKey, getTenant, listTenants } from '../store/tenants.js';
import { httpBackend } from './backend-http.js';
import { CliError } from './context.js';

/**
 * Everything the data commands need from Rapport, in one small interface with two
 * implementations: the database itself, or the running server that holds the embedded data
 * folder (over its HTTP API). Both give the same answers, so commands print the same either way.
 * A missing tenant or key is a NotFoundError from either.
 */
export interface Backend {
  /** For messages: where the commands' reads and writes go. */
  readonly where: string;
  createTenant(input: NewTenantInput): Promise<{ tenant: TenantSummary; apiKey: string }>;
  listTenants(): Promise<TenantSummary[]>;
  createApiKey(tenantId: string, name: string): Promise<{ key: ApiKeySummary; secret: string }>;
  listApiKeys(tenantId: string): Promise<ApiKeySummary[]>;
  revokeApiKey(tenantId: string, keyId: string): Promise<ApiKeySummary>;
  tenantSettings(tenantId: string): Promise<TenantSettings>;
  /** Upserts validated rows; one outcome per row, `index` being its position in `rows`. */
  upsertContacts(tenantId: string, rows: ContactFields[]): Promise<RowOutcome[]>;
  /** Every journey of the tenant, oldest first; with `name`, those of that name. */
  listJourneys(tenantId: string, name?: string): Promise<JourneyListItem[]>;
  /** Creates a draft; a malformed definition is an InputError naming `definition.…` fields. */
  createJourney(tenantId: string, name: string, definition: unknown): Promise<JourneyListItem>;
  /** Replaces the draft and the name of a journey. */
  updateJourneyDraft(tenantId: string, journeyId: string, name: string, definition: unknown): Promise<JourneyListItem>;
  /** Publishes the draft; JourneyProblemsError when it cannot be. */
  publishJourney(tenantId: string, journeyId: string): Promise<{ version: number; status: JourneyStatus }>;
  /** Names of the tenant's stored templates. */
  templateNames(tenantId: string): Promise<string[]>;
  /** Records a simulated reply as a real one would be; InputError, NotFoundError or ConflictError when refused. */
  sandboxReply(tenantId: string, input: SandboxReplyInput): Promise<SandboxReplyOutcome>;
  close(): Promise<void>;
}

export interface JourneyListItem {
  id: string;
  name: string;
  status: JourneyStatus;
  version: number | null;
  open_enrollments: number;
  published_at: string | null;
  updated_at: string;
}

export interface NewTenantInput {
  name: string;
  time_zone?: string;
  settings?: TenantSettings;
}

export interface TenantSummary {
  id: string;
  name: string;
  time_zone: string;
  default_country: string | null;
  created_at: string;
}

export interface ApiKeySummary {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

export function tenantSummary(t: Pick<Tenant, 'id' | 'name' | 'time_zone' | 'settings'> & { created_at: Date | string }): TenantSummary {
  return { id: t.id, name: t.name, time_zone: t.time_zone, default_country: t.settings.default_country ?? null, created_at: iso(t.created_at)! };
}

export function apiKeySummary(k: Pick<ApiKeyRow, 'id' | 'name' | 'prefix'> & { created_at: Date | string; last_used_at: Date | string | null; revoked_at: Date | string | null }): ApiKeySummary {
  return { id: k.id, name: k.name, prefix: k.prefix, created_at: iso(k.created_at)!, last_used_at: iso(k.last_used_at), revoked_at: iso(k.revoked_at) };
}

export function journeyListItem(j: Pick<JourneySummary, 'id' | 'name' | 'status' | 'version' | 'open_enrollments'> & { published_at: Date | string | null; updated_at: Date | string }): JourneyListItem {
  return { id: j.id, name: j.name, status: j.status, version: j.version, open_enrollments: j.open_enrollments, published_at: iso(j.published_at), updated_at: iso(j.updated_at)! };
}

/** Audit log actor for changes made by the CLI on the database itself. */
const ACTOR = 'cli';

export function localBackend(db: Db, where: string, release: () => void = () => {}): Backend {
  return {
    where,
    async createTenant(input) {
      const { tenant, apiKey } = await db.transaction((tx) => createTenantWithKey(tx, input, ACTOR));
      return { tenant: tenantSummary(tenant), apiKey };
    },
    async listTenants() {
      return (await listTenants(db)).map(tenantSummary);
    },
    async createApiKey(tenantId, name) {
      await getTenant(db, tenantId);
      const { secret, ...key } = await createApiKey(db, tenantId, name, ACTOR);
      return { key: apiKeySummary(key), secret };
    },
    async listApiKeys(tenantId) {
      await getTenant(db, tenantId);
      return (await listApiKeys(db, tenantId)).map(apiKeySummary);
    },
    async revokeApiKey(tenantId, keyId) {
      await getTenant(db, tenantId);
      return apiKeySummary(await revokeApiKey(db, tenantId, keyId, ACTOR));
    },
    async tenantSettings(tenantId) {
      return (await getTenant(db, tenantId)).settings;
    },
    async upsertContacts(tenantId, rows) {
      return (await upsertContacts(db, tenantId, rows, systemClock.now())).outcomes;
    },
    async listJourneys(tenantId, name) {
      await getTenant(db, tenantId);
      const all: JourneyListItem[] = [];
      let cursor: string | undefined;
      do {
        const page = await listJourneys(db, tenantId, { limit: 1000, cursor, name });
        all.push(...page.data.map(journeyListItem));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return all;
    },
    async createJourney(tenantId, name, definition) {
      await getTenant(db, tenantId);
      return journeyListItem(await createJourney(db, tenantId, { name, definition }, ACTOR, systemClock.now()));
    },
    async updateJourneyDraft(tenantId, journeyId, name, definition) {
      return journeyListItem(await patchJourney(db, tenantId, journeyId, { name, definition }, ACTOR, systemClock.now()));
    },
    async publishJourney(tenantId, journeyId) {
      const { version, status } = await publishJourney(db, tenantId, journeyId, ACTOR, systemClock.now());
      return { version, status };
    },
    async templateNames(tenantId) {
      await getTenant(db, tenantId);
      const names: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listTemplates(db, tenantId, { limit: 1000, cursor });
        names.push(...page.data.map((t) => t.name));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return names;
    },
    async sandboxReply(tenantId, input) {
      await getTenant(db, tenantId);
      return simulateReply(db, tenantId, input, systemClock.now());
    },
    async close() {
      try {
        await db.close();
      } finally {
        release();
      }
    },
  };
}

/**
 * Picks the backend for this environment, in one place:
 * - DATABASE_URL set: PostgreSQL directly (any number of processes may share it);
 * - the embedded folder held by a running server: that server, over HTTP, with the local admin
 *   token it wrote into the lock file;
 * - held by a process that serves nothing (another command, or a server still starting): refuse;
 * - free: open it, holding the lock until close().
 */
export async function openBackend(env: NodeJS.ProcessEnv): Promise<Backend> {
  const config = loadConfig(env);
  if (config.store.kind === 'pglite' && config.store.dataDir) {
    const dataDir = config.store.dataDir;
    const holder = readLock(dataDir);
    if (holder?.url && holder.adminToken) return httpBackend({ url: holder.url, adminToken: holder.adminToken, pid: holder.pid });
    if (holder) {
      throw new CliError(
        `the data folder ${dataDir} is in use by another Rapport process (pid ${holder.pid}) that is not serving HTTP: another command, or a server still starting. ` +
          'Wait for it to finish and run this again; or set RAPPORT_DATA_DIR to another folder.',
      );
    }
    const { db, lock } = await openStore(config);
    return localBackend(db, `the embedded database in ${dataDir}`, () => lock?.release());
  }
  const { db } = await openStore(config);
  return localBackend(db, 'PostgreSQL (DATABASE_URL)');
}

/** Runs fn with a backend and closes it afterwards, whatever happens. */
export async function withBackend<T>(env: NodeJS.ProcessEnv, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await openBackend(env);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}
