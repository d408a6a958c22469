import { LOCAL_GRACE_MS } from '../core/campaign-schedule.js';
import { InputError } from '../core/errors.js';
import { addressFor } from '../core/policy.js';
import {
  backedOff,
  chooseItems,
  contactSubjects,
  DEFAULT_BACKOFF,
  DEFAULT_PULSE_LENGTH,
  knowledgePool,
  MAX_PULSE_ITEMS,
  normTopic,
  occurrenceWeek,
  PULSE_CONSENT_TOPIC,
  pulseTargeting,
  teaser,
  toneArm,
  type KnowledgePool,
  type PoolItem,
  type PulseHistoryEntry,
  type PulseSpec,
  type PulseVariant,
} from '../core/pulse.js';
import { optOutFooter, personalProfile, type SynthesisInput } from '../core/synthesis.js';
import type { Tenant } from '../core/tenant.js';
import { CONTACT_COLUMNS, type ContactRow } from '../store/contacts.js';
import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { insertReviewTasks, type ReviewRules } from '../store/reviews.js';
import { prepareSegment } from '../store/segments.js';
import { getTenant } from '../store/tenants.js';
import { insertRecipients, type Claimed, type RecipientInsert } from './campaign-runner.js';
import { draftMessage, type Synthesized } from './synthesize.js';

/**
 * One batch of a Relational Pulse (docs/campaigns.md, "Relational Pulse"), inside the runner's
 * batch transaction. The members come judged by the pulse's targeting (core/pulse.ts); here each
 * is capped to one pulse a week, held back by the back-off when it stopped answering, given up to
 * three knowledge items chosen in memory, and written a message by the deterministic composer
 * (with a chat model configured, held for the model to rewrite outside this transaction:
 * engine/pulse-refine.ts).
 * All of it costs a fixed number of statements per batch, whatever its size:
 *
 *   1. the tenant; the knowledge pool (once per occurrence, then from memory);
 *   2. per member at once: whether it already has this week's pulse, and its last pulses;
 *   3. the messages (idempotency key pulse:<ISO week>:<contact>, tenant-wide, so two pulse
 *      campaigns cannot double up), their first status, what each was built from, the review
 *      tasks when the tenant reviews synthesized messages, and the recipients.
 *
 * The message's text travels in its variables (`vars.synthesis.text`) and its body is the fixed
 * Liquid `{{ vars.synthesis.text }}`: the text is inserted as it is, never read as a template, and
 * one parsed template serves every pulse. Its WhatsApp template goes with it, so the dispatcher
 * sends the text inside the 24-hour window and the template outside it.
 */

/** The Liquid body of every pulse message: its text comes from the variables, as written. */
export const PULSE_BODY = '{{ vars.synthesis.text }}';
/** How much of an item's body the composer is given: it uses the first sentence. */
const ITEM_TEXT = 1000;
/** The freshest items a pool holds; more would only lengthen the in-memory choice. */
const POOL_LIMIT = 1000;
/** How long a batch may reuse its occurrence's pool: an item edited meanwhile shows up after this. */
const POOL_TTL_MS = 60_000;
const POOL_CACHE_MAX = 64;
/** Campaign messages give way to journeys' (docs/campaigns.md). */
const PULSE_PRIORITY = 2;

const pools = new Map<string, { at: number; pool: KnowledgePool }>();

/** The tenant's items in force now that match the pulse's topics (all of them without topics), freshest first. */
async function loadPool(tx: Queryable, o: Claimed, spec: PulseSpec, now: Date): Promise<KnowledgePool> {
  const cached = pools.get(o.id);
  if (cached && now.getTime() - cached.at < POOL_TTL_MS && now.getTime() >= cached.at) return cached.pool;
  const topics = spec.topics?.length ? [...new Set(spec.topics.map(normTopic))] : null;
  const { rows } = await tx.query<Omit<PoolItem, 'fresh'> & { fresh: Date }>(
    `select i.id, i.kind, i.title, left(i.body, ${ITEM_TEXT}) as text, i.topics, i.tags, i.url,
            greatest(coalesce(i.valid_from, i.created_at), i.updated_at) as fresh
       from knowledge_items i
      where i.tenant_id = $1 and (i.valid_from is null or i.valid_from <= $2) and (i.valid_until is null or i.valid_until > $2)
        and ($3::text[] is null or exists (select 1 from unnest(i.topics || i.tags) t where btrim(regexp_replace(lower(t), '[_[:space:]-]+', ' ', 'g')) = any($3::text[])))
      order by fresh desc, i.id limit ${POOL_LIMIT}`,
    [o.tenant_id, now, topics],
  );
  const pool = knowledgePool(
    rows.map((r) => ({ ...r, fresh: new Date(r.fresh).getTime() })),
    spec.topics ?? [],
  );
  if (pools.size >= POOL_CACHE_MAX) pools.delete(pools.keys().next().value as string);
  pools.set(o.id, { at: now.getTime(), pool });
  return pool;
}

