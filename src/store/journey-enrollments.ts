import { normalizeContact, type NormalizeOptions } from '../core/contact.js';
import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import type { Reentry } from '../core/journey/definition.js';
import { writeAuditBatch } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { Db, Queryable } from './db.js';
import { endEnrollments, enrollContacts, type EnrollResult, type EndStatus } from './enrollments.js';
import type { JourneyStatus } from './journeys.js';

/**
 * Enrollments as the API sees them: enrolling named contacts into a journey's live version,
 * listing and inspecting them, cancelling one. The engine's own writes (steps, timers, ends)
 * are in enrollments.ts.
 */

export interface ContactRef {
  external_id?: string;
  phone?: string;
  email?: string;
}

/** One contact to enrol: by id or by identifiers, with variables for its templates and conditions. */
export interface EnrollTargetInput {
  contact_id?: string;
  contact?: ContactRef;
  vars?: Record<string, unknown>;
}

/** A contact named in the request that cannot be enrolled; nothing was written. */
export class UnresolvedContactsError extends Error {
  constructor(readonly problems: (FieldProblem & { kind: 'not_found' | 'ambiguous' })[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
    this.name = 'UnresolvedContactsError';
  }
}

const MAX_VARS_BYTES = 32 * 1024;

/**
 * Enrols contacts in the journey's live version, all in one transaction with the journey row held
 * FOR SHARE, so a concurrent pause or archive either waits for this or is seen by it. Contacts
 * must exist: unknown ids or identifiers throw UnresolvedContactsError. `at(i)` names the i-th
 * target's fields in problems (`contacts[3]`, or '' for a single target).
 */
export async function enrollFromApi(
  db: Db,
  tenantId: string,
  journeyId: string,
  targets: EnrollTargetInput[],
  opts: NormalizeOptions,
  actor: string,
  now: Date,
  at: (i: number) => string,
): Promise<EnrollResult> {
  const field = (i: number, f: string) => (at(i) ? `${at(i)}.${f}` : f);
  const problems: FieldProblem[] = [];
  const refs = targets.map((t, i) => {
    if ((t.contact_id === undefined) === (t.contact === undefined)) {
      problems.push({ field: field(i, 'contact_id'), message: 'give contact_id or contact (external_id, phone or email), one of the two' });
    }
    if (t.vars && Buffer.byteLength(JSON.stringify(t.vars)) > MAX_VARS_BYTES) problems.push({ field: field(i, 'vars'), message: `is larger than ${MAX_VARS_BYTES / 1024} KiB` });
    if (!t.contact) return null;
    const { fields, problems: p } = normalizeContact({ external_id: t.contact.external_id, phone: t.contact.phone, email: t.contact.email }, opts, field(i, 'contact'));
    problems.push(...p);
    if (!fields.external_id && !fields.phone && !fields.email && !p.length) problems.push({ field: field(i, 'contact'), message: 'name the contact by external_id, phone or email' });
    return { external_id: fields.external_id, phone: fields.phone, email: fields.email };
  });
  if (problems.length) throw new InputError(problems);

  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ status: JourneyStatus; version: number | null; name: string; reentry: Reentry | null }>(
      `select j.status, j.version, j.name, v.definition->'reentry' as reentry
         from journeys j left join journey_versions v on v.journey_id = j.id and v.version = j.version
        where j.tenant_id = $1 and j.id = $2 for share of j`,
      [tenantId, journeyId],
    );
    const j = rows[0];
    if (!j) throw new NotFoundError('journey');
    if (j.status !== 'active' || j.version === null) {
      const why = j.status === 'draft' ? 'has never been published' : `is ${j.status}`;
      throw new ConflictError(`journey ${JSON.stringify(j.name)} ${why}; contacts can only be enrolled in an active journey`, 'status');
    }
    const ids = await resolveContacts(tx, tenantId, targets, refs, field);
    const result = await enrollContacts(
      tx,
      { journey_id: journeyId, tenant_id: tenantId, version: j.version, reentry: j.reentry ?? undefined },
      targets.map((t, i) => ({ contact_id: ids[i]!, vars: t.vars ?? {} })),
      now,
      'api',
    );
    await writeAuditBatch(
      tx,
      result.enrolled.map((e) => ({
        tenantId,
        actor,
        action: 'enrollment.created',
        entityType: 'enrollment',
        entityId: e.enrollment_id,
        data: { journey_id: journeyId, version: j.version, contact_id: e.contact_id, source: 'api' },
      })),
    );
    return result;
  });
}

