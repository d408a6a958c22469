import { LOCAL_GRACE_MS, nextOccurrence, occurrenceAt, paceLocal, wallInZone, type LocalPace } from '../core/campaign-schedule.js';
import type { CampaignActionSpec, CampaignAudience, CampaignSchedule, CampaignThrottle } from '../core/campaign.js';
import type { Reentry } from '../core/journey/definition.js';
import { addressFor } from '../core/policy.js';
import { pulseTargeting } from '../core/pulse.js';
import type { SegmentCondition } from '../core/segment.js';
import { resolveZone } from '../core/zone.js';
import { CONTACT_COLUMNS, type ContactRow } from '../store/contacts.js';
import type { Db, Queryable } from '../store/db.js';
import { enrollContacts, notifyWork } from '../store/enrollments.js';
import { newId } from '../store/ids.js';
import { nextWindowMembers } from '../store/segments.js';
import { pulseListMembers, writePulseBatch } from './pulse.js';

/**
 * Fires campaigns and writes their audiences, from every worker loop. A sweep does three things:
 *
 * 1. Starts due occurrences: campaigns whose next_run_at has come are taken FOR UPDATE SKIP
 *    LOCKED, and each gets an occurrence row keyed by its scheduled instant. The insert is ON
 *    CONFLICT DO NOTHING on (campaign_id, occurrence_key), so however many workers sweep, one
 *    occurrence is started once.
 * 2. Writes batches: a running occurrence is taken FOR UPDATE SKIP LOCKED, the next `batchSize`
 *    members after its cursor are read (keyset on contact id, the segment judged as of the
 *    occurrence's start), and in the same transaction each gets a recipient row and a queued
 *    message (idempotency key campaign:<occurrence>:<contact>) or an enrollment. The throttle
 *    becomes due_at: the nth recipient is due floor(n / per_minute) minutes after the pace
 *    start (recipient-local: the nth of those sharing a local instant, after that instant),
 *    and the dispatcher sends at that pace. A pause or stop waits for the batch's lock.
 * 3. Completes occurrences whose audience is written, whose last send has fallen due and whose
 *    pulse messages are all back from the model (a throttled campaign stays running, and can be
 *    paused, while its messages trickle out or wait for the model), then
 *    running campaigns with no occurrence left open and none to come.
 *
 * With no campaign due or running, a sweep is one query on two partial indexes.
 */

export const DEFAULT_CAMPAIGN_BATCH = 500;
/** Batches per sweep, so one large campaign does not keep a worker from its other work. */
const MAX_BATCHES_PER_SWEEP = 10;
const MAX_STARTS_PER_SWEEP = 100;

export interface CampaignSweep {
  started: number;
  batches: number;
  recipients: number;
  completed: number;
  /** More batches are waiting: the caller should sweep again soon. */
  more: boolean;
  /** A campaign was due or running: pulse messages may be waiting for a model (engine/pulse-refine.ts). */
  active: boolean;
}

export interface Claimed {
  id: string;
  tenant_id: string;
  campaign_id: string;
  scheduled_for: Date;
  after: string | null;
  written: number;
  pace_from: Date;
  paced: number;
  started_at: Date;
  audience: CampaignAudience;
  action: CampaignActionSpec;
  throttle: CampaignThrottle;
  /** A recipient-local occurrence's wall time; null otherwise. */
  local_at: string | null;
  /** A recipient-local occurrence's throttle, per local instant. */
  local_pace: LocalPace;
  time_zone: string;
  /** The tenant's floor for a pulse that sets none of its own. */
  pulse_min_engagement: number | null;
}

/**
 * One sweep at `now`; see the top of this file. `refine`: a chat model is configured, so pulse
 * messages are written held for it (engine/pulse-refine.ts).
 */
