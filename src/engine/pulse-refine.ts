import { CONTACT_COLUMNS, type ContactRow } from '../store/contacts.js';
import type { Db, Queryable } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { newId } from '../store/ids.js';
import { insertReviewTasks, type ReviewSources } from '../store/reviews.js';
import { DEFAULT_LLM_TIMEOUT_MS, type LlmClient } from './llm-client.js';
import type { RefinementInput } from './pulse.js';
import { draftMessage, otherContactsIn, type Synthesized } from './synthesize.js';

/**
 * A pulse's messages refined by the configured chat model (docs/campaigns.md, "With a model").
 *
 * The pulse batch wrote each message with the composer's text, held (no due time,
 * `content.refine`), and a pulse_refinements row saying what to ask. A sweep here leases as many
 * rows as the worker makes model calls at once (SKIP LOCKED; a lease that runs out, because its
 * process died, lets another worker take the row), asks the model for all of them at once outside
 * any transaction, and keeps each answer only when checkAnswer finds nothing wrong (draftMessage;
 * the composer's text stays otherwise, with the reason). A model that is rate-limited or down is
 * asked again twice, later, before that. Then one transaction settles the whole sweep, in a fixed
 * number of statements:
 *
 * - the text and what it was built from are written to the messages and synthesized_messages;
 * - a message falls due when it was meant to go (its throttle slot or local time), or now if that
 *   has passed; a recipient-local message whose moment went by more than the grace ago is
 *   cancelled (`local_time_passed`), as a late batch would have skipped it; while its campaign is
 *   paused it stays held, for resume to release;
 * - with the tenant reviewing synthesized messages (the setting as it is now), a review task opens
 *   on the model's answer instead, and the reviewer's decision releases the message
 *   (store/reviews.ts).
 *
 * A message that left the queue meanwhile (a stop, an opt-out, an erasure) is only forgotten.
 *
 * Locks are taken campaign (KEY SHARE), contacts (KEY SHARE), messages (UPDATE), then the rows
 * here, each set in id order: pause, resume and stop take the campaign first and its messages
 * after, erasure the contact first and its messages after, so none of them can deadlock with a
 * sweep, and a pause waiting on a sweep (or a sweep on a pause) sees the other's outcome.
 *
 * A worker without a model releases rows nobody has refined for NO_MODEL_GRACE_MS with the
 * composer's text, so removing the model (or a worker started without it) never leaves pulses held.
 */

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
/** How long rows wait for a worker with a model before one without releases them as composed. */
export const NO_MODEL_GRACE_MS = 30 * 60_000;
/** Rows a worker without a model releases per sweep. */
const NO_MODEL_BATCH = 500;

export interface RefineSweep {
  claimed: number;
  /** The model's answer was used. */
  refined: number;
  /** The composer's text was kept (the model failed, or its answer was refused, or there is no model). */
  fell_back: number;
  /** The message had left the queue, or another worker had taken the row over. */
  dropped: number;
  /** The model was rate-limited or unavailable: asked again later. */
  deferred: number;
}

interface Job {
  message_id: string;
  tenant_id: string;
  occurrence_id: string;
  input: RefinementInput;
  due_at: Date;
  latest_at: Date | null;
  attempts: number;
}

/** A job's outcome: the model's answer or the composer's (message), or none with the reason the composer's text stays. */
interface Outcome {
  job: Job;
  message: Synthesized | null;
  reason: string | null;
}

/** A lease outlasting a call that waits its full timeout, with room for the settling after it. */
function leaseMs(llm: LlmClient | null): number {
  return Math.max(REFINE_LEASE_MS, 2 * (llm?.timeoutMs ?? DEFAULT_LLM_TIMEOUT_MS) + 60_000);
}

/**
 * One sweep; see the top of this file. With `llm` null, releases rows older than
 * NO_MODEL_GRACE_MS with the composer's text.
 */
