import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isValidTimeZone } from '../contact.js';
import {
  AttributeCondition,
  ConsentCondition,
  DURATION_PATTERN,
  EngagementCondition,
  EventHistoryCondition,
  FieldCondition,
  JourneyDefinition as JourneySchema,
  NODE_SCHEMAS,
  NODE_TYPES,
  PropertyCondition,
  ReplyCondition,
  TagCondition,
  VariableCondition,
  type JourneyDefinition,
  type NodeType,
} from './definition.js';
import { child, isObject, problem, quote, type Json, type JourneyProblem, type Push } from './problems.js';

/**
 * Journey checks in two stages. checkDefinition() runs when a draft is saved: the definition
 * must be well-formed (schema, one mode per wait or action, targets that exist, sane
 * comparisons) though the graph may be unfinished. checkPublishable() (publish.ts) adds what a
 * version that enrolls contacts needs: a reachable, terminating graph, templates that parse,
 * content each channel can send. Every problem names the field by path and, inside a node, the
 * node id.
 */

export type { JourneyProblem } from './problems.js';
// The publish stage lives in publish.ts; callers reach both stages through this module.
export { checkPublishable, compileJourney, type CompiledJourney, type PublishContext } from './publish.js';

// ---------------------------------------------------------------------------------------------
// Schemas, compiled once

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });

/**
 * Conditions are checked by walkCondition(), which picks the one leaf schema that applies; left
 * to the schema, a bad condition reports every branch of the union. So `#/$defs/Condition`
 * accepts anything here.
 */
const ANY_CONDITION = {};
const withConditions = (schema: object) => ({ ...schema, $defs: { Condition: ANY_CONDITION } });

// A variant of the published schema, so it must not claim its $id.
const { $id: _id, ...journeyWithoutId } = JourneySchema as unknown as Record<string, unknown> & { properties: Record<string, unknown> };
const NODES = journeyWithoutId.properties.nodes as { minItems: number; maxItems: number };
// Nodes are checked one by one against the schema of their type, for the same reason as conditions.
const validateJourney = ajv.compile(
  withConditions({ ...journeyWithoutId, properties: { ...journeyWithoutId.properties, nodes: { type: 'array', minItems: NODES.minItems, maxItems: NODES.maxItems } } }),
);
const validateNode = Object.fromEntries(NODE_TYPES.map((t) => [t, ajv.compile(withConditions(NODE_SCHEMAS[t]))])) as Record<NodeType, ValidateFunction>;

const CONDITION_KEYS = ['all', 'any', 'not', 'attribute', 'field', 'property', 'variable', 'tag', 'consent', 'event', 'reply_to', 'engaged'] as const;
type LeafKey = Exclude<(typeof CONDITION_KEYS)[number], 'all' | 'any' | 'not'>;
const LEAF_SCHEMAS: Record<LeafKey, object> = {
  attribute: AttributeCondition,
  field: FieldCondition,
  property: PropertyCondition,
  variable: VariableCondition,
  tag: TagCondition,
  consent: ConsentCondition,
  event: EventHistoryCondition,
  reply_to: ReplyCondition,
  engaged: EngagementCondition,
};
const validateLeaf = Object.fromEntries(Object.entries(LEAF_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)])) as Record<LeafKey, ValidateFunction>;

const MAX_CONDITION_DEPTH = 32;

// ---------------------------------------------------------------------------------------------
// Schema error messages

/** An ajv instancePath under `base`, walking the data so that list indexes and object keys that look like numbers are told apart. */
function fieldOf(base: string, data: unknown, instancePath: string): string {
  let path = base;
  let cur = data;
  if (instancePath === '') return path;
  for (const raw of instancePath.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      path = child(path, Number(seg));
      cur = cur[Number(seg)];
    } else {
      path = child(path, seg);
      cur = isObject(cur) ? cur[seg] : undefined;
    }
  }
  return path;
}