/** The contact id of every target, in two statements; throws UnresolvedContactsError naming each that is not one. */
async function resolveContacts(
  db: Queryable,
  tenantId: string,
  targets: EnrollTargetInput[],
  refs: ({ external_id: string | null; phone: string | null; email: string | null } | null)[],
  field: (i: number, f: string) => string,
): Promise<string[]> {
  const out: string[] = new Array(targets.length);
  const problems: UnresolvedContactsError['problems'] = [];
  const byId = targets.flatMap((t, i) => (t.contact_id ? [i] : []));
  if (byId.length) {
    // A join rather than id = any(...): with many ids the planner turns = any into a scan of every contact.
    const { rows } = await db.query<{ id: string }>('select c.id from unnest($2::uuid[]) as x(id) join contacts c on c.tenant_id = $1 and c.id = x.id', [
      tenantId,
      [...new Set(byId.map((i) => targets[i]!.contact_id!))],
    ]);
    const known = new Set(rows.map((r) => r.id));
    for (const i of byId) {
      const id = targets[i]!.contact_id!;
      if (known.has(id)) out[i] = id;
      else problems.push({ field: field(i, 'contact_id'), message: 'is not a contact of this tenant', kind: 'not_found' });
    }
  }
  const keyed = refs.flatMap((r, i) => (r ? [{ i, e: r.external_id, p: r.phone, m: r.email }] : []));
  if (keyed.length) {
    const { rows } = await db.query<{ i: number; e_id: string | null; p_id: string | null; m_id: string | null }>(
      `select x.i, ce.id as e_id, cp.id as p_id, cm.id as m_id
         from jsonb_to_recordset($2::jsonb) as x(i int, e text, p text, m text)
         left join lateral (select id from contacts where tenant_id = $1 and external_id = x.e limit 1) ce on true
         left join lateral (select id from contacts where tenant_id = $1 and phone = x.p limit 1) cp on true
         left join lateral (select id from contacts where tenant_id = $1 and email = x.m limit 1) cm on true`,
      [tenantId, JSON.stringify(keyed)],
    );
    for (const r of rows) {
      const found = [...new Set([r.e_id, r.p_id, r.m_id].filter((id): id is string => id !== null))];
      if (found.length === 1) out[r.i] = found[0]!;
      else if (!found.length) problems.push({ field: field(r.i, 'contact'), message: 'no contact of this tenant has these identifiers; create it first (POST /v1/contacts)', kind: 'not_found' });
      else problems.push({ field: field(r.i, 'contact'), message: 'these identifiers belong to different contacts', kind: 'ambiguous' });
    }
  }
  if (problems.length) throw new UnresolvedContactsError(problems.sort((a, b) => a.field.localeCompare(b.field, 'en', { numeric: true })));
  return out;
}

export type EnrollmentStatus = 'active' | EndStatus;

export interface EnrollmentSummary {
  id: string;
  journey_id: string;
  version: number;
  contact_id: string;
  status: EnrollmentStatus;
  node: string | null;
  due_at: Date | null;
  entered_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
}

export interface EnrollmentStep {
  seq: number;
  at: Date;
  node: string | null;
  outcome: string;
  detail: Record<string, unknown> | null;
}

