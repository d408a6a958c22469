import { NotFoundError } from '../core/errors.js';
import { addressHash } from '../core/suppression.js';
import { writeAudit, type AuditRow } from './audit.js';
import { consentRecords, consentState, type ConsentRecordRow, type ConsentStateRow } from './consent.js';
import { getContactRow, type ContactRow } from './contacts.js';
import type { Db, Queryable } from './db.js';
import { contactEvents, listEvents, type EventRow } from './events.js';
import { suppressionsFor, type SuppressionRow } from './suppressions.js';

/**
 * What a tenant holds about one person, for the people who ask: the contact page, erasure
 * (GDPR art. 17) and export (art. 15 and 20).
 *
 * Every table that holds a contact's data, and what erasure does with it:
 *   contacts, consent_records, consent_state, events      deleted
 *   messages (sends, keyword replies, action and result
 *     webhooks) with message_status, synthesized_messages deleted
 *   inbound_messages, conversations                       deleted
 *   enrollments with enrollment_steps, journey_entries    deleted
 *   review_tasks                                          deleted
 *   campaign_recipients                                   deleted
 *   pending_receipts of the contact's messages            deleted (they hold provider payloads)
 *   suppressions of its addresses                         address blanked, hash kept: still blocked
 *   audit_log                                             kept: ids and counts only, by design
 * The deletions ride on the contact's foreign keys (ON DELETE CASCADE), in one transaction with
 * the counts, so a table added with such a key is erased with the contact.
 *
 * Aggregates are read from these rows when asked (a campaign's totals and run reports, a
 * journey's step counts), so an erased contact leaves them whole: its recipient row, its
 * message and its enrollment go together, and the campaign counts one recipient fewer in all and
 * in that recipient's state. Nothing is left pointing at a deleted message, which would read as
 * a failed send.
 */

const RECENT_EVENTS = 20;

export interface ContactDetail extends ContactRow {
  consent: ConsentStateRow[];
  recent_events: EventRow[];
}

function addressesOf(c: Pick<ContactRow, 'phone' | 'email' | 'whatsapp'>): string[] {
  return [...new Set([c.phone, c.email, c.whatsapp].filter((a): a is string => !!a))];
}

export async function getContactDetail(db: Queryable, tenantId: string, id: string): Promise<ContactDetail> {
  const contact = await getContactRow(db, tenantId, id);
  const [consent, events] = await Promise.all([consentState(db, tenantId, id), listEvents(db, tenantId, { contact_id: id, limit: RECENT_EVENTS })]);
  return { ...contact, consent, recent_events: events.data };
}

export interface ErasureCounts {
  events: number;
  consent_records: number;
  /** Outbound messages of every kind (sends, keyword replies, webhooks), with their status history. */
  messages: number;
  inbound_messages: number;
  conversations: number;
  enrollments: number;
  review_tasks: number;
  /** Campaign recipient rows: the campaigns' totals no longer count the contact. */
  campaign_recipients: number;
  synthesized_messages: number;
  /** Provider receipts that were waiting for one of its messages. */
  pending_receipts: number;
  /** Suppressions whose address was blanked; they keep blocking by hash. */
  suppressions_anonymised: number;
}

/**
 * Erases a contact in one transaction: every row that holds its data (see the table above) is
 * deleted, and suppressions of its addresses lose the address but keep the hash, so an
 * opted-out person stays opted out. The audit entry holds counts only.
 */
