import { ALL_TOPICS, effectiveConsent, type ConsentEntry } from '../consent.js';
import { durationMs } from '../time.js';
import type { Condition, EventMatch, Operator } from './definition.js';

/**
 * Condition evaluation: pure and allocation-light, since it runs per enrollment per branch and
 * per awaited event. Facts arrive loaded; nothing here reads a clock or a store.
 */

export interface MessageTimes {
  sent_at: Date | null;
  delivered_at: Date | null;
  opened_at: Date | null;
  clicked_at: Date | null;
  replied_at: Date | null;
  failed_at: Date | null;
}

export interface ReplyFacts {
  text: string | null;
  payload: string | null;
  /** The named intent keyword handling found in the payload or the text (moving_now). */
  intent?: string | null;
  at: Date;
}

/** What conditions and templates may read of a contact. */
export interface ContactFacts {
  id: string;
  name: string | null;
  email: string | null;
  phone: string | null;
  whatsapp: string | null;
  time_zone: string | null;
  locale: string | null;
  external_id: string | null;
  attributes: Record<string, unknown>;
  tags: readonly string[];
}

export interface ConditionFacts {
  contact: Omit<ContactFacts, 'id'>;
  consent: readonly ConsentEntry[];
  /** The event being matched: entry, goal, exit or awaited. */
  event?: { name: string; properties: Record<string, unknown> };
  vars: Record<string, unknown>;
  now: Date;
  /** How many of the contact's events named `name` occurred after now - sinceMs (null = ever). Absent: none. */
  eventCount?: (name: string, sinceMs: number | null) => number;
  /** Replies by send node id; '*' is the latest in the enrollment. */
  replies?: Readonly<Record<string, ReplyFacts>>;
  /** The enrollment's message per send node. */
  messages?: Readonly<Record<string, MessageTimes>>;
}

/**
 * Whether the condition holds.
 *
 * Comparisons: `op` defaults to eq with a value and to exists without. A missing value (absent
 * or null) fails every op except neq, not_in and not_exists. eq/neq/in compare numerically when
 * both sides are numbers or numeric strings ("10" = 10 = "10.0"; "007" stays a string, as
 * identifiers and postcodes do), booleans also against "true"/"false", other strings exactly.
 * gt/gte/lt/lte compare numbers, then ISO dates as instants (a date-time without an offset is
 * UTC), then strings in code-unit order. contains is a case-insensitive substring on strings and
 * membership on lists; starts_with is a case-insensitive prefix; matches is a case-insensitive
 * RegExp. Reply text is trimmed and compared case-insensitively.
 *
 * `engaged` with `within` holds when the status was reached within that time of the send. It
 * is decided on what is known now: "not opened within 2d" is only meaningful once 2d have
 * passed, so the journey author puts a wait of at least that long before the branch.
 */
export function evaluate(cond: Condition, facts: ConditionFacts): boolean {
  if ('all' in cond) {
    for (const c of cond.all) if (!evaluate(c, facts)) return false;
    return true;
  }
  if ('any' in cond) {
    for (const c of cond.any) if (evaluate(c, facts)) return true;
    return false;
  }
  if ('not' in cond) return !evaluate(cond.not, facts);
  if ('attribute' in cond) return compare(lookup(facts.contact.attributes, cond.attribute), cond.op, cond.value);
  if ('field' in cond) return compare(facts.contact[cond.field], cond.op, cond.value);
  if ('property' in cond) return compare(facts.event ? lookup(facts.event.properties, cond.property) : undefined, cond.op, cond.value);
  if ('variable' in cond) return compare(lookup(facts.vars, cond.variable), cond.op, cond.value);
  if ('tag' in cond) return facts.contact.tags.includes(cond.tag) === (cond.present ?? true);
  if ('consent' in cond) return effectiveConsent(facts.consent, cond.consent, cond.topic ?? ALL_TOPICS).granted === (cond.granted ?? true);
  if ('event' in cond) {
    const count = facts.eventCount ? facts.eventCount(cond.event, cond.within ? durationMs(cond.within) : null) : 0;
    return count >= (cond.min_count ?? 1) && (cond.max_count === undefined || count <= cond.max_count);
  }
  if ('reply_to' in cond) {
    const reply = facts.replies?.[cond.reply_to === 'any' ? '*' : cond.reply_to];
    if (!reply) return false;
    if (cond.payload !== undefined && reply.payload !== cond.payload) return false;
    if (cond.intent !== undefined && (reply.intent ?? null) !== cond.intent) return false;
    if (cond.text) return compare(reply.text === null ? null : reply.text.trim().toLowerCase(), cond.text.op, foldValue(cond.text.value));
    return true;
  }
  if ('engaged' in cond) {
    const m = facts.messages?.[cond.engaged.node];
    if (!m) return false;
    const at: Date | null = m[`${cond.engaged.status}_at`];
    if (!at) return false;
    if (cond.engaged.within === undefined) return true;
    return m.sent_at !== null && at.getTime() - m.sent_at.getTime() <= durationMs(cond.engaged.within);
  }
  return false;
}

/** Whether the event is the one `m` waits for: same name, and its `where` holds with this event as `property` source. */
export function matchesEvent(m: EventMatch, event: { name: string; properties: Record<string, unknown> }, facts: Omit<ConditionFacts, 'event'>): boolean {
  if (m.event !== event.name) return false;
  return m.where === undefined || evaluate(m.where, { ...facts, event });
}