const PATTERNS: Record<string, string> = {
  [DURATION_PATTERN]: 'a duration such as "30s", "15m", "2h", "3d", "1w" or "1d12h"',
  '^[+-]?([0-9]{1,6}[smhdw])+$': 'an offset such as "-3d" or "+12h"',
  '^([01][0-9]|2[0-3]):[0-5][0-9]$': 'a local time HH:MM (24-hour)',
  '^[A-Za-z][A-Za-z0-9_-]{0,63}$': 'a node id (a letter, then up to 63 letters, digits, _ or -)',
  '^[A-Za-z_][A-Za-z0-9_]{0,63}$': 'a variable name (a letter or _, then letters, digits or _)',
};

const TYPE_NAMES: Record<string, string> = { string: 'a string', number: 'a number', integer: 'an integer', boolean: 'a boolean', object: 'an object', array: 'a list', null: 'null' };

/** What a schema accepts, in words: `"sms"`, `a duration such as ...`, `a list`. */
function describe(schema: unknown): string[] {
  if (!isObject(schema)) return ['a value'];
  if (schema.const !== undefined) return [quote(schema.const)];
  if (Array.isArray(schema.anyOf)) return schema.anyOf.flatMap(describe);
  if (typeof schema.pattern === 'string') return [PATTERNS[schema.pattern] ?? `a string matching ${schema.pattern}`];
  if (typeof schema.type === 'string') return [TYPE_NAMES[schema.type] ?? schema.type];
  return ['a value'];
}

function oneOf(words: string[]): string {
  const distinct = [...new Set(words)];
  if (distinct.every((w) => w.startsWith('"'))) return `one of ${distinct.join(', ')}`;
  return distinct.length === 1 ? distinct[0]! : `${distinct.slice(0, -1).join(', ')} or ${distinct.at(-1)}`;
}

function message(e: ErrorObject): { suffix?: string; message: string } {
  switch (e.keyword) {
    case 'required':
      return { suffix: String(e.params.missingProperty), message: 'is required' };
    case 'additionalProperties': {
      const known = isObject(e.parentSchema?.properties) ? Object.keys(e.parentSchema.properties) : [];
      return { suffix: String(e.params.additionalProperty), message: `is not a known field${known.length ? `; expected ${known.join(', ')}` : ''}` };
    }
    case 'anyOf':
      return { message: `must be ${oneOf(describe({ anyOf: e.schema }))}` };
    case 'pattern':
      return { message: `must be ${describe(e.parentSchema)[0]}` };
    case 'type':
      return { message: `must be ${oneOf((Array.isArray(e.params.type) ? e.params.type : [e.params.type]).map((t: string) => TYPE_NAMES[t] ?? t))}` };
    case 'minItems':
      return { message: `must have at least ${e.params.limit} item${e.params.limit === 1 ? '' : 's'}` };
    case 'maxItems':
      return { message: `must have at most ${e.params.limit} items` };
    case 'minLength':
      return { message: e.params.limit === 1 ? 'must not be empty' : `must be at least ${e.params.limit} characters long` };
    case 'maxLength':
      return { message: `must be at most ${e.params.limit} characters long` };
    case 'minimum':
    case 'maximum':
      return { message: `must be at ${e.keyword === 'minimum' ? 'least' : 'most'} ${e.params.limit}` };
    case 'exclusiveMinimum':
      return { message: `must be more than ${e.params.limit}` };
    case 'uniqueItems':
      return { message: `must not repeat an item (items ${Math.min(e.params.i, e.params.j)} and ${Math.max(e.params.i, e.params.j)} are the same)` };
    default:
      return { message: e.message ?? 'is not valid' };
  }
}