export async function runCampaigns(db: Db, now: Date, opts: { batchSize?: number; maxBatches?: number; refine?: boolean } = {}): Promise<CampaignSweep> {
  const sweep: CampaignSweep = { started: 0, batches: 0, recipients: 0, completed: 0, more: false, active: false };
  // One round trip on two partial indexes in the common case, where no campaign is due or running.
  const { rows } = await db.query<{ work: boolean }>(
    `select exists (select 1 from campaigns where next_run_at <= $1 and status in ('scheduled', 'running')) or exists (select 1 from campaigns where status = 'running') as work`,
    [now],
  );
  if (!rows[0]!.work) return sweep;
  sweep.active = true;
  sweep.started = await startDueOccurrences(db, now);
  const max = opts.maxBatches ?? MAX_BATCHES_PER_SWEEP;
  while (sweep.batches < max) {
    const n = await db.transaction((tx) => writeNextBatch(tx, now, opts.batchSize ?? DEFAULT_CAMPAIGN_BATCH, opts.refine ?? false));
    if (n === null) break;
    sweep.batches++;
    sweep.recipients += n;
  }
  sweep.more = sweep.batches === max;
  // Outside the batch transactions: completing takes the campaign row, which pause and stop
  // take before the occurrence rows; a batch holding an occurrence must not wait for it.
  await db.query(
    `update campaign_occurrences set status = 'completed', completed_at = $1
      where status = 'running' and audience_done and (sends_until is null or sends_until <= $1)
        and not exists (select 1 from pulse_refinements r where r.occurrence_id = campaign_occurrences.id)`,
    [now],
  );
  const { rowCount } = await db.query(
    `update campaigns c set status = 'completed', completed_at = $1, updated_at = $1
      where c.status = 'running' and c.next_run_at is null
        and not exists (select 1 from campaign_occurrences o where o.campaign_id = c.id and o.status in ('running', 'paused'))`,
    [now],
  );
  sweep.completed = rowCount;
  return sweep;
}

async function startDueOccurrences(db: Db, now: Date): Promise<number> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string; tenant_id: string; next_run_at: Date; next_local: string | null; schedule: CampaignSchedule; time_zone: string }>(
      `select c.id, c.tenant_id, c.next_run_at, c.next_local, c.schedule, t.time_zone
         from campaigns c join tenants t on t.id = c.tenant_id
        where c.next_run_at <= $1 and c.status in ('scheduled', 'running')
        order by c.next_run_at limit ${MAX_STARTS_PER_SWEEP} for update of c skip locked`,
      [now],
    );
    if (!rows.length) return 0;
    const due = rows.map((c) => {
      const occurrence = occurrenceAt(c.schedule, new Date(c.next_run_at), c.next_local);
      // A recurring schedule's next tick is set in the same transaction, so no sweep can see the
      // campaign due again for the tick it is starting.
      const next = nextOccurrence(c.schedule, c.time_zone, occurrence, now);
      return { c, occurrence, next };
    });
    const occurrences = due.map(({ c, occurrence: o }) => ({ id: newId(), tenant_id: c.tenant_id, campaign_id: c.id, key: o.key, scheduled_for: o.start, local_at: o.local }));
    const { rowCount } = await tx.query(
      `insert into campaign_occurrences (id, tenant_id, campaign_id, occurrence_key, scheduled_for, local_at, status, pace_from, started_at)
       select x.id, x.tenant_id, x.campaign_id, x.key, x.scheduled_for, x.local_at, 'running', $2, $2
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, campaign_id uuid, key text, scheduled_for timestamptz, local_at text)
       on conflict (campaign_id, occurrence_key) do nothing`,
      [JSON.stringify(occurrences), now],
    );
    await tx.query(
      `update campaigns c set status = 'running', next_run_at = x.next_run_at, next_local = x.next_local, started_at = coalesce(c.started_at, $2), updated_at = $2
         from jsonb_to_recordset($1::jsonb) as x(id uuid, next_run_at timestamptz, next_local text) where c.id = x.id`,
      [JSON.stringify(due.map(({ c, next }) => ({ id: c.id, next_run_at: next?.start ?? null, next_local: next?.local ?? null }))), now],
    );
    return rowCount;
  });
}

