import { InputError } from './errors.js';
import type { BrandVoice } from './tenant.js';

/**
 * Message synthesis, the pure part: what a personalized message may be built from, the
 * deterministic composer used when no model is configured (or a model's answer is refused), the
 * prompt a model is given, and the checks a model's answer must pass before it is used.
 *
 * A contact's personal elements come from its name and these attributes (each an array of
 * strings, or one comma-separated string):
 *   interests (also read: topics)        → `interest:<value>`
 *   recent_topics                        → `topic:<value>`
 *   purchases (also read: purchase_history) → `purchase:<value>`; an entry may be an object with
 *                                          a `name` or `title`
 * and the first word of the name gives `first_name`.
 *
 * Lengths are counted in Unicode code points, so an emoji counts once.
 */

export type SynthesisChannel = 'whatsapp' | 'sms' | 'email';

export interface SynthesisContact {
  name: string | null;
  locale: string | null;
  attributes: Record<string, unknown>;
  tags: string[];
  email?: string | null;
  phone?: string | null;
  whatsapp?: string | null;
}

export interface SynthesisItem {
  id: string;
  kind: string;
  title: string;
  /** The item's body or its best-matching chunk. */
  text: string;
  topics: string[];
  url?: string | null;
}

export interface CallToAction {
  text: string;
  url?: string | null;
}

export interface SynthesisInput {
  contact: SynthesisContact;
  items: SynthesisItem[];
  voice: BrandVoice;
  channel: SynthesisChannel;
  max_length: number;
  cta: CallToAction;
  /** The opt-out footer to end the message with; null when none is required. */
  footer: string | null;
  /** A BCP 47 tag or its language part ("es", "pt-BR"); the composer's phrases follow it. */
  language: string;
  /** The tenant's own addresses and numbers, which an answer may mention. */
  tenant_contact_points?: string[];
}

/** What a message used: the knowledge items (by id) and the personal elements (see above). */
export interface SynthesisUsage {
  items: string[];
  elements: string[];
}

export interface ComposedMessage {
  text: string;
  used: SynthesisUsage;
  /** Share of the contact's available personal elements the message uses; 0 when it has none. */
  personalization_score: number;
}

export interface AnswerProblem {
  code: 'too_long' | 'missing_footer' | 'missing_cta' | 'unknown_url' | 'unknown_number' | 'unknown_contact_point' | 'other_contact' | 'empty';
  message: string;
}

/** Another contact of the tenant, whose details must never appear in this contact's message. */
export interface OtherContact {
  name?: string | null;
  email?: string | null;
  phone?: string | null;
  whatsapp?: string | null;
}

export const charLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** SMS and WhatsApp marketing carries an opt-out line; email has its own unsubscribe footer. */
export function footerRequired(channel: SynthesisChannel, marketing: boolean): boolean {
  return marketing && channel !== 'email';
}

const FOOTERS: Record<string, string> = {
  en: 'Reply STOP to opt out.',
  es: 'Responde STOP para darte de baja.',
  fr: 'Répondez STOP pour vous désabonner.',
  de: 'Antworte STOP zum Abmelden.',
  pt: 'Responda STOP para sair.',
};

/**
 * The opt-out footer for a message, or null when the channel and purpose need none. `tenant` is
 * the tenant's own table (settings.opt_out_footer): its line for the language, else the built-in
 * one for the language, else the tenant's English line, else the built-in English one.
 */
export function optOutFooter(channel: SynthesisChannel, marketing: boolean, language: string, tenant?: Readonly<Record<string, string>> | null): string | null {
  if (!footerRequired(channel, marketing)) return null;
  const base = baseLanguage(language);
  return tenant?.[base] ?? FOOTERS[base] ?? tenant?.en ?? FOOTERS.en!;
}

export function baseLanguage(tag: string | null | undefined): string {
  return (tag ?? 'en').toLowerCase().split(/[-_]/)[0] || 'en';
}

