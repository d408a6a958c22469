import { randomUUID } from 'node:crypto';
import { InputError, NotFoundError } from '../core/errors.js';
import { defaultKeywordTable, type KeywordTable } from '../core/keywords.js';
import { longestPulseFooter, pulseLengthProblems, type PulseSpec } from '../core/pulse.js';
import { charLength } from '../core/synthesis.js';
import {
  DEFAULT_QUIET_HOURS,
  DEFAULT_SEND_WINDOW,
  optOutFooterProblems,
  type BrandVoice,
  type FrequencyCap,
  type OptOutFooters,
  type QuietHours,
  type SendWindow,
  type Tenant,
  type TenantSettings,
} from '../core/tenant.js';
import { writeAudit } from './audit.js';
import { createApiKey } from './apikeys.js';
import type { Queryable } from './db.js';
import { loadKeywordTable } from './keywords.js';

export interface TenantPatch {
  name?: string;
  time_zone?: string;
  send_window?: SendWindow;
  quiet_hours?: QuietHours;
  frequency_caps?: FrequencyCap[];
  brand_voice?: BrandVoice;
  settings?: TenantSettings;
}

const COLUMNS = 'id, name, time_zone, send_window, quiet_hours, frequency_caps, brand_voice, settings, created_at, updated_at';
const JSON_FIELDS = ['send_window', 'quiet_hours', 'frequency_caps', 'brand_voice', 'settings'] as const;

/** What the schema cannot check: each opt-out footer names one of the tenant's opt-out keywords (400 naming it). */
async function checkSettings(settings: TenantSettings | undefined, keywords: () => KeywordTable | Promise<KeywordTable>): Promise<void> {
  if (!settings?.opt_out_footer) return;
  const problems = optOutFooterProblems(settings.opt_out_footer, await keywords());
  if (problems.length) throw new InputError(problems);
}

/**
 * Refuses opt-out footers that leave a pulse campaign that may still send (any but completed or
 * cancelled: a draft is not checked again when started) no room for its call to action, 400
 * naming the footer: each message it wrote would be skipped as max_length. Only a change that
 * makes the longest footer longer is checked, so saving other settings never fails over a
 * campaign that did not fit before. Not atomic with campaign writes: a pulse created during the
 * change is still caught at batch time (the skip).
 */
async function checkPulseRoom(db: Queryable, tenantId: string, footers: OptOutFooters | undefined): Promise<void> {
  const { rows: current } = await db.query<{ footers: OptOutFooters | null }>(`select settings->'opt_out_footer' as footers from tenants where id = $1`, [tenantId]);
  const longest = longestPulseFooter(footers);
  if (!current[0] || charLength(longest.footer) <= charLength(longestPulseFooter(current[0].footers).footer)) return;
  const { rows } = await db.query<{ name: string; pulse: PulseSpec }>(
    `select name, action->'pulse' as pulse from campaigns
      where tenant_id = $1 and action->'pulse' is not null and status not in ('completed', 'cancelled') order by created_at, id`,
    [tenantId],
  );
  const tight = rows.flatMap((c) => pulseLengthProblems(c.pulse, footers).slice(0, 1).map((p) => `pulse campaign ${JSON.stringify(c.name)} has no room for it: ${p.message}`));
  if (!tight.length) return;
  throw InputError.field(
    longest.own ? `settings.opt_out_footer.${longest.language}` : 'settings.opt_out_footer',
    `${tight.join('; ')}. Raise the campaign's max_length (or stop it) first, or keep the footer shorter`,
  );
}

export async function createTenant(db: Queryable, input: TenantPatch & { name: string }, actor = 'system'): Promise<Tenant> {
  await checkSettings(input.settings, defaultKeywordTable);
  const id = randomUUID();
  const { rows } = await db.query<Tenant>(
    `insert into tenants (id, name, time_zone, send_window, quiet_hours, frequency_caps, brand_voice, settings)
     values ($1, $2, $3, $4, $5, $6, $7, $8)
     returning ${COLUMNS}`,
    [
      id,
      input.name,
      input.time_zone ?? 'UTC',
      JSON.stringify(input.send_window ?? DEFAULT_SEND_WINDOW),
      JSON.stringify(input.quiet_hours ?? DEFAULT_QUIET_HOURS),
      JSON.stringify(input.frequency_caps ?? []),
      JSON.stringify(input.brand_voice ?? {}),
      JSON.stringify(input.settings ?? {}),
    ],
  );
  await writeAudit(db, { tenantId: id, actor, action: 'tenant.created', entityType: 'tenant', entityId: id, data: {} });
  return rows[0]!;
}

export async function getTenant(db: Queryable, id: string): Promise<Tenant> {
  const { rows } = await db.query<Tenant>(`select ${COLUMNS} from tenants where id = $1`, [id]);
  if (!rows[0]) throw new NotFoundError('tenant');
  return rows[0];
}

export async function listTenants(db: Queryable): Promise<Tenant[]> {
  const { rows } = await db.query<Tenant>(`select ${COLUMNS} from tenants order by created_at, id`);
  return rows;
}

export async function updateTenant(db: Queryable, id: string, patch: TenantPatch, actor: string): Promise<Tenant> {
  await checkSettings(patch.settings, () => loadKeywordTable(db, id));
  if (patch.settings) await checkPulseRoom(db, id, patch.settings.opt_out_footer);
  const { rows } = await db.query<Tenant>(
    `update tenants set
       name = coalesce($2, name), time_zone = coalesce($3, time_zone),
       send_window = coalesce($4::jsonb, send_window), quiet_hours = coalesce($5::jsonb, quiet_hours),
       frequency_caps = coalesce($6::jsonb, frequency_caps), brand_voice = coalesce($7::jsonb, brand_voice),
       settings = coalesce($8::jsonb, settings), updated_at = now()
     where id = $1 returning ${COLUMNS}`,
    [id, patch.name ?? null, patch.time_zone ?? null, ...JSON_FIELDS.map((f) => (patch[f] === undefined ? null : JSON.stringify(patch[f])))],
  );
  if (!rows[0]) throw new NotFoundError('tenant');
  await writeAudit(db, { tenantId: id, actor, action: 'tenant.updated', entityType: 'tenant', entityId: id, data: { fields: Object.keys(patch) } });
  return rows[0];
}

/**
 * Creates a tenant and its first API key. Run it inside a transaction (db.transaction) so a
 * tenant never exists without a key; the key's secret is returned here only.
 */
export async function createTenantWithKey(
  tx: Queryable,
  input: TenantPatch & { name: string },
  actor: string,
  keyName = 'default',
): Promise<{ tenant: Tenant; apiKey: string }> {
  const tenant = await createTenant(tx, input, actor);
  const key = await createApiKey(tx, tenant.id, keyName, actor);
  return { tenant, apiKey: key.secret };
}
