import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Type, type Static } from 'typebox';
import { CONSENT_CHANNELS } from './channels.js';
import type { FieldProblem } from './errors.js';
import { DURATION_PATTERN, Duration, literals, type Operator } from './journey/definition.js';
import { durationMs } from './time.js';

/**
 * The segment definition: a saved filter over a tenant's contacts and their history. It speaks
 * the journey condition language (all / any / not, `attribute`, `field`, `tag`, `consent`,
 * `event` with the same operators), adds leaves that only make sense over a whole audience
 * (channel state, engagement counts and score, the last event's properties, other segments),
 * and is compiled to one SQL predicate (src/store/segments.ts) rather than evaluated per contact.
 *
 * Comparisons follow the journey rules (core/journey/conditions.ts): `op` defaults to eq with a
 * value and to exists without; a missing value fails every op but neq, not_in and not_exists.
 * Segments add date operators (within_last, within_next, older_than, taking a duration) and
 * relative instants ({"ago": "180d"}, {"from_now": "30d"}) as the value of gt/gte/lt/lte, so
 * "renewal within the next 30 days" and "more than 180 days ago" need no date arithmetic from
 * the caller. `matches` is left out: PostgreSQL's regular expressions are not JavaScript's, and
 * a pattern that one accepts and the other refuses would fail at evaluation, not at save.
 */

export const SEGMENT_OPERATORS = [
  'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'in', 'not_in', 'contains', 'starts_with', 'exists', 'not_exists',
  'within_last', 'within_next', 'older_than',
] as const satisfies readonly (Operator | 'within_last' | 'within_next' | 'older_than')[];
export type SegmentOperator = (typeof SEGMENT_OPERATORS)[number];
export const DATE_OPERATORS = ['within_last', 'within_next', 'older_than'] as const;
export const COUNT_OPERATORS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const;
export type CountOperator = (typeof COUNT_OPERATORS)[number];

export const SEGMENT_FIELDS = ['name', 'email', 'phone', 'whatsapp', 'time_zone', 'locale', 'external_id', 'created_at'] as const;
export type SegmentField = (typeof SEGMENT_FIELDS)[number];
export const VALUE_TYPES = ['string', 'number', 'date', 'boolean'] as const;
export type ValueType = (typeof VALUE_TYPES)[number];
export const ENGAGEMENT_COUNTERS = ['sends', 'deliveries', 'opens', 'clicks', 'replies'] as const;
export type EngagementCounter = (typeof ENGAGEMENT_COUNTERS)[number];
export const LAST_KINDS = ['inbound', 'outbound', 'interaction'] as const;
export type LastKind = (typeof LAST_KINDS)[number];
export const SUPPRESSION_SCOPES = [...CONSENT_CHANNELS, 'any'] as const;

/**
 * The engagement score of a contact, from 0 to 1: the mean, over the messages Rapport sent them
 * (kind "send", sent_at) in the window (90 days unless `within` says otherwise), of 1 for a send
 * that was replied to, 0.6 for one clicked, 0.3 for one opened or read, 0 otherwise (the best
 * outcome of each send counts once). A contact sent nothing in the window has no score.
 */
export const ENGAGEMENT_SCORE_WEIGHTS = { replied: 1, clicked: 0.6, opened: 0.3 } as const;
export const ENGAGEMENT_SCORE_WINDOW = '90d';
/** The WhatsApp customer-service window: open while the contact's last inbound message is younger than this. */
export const WHATSAPP_WINDOW_MS = 24 * 60 * 60 * 1000;

const strict = { additionalProperties: false };
const Relative = Type.Union(
  [
    Type.Object({ ago: Duration }, { ...strict, description: 'the instant this long before now' }),
    Type.Object({ from_now: Duration }, { ...strict, description: 'the instant this long after now' }),
  ],
  { description: 'a relative instant, for gt / gte / lt / lte on dates' },
);
export type RelativeInstant = Static<typeof Relative>;
const Scalar = Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean(), Type.Null()]);
const Value = Type.Union([Scalar, Type.Array(Scalar, { maxItems: 1000 }), Relative], {
  description: 'compared value: a list for in / not_in, a duration for within_last / within_next / older_than, a relative instant or a date for dates',
});
const Op = literals(SEGMENT_OPERATORS, { description: 'comparison; exists and not_exists take no value' });
const Compare = { op: Type.Optional(Op), value: Type.Optional(Value) };
const TypeHint = Type.Optional(
  literals(VALUE_TYPES, { description: 'compare as this type; by default the value decides (a number compares numerically, an ISO date as an instant)' }),
);
const CountOp = Type.Optional(literals(COUNT_OPERATORS, { description: 'default gte' }));
const Path = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^.]+(\\.[^.]+){0,15}$', description: 'dot path for nested values' });

