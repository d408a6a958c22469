import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import { checkAnswer, type AnswerProblem, type CallToAction, type SynthesisChannel } from '../core/synthesis.js';
import { writeAudit, writeAuditBatch } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { Db, Queryable } from './db.js';
import { notifyWork } from './enrollments.js';
import { newId } from './ids.js';

/**
 * Review tasks: a synthesized draft held for a person to decide on (docs/synthesis.md, "Human
 * review"). A task is `pending` until one decision makes it `approved` (final = draft), `edited`
 * (final = the reviewer's text, checked against the draft's rules) or `rejected` (no final).
 * Decisions are final: a second one is a 409. Audit entries carry ids and counts, never the
 * message text, since the log outlives erasure of the contact the message was for.
 */

export type ReviewStatus = 'pending' | 'approved' | 'edited' | 'rejected';

export interface ReviewSources {
  source: 'llm' | 'composer';
  items_used: { id: string; title: string }[];
  elements: string[];
  personalization_score: number;
  fallback_reason: string | null;
}

/** What any text sent for the task must keep: the draft was held to the same. */
export interface ReviewRules {
  max_length: number;
  cta: CallToAction;
  footer: string | null;
}

/** What the draft is for, so the sender can find the task again; {} when a caller asked directly. */
export interface ReviewSubject {
  campaign_id?: string;
  occurrence?: string;
  enrollment_id?: string;
  message_id?: string;
}

export interface ReviewTask {
  id: string;
  contact_id: string;
  channel: SynthesisChannel;
  draft: string;
  final: string | null;
  sources: ReviewSources;
  rules: ReviewRules;
  subject: ReviewSubject;
  status: ReviewStatus;
  decided_by: string | null;
  decided_at: Date | null;
  reason: string | null;
  created_at: Date;
}

export interface NewReviewTask {
  contact_id: string;
  channel: SynthesisChannel;
  draft: string;
  sources: ReviewSources;
  rules: ReviewRules;
  subject?: ReviewSubject;
}

const COLUMNS = 'id, contact_id, channel, draft, final, sources, rules, subject, status, decided_by, decided_at, reason, created_at';

export async function createReviewTask(db: Db, tenantId: string, input: NewReviewTask, actor: string, now: Date): Promise<ReviewTask> {
  return db.transaction(async (tx) => (await insertReviewTasks(tx, tenantId, [{ ...input, id: newId() }], actor, now))[0]!);
}

/**
 * Many tasks in two statements, inside the caller's transaction: a pulse batch holds its
 * messages for review in the same transaction that queues them.
 */
export async function insertReviewTasks(tx: Queryable, tenantId: string, inputs: (NewReviewTask & { id: string })[], actor: string, now: Date): Promise<ReviewTask[]> {
  if (!inputs.length) return [];
  const { rows } = await tx.query<ReviewTask>(
    `insert into review_tasks (id, tenant_id, contact_id, channel, draft, sources, rules, subject, created_at)
     select x.id, $1, x.contact_id, x.channel, x.draft, x.sources, x.rules, x.subject, $3
       from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, channel text, draft text, sources jsonb, rules jsonb, subject jsonb)
     returning ${COLUMNS}`,
    [tenantId, JSON.stringify(inputs.map((i) => ({ ...i, subject: i.subject ?? {} }))), now],
  );
  await writeAuditBatch(
    tx,
    rows.map((task) => ({
      tenantId,
      actor,
      action: 'review.created',
      entityType: 'review_task',
      entityId: task.id,
      data: { contact_id: task.contact_id, channel: task.channel, source: task.sources.source, items: task.sources.items_used.map((i) => i.id), subject: task.subject },
    })),
  );
  return rows;
}