interface Phrases {
  hi: (name: string) => string;
  hello: string;
  interest: (x: string) => string;
  purchase: (x: string) => string;
  topic: (x: string) => string;
}

const PHRASES: Record<string, Phrases> = {
  en: { hi: (n) => `Hi ${n}!`, hello: 'Hi!', interest: (x) => `Since you're into ${x}: `, purchase: (x) => `For your ${x}: `, topic: (x) => `About ${x}: ` },
  es: { hi: (n) => `¡Hola, ${n}!`, hello: '¡Hola!', interest: (x) => `Como te interesa ${x}: `, purchase: (x) => `Para tu ${x}: `, topic: (x) => `Sobre ${x}: ` },
  fr: { hi: (n) => `Bonjour ${n} !`, hello: 'Bonjour !', interest: (x) => `Puisque ${x} vous intéresse : `, purchase: (x) => `Pour votre ${x} : `, topic: (x) => `À propos de ${x} : ` },
  de: { hi: (n) => `Hallo ${n}!`, hello: 'Hallo!', interest: (x) => `Weil dich ${x} interessiert: `, purchase: (x) => `Zu deinem ${x}: `, topic: (x) => `Zum Thema ${x}: ` },
  pt: { hi: (n) => `Olá, ${n}!`, hello: 'Olá!', interest: (x) => `Como você gosta de ${x}: `, purchase: (x) => `Para o seu ${x}: `, topic: (x) => `Sobre ${x}: ` },
};

function strings(v: unknown): string[] {
  const raw = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [];
  const out: string[] = [];
  for (const x of raw) {
    const s = typeof x === 'string' ? x : x && typeof x === 'object' ? ((x as { name?: unknown; title?: unknown }).name ?? (x as { title?: unknown }).title) : undefined;
    if (typeof s === 'string' && s.trim() && !out.includes(s.trim())) out.push(s.trim());
  }
  return out;
}

export interface PersonalProfile {
  first_name: string | null;
  interests: string[];
  recent_topics: string[];
  purchases: string[];
}

/** The personal elements a contact offers (see the module comment for where each comes from). */
export function personalProfile(c: SynthesisContact): PersonalProfile {
  const a = c.attributes ?? {};
  const first = c.name?.trim().split(/\s+/)[0];
  return {
    first_name: first || null,
    interests: strings(a.interests ?? a.topics),
    recent_topics: strings(a.recent_topics),
    purchases: strings(a.purchases ?? a.purchase_history),
  };
}

export function availableElements(p: PersonalProfile): string[] {
  return [
    ...(p.first_name ? ['first_name'] : []),
    ...p.interests.map((x) => `interest:${x}`),
    ...p.recent_topics.map((x) => `topic:${x}`),
    ...p.purchases.map((x) => `purchase:${x}`),
  ];
}

/** "order_tracking" and "Order Tracking" are one subject. */
const norm = (s: string) => s.toLowerCase().replace(/[_\-\s]+/g, ' ').trim();

/** The personal element an item speaks to, by its topics and title; the strongest kind first. */
function reasonFor(item: SynthesisItem, p: PersonalProfile): { element: string; value: string; kind: 'interest' | 'purchase' | 'topic' } | null {
  const topics = new Set(item.topics.map(norm));
  const title = norm(item.title);
  const hits = (v: string) => topics.has(norm(v)) || (norm(v).length > 2 && title.includes(norm(v)));
  const purchase = p.purchases.find(hits);
  if (purchase) return { element: `purchase:${purchase}`, value: purchase, kind: 'purchase' };
  const interest = p.interests.find(hits);
  if (interest) return { element: `interest:${interest}`, value: interest, kind: 'interest' };
  const topic = p.recent_topics.find(hits);
  if (topic) return { element: `topic:${topic}`, value: topic, kind: 'topic' };
  return null;
}

/** Sentences of a text, each with its closing punctuation; a text without any is one sentence. */
export function sentences(text: string): string[] {
  return (text.replace(/\s+/g, ' ').trim().match(/[^.!?]+(?:[.!?]+(?=\s|$)|$)/g) ?? []).map((s) => s.trim()).filter(Boolean);
}