export const SegmentFieldLeaf = Type.Object({ field: literals(SEGMENT_FIELDS), ...Compare }, strict);
export const SegmentAttributeLeaf = Type.Object({ attribute: Path, type: TypeHint, ...Compare }, strict);
export const SegmentTagLeaf = Type.Object({ tag: Type.String({ minLength: 1, maxLength: 100 }), present: Type.Optional(Type.Boolean()) }, strict);
export const SegmentConsentLeaf = Type.Object(
  {
    consent: literals(CONSENT_CHANNELS),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'a topic; the channel-wide "all" record counts too, the later one deciding' })),
    granted: Type.Optional(Type.Boolean({ description: 'default true; false selects contacts without current consent' })),
  },
  strict,
);
export const SuppressedLeaf = Type.Object(
  { suppressed: literals(SUPPRESSION_SCOPES, { description: "the contact's address for this channel (or any of them) is on the suppression list" }) },
  strict,
);
export const WhatsAppWindowLeaf = Type.Object({ whatsapp_window: literals(['open', 'closed']) }, strict);
export const LastLeaf = Type.Object(
  {
    last: literals(LAST_KINDS, { description: 'inbound: the last message from the contact; outbound: the last sent to them; interaction: the later of both' }),
    channel: Type.Optional(literals(CONSENT_CHANNELS)),
    ...Compare,
  },
  strict,
);
export const EngagementLeaf = Type.Object(
  {
    engagement: literals(ENGAGEMENT_COUNTERS, { description: 'sends, deliveries, opens, clicks: messages sent to the contact that reached it; replies: messages from the contact' }),
    within: Type.Optional(Duration),
    channel: Type.Optional(literals(CONSENT_CHANNELS)),
    op: CountOp,
    value: Type.Optional(Type.Integer({ minimum: 0, description: 'default 1' })),
  },
  strict,
);
export const ScoreLeaf = Type.Object(
  {
    score: literals(['engagement']),
    within: Type.Optional(Duration),
    op: Type.Optional(literals([...COUNT_OPERATORS, 'exists', 'not_exists'])),
    value: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  strict,
);
export const PropertyLeaf = Type.Object({ property: Path, type: TypeHint, ...Compare }, strict);
export type PropertyCondition = { all: PropertyCondition[] } | { any: PropertyCondition[] } | { not: PropertyCondition } | Static<typeof PropertyLeaf>;
export const SegmentEventLeaf = Type.Object(
  {
    event: Type.String({ minLength: 1, maxLength: 200 }),
    within: Type.Optional(Duration),
    where: Type.Optional(Type.Unsafe<PropertyCondition>({ description: 'conditions on the event properties: property leaves under all / any / not' })),
    min_count: Type.Optional(Type.Integer({ minimum: 0, description: 'at least this many (default 1); 0 with max_count 0 means "did not"' })),
    max_count: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);
export const LastEventLeaf = Type.Object({ last_event: Type.String({ minLength: 1, maxLength: 200 }), property: Path, type: TypeHint, ...Compare }, strict);
export const InSegmentLeaf = Type.Object({ in_segment: Type.String({ minLength: 1, maxLength: 200, description: 'another segment of the tenant, by id or name (stored as its id)' }) }, strict);

export type SegmentCondition =
  | { all: SegmentCondition[] }
  | { any: SegmentCondition[] }
  | { not: SegmentCondition }
  | Static<typeof SegmentFieldLeaf>
  | Static<typeof SegmentAttributeLeaf>
  | Static<typeof SegmentTagLeaf>
  | Static<typeof SegmentConsentLeaf>
  | Static<typeof SuppressedLeaf>
  | Static<typeof WhatsAppWindowLeaf>
  | Static<typeof LastLeaf>
  | Static<typeof EngagementLeaf>
  | Static<typeof ScoreLeaf>
  | (Omit<Static<typeof SegmentEventLeaf>, 'where'> & { where?: PropertyCondition })
  | Static<typeof LastEventLeaf>
  | Static<typeof InSegmentLeaf>;

const LEAF_SCHEMAS = {
  field: SegmentFieldLeaf,
  attribute: SegmentAttributeLeaf,
  tag: SegmentTagLeaf,
  consent: SegmentConsentLeaf,
  suppressed: SuppressedLeaf,
  whatsapp_window: WhatsAppWindowLeaf,
  last: LastLeaf,
  engagement: EngagementLeaf,
  score: ScoreLeaf,
  event: SegmentEventLeaf,
  last_event: LastEventLeaf,
  in_segment: InSegmentLeaf,
} as const;
export type SegmentLeafKey = keyof typeof LEAF_SCHEMAS;
export const SEGMENT_LEAF_KEYS = Object.keys(LEAF_SCHEMAS) as SegmentLeafKey[];

// ---------------------------------------------------------------------------------------------
// Validation

export const MAX_SEGMENT_DEPTH = 16;
export const MAX_SEGMENT_LEAVES = 200;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateLeaf = Object.fromEntries(Object.entries(LEAF_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)])) as Record<SegmentLeafKey, ValidateFunction>;
const validatePropertyLeaf = ajv.compile(PropertyLeaf);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const quote = (v: unknown) => JSON.stringify(v);
const at = (base: string, key: string | number) => (typeof key === 'number' ? `${base}[${key}]` : base ? `${base}.${key}` : key);

