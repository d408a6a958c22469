import { DateTime } from 'luxon';
import { Type, type Static } from 'typebox';
import type { FieldProblem } from './errors.js';
import { assignVariant } from './journey/split.js';
import type { SegmentCondition } from './segment.js';
import { charLength, minimumLength, optOutFooter, personalProfile, type CallToAction, type SynthesisContact } from './synthesis.js';
import { templateProblems } from './template.js';
import type { OptOutFooters } from './tenant.js';

/**
 * The Relational Pulse, the pure part: a weekly, personalized WhatsApp message built from the
 * tenant's knowledge base (docs/campaigns.md, "Relational Pulse"). A pulse is a campaign of type
 * `pulse` whose action is `{ "pulse": PulseSpec }`. This module holds its shape and its rules:
 * who it targets (as a segment definition, so the audience is judged in SQL like any segment),
 * which week a send belongs to, the back-off for contacts who stopped answering, which knowledge
 * items suit each contact, which arm of a tone test a contact is in, and the test's verdict.
 *
 * What a contact must have to be targeted:
 *   - WhatsApp consent for the topic `pulse` (a channel-wide grant, topic `all`, covers it; the
 *     latest record decides, as everywhere);
 *   - the attribute `pulse.enabled` set to true (the seed's per-contact pulse preference);
 *   - a WhatsApp number or a phone number;
 *   - with `topics`, one of them among its `pulse.topics` or `interests` attributes;
 *   - with a minimum engagement above 0, an engagement score at least that high, or no score
 *     yet (a contact Rapport has sent nothing in 90 days has shown no disinterest).
 */

export const PULSE_CONSENT_TOPIC = 'pulse';
export const PULSE_ENABLED_ATTRIBUTE = 'pulse.enabled';
export const PULSE_TOPICS_ATTRIBUTE = 'pulse.topics';
export const MAX_PULSE_ITEMS = 3;
/** WhatsApp's limit on a text message's body. */
export const MAX_PULSE_LENGTH = 4096;
export const DEFAULT_PULSE_LENGTH = 1000;
export const DEFAULT_BACKOFF = { after_unanswered: 3, every_weeks: 4 } as const;
/** Below this many delivered pulses in an arm, a tone test's verdict is "not enough data". */
export const MIN_ARM_DELIVERED = 30;
/** The two-sided 95% critical value: a lead whose z is at least this is called significant. */
const Z_95 = 1.96;

const strict = { additionalProperties: false } as const;
const Topic = Type.String({ minLength: 1, maxLength: 100 });

export const PulseCta = Type.Object(
  {
    text: Type.String({ minLength: 1, maxLength: 300, pattern: '\\S', description: 'the call to action, e.g. "Any questions? Just reply."' }),
    url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000, pattern: '^https?://', description: 'a link written after the text' })),
  },
  strict,
);

export const PulseTemplate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512 }),
    language: Type.String({ minLength: 2, maxLength: 15 }),
    parameters: Type.Optional(
      Type.Array(Type.String({ maxLength: 2000 }), {
        maxItems: 20,
        description: 'body parameters (Liquid); {{ vars.synthesis.first_name }} and {{ vars.synthesis.teaser }} hold the first name and the first item\'s title',
      }),
    ),
  },
  { ...strict, description: 'the approved WhatsApp template sent instead of the text when the 24-hour window is closed' },
);

export const PulseBackoff = Type.Object(
  {
    after_unanswered: Type.Optional(Type.Integer({ minimum: 1, maximum: 52, description: 'pulses in a row left unanswered before the contact is backed off (default 3)' })),
    every_weeks: Type.Optional(Type.Integer({ minimum: 1, maximum: 52, description: 'a backed-off contact gets one pulse every this many weeks (default 4)' })),
  },
  strict,
);
export type PulseBackoff = Static<typeof PulseBackoff>;

export const PulseVariant = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9_.-]+$' }),
    tone: Type.String({ minLength: 1, maxLength: 200, description: "the brand voice's tone for this arm, e.g. highly personal" }),
    cta: Type.Optional(PulseCta),
  },
  strict,
);
export type PulseVariant = Static<typeof PulseVariant>;

