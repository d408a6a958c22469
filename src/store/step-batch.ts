import type { ConsentEntry } from '../core/consent.js';
import type { ContactFacts, EnrollmentState, EnrollmentStatus, StepOutcome } from '../core/journey/engine.js';
import { addressHash } from '../core/suppression.js';
import type { FrequencyCap, QuietHours, SendWindow } from '../core/tenant.js';
import { durationMs } from '../core/time.js';
import type { Queryable } from './db.js';
import { newId } from './ids.js';
import { queueResultWebhooks } from './result-webhooks.js';

/**
 * The scheduler's reads and writes, each one statement for the whole batch. Batches may span
 * tenants: every lookup is keyed by ids that carry the tenant with them.
 */

export interface ClaimedEnrollment extends EnrollmentState {
  tenant_id: string;
  journey_id: string;
  version: number;
  due_at: Date;
}

/**
 * Locks up to `limit` enrollments due by `now`, oldest first. SKIP LOCKED lets any number of
 * workers take disjoint batches; the locks hold until the caller's transaction ends, and a
 * worker that dies releases them, so its batch is simply claimed again.
 */
export async function claimDueEnrollments(tx: Queryable, now: Date, limit: number): Promise<ClaimedEnrollment[]> {
  const { rows } = await tx.query<ClaimedEnrollment>(
    `select id, tenant_id, journey_id, version, contact_id, node, wait, vars, memo, steps, entered_at, due_at
       from enrollments
      where due_at <= $1
      order by due_at
      limit $2
      for update skip locked`,
    [now, limit],
  );
  return rows;
}

/** Holds enrollments of paused journeys until resume moves paused_due_at back. */
export async function parkEnrollments(tx: Queryable, ids: string[]): Promise<void> {
  if (ids.length) await tx.query('update enrollments set paused_due_at = due_at, due_at = null where id = any($1::uuid[])', [ids]);
}

export interface TenantPolicyRow {
  id: string;
  name: string;
  time_zone: string;
  send_window: SendWindow;
  quiet_hours: QuietHours;
  frequency_caps: FrequencyCap[];
  settings: Record<string, unknown>;
}

/**
 * The status of each journey in the batch and the policies of their tenants (an enrollment's
 * tenant is its journey's), in one statement. The journeys are read FOR SHARE, so that a pause or
 * resume (which updates the journey row) waits for this batch to commit and then sees its result.
 */
export async function journeysAndTenants(tx: Queryable, journeyIds: string[]): Promise<{ statuses: Map<string, string>; tenants: Map<string, TenantPolicyRow> }> {
  const { rows } = await tx.query<TenantPolicyRow & { journey_id: string; status: string }>(
    `select j.id as journey_id, j.status, t.id, t.name, t.time_zone, t.send_window, t.quiet_hours, t.frequency_caps, t.settings
       from journeys j join tenants t on t.id = j.tenant_id
      where j.id = any($1::uuid[]) order by j.id for share of j`,
    [journeyIds],
  );
  const statuses = new Map<string, string>();
  const tenants = new Map<string, TenantPolicyRow>();
  for (const { journey_id, status, ...tenant } of rows) {
    statuses.set(journey_id, status);
    tenants.set(tenant.id, tenant);
  }
  return { statuses, tenants };
}