function ajvProblems(errors: readonly ErrorObject[] | null | undefined, base: string): FieldProblem[] {
  const out = new Map<string, FieldProblem>();
  // A failed union reports every branch; its own error says what was expected, so the branches go.
  const unions = (errors ?? []).filter((e) => e.keyword === 'anyOf').map((e) => `${e.schemaPath}/`);
  for (const e of errors ?? []) {
    if (unions.some((u) => e.schemaPath.startsWith(u))) continue;
    let field = e.instancePath
      .split('/')
      .slice(1)
      .reduce((p, s) => at(p, /^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')), base);
    let message = e.message ?? 'is not valid';
    if (e.keyword === 'required') {
      field = at(field, String(e.params.missingProperty));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      field = at(field, String(e.params.additionalProperty));
      const known = isObject(e.parentSchema?.properties) ? Object.keys(e.parentSchema.properties) : [];
      message = `is not a known field${known.length ? `; expected ${known.join(', ')}` : ''}`;
    } else if (e.keyword === 'anyOf') {
      message = 'does not match any allowed shape';
    } else if (e.keyword === 'pattern' && e.schema === DURATION_PATTERN) {
      message = 'must be a duration such as "30s", "15m", "2h", "3d", "1w" or "1d12h"';
    }
    out.set(`${field}\u0000${message}`, { field, message });
  }
  return [...out.values()];
}

const NUMERIC = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,3})?$/;
/**
 * ISO dates and date-times, the fields in range; the SQL function segment_instant (migration
 * 0005) accepts exactly these, so a value is a date to both sides or to neither.
 */