/** Writes the next batch of one running occurrence; null when none is waiting (or all are locked). */
async function writeNextBatch(tx: Queryable, now: Date, batchSize: number, refine: boolean): Promise<number | null> {
  const { rows } = await tx.query<Claimed>(
    `select o.id, o.tenant_id, o.campaign_id, o.scheduled_for, o.after, o.written, o.pace_from, o.paced, o.started_at, c.audience, c.action, c.throttle, o.local_at, o.local_pace, t.time_zone,
            (t.settings->>'pulse_min_engagement')::float8 as pulse_min_engagement
       from campaign_occurrences o join campaigns c on c.id = o.campaign_id join tenants t on t.id = o.tenant_id
      where o.status = 'running' and not o.audience_done and c.status = 'running'
      order by o.started_at limit 1 for update of o skip locked`,
  );
  const o = rows[0];
  if (!o) return null;
  const { members: all, done } = await nextMembers(tx, o, batchSize);
  // Recipient-local: each member is due at the occurrence's wall time in their own zone, and one
  // whose time had gone by when the occurrence started is skipped rather than sent hours late.
  const local = o.local_at ? localDueTimes(o, all, now) : null;
  const members = local ? all.filter((c) => !local.late.has(c.id)) : all;
  // Recipient-local: paced from each recipient's local instant, counted across batches in
  // local_pace; otherwise from the occurrence's pace start. Computed once: `due` is asked again.
  const perMinute = o.throttle.per_minute;
  const dueAt = members.map((c, j) => {
    if (local) return paceLocal(o.local_pace, local.due.get(c.id)!, now, perMinute);
    const paced = perMinute ? new Date(new Date(o.pace_from).getTime() + Math.floor((o.paced + j) / perMinute) * 60_000) : now;
    return paced > now ? paced : now;
  });
  const due = (j: number) => dueAt[j]!;
  if (local?.late.size) {
    const late = all.filter((c) => local.late.has(c.id));
    await insertRecipients(
      tx,
      o,
      late.map((c, k) => ({ contact_id: c.id, seq: o.written + members.length + k, message_id: null, enrollment_id: null, outcome: 'skipped' as const, reason: 'local_time_passed' })),
      now,
    );
  }
  let sendsUntil = now;
  for (let j = 0; j < members.length; j++) {
    const at = due(j);
    if (at > sendsUntil) sendsUntil = at;
  }
  if (members.length) {
    if (o.action.send) await queueMessages(tx, o, members, due, now);
    else if (o.action.pulse) await writePulseBatch(tx, o, members, due, now, refine);
    else await enrolMembers(tx, o, members, due, now);
    await notifyWork(tx);
  }
  await tx.query(
    `update campaign_occurrences set after = coalesce($2, after), written = written + $3, paced = paced + $6, audience_done = $4,
            sends_until = greatest(sends_until, $5::timestamptz), local_pace = $7::jsonb
      where id = $1`,
    [o.id, all.length ? all[all.length - 1]!.id : null, all.length, done, sendsUntil, members.length, JSON.stringify(o.local_pace)],
  );
  return all.length;
}

/** Each member's due time at the occurrence's wall time in their zone, and who is too late for it. */
function localDueTimes(o: Claimed, members: ContactRow[], now: Date): { due: Map<string, Date>; late: Set<string> } {
  const due = new Map<string, Date>();
  const late = new Set<string>();
  // Judged when the batch is written: a pause or a backlog must not turn into a late send.
  const cutoff = now.getTime() - LOCAL_GRACE_MS;
  for (const c of members) {
    const at = wallInZone(o.local_at!, resolveZone(c, o.time_zone).zone);
    if (at.getTime() < cutoff) late.add(c.id);
    else due.set(c.id, at);
  }
  return { due, late };
}

/** The next members after the occurrence's cursor, in contact id order, and whether they are the last. */
async function nextMembers(tx: Queryable, o: Claimed, limit: number): Promise<{ members: ContactRow[]; done: boolean }> {
  const a = o.audience;
  const pulse = o.action.pulse;
  if (a.contact_ids && pulse) return pulseListMembers(tx, o, pulse, a.contact_ids, limit);
  if (a.contact_ids) {
    const { rows } = await tx.query<ContactRow>(
      `select ${CONTACT_COLUMNS} from contacts where tenant_id = $1 and id = any($2::uuid[]) and ($3::uuid is null or id > $3) order by id limit $4`,
      [o.tenant_id, a.contact_ids, o.after, limit],
    );
    return { members: rows, done: rows.length < limit };
  }
  let definition: unknown = a.definition;
  if (a.segment_id) {
    const { rows } = await tx.query<{ definition: unknown }>('select definition from segments where tenant_id = $1 and id = $2', [o.tenant_id, a.segment_id]);
    // A segment deleted after the campaign fired: nobody further is in it.
    if (!rows[0]) return { members: [], done: true };
    definition = rows[0].definition;
  }
  // A pulse narrows its audience (without one, every contact) by its own targeting.
  if (pulse) definition = pulseTargeting(pulse, definition as SegmentCondition | undefined, o.pulse_min_engagement);
  // Judged as of the occurrence's start, so "no interaction in 180 days" means the same for the last batch as for the first.
  return nextWindowMembers(tx, o.tenant_id, definition, new Date(o.started_at), o.after, limit);
}

