import {
  allowedFrom,
  campaignProblems,
  editable,
  nextStatus,
  type CampaignAction,
  type CampaignActionSpec,
  type CampaignAudience,
  type CampaignSchedule,
  type CampaignStatus,
  type CampaignThrottle,
  type CampaignType,
} from '../core/campaign.js';
import {
  firstOccurrence,
  LOCAL_GRACE_MS,
  occurrenceAt,
  paceLocal,
  PULSE_DEFAULT_SCHEDULE,
  resumedOccurrence,
  scheduleProblems,
  wallInZone,
  type LocalPace,
  type Occurrence,
} from '../core/campaign-schedule.js';
import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import type { OptOutFooters } from '../core/tenant.js';
import { resolveZone } from '../core/zone.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import { writeAudit } from './audit.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable } from './db.js';
import { notifyWork } from './enrollments.js';
import { newId } from './ids.js';
import { prepareSegment } from './segments.js';

/**
 * Campaigns as stored, their lifecycle actions and their results. The runner that writes their
 * audiences is engine/campaign-runner.ts; docs/campaigns.md describes both.
 */

export interface CampaignRow {
  id: string;
  name: string;
  description: string | null;
  type: CampaignType;
  status: CampaignStatus;
  audience: CampaignAudience;
  action: CampaignActionSpec;
  schedule: CampaignSchedule;
  throttle: CampaignThrottle;
  next_run_at: Date | null;
  /** The wall-clock time of the next occurrence of a recipient-local schedule. */
  next_local: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  paused_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
}

export interface CampaignInput {
  name: string;
  description?: string | null;
  type: CampaignType;
  /** Absent (stored as {}) only for a pulse: every contact, narrowed by its targeting. */
  audience?: CampaignAudience;
  action: CampaignActionSpec;
  schedule?: CampaignSchedule;
  throttle?: CampaignThrottle;
}
export type CampaignPatch = Partial<CampaignInput>;

const COLUMNS =
  'id, name, description, type, status, audience, action, schedule, throttle, next_run_at, next_local, created_at, updated_at, started_at, paused_at, completed_at, cancelled_at';

function nameTaken(err: unknown, name: string | undefined): never {
  if (pgErrorCode(err) === UNIQUE_VIOLATION) throw new ConflictError(`a campaign named ${JSON.stringify(name)} already exists`, 'name');
  throw err;
}

async function tenantFooters(db: Queryable, tenantId: string): Promise<OptOutFooters | null> {
  const { rows } = await db.query<{ footers: OptOutFooters | null }>(`select settings->'opt_out_footer' as footers from tenants where id = $1`, [tenantId]);
  return rows[0]?.footers ?? null;
}

/** Checks the alternatives and that what the campaign names is the tenant's (400 naming the field). */
async function checkReferences(
  db: Queryable,
  tenantId: string,
  c: { type?: CampaignType; audience?: CampaignAudience; action?: CampaignActionSpec; schedule?: CampaignSchedule },
  now: Date,
): Promise<void> {
  // A pulse must leave room for the tenant's own opt-out footers, not only the built-in ones.
  const footers = c.action?.pulse ? await tenantFooters(db, tenantId) : undefined;
  const problems = [...campaignProblems(c, footers), ...(c.schedule ? scheduleProblems(c.schedule, now) : [])];
  if (problems.length) throw new InputError(problems);
  if (c.audience?.segment_id) {
    const { rows } = await db.query('select 1 from segments where tenant_id = $1 and id = $2', [tenantId, c.audience.segment_id]);
    if (!rows.length) throw InputError.field('audience.segment_id', 'names no segment of this tenant');
  }
  if (c.audience?.definition) {
    try {
      await prepareSegment(db, tenantId, c.audience.definition, now);
    } catch (err) {
      if (err instanceof InputError) throw new InputError(err.problems.map((p) => ({ ...p, field: p.field.replace(/^definition/, 'audience.definition') })));
      throw err;
    }
  }
  if (c.action?.journey_id) {
    const { rows } = await db.query('select 1 from journeys where tenant_id = $1 and id = $2', [tenantId, c.action.journey_id]);
    if (!rows.length) throw InputError.field('action.journey_id', 'names no journey of this tenant');
  }
}

