import type { Reentry } from '../core/journey/definition.js';
import { durationMs } from '../core/time.js';
import type { Queryable } from './db.js';
import { newId } from './ids.js';
import { queueResultWebhooks, type EndedEnrollment } from './result-webhooks.js';

/** The channel workers LISTEN on; any commit that makes work due now notifies it. */
export const WORK_CHANNEL = 'rapport_work';

/** Wakes the workers once the calling transaction commits (NOTIFY is delivered on commit). */
export async function notifyWork(tx: Queryable): Promise<void> {
  await tx.query(`select pg_notify('${WORK_CHANNEL}', '')`);
}

export interface EnrollRequest {
  contact_id: string;
  vars?: Record<string, unknown>;
}

export interface EnrollTarget {
  journey_id: string;
  tenant_id: string;
  version: number;
  reentry?: Reentry;
}

export type EnrollSkip = 'already_enrolled' | 'reentry_not_allowed';

export interface EnrollResult {
  enrolled: { contact_id: string; enrollment_id: string }[];
  skipped: { contact_id: string; reason: EnrollSkip }[];
}

/**
 * Enrols contacts in one journey version, due at once, in two statements whatever their number
 * (one when the caller already knows which of them are in the journey). Re-entry rules are
 * decided by an upsert on journey_entries: the row lock it takes makes two concurrent triggers
 * for the same contact queue behind each other, so a "never" or a cooldown holds under any number
 * of API and worker processes. The partial unique index on open enrollments keeps a contact from
 * being in the same journey twice at once. Contacts are taken in id order, so that two
 * transactions enrolling some of the same contacts lock them in the same order.
 * Call inside the transaction that records the cause (event, API call, campaign).
 *
 * `known.open`: the contacts with an open enrollment in this journey, as the caller read them in
 * this transaction; the lookup is then skipped.
 */
export async function enrollContacts(
  tx: Queryable,
  target: EnrollTarget,
  requests: EnrollRequest[],
  now: Date,
  source: string,
  known?: { open: ReadonlySet<string> },
): Promise<EnrollResult> {
  const result: EnrollResult = { enrolled: [], skipped: [] };
  const first = new Map<string, EnrollRequest>();
  for (const r of requests) {
    if (first.has(r.contact_id)) result.skipped.push({ contact_id: r.contact_id, reason: 'already_enrolled' });
    else first.set(r.contact_id, r);
  }
  if (!first.size) return result;

  const mode = target.reentry?.mode ?? 'never';
  const max = target.reentry?.max_entries ?? (mode === 'never' ? 1 : null);
  const cutoff = mode === 'cooldown' && target.reentry?.cooldown ? new Date(now.getTime() - durationMs(target.reentry.cooldown)) : null;
  const candidates = [...first.keys()];
  let alreadyOpen = known?.open;
  if (!alreadyOpen) {
    const { rows: openRows } = await tx.query<{ contact_id: string }>(
      'select e.contact_id from unnest($2::uuid[]) as x(contact_id) join enrollments e on e.journey_id = $1 and e.contact_id = x.contact_id and e.ended_at is null',
      [target.journey_id, candidates],
    );
    alreadyOpen = new Set(openRows.map((r) => r.contact_id));
  }
  const contacts = candidates.filter((c) => !alreadyOpen.has(c));
  for (const c of candidates) if (alreadyOpen.has(c)) result.skipped.push({ contact_id: c, reason: 'already_enrolled' });
  if (!contacts.length) return result;

  // The entry is counted and the enrollment opened in one statement: the enrollments insert
  // reads the contacts the journey_entries upsert admitted.
  const rows = [...contacts].sort().map((c) => ({ id: newId(), contact_id: c, vars: first.get(c)!.vars ?? {} }));
  const { rows: admitted } = await tx.query<{ contact_id: string; id: string | null }>(
    `with x as (select * from jsonb_to_recordset($5::jsonb) as x(id uuid, contact_id uuid, vars jsonb)),
          admitted as (
            insert into journey_entries as je (journey_id, contact_id, entries, last_entered_at)
            select $2, x.contact_id, 1, $4 from x
            on conflict (journey_id, contact_id) do update
               set entries = je.entries + 1, last_entered_at = excluded.last_entered_at
             where ($7::integer is null or je.entries < $7)
               and ($8::text = 'always' or ($8::text = 'cooldown' and je.last_entered_at <= $9))
            returning contact_id),
          opened as (
            insert into enrollments (id, tenant_id, journey_id, version, contact_id, status, node, due_at, vars, memo, steps, source, entered_at, updated_at)
            select x.id, $1, $2, $3, x.contact_id, 'active', null, $4, x.vars, '{}', 0, $6, $4, $4
              from x join admitted a on a.contact_id = x.contact_id
            on conflict (journey_id, contact_id) where ended_at is null do nothing
            returning id, contact_id)
     select a.contact_id, o.id from admitted a left join opened o on o.contact_id = a.contact_id`,
    [target.tenant_id, target.journey_id, target.version, now, JSON.stringify(rows), source, max, mode, cutoff],
  );
  const allowed = new Set(admitted.map((r) => r.contact_id));
  const opened = new Map(admitted.flatMap((r) => (r.id === null ? [] : [[r.contact_id, r.id] as const])));
  const open = new Set(opened.keys());
  for (const c of contacts) {
    const id = opened.get(c);
    if (id) result.enrolled.push({ contact_id: c, enrollment_id: id });
  }
  if (open.size) await notifyWork(tx);
  // A concurrent trigger opened an enrollment between the check above and this insert: the
  // entry counted for it did not happen.
  const lost = contacts.filter((c) => allowed.has(c) && !open.has(c));
  if (lost.length) {
    await tx.query('update journey_entries set entries = entries - 1 where journey_id = $1 and contact_id = any($2::uuid[])', [target.journey_id, lost]);
  }
  for (const c of contacts) {
    if (open.has(c)) continue;
    result.skipped.push({ contact_id: c, reason: allowed.has(c) ? 'already_enrolled' : 'reentry_not_allowed' });
  }
  return result;
}