export async function runRefinements(db: Db, now: () => Date, llm: LlmClient | null, opts: { concurrency?: number } = {}): Promise<RefineSweep> {
  const at = now();
  const limit = llm ? Math.max(1, opts.concurrency ?? llm.concurrency ?? DEFAULT_LLM_CONCURRENCY) : NO_MODEL_BATCH;
  const { rows: jobs } = await db.query<Job>(
    `update pulse_refinements r set lease_until = $1::timestamptz + $2 * interval '1 millisecond', attempts = r.attempts + 1
      where r.message_id in (select message_id from pulse_refinements
                              where (lease_until is null or lease_until <= $1) and ($4::timestamptz is null or created_at <= $4)
                              order by created_at limit $3 for update skip locked)
      returning r.message_id, r.tenant_id, r.occurrence_id, r.input, r.due_at, r.latest_at, r.attempts`,
    [at, leaseMs(llm), limit, llm ? null : new Date(at.getTime() - NO_MODEL_GRACE_MS)],
  );
  const sweep: RefineSweep = { claimed: jobs.length, refined: 0, fell_back: 0, dropped: 0, deferred: 0 };
  if (!jobs.length) return sweep;

  const contacts = await queuedContacts(db, jobs);
  const drafted = await Promise.all(
    jobs.map(async (job): Promise<Outcome | 'defer'> => {
      const contact = contacts.get(job.message_id);
      // Gone or no longer queued: settle() forgets it.
      if (!contact) return { job, message: null, reason: null };
      if (!llm) return { job, message: null, reason: 'no model configured on the worker that released it' };
      // A row that keeps being taken and never finished (its worker dies on it) is not tried forever.
      if (job.attempts > MAX_REFINE_ATTEMPTS) return { job, message: null, reason: `abandoned after ${MAX_REFINE_ATTEMPTS} attempts` };
      try {
        const message = await draftMessage({ ...job.input, contact }, llm, (text) => otherContactsIn(db, job.tenant_id, contact, text));
        if (message.fallback_reason && TRANSIENT.test(message.fallback_reason) && job.attempts < MAX_REFINE_ATTEMPTS) return 'defer';
        return { job, message, reason: null };
      } catch {
        // The database failed looking for other contacts' details: the lease brings it back.
        return 'defer';
      }
    }),
  );
  const deferred = jobs.filter((_, i) => drafted[i] === 'defer');
  if (deferred.length) {
    await db.query(
      `update pulse_refinements r set lease_until = $2::timestamptz + x.delay * interval '1 millisecond'
         from unnest($1::uuid[], $3::int[], $4::int[]) as x(id, attempts, delay) where r.message_id = x.id and r.attempts = x.attempts`,
      [deferred.map((j) => j.message_id), at, deferred.map((j) => j.attempts), deferred.map((j) => REFINE_RETRY_MS[Math.min(j.attempts, REFINE_RETRY_MS.length) - 1]!)],
    );
    sweep.deferred = deferred.length;
  }
  const outcomes = drafted.filter((d): d is Outcome => d !== 'defer');
  if (outcomes.length) {
    const settled = await db.transaction((tx) => settle(tx, outcomes, now()));
    sweep.refined = settled.refined;
    sweep.fell_back = settled.fell_back;
    sweep.dropped = outcomes.length - settled.refined - settled.fell_back;
  }
  return sweep;
}

/** The contact of each job's message, when the message is still queued. */
async function queuedContacts(db: Queryable, jobs: Job[]): Promise<Map<string, ContactRow>> {
  const { rows } = await db.query<ContactRow & { message_id: string }>(
    `select m.id as message_id, ${CONTACT_COLUMNS.split(', ')
      .map((c) => `c.${c}`)
      .join(', ')}
       from unnest($1::uuid[]) as x(id) join messages m on m.id = x.id join contacts c on c.id = m.contact_id
      where m.status = 'queued'`,
    [jobs.map((j) => j.message_id)],
  );
  return new Map(rows.map(({ message_id, ...c }) => [message_id, c]));
}