const endWithStop = (s: string) => (/[.!?:]$/.test(s) ? s : `${s}.`);

export function ctaLine(cta: CallToAction): string {
  return cta.url ? `${cta.text.trim()} ${cta.url}` : cta.text.trim();
}

/** The shortest max_length the composer can honour: the call to action and the footer. */
export function minimumLength(input: Pick<SynthesisInput, 'cta' | 'footer'>): number {
  return charLength(ctaLine(input.cta)) + (input.footer ? 2 + charLength(input.footer) : 0);
}

const MAX_ITEM_SENTENCES = 3;

/**
 * Builds the message from the contact's profile and the items, without a model: a greeting with
 * the first name, one to three item sentences (items that speak to the contact's purchases,
 * interests or recent topics first), the call to action, the signature and the footer. Pieces
 * are dropped or shortened, never cut mid-sentence, until the message fits max_length; the call
 * to action and the footer are never dropped. The same input always gives the same message.
 */
export function composeDeterministic(input: SynthesisInput): ComposedMessage {
  const min = minimumLength(input);
  if (input.max_length < min) throw InputError.field('max_length', `must be at least ${min} to hold the call to action${input.footer ? ' and the opt-out footer' : ''}`);
  const phr = PHRASES[baseLanguage(input.language)] ?? PHRASES.en!;
  const profile = personalProfile(input.contact);

  // A purchase is the strongest tie to a contact, then an interest, then a recent topic; among
  // equals the caller's (search) order holds.
  const strength = (r: ReturnType<typeof reasonFor>) => (r ? { purchase: 3, interest: 2, topic: 1 }[r.kind] : 0);
  const ranked = input.items
    .map((item, at) => ({ item, at, reason: reasonFor(item, profile) }))
    .sort((a, b) => strength(b.reason) - strength(a.reason) || a.at - b.at)
    .slice(0, MAX_ITEM_SENTENCES);

  interface Piece {
    variants: string[];
    elements: string[];
    item?: string;
  }
  const greeting: Piece = profile.first_name ? { variants: [phr.hi(profile.first_name)], elements: ['first_name'] } : { variants: [phr.hello], elements: [] };
  const itemPieces: Piece[] = ranked.map(({ item, reason }) => {
    const lead = reason ? phr[reason.kind](reason.value) : '';
    const first = sentences(item.text)[0];
    const title = endWithStop(item.title.trim());
    const full = first && norm(first) !== norm(item.title) ? `${lead}${title} ${first}` : `${lead}${title}`;
    const variants = full === `${lead}${title}` ? [full] : [full, `${lead}${title}`];
    return { variants, elements: reason ? [reason.element] : [], item: item.id };
  });
  const signature: Piece[] = input.voice.signature?.trim() ? [{ variants: [input.voice.signature.trim()], elements: [] }] : [];

  const cta = ctaLine(input.cta);
  // The chosen variant of each piece, or null while it is left out.
  const head = [greeting, ...itemPieces].map((p) => ({ ...p, chosen: null as string | null }));
  const tail = signature.map((p) => ({ ...p, chosen: null as string | null }));
  const picked = (slots: { chosen: string | null }[]) => slots.flatMap((s) => (s.chosen ? [s.chosen] : []));
  const assemble = () => [...picked(head), cta, ...picked(tail), ...(input.footer ? [input.footer] : [])].join('\n\n');
  const slots = [...head, ...tail];
  // Greedy by priority: greeting, then items, then the signature; each takes its longest variant that fits.
  for (const slot of slots) {
    for (const v of slot.variants) {
      slot.chosen = v;
      if (charLength(assemble()) <= input.max_length) break;
      slot.chosen = null;
    }
  }
  const text = assemble();
  const elements = [...new Set(slots.filter((s) => s.chosen).flatMap((s) => s.elements))];
  const items = slots.filter((s) => s.chosen && s.item).map((s) => s.item!);
  return { text, used: { items, elements }, personalization_score: score(elements, profile) };
}

