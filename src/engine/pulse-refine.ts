import { CONTACT_COLUMNS, type ContactRow } from '../store/contacts.js';
import type { Db, Queryable } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { newId } from '../store/ids.js';
import { insertReviewTasks } from '../store/reviews.js';
import type { LlmClient } from './llm-client.js';
import type { RefinementInput } from './pulse.js';
import { draftMessage, otherContactsIn, type Synthesized } from './synthesize.js';

/**
 * A pulse's messages refined by the configured chat model (docs/campaigns.md, "With a model").
 *
 * The pulse batch wrote each message with the composer's text, held (no due time,
 * `content.refine`), and a pulse_refinements row saying what to ask. Here a worker leases a few
 * rows (SKIP LOCKED; a lease that runs out, because its process died, lets another worker take
 * the row), asks the model for each outside any transaction, and keeps its answer only when
 * checkAnswer finds nothing wrong (draftMessage; the composer's text stays otherwise, with the
 * reason). A model that is rate-limited or down is asked again twice, later, before that. Then,
 * in one short transaction per message:
 *
 * - the text and what it was built from are written to the message and synthesized_messages;
 * - the message falls due when it was meant to go (its throttle slot or local time), or now if
 *   that has passed; a recipient-local message whose moment went by more than the grace ago is
 *   cancelled (`local_time_passed`), as a late batch would have skipped it; while its campaign is
 *   paused it stays held, for resume to release;
 * - with the tenant reviewing synthesized messages, a review task opens on the model's answer
 *   instead, and the reviewer's decision releases the message (store/reviews.ts).
 *
 * A message that left the queue meanwhile (a stop, an opt-out, an erasure) is only forgotten.
 */

/** Long enough for a model call with its timeout and the write after it. */
export const REFINE_LEASE_MS = 5 * 60_000;
/** A row taken this many times without finishing keeps the composer's text. */
export const MAX_REFINE_ATTEMPTS = 3;
/**
 * A model that is rate-limited, overloaded or unreachable is asked again after these delays
 * (after the first and the second attempt) before the composer's text is kept: on a large pulse
 * a burst of 429s would otherwise turn thousands of messages into the composer's at once.
 */
export const REFINE_RETRY_MS = [30_000, 120_000];
const TRANSIENT = /^(timeout|unreachable|http_429|http_5\d\d):/;
export const DEFAULT_LLM_CONCURRENCY = 4;

export interface RefineSweep {
  claimed: number;
  /** The model's answer was used. */
  refined: number;
  /** The composer's text was kept (the model failed, or its answer was refused). */
  fell_back: number;
  /** The message had left the queue. */
  dropped: number;
  /** The model was rate-limited or unavailable: asked again later. */
  deferred: number;
}

interface Job {
  message_id: string;
  tenant_id: string;
  input: RefinementInput;
  due_at: Date;
  latest_at: Date | null;
  review: boolean;
  attempts: number;
}

/** Leases up to `concurrency` × 2 rows and refines them, `concurrency` model calls at a time. */
export async function runRefinements(db: Db, now: () => Date, llm: LlmClient, opts: { concurrency?: number } = {}): Promise<RefineSweep> {
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_LLM_CONCURRENCY);
  const at = now();
  const { rows: jobs } = await db.query<Job>(
    `update pulse_refinements r set lease_until = $1::timestamptz + $2 * interval '1 millisecond', attempts = r.attempts + 1
      where r.message_id in (select message_id from pulse_refinements where lease_until is null or lease_until <= $1
                              order by created_at limit $3 for update skip locked)
      returning r.message_id, r.tenant_id, r.input, r.due_at, r.latest_at, r.review, r.attempts`,
    [at, REFINE_LEASE_MS, concurrency * 2],
  );
  const sweep: RefineSweep = { claimed: jobs.length, refined: 0, fell_back: 0, dropped: 0, deferred: 0 };
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const outcome = await refineOne(db, now, llm, jobs[next++]!);
      sweep[outcome]++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, lane));
  return sweep;
}

async function refineOne(db: Db, now: () => Date, llm: LlmClient, job: Job): Promise<'refined' | 'fell_back' | 'dropped' | 'deferred'> {
  const { rows } = await db.query<ContactRow & { status: string }>(
    `select ${CONTACT_COLUMNS.split(', ')
      .map((c) => `c.${c}`)
      .join(', ')}, m.status
       from messages m join contacts c on c.id = m.contact_id where m.id = $1 and m.tenant_id = $2`,
    [job.message_id, job.tenant_id],
  );
  const row = rows[0];
  if (!row || row.status !== 'queued') {
    await db.query('delete from pulse_refinements where message_id = $1', [job.message_id]);
    return 'dropped';
  }
  const { status: _status, ...contact } = row;
  const input = { ...job.input, contact };
  // A row that keeps being taken and never finished (its worker dies on it) is not tried forever.
  const message: Synthesized | null =
    job.attempts > MAX_REFINE_ATTEMPTS ? null : await draftMessage(input, llm, (text) => otherContactsIn(db, job.tenant_id, contact, text));
  if (message?.fallback_reason && TRANSIENT.test(message.fallback_reason) && job.attempts < MAX_REFINE_ATTEMPTS) {
    const retryAt = new Date(now().getTime() + REFINE_RETRY_MS[job.attempts - 1]!);
    await db.query('update pulse_refinements set lease_until = $2 where message_id = $1', [job.message_id, retryAt]);
    return 'deferred';
  }
  return db.transaction((tx) => settle(tx, job, message, now()));
}