export async function eraseContact(db: Db, tenantId: string, id: string, actor: string): Promise<ErasureCounts> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<Pick<ContactRow, 'phone' | 'email' | 'whatsapp'>>(
      'select phone, email, whatsapp from contacts where tenant_id = $1 and id = $2 for update',
      [tenantId, id],
    );
    const contact = rows[0];
    if (!contact) throw new NotFoundError('contact');
    const { rows: counted } = await tx.query<Omit<ErasureCounts, 'pending_receipts' | 'suppressions_anonymised'>>(
      `select (select count(*) from events where tenant_id = $1 and contact_id = $2)::int as events,
              (select count(*) from consent_records where tenant_id = $1 and contact_id = $2)::int as consent_records,
              (select count(*) from messages where tenant_id = $1 and contact_id = $2)::int as messages,
              (select count(*) from inbound_messages where tenant_id = $1 and contact_id = $2)::int as inbound_messages,
              (select count(*) from conversations where tenant_id = $1 and contact_id = $2)::int as conversations,
              (select count(*) from enrollments where tenant_id = $1 and contact_id = $2)::int as enrollments,
              (select count(*) from review_tasks where tenant_id = $1 and contact_id = $2)::int as review_tasks,
              (select count(*) from campaign_recipients where tenant_id = $1 and contact_id = $2)::int as campaign_recipients,
              (select count(*) from synthesized_messages where tenant_id = $1 and contact_id = $2)::int as synthesized_messages`,
      [tenantId, id],
    );
    // Receipts are keyed by the provider's id, not the contact: they go before the messages that name them.
    const receipts = await tx.query(
      `delete from pending_receipts p using messages m
        where m.tenant_id = $1 and m.contact_id = $2 and m.provider_message_id is not null
          and p.provider = m.provider and p.provider_message_id = m.provider_message_id`,
      [tenantId, id],
    );
    const blanked = await tx.query('update suppressions set address = null where tenant_id = $1 and address_hash = any($2::text[]) and address is not null', [
      tenantId,
      addressesOf(contact).map(addressHash),
    ]);
    // The outbox and the histories have no foreign keys (migration 0011): their rows go by name.
    // The enrollments are locked first, so a scheduler batch holding one commits its messages and
    // steps before they are deleted here, rather than after, leaving them behind.
    await tx.query('select id from enrollments where tenant_id = $1 and contact_id = $2 order by id for update', [tenantId, id]);
    await tx.query('delete from message_status where message_id in (select id from messages where tenant_id = $1 and contact_id = $2)', [tenantId, id]);
    await tx.query('delete from messages where tenant_id = $1 and contact_id = $2', [tenantId, id]);
    await tx.query('delete from enrollment_steps where enrollment_id in (select id from enrollments where tenant_id = $1 and contact_id = $2)', [tenantId, id]);
    await tx.query('delete from contacts where tenant_id = $1 and id = $2', [tenantId, id]);
    const counts: ErasureCounts = { ...counted[0]!, pending_receipts: receipts.rowCount, suppressions_anonymised: blanked.rowCount };
    await writeAudit(tx, { tenantId, actor, action: 'contact.erased', entityType: 'contact', entityId: id, data: { ...counts } });
    return counts;
  });
}

export interface MessageStatusEntry {
  status: string;
  at: Date;
  detail: Record<string, unknown> | null;
}

/** What a synthesized message was built from (the contact's personal elements among it). */
export interface MessageSynthesis {
  source: string;
  items: unknown;
  elements: string[];
  personalization_score: number;
  fallback_reason: string | null;
  variant: string | null;
  tone: string | null;
  pulse_week: string | null;
  campaign_id: string | null;
  occurrence_id: string | null;
  created_at: Date;
}

/** One message sent (or meant) to the contact, with what it said, where it went and what became of it. */
export interface ExportedMessage {
  id: string;
  kind: string;
  channel: string;
  topic: string | null;
  transactional: boolean;
  status: string;
  reason: string | null;
  journey_id: string | null;
  enrollment_id: string | null;
  node: string | null;
  content: unknown;
  rendered: unknown;
  to_address: string | null;
  provider: string | null;
  provider_message_id: string | null;
  cost: string | null;
  currency: string | null;
  created_at: Date;
  sent_at: Date | null;
  delivered_at: Date | null;
  opened_at: Date | null;
  clicked_at: Date | null;
  replied_at: Date | null;
  failed_at: Date | null;
  status_history: MessageStatusEntry[];
  synthesis: MessageSynthesis | null;
}