export const PulseToneTest = Type.Object(
  {
    variants: Type.Array(PulseVariant, { minItems: 2, maxItems: 4 }),
    split: Type.Optional(Type.Array(Type.Number({ minimum: 0, maximum: 100 }), { minItems: 2, maxItems: 4, description: 'weights, one per variant (default equal), e.g. [50, 50]' })),
  },
  { ...strict, description: 'contacts are split between tones by a hash of the campaign and the contact, so each stays in its arm from week to week' },
);
export type PulseToneTest = Static<typeof PulseToneTest>;

export const PulseSpec = Type.Object(
  {
    topics: Type.Optional(
      Type.Array(Topic, { minItems: 1, maxItems: 50, description: 'only contacts with one of these in their pulse.topics or interests attributes, and only knowledge items with one of them as a topic or tag' }),
    ),
    min_engagement: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "the lowest engagement score targeted (default the tenant's pulse_min_engagement setting, else 0); contacts without a score yet are targeted" })),
    max_items: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PULSE_ITEMS, description: 'knowledge items per message (default 3)' })),
    max_length: Type.Optional(Type.Integer({ minimum: 40, maximum: MAX_PULSE_LENGTH, description: `characters, footer included (default ${DEFAULT_PULSE_LENGTH})` })),
    cta: PulseCta,
    whatsapp_template: PulseTemplate,
    backoff: Type.Optional(PulseBackoff),
    tone_test: Type.Optional(PulseToneTest),
  },
  { ...strict, description: 'a weekly personalized WhatsApp message from the knowledge base (docs/campaigns.md, "Relational Pulse")' },
);
export type PulseSpec = Static<typeof PulseSpec>;

const at = (base: string, key: string | number) => (typeof key === 'number' ? `${base}[${key}]` : `${base}.${key}`);

/** The languages of the built-in footers. */
const LANGUAGES = ['en', 'es', 'fr', 'de', 'pt'];

/** A footer a pulse may end with: the tenant's own line for `language`, or the built-in one. */
export interface PulseFooter {
  footer: string;
  language: string;
  own: boolean;
}

/**
 * The longest footer a pulse of the tenant may end with, given its own table
 * (settings.opt_out_footer): max_length must leave room for it. Languages the tenant left out
 * get the built-in line, and any other language one of these (optOutFooter).
 */
export function longestPulseFooter(own?: OptOutFooters | null): PulseFooter {
  const all: PulseFooter[] = [
    ...Object.entries(own ?? {}).map(([language, footer]) => ({ footer, language, own: true })),
    ...LANGUAGES.filter((l) => own?.[l] === undefined).map((language) => ({ footer: optOutFooter('whatsapp', true, language)!, language, own: false })),
  ];
  return all.reduce((a, b) => (charLength(b.footer) > charLength(a.footer) ? b : a));
}

/** How a footer is named in a message: "48 characters, settings.opt_out_footer.en". */
function describeFooter(f: PulseFooter): string {
  return `${charLength(f.footer)} characters, ${f.own ? `settings.opt_out_footer.${f.language}` : `the built-in ${f.language} line`}`;
}

/**
 * Where max_length cannot hold a call to action (the pulse's own, a tone test arm's) and the
 * longest footer: each pulse written would be skipped as max_length. Fields are named under `base`.
 */
export function pulseLengthProblems(spec: PulseSpec, footers?: OptOutFooters | null, base = 'action.pulse'): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const longest = longestPulseFooter(footers);
  const maxLength = spec.max_length ?? DEFAULT_PULSE_LENGTH;
  const ctas: [string, CallToAction][] = [[at(base, 'cta'), spec.cta]];
  spec.tone_test?.variants.forEach((v, i) => v.cta && ctas.push([at(at(at(base, 'tone_test'), 'variants'), i) + '.cta', v.cta]));
  for (const [field, cta] of ctas) {
    const min = minimumLength({ cta, footer: longest.footer });
    if (maxLength < min) {
      problems.push({
        field: spec.max_length === undefined ? field : at(base, 'max_length'),
        message: `max_length ${maxLength} cannot hold this call to action and the longest opt-out footer (${describeFooter(longest)}); it needs at least ${min}`,
      });
    }
  }
  return problems;
}

/**
 * What the schema cannot say about a pulse; each problem names its field under `base`. The
 * length is checked against the tenant's footers when given, else against the built-in ones.
 */