/** Writes the outcome and releases the message (or opens its review task); see the top of this file. */
async function settle(tx: Queryable, job: Job, message: Synthesized | null, now: Date): Promise<'refined' | 'fell_back' | 'dropped'> {
  const { rows } = await tx.query<{ contact_id: string; status: string; held: boolean; paused: boolean; campaign_id: string | null; occurrence_id: string | null; text: string }>(
    `select m.contact_id, m.status, m.content ? 'refine' as held, m.content->'vars'->'synthesis'->>'text' as text, s.campaign_id, s.occurrence_id,
            exists (select 1 from campaign_recipients r join campaigns c on c.id = r.campaign_id where r.message_id = m.id and c.status = 'paused') as paused
       from messages m left join synthesized_messages s on s.message_id = m.id
      where m.id = $1 for update of m`,
    [job.message_id],
  );
  await tx.query('delete from pulse_refinements where message_id = $1', [job.message_id]);
  const m = rows[0];
  if (!m || m.status !== 'queued' || !m.held) return 'dropped';
  const outcome = message?.source === 'llm' ? 'refined' : 'fell_back';
  const text = message?.text ?? m.text;
  if (message) {
    await tx.query(
      `update synthesized_messages set source = $2, items = $3, elements = $4, personalization_score = $5, fallback_reason = $6 where message_id = $1`,
      [job.message_id, message.source, JSON.stringify(message.items_used), message.elements, message.personalization_score, message.fallback_reason],
    );
  } else {
    await tx.query(`update synthesized_messages set fallback_reason = $2 where message_id = $1`, [job.message_id, `abandoned after ${MAX_REFINE_ATTEMPTS} attempts`]);
  }

  const late = job.latest_at !== null && now > new Date(job.latest_at);
  if (late) {
    await tx.query(
      `update messages m set status = 'cancelled', reason = 'local_time_passed', content = jsonb_set(m.content - 'refine', '{vars,synthesis,text}', to_jsonb($2::text)), updated_at = $3
        where m.id = $1`,
      [job.message_id, text, now],
    );
    await tx.query(`insert into message_status (message_id, status, at, detail) values ($1, 'cancelled', $2, '{"reason":"local_time_passed"}')`, [job.message_id, now]);
    return outcome;
  }

  let review: { task_id: string; due_at: string } | null = null;
  if (job.review) {
    review = { task_id: newId(), due_at: new Date(job.due_at).toISOString() };
    const used = message ?? (await storedSources(tx, job.message_id));
    await insertReviewTasks(
      tx,
      job.tenant_id,
      [
        {
          id: review.task_id,
          contact_id: m.contact_id,
          channel: job.input.channel,
          draft: text,
          sources: { source: used.source, items_used: used.items_used, elements: used.elements, personalization_score: used.personalization_score, fallback_reason: used.fallback_reason },
          rules: { max_length: job.input.max_length, cta: job.input.cta, footer: job.input.footer },
          subject: { campaign_id: m.campaign_id ?? undefined, occurrence: m.occurrence_id ?? undefined, message_id: job.message_id },
        },
      ],
      'rapport',
      now,
    );
  }
  const due = review || m.paused ? null : new Date(Math.max(now.getTime(), new Date(job.due_at).getTime()));
  await tx.query(
    `update messages m set content = jsonb_set(m.content - 'refine', '{vars,synthesis,text}', to_jsonb($2::text))
                             || case when $3::jsonb is null then '{}'::jsonb else jsonb_build_object('review', $3::jsonb) end,
            due_at = $4, updated_at = $5
      where m.id = $1`,
    [job.message_id, text, review ? JSON.stringify(review) : null, due, now],
  );
  if (due) await notifyWork(tx);
  return outcome;
}

/** What synthesized_messages says a message was built from, for a review task of an abandoned refinement. */
async function storedSources(tx: Queryable, messageId: string): Promise<Omit<Synthesized, 'text'>> {
  const { rows } = await tx.query<Omit<Synthesized, 'text'>>(
    `select source, items as items_used, elements, personalization_score, fallback_reason from synthesized_messages where message_id = $1`,
    [messageId],
  );
  return rows[0] ?? { source: 'composer', items_used: [], elements: [], personalization_score: 0, fallback_reason: null };
}