const ISO = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?:[T ]((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?)(Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)?$/;

export const isNumericString = (v: string) => NUMERIC.test(v);

/** An ISO date or date-time as a Date; without an offset it is UTC. Null when it is not one. */
export function isoInstant(v: string): Date | null {
  const m = ISO.exec(v);
  if (!m || m[1] === '0000') return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return null;
  const zone = m[5] === undefined || m[5] === 'Z' ? 'Z' : m[5].includes(':') ? m[5] : `${m[5].slice(0, 3)}:${m[5].slice(3)}`;
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00:00'}${zone}`);
  return Number.isNaN(t) ? null : new Date(t);
}

export const isRelative = (v: unknown): v is RelativeInstant => isObject(v) && (typeof v.ago === 'string' || typeof v.from_now === 'string');

/** The instant a relative value stands for at `now`. */
export function relativeInstant(v: RelativeInstant, now: Date): Date {
  return 'ago' in v ? new Date(now.getTime() - durationMs(v.ago)) : new Date(now.getTime() + durationMs(v.from_now));
}

/** What a comparison compares as: an explicit type, else what the operator and value say. */
export function comparisonType(op: SegmentOperator, value: unknown, type: ValueType | undefined): ValueType | 'any' {
  if (type) return type;
  if ((DATE_OPERATORS as readonly string[]).includes(op) || isRelative(value)) return 'date';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'any';
}

/** The operator a comparison leaf uses: eq with a value, exists without, as in journeys. */
export const effectiveOp = (op: SegmentOperator | undefined, value: unknown): SegmentOperator => op ?? (value === undefined ? 'exists' : 'eq');

function comparisonProblems(cond: Record<string, unknown>, base: string, dateOnly: boolean, push: (f: string, m: string) => void): void {
  const op = effectiveOp(cond.op as SegmentOperator | undefined, cond.value);
  const value = cond.value;
  const type = (cond.type as ValueType | undefined) ?? (dateOnly ? 'date' : undefined);
  const field = at(base, 'value');
  if (cond.op === undefined && Array.isArray(value)) return push(field, 'is a list; use op "in" to match any of several values');
  if (op === 'exists' || op === 'not_exists') {
    if (value !== undefined) push(field, `is not used with op ${quote(op)}`);
    return;
  }
  if (value === undefined) return push(field, `is required with op ${quote(op)}`);
  if ((DATE_OPERATORS as readonly string[]).includes(op)) {
    if (typeof value !== 'string' || !new RegExp(DURATION_PATTERN).test(value)) push(field, `must be a duration such as "30d" with op ${quote(op)}`);
    if (type && type !== 'date') push(at(base, 'type'), `is ${quote(type)}, but op ${quote(op)} compares dates`);
    return;
  }
  if (op === 'in' || op === 'not_in') {
    if (!Array.isArray(value)) return push(field, `must be a list with op ${quote(op)}`);
    if (type === 'date') value.forEach((v, i) => typeof v === 'string' && isoInstant(v) === null && push(at(field, i), 'is not an ISO date or date-time'));
    return;
  }
  if (Array.isArray(value)) return push(field, `must be a single value with op ${quote(op)} (use "in" for a list)`);
  if (isRelative(value)) {
    if (!['eq', 'neq', 'gt', 'gte', 'lt', 'lte'].includes(op)) push(field, `a relative instant is only compared with eq, neq, gt, gte, lt or lte, not ${quote(op)}`);
    if (type && type !== 'date') push(at(base, 'type'), `is ${quote(type)}, but the value is a relative instant`);
    return;
  }
  if (value === null && op !== 'eq' && op !== 'neq') return push(field, `null is only compared with eq or neq (or use exists / not_exists)`);
  if (op === 'contains' || op === 'starts_with') {
    if (type === 'date') return push(at(base, 'op'), `${quote(op)} does not apply to dates; use within_last, within_next, older_than, gt or lt`);
    if (typeof value !== 'string' && typeof value !== 'number') push(field, `must be a string or a number with op ${quote(op)}`);
    return;
  }
  if (op === 'gt' || op === 'gte' || op === 'lt' || op === 'lte') {
    if (typeof value !== 'number' && typeof value !== 'string') return push(field, `must be a number, a date or a string with op ${quote(op)}`);
  }
  if (type === 'date' && value !== null && (typeof value !== 'string' || isoInstant(value) === null)) push(field, 'must be an ISO date or date-time (or a relative instant such as {"ago": "30d"}) to compare as a date');
  if (type === 'number' && value !== null && !(typeof value === 'number' || (typeof value === 'string' && isNumericString(value)))) push(field, 'must be a number to compare as a number');
  if (type === 'boolean' && value !== null) {
    if (typeof value !== 'boolean') push(field, 'must be true or false to compare as a boolean');
    if (op !== 'eq' && op !== 'neq') push(at(base, 'op'), 'booleans are compared with eq, neq, in, not_in, exists or not_exists');
  }
}

function walkProperty(cond: unknown, base: string, depth: number, problems: FieldProblem[]): void {
  const push = (field: string, message: string): void => void problems.push({ field, message });
  if (!isObject(cond)) return push(base, 'must be a condition on the event properties, e.g. {"property": "sku", "value": "product_a"}');
  if (depth > MAX_SEGMENT_DEPTH) return push(base, `nests deeper than ${MAX_SEGMENT_DEPTH} levels`);
  for (const key of ['all', 'any'] as const) {
    if (cond[key] === undefined) continue;
    const list = cond[key];
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) return push(at(base, key), 'must be a list of 1 to 100 conditions');
    return list.forEach((c, i) => walkProperty(c, at(at(base, key), i), depth + 1, problems));
  }
  if (cond.not !== undefined) return walkProperty(cond.not, at(base, 'not'), depth + 1, problems);
  if (!validatePropertyLeaf(cond)) return void problems.push(...ajvProblems(validatePropertyLeaf.errors, base));
  comparisonProblems(cond, base, false, push);
}

/**
 * Every problem with a segment definition, each naming its field under `base`
 * ("definition.all[2].value"). An empty list means the definition compiles.
 */