export interface ExportedInbound {
  id: string;
  conversation_id: string;
  channel: string;
  provider: string;
  provider_message_id: string;
  from_address: string;
  to_address: string;
  text: string | null;
  payload: string | null;
  keyword: string | null;
  intent: string | null;
  media: unknown;
  in_reply_to: string | null;
  received_at: Date;
}

export interface ExportedConversation {
  id: string;
  channel: string;
  status: string;
  assignee: string | null;
  last_inbound_at: Date | null;
  last_outbound_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ExportedStep {
  seq: number;
  at: Date;
  node: string | null;
  outcome: string;
  detail: Record<string, unknown> | null;
}

export interface ExportedEnrollment {
  id: string;
  journey_id: string;
  journey_name: string;
  version: number;
  status: string;
  node: string | null;
  due_at: Date | null;
  vars: Record<string, unknown>;
  memo: Record<string, unknown>;
  source: string;
  entered_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
  steps: ExportedStep[];
}

export interface ExportedReviewTask {
  id: string;
  channel: string;
  draft: string;
  final: string | null;
  sources: unknown;
  rules: unknown;
  subject: unknown;
  status: string;
  decided_by: string | null;
  decided_at: Date | null;
  reason: string | null;
  created_at: Date;
}

/** One occurrence of a campaign that reached (or skipped) the contact. */
export interface ExportedCampaignMembership {
  campaign_id: string;
  campaign_name: string;
  occurrence_key: string;
  outcome: string;
  reason: string | null;
  message_id: string | null;
  enrollment_id: string | null;
  created_at: Date;
}

export interface ContactExport {
  exported_at: Date;
  contact: ContactRow;
  consent: { records: ConsentRecordRow[]; current: ConsentStateRow[] };
  events: EventRow[];
  messages: ExportedMessage[];
  inbound_messages: ExportedInbound[];
  conversations: ExportedConversation[];
  enrollments: ExportedEnrollment[];
  review_tasks: ExportedReviewTask[];
  campaigns: ExportedCampaignMembership[];
  suppressions: SuppressionRow[];
  audit: AuditRow[];
}

/** Rows of `sql` ($1 tenant, $2 contact) grouped by its column `key`, which is left out of them. */
async function grouped<T extends object>(db: Queryable, sql: string, tenantId: string, id: string, key: string): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>();
  for (const row of (await db.query<Record<string, unknown>>(sql, [tenantId, id])).rows) {
    const { [key]: k, ...rest } = row;
    const list = out.get(String(k));
    if (list) list.push(rest as T);
    else out.set(String(k), [rest as T]);
  }
  return out;
}

async function contactMessages(db: Queryable, tenantId: string, id: string): Promise<ExportedMessage[]> {
  const [messages, statuses, synthesis] = await Promise.all([
    db.query<Omit<ExportedMessage, 'status_history' | 'synthesis'>>(
      `select id, kind, channel, topic, transactional, status, reason, journey_id, enrollment_id, node, content, rendered, to_address, provider,
              provider_message_id, cost::text as cost, currency, created_at, sent_at, delivered_at, opened_at, clicked_at, replied_at, failed_at
         from messages where tenant_id = $1 and contact_id = $2 order by created_at, id`,
      [tenantId, id],
    ),
    grouped<MessageStatusEntry>(
      db,
      `select s.message_id, s.status, s.at, s.detail from message_status s join messages m on m.id = s.message_id
        where m.tenant_id = $1 and m.contact_id = $2 order by s.id`,
      tenantId,
      id,
      'message_id',
    ),
    grouped<MessageSynthesis>(
      db,
      `select message_id, source, items, elements, personalization_score, fallback_reason, variant, tone, pulse_week, campaign_id, occurrence_id, created_at
         from synthesized_messages where tenant_id = $1 and contact_id = $2`,
      tenantId,
      id,
      'message_id',
    ),
  ]);
  return messages.rows.map((m) => ({ ...m, status_history: statuses.get(m.id) ?? [], synthesis: synthesis.get(m.id)?.[0] ?? null }));
}