export async function createCampaign(db: Db, tenantId: string, input: CampaignInput, actor: string, now: Date): Promise<CampaignRow> {
  // A pulse with no schedule of its own goes out on Mondays at 09:00 in the tenant's zone.
  if (input.type === 'pulse' && (!input.schedule || !Object.keys(input.schedule).length)) input = { ...input, schedule: PULSE_DEFAULT_SCHEDULE };
  await checkReferences(db, tenantId, { ...input, audience: input.audience ?? {} }, now);
  return db
    .transaction(async (tx) => {
      const { rows } = await tx.query<CampaignRow>(
        `insert into campaigns (id, tenant_id, name, description, type, status, audience, action, schedule, throttle, created_at, updated_at)
         values ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $10) returning ${COLUMNS}`,
        [
          newId(),
          tenantId,
          input.name,
          input.description ?? null,
          input.type,
          JSON.stringify(input.audience ?? {}),
          JSON.stringify(input.action),
          JSON.stringify(input.schedule ?? {}),
          JSON.stringify(input.throttle ?? {}),
          now,
        ],
      );
      const row = rows[0]!;
      await writeAudit(tx, { tenantId, actor, action: 'campaign.created', entityType: 'campaign', entityId: row.id, data: { name: row.name, type: row.type } });
      return row;
    })
    .catch((err: unknown) => nameTaken(err, input.name));
}