/**
 * The next members of a pulse whose audience is a list of contacts: those of the list after the
 * cursor that its targeting admits, judged as of the occurrence's start.
 */
export async function pulseListMembers(tx: Queryable, o: Claimed, spec: PulseSpec, ids: string[], limit: number): Promise<{ members: ContactRow[]; done: boolean }> {
  const q = await prepareSegment(tx, o.tenant_id, pulseTargeting(spec, undefined, o.pulse_min_engagement), new Date(o.started_at));
  const n = q.params.length;
  const { rows } = await tx.query<ContactRow>(
    `select ${CONTACT_COLUMNS} from contacts c
      where c.tenant_id = $1::uuid and c.id = any($${n + 1}::uuid[]) and ($${n + 2}::uuid is null or c.id > $${n + 2}) and ${q.where}
      order by c.id limit $${n + 3}::int`,
    [...q.params, ids, o.after, limit],
  );
  return { members: rows, done: rows.length < limit };
}

interface MemberFacts {
  contact_id: string;
  capped: boolean;
  history: (PulseHistoryEntry & { items: { id: string }[] })[];
}

/** Whether each member has this week's pulse already, and its last pulses that went out, newest first. */
async function loadFacts(tx: Queryable, tenantId: string, members: ContactRow[], week: string, depth: number): Promise<Map<string, MemberFacts>> {
  const { rows } = await tx.query<MemberFacts>(
    `select c.id as contact_id,
            exists (select 1 from messages m where m.tenant_id = $1 and m.idempotency_key = 'pulse:' || $3 || ':' || c.id) as capped,
            coalesce((select jsonb_agg(jsonb_build_object('week', h.pulse_week, 'answered', h.answered, 'items', h.items) order by h.created_at desc)
                        from (select s.pulse_week, s.items, s.created_at, m.replied_at is not null as answered
                                from synthesized_messages s join messages m on m.id = s.message_id
                               where s.tenant_id = $1 and s.contact_id = c.id and s.pulse_week is not null and m.sent_at is not null
                               order by s.created_at desc limit $4) h), '[]') as history
       from unnest($2::uuid[]) as c(id)`,
    [tenantId, members.map((c) => c.id), week, depth],
  );
  return new Map(rows.map((r) => [r.contact_id, r]));
}

interface Draft {
  contact: ContactRow;
  seq: number;
  /** When the message falls due; null while it is held for a model or a reviewer. */
  due_at: Date | null;
  /** When it was meant to go, kept for whoever releases a held message. */
  intended: Date;
  input: SynthesisInput;
  message: Synthesized;
  arm: PulseVariant | null;
  rules: ReviewRules;
  task_id: string | null;
}

/**
 * Writes one batch of a pulse occurrence; see the top of this file. With `refine` (a chat model
 * is configured) the composer's messages are written held and queued for the model
 * (engine/pulse-refine.ts), which releases them or opens their review tasks.
 */