async function contactEnrollments(db: Queryable, tenantId: string, id: string): Promise<ExportedEnrollment[]> {
  const [enrollments, steps] = await Promise.all([
    db.query<Omit<ExportedEnrollment, 'steps'>>(
      `select e.id, e.journey_id, j.name as journey_name, e.version, e.status, e.node, e.due_at, e.vars, e.memo, e.source, e.entered_at, e.ended_at, e.end_reason
         from enrollments e join journeys j on j.id = e.journey_id
        where e.tenant_id = $1 and e.contact_id = $2 order by e.entered_at, e.id`,
      [tenantId, id],
    ),
    grouped<ExportedStep>(
      db,
      `select s.enrollment_id, s.seq, s.at, s.node, s.outcome, s.detail from enrollment_steps s join enrollments e on e.id = s.enrollment_id
        where e.tenant_id = $1 and e.contact_id = $2 order by s.enrollment_id, s.seq`,
      tenantId,
      id,
      'enrollment_id',
    ),
  ]);
  return enrollments.rows.map((e) => ({ ...e, steps: steps.get(e.id) ?? [] }));
}

async function rowsOf<T>(db: Queryable, sql: string, tenantId: string, id: string): Promise<T[]> {
  return (await db.query<T>(sql, [tenantId, id])).rows;
}

/** Everything held about a contact as one document; the export itself is audited, with counts only. */
export async function exportContact(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<ContactExport> {
  const contact = await getContactRow(db, tenantId, id);
  const [records, current, events, messages, inbound, conversations, enrollments, reviewTasks, campaigns, suppressions, audit] = await Promise.all([
    consentRecords(db, tenantId, id),
    consentState(db, tenantId, id),
    contactEvents(db, tenantId, id),
    contactMessages(db, tenantId, id),
    rowsOf<ExportedInbound>(
      db,
      `select id, conversation_id, channel, provider, provider_message_id, from_address, to_address, text, payload, keyword, intent, media, in_reply_to, received_at
         from inbound_messages where tenant_id = $1 and contact_id = $2 order by received_at, id`,
      tenantId,
      id,
    ),
    rowsOf<ExportedConversation>(
      db,
      `select id, channel, status, assignee, last_inbound_at, last_outbound_at, created_at, updated_at
         from conversations where tenant_id = $1 and contact_id = $2 order by created_at, id`,
      tenantId,
      id,
    ),
    contactEnrollments(db, tenantId, id),
    rowsOf<ExportedReviewTask>(
      db,
      `select id, channel, draft, final, sources, rules, subject, status, decided_by, decided_at, reason, created_at
         from review_tasks where tenant_id = $1 and contact_id = $2 order by created_at, id`,
      tenantId,
      id,
    ),
    rowsOf<ExportedCampaignMembership>(
      db,
      `select r.campaign_id, c.name as campaign_name, o.occurrence_key, r.outcome, r.reason, r.message_id, r.enrollment_id, r.created_at
         from campaign_recipients r join campaigns c on c.id = r.campaign_id join campaign_occurrences o on o.id = r.occurrence_id
        where r.tenant_id = $1 and r.contact_id = $2 order by r.created_at, r.campaign_id`,
      tenantId,
      id,
    ),
    suppressionsFor(db, tenantId, addressesOf(contact)),
    // Entries about the contact, and those about its review tasks (which name it in their data).
    rowsOf<AuditRow>(
      db,
      `select id, actor, action, entity_type, entity_id, data, created_at from audit_log
        where tenant_id = $1 and ((entity_type = 'contact' and entity_id = $2::text) or data->>'contact_id' = $2::text) order by id`,
      tenantId,
      id,
    ),
  ]);
  await writeAudit(db, {
    tenantId,
    actor,
    action: 'contact.exported',
    entityType: 'contact',
    entityId: id,
    data: { events: events.length, consent_records: records.length, messages: messages.length, inbound_messages: inbound.length, enrollments: enrollments.length },
  });
  return {
    exported_at: now,
    contact,
    consent: { records, current },
    events,
    messages,
    inbound_messages: inbound,
    conversations,
    enrollments,
    review_tasks: reviewTasks,
    campaigns,
    suppressions,
    audit,
  };
}