function score(elements: string[], profile: PersonalProfile): number {
  const available = availableElements(profile);
  if (!available.length) return 0;
  return Math.round((elements.filter((e) => available.includes(e)).length / available.length) * 1000) / 1000;
}

/** The personal elements a finished text mentions (for a model's answer, which reports none). */
export function elementsIn(text: string, contact: SynthesisContact): string[] {
  const p = personalProfile(contact);
  const t = norm(text);
  const mentions = (v: string) => t.includes(norm(v));
  return [
    ...(p.first_name && new RegExp(`(^|[^\\p{L}])${escapeRe(p.first_name)}($|[^\\p{L}])`, 'iu').test(text) ? ['first_name'] : []),
    ...p.interests.filter(mentions).map((x) => `interest:${x}`),
    ...p.recent_topics.filter(mentions).map((x) => `topic:${x}`),
    ...p.purchases.filter(mentions).map((x) => `purchase:${x}`),
  ];
}

export function personalizationScore(elements: string[], contact: SynthesisContact): number {
  return score(elements, personalProfile(contact));
}

/** The model's answer with Rapport's footer after it. */
export function withFooter(answer: string, footer: string | null): string {
  const body = answer.trim();
  return footer ? `${body}\n\n${footer}` : body;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const URL_RE = /\bhttps?:\/\/[^\s<>"')\]]+/gi;
const EMAIL_RE = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}.-]+\.[\p{L}]{2,}/giu;
// Seven or more digits, optionally led by + and broken by spaces, dots, dashes or parentheses.
const PHONE_RE = /\+?\(?\d(?:[\s.()-]*\d){6,}/g;
const NUMBER_RE = /\d+(?:[.,]\d+)*/g;

const stripTrailing = (u: string) => u.replace(/[.,;:!?]+$/, '');
const digits = (s: string) => s.replace(/\D/g, '');

/** Everything the message may draw on, as one lower-cased text. */
function contextText(input: SynthesisInput): string {
  const c = input.contact;
  return [
    c.name ?? '',
    c.email ?? '',
    c.phone ?? '',
    c.whatsapp ?? '',
    JSON.stringify(c.attributes ?? {}),
    c.tags.join(' '),
    ...input.items.flatMap((i) => [i.title, i.text, i.url ?? '', i.topics.join(' ')]),
    input.cta.text,
    input.cta.url ?? '',
    input.footer ?? '',
    input.voice.signature ?? '',
    input.voice.guidelines ?? '',
    ...(input.tenant_contact_points ?? []),
  ]
    .join('\n')
    .toLowerCase();
}

/**
 * Why a finished message (a model's answer with the footer appended) must not be sent: over
 * max_length, the required footer or the call to action missing, or something the context does
 * not hold — a URL, an e-mail address, a phone number or any other number. Whether a sentence
 * states a fact the context lacks cannot be checked exactly; URLs and numbers are where invented
 * offers show. Another contact's name, address or number, when given, is refused by name.
 */
export function checkAnswer(text: string, input: SynthesisInput, others: OtherContact[] = []): AnswerProblem[] {
  const problems: AnswerProblem[] = [];
  if (!text.trim()) return [{ code: 'empty', message: 'the answer is empty' }];
  const n = charLength(text);
  if (n > input.max_length) problems.push({ code: 'too_long', message: `${n} characters, over the maximum of ${input.max_length}` });
  if (input.footer && !text.trimEnd().endsWith(input.footer)) problems.push({ code: 'missing_footer', message: 'the opt-out footer is not at the end' });
  const lower = text.toLowerCase();
  const ctaPresent = input.cta.url ? lower.includes(input.cta.url.toLowerCase()) : lower.replace(/\s+/g, ' ').includes(input.cta.text.trim().toLowerCase().replace(/\s+/g, ' '));
  if (!ctaPresent) problems.push({ code: 'missing_cta', message: input.cta.url ? `the call-to-action link ${input.cta.url} is missing` : 'the call to action is missing' });

  for (const o of others) {
    const found = [o.email, o.phone, o.whatsapp].find((v) => v && (v.includes('@') ? lower.includes(v.toLowerCase()) : digits(v).length >= 7 && digits(text).includes(digits(v))));
    const name = o.name?.trim();
    const ownName = input.contact.name?.toLowerCase() ?? '';
    const named = name && !ownName.includes(name.toLowerCase()) && new RegExp(`(^|[^\\p{L}])${escapeRe(name)}($|[^\\p{L}])`, 'iu').test(text);
    if (found || named) {
      problems.push({ code: 'other_contact', message: `mentions another contact (${found ?? name})` });
      break;
    }
  }

  const ctx = contextText(input);
  const ctxDigits = new Set((ctx.match(PHONE_RE) ?? []).map(digits));
  let rest = text;
  for (const u of text.match(URL_RE) ?? []) {
    const url = stripTrailing(u);
    if (!ctx.includes(url.toLowerCase())) problems.push({ code: 'unknown_url', message: `the link ${url} is not in the context` });
    rest = rest.replace(u, ' ');
  }
  for (const e of rest.match(EMAIL_RE) ?? []) {
    if (!ctx.includes(e.toLowerCase())) problems.push({ code: 'unknown_contact_point', message: `the address ${e} is not the tenant's or this contact's` });
    rest = rest.replace(e, ' ');
  }
  for (const p of rest.match(PHONE_RE) ?? []) {
    if (!ctxDigits.has(digits(p))) problems.push({ code: 'unknown_contact_point', message: `the number ${p.trim()} is not the tenant's or this contact's` });
    rest = rest.replace(p, ' ');
  }
  const ctxNumbers = new Set(ctx.match(NUMBER_RE) ?? []);
  for (const num of new Set(rest.match(NUMBER_RE) ?? [])) {
    if (!ctxNumbers.has(num)) problems.push({ code: 'unknown_number', message: `the number ${num} is not in the context` });
  }
  return problems;
}

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

/**
 * The messages a chat model is given. The system message carries the rules (voice, no facts
 * beyond the context, the length, the call to action, no footer); the user message carries the
 * context as JSON, so text in a knowledge item reads as data rather than as instructions.
 */
export function buildPrompt(input: SynthesisInput): ChatMessage[] {
  const budget = input.max_length - (input.footer ? 2 + charLength(input.footer) : 0);
  const v = input.voice;
  const system = [
    `You write one short ${input.channel === 'email' ? 'e-mail body' : `${input.channel} message`} from a business to one of its customers, in the language "${input.language}".`,
    `Brand voice: tone ${v.tone?.trim() || 'friendly and professional'}.${v.guidelines?.trim() ? ` Guidelines: ${v.guidelines.trim()}` : ''}${v.signature?.trim() ? ` Sign off as: ${v.signature.trim()}` : ''}`,
    'Use only facts found in the context below. Do not add any fact, offer, price, discount, date, number, link, e-mail address or phone number that the context does not contain word for word.',
    "Mention no other person than this customer. Address the customer by first name when one is given, and relate the content to the customer's interests, recent topics or purchases where the context supports it.",
    `End with this call to action, exactly as written: ${ctaLine(input.cta)}`,
    `Keep the whole message under ${budget} characters.`,
    'Do not add an opt-out or unsubscribe line: it is appended separately. Answer with the message text only.',
  ].join('\n');
  const p = personalProfile(input.contact);
  const context = {
    customer: { first_name: p.first_name, interests: p.interests, recent_topics: p.recent_topics, purchases: p.purchases, locale: input.contact.locale },
    knowledge: input.items.map((i) => ({ kind: i.kind, title: i.title, text: i.text, ...(i.url ? { url: i.url } : {}) })),
    call_to_action: ctaLine(input.cta),
  };
  return [
    { role: 'system', content: system },
    { role: 'user', content: `Context (JSON):\n${JSON.stringify(context, null, 2)}` },
  ];
}
