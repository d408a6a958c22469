import type { EmbeddingsClient } from '../core/embeddings.js';
import {
  buildPrompt,
  checkAnswer,
  composeDeterministic,
  elementsIn,
  optOutFooter,
  personalizationScore,
  personalProfile,
  withFooter,
  type CallToAction,
  type OtherContact,
  type SynthesisChannel,
  type SynthesisInput,
  type SynthesisItem,
} from '../core/synthesis.js';
import type { Tenant } from '../core/tenant.js';
import { getContactRow, type ContactRow } from '../store/contacts.js';
import type { Db, Queryable } from '../store/db.js';
import { searchKnowledge } from '../store/knowledge-search.js';
import { getKnowledgeItem, listKnowledgeItems } from '../store/knowledge.js';
import { createReviewTask, type ReviewSubject, type ReviewTask } from '../store/reviews.js';
import { LlmError, type LlmClient } from './llm-client.js';

/**
 * Synthesis for one contact: load the contact, find knowledge items that speak to it, ask the
 * model when one is configured and use its answer only if checkAnswer finds nothing wrong;
 * otherwise, or without a model, compose the message deterministically. Every result says which
 * items and personal elements it used and, when the model's answer was set aside, why.
 */

export interface Synthesized {
  text: string;
  source: 'llm' | 'composer';
  items_used: { id: string; title: string }[];
  elements: string[];
  personalization_score: number;
  /** Why the model's answer was not used (`timeout`, `http_500`, `too_long: …`); null when it was, or no model is configured. */
  fallback_reason: string | null;
}

/** Finds the tenant's other contacts whose address or number a text mentions. */
export type OtherContactFinder = (text: string) => Promise<OtherContact[]>;

/** The model's answer when it passes every check, else the composer's message with the reason. */
export async function draftMessage(input: SynthesisInput, llm: LlmClient | null, findOthers: OtherContactFinder = async () => []): Promise<Synthesized> {
  const titles = new Map(input.items.map((i) => [i.id, i.title]));
  const compose = (fallback_reason: string | null): Synthesized => {
    const m = composeDeterministic(input);
    return {
      text: m.text,
      source: 'composer',
      items_used: m.used.items.map((id) => ({ id, title: titles.get(id)! })),
      elements: m.used.elements,
      personalization_score: m.personalization_score,
      fallback_reason,
    };
  };
  if (!llm) return compose(null);
  let answer: string;
  try {
    // A token is three to four characters of prose; the margin lets an answer run over, so the
    // length check refuses it, rather than arriving cut off mid-sentence.
    answer = await llm.complete(buildPrompt(input), { maxTokens: Math.ceil(input.max_length / 2) + 64 });
  } catch (err) {
    if (err instanceof LlmError) return compose(`${err.reason}: ${err.message}`);
    throw err;
  }
  let body = answer.trim();
  // Told to leave the footer out, a model may still write it; it is not written twice.
  if (input.footer && body.endsWith(input.footer)) body = body.slice(0, -input.footer.length).trimEnd();
  const text = withFooter(body, input.footer);
  const problems = checkAnswer(text, input, await findOthers(text));
  if (problems.length) return compose(problems.map((p) => `${p.code}: ${p.message}`).join('; '));
  const elements = elementsIn(body, input.contact);
  return {
    text,
    source: 'llm',
    // The model saw every item; each is a source of what it wrote.
    items_used: input.items.map((i) => ({ id: i.id, title: i.title })),
    elements,
    personalization_score: personalizationScore(elements, input.contact),
    fallback_reason: null,
  };
}

export interface SynthesisOptions {
  channel: SynthesisChannel;
  /** Free text to search the knowledge base with; without it, the topics are searched. */
  query?: string;
  /** Topics to search; default the contact's interests, recent topics and purchases. */
  topics?: string[];
  /** At most this many items (default 3, at most MAX_SYNTHESIS_ITEMS). */
  max_items?: number;
  max_length?: number;
  cta: CallToAction;
  /** Marketing on SMS and WhatsApp carries the opt-out footer (default true). */
  marketing?: boolean;
}

export const MAX_SYNTHESIS_ITEMS = 10;
export const DEFAULT_MAX_ITEMS = 3;
/** One SMS segment's worth of GSM-7 text times three, and a comfortable WhatsApp message. */
export const DEFAULT_MAX_LENGTH: Record<SynthesisChannel, number> = { sms: 480, whatsapp: 1000, email: 2000 };
/** How much of an item's body stands in for a best chunk when the item was found by topic alone. */
const BODY_EXCERPT = 1000;

export interface SynthesisDeps {
  llm: LlmClient | null;
  embeddings?: EmbeddingsClient | null;
  now: Date;
}

/** A personalized message for one contact of one tenant; NotFoundError for a contact the tenant lacks. */
export async function synthesizeFor(db: Db, tenant: Tenant, contactId: string, opts: SynthesisOptions, deps: SynthesisDeps): Promise<Synthesized> {
  return (await synthesizeWithInput(db, tenant, contactId, opts, deps)).message;
}