export function pulseProblems(spec: PulseSpec, base = 'action.pulse', footers?: OptOutFooters | null): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const push = (field: string, message: string) => problems.push({ field, message });
  spec.whatsapp_template.parameters?.forEach((p, i) => {
    const problem = templateProblems(p);
    if (problem) push(at(at(at(base, 'whatsapp_template'), 'parameters'), i), problem);
  });
  problems.push(...pulseLengthProblems(spec, footers, base));
  const test = spec.tone_test;
  if (test) {
    const names = test.variants.map((v) => v.name);
    names.forEach((n, i) => names.indexOf(n) !== i && push(at(at(at(at(base, 'tone_test'), 'variants'), i), 'name'), `${JSON.stringify(n)} is used by an earlier variant`));
    if (test.split) {
      if (test.split.length !== test.variants.length) push(at(at(base, 'tone_test'), 'split'), `has ${test.split.length} weights for ${test.variants.length} variants; give one per variant`);
      else if (!test.split.some((w) => w > 0)) push(at(at(base, 'tone_test'), 'split'), 'needs at least one weight above 0');
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Targeting

/**
 * The segment definition of the contacts a pulse targets (see the module comment), ANDed with
 * the campaign's own audience when it has one.
 */
export function pulseTargeting(spec: PulseSpec, audience?: SegmentCondition, tenantMin?: number | null): SegmentCondition {
  const all: SegmentCondition[] = [
    { consent: 'whatsapp', topic: PULSE_CONSENT_TOPIC },
    { attribute: PULSE_ENABLED_ATTRIBUTE, value: true },
    { any: [{ field: 'whatsapp', op: 'exists' }, { field: 'phone', op: 'exists' }] },
  ];
  if (spec.topics?.length) {
    all.push({ any: [{ attribute: PULSE_TOPICS_ATTRIBUTE, op: 'in', value: spec.topics }, { attribute: 'interests', op: 'in', value: spec.topics }] });
  }
  const min = spec.min_engagement ?? tenantMin ?? 0;
  if (min > 0) all.push({ any: [{ score: 'engagement', op: 'gte', value: min }, { score: 'engagement', op: 'not_exists' }] });
  return audience ? { all: [audience, ...all] } : { all };
}

// ---------------------------------------------------------------------------------------------
// Weeks and back-off

/** The ISO week ("2026-W10") an instant falls in, in `zone`. */
export function isoWeek(at: Date, zone: string): string {
  const d = DateTime.fromJSDate(at, { zone });
  return `${d.weekYear}-W${String(d.weekNumber).padStart(2, '0')}`;
}

/**
 * The week an occurrence sends in: that of its scheduled instant in the tenant's zone, or, for
 * an occurrence at a wall-clock time in each recipient's zone, that of the wall time itself,
 * which is the same week everywhere.
 */
export function occurrenceWeek(localAt: string | null, scheduledFor: Date, tenantZone: string): string {
  return localAt ? isoWeek(DateTime.fromISO(localAt, { zone: 'UTC' }).toJSDate(), 'UTC') : isoWeek(scheduledFor, tenantZone);
}

function weekStart(week: string): DateTime {
  const m = /^(\d{4})-W(\d{2})$/.exec(week);
  if (!m) throw new RangeError(`${JSON.stringify(week)} is not an ISO week such as "2026-W10"`);
  return DateTime.fromObject({ weekYear: Number(m[1]), weekNumber: Number(m[2]), weekday: 1 }, { zone: 'UTC' });
}

/** Whole weeks from week a to week b (negative when b is earlier). */
export function weeksBetween(a: string, b: string): number {
  return Math.round(weekStart(b).diff(weekStart(a), 'days').days / 7);
}

/** A pulse the contact was sent, newest first: its week and whether the contact answered it. */
export interface PulseHistoryEntry {
  week: string;
  answered: boolean;
}

/**
 * Whether the back-off holds the contact this week: its last `after_unanswered` pulses all went
 * unanswered, and the latest of them is fewer than `every_weeks` weeks old. A reply to any of
 * them ends the back-off.
 */
export function backedOff(history: readonly PulseHistoryEntry[], week: string, backoff: PulseBackoff = {}): boolean {
  const n = backoff.after_unanswered ?? DEFAULT_BACKOFF.after_unanswered;
  const k = backoff.every_weeks ?? DEFAULT_BACKOFF.every_weeks;
  if (history.length < n || history.slice(0, n).some((h) => h.answered)) return false;
  return weeksBetween(history[0]!.week, week) < k;
}

// ---------------------------------------------------------------------------------------------
// Tone test

/** The weights of a tone test's arms: the split, or equal shares. */
export function toneWeights(test: PulseToneTest): { name: string; weight: number }[] {
  return test.variants.map((v, i) => ({ name: v.name, weight: test.split ? (test.split[i] ?? 0) : 1 }));
}

/** The arm a contact is in: stable for the campaign and the contact, shares as the split says. */
export function toneArm(test: PulseToneTest, campaignId: string, contactId: string): PulseVariant {
  return test.variants[assignVariant(toneWeights(test), `${campaignId}:${contactId}`)]!;
}

export interface ArmResult {
  name: string;
  tone: string;
  /** Pulses written for the arm. */
  recipients: number;
  /** Of them, delivered or better (read, replied). */
  delivered: number;
  /** Of them, replied to within 48 hours of being sent. */
  responded: number;
}

export interface ToneVerdict {
  /** The arm with the highest response rate; null while there is not enough data, or on a tie. */
  leader: string | null;
  /** Two-proportion z statistic of the leader against the runner-up; null without enough data. */
  z: number | null;
  significant: boolean;
  verdict: string;
}

const pct = (n: number, d: number) => `${d ? ((100 * n) / d).toFixed(1) : '0.0'}%`;

/**
 * Which arm leads on response rate (responses over delivered pulses). Under MIN_ARM_DELIVERED
 * delivered pulses in any arm, "not enough data"; otherwise the leader, the counts, and whether
 * its lead over the runner-up is significant at 95% by a two-proportion z-test.
 */
export function toneVerdict(arms: readonly ArmResult[]): ToneVerdict {
  const counts = arms.map((a) => `${a.name} ${a.responded}/${a.delivered}`).join(', ');
  const short = arms.filter((a) => a.delivered < MIN_ARM_DELIVERED);
  if (arms.length < 2 || short.length) {
    return { leader: null, z: null, significant: false, verdict: `not enough data: each arm needs ${MIN_ARM_DELIVERED} delivered pulses (${counts} responses/delivered)` };
  }
  const ranked = [...arms].sort((a, b) => b.responded / b.delivered - a.responded / a.delivered);
  const [first, second] = [ranked[0]!, ranked[1]!];
  const p1 = first.responded / first.delivered;
  const p2 = second.responded / second.delivered;
  const pooled = (first.responded + second.responded) / (first.delivered + second.delivered);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / first.delivered + 1 / second.delivered));
  const z = se > 0 ? Math.round(((p1 - p2) / se) * 100) / 100 : 0;
  if (p1 === p2) return { leader: null, z, significant: false, verdict: `tied at ${pct(first.responded, first.delivered)} response (${counts})` };
  const significant = z >= Z_95;
  return {
    leader: first.name,
    z,
    significant,
    verdict: `${first.name} leads: ${pct(first.responded, first.delivered)} response (${first.responded}/${first.delivered}) against ${second.name} ${pct(second.responded, second.delivered)} (${second.responded}/${second.delivered}); ${significant ? 'significant' : 'not significant'} at 95% (z = ${z})`,
  };
}

