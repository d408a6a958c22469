import { InputError } from '../core/errors.js';
import {
  comparisonType,
  effectiveOp,
  ENGAGEMENT_SCORE_WEIGHTS,
  ENGAGEMENT_SCORE_WINDOW,
  isNumericString,
  isoInstant,
  isRelative,
  relativeInstant,
  WHATSAPP_WINDOW_MS,
  type CountOperator,
  type EngagementCounter,
  type PropertyCondition,
  type SegmentCondition,
  type SegmentOperator,
  type ValueType,
} from '../core/segment.js';
import { durationMs } from '../core/time.js';

/**
 * A segment definition compiled to one boolean SQL expression over `contacts c`. $1 is the
 * tenant; every value from the definition (names, paths, values, instants) is a bind parameter,
 * and the text of the SQL comes only from this file, so nothing a caller writes is ever read as
 * SQL.
 *
 * Every expression is two-valued (true or false, never null), so `not` is plain negation.
 * History leaves are EXISTS / NOT EXISTS over the other tables, correlated on contact_id, which
 * the planner runs as hashed semi- or anti-joins over the tenant's rows. Per-contact values
 * (latest consent, last event, engagement score, counts other than "at least one") are derived
 * tables grouped by contact_id. Compiled `ranged`, every subquery is also bounded to one window
 * of contacts (see CompileContext), which is how a stream stays linear in the audience.
 */

export interface CompiledSegment {
  /** Boolean SQL over the alias c (contacts). */
  where: string;
  /** $1 is the tenant id; with `ranged`, $2 is the window's contact ids; the rest belong to `where`. */
  params: unknown[];
  /** With `ranged`, where in params the first and last contact id of the window go, when a subquery reads them. */
  range?: { first: number; last: number };
}

export interface CompileContext {
  now: Date;
  /**
   * Compile for windows of contacts, so that judging one window of a stream reads only that
   * window's history rather than the tenant's. The caller binds, per window, $2 to the list of
   * its contact ids (for the contacts themselves) and `range` to the first and last of them
   * (for every subquery: one contiguous range of the per-contact indexes). The contacts are
   * picked by the list because the planner estimates its size right, where it takes a narrow
   * range of UUIDs for about one row; planned for one contact, a window of 5,000 re-aggregated
   * the window's messages once per contact (12 s for one window at 1,000,000 contacts). A list
   * in the subqueries too was estimated right but read by a sequential scan of the tenant's
   * events for every window (60 ms each, 12 s for the stream).
   */
  ranged?: boolean;
  /** A stored segment's definition by id, for in_segment (loaded beforehand, with everything it names). */
  resolve: (id: string) => SegmentCondition | undefined;
}

type Json = string;