export interface EnrollmentMessage {
  id: string;
  node: string | null;
  kind: string;
  channel: string;
  status: string;
  reason: string | null;
  created_at: Date;
  sent_at: Date | null;
  delivered_at: Date | null;
  opened_at: Date | null;
  clicked_at: Date | null;
  replied_at: Date | null;
  failed_at: Date | null;
}

export interface EnrollmentDetail extends EnrollmentSummary {
  paused_due_at: Date | null;
  wait: Record<string, unknown> | null;
  vars: Record<string, unknown>;
  splits: Record<string, string>;
  source: string;
  history: EnrollmentStep[];
  messages: EnrollmentMessage[];
}

const SUMMARY = 'e.id, e.journey_id, e.version, e.contact_id, e.status, e.node, e.due_at, e.entered_at, e.ended_at, e.end_reason';

/** One page of a journey's enrollments in the order they entered (ids are UUIDv7). */
export async function listEnrollments(
  db: Queryable,
  tenantId: string,
  journeyId: string,
  f: { limit?: number; cursor?: string; status?: EnrollmentStatus; contact_id?: string },
): Promise<{ data: EnrollmentSummary[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows: journey } = await db.query('select 1 from journeys where tenant_id = $1 and id = $2', [tenantId, journeyId]);
  if (!journey.length) throw new NotFoundError('journey');
  const { rows } = await db.query<EnrollmentSummary>(
    `select ${SUMMARY} from enrollments e
      where e.journey_id = $2 and e.tenant_id = $1 and ($3::uuid is null or e.id > $3) and ($4::text is null or e.status = $4) and ($5::uuid is null or e.contact_id = $5)
      order by e.id limit $6`,
    [tenantId, journeyId, f.cursor ? decodeCursor(f.cursor) : null, f.status ?? null, f.contact_id ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/** An enrollment with its history (oldest step first) and the messages it queued (oldest first). */
export async function getEnrollment(db: Queryable, tenantId: string, id: string): Promise<EnrollmentDetail> {
  const { rows } = await db.query<Omit<EnrollmentDetail, 'history' | 'messages'>>(
    `select ${SUMMARY}, e.paused_due_at, e.wait, e.vars, coalesce(e.memo->'splits', '{}') as splits, e.source
       from enrollments e where e.tenant_id = $1 and e.id = $2`,
    [tenantId, id],
  );
  const row = rows[0];
  if (!row) throw new NotFoundError('enrollment');
  const [{ rows: history }, { rows: messages }] = await Promise.all([
    db.query<EnrollmentStep>('select seq, at, node, outcome, detail from enrollment_steps where enrollment_id = $1 order by seq', [id]),
    db.query<EnrollmentMessage>(
      `select id, node, kind, channel, status, reason, created_at, sent_at, delivered_at, opened_at, clicked_at, replied_at, failed_at
         from messages where enrollment_id = $1 and tenant_id = $2 order by created_at, id`,
      [id, tenantId],
    ),
  ]);
  return { ...row, history, messages };
}

/** Ends an open enrollment as cancelled, with its queued messages; 409 when it has already ended. */
export async function cancelEnrollment(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<EnrollmentDetail> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ status: EnrollmentStatus; journey_id: string; ended_at: Date | null }>(
      'select status, journey_id, ended_at from enrollments where tenant_id = $1 and id = $2 for update',
      [tenantId, id],
    );
    const e = rows[0];
    if (!e) throw new NotFoundError('enrollment');
    if (e.ended_at !== null) throw new ConflictError(`the enrollment has already ended (${e.status})`, 'status');
    await endEnrollments(tx, tenantId, [id], 'cancelled', `cancelled by ${actor}`, now);
    await writeAuditBatch(tx, [{ tenantId, actor, action: 'enrollment.cancelled', entityType: 'enrollment', entityId: id, data: { journey_id: e.journey_id } }]);
    return getEnrollment(tx, tenantId, id);
  });
}