export function segmentProblems(input: unknown, base = 'definition'): FieldProblem[] {
  const problems: FieldProblem[] = [];
  let leaves = 0;
  const push = (field: string, message: string): void => void problems.push({ field, message });
  const walk = (cond: unknown, path: string, depth: number): void => {
    if (!isObject(cond)) return push(path, 'must be a condition (an object such as {"attribute": "plan", "value": "pro"})');
    if (depth > MAX_SEGMENT_DEPTH) return push(path, `nests deeper than ${MAX_SEGMENT_DEPTH} levels`);
    const keys = ['all', 'any', 'not', ...SEGMENT_LEAF_KEYS].filter((k) => cond[k] !== undefined);
    const key = keys[0];
    if (key === undefined) {
      const own = Object.keys(cond);
      return push(path, `unknown condition${own.length ? ` (${own.map(quote).join(', ')})` : ''}; expected one of all, any, not, ${SEGMENT_LEAF_KEYS.join(', ')}`);
    }
    if (key === 'all' || key === 'any' || key === 'not') {
      for (const k of Object.keys(cond)) if (k !== key) push(at(path, k), `is not allowed beside ${key}; combine conditions inside it`);
      if (key === 'not') return walk(cond.not, at(path, 'not'), depth + 1);
      const list = cond[key];
      if (!Array.isArray(list)) return push(at(path, key), 'must be a list of conditions');
      if (list.length === 0) return push(at(path, key), 'must have at least one condition');
      if (list.length > 100) return push(at(path, key), 'must have at most 100 conditions');
      return list.forEach((c, i) => walk(c, at(at(path, key), i), depth + 1));
    }
    if (++leaves === MAX_SEGMENT_LEAVES + 1) push(base, `has more than ${MAX_SEGMENT_LEAVES} conditions`);
    const validate = validateLeaf[key as SegmentLeafKey];
    if (!validate(cond)) return void problems.push(...ajvProblems(validate.errors, path));
    switch (key) {
      case 'field':
        return comparisonProblems(cond, path, cond.field === 'created_at', push);
      case 'attribute':
      case 'last_event':
        return comparisonProblems(cond, path, false, push);
      case 'last': {
        const op = effectiveOp(cond.op as SegmentOperator | undefined, cond.value);
        if (['in', 'not_in', 'contains', 'starts_with'].includes(op)) return push(at(path, 'op'), `${quote(op)} does not apply to a time; use within_last, older_than, gt, lt, exists...`);
        return comparisonProblems(cond, path, true, push);
      }
      case 'event': {
        const min = typeof cond.min_count === 'number' ? cond.min_count : 1;
        if (typeof cond.max_count === 'number' && cond.max_count < min) {
          push(at(path, 'max_count'), `is less than min_count (${min}${cond.min_count === undefined ? ', the default' : ''}), so this never holds; for "did not", set min_count and max_count to 0`);
        }
        if (cond.where !== undefined) walkProperty(cond.where, at(path, 'where'), depth + 1, problems);
        return;
      }
      case 'score': {
        const op = cond.op ?? (cond.value === undefined ? 'exists' : 'gte');
        if ((op === 'exists' || op === 'not_exists') && cond.value !== undefined) push(at(path, 'value'), `is not used with op ${quote(op)}`);
        if (op !== 'exists' && op !== 'not_exists' && cond.value === undefined) push(at(path, 'value'), `is required with op ${quote(op)}`);
        return;
      }
    }
  };
  walk(input, base, 0);
  return problems;
}

/** The segments a definition names with in_segment, with the field of each, in order of appearance. */
export function segmentRefs(cond: SegmentCondition, base = 'definition'): { field: string; ref: string }[] {
  const out: { field: string; ref: string }[] = [];
  const walk = (c: SegmentCondition, path: string): void => {
    if ('all' in c) c.all.forEach((x, i) => walk(x, at(at(path, 'all'), i)));
    else if ('any' in c) c.any.forEach((x, i) => walk(x, at(at(path, 'any'), i)));
    else if ('not' in c) walk(c.not, at(path, 'not'));
    else if ('in_segment' in c) out.push({ field: at(path, 'in_segment'), ref: c.in_segment });
  };
  walk(cond, base);
  return out;
}

/** A copy of the definition with every in_segment rewritten by `to` (names to ids when saving). */
export function mapSegmentRefs(cond: SegmentCondition, to: (ref: string) => string): SegmentCondition {
  if ('all' in cond) return { all: cond.all.map((c) => mapSegmentRefs(c, to)) };
  if ('any' in cond) return { any: cond.any.map((c) => mapSegmentRefs(c, to)) };
  if ('not' in cond) return { not: mapSegmentRefs(cond.not, to) };
  if ('in_segment' in cond) return { in_segment: to(cond.in_segment) };
  return cond;
}
