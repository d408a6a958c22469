import type { ConsentChannel, ConsentType } from '../core/channels.js';
import { consentProblems, latestPerTopic, ALL_TOPICS, type ConsentInput } from '../core/consent.js';
import { InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import { writeAuditBatch } from './audit.js';
import { pgErrorCode, type Db, type Queryable, type Tx } from './db.js';
import { newId } from './ids.js';
import { applyOptOuts } from '../engine/opt-out.js';

/**
 * The consent ledger. consent_records is append-only; consent_state holds the record that
 * currently stands for each contact, channel and topic, and is moved forward in the same
 * transaction as the append, only by a record that supersedes it (core/consent.ts#supersedes),
 * so a back-dated import never overrides a newer decision.
 */

export interface ConsentRecordRow {
  id: string;
  contact_id: string;
  channel: ConsentChannel;
  topic: string;
  status: 'granted' | 'revoked';
  type: ConsentType | null;
  source: string;
  wording: string | null;
  ip: string | null;
  proof: Record<string, unknown> | null;
  recorded_at: Date;
  created_at: Date;
}

export interface ConsentStateRow {
  channel: ConsentChannel;
  topic: string;
  status: 'granted' | 'revoked';
  type: ConsentType | null;
  recorded_at: Date;
}

const RECORD_COLUMNS = 'id, contact_id, channel, topic, status, type, source, wording, ip, proof, recorded_at, created_at';
const FOREIGN_KEY_VIOLATION = '23503';

/** A record ready to insert: the stored row before the database adds created_at. */
type Prepared = Omit<ConsentRecordRow, 'created_at'>;

function prepare(input: ConsentInput, contactId: string, now: Date): Prepared {
  return {
    id: newId(),
    contact_id: contactId,
    channel: input.channel,
    topic: input.topic ?? ALL_TOPICS,
    status: input.status,
    type: input.type ?? null,
    source: input.source,
    wording: input.wording ?? null,
    ip: input.ip ?? null,
    proof: input.proof ?? null,
    recorded_at: input.recorded_at ? new Date(input.recorded_at) : now,
  };
}

/**
 * Appends records whose contacts the caller has checked, in three statements whatever their
 * number: the records, the state they move forward, and one audit entry each.
 */
async function append(tx: Tx, tenantId: string, records: Prepared[], actor: string, now: Date): Promise<void> {
  await tx.query(
    `insert into consent_records (id, tenant_id, contact_id, channel, topic, status, type, source, wording, ip, proof, recorded_at, created_at)
     select x.id, $1, x.contact_id, x.channel, x.topic, x.status, x.type, x.source, x.wording, x.ip, x.proof, x.recorded_at, $3
       from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, channel text, topic text, status text, type text, source text,
                                               wording text, ip text, proof jsonb, recorded_at timestamptz)`,
    [tenantId, JSON.stringify(records), now],
  );
  // One row per key, or the upsert would touch a row twice; the where clause is supersedes() again,
  // against what an earlier request stored.
  const latest = latestPerTopic(records, (r) => r.contact_id);
  await tx.query(
    `insert into consent_state as s (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
     select $1, x.contact_id, x.channel, x.topic, x.status, x.type, x.id, x.recorded_at
       from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, channel text, topic text, status text, type text, recorded_at timestamptz)
     on conflict (tenant_id, contact_id, channel, topic) do update set
       status = excluded.status, type = excluded.type, record_id = excluded.record_id, recorded_at = excluded.recorded_at
     where excluded.recorded_at > s.recorded_at
        or (excluded.recorded_at = s.recorded_at and (excluded.status = 'revoked' or s.status = 'granted'))`,
    [tenantId, JSON.stringify(latest.map(({ id, contact_id, channel, topic, status, type, recorded_at }) => ({ id, contact_id, channel, topic, status, type, recorded_at })))],
  );
  // A revocation that took effect (it is now the state of its key) acts at once on the outbox and journeys.
  const revoked = records.filter((r) => r.status === 'revoked');
  if (revoked.length) {
    const { rows: effective } = await tx.query<{ record_id: string }>(
      'select record_id from consent_state where tenant_id = $1 and contact_id = any($2::uuid[]) and record_id = any($3::uuid[])',
      [tenantId, [...new Set(revoked.map((r) => r.contact_id))], revoked.map((r) => r.id)],
    );
    const took = new Set(effective.map((r) => r.record_id));
    await applyOptOuts(
      tx,
      tenantId,
      revoked.filter((r) => took.has(r.id)).map((r) => ({ contact_id: r.contact_id, channel: r.channel, topic: r.topic })),
      now,
    );
  }
  // Personal details (wording, ip, proof) stay in the ledger, which erasure removes; the audit trail outlives it.
  await writeAuditBatch(
    tx,
    records.map((r) => ({
      tenantId,
      actor,
      action: 'consent.recorded',
      entityType: 'contact',
      entityId: r.contact_id,
      data: { record_id: r.id, channel: r.channel, topic: r.topic, status: r.status, type: r.type, source: r.source },
    })),
  );
}

async function existingContacts(db: Queryable, tenantId: string, ids: string[]): Promise<Set<string>> {
  // A join rather than id = any(...): with thousands of ids the planner turns = any into a scan of every contact.
  const { rows } = await db.query<{ id: string }>('select c.id from unnest($2::uuid[]) as x(id) join contacts c on c.tenant_id = $1 and c.id = x.id', [
    tenantId,
    [...new Set(ids)],
  ]);
  return new Set(rows.map((r) => r.id));
}

/** A contact erased between the check and the insert fails the foreign key; to the caller it is gone. */
function contactGone(err: unknown): never {
  if (pgErrorCode(err) === FOREIGN_KEY_VIOLATION) throw new NotFoundError('contact');
  throw err;
}

/** Appends one record for a contact of the tenant; NotFoundError when it is not one. */
export async function recordConsent(db: Db, tenantId: string, contactId: string, input: ConsentInput, actor: string, now: Date): Promise<ConsentRecordRow> {
  const problems = consentProblems(input, now);
  if (problems.length) throw new InputError(problems);
  const record = prepare(input, contactId, now);
  await db
    .transaction(async (tx) => {
      if (!(await existingContacts(tx, tenantId, [contactId])).has(contactId)) throw new NotFoundError('contact');
      await append(tx, tenantId, [record], actor, now);
    })
    .catch(contactGone);
  return { ...record, created_at: now };
}

export type ConsentBatchInput = ConsentInput & { contact_id: string };

/**
 * Appends records inside the caller's transaction, for contacts the caller knows are the tenant's
 * (the inbound pipeline, which has just found or created them). The same checks as the API.
 */
export async function appendConsent(tx: Tx, tenantId: string, inputs: ConsentBatchInput[], actor: string, now: Date): Promise<string[]> {
  const problems = inputs.flatMap((input, i) => consentProblems(input, now, `records[${i}]`));
  if (problems.length) throw new InputError(problems);
  const records = inputs.map((input) => prepare(input, input.contact_id, now));
  if (records.length) await append(tx, tenantId, records, actor, now);
  return records.map((r) => r.id);
}

/** Appends every record or none: any bad field, or a contact outside the tenant, refuses the batch. */
export async function recordConsentBatch(db: Db, tenantId: string, inputs: ConsentBatchInput[], actor: string, now: Date): Promise<{ recorded: number; ids: string[] }> {
  const problems = inputs.flatMap((input, i) => consentProblems(input, now, `records[${i}]`));
  if (problems.length) throw new InputError(problems);
  const records = inputs.map((input) => prepare(input, input.contact_id, now));
  await db
    .transaction(async (tx) => {
      const known = await existingContacts(tx, tenantId, records.map((r) => r.contact_id));
      const unknown: FieldProblem[] = [];
      records.forEach((r, i) => {
        if (!known.has(r.contact_id)) unknown.push({ field: `records[${i}].contact_id`, message: 'is not a contact of this tenant' });
      });
      if (unknown.length) throw new InputError(unknown);
      await append(tx, tenantId, records, actor, now);
    })
    .catch((err: unknown) => {
      if (pgErrorCode(err) === FOREIGN_KEY_VIOLATION) throw InputError.field('records', 'a contact was erased while the batch was recorded; send it again');
      throw err;
    });
  return { recorded: records.length, ids: records.map((r) => r.id) };
}

/** Current consent of a contact, one row per channel and topic ever recorded. */
export async function consentState(db: Queryable, tenantId: string, contactId: string): Promise<ConsentStateRow[]> {
  const { rows } = await db.query<ConsentStateRow>(
    'select channel, topic, status, type, recorded_at from consent_state where tenant_id = $1 and contact_id = $2 order by channel, topic',
    [tenantId, contactId],
  );
  return rows;
}

/** Every record of a contact, oldest first by the time consent was given or withdrawn. */
export async function consentRecords(db: Queryable, tenantId: string, contactId: string): Promise<ConsentRecordRow[]> {
  const { rows } = await db.query<ConsentRecordRow>(
    `select ${RECORD_COLUMNS} from consent_records where tenant_id = $1 and contact_id = $2 order by recorded_at, id`,
    [tenantId, contactId],
  );
  return rows;
}

/** The ledger and current state of a contact of the tenant; NotFoundError otherwise. */
export async function getConsent(db: Queryable, tenantId: string, contactId: string): Promise<{ records: ConsentRecordRow[]; current: ConsentStateRow[] }> {
  if (!(await existingContacts(db, tenantId, [contactId])).has(contactId)) throw new NotFoundError('contact');
  const [records, current] = await Promise.all([consentRecords(db, tenantId, contactId), consentState(db, tenantId, contactId)]);
  return { records, current };
}