export async function tenantPolicies(tx: Queryable, tenantIds: string[]): Promise<Map<string, TenantPolicyRow>> {
  const { rows } = await tx.query<TenantPolicyRow>(
    'select id, name, time_zone, send_window, quiet_hours, frequency_caps, settings from tenants where id = any($1::uuid[])',
    [tenantIds],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

type Pair = { tenant_id: string; contact_id: string };
// The reads below take a batch's ids as an unnest and look each one up through a LATERAL subquery.
// Joined plainly, PostgreSQL hashes the whole table at 10,000-30,000 rows (8-20 ms per batch of
// 500) where probing the index for each id takes 1-3 ms at every size; `offset 0` keeps the
// planner from pulling the subquery back up into that join (docs/performance.md).
const pairArgs = (pairs: Pair[]) => [pairs.map((p) => p.tenant_id), pairs.map((p) => p.contact_id)];

export async function loadContacts(tx: Queryable, ids: string[]): Promise<Map<string, ContactFacts>> {
  if (!ids.length) return new Map();
  const { rows } = await tx.query<ContactFacts>(
    `select c.id, c.name, c.email, c.phone, c.whatsapp, c.time_zone, c.locale, c.external_id, c.attributes, c.tags
       from unnest($1::uuid[]) as x(id)
      cross join lateral (select * from contacts c where c.id = x.id offset 0) c`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * loadContacts and loadConsent in one statement: each contact with its consent rows as a JSON
 * array. A contact that no longer exists is in neither map.
 */
export async function loadContactFacts(tx: Queryable, pairs: Pair[]): Promise<{ contacts: Map<string, ContactFacts>; consent: Map<string, ConsentEntry[]> }> {
  const contacts = new Map<string, ContactFacts>();
  const consent = new Map<string, ConsentEntry[]>();
  const distinct = [...new Map(pairs.map((p) => [p.contact_id, p])).values()];
  if (!distinct.length) return { contacts, consent };
  const { rows } = await tx.query<ContactFacts & { consent: (Omit<ConsentEntry, 'recorded_at'> & { recorded_at: string })[] }>(
    `select c.id, c.name, c.email, c.phone, c.whatsapp, c.time_zone, c.locale, c.external_id, c.attributes, c.tags,
            (select coalesce(json_agg(json_build_object('channel', s.channel, 'topic', s.topic, 'status', s.status, 'type', s.type, 'recorded_at', s.recorded_at)), '[]')
               from consent_state s where s.tenant_id = x.tenant_id and s.contact_id = x.contact_id) as consent
       from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
      cross join lateral (select * from contacts c where c.id = x.contact_id offset 0) c`,
    pairArgs(distinct),
  );
  for (const { consent: entries, ...contact } of rows) {
    contacts.set(contact.id, contact);
    if (entries.length) consent.set(contact.id, entries.map((e) => ({ ...e, recorded_at: new Date(e.recorded_at) })));
  }
  return { contacts, consent };
}

/** When each contact last wrote on WhatsApp: the start of their 24-hour customer-service window. */
export async function loadWhatsappInbound(tx: Queryable, pairs: Pair[]): Promise<Map<string, Date>> {
  const out = new Map<string, Date>();
  if (!pairs.length) return out;
  const { rows } = await tx.query<{ contact_id: string; last_inbound_at: Date }>(
    `select c.contact_id, c.last_inbound_at
       from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
      cross join lateral (select * from conversations c
                           where c.tenant_id = x.tenant_id and c.contact_id = x.contact_id and c.channel = 'whatsapp' and c.last_inbound_at is not null
                          offset 0) c`,
    pairArgs(pairs),
  );
  for (const r of rows) out.set(r.contact_id, new Date(r.last_inbound_at));
  return out;
}

export async function loadConsent(tx: Queryable, pairs: Pair[]): Promise<Map<string, ConsentEntry[]>> {
  const out = new Map<string, ConsentEntry[]>();
  if (!pairs.length) return out;
  const { rows } = await tx.query<ConsentEntry & { contact_id: string }>(
    `select s.contact_id, s.channel, s.topic, s.status, s.type, s.recorded_at
       from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
      cross join lateral (select * from consent_state s where s.tenant_id = x.tenant_id and s.contact_id = x.contact_id offset 0) s`,
    pairArgs(pairs),
  );
  for (const { contact_id, ...e } of rows) {
    const list = out.get(contact_id);
    if (list) list.push(e);
    else out.set(contact_id, [e]);
  }
  return out;
}

/** The suppressed (tenant, channel, address) triples among these addresses, as `${tenant}|${channel}|${hash}` keys. */
export async function loadSuppressed(tx: Queryable, entries: { tenant_id: string; address: string }[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (!entries.length) return out;
  const distinct = new Map<string, { tenant_id: string; hash: string }>();
  for (const e of entries) {
    const hash = addressHash(e.address);
    distinct.set(`${e.tenant_id}|${hash}`, { tenant_id: e.tenant_id, hash });
  }
  const list = [...distinct.values()];
  // One probe per address on suppressions_by_address (the list only grows: hashing it whole per
  // batch would cost more every week).
  const { rows } = await tx.query<{ tenant_id: string; channel: string; address_hash: string }>(
    `select s.tenant_id, s.channel, s.address_hash
       from unnest($1::uuid[], $2::text[]) as x(tenant_id, hash)
       cross join lateral (select s.tenant_id, s.channel, s.address_hash from suppressions s
                            where s.tenant_id = x.tenant_id and s.address_hash = x.hash offset 0) s`,
    [list.map((l) => l.tenant_id), list.map((l) => l.hash)],
  );
  for (const r of rows) out.add(`${r.tenant_id}|${r.channel}|${r.address_hash}`);
  return out;
}

export function isSuppressedIn(set: Set<string>, tenantId: string, channel: string, address: string): boolean {
  if (!set.size) return false;
  const hash = addressHash(address);
  return set.has(`${tenantId}|${channel}|${hash}`) || set.has(`${tenantId}|all|${hash}`);
}

/** Statuses of messages that never went out, and so do not count toward frequency caps. */
const UNCOUNTED = ['suppressed', 'cancelled', 'failed', 'bounced', 'undeliverable'];

/** Sends counting toward caps of these contacts since `since`, by contact. */
export async function loadRecentSends(tx: Queryable, pairs: Pair[], since: Date): Promise<Map<string, { channel: string; at: Date }[]>> {
  const out = new Map<string, { channel: string; at: Date }[]>();
  if (!pairs.length) return out;
  const { rows } = await tx.query<{ contact_id: string; channel: string; at: Date }>(
    `select m.contact_id, m.channel, m.created_at as at
       from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
      cross join lateral (select * from messages m
                           where m.tenant_id = x.tenant_id and m.contact_id = x.contact_id and m.created_at > $3
                             and m.kind = 'send' and m.channel <> 'webhook' and m.status <> all($4::text[])
                          offset 0) m`,
    [...pairArgs(pairs), since, UNCOUNTED],
  );
  for (const r of rows) {
    const list = out.get(r.contact_id);
    if (list) list.push({ channel: r.channel, at: r.at });
    else out.set(r.contact_id, [{ channel: r.channel, at: r.at }]);
  }
  return out;
}

/** The longest cap period of a tenant, in ms (0 without caps). */
export function longestCap(caps: readonly FrequencyCap[]): number {
  return caps.reduce((m, c) => Math.max(m, durationMs(c.period)), 0);
}

export type MessageFacts = Record<string, { sent_at: Date | null; delivered_at: Date | null; opened_at: Date | null; clicked_at: Date | null; replied_at: Date | null; failed_at: Date | null }>;

/** Each enrollment's latest message per send node, for engagement conditions. */
export async function loadEngagement(tx: Queryable, enrollmentIds: string[]): Promise<Map<string, MessageFacts>> {
  const out = new Map<string, MessageFacts>();
  if (!enrollmentIds.length) return out;
  const { rows } = await tx.query<{ enrollment_id: string; node: string } & MessageFacts[string]>(
    `select m.enrollment_id, m.node, m.sent_at, m.delivered_at, m.opened_at, m.clicked_at, m.replied_at, m.failed_at
       from messages m where m.enrollment_id = any($1::uuid[]) and m.kind = 'send'
      order by m.created_at`,
    [enrollmentIds],
  );
  for (const { enrollment_id, node, ...facts } of rows) {
    const m = out.get(enrollment_id) ?? {};
    m[node] = facts;
    out.set(enrollment_id, m);
  }
  return out;
}

/** Occurrence times of the named events of these contacts since `since`, by contact and name. */
export async function loadEventTimes(tx: Queryable, pairs: Pair[], names: string[], since: Date | null): Promise<Map<string, Map<string, number[]>>> {
  const out = new Map<string, Map<string, number[]>>();
  if (!pairs.length || !names.length) return out;
  const { rows } = await tx.query<{ contact_id: string; name: string; occurred_at: Date }>(
    `select e.contact_id, e.name, e.occurred_at
       from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
      cross join lateral (select * from events e
                           where e.tenant_id = x.tenant_id and e.contact_id = x.contact_id
                             and e.name = any($3::text[]) and ($4::timestamptz is null or e.occurred_at > $4)
                          offset 0) e`,
    [...pairArgs(pairs), names, since],
  );
  for (const r of rows) {
    let byName = out.get(r.contact_id);
    if (!byName) out.set(r.contact_id, (byName = new Map()));
    const list = byName.get(r.name);
    if (list) list.push(r.occurred_at.getTime());
    else byName.set(r.name, [r.occurred_at.getTime()]);
  }
  return out;
}

export interface OutcomeRow {
  tenant_id: string;
  journey_id: string;
  version: number;
  contact_id: string;
  outcome: StepOutcome;
}

const ENDED: ReadonlySet<EnrollmentStatus> = new Set(['completed', 'converted', 'exited', 'cancelled', 'failed']);

/**
 * Writes every outcome of a batch: enrollment rows, history, outbox messages with their first
 * status, contact updates, and the result webhooks of the enrollments that ended. Returns how
 * many messages were queued for now or earlier.
 */
export async function writeOutcomes(tx: Queryable, now: Date, rows: OutcomeRow[]): Promise<{ queued: number; messages: number; steps: number }> {
  if (!rows.length) return { queued: 0, messages: 0, steps: 0 };
  const enrollments = rows.map(({ outcome: o }) => ({
    id: o.enrollment_id,
    status: o.status,
    node: o.node,
    due_at: o.due_at,
    wait: o.wait,
    vars: o.vars,
    memo: o.memo,
    steps: o.steps,
    ended: ENDED.has(o.status),
    end_reason: o.end_reason,
  }));
  await tx.query(
    `update enrollments e
        set status = x.status, node = x.node, due_at = x.due_at, wait = x.wait, vars = x.vars, memo = x.memo, steps = x.steps,
            updated_at = $2::timestamptz, ended_at = case when x.ended then $2::timestamptz end, end_reason = x.end_reason
       from jsonb_to_recordset($1::jsonb) as x(id uuid, status text, node text, due_at timestamptz, wait jsonb, vars jsonb, memo jsonb, steps int, ended boolean, end_reason text)
      where e.id = x.id`,
    [JSON.stringify(enrollments), now],
  );

  const history: { enrollment_id: string; seq: number; node: string | null; outcome: string; detail: unknown }[] = [];
  for (const { outcome: o } of rows) {
    // advance() counts a step per history record, so the records of this pass end at o.steps.
    let seq = o.steps - o.history.length;
    for (const h of o.history) history.push({ enrollment_id: o.enrollment_id, seq: ++seq, node: h.node, outcome: h.outcome, detail: h.detail ?? null });
  }
  if (history.length) {
    await tx.query(
      `insert into enrollment_steps (enrollment_id, seq, at, node, outcome, detail)
       select x.enrollment_id, x.seq, $2, x.node, x.outcome, x.detail from jsonb_to_recordset($1::jsonb) as x(enrollment_id uuid, seq int, node text, outcome text, detail jsonb)`,
      [JSON.stringify(history), now],
    );
  }

  const messages: Record<string, unknown>[] = [];
  let queued = 0;
  for (const r of rows) {
    const o = r.outcome;
    for (const m of o.messages) {
      if (m.status === 'queued' && m.due_at && m.due_at.getTime() <= now.getTime()) queued++;
      messages.push({
        id: newId(),
        tenant_id: r.tenant_id,
        contact_id: r.contact_id,
        enrollment_id: o.enrollment_id,
        journey_id: r.journey_id,
        node: m.node,
        kind: m.kind,
        channel: m.channel,
        topic: m.topic,
        transactional: m.transactional,
        status: m.status,
        reason: m.reason,
        idempotency_key: m.idempotency_key,
        due_at: m.due_at,
        content: { version: r.version, vars: m.vars },
        to_address: m.to_address,
        priority: m.priority,
      });
    }
  }
  if (messages.length) {
    await tx.query(
      `with ins as (
         insert into messages (id, tenant_id, contact_id, enrollment_id, journey_id, node, kind, channel, topic, transactional, status, reason,
                               idempotency_key, due_at, content, to_address, priority, created_at, updated_at)
         select x.id, x.tenant_id, x.contact_id, x.enrollment_id, x.journey_id, x.node, x.kind, x.channel, x.topic, x.transactional, x.status, x.reason,
                x.idempotency_key, x.due_at, x.content, x.to_address, coalesce(x.priority, 3), $2, $2
           from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, contact_id uuid, enrollment_id uuid, journey_id uuid, node text, kind text,
                channel text, topic text, transactional boolean, status text, reason text, idempotency_key text, due_at timestamptz, content jsonb, to_address text, priority smallint)
         on conflict (tenant_id, idempotency_key) do nothing
         returning id, status, reason)
       insert into message_status (message_id, status, at, detail)
       select id, status, $2, case when reason is null then null else jsonb_build_object('reason', reason) end from ins`,
      [JSON.stringify(messages), now],
    );
  }

  const updates = rows
    .filter((r) => r.outcome.contactUpdate)
    .map((r) => {
      const u = r.outcome.contactUpdate!;
      const set = Object.fromEntries(Object.entries(u.attributes).filter(([, v]) => v !== null));
      const remove = Object.keys(u.attributes).filter((k) => u.attributes[k] === null);
      return { id: r.contact_id, set, remove, add_tags: u.add_tags, remove_tags: u.remove_tags };
    });
  if (updates.length) {
    await tx.query(
      `update contacts c
          set attributes = (c.attributes || x.set) - array(select jsonb_array_elements_text(x.remove)),
              tags = array(select distinct t from unnest(c.tags || array(select jsonb_array_elements_text(x.add_tags))) as t
                            where t <> all(array(select jsonb_array_elements_text(x.remove_tags))) order by t),
              updated_at = $2
         from jsonb_to_recordset($1::jsonb) as x(id uuid, set jsonb, remove jsonb, add_tags jsonb, remove_tags jsonb)
        where c.id = x.id`,
      [JSON.stringify(updates), now],
    );
  }
  // Last, so a URL read from the contact sees the changes of the final step.
  const ended = rows.filter((r) => ENDED.has(r.outcome.status)).map((r) => ({ id: r.outcome.enrollment_id, tenant_id: r.tenant_id, journey_id: r.journey_id, version: r.version }));
  queued += await queueResultWebhooks(tx, ended, now);
  return { queued, messages: messages.length, steps: history.length };
}