// ---------------------------------------------------------------------------------------------
// Knowledge items per contact

/** A knowledge item as the pulse holds it in memory for a run. */
export interface PoolItem {
  id: string;
  kind: string;
  title: string;
  /** The start of the item's body. */
  text: string;
  topics: string[];
  tags: string[];
  url: string | null;
  /** When it became news: the later of its validity start (or creation) and its last change, in ms. */
  fresh: number;
}

/**
 * The items of a run, freshest first, with an index from each normalized topic and tag to them,
 * and what the campaign's topics alone give each item (worked out once, not per contact).
 */
export interface KnowledgePool {
  items: PoolItem[];
  byKey: Map<string, number[]>;
  /** Per item, the weight of the campaign's topics it names. */
  base: number[];
  /** Item indices by base weight, highest first, fresher first among equals. */
  byBase: number[];
}

/** "order_tracking" and "Order Tracking" are one subject, as in synthesis. */
export const normTopic = (s: string) => s.toLowerCase().replace(/[_\-\s]+/g, ' ').trim();

export function knowledgePool(items: readonly PoolItem[], pulseTopics: readonly string[] = []): KnowledgePool {
  const sorted = [...items].sort((a, b) => b.fresh - a.fresh || (a.id < b.id ? -1 : 1));
  const byKey = new Map<string, number[]>();
  sorted.forEach((item, i) => {
    for (const k of new Set([...item.topics, ...item.tags].map(normTopic))) {
      const list = byKey.get(k);
      if (list) list.push(i);
      else byKey.set(k, [i]);
    }
  });
  const base = sorted.map(() => 0);
  for (const k of new Set(pulseTopics.map(normTopic))) for (const i of byKey.get(k) ?? []) base[i]! += CAMPAIGN;
  const byBase = sorted.map((_, i) => i).sort((a, b) => base[b]! - base[a]! || a - b);
  return { items: sorted, byKey, base, byBase };
}

