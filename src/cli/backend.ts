import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { jsonPointerToField } from '../api/errors.js';
import { CampaignInput as CampaignInputSchema } from '../api/schemas/campaigns.js';
import type { CampaignStatus } from '../core/campaign.js';
import type { ContactFields } from '../core/contact.js';
import { InputError, type FieldProblem } from '../core/errors.js';
import type { RowOutcome } from '../core/identity.js';
import type { Tenant, TenantSettings } from '../core/tenant.js';
import { loadConfig } from '../config.js';
import { systemClock } from '../engine/clock.js';
import { simulateReply, type SandboxReplyInput, type SandboxReplyOutcome } from '../engine/sandbox-reply.js';
import { openStore } from '../server.js';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from '../store/apikeys.js';
import {
  campaignTotals,
  changeCampaignStatus,
  createCampaign,
  getCampaign,
  listCampaigns,
  listRecipients,
  recipientsCsv,
  type CampaignInput,
  type RecipientState,
} from '../store/campaigns.js';
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
  /** Every campaign of the tenant in id order; with `status`, those in it. */
  listCampaigns(tenantId: string, status?: CampaignStatus): Promise<CampaignItem[]>;
  /** Creates a draft from a POST /v1/campaigns body; InputError naming its fields, ConflictError naming `name`. */
  createCampaign(tenantId: string, body: unknown): Promise<CampaignItem>;
  /** The campaign with its totals; NotFoundError('campaign') when the tenant has none with that id. */
  getCampaign(tenantId: string, campaignId: string): Promise<CampaignDetail>;
  /** start, pause, resume or stop; ConflictError naming `status` (or `action.journey_id`) when refused. */
  changeCampaign(tenantId: string, campaignId: string, action: CampaignLifecycleAction): Promise<CampaignItem>;
  /** One page of recipients in contact order, as GET /v1/campaigns/{id}/recipients pages them. */
  campaignRecipients(tenantId: string, campaignId: string, f: { state?: RecipientState; limit?: number; cursor?: string }): Promise<{ data: RecipientItem[]; next_cursor: string | null }>;
  /**
   * Every recipient as CSV, header first, in the API's columns (?format=csv), as chunks of text
   * to write as they come. NotFoundError for an unknown campaign comes before the first chunk.
   */
  campaignRecipientsCsv(tenantId: string, campaignId: string, state?: RecipientState): AsyncIterable<string>;
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

export type CampaignLifecycleAction = 'start' | 'pause' | 'resume' | 'stop';

/**
 * A campaign as the API shows it, times as ISO strings. Fields beyond these (a schedule's new
 * kinds, say) pass through as the store or the server gives them.
 */
export interface CampaignItem {
  id: string;
  name: string;
  description: string | null;
  type: string;
  status: CampaignStatus;
  audience: Record<string, unknown>;
  action: Record<string, unknown>;
  schedule: Record<string, unknown>;
  throttle: Record<string, unknown>;
  next_run_at: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  paused_at: string | null;
  completed_at: string | null;
  cancelled_at: string | null;
}

export interface CampaignDetail extends CampaignItem {
  /** Recipients in each state now, and in all (`recipients`). */
  totals: Record<string, number>;
}

