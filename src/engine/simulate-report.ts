import type { JourneyDefinition } from '../core/journey/definition.js';
import type { Db } from '../store/db.js';
import type { SyntheticContact } from './simulate-crowd.js';
import type { FunnelRow, TimelineEntry } from './simulate.js';
import { REPLY_EVENT } from './triggers.js';

/** The simulation's report, read back from its database once virtual time has run out. */

/** Outcomes in the order a reader follows a node; anything else after them, alphabetically. */
const OUTCOME_ORDER = ['queued', 'deferred', 'blocked', 'waiting', 'waited', 'event', 'reply', 'timeout', 'past', 'skipped', 'updated', 'emitted', 'calling_webhook', 'webhook_answered', 'webhook_failed', 'exit'];
const END_ORDER = ['completed', 'converted', 'exited', 'cancelled', 'failed'];

function orderedRecord(counts: Map<string, number>, order: readonly string[] = []): Record<string, number> {
  const rank = (k: string) => {
    const i = order.indexOf(k);
    if (i >= 0) return i;
    const e = END_ORDER.indexOf(k);
    return e >= 0 ? 1000 + e : 500;
  };
  return Object.fromEntries([...counts].sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)));
}

export async function buildReport(db: Db, def: JourneyDefinition, sample: SyntheticContact, sampleEnrollment: string | null) {
  const [entered, outcomes, ended, messages, blocked, deferred] = await Promise.all([
    db.query<{ node: string; n: number }>(`select node, count(distinct enrollment_id)::int as n from enrollment_steps where node is not null group by node`),
    db.query<{ node: string; outcome: string; n: number }>(
      `select node,
              case outcome when 'branch' then 'taken:' || coalesce(detail->>'taken', '?') when 'split' then 'variant:' || coalesce(detail->>'variant', '?') else outcome end as outcome,
              count(*)::int as n
         from enrollment_steps where node is not null group by 1, 2`,
    ),
    db.query<{ status: string; n: number }>(`select status, count(*)::int as n from enrollments group by status`),
    db.query<{ channel: string; status: string; n: number }>(`select channel, status, count(*)::int as n from messages where kind = 'send' group by 1, 2`),
    db.query<{ reason: string; n: number }>(`select coalesce(reason, 'unknown') as reason, count(*)::int as n from messages where status = 'suppressed' group by 1`),
    db.query<{ reason: string; n: number }>(
      `select coalesce(detail->>'reason', 'unknown') as reason, count(*)::int as n from enrollment_steps where outcome = 'deferred' group by 1`,
    ),
  ]);

  const enteredBy = new Map(entered.rows.map((r) => [r.node, r.n]));
  const outcomesBy = new Map<string, Map<string, number>>();
  for (const r of outcomes.rows) {
    let m = outcomesBy.get(r.node);
    if (!m) outcomesBy.set(r.node, (m = new Map()));
    m.set(r.outcome, r.n);
  }
  const funnel: FunnelRow[] = def.nodes.map((n) => ({
    node: n.id,
    type: n.type,
    ...(n.name ? { name: n.name } : {}),
    entered: enteredBy.get(n.id) ?? 0,
    outcomes: orderedRecord(outcomesBy.get(n.id) ?? new Map(), OUTCOME_ORDER),
  }));

  const byChannel = new Map<string, Map<string, number>>();
  for (const r of messages.rows) {
    let m = byChannel.get(r.channel);
    if (!m) byChannel.set(r.channel, (m = new Map()));
    m.set(r.status, r.n);
  }
  const STATUS_ORDER = ['queued', 'sending', 'sent', 'delivered', 'read', 'opened', 'clicked', 'replied', 'failed', 'bounced', 'undeliverable', 'suppressed', 'cancelled'];
  const channels = [...byChannel.keys()].sort();

  return {
    funnel,
    ended: orderedRecord(new Map(ended.rows.map((r) => [r.status, r.n])), ['active']),
    messages: Object.fromEntries(channels.map((c) => [c, orderedRecord(byChannel.get(c)!, STATUS_ORDER)])),
    blocked: orderedRecord(new Map(blocked.rows.map((r) => [r.reason, r.n]))),
    deferred: orderedRecord(new Map(deferred.rows.map((r) => [r.reason, r.n]))),
    sample: {
      contact: {
        id: sample.id,
        name: sample.name,
        zone: sample.time_zone,
        locale: sample.locale,
        phone: sample.phone,
        email: sample.email,
        attributes: sample.attributes,
      },
      timeline: await timeline(db, sample.id, sampleEnrollment),
    },
  };
}

/** One contact's story: the enrollment's steps, its messages' statuses and the events it did, in time order. */
async function timeline(db: Db, contactId: string, enrollmentId: string | null): Promise<TimelineEntry[]> {
  const [steps, statuses, events] = await Promise.all([
    enrollmentId
      ? db.query<{ at: Date; node: string | null; outcome: string; detail: Record<string, unknown> | null; seq: number }>(
          `select at, node, outcome, detail, seq from enrollment_steps where enrollment_id = $1 order by seq`,
          [enrollmentId],
        )
      : Promise.resolve({ rows: [] }),
    db.query<{ at: Date; node: string | null; channel: string; status: string; detail: Record<string, unknown> | null; id: string }>(
      `select s.at, m.node, m.channel, s.status, s.detail, s.id::text as id
         from messages m join message_status s on s.message_id = m.id
        where m.contact_id = $1 and m.kind = 'send' and s.status not in ('queued', 'sending')
        order by s.id`,
      [contactId],
    ),
    db.query<{ at: Date; name: string; properties: Record<string, unknown> }>(
      `select occurred_at as at, name, properties from events where contact_id = $1 and name <> $2 order by occurred_at, id`,
      [contactId, REPLY_EVENT],
    ),
  ]);
  // At one instant: what the person did, then receipts, then the engine's steps, then what it sent.
  const entries: (TimelineEntry & { t: number; rank: number; n: number })[] = [];
  let n = 0;
  for (const e of events.rows) {
    const { simulated: _s, ...properties } = e.properties;
    entries.push({ at: e.at.toISOString(), node: null, outcome: 'event', detail: { event: e.name, ...(Object.keys(properties).length ? { properties } : {}) }, t: e.at.getTime(), rank: 0, n: n++ });
  }
  for (const s of statuses.rows) {
    const sentLike = s.status === 'sent' || s.status === 'suppressed' || s.status === 'cancelled';
    entries.push({ at: s.at.toISOString(), node: s.node, outcome: s.status, detail: { channel: s.channel, ...(s.detail ?? {}) }, t: s.at.getTime(), rank: sentLike ? 3 : 1, n: n++ });
  }
  for (const s of steps.rows) entries.push({ at: s.at.toISOString(), node: s.node, outcome: s.outcome, detail: s.detail, t: s.at.getTime(), rank: 2, n: n++ });
  entries.sort((a, b) => a.t - b.t || a.rank - b.rank || a.n - b.n);
  return entries.map(({ at, node, outcome, detail }) => ({ at, node, outcome, detail }));
}