export async function getReviewTask(db: Queryable, tenantId: string, id: string): Promise<ReviewTask> {
  const { rows } = await db.query<ReviewTask>(`select ${COLUMNS} from review_tasks where tenant_id = $1 and id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('review task');
  return rows[0];
}

/** One page, oldest first (ids are UUIDv7), so reviewers work the queue in the order it filled. */
export async function listReviewTasks(
  db: Queryable,
  tenantId: string,
  f: { status?: ReviewStatus; contact_id?: string; limit?: number; cursor?: string },
): Promise<{ data: ReviewTask[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<ReviewTask>(
    `select ${COLUMNS} from review_tasks
      where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or status = $3) and ($4::uuid is null or contact_id = $4)
      order by id limit $5`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.status ?? null, f.contact_id ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

// An edit is the reviewer's own wording, so only the rules every sent message keeps apply; the
// checks for invented links and numbers guard against a model, not against the tenant.
const EDIT_RULES: ReadonlySet<AnswerProblem['code']> = new Set(['empty', 'too_long', 'missing_footer', 'missing_cta']);

/** Why an edited text breaks the draft's rules (length, footer at the end, call to action). */
export function editProblems(text: string, task: Pick<ReviewTask, 'channel' | 'rules'>): AnswerProblem[] {
  const problems = checkAnswer(text, {
    contact: { name: null, locale: null, attributes: {}, tags: [] },
    items: [],
    voice: {},
    channel: task.channel,
    max_length: task.rules.max_length,
    cta: task.rules.cta,
    footer: task.rules.footer,
    language: 'en',
  });
  return problems.filter((p) => EDIT_RULES.has(p.code));
}

type Decision = { status: 'approved' } | { status: 'edited'; text: string } | { status: 'rejected'; reason: string };

/**
 * Records the one decision on a task. The row is locked first, so two reviewers deciding at once
 * get one success and one 409 rather than two audit entries for one task.
 */
async function decide(db: Db, tenantId: string, id: string, d: Decision, actor: string, now: Date): Promise<ReviewTask> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<ReviewTask>(`select ${COLUMNS} from review_tasks where tenant_id = $1 and id = $2 for update`, [tenantId, id]);
    const task = rows[0];
    if (!task) throw new NotFoundError('review task');
    if (task.status !== 'pending') throw new ConflictError(`the review task was already ${task.status}; a decision is final`, 'status');
    if (d.status === 'edited') {
      const problems = editProblems(d.text, task);
      if (problems.length) throw new InputError(problems.map((p) => ({ field: 'text', message: p.message })));
    }
    const final = d.status === 'approved' ? task.draft : d.status === 'edited' ? d.text : null;
    const reason = d.status === 'rejected' ? d.reason : null;
    const updated = await tx.query<ReviewTask>(
      `update review_tasks set status = $3, final = $4, reason = $5, decided_by = $6, decided_at = $7
        where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
      [tenantId, id, d.status, final, reason, actor, now],
    );
    const row = updated.rows[0]!;
    await settleHeldMessage(tx, tenantId, row, now);
    await writeAudit(tx, {
      tenantId,
      actor,
      action: `review.${d.status}`,
      entityType: 'review_task',
      entityId: id,
      data: { contact_id: row.contact_id, channel: row.channel, subject: row.subject, ...(final !== null ? { changed: final !== row.draft } : {}) },
    });
    return row;
  });
}

/**
 * The message a task holds, when its subject names one (a pulse writes it queued with no due
 * time and `content.review`): approved or edited, it falls due with the final text in
 * `vars.synthesis.text`, word for word, when it was meant to go (`content.review.due_at`: its
 * throttle slot or its recipient's local time) or now if that has passed (or, while its campaign
 * is paused, stays held for resume to release); rejected, it is cancelled with the reason "review rejected". A message that left
 * the queue meanwhile (an opt-out or a stop cancelled it) is left as it is.
 */
async function settleHeldMessage(tx: Queryable, tenantId: string, task: ReviewTask, now: Date): Promise<void> {
  const id = task.subject.message_id;
  if (!id) return;
  const held = `m.tenant_id = $1 and m.id = $2 and m.status = 'queued' and m.content->'review'->>'task_id' = $3`;
  if (task.status === 'rejected') {
    await tx.query(
      `with u as (update messages m set status = 'cancelled', reason = 'review rejected', due_at = null, content = m.content - 'review', updated_at = $4
                   where ${held} returning m.id)
       insert into message_status (message_id, status, at, detail) select id, 'cancelled', $4, jsonb_build_object('reason', 'review rejected', 'review_task_id', $3::text) from u`,
      [tenantId, id, task.id, now],
    );
    return;
  }
  // The campaign row first, as pause and resume take it: a pause committing meanwhile is seen
  // (a plain read in the update would judge by the statement's snapshot and release it).
  const { rows: campaign } = await tx.query<{ status: string }>(
    `select c.status from campaign_recipients r join campaigns c on c.id = r.campaign_id where r.message_id = $1 for key share of c`,
    [id],
  );
  const { rowCount } = await tx.query(
    `update messages m set content = jsonb_set(m.content - 'review', '{vars,synthesis,text}', to_jsonb($5::text)), updated_at = $4,
            due_at = case when $6::boolean then null else greatest($4::timestamptz, (m.content->'review'->>'due_at')::timestamptz) end
      where ${held}`,
    [tenantId, id, task.id, now, task.final, campaign[0]?.status === 'paused'],
  );
  if (rowCount) await notifyWork(tx);
}

/** The draft is sent as it is. */
export const approveReviewTask = (db: Db, tenantId: string, id: string, actor: string, now: Date) => decide(db, tenantId, id, { status: 'approved' }, actor, now);

/** The reviewer's text is sent instead; InputError naming `text` when it breaks the draft's rules. */
export const editReviewTask = (db: Db, tenantId: string, id: string, text: string, actor: string, now: Date) => decide(db, tenantId, id, { status: 'edited', text }, actor, now);

/** Nothing is sent; the reason stays on the task (not in the audit log, since it may quote the draft). */
export const rejectReviewTask = (db: Db, tenantId: string, id: string, reason: string, actor: string, now: Date) =>
  decide(db, tenantId, id, { status: 'rejected', reason }, actor, now);