export async function writePulseBatch(tx: Queryable, o: Claimed, members: ContactRow[], due: (j: number) => Date, now: Date, refine = false): Promise<void> {
  const spec = o.action.pulse!;
  const tenant = await getTenant(tx, o.tenant_id);
  const week = occurrenceWeek(o.local_at, new Date(o.scheduled_for), tenant.time_zone);
  const backoff = spec.backoff ?? {};
  const depth = backoff.after_unanswered ?? DEFAULT_BACKOFF.after_unanswered;
  const [pool, facts] = [await loadPool(tx, o, spec, now), await loadFacts(tx, o.tenant_id, members, week, depth)];
  const review = tenant.settings.synthesis_review === true;

  const skipped: RecipientInsert[] = [];
  const drafts: Draft[] = [];
  const skip = (c: ContactRow, j: number, reason: string) =>
    skipped.push({ contact_id: c.id, seq: o.written + j, message_id: null, enrollment_id: null, outcome: 'skipped', reason });
  for (let j = 0; j < members.length; j++) {
    const c = members[j]!;
    const f = facts.get(c.id);
    if (f?.capped) {
      skip(c, j, 'weekly_cap');
      continue;
    }
    const history = f?.history ?? [];
    if (backedOff(history, week, backoff)) {
      skip(c, j, 'backoff');
      continue;
    }
    if (!pool.items.length) {
      skip(c, j, 'no_knowledge');
      continue;
    }
    const previous = new Set((history[0]?.items ?? []).map((i) => i.id));
    const items = chooseItems(pool, contactSubjects(c), previous, Math.min(spec.max_items ?? MAX_PULSE_ITEMS, MAX_PULSE_ITEMS));
    const arm = spec.tone_test ? toneArm(spec.tone_test, o.campaign_id, c.id) : null;
    const input = synthesisInput(tenant, spec, c, arm, items);
    let message: Synthesized;
    try {
      // The composer: no network call inside the batch's transaction.
      message = await draftMessage(input, null);
    } catch (err) {
      // A tenant footer longer than max_length has room for: creating or changing the campaign and
      // lengthening the footer are refused then, so only a campaign saved before those checks, or
      // one created while the footer was being changed, gets here.
      if (err instanceof InputError) {
        skip(c, j, 'max_length');
        continue;
      }
      throw err;
    }
    drafts.push({
      contact: c,
      seq: o.written + j,
      due_at: review || refine ? null : due(j),
      intended: due(j),
      input,
      message,
      arm,
      rules: { max_length: input.max_length, cta: input.cta, footer: input.footer },
      // With a model the task is opened on its answer, not on the composer's draft.
      task_id: review && !refine ? newId() : null,
    });
  }

  const queued = await insertMessages(tx, o, drafts, week, now, refine);
  const written = drafts.filter((d) => queued.has(d.contact.id));
  // Another pulse campaign of the tenant took this week's key between the check and the insert.
  for (const d of drafts) if (!queued.has(d.contact.id)) skipped.push({ contact_id: d.contact.id, seq: d.seq, message_id: null, enrollment_id: null, outcome: 'skipped', reason: 'weekly_cap' });
  await recordSynthesis(tx, o, written, queued, week, now);
  if (refine) await queueRefinements(tx, o, written, queued, now);
  else if (review) {
    await insertReviewTasks(
      tx,
      o.tenant_id,
      written.map((d) => {
        const { text, ...sources } = d.message;
        return {
          id: d.task_id!,
          contact_id: d.contact.id,
          channel: 'whatsapp' as const,
          draft: text,
          sources,
          rules: d.rules,
          subject: { campaign_id: o.campaign_id, occurrence: o.id, message_id: queued.get(d.contact.id)! },
        };
      }),
      'rapport',
      now,
    );
  }
  await insertRecipients(
    tx,
    o,
    [...written.map((d) => ({ contact_id: d.contact.id, seq: d.seq, message_id: queued.get(d.contact.id)!, enrollment_id: null, outcome: 'queued' as const, reason: null })), ...skipped],
    now,
  );
}

function synthesisInput(tenant: Tenant, spec: PulseSpec, c: ContactRow, arm: PulseVariant | null, items: PoolItem[]): SynthesisInput {
  const language = c.locale ?? 'en';
  return {
    contact: c,
    items: items.map((i) => ({ id: i.id, kind: i.kind, title: i.title, text: i.text, topics: i.topics, url: i.url })),
    voice: arm ? { ...tenant.brand_voice, tone: arm.tone } : tenant.brand_voice,
    channel: 'whatsapp',
    max_length: spec.max_length ?? DEFAULT_PULSE_LENGTH,
    cta: arm?.cta ?? spec.cta,
    footer: optOutFooter('whatsapp', true, language, tenant.settings.opt_out_footer),
    language,
  };
}

/** What the model is asked with, less the contact, which is read again when refining. */
export type RefinementInput = Omit<SynthesisInput, 'contact'>;