function strings(v: unknown): string[] {
  const raw = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [];
  return raw.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
}

/** The subjects a contact cares about: its interests, recent topics, purchases and pulse topics. */
export function contactSubjects(c: SynthesisContact): string[] {
  const p = personalProfile(c);
  const pulse = c.attributes?.pulse;
  const topics = pulse && typeof pulse === 'object' && !Array.isArray(pulse) ? strings((pulse as Record<string, unknown>).topics) : [];
  return [...new Set([...p.interests, ...p.recent_topics, ...p.purchases, ...topics].map(normTopic))];
}

const PERSONAL = 2;
const CAMPAIGN = 1;
/** Sent last time: a fresh match of equal weight goes first, but a strong match still beats an unrelated item. */
const REPEAT = -3;

/**
 * Up to `max` items for a contact, best first: each of the contact's subjects an item's topics
 * or tags name counts 2, each of the campaign's topics 1, and an item the contact was sent in
 * its previous pulse loses 3; ties go to the fresher item. Items that match nothing fill the
 * remaining places freshest first, those sent last time last of all.
 *
 * It runs once per contact of a 100,000-contact pulse, so it touches only the items the
 * contact's subjects name and walks the campaign's order for the rest, stopping as soon as
 * nothing further can make the cut.
 */
export function chooseItems(pool: KnowledgePool, subjects: readonly string[], previous: ReadonlySet<string>, max: number): PoolItem[] {
  if (max <= 0 || !pool.items.length) return [];
  const bonus = new Map<number, number>();
  for (const k of subjects) for (const i of pool.byKey.get(k) ?? []) bonus.set(i, (bonus.get(i) ?? 0) + PERSONAL);
  const repeat = (i: number) => previous.size > 0 && previous.has(pool.items[i]!.id);
  const score = (i: number) => pool.base[i]! + (bonus.get(i) ?? 0) + (repeat(i) ? REPEAT : 0);
  // The best `max` with a score above 0, best first: [index, score], ties to the lower index.
  const top: [number, number][] = [];
  const offer = (i: number, s: number) => {
    if (s <= 0) return;
    let at = top.length;
    while (at > 0 && (top[at - 1]![1] < s || (top[at - 1]![1] === s && top[at - 1]![0] > i))) at--;
    if (at >= max) return;
    top.splice(at, 0, [i, s]);
    if (top.length > max) top.pop();
  };
  for (const i of bonus.keys()) offer(i, score(i));
  for (const i of pool.byBase) {
    // No item further on can score above its base weight.
    if (pool.base[i]! <= 0 || (top.length === max && pool.base[i]! < top[max - 1]![1])) break;
    if (!bonus.has(i)) offer(i, score(i));
  }
  const picked = top.map(([i]) => i);
  // Then the freshest of the rest, those sent last time after all others.
  const taken = new Set(picked);
  for (const again of [false, true]) {
    for (let i = 0; i < pool.items.length && picked.length < max; i++) {
      if (taken.has(i) || repeat(i) !== again) continue;
      picked.push(i);
      taken.add(i);
    }
  }
  return picked.map((i) => pool.items[i]!);
}

/** A short teaser for the template outside the window: the first item's title, cut at a word. */
export function teaser(title: string | undefined, max = 60): string {
  const t = (title ?? '').replace(/\s+/g, ' ').trim();
  if (charLength(t) <= max) return t;
  const cut = [...t].slice(0, max - 1).join('');
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.-]+$/, '')}…`;
}