/** One recipient as the API's JSON lists it. */
export interface RecipientItem {
  contact_id: string;
  external_id: string | null;
  name: string | null;
  occurrence_key: string;
  state: RecipientState;
  detail: string | null;
  reason: string | null;
  message_id: string | null;
  enrollment_id: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  replied_at: string | null;
  created_at: string;
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

const CAMPAIGN_TIMES = ['next_run_at', 'created_at', 'updated_at', 'started_at', 'paused_at', 'completed_at', 'cancelled_at'] as const;

export function campaignItem<T extends { [K in (typeof CAMPAIGN_TIMES)[number]]: Date | string | null }>(c: T): CampaignItem & Omit<T, keyof CampaignItem> {
  const out: Record<string, unknown> = { ...c };
  for (const k of CAMPAIGN_TIMES) out[k] = iso(c[k]);
  return out as CampaignItem & Omit<T, keyof CampaignItem>;
}

export function recipientItem(r: Omit<RecipientItem, 'sent_at' | 'delivered_at' | 'replied_at' | 'created_at'> & Record<'sent_at' | 'delivered_at' | 'replied_at', Date | string | null> & { created_at: Date | string }): RecipientItem {
  return {
    contact_id: r.contact_id,
    external_id: r.external_id,
    name: r.name,
    occurrence_key: r.occurrence_key,
    state: r.state,
    detail: r.detail,
    reason: r.reason,
    message_id: r.message_id,
    enrollment_id: r.enrollment_id,
    sent_at: iso(r.sent_at),
    delivered_at: iso(r.delivered_at),
    replied_at: iso(r.replied_at),
    created_at: iso(r.created_at)!,
  };
}


/**
 * A campaign body checked as the API checks it: the route's own schema, with its validator's
 * options (types coerced, defaults filled in, every problem reported), so a file refused here
 * would be refused by a server, naming the same fields.
 */
let campaignShape: ValidateFunction | undefined;
function checkCampaignBody(body: unknown): CampaignInput {
  if (!campaignShape) {
    const ajv = new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true });
    addFormats.default(ajv);
    campaignShape = ajv.compile(CampaignInputSchema);
  }
  if (campaignShape(body)) return body as CampaignInput;
  const all = campaignShape.errors ?? [];
  // A union adds a summary after the branch errors; the specific ones say more.
  const specific = all.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
  const problems: FieldProblem[] = [];
  for (const e of specific.length ? specific : all) {
    let field = jsonPointerToField(e.instancePath);
    const under = (name: string) => (field ? `${field}.${name}` : name);
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') [field, message] = [under(String(e.params.missingProperty)), 'is required'];
    else if (e.keyword === 'additionalProperties') [field, message] = [under(String(e.params.additionalProperty)), 'is not a known field'];
    else if (e.keyword === 'enum') message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    else if (e.keyword === 'anyOf' || e.keyword === 'oneOf') message = 'does not match any allowed shape';
    field ||= 'body';
    if (!problems.some((p) => p.field === field && p.message === message)) problems.push({ field, message });
  }
  throw new InputError(problems);
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
    async listCampaigns(tenantId, status) {
      await getTenant(db, tenantId);
      const all: CampaignItem[] = [];
      let cursor: string | undefined;
      do {
        const page = await listCampaigns(db, tenantId, { limit: 1000, cursor, status });
        all.push(...page.data.map(campaignItem));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return all;
    },
    async createCampaign(tenantId, body) {
      await getTenant(db, tenantId);
      return campaignItem(await createCampaign(db, tenantId, checkCampaignBody(body), ACTOR, systemClock.now()));
    },
    async getCampaign(tenantId, campaignId) {
      await getTenant(db, tenantId);
      const c = await getCampaign(db, tenantId, campaignId);
      return { ...campaignItem(c), totals: await campaignTotals(db, tenantId, c.id) };
    },
    async changeCampaign(tenantId, campaignId, action) {
      await getTenant(db, tenantId);
      return campaignItem(await changeCampaignStatus(db, tenantId, campaignId, action, ACTOR, systemClock.now()));
    },
    async campaignRecipients(tenantId, campaignId, f) {
      await getTenant(db, tenantId);
      const page = await listRecipients(db, tenantId, campaignId, f);
      return { data: page.data.map(recipientItem), next_cursor: page.next_cursor };
    },
    async *campaignRecipientsCsv(tenantId, campaignId, state) {
      await getTenant(db, tenantId);
      await getCampaign(db, tenantId, campaignId);
      yield* recipientsCsv(db, tenantId, campaignId, state);
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