/** The message and the input it was held to, whose length, call to action and footer a review edit must keep. */
async function synthesizeWithInput(db: Db, tenant: Tenant, contactId: string, opts: SynthesisOptions, deps: SynthesisDeps): Promise<{ message: Synthesized; input: SynthesisInput }> {
  const contact = await getContactRow(db, tenant.id, contactId);
  const profile = personalProfile(contact);
  const topics = opts.topics?.length ? opts.topics : [...profile.interests, ...profile.recent_topics, ...profile.purchases];
  const maxItems = Math.min(opts.max_items ?? DEFAULT_MAX_ITEMS, MAX_SYNTHESIS_ITEMS);
  const items = maxItems > 0 ? await findItems(db, tenant.id, opts.query, topics, maxItems, deps) : [];
  const language = contact.locale ?? 'en';
  const input: SynthesisInput = {
    contact,
    items,
    voice: tenant.brand_voice,
    channel: opts.channel,
    max_length: opts.max_length ?? DEFAULT_MAX_LENGTH[opts.channel],
    cta: opts.cta,
    footer: optOutFooter(opts.channel, opts.marketing ?? true, language, tenant.settings.opt_out_footer),
    language,
  };
  return { message: await draftMessage(input, deps.llm, (text) => otherContactsIn(db, tenant.id, contact, text)), input };
}

/** A message a send path may use now, or the review task it must wait for. */
export type SendableSynthesis = ({ status: 'ready' } & Synthesized) | { status: 'pending_review'; review_task_id: string; review_task: ReviewTask };

/**
 * Synthesis on a send path. With the tenant's `synthesis_review` setting on, the message is not
 * returned: it is stored as a pending review task naming `subject`, and the caller parks its send
 * until a reviewer decides (docs/synthesis.md, "Human review"). Otherwise the message is ready.
 */
export async function synthesizeForSend(
  db: Db,
  tenant: Tenant,
  contactId: string,
  opts: SynthesisOptions,
  deps: SynthesisDeps,
  subject: ReviewSubject = {},
  actor = 'rapport',
): Promise<SendableSynthesis> {
  const { message, input } = await synthesizeWithInput(db, tenant, contactId, opts, deps);
  if (!tenant.settings.synthesis_review) return { status: 'ready', ...message };
  const { text, ...sources } = message;
  const task = await createReviewTask(
    db,
    tenant.id,
    { contact_id: contactId, channel: opts.channel, draft: text, sources, rules: { max_length: input.max_length, cta: input.cta, footer: input.footer }, subject },
    actor,
    deps.now,
  );
  return { status: 'pending_review', review_task_id: task.id, review_task: task };
}

/**
 * Items by search first (the query, else the topics as alternatives), each with its best chunk;
 * then, to fill up, items tagged with one of the topics, whose wording search may not match.
 */
async function findItems(db: Db, tenantId: string, query: string | undefined, topics: string[], limit: number, deps: SynthesisDeps): Promise<SynthesisItem[]> {
  const q = query?.trim() || topics.map((t) => t.replace(/[_"-]+/g, ' ').trim()).filter(Boolean).join(' or ');
  const out: SynthesisItem[] = [];
  if (q) {
    const found = await searchKnowledge(db, tenantId, { query: q, topics: query?.trim() && topics.length ? topics : undefined, validAt: deps.now, limit, embeddings: deps.embeddings });
    for (const h of found.data) out.push({ id: h.item.id, kind: h.item.kind, title: h.item.title, text: h.chunk.text, topics: h.item.topics, url: h.item.url });
  }
  if (out.length < limit) {
    const listed = await listKnowledgeItems(db, tenantId, { topics: topics.length ? topics : undefined, valid_at: deps.now, limit: limit + out.length });
    for (const s of listed.data) {
      if (out.length >= limit) break;
      if (out.some((i) => i.id === s.id)) continue;
      const full = await getKnowledgeItem(db, tenantId, s.id);
      out.push({ id: s.id, kind: s.kind, title: s.title, text: full.body.slice(0, BODY_EXCERPT), topics: s.topics, url: s.url });
    }
  }
  return out;
}

const EMAILS = /[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[a-z]{2,}/gi;
const PHONES = /\+?\d(?:[\s.()-]*\d){6,}/g;

/** The tenant's other contacts whose e-mail address or phone number the text holds. */
export async function otherContactsIn(db: Queryable, tenantId: string, self: ContactRow, text: string): Promise<OtherContact[]> {
  const emails = [...new Set((text.match(EMAILS) ?? []).map((e) => e.toLowerCase()))];
  const phones = [...new Set((text.match(PHONES) ?? []).map((p) => `+${p.replace(/\D/g, '')}`))];
  if (!emails.length && !phones.length) return [];
  const { rows } = await db.query<OtherContact>(
    `select name, email, phone, whatsapp from contacts
      where tenant_id = $1 and id <> $2 and (lower(email) = any($3::text[]) or phone = any($4::text[]) or whatsapp = any($4::text[]))
      limit 10`,
    [tenantId, self.id, emails, phones],
  );
  return rows;
}