/** The model's work for the written messages (pulse_refinements): what to ask, and when each was meant to go. */
async function queueRefinements(tx: Queryable, o: Claimed, written: Draft[], queued: Map<string, string>, now: Date): Promise<void> {
  if (!written.length) return;
  await tx.query(
    `insert into pulse_refinements (message_id, tenant_id, occurrence_id, input, due_at, latest_at, created_at)
     select x.message_id, $1, $4, x.input, x.due_at, x.latest_at, $2
       from jsonb_to_recordset($3::jsonb) as x(message_id uuid, input jsonb, due_at timestamptz, latest_at timestamptz)`,
    [
      o.tenant_id,
      now,
      JSON.stringify(
        written.map((d) => {
          const { contact: _contact, ...input } = d.input;
          return {
            message_id: queued.get(d.contact.id),
            input: input satisfies RefinementInput,
            due_at: d.intended,
            // A recipient-local pulse whose moment passes while the model works is not sent hours late.
            latest_at: o.local_at ? new Date(d.intended.getTime() + LOCAL_GRACE_MS) : null,
          };
        }),
      ),
      o.id,
    ],
  );
}

/** Queues the drafts' messages; the contacts whose message was written, with its id. */
async function insertMessages(tx: Queryable, o: Claimed, drafts: Draft[], week: string, now: Date, refine: boolean): Promise<Map<string, string>> {
  if (!drafts.length) return new Map();
  const spec = o.action.pulse!;
  const rows = drafts.map((d) => ({
    id: newId(),
    contact_id: d.contact.id,
    idempotency_key: `pulse:${week}:${d.contact.id}`,
    to_address: addressFor('whatsapp', d.contact),
    due_at: d.due_at?.toISOString() ?? null,
    content: {
      inline: { body: PULSE_BODY, whatsapp_template: spec.whatsapp_template },
      vars: {
        synthesis: {
          text: d.message.text,
          first_name: personalProfile(d.contact).first_name ?? '',
          teaser: teaser(d.message.items_used[0]?.title),
        },
      },
      // A held message remembers when it was meant to go: approval releases it then, not earlier.
      ...(d.task_id ? { review: { task_id: d.task_id, due_at: d.intended.toISOString() } } : {}),
      ...(refine ? { refine: true } : {}),
    },
  }));
  const { rows: queued } = await tx.query<{ id: string; contact_id: string }>(
    `with ins as (
       insert into messages (id, tenant_id, contact_id, kind, channel, topic, transactional, status, idempotency_key, due_at, content, to_address, priority, created_at, updated_at)
       select x.id, $1, x.contact_id, 'send', 'whatsapp', $3, false, 'queued', x.idempotency_key, x.due_at, x.content, x.to_address, $4, $5, $5
         from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, idempotency_key text, due_at timestamptz, content jsonb, to_address text)
       on conflict (tenant_id, idempotency_key) do nothing
       returning id, contact_id),
     st as (insert into message_status (message_id, status, at) select id, 'queued', $5 from ins)
     select id, contact_id from ins`,
    [o.tenant_id, JSON.stringify(rows), PULSE_CONSENT_TOPIC, PULSE_PRIORITY, now],
  );
  return new Map(queued.map((q) => [q.contact_id, q.id]));
}

/** What each written message was built from (synthesized_messages). */
async function recordSynthesis(tx: Queryable, o: Claimed, written: Draft[], queued: Map<string, string>, week: string, now: Date): Promise<void> {
  if (!written.length) return;
  await tx.query(
    `insert into synthesized_messages (message_id, tenant_id, campaign_id, occurrence_id, contact_id, source, items, elements, personalization_score,
                                       fallback_reason, variant, tone, pulse_week, created_at)
     select x.message_id, $1, $2, $3, x.contact_id, x.source, x.items, array(select jsonb_array_elements_text(x.elements)), x.score,
            x.fallback_reason, x.variant, x.tone, $4, $5
       from jsonb_to_recordset($6::jsonb) as x(message_id uuid, contact_id uuid, source text, items jsonb, elements jsonb, score real,
                                              fallback_reason text, variant text, tone text)`,
    [
      o.tenant_id,
      o.campaign_id,
      o.id,
      week,
      now,
      JSON.stringify(
        written.map((d) => ({
          message_id: queued.get(d.contact.id),
          contact_id: d.contact.id,
          source: d.message.source,
          items: d.message.items_used,
          elements: d.message.elements,
          score: d.message.personalization_score,
          fallback_reason: d.message.fallback_reason,
          variant: d.arm?.name ?? null,
          tone: d.arm?.tone ?? null,
        })),
      ),
    ],
  );
}