/** ajv errors as problems, the branches of a failed anyOf folded into one line that says what was expected. */
function schemaProblems(errors: readonly ErrorObject[] | null | undefined, base: string, data: unknown, node: string | undefined): JourneyProblem[] {
  if (!errors) return [];
  const unions = errors.filter((e) => e.keyword === 'anyOf').map((e) => `${e.schemaPath}/`);
  const out: JourneyProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (unions.some((u) => e.schemaPath.startsWith(u))) continue;
    const m = message(e);
    let field = fieldOf(base, data, e.instancePath);
    if (m.suffix !== undefined) field = child(field, m.suffix);
    const key = `${field}\u0000${m.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(problem(field, node, m.message));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Draft checks

/** Structural validation for saving a draft; `definition` is the input, typed, whatever the problems. */
export function checkDefinition(input: unknown): { definition: JourneyDefinition; problems: JourneyProblem[] } {
  const definition = input as JourneyDefinition;
  if (!isObject(input)) return { definition, problems: [{ field: '', message: 'must be an object (a journey definition)' }] };
  const problems: JourneyProblem[] = [];
  const push: Push = (field, node, msg) => problems.push(problem(field, node, msg));

  if (!validateJourney(input)) problems.push(...schemaProblems(validateJourney.errors, '', input, undefined));

  const entry = input.entry;
  if (isObject(entry)) {
    if (entry.event === undefined && entry.api !== true && entry.campaign !== true) push('entry', undefined, 'needs at least one of event, api or campaign: nothing could enrol a contact');
    if (entry.where !== undefined) walkCondition(entry.where, 'entry.where', undefined, problems, 0);
  }
  for (const key of ['goals', 'exit_on'] as const) {
    const list = input[key];
    if (Array.isArray(list)) list.forEach((m, i) => isObject(m) && m.where !== undefined && walkCondition(m.where, `${key}[${i}].where`, undefined, problems, 0));
  }
  const reentry = input.reentry;
  if (isObject(reentry)) {
    if (reentry.mode === 'cooldown' && reentry.cooldown === undefined) push('reentry.cooldown', undefined, 'is required when mode is "cooldown"');
    if (reentry.mode !== 'cooldown' && reentry.cooldown !== undefined) push('reentry.cooldown', undefined, `is only used when mode is "cooldown" (mode is ${quote(reentry.mode)})`);
  }
  const window = input.send_window;
  if (isObject(window) && typeof window.time_zone === 'string' && window.time_zone !== 'recipient' && window.time_zone !== 'tenant' && !isValidTimeZone(window.time_zone)) {
    push('send_window.time_zone', undefined, `${quote(window.time_zone)} is not "recipient", "tenant" or an IANA time zone (e.g. "Europe/Paris")`);
  }

  const hook = input.result_webhook;
  if (isObject(hook) && typeof hook.url === 'string') {
    const wrong = resultUrlProblem(hook.url);
    if (wrong) push('result_webhook.url', undefined, wrong);
  }

  // Past the limit the schema has said so; checking each of an oversized list would only cost time.
  const nodes = Array.isArray(input.nodes) && input.nodes.length <= NODES.maxItems ? input.nodes : [];
  const ids = new Map<string, number>();
  nodes.forEach((n, i) => isObject(n) && typeof n.id === 'string' && !ids.has(n.id) && ids.set(n.id, i));

  nodes.forEach((n, i) => {
    const at = `nodes[${i}]`;
    if (!isObject(n)) return push(at, undefined, 'must be an object (a node)');
    const id = typeof n.id === 'string' ? n.id : undefined;
    if (id !== undefined && ids.get(id) !== i) push(`${at}.id`, id, `${quote(id)} is already the id of nodes[${ids.get(id)}]`);
    if (n.type === undefined) return push(`${at}.type`, id, `is required: one of ${NODE_TYPES.join(', ')}`);
    if (typeof n.type !== 'string' || !(NODE_TYPES as readonly string[]).includes(n.type)) {
      return push(`${at}.type`, id, `unknown node type ${quote(n.type)}; expected one of ${NODE_TYPES.join(', ')}`);
    }
    const validate = validateNode[n.type as NodeType];
    if (!validate(n)) problems.push(...schemaProblems(validate.errors, at, n, id));
    nodeProblems(n, at, id, push, problems);
  });

  if (input.start !== undefined && typeof input.start === 'string' && !ids.has(input.start)) push('start', undefined, `${quote(input.start)} names no node`);
  nodes.forEach((n, i) => {
    if (!isObject(n)) return;
    const id = typeof n.id === 'string' ? n.id : undefined;
    for (const [field, target] of targets(n, `nodes[${i}]`)) {
      if (typeof target === 'string' && !ids.has(target)) push(field, id, `${quote(target)} names no node`);
    }
  });
  return { definition, problems };
}


/**
 * A result webhook URL is an http(s) URL, or Liquid rendered when the enrollment ends. Of a URL
 * with Liquid in it only the literal start can be judged now ("ftp://{{ x }}" cannot become one);
 * what it renders to is checked when the webhook is queued.
 */
export function resultUrlProblem(url: string): string | null {
  const liquidAt = url.search(/\{[{%]/);
  const head = (liquidAt === -1 ? url : url.slice(0, liquidAt)).trim().toLowerCase();
  const expected = 'must be an http(s) URL, or Liquid that renders one ("{{ trigger.callback_url }}")';
  if (liquidAt === -1) return isHttpUrl(url.trim()) ? null : expected;
  const fits = (scheme: string) => head.startsWith(scheme) || scheme.startsWith(head);
  return fits('https://') || fits('http://') ? null : expected;
}

export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '';
  } catch {
    return false;
  }
}

function exactlyOne(n: Json, keys: readonly string[]): string | null {
  const present = keys.filter((k) => n[k] !== undefined);
  if (present.length === 1) return null;
  if (present.length === 0) return `needs one of ${keys.join(', ')}`;
  return `has ${present.join(' and ')}; use exactly one of ${keys.join(', ')}`;
}

function nodeProblems(n: Json, at: string, id: string | undefined, push: Push, problems: JourneyProblem[]): void {
  if (n.type === 'wait') {
    const mode = exactlyOne(n, ['duration', 'until_time', 'until_date', 'until_event']);
    if (mode) push(at, id, mode);
    if (n.on_past !== undefined && n.until_date === undefined) push(`${at}.on_past`, id, 'is only used with until_date');
    const ue = n.until_event;
    if (ue === undefined) {
      for (const k of ['on_event', 'on_reply', 'on_timeout']) if (n[k] !== undefined) push(`${at}.${k}`, id, 'is only used with until_event; use next');
    } else if (isObject(ue)) {
      if (ue.events === undefined && ue.reply === undefined) push(`${at}.until_event`, id, 'needs events, reply or both: otherwise it only waits for the timeout (use duration)');
      if (n.on_event !== undefined && ue.events === undefined) push(`${at}.on_event`, id, 'is only used when until_event has events');
      if (n.on_reply !== undefined && ue.reply === undefined) push(`${at}.on_reply`, id, 'is only used when until_event has reply');
      if (Array.isArray(ue.events)) {
        ue.events.forEach((m, j) => isObject(m) && m.where !== undefined && walkCondition(m.where, `${at}.until_event.events[${j}].where`, id, problems, 0));
      }
    }
  } else if (n.type === 'action') {
    const kind = exactlyOne(n, ['update', 'webhook', 'emit']);
    if (kind) push(at, id, kind);
  } else if (n.type === 'branch' && Array.isArray(n.branches)) {
    n.branches.forEach((b, k) => isObject(b) && b.when !== undefined && walkCondition(b.when, `${at}.branches[${k}].when`, id, problems, 0));
  } else if (n.type === 'split' && Array.isArray(n.variants)) {
    // Results are reported by variant name, so two variants with one name could not be told apart.
    const names = new Map<unknown, number>();
    n.variants.forEach((v, k) => {
      if (!isObject(v) || typeof v.name !== 'string') return;
      const first = names.get(v.name);
      if (first === undefined) names.set(v.name, k);
      else push(`${at}.variants[${k}].name`, id, `${quote(v.name)} is already the name of variants[${first}]`);
    });
  }
}

/** Every node id a node refers to, with the field that holds it. */
function targets(n: Json, at: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const k of ['next', 'on_event', 'on_reply', 'on_timeout', 'on_past', 'on_blocked', 'default']) if (n[k] !== undefined) out.push([`${at}.${k}`, n[k]]);
  for (const list of ['branches', 'variants']) {
    const items = n[list];
    if (Array.isArray(items)) items.forEach((b, k) => isObject(b) && b.next !== undefined && out.push([`${at}.${list}[${k}].next`, b.next]));
  }
  return out;
}

/** Checks one condition: the leaf schema chosen by its distinguishing key, then the rules between op and value. */
function walkCondition(cond: unknown, at: string, node: string | undefined, problems: JourneyProblem[], depth: number): void {
  const push: Push = (field, n, msg) => problems.push(problem(field, n, msg));
  if (!isObject(cond)) return push(at, node, 'must be a condition (an object such as {"attribute": "plan", "value": "pro"})');
  if (depth > MAX_CONDITION_DEPTH) return push(at, node, `nests deeper than ${MAX_CONDITION_DEPTH} levels`);
  const key = CONDITION_KEYS.find((k) => cond[k] !== undefined);
  if (key === undefined) {
    const keys = Object.keys(cond);
    return push(at, node, `unknown condition${keys.length ? ` (${keys.map(quote).join(', ')})` : ''}; expected one of ${CONDITION_KEYS.join(', ')}`);
  }
  if (key === 'all' || key === 'any' || key === 'not') {
    for (const k of Object.keys(cond)) if (k !== key) push(child(at, k), node, `is not allowed beside ${key}; combine conditions inside it`);
    if (key === 'not') return walkCondition(cond.not, `${at}.not`, node, problems, depth + 1);
    const list = cond[key];
    if (!Array.isArray(list)) return push(`${at}.${key}`, node, 'must be a list of conditions');
    if (list.length === 0) return push(`${at}.${key}`, node, 'must have at least one condition');
    if (list.length > 100) push(`${at}.${key}`, node, 'must have at most 100 conditions');
    list.forEach((c, i) => walkCondition(c, `${at}.${key}[${i}]`, node, problems, depth + 1));
    return;
  }
  const validate = validateLeaf[key];
  if (!validate(cond)) return void problems.push(...schemaProblems(validate.errors, at, cond, node));
  if (key === 'attribute' || key === 'field' || key === 'property' || key === 'variable') {
    comparisonProblems(cond.op as string | undefined, cond.value, at, node, push);
  } else if (key === 'reply_to' && isObject(cond.text)) {
    comparisonProblems(cond.text.op as string, cond.text.value, `${at}.text`, node, push);
  } else if (key === 'event') {
    const min = typeof cond.min_count === 'number' ? cond.min_count : 1;
    if (typeof cond.max_count === 'number' && cond.max_count < min) {
      push(`${at}.max_count`, node, `is less than min_count (${min}${cond.min_count === undefined ? ', the default' : ''}), so this never holds; for "did not", set min_count and max_count to 0`);
    }
  }
}

function comparisonProblems(op: string | undefined, value: unknown, at: string, node: string | undefined, push: Push): void {
  const field = `${at}.value`;
  if (op === undefined) {
    if (Array.isArray(value)) push(field, node, 'is a list; use op "in" to match any of several values');
    return;
  }
  if (op === 'exists' || op === 'not_exists') {
    if (value !== undefined) push(field, node, `is not used with op ${quote(op)}`);
    return;
  }
  if (value === undefined) return push(field, node, `is required with op ${quote(op)}`);
  if (op === 'in' || op === 'not_in') {
    if (!Array.isArray(value)) push(field, node, `must be a list with op ${quote(op)}`);
    return;
  }
  if (Array.isArray(value)) return push(field, node, `must be a single value with op ${quote(op)} (use "in" for a list)`);
  if (op === 'matches') {
    if (typeof value !== 'string') return push(field, node, 'must be a regular expression (a string) with op "matches"');
    try {
      new RegExp(value, 'i');
    } catch (e) {
      push(field, node, `is not a valid regular expression: ${(e as Error).message}`);
    }
  } else if (op === 'gt' || op === 'gte' || op === 'lt' || op === 'lte') {
    if (typeof value !== 'number' && typeof value !== 'string') push(field, node, `must be a number, a date or a string with op ${quote(op)}`);
  } else if (op === 'contains' || op === 'starts_with') {
    if (typeof value !== 'number' && typeof value !== 'string') push(field, node, `must be a string or a number with op ${quote(op)}`);
  }
}