export async function getCampaign(db: Queryable, tenantId: string, id: string, lock = false): Promise<CampaignRow> {
  const { rows } = await db.query<CampaignRow>(`select ${COLUMNS} from campaigns where tenant_id = $1 and id = $2${lock ? ' for update' : ''}`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('campaign');
  return rows[0];
}

export async function listCampaigns(
  db: Queryable,
  tenantId: string,
  f: { limit?: number; cursor?: string; status?: CampaignStatus },
): Promise<{ data: CampaignRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<CampaignRow>(
    `select ${COLUMNS} from campaigns where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or status = $3) order by id limit $4`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.status ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

function wrongStatus(c: CampaignRow, what: string, allowed: CampaignStatus[]): ConflictError {
  return new ConflictError(`campaign ${JSON.stringify(c.name)} is ${c.status}; ${what} only when it is ${allowed.join(' or ')}`, 'status');
}

/** Changes a campaign that has not fired yet (draft or scheduled); 409 naming status otherwise. */
export async function patchCampaign(db: Db, tenantId: string, id: string, patch: CampaignPatch, actor: string, now: Date): Promise<CampaignRow> {
  return db
    .transaction(async (tx) => {
      const c = await getCampaign(tx, tenantId, id, true);
      if (!editable(c.status)) throw wrongStatus(c, 'it can be changed', ['draft', 'scheduled']);
      // Type, audience and action as they will be stored: a pulse action, type pulse and an empty audience go together.
      await checkReferences(tx, tenantId, { ...patch, type: patch.type ?? c.type, audience: patch.audience ?? c.audience, action: patch.action ?? c.action }, now);
      const schedule = patch.schedule ?? c.schedule;
      const first = c.status === 'scheduled' ? await firstRun(tx, tenantId, schedule, now) : null;
      const { rows } = await tx.query<CampaignRow>(
        `update campaigns set name = coalesce($3, name), description = case when $4::boolean then $5 else description end, type = coalesce($6, type),
                audience = coalesce($7::jsonb, audience), action = coalesce($8::jsonb, action), schedule = $9, throttle = coalesce($10::jsonb, throttle),
                next_run_at = case when status = 'scheduled' then $11::timestamptz else next_run_at end,
                next_local = case when status = 'scheduled' then $13 else next_local end, updated_at = $12
          where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
        [
          tenantId,
          id,
          patch.name ?? null,
          patch.description !== undefined,
          patch.description ?? null,
          patch.type ?? null,
          patch.audience ? JSON.stringify(patch.audience) : null,
          patch.action ? JSON.stringify(patch.action) : null,
          JSON.stringify(schedule),
          patch.throttle ? JSON.stringify(patch.throttle) : null,
          first?.start ?? null,
          now,
          first?.local ?? null,
        ],
      );
      await writeAudit(tx, { tenantId, actor, action: 'campaign.updated', entityType: 'campaign', entityId: id, data: { fields: Object.keys(patch) } });
      return rows[0]!;
    })
    .catch((err: unknown) => nameTaken(err, patch.name));
}

/** Deletes a draft, or a finished campaign with its results; 409 naming status while it may still send. */
export async function deleteCampaign(db: Db, tenantId: string, id: string, actor: string): Promise<CampaignRow> {
  return db.transaction(async (tx) => {
    const c = await getCampaign(tx, tenantId, id, true);
    const allowed: CampaignStatus[] = ['draft', 'completed', 'cancelled'];
    if (!allowed.includes(c.status)) throw wrongStatus(c, 'it can be deleted (stop it first)', allowed);
    await tx.query('delete from campaign_recipients where tenant_id = $1 and campaign_id = $2', [tenantId, id]);
    await tx.query('delete from campaigns where tenant_id = $1 and id = $2', [tenantId, id]);
    await writeAudit(tx, { tenantId, actor, action: 'campaign.deleted', entityType: 'campaign', entityId: id, data: { name: c.name } });
    return c;
  });
}

async function tenantZone(db: Queryable, tenantId: string): Promise<string> {
  const { rows } = await db.query<{ time_zone: string }>('select time_zone from tenants where id = $1', [tenantId]);
  return rows[0]?.time_zone ?? 'UTC';
}

/** The schedule's first occurrence from `now`; 409 naming schedule.until when it has none left. */
async function firstRun(db: Queryable, tenantId: string, schedule: CampaignSchedule, now: Date): Promise<Occurrence> {
  const first = firstOccurrence(schedule, await tenantZone(db, tenantId), now);
  if (!first) throw new ConflictError('the schedule has no occurrence left before its until', 'schedule.until');
  return first;
}

/**
 * After a resume, the released messages of recipient-local occurrences are due at their local
 * time again, paced by the throttle from it as when they were written (paceLocal): an instant
 * still ahead gives its recipients the same slots, one that has come starts them again from now.
 * One whose local time went by during the pause is cancelled (`local_time_passed`) rather than
 * sent hours late, as a late start would skip it.
 */
async function relocalise(tx: Queryable, tenantId: string, campaignId: string, perMinute: number | undefined, now: Date): Promise<void> {
  const { rows } = await tx.query<{
    id: string;
    occurrence_id: string;
    local_at: string;
    local_pace: LocalPace;
    time_zone: string | null;
    phone: string | null;
    whatsapp: string | null;
    tenant_zone: string;
  }>(
    `select m.id, o.id as occurrence_id, o.local_at, o.local_pace, k.time_zone, k.phone, k.whatsapp, t.time_zone as tenant_zone
       from campaign_recipients r join campaign_occurrences o on o.id = r.occurrence_id
       join messages m on m.id = r.message_id join contacts k on k.id = r.contact_id join tenants t on t.id = r.tenant_id
      where r.tenant_id = $1 and r.campaign_id = $2 and o.local_at is not null and o.status = 'running' and m.status = 'queued' and m.due_at is not null
      order by o.id, r.seq`,
    [tenantId, campaignId],
  );
  if (!rows.length) return;
  const late: string[] = [];
  const kept: { id: string; occurrence_id: string; local: Date }[] = [];
  const occurrences = new Map<string, { id: string; local_pace: LocalPace; sends_until: Date }>();
  for (const m of rows) {
    const local = wallInZone(m.local_at, resolveZone(m, m.tenant_zone).zone);
    if (local.getTime() < now.getTime() - LOCAL_GRACE_MS) late.push(m.id);
    else kept.push({ id: m.id, occurrence_id: m.occurrence_id, local });
    if (!occurrences.has(m.occurrence_id)) occurrences.set(m.occurrence_id, { id: m.occurrence_id, local_pace: m.local_pace, sends_until: now });
  }
  // Every recipient of these instants still waiting is held here, so their count starts again
  // with them; later batches count on from it.
  for (const k of kept) delete occurrences.get(k.occurrence_id)!.local_pace[k.local.toISOString()];
  const due = kept.map((k) => {
    const o = occurrences.get(k.occurrence_id)!;
    const at = paceLocal(o.local_pace, k.local, now, perMinute);
    if (at > o.sends_until) o.sends_until = at;
    return { id: k.id, due_at: at.toISOString() };
  });
  if (due.length) {
    await tx.query(`update messages m set due_at = x.due_at, updated_at = $2 from jsonb_to_recordset($1::jsonb) as x(id uuid, due_at timestamptz) where m.id = x.id`, [
      JSON.stringify(due),
      now,
    ]);
  }
  await tx.query(
    `update campaign_occurrences o set local_pace = x.local_pace, sends_until = x.sends_until
       from jsonb_to_recordset($1::jsonb) as x(id uuid, local_pace jsonb, sends_until timestamptz) where o.id = x.id`,
    [JSON.stringify([...occurrences.values()])],
  );
  if (late.length) {
    await tx.query(`update messages set status = 'cancelled', reason = 'local_time_passed', due_at = null, updated_at = $2 where id = any($1::uuid[]) and status = 'queued'`, [late, now]);
    await tx.query(`insert into message_status (message_id, status, at, detail) select x.id, 'cancelled', $2, '{"reason":"local_time_passed"}' from unnest($1::uuid[]) as x(id)`, [late, now]);
  }
}

/** The messages of the campaign that wait in the outbox (status queued), with their recipients' order. */
const QUEUED_OF_CAMPAIGN = `select m.id, r.occurrence_id, r.seq from campaign_recipients r join messages m on m.id = r.message_id
                            where r.tenant_id = $1 and r.campaign_id = $2 and m.status = 'queued'`;

/**
 * start, pause, resume or stop; 409 naming `status` when the action is not allowed from the
 * current status (core/campaign.ts has the table).
 *
 * Pause holds the campaign's queued messages in the outbox (status stays queued, due_at is
 * cleared so the dispatcher does not take them) and stops further batches; resume spaces the
 * held ones again by the throttle from the moment of resuming (recipient-local ones from their
 * local time, relocalise), so a long pause does not end in a burst. Stop cancels them.
 * Enrollments already made stay in their journey either way: the journey has its own pause.
 */
export async function changeCampaignStatus(db: Db, tenantId: string, id: string, action: Exclude<CampaignAction, 'run' | 'complete'>, actor: string, now: Date): Promise<CampaignRow> {
  return db.transaction(async (tx) => {
    const c = await getCampaign(tx, tenantId, id, true);
    const to = nextStatus(c.status, action, c.started_at !== null);
    if (!to) throw wrongStatus(c, `it can be ${action === 'stop' ? 'stopped' : action === 'start' ? 'started' : `${action}d`}`, allowedFrom(action));
    if (action === 'start') {
      await checkReferences(tx, tenantId, c, now);
      if (c.action.journey_id) {
        const { rows } = await tx.query<{ status: string }>('select status from journeys where tenant_id = $1 and id = $2', [tenantId, c.action.journey_id]);
        if (rows[0]?.status !== 'active') throw new ConflictError(`the journey is ${rows[0]?.status ?? 'gone'}; a campaign can only enrol into an active journey`, 'action.journey_id');
      }
    }
    // The occurrence rows are locked by a batch being written: these updates wait for it, so
    // the messages it queued are held or cancelled with the rest.
    if (action === 'pause') {
      await tx.query(`update campaign_occurrences set status = 'paused' where tenant_id = $1 and campaign_id = $2 and status = 'running'`, [tenantId, id]);
      await tx.query(`update messages set due_at = null, updated_at = $3 where id in (select id from (${QUEUED_OF_CAMPAIGN}) q) and status = 'queued'`, [tenantId, id, now]);
    } else if (action === 'resume') {
      const perMinute = c.throttle.per_minute ?? null;
      const { rows: held } = await tx.query<{ occurrence_id: string; n: string }>(
        // A message waiting for its review or for the model stays held: the reviewer's decision
        // (store/reviews.ts) or the model's answer (engine/pulse-refine.ts) releases it.
        `with q as (select id, occurrence_id, row_number() over (partition by occurrence_id order by seq) - 1 as i from (${QUEUED_OF_CAMPAIGN} and not (m.content ?| array['review', 'refine'])) x),
              u as (update messages m set due_at = $3::timestamptz + case when $4::int is null then interval '0' else floor(q.i / $4::int) * interval '1 minute' end, updated_at = $3
                      from q where m.id = q.id and m.status = 'queued' returning q.occurrence_id)
         select occurrence_id, count(*) as n from u group by occurrence_id`,
        [tenantId, id, now, perMinute],
      );
      const heldBy = new Map(held.map((h) => [h.occurrence_id, Number(h.n)]));
      await tx.query(
        `update campaign_occurrences o set status = 'running', pace_from = $3, paced = coalesce((x.held->>o.id::text)::int, 0),
                sends_until = $3::timestamptz + case when $5::int is null then interval '0'
                                                     else floor(greatest(coalesce((x.held->>o.id::text)::int, 0) - 1, 0) / $5::int) * interval '1 minute' end
           from (select $4::jsonb as held) x where o.tenant_id = $1 and o.campaign_id = $2 and o.status = 'paused'`,
        [tenantId, id, now, JSON.stringify(Object.fromEntries(heldBy)), perMinute],
      );
      if (held.length) await relocalise(tx, tenantId, id, c.throttle.per_minute, now);
      if (held.length) await notifyWork(tx);
    } else if (action === 'stop') {
      await tx.query(`update campaign_occurrences set status = 'cancelled', completed_at = $3 where tenant_id = $1 and campaign_id = $2 and status in ('running', 'paused')`, [
        tenantId,
        id,
        now,
      ]);
      const { rows } = await tx.query<{ id: string }>(
        `update messages set status = 'cancelled', reason = 'campaign stopped', due_at = null, updated_at = $3
          where id in (select id from (${QUEUED_OF_CAMPAIGN}) q) and status = 'queued' returning id`,
        [tenantId, id, now],
      );
      if (rows.length) {
        await tx.query(`insert into message_status (message_id, status, at, detail) select x.id, 'cancelled', $2, '{"reason":"campaign stopped"}' from unnest($1::uuid[]) as x(id)`, [
          rows.map((r) => r.id),
          now,
        ]);
      }
    }
    // What next_run_at becomes: the first occurrence on start; none on stop; on resume of a
    // campaign whose next occurrence should have started during the pause, the one a start now
    // would choose, never an earlier one (resumedOccurrence): a missed Monday is not sent on
    // Wednesday, a recipient-local Monday still ahead in some zones is, and a one-off fires at
    // once. Otherwise it stays.
    let next: { start: Date | null; local: string | null } | undefined;
    if (action === 'start') next = await firstRun(tx, tenantId, c.schedule, now);
    else if (action === 'stop') next = { start: null, local: null };
    else if (action === 'resume' && c.next_run_at && c.next_run_at < now) {
      const zone = await tenantZone(tx, tenantId);
      next = resumedOccurrence(c.schedule, zone, occurrenceAt(c.schedule, c.next_run_at, c.next_local), now) ?? { start: null, local: null };
    }
    // Resumed past its until before it ever fired: the runner completes only campaigns that ran,
    // so one with nothing to come completes here.
    const status = action === 'resume' && !c.started_at && next?.start === null ? 'completed' : to;
    const { rows } = await tx.query<CampaignRow>(
      `update campaigns set status = $3, updated_at = $4,
              next_run_at = case when $6::boolean then $7::timestamptz else next_run_at end,
              next_local = case when $6::boolean then $8 else next_local end,
              paused_at = case when $5 = 'pause' then $4 else paused_at end,
              completed_at = case when $3 = 'completed' then $4 else completed_at end,
              cancelled_at = case when $5 = 'stop' then $4 else cancelled_at end
        where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
      [tenantId, id, status, now, action, next !== undefined, next?.start ?? null, next?.local ?? null],
    );
    if (action === 'start') await notifyWork(tx);
    await writeAudit(tx, { tenantId, actor, action: `campaign.${action}`, entityType: 'campaign', entityId: id, data: { from: c.status, to: status } });
    return rows[0]!;
  });
}

// ---------------------------------------------------------------------------------------------
// Results

export const RECIPIENT_STATES = [
  'pending',
  'queued',
  'sent',
  'delivered',
  'opened',
  'clicked',
  'answered',
  'responded',
  'converted',
  'failed',
  'opted_out',
  'cancelled',
  'skipped',
] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

/**
 * One message's state as a result, best outcome first: a reply (or a key pressed in a call) beats
 * a click beats an open beats a call picked up. A call is delivered when it is answered, so a
 * delivered call is `answered`.
 */
function messageState(m: string): string {
  return `case when ${m}.id is null then null
    when ${m}.replied_at is not null or ${m}.status = 'replied' then 'responded'
    when ${m}.clicked_at is not null or ${m}.status = 'clicked' then 'clicked'
    when ${m}.opened_at is not null or ${m}.status in ('opened', 'read') then 'opened'
    when ${m}.status = 'delivered' and ${m}.channel = 'voice' then 'answered'
    when ${m}.status = 'delivered' then 'delivered'
    when ${m}.status = 'sent' then 'sent'
    when ${m}.status in ('queued', 'sending') then 'queued'
    when ${m}.status = 'suppressed' and ${m}.reason in ('no_consent', 'suppressed') then 'opted_out'
    when ${m}.status = 'cancelled' and ${m}.reason = 'opted out' then 'opted_out'
    when ${m}.status = 'cancelled' then 'cancelled'
    else 'failed' end`;
}
const RANK = `array['responded', 'clicked', 'opened', 'answered', 'delivered', 'sent', 'queued', 'opted_out', 'failed', 'cancelled']`;

/**
 * Every recipient of a campaign with its state now: a message's from its status; an enrollment's
 * converted when the journey converted it, else the best of the messages the journey sent it,
 * else pending while it runs (failed if it failed).
 */
export const RECIPIENTS = `
  select r.contact_id, r.occurrence_id, o.occurrence_key, r.seq, r.message_id, r.enrollment_id, r.outcome, r.reason, r.created_at,
         k.external_id, k.name, k.phone, k.email,
         coalesce(m.status, e.status) as detail, m.sent_at, m.delivered_at, m.replied_at,
         case when r.outcome = 'skipped' then 'skipped'
              when r.message_id is not null then ${messageState('m')}
              when e.status = 'converted' then 'converted'
              when em.state is not null then em.state
              when e.status = 'failed' then 'failed'
              when e.status is null and r.outcome = 'queued' then 'failed'
              else 'pending' end as state
    from campaign_recipients r
    join campaign_occurrences o on o.id = r.occurrence_id
    join contacts k on k.id = r.contact_id
    left join messages m on m.id = r.message_id
    left join enrollments e on e.id = r.enrollment_id
    left join lateral (
      select s.state from (select ${messageState('mm')} as state from messages mm where mm.enrollment_id = e.id and mm.kind = 'send') s
       order by array_position(${RANK}, s.state) limit 1
    ) em on r.enrollment_id is not null
   where r.tenant_id = $1 and r.campaign_id = $2`;

export interface RecipientRow {
  contact_id: string;
  occurrence_id: string;
  occurrence_key: string;
  seq: number;
  message_id: string | null;
  enrollment_id: string | null;
  outcome: string;
  reason: string | null;
  created_at: Date;
  external_id: string | null;
  name: string | null;
  phone: string | null;
  email: string | null;
  detail: string | null;
  sent_at: Date | null;
  delivered_at: Date | null;
  replied_at: Date | null;
  state: RecipientState;
}

export type CampaignTotals = Record<RecipientState | 'recipients', number>;

/** How many recipients are in each state, and in all. */
export async function campaignTotals(db: Queryable, tenantId: string, id: string): Promise<CampaignTotals> {
  const { rows } = await db.query<{ state: RecipientState; n: string }>(`select state, count(*) as n from (${RECIPIENTS}) x group by state`, [tenantId, id]);
  const totals = Object.fromEntries([['recipients', 0], ...RECIPIENT_STATES.map((s) => [s, 0])]) as CampaignTotals;
  for (const r of rows) {
    totals[r.state] = Number(r.n);
    totals.recipients += Number(r.n);
  }
  return totals;
}

function encodeRecipientCursor(r: { contact_id: string; occurrence_id: string }): string {
  return Buffer.from(`${r.contact_id}/${r.occurrence_id}`).toString('base64url');
}
function decodeRecipientCursor(cursor: string): [string, string] {
  const parts = Buffer.from(cursor, 'base64url').toString().split('/');
  if (parts.length !== 2 || !parts.every((p) => /^[0-9a-f-]{36}$/.test(p))) throw InputError.field('cursor', 'is not a cursor returned by this API');
  return [parts[0]!, parts[1]!];
}

/** One page of recipients in contact order, optionally of one state. */
export async function listRecipients(
  db: Queryable,
  tenantId: string,
  id: string,
  f: { limit?: number; cursor?: string; state?: RecipientState },
): Promise<{ data: RecipientRow[]; next_cursor: string | null }> {
  await getCampaign(db, tenantId, id);
  const limit = f.limit ?? 100;
  const [contact, occurrence] = f.cursor ? decodeRecipientCursor(f.cursor) : [null, null];
  const { rows } = await db.query<RecipientRow>(
    `select * from (${RECIPIENTS} and ($3::uuid is null or (r.contact_id, r.occurrence_id) > ($3::uuid, $4::uuid))
       order by r.contact_id, r.occurrence_id limit case when $5::text is null then $6::int end) x
      where $5::text is null or state = $5 order by contact_id, occurrence_id limit $6`,
    [tenantId, id, contact, occurrence, f.state ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeRecipientCursor(data[data.length - 1]!) : null };
}

/** Every recipient, a page at a time, for the CSV export. */
export async function* allRecipients(db: Queryable, tenantId: string, id: string, state?: RecipientState): AsyncGenerator<RecipientRow[]> {
  let cursor: string | undefined;
  do {
    const page = await listRecipients(db, tenantId, id, { limit: 1000, cursor, state });
    yield page.data;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}

/** The columns of a campaign's recipients as CSV (the API's ?format=csv and `rapport campaigns recipients --csv`). */
export const RECIPIENT_CSV_COLUMNS = [
  'contact_id',
  'external_id',
  'name',
  'phone',
  'email',
  'occurrence_key',
  'state',
  'detail',
  'reason',
  'message_id',
  'enrollment_id',
  'sent_at',
  'delivered_at',
  'replied_at',
] as const satisfies readonly (keyof RecipientRow)[];

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = v instanceof Date ? v.toISOString() : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Every recipient as CSV text, the header first, then a page of lines at a time. */
export async function* recipientsCsv(db: Queryable, tenantId: string, id: string, state?: RecipientState): AsyncGenerator<string> {
  yield `${RECIPIENT_CSV_COLUMNS.join(',')}\r\n`;
  for await (const page of allRecipients(db, tenantId, id, state)) {
    if (page.length) yield page.map((r) => `${RECIPIENT_CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n`).join('');
  }
}