async function queueMessages(tx: Queryable, o: Claimed, members: ContactRow[], due: (j: number) => Date, now: Date): Promise<void> {
  const send = o.action.send!;
  const messages = members.map((c, j) => ({
    id: newId(),
    contact_id: c.id,
    idempotency_key: `campaign:${o.id}:${c.id}`,
    to_address: addressFor(send.channel, c),
    due_at: due(j).toISOString(),
    seq: o.written + j,
  }));
  const { rows: queued } = await tx.query<{ id: string; contact_id: string }>(
    `with ins as (
       insert into messages (id, tenant_id, contact_id, kind, channel, topic, transactional, status, idempotency_key, due_at, content, to_address, priority, created_at, updated_at)
       select x.id, $1, x.contact_id, 'send', $3, $4, $5, 'queued', x.idempotency_key, x.due_at, $6, x.to_address, $7, $8, $8
         from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, idempotency_key text, due_at timestamptz, to_address text)
       on conflict (tenant_id, idempotency_key) do nothing
       returning id, contact_id),
     st as (insert into message_status (message_id, status, at) select id, 'queued', $8 from ins)
     select id, contact_id from ins`,
    [
      o.tenant_id,
      JSON.stringify(messages),
      send.channel,
      send.topic ?? (send.transactional ? 'transactional' : 'marketing'),
      send.transactional ?? false,
      JSON.stringify({ inline: send.content }),
      send.priority ?? 2,
      now,
    ],
  );
  const byContact = new Map(queued.map((q) => [q.contact_id, q.id]));
  await insertRecipients(
    tx,
    o,
    messages.map((m) => ({ contact_id: m.contact_id, seq: m.seq, message_id: byContact.get(m.contact_id) ?? null, enrollment_id: null, outcome: 'queued' as const, reason: null })),
    now,
  );
}

async function enrolMembers(tx: Queryable, o: Claimed, members: ContactRow[], due: (j: number) => Date, now: Date): Promise<void> {
  const { rows } = await tx.query<{ status: string; version: number | null; reentry: Reentry | null }>(
    `select j.status, j.version, v.definition->'reentry' as reentry
       from journeys j left join journey_versions v on v.journey_id = j.id and v.version = j.version
      where j.tenant_id = $1 and j.id = $2 for share of j`,
    [o.tenant_id, o.action.journey_id],
  );
  const j = rows[0];
  const seqOf = new Map(members.map((c, i) => [c.id, o.written + i]));
  if (!j || j.status !== 'active' || j.version === null) {
    const reason = `journey ${j ? j.status : 'deleted'}`;
    await insertRecipients(tx, o, members.map((c) => ({ contact_id: c.id, seq: seqOf.get(c.id)!, message_id: null, enrollment_id: null, outcome: 'skipped' as const, reason })), now);
    return;
  }
  const result = await enrollContacts(
    tx,
    { journey_id: o.action.journey_id!, tenant_id: o.tenant_id, version: j.version, reentry: j.reentry ?? undefined },
    members.map((c) => ({ contact_id: c.id, vars: { campaign_id: o.campaign_id } })),
    now,
    'campaign',
  );
  // Spaced by the throttle, or due at each recipient's local time: otherwise the journey starts now.
  if ((o.throttle.per_minute || o.local_at) && result.enrolled.length) {
    const spread = result.enrolled.map((e) => ({ id: e.enrollment_id, due_at: due(seqOf.get(e.contact_id)! - o.written).toISOString() }));
    await tx.query(`update enrollments e set due_at = x.due_at from jsonb_to_recordset($1::jsonb) as x(id uuid, due_at timestamptz) where e.id = x.id`, [JSON.stringify(spread)]);
  }
  await insertRecipients(
    tx,
    o,
    [
      ...result.enrolled.map((e) => ({ contact_id: e.contact_id, seq: seqOf.get(e.contact_id)!, message_id: null, enrollment_id: e.enrollment_id, outcome: 'enrolled' as const, reason: null })),
      ...result.skipped.map((s) => ({ contact_id: s.contact_id, seq: seqOf.get(s.contact_id)!, message_id: null, enrollment_id: null, outcome: 'skipped' as const, reason: s.reason })),
    ],
    now,
  );
}

export interface RecipientInsert {
  contact_id: string;
  seq: number;
  message_id: string | null;
  enrollment_id: string | null;
  outcome: 'queued' | 'enrolled' | 'skipped';
  reason: string | null;
}

export async function insertRecipients(tx: Queryable, o: Claimed, rows: RecipientInsert[], now: Date): Promise<void> {
  if (!rows.length) return;
  await tx.query(
    `insert into campaign_recipients (occurrence_id, tenant_id, campaign_id, contact_id, seq, message_id, enrollment_id, outcome, reason, created_at)
     select $1, $2, $3, x.contact_id, x.seq, x.message_id, x.enrollment_id, x.outcome, x.reason, $5
       from jsonb_to_recordset($4::jsonb) as x(contact_id uuid, seq int, message_id uuid, enrollment_id uuid, outcome text, reason text)
     on conflict (occurrence_id, contact_id) do nothing`,
    [o.id, o.tenant_id, o.campaign_id, JSON.stringify(rows), now],
  );
}