/** What evaluating a condition needs loaded: event history (name to the widest window, Infinity for "ever"), message statuses, replies. */
export interface ConditionNeeds {
  eventHistory: Map<string, number>;
  engagement: boolean;
  replies: boolean;
}

/** Adds what `cond` needs to `into` (a fresh set when omitted) and returns it. */
export function collectNeeds(cond: Condition, into: ConditionNeeds = { eventHistory: new Map(), engagement: false, replies: false }): ConditionNeeds {
  if ('all' in cond) for (const c of cond.all) collectNeeds(c, into);
  else if ('any' in cond) for (const c of cond.any) collectNeeds(c, into);
  else if ('not' in cond) collectNeeds(cond.not, into);
  else if ('event' in cond) {
    const window = cond.within ? durationMs(cond.within) : Infinity;
    into.eventHistory.set(cond.event, Math.max(window, into.eventHistory.get(cond.event) ?? 0));
  } else if ('reply_to' in cond) into.replies = true;
  else if ('engaged' in cond) into.engagement = true;
  return into;
}

// ---------------------------------------------------------------------------------------------
// Comparison

type Value = string | number | boolean | null | (string | number | boolean | null)[] | undefined;

function lookup(root: Record<string, unknown>, path: string): unknown {
  if (!path.includes('.')) return Object.hasOwn(root, path) ? root[path] : undefined;
  let cur: unknown = root;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Reply text is compared without case or surrounding space; the reply side is folded by the caller. */
function foldValue(value: Value): Value {
  if (typeof value === 'string') return value.trim().toLowerCase();
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v));
  return value;
}

function compare(actual: unknown, op: Operator | undefined, value: Value): boolean {
  const o = op ?? (value === undefined ? 'exists' : 'eq');
  const missing = actual === undefined || actual === null;
  switch (o) {
    case 'exists':
      return !missing;
    case 'not_exists':
      return missing;
    case 'eq':
      // eq null asks "is it unset", the one reading of null that is not always false.
      return value === null ? missing : !missing && equals(actual, value);
    case 'neq':
      return value === null ? !missing : missing || !equals(actual, value);
    case 'in':
      return !missing && Array.isArray(value) && isIn(actual, value);
    case 'not_in':
      return missing || !Array.isArray(value) || !isIn(actual, value);
    case 'contains':
      if (missing || value === undefined || value === null) return false;
      if (Array.isArray(actual)) return actual.some((a) => equals(a, value));
      return typeof actual === 'string' && typeof value !== 'object' && actual.toLowerCase().includes(String(value).toLowerCase());
    case 'starts_with':
      return typeof actual === 'string' && (typeof value === 'string' || typeof value === 'number') && actual.toLowerCase().startsWith(String(value).toLowerCase());
    case 'matches': {
      if (typeof value !== 'string' || (typeof actual !== 'string' && typeof actual !== 'number')) return false;
      const re = regex(value);
      return re !== null && re.test(String(actual));
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (missing || (typeof value !== 'string' && typeof value !== 'number')) return false;
      const c = order(actual, value);
      if (c === null) return false;
      return o === 'gt' ? c > 0 : o === 'gte' ? c >= 0 : o === 'lt' ? c < 0 : c <= 0;
    }
  }
}

function isIn(actual: unknown, list: readonly unknown[]): boolean {
  // A list attribute is "in" when any of its items is.
  if (Array.isArray(actual)) return actual.some((a) => list.some((v) => equals(a, v)));
  return list.some((v) => equals(actual, v));
}

const NUMERIC = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;

function asNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && NUMERIC.test(v)) return Number(v);
  return null;
}

function asBoolean(v: unknown): boolean | null {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return null;
}

function equals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'boolean' || typeof b === 'boolean') {
    const x = asBoolean(a);
    return x !== null && x === asBoolean(b);
  }
  const x = asNumber(a);
  if (x === null) return false;
  const y = asNumber(b);
  return y !== null && x === y;
}

const ISO_DATE = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO date or date-time as epoch ms; no offset means UTC, so the answer never depends on the server's zone. */
function asInstant(v: string): number | null {
  const m = ISO_DATE.exec(v);
  if (!m) return null;
  const t = Date.parse(m[2] === undefined ? `${m[1]}T00:00:00Z` : `${m[1]}T${m[2]}${m[3] ?? 'Z'}`);
  return Number.isNaN(t) ? null : t;
}

/** Sign of actual - value, or null when they cannot be ordered. */
function order(actual: unknown, value: string | number): number | null {
  const x = asNumber(actual);
  const y = asNumber(value);
  if (x !== null && y !== null) return x === y ? 0 : x < y ? -1 : 1;
  if (typeof actual !== 'string' || typeof value !== 'string') return null;
  const s = asInstant(actual);
  const t = s === null ? null : asInstant(value);
  if (s !== null && t !== null) return s === t ? 0 : s < t ? -1 : 1;
  return actual === value ? 0 : actual < value ? -1 : 1;
}

// Sources come from journey definitions, so the set is small; the bound only guards against abuse.
const REGEX_CACHE_SIZE = 1000;
const regexCache = new Map<string, RegExp | null>();

function regex(source: string): RegExp | null {
  let re = regexCache.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(source, 'i');
    } catch {
      re = null;
    }
    if (regexCache.size >= REGEX_CACHE_SIZE) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}