export type EndStatus = 'completed' | 'converted' | 'exited' | 'cancelled' | 'failed';

/**
 * Locks these enrollments FOR UPDATE in id order, for a transaction about to change several of
 * them in more than one statement. An `update … from unnest(…)` locks rows in whatever order its
 * plan visits them, so two transactions changing overlapping sets that way can each hold a row
 * the other waits for; taking them all here first, sorted, makes the later statements find them
 * already held, and the second transaction waits for the first instead of deadlocking.
 */
export async function lockEnrollments(tx: Queryable, ids: string[]): Promise<void> {
  if (!ids.length) return;
  // The row lock is taken above the sort: rows are locked in the order they come out of it.
  await tx.query('select e.id from unnest($1::uuid[]) as x(id) join enrollments e on e.id = x.id order by e.id for update of e', [ids]);
}

/**
 * Ends open enrollments and cancels the messages they still have queued, in two statements, then
 * queues the result webhooks their journeys ask for. Returns the ids it ended (an enrollment that
 * had already ended is left as it was).
 */
export async function endEnrollments(tx: Queryable, tenantId: string, ids: string[], status: EndStatus, reason: string, now: Date): Promise<string[]> {
  if (!ids.length) return [];
  // Several at once (an opt-out ending a contact's journeys, an archive): in id order, so two
  // transactions ending overlapping sets queue instead of deadlocking. Callers that change the
  // same rows in other statements too lock them all first themselves (triggers.ts).
  if (ids.length > 1) await lockEnrollments(tx, ids);
  const { rows } = await tx.query<EndedEnrollment>(
    `update enrollments e
        set status = $3, end_reason = $4, ended_at = $5, updated_at = $5, due_at = null, paused_due_at = null, wait = null
       from unnest($2::uuid[]) as x(id)
      where e.id = x.id and e.tenant_id = $1 and e.ended_at is null
      returning e.id, e.tenant_id, e.journey_id, e.version`,
    [tenantId, ids, status, reason, now],
  );
  const ended = rows.map((r) => r.id);
  if (ended.length) {
    await tx.query(
      `insert into enrollment_steps (enrollment_id, seq, at, node, outcome, detail)
       select e.id, e.steps + 1, $2, e.node, $3, $4::jsonb from enrollments e where e.id = any($1::uuid[])`,
      [ended, now, status, JSON.stringify({ reason })],
    );
    await tx.query(`update enrollments set steps = steps + 1 where id = any($1::uuid[])`, [ended]);
    await cancelQueuedMessages(tx, tenantId, { enrollmentIds: ended }, `enrollment ${status}: ${reason}`, now);
    // After the cancelling, which would otherwise take the result webhook with the rest.
    if (await queueResultWebhooks(tx, rows, now)) await notifyWork(tx);
  }
  return ended;
}

/** Cancels messages still waiting in the outbox, by enrollment or by contact and channel. Returns how many. */
export async function cancelQueuedMessages(
  tx: Queryable,
  tenantId: string,
  which: { enrollmentIds: string[] } | { contactId: string; channel: string | null },
  reason: string,
  now: Date,
): Promise<number> {
  // Two statements rather than one with a CASE, so each can use its index.
  const { rows } =
    'enrollmentIds' in which
      ? await tx.query<{ id: string }>(
          `update messages set status = 'cancelled', reason = $3, due_at = null, updated_at = $4
            where enrollment_id = any($2::uuid[]) and tenant_id = $1 and status = 'queued' returning id`,
          [tenantId, which.enrollmentIds, reason, now],
        )
      : await tx.query<{ id: string }>(
          `update messages set status = 'cancelled', reason = $4, due_at = null, updated_at = $5
            where tenant_id = $1 and contact_id = $2 and ($3::text is null or channel = $3) and status = 'queued' returning id`,
          [tenantId, which.contactId, which.channel, reason, now],
        );
  if (rows.length) {
    await tx.query(
      `insert into message_status (message_id, status, at, detail) select x.id, 'cancelled', $2, $3::jsonb from unnest($1::uuid[]) as x(id)`,
      [rows.map((r) => r.id), now, JSON.stringify({ reason })],
    );
  }
  return rows.length;
}