const byId = <T>(key: (t: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** Writes the sweep's outcomes and releases the messages (or opens their review tasks); see the top of this file. */
async function settle(tx: Queryable, outcomes: Outcome[], now: Date): Promise<{ refined: number; fell_back: number }> {
  const ids = outcomes.map((o) => o.job.message_id);
  const { rows: campaigns } = await tx.query<{ occurrence_id: string; campaign_id: string; status: string; review: boolean }>(
    `select o.id as occurrence_id, c.id as campaign_id, c.status, coalesce((t.settings->>'synthesis_review')::boolean, false) as review
       from campaign_occurrences o join campaigns c on c.id = o.campaign_id join tenants t on t.id = c.tenant_id
      where o.id = any($1::uuid[]) order by c.id for key share of c`,
    [[...new Set(outcomes.map((o) => o.job.occurrence_id))]],
  );
  const campaignOf = new Map(campaigns.map((c) => [c.occurrence_id, c]));
  await tx.query(`select id from contacts where id in (select contact_id from messages where id = any($1::uuid[])) order by id for key share`, [ids]);
  const { rows: messages } = await tx.query<{ id: string; contact_id: string; held: boolean; text: string }>(
    `select id, contact_id, content ? 'refine' as held, content->'vars'->'synthesis'->>'text' as text
       from messages where id = any($1::uuid[]) and status = 'queued' order by id for update`,
    [ids],
  );
  // Only the rows this sweep still holds: a lease that ran out may have passed one to another worker.
  const { rows: mine } = await tx.query<{ message_id: string }>(
    `delete from pulse_refinements r using unnest($1::uuid[], $2::int[]) as x(id, attempts)
      where r.message_id = x.id and r.attempts = x.attempts returning r.message_id`,
    [ids, outcomes.map((o) => o.job.attempts)],
  );
  const held = new Map(messages.filter((m) => m.held).map((m) => [m.id, m]));
  const kept = new Set(mine.map((r) => r.message_id));
  const live = outcomes.filter((o) => held.has(o.job.message_id) && kept.has(o.job.message_id)).sort(byId((o) => o.job.message_id));
  if (!live.length) return { refined: 0, fell_back: 0 };

  // What each was built from: the model's (or the composer's) record, or, when the composer's
  // text stays without a new draft, the record as the batch wrote it, with the reason.
  const { rows: sources } = await tx.query<ReviewSources & { message_id: string }>(
    `update synthesized_messages s set source = coalesce(x.source, s.source), items = coalesce(x.items, s.items),
            elements = case when x.elements is null then s.elements else array(select jsonb_array_elements_text(x.elements)) end,
            personalization_score = coalesce(x.score, s.personalization_score), fallback_reason = x.fallback_reason
       from jsonb_to_recordset($1::jsonb) as x(message_id uuid, source text, items jsonb, elements jsonb, score real, fallback_reason text)
      where s.message_id = x.message_id
      returning s.message_id, s.source, s.items as items_used, s.elements, s.personalization_score, s.fallback_reason`,
    [
      JSON.stringify(
        live.map(({ job, message, reason }) => ({
          message_id: job.message_id,
          source: message?.source ?? null,
          items: message?.items_used ?? null,
          elements: message?.elements ?? null,
          score: message?.personalization_score ?? null,
          fallback_reason: message ? message.fallback_reason : reason,
        })),
      ),
    ],
  );
  const sourceOf = new Map(sources.map(({ message_id, ...s }) => [message_id, s]));

  const late = live.filter((o) => o.job.latest_at !== null && now > new Date(o.job.latest_at));
  const onTime = live.filter((o) => !late.includes(o));
  const textOf = (o: Outcome) => o.message?.text ?? held.get(o.job.message_id)!.text;
  if (late.length) {
    await tx.query(
      `update messages m set status = 'cancelled', reason = 'local_time_passed', due_at = null, updated_at = $2,
              content = jsonb_set(m.content - 'refine', '{vars,synthesis,text}', to_jsonb(x.text))
         from jsonb_to_recordset($1::jsonb) as x(id uuid, text text) where m.id = x.id`,
      [JSON.stringify(late.map((o) => ({ id: o.job.message_id, text: textOf(o) }))), now],
    );
    await tx.query(`insert into message_status (message_id, status, at, detail) select x.id, 'cancelled', $2, '{"reason":"local_time_passed"}' from unnest($1::uuid[]) as x(id)`, [
      late.map((o) => o.job.message_id),
      now,
    ]);
  }

  const reviewed = onTime.filter((o) => campaignOf.get(o.job.occurrence_id)?.review);
  const tasks = new Map(reviewed.map((o) => [o.job.message_id, { task_id: newId(), due_at: new Date(o.job.due_at).toISOString() }]));
  for (const tenantId of new Set(reviewed.map((o) => o.job.tenant_id))) {
    await insertReviewTasks(
      tx,
      tenantId,
      reviewed
        .filter((o) => o.job.tenant_id === tenantId)
        .map((o) => {
          const c = campaignOf.get(o.job.occurrence_id)!;
          const s = sourceOf.get(o.job.message_id)!;
          return {
            id: tasks.get(o.job.message_id)!.task_id,
            contact_id: held.get(o.job.message_id)!.contact_id,
            channel: o.job.input.channel,
            draft: textOf(o),
            sources: { source: s.source, items_used: s.items_used, elements: s.elements, personalization_score: s.personalization_score, fallback_reason: s.fallback_reason },
            rules: { max_length: o.job.input.max_length, cta: o.job.input.cta, footer: o.job.input.footer },
            subject: { campaign_id: c.campaign_id, occurrence: o.job.occurrence_id, message_id: o.job.message_id },
          };
        }),
      'rapport',
      now,
    );
  }
  const released = onTime.map((o) => {
    const task = tasks.get(o.job.message_id) ?? null;
    const paused = campaignOf.get(o.job.occurrence_id)?.status === 'paused';
    const due = task || paused ? null : new Date(Math.max(now.getTime(), new Date(o.job.due_at).getTime())).toISOString();
    return { id: o.job.message_id, text: textOf(o), review: task, due_at: due };
  });
  if (released.length) {
    await tx.query(
      `update messages m set content = jsonb_set(m.content - 'refine', '{vars,synthesis,text}', to_jsonb(x.text))
                                       || case when x.review is null then '{}'::jsonb else jsonb_build_object('review', x.review) end,
              due_at = x.due_at, updated_at = $2
         from jsonb_to_recordset($1::jsonb) as x(id uuid, text text, review jsonb, due_at timestamptz) where m.id = x.id`,
      [JSON.stringify(released), now],
    );
  }
  if (released.some((r) => r.due_at)) await notifyWork(tx);
  const refined = live.filter((o) => o.message?.source === 'llm').length;
  return { refined, fell_back: live.length - refined };
}