class Params {
  readonly values: unknown[];
  range: { first: number; last: number } | undefined;
  private windowScope: string | undefined;
  constructor(
    tenantId: string,
    private readonly ranged: boolean,
  ) {
    this.values = ranged ? [tenantId, []] : [tenantId];
  }
  /** The filter every subquery over another table starts with (alias x). */
  get scope(): string {
    if (!this.ranged) return 'x.tenant_id = $1::uuid';
    if (this.windowScope === undefined) {
      // Bound only when a subquery needs them: a parameter no statement uses has no type.
      const first = this.add(null, 'uuid');
      const last = this.add(null, 'uuid');
      this.range = { first: this.values.length - 2, last: this.values.length - 1 };
      this.windowScope = `x.tenant_id = $1::uuid and x.contact_id >= ${first} and x.contact_id <= ${last}`;
    }
    return this.windowScope;
  }
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

const NUMERIC_SQL = "'^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]{1,3})?$'";
const MISSING_PASSES: readonly SegmentOperator[] = ['neq', 'not_in', 'not_exists'];
const SQL_OPS: Record<'eq' | 'gt' | 'gte' | 'lt' | 'lte', string> = { eq: '=', gt: '>', gte: '>=', lt: '<', lte: '<=' };

const typeOf = (j: Json) => `jsonb_typeof(${j})`;
const missing = (j: Json) => `(${j} is null or ${typeOf(j)} = 'null')`;
const txt = (j: Json) => `(case when ${typeOf(j)} = 'string' then ${j} #>> '{}' end)`;
/** Any scalar as text: what an explicit "string" type compares. */
const str = (j: Json) => `(case when ${typeOf(j)} in ('string', 'number', 'boolean') then ${j} #>> '{}' end)`;
const num = (j: Json) =>
  `(case ${typeOf(j)} when 'number' then (${j})::numeric when 'string' then case when (${j} #>> '{}') ~ ${NUMERIC_SQL} then (${j} #>> '{}')::numeric end end)`;
const bool = (j: Json) => `(case ${typeOf(j)} when 'boolean' then (${j})::boolean when 'string' then case ${j} #>> '{}' when 'true' then true when 'false' then false end end)`;
const instant = (j: Json) => `segment_instant(${txt(j)})`;
const yes = (sql: string) => `coalesce(${sql}, false)`;

const isBoolish = (v: unknown) => typeof v === 'boolean' || v === 'true' || v === 'false';
const isNumberish = (v: unknown) => typeof v === 'number' || (typeof v === 'string' && isNumericString(v));

/** The instant a date value stands for: an ISO string, a relative instant, or null. */
function asInstant(value: unknown, now: Date): Date | null {
  if (isRelative(value)) return relativeInstant(value, now);
  return typeof value === 'string' ? isoInstant(value) : null;
}

function instantOf(value: unknown, now: Date, what: string): Date {
  const d = asInstant(value, now);
  if (!d) throw InputError.field(what, `${JSON.stringify(value)} is not a date`);
  return d;
}

/** [from, to] of a date operator taking a duration. */
function window(op: 'within_last' | 'within_next' | 'older_than', duration: string, now: Date): [Date | null, Date | null] {
  const ms = durationMs(duration);
  if (op === 'within_last') return [new Date(now.getTime() - ms), now];
  if (op === 'within_next') return [now, new Date(now.getTime() + ms)];
  return [null, new Date(now.getTime() - ms - 1)];
}

// ---------------------------------------------------------------------------------------------
// Comparisons on a JSON value (attributes, fields, event properties)

function eqJson(j: Json, value: unknown, type: ValueType | 'any', p: Params, now: Date): string {
  if (value === null) return missing(j);
  switch (type) {
    case 'number':
      return `${num(j)} = ${p.add(Number(value), 'numeric')}`;
    case 'date':
      return `${instant(j)} = ${p.add(instantOf(value, now, 'value'), 'timestamptz')}`;
    case 'boolean':
      return `${bool(j)} = ${p.add(value === true || value === 'true', 'boolean')}`;
    case 'string':
      return `${str(j)} = ${p.add(String(value), 'text')}`;
  }
  if (isBoolish(value)) return `${bool(j)} = ${p.add(value === true || value === 'true', 'boolean')}`;
  if (isNumberish(value)) return `${num(j)} = ${p.add(Number(value), 'numeric')}`;
  return `${txt(j)} = ${p.add(String(value), 'text')}`;
}

function inScalar(j: Json, list: readonly unknown[], type: ValueType | 'any', p: Params, now: Date): string {
  const items = list.filter((v) => v !== null);
  const parts: string[] = [];
  if (type === 'date') parts.push(`${instant(j)} = any(${p.add(items.map((v) => instantOf(v, now, 'value')), 'timestamptz[]')})`);
  else if (type === 'string') parts.push(`${str(j)} = any(${p.add(items.map(String), 'text[]')})`);
  else {
    const bools = type === 'boolean' ? items : type === 'any' ? items.filter(isBoolish) : [];
    const nums = type === 'number' ? items : type === 'any' ? items.filter((v) => !isBoolish(v) && isNumberish(v)) : [];
    const strs = type === 'any' ? items.filter((v) => !isBoolish(v) && !isNumberish(v)) : [];
    if (bools.length) parts.push(`${bool(j)} = any(${p.add(bools.map((v) => v === true || v === 'true'), 'boolean[]')})`);
    if (nums.length) parts.push(`${num(j)} = any(${p.add(nums.map(Number), 'numeric[]')})`);
    if (strs.length) parts.push(`${txt(j)} = any(${p.add(strs.map(String), 'text[]')})`);
  }
  return parts.length ? parts.map(yes).join(' or ') : 'false';
}

function order(j: Json, op: 'gt' | 'gte' | 'lt' | 'lte', value: unknown, type: ValueType | 'any', p: Params, now: Date): string {
  const o = SQL_OPS[op];
  if (type === 'number') return `${num(j)} ${o} ${p.add(Number(value), 'numeric')}`;
  if (type === 'date') return `${instant(j)} ${o} ${p.add(instantOf(value, now, 'value'), 'timestamptz')}`;
  if (type === 'string') return `${str(j)} collate "C" ${o} ${p.add(String(value), 'text')}`;
  if (typeof value === 'number') return `${num(j)} ${o} ${p.add(value, 'numeric')}`;
  const s = String(value);
  const asText = `${txt(j)} collate "C" ${o} ${p.add(s, 'text')}`;
  // As in journey conditions: numbers compare as numbers, then ISO dates as instants, then text.
  if (isNumericString(s)) return `case when ${num(j)} is not null then ${num(j)} ${o} ${p.add(Number(s), 'numeric')} else ${asText} end`;
  const d = isoInstant(s);
  if (d) return `case when ${instant(j)} is not null then ${instant(j)} ${o} ${p.add(d, 'timestamptz')} else ${asText} end`;
  return asText;
}

/** A two-valued comparison of the JSON value j (null when absent), with the journey semantics. */
function compareJson(j: Json, opIn: SegmentOperator | undefined, value: unknown, typeHint: ValueType | undefined, p: Params, now: Date): string {
  const op = effectiveOp(opIn, value);
  const type = comparisonType(op, value, typeHint);
  switch (op) {
    case 'exists':
      return `not ${missing(j)}`;
    case 'not_exists':
      return missing(j);
    case 'eq':
      return yes(eqJson(j, value, type, p, now));
    case 'neq':
      return `not ${yes(eqJson(j, value, type, p, now))}`;
    case 'in':
    case 'not_in': {
      const list = value as unknown[];
      const any = `(${inScalar(j, list, type, p, now)} or ${yes(`${typeOf(j)} = 'array' and exists (select 1 from jsonb_array_elements(${j}) as el(v) where ${inScalar('el.v', list, type, p, now)})`)})`;
      return op === 'in' ? any : `not ${any}`;
    }
    case 'contains': {
      const inText = `${typeOf(j)} = 'string' and strpos(lower(${j} #>> '{}'), lower(${p.add(String(value), 'text')})) > 0`;
      const inList = `${typeOf(j)} = 'array' and exists (select 1 from jsonb_array_elements(${j}) as el(v) where ${yes(eqJson('el.v', value, type === 'date' ? 'any' : type, p, now))})`;
      return `(${yes(inText)} or ${yes(inList)})`;
    }
    case 'starts_with':
      return yes(`${typeOf(j)} = 'string' and starts_with(lower(${j} #>> '{}'), lower(${p.add(String(value), 'text')}))`);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return yes(order(j, op, value, type, p, now));
    case 'within_last':
    case 'within_next':
    case 'older_than': {
      const [from, to] = window(op, value as string, now);
      // A range test reads the value once; "between" would parse the date twice.
      if (!from) return yes(`${instant(j)} <= ${p.add(to, 'timestamptz')}`);
      return yes(`tstzrange(${p.add(from, 'timestamptz')}, ${p.add(to, 'timestamptz')}, '[]') @> ${instant(j)}`);
    }
  }
}

/** A two-valued comparison of the timestamptz expression t (contacts.created_at). */
function compareTime(t: string, opIn: SegmentOperator | undefined, value: unknown, p: Params, now: Date): string {
  const op = effectiveOp(opIn, value);
  switch (op) {
    case 'exists':
      return `${t} is not null`;
    case 'not_exists':
      return `${t} is null`;
    case 'in':
    case 'not_in': {
      const any = yes(`${t} = any(${p.add((value as unknown[]).filter((v) => v !== null).map((v) => instantOf(v, now, 'value')), 'timestamptz[]')})`);
      return op === 'in' ? any : `not ${any}`;
    }
    case 'within_last':
    case 'within_next':
    case 'older_than': {
      const [from, to] = window(op, value as string, now);
      return yes([from && `${t} >= ${p.add(from, 'timestamptz')}`, to && `${t} <= ${p.add(to, 'timestamptz')}`].filter(Boolean).join(' and '));
    }
    case 'eq':
    case 'neq': {
      const eq = value === null ? `${t} is null` : yes(`${t} = ${p.add(instantOf(value, now, 'value'), 'timestamptz')}`);
      return op === 'eq' ? eq : `not ${eq}`;
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return yes(`${t} ${SQL_OPS[op]} ${p.add(instantOf(value, now, 'value'), 'timestamptz')}`);
    default:
      throw InputError.field('op', `${JSON.stringify(op)} does not apply to a time`);
  }
}

// ---------------------------------------------------------------------------------------------
// Sets of rows per contact

/** Rows of another table that belong to a contact: `from` with alias x, filters without the contact. */
interface Source {
  from: string;
  where: string[];
}

const correlated = (s: Source, ...more: string[]) => `select 1 from ${s.from} where ${[...s.where, 'x.contact_id = c.id', ...more].join(' and ')}`;
const exists = (s: Source, ...more: string[]) => `exists (${correlated(s, ...more)})`;

/**
 * Whether the number of the contact's rows in s lies in [min, max] (max absent: no bound),
 * negated when `negate`. "At least one" and "none" are plain (NOT) EXISTS; other counts group.
 */
function countIn(s: Source, min: number, max: number | undefined, negate: boolean, p: Params): string {
  const lo = Math.max(0, min);
  if (max !== undefined && max < lo) return negate ? 'true' : 'false';
  if (lo === 0 && max === undefined) return negate ? 'false' : 'true';
  const zeroIn = lo === 0;
  let holds: string;
  if (lo === 1 && max === undefined) holds = exists(s);
  else if (zeroIn && max === 0) holds = `not ${exists(s)}`;
  else {
    const range = [lo > 0 ? `count(*) >= ${p.add(lo, 'bigint')}` : null, max !== undefined ? `count(*) <= ${p.add(max, 'bigint')}` : null].filter(Boolean).join(' and ');
    // Grouped rows are the contacts with at least one; with zero in range the rest hold too.
    const grouped = (having: string) =>
      `exists (select 1 from (select x.contact_id from ${s.from} where ${s.where.join(' and ')} group by x.contact_id having ${having}) g where g.contact_id = c.id)`;
    holds = zeroIn ? `not ${grouped(`not (${range})`)}` : grouped(range);
  }
  return negate ? `not ${holds}` : holds;
}

function countRange(op: CountOperator, n: number): { min: number; max?: number; negate: boolean } {
  switch (op) {
    case 'eq':
      return { min: n, max: n, negate: false };
    case 'neq':
      return { min: n, max: n, negate: true };
    case 'gt':
      return { min: n + 1, negate: false };
    case 'gte':
      return { min: n, negate: false };
    case 'lt':
      return { min: 0, max: n - 1, negate: false };
    case 'lte':
      return { min: 0, max: n, negate: false };
  }
}

/**
 * A comparison of a value derived per contact (latest consent, last event property, score):
 * `derived` selects (contact_id, v); a contact without a row has no value, which passes only
 * the ops that a missing value passes.
 */
function perContact(derived: string, cmp: (v: string) => string, missingPasses: boolean): string {
  return missingPasses
    ? `not exists (select 1 from (${derived}) g where g.contact_id = c.id and not (${cmp('g.v')}))`
    : `exists (select 1 from (${derived}) g where g.contact_id = c.id and ${cmp('g.v')})`;
}

/**
 * The latest time among the contact's rows in the sources (the max over their union) compared,
 * without computing it per contact: max > b holds when some row is after b, max < b when some row
 * exists and none is at or after b.
 */
function latest(sources: readonly { s: Source; col: string }[], opIn: SegmentOperator | undefined, value: unknown, p: Params, now: Date): string {
  const op = effectiveOp(opIn, value);
  const some = (cond: (col: string) => string) => `(${sources.map(({ s, col }) => exists(s, cond(col))).join(' or ')})`;
  const none = (cond: (col: string) => string) => `not ${some(cond)}`;
  const any = some((col) => `${col} is not null`);
  const at = (d: Date) => p.add(d, 'timestamptz');
  const between = (from: Date | null, to: Date | null) => {
    const parts: string[] = [];
    if (from) {
      const f = at(from);
      parts.push(some((col) => `${col} >= ${f}`));
    } else parts.push(any);
    if (to) {
      const t = at(to);
      parts.push(none((col) => `${col} > ${t}`));
    }
    return `(${parts.join(' and ')})`;
  };
  switch (op) {
    case 'exists':
      return any;
    case 'not_exists':
      return `not ${any}`;
    case 'gt':
    case 'gte': {
      const b = at(instantOf(value, now, 'value'));
      return some((col) => `${col} ${SQL_OPS[op]} ${b}`);
    }
    case 'lt':
    case 'lte': {
      const b = at(instantOf(value, now, 'value'));
      return `(${any} and ${none((col) => `${col} ${op === 'lt' ? '>=' : '>'} ${b}`)})`;
    }
    case 'eq':
    case 'neq': {
      if (value === null) return op === 'eq' ? `not ${any}` : any;
      const d = instantOf(value, now, 'value');
      const eq = between(d, d);
      return op === 'eq' ? eq : `not ${eq}`;
    }
    case 'within_last':
      // The latest activity is never after now, so "since" is enough, and spares a second scan.
      return between(window(op, value as string, now)[0], null);
    case 'within_next':
    case 'older_than': {
      const [from, to] = window(op, value as string, now);
      return between(from, to);
    }
    default:
      throw InputError.field('op', `${JSON.stringify(op)} does not apply to a time`);
  }
}

const ENGAGEMENT_COLUMN: Record<Exclude<EngagementCounter, 'replies'>, string> = {
  sends: 'x.sent_at',
  deliveries: 'x.delivered_at',
  opens: 'x.opened_at',
  clicks: 'x.clicked_at',
};

// ---------------------------------------------------------------------------------------------
// The tree

const addressHash = (address: string) => `encode(sha256(convert_to(lower(btrim(${address})), 'UTF8')), 'hex')`;
const ADDRESS: Record<string, string> = { sms: 'c.phone', voice: 'c.phone', email: 'c.email', whatsapp: 'coalesce(c.whatsapp, c.phone)' };

function suppressedOn(channel: string, p: Params): string {
  const address = ADDRESS[channel]!;
  return yes(
    `${address} is not null and exists (select 1 from suppressions s where s.tenant_id = $1::uuid and s.channel in (${p.add(channel, 'text')}, 'all') and s.address_hash = ${addressHash(address)})`,
  );
}

function propertyTree(cond: PropertyCondition, column: string, p: Params, now: Date): string {
  if ('all' in cond) return `(${cond.all.map((c) => propertyTree(c, column, p, now)).join(' and ')})`;
  if ('any' in cond) return `(${cond.any.map((c) => propertyTree(c, column, p, now)).join(' or ')})`;
  if ('not' in cond) return `(not ${propertyTree(cond.not, column, p, now)})`;
  return compareJson(`(${column} #> ${p.add(cond.property.split('.'), 'text[]')})`, cond.op, cond.value, cond.type, p, now);
}

function compileNode(cond: SegmentCondition, p: Params, ctx: CompileContext, visiting: Set<string>): string {
  const now = ctx.now;
  if ('all' in cond) return `(${cond.all.map((c) => compileNode(c, p, ctx, visiting)).join(' and ')})`;
  if ('any' in cond) return `(${cond.any.map((c) => compileNode(c, p, ctx, visiting)).join(' or ')})`;
  if ('not' in cond) return `(not ${compileNode(cond.not, p, ctx, visiting)})`;
  if ('field' in cond) {
    if (cond.field === 'created_at') return compareTime('c.created_at', cond.op, cond.value, p, now);
    return compareJson(`to_jsonb(c.${cond.field})`, cond.op, cond.value, undefined, p, now);
  }
  if ('attribute' in cond) return compareJson(`(c.attributes #> ${p.add(cond.attribute.split('.'), 'text[]')})`, cond.op, cond.value, cond.type, p, now);
  if ('tag' in cond) {
    const has = `c.tags @> ${p.add([cond.tag], 'text[]')}`;
    return cond.present === false ? `not (${has})` : has;
  }
  if ('consent' in cond) {
    // consent_state holds the latest record per topic; of the topic and "all", the later decides and a tie goes to the revocation (core/consent.ts).
    const derived = `select distinct on (x.contact_id) x.contact_id, x.status = 'granted' as v from consent_state x
      where ${p.scope} and x.channel = ${p.add(cond.consent, 'text')} and x.topic in (${p.add(cond.topic ?? 'all', 'text')}, 'all')
      order by x.contact_id, x.recorded_at desc, (x.status = 'revoked') desc`;
    const granted = perContact(derived, (v) => v, false);
    return cond.granted === false ? `not ${granted}` : granted;
  }
  if ('suppressed' in cond) {
    const channels = cond.suppressed === 'any' ? ['sms', 'email', 'whatsapp', 'voice'] : [cond.suppressed];
    return `(${channels.map((ch) => suppressedOn(ch, p)).join(' or ')})`;
  }
  if ('whatsapp_window' in cond) {
    const open = exists({ from: 'conversations x', where: [p.scope, "x.channel = 'whatsapp'"] }, `x.last_inbound_at > ${p.add(new Date(now.getTime() - WHATSAPP_WINDOW_MS), 'timestamptz')}`);
    return cond.whatsapp_window === 'open' ? open : `not ${open}`;
  }
  if ('last' in cond) {
    const channel = cond.channel ? [`x.channel = ${p.add(cond.channel, 'text')}`] : [];
    const inbound = { s: { from: 'conversations x', where: [p.scope, ...channel] }, col: 'x.last_inbound_at' };
    const outbound = { s: { from: 'messages x', where: [p.scope, "x.kind in ('send', 'reply')", ...channel] }, col: 'x.sent_at' };
    const sources = cond.last === 'inbound' ? [inbound] : cond.last === 'outbound' ? [outbound] : [inbound, outbound];
    return latest(sources, cond.op, cond.value, p, now);
  }
  if ('engagement' in cond) {
    const since = cond.within ? new Date(now.getTime() - durationMs(cond.within)) : null;
    const channel = cond.channel ? [`x.channel = ${p.add(cond.channel, 'text')}`] : [];
    const s: Source =
      cond.engagement === 'replies'
        ? { from: 'inbound_messages x', where: [p.scope, ...channel, ...(since ? [`x.received_at >= ${p.add(since, 'timestamptz')}`] : [])] }
        : (() => {
            const col = ENGAGEMENT_COLUMN[cond.engagement];
            return { from: 'messages x', where: [p.scope, "x.kind = 'send'", ...channel, since ? `${col} >= ${p.add(since, 'timestamptz')}` : `${col} is not null`] };
          })();
    const r = countRange(cond.op ?? 'gte', cond.value ?? 1);
    return countIn(s, r.min, r.max, r.negate, p);
  }
  if ('score' in cond) {
    const since = new Date(now.getTime() - durationMs(cond.within ?? ENGAGEMENT_SCORE_WINDOW));
    const w = ENGAGEMENT_SCORE_WEIGHTS;
    const derived = `select x.contact_id, avg(case when x.replied_at is not null then ${w.replied} when x.clicked_at is not null then ${w.clicked} when x.opened_at is not null then ${w.opened} else 0 end) as v
      from messages x where ${p.scope} and x.kind = 'send' and x.sent_at >= ${p.add(since, 'timestamptz')} group by x.contact_id`;
    const op = cond.op ?? (cond.value === undefined ? 'exists' : 'gte');
    if (op === 'exists' || op === 'not_exists') {
      const scored = perContact(derived, () => 'true', false);
      return op === 'exists' ? scored : `not ${scored}`;
    }
    const v = p.add(cond.value, 'numeric');
    return perContact(derived, (x) => yes(op === 'neq' ? `${x} <> ${v}` : `${x} ${SQL_OPS[op]} ${v}`), op === 'neq');
  }
  if ('event' in cond) {
    const where = [p.scope, `x.name = ${p.add(cond.event, 'text')}`];
    if (cond.within) where.push(`x.occurred_at >= ${p.add(new Date(now.getTime() - durationMs(cond.within)), 'timestamptz')}`);
    if (cond.where) where.push(propertyTree(cond.where, 'x.properties', p, now));
    return countIn({ from: 'events x', where }, cond.min_count ?? 1, cond.max_count, false, p);
  }
  if ('last_event' in cond) {
    const derived = `select distinct on (x.contact_id) x.contact_id, x.properties #> ${p.add(cond.property.split('.'), 'text[]')} as v from events x
      where ${p.scope} and x.name = ${p.add(cond.last_event, 'text')} order by x.contact_id, x.occurred_at desc, x.id desc`;
    const op = effectiveOp(cond.op, cond.value);
    return perContact(derived, (v) => compareJson(v, cond.op, cond.value, cond.type, p, now), MISSING_PASSES.includes(op));
  }
  if ('in_segment' in cond) {
    const id = cond.in_segment;
    if (visiting.has(id)) throw InputError.field('definition', 'segments name each other in a cycle');
    const def = ctx.resolve(id);
    if (!def) throw InputError.field('definition', `in_segment ${JSON.stringify(id)} names no segment`);
    visiting.add(id);
    const sql = compileNode(def, p, ctx, visiting);
    visiting.delete(id);
    return sql;
  }
  throw InputError.field('definition', 'unknown condition');
}

/** Compiles a validated definition for one tenant; see the top of this file. */
export function compileSegment(tenantId: string, definition: SegmentCondition, ctx: CompileContext): CompiledSegment {
  const p = new Params(tenantId, ctx.ranged ?? false);
  const where = compileNode(definition, p, ctx, new Set());
  return { where, params: p.values, ...(p.range ? { range: p.range } : {}) };
}
