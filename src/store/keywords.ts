import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import {
  defaultKeywordReply,
  defaultKeywordTable,
  KEYWORD_ACTIONS,
  normalizeKeyword,
  withTenantRules,
  type KeywordAction,
  type KeywordRule,
  type KeywordTable,
} from '../core/keywords.js';
import { writeAudit } from './audit.js';
import type { Db, Queryable } from './db.js';
import { newId } from './ids.js';

/**
 * A tenant's keyword rows: they replace a default phrase, add one, or switch one off (action
 * 'none'). Phrases are stored normalised (src/core/keywords.ts), so "Stop!" and "stop" are one row.
 */

export interface KeywordInput {
  action: KeywordAction;
  intent?: string | null;
  reply?: string | null;
  language?: string | null;
}

/** One row of the effective table, as the API shows it. */
export interface KeywordView {
  phrase: string;
  action: KeywordAction;
  intent: string | null;
  /** What is sent back: the tenant's reply, else the default for the action and language. */
  reply: string | null;
  language: string | null;
  /** YES: an opt-in only from a contact who opted out. */
  after_opt_out: boolean;
  source: 'default' | 'tenant';
}

interface KeywordRow {
  id: string;
  phrase: string;
  action: KeywordAction;
  intent: string | null;
  reply: string | null;
  language: string | null;
}

export const INTENT_NAME = /^[a-z][a-z0-9_]{0,63}$/;
export const LANGUAGE_TAG = /^[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?$/;
const MAX_PHRASE = 100;

function toRule(row: KeywordRow): KeywordRule {
  return {
    phrase: row.phrase,
    action: row.action,
    source: 'tenant',
    ...(row.intent ? { intent: row.intent } : {}),
    ...(row.reply ? { reply: row.reply } : {}),
    ...(row.language ? { language: row.language } : {}),
  };
}

function toView(rule: KeywordRule): KeywordView {
  return {
    phrase: rule.phrase,
    action: rule.action,
    intent: rule.intent ?? null,
    reply: rule.reply ?? defaultKeywordReply(rule.action, rule.language) ?? null,
    language: rule.language ?? null,
    after_opt_out: rule.after_opt_out === true,
    source: rule.source,
  };
}

async function tenantRows(db: Queryable, tenantId: string): Promise<KeywordRow[]> {
  const { rows } = await db.query<KeywordRow>('select id, phrase, action, intent, reply, language from keywords where tenant_id = $1 order by phrase', [tenantId]);
  return rows;
}

const ACTION_ORDER: Record<KeywordAction, number> = { opt_out: 0, opt_in: 1, help: 2, intent: 3, none: 4 };

/** The defaults with the tenant's rows laid over them, by action and then phrase. */
export async function listKeywords(db: Queryable, tenantId: string): Promise<KeywordView[]> {
  const table = withTenantRules(defaultKeywordTable(), (await tenantRows(db, tenantId)).map(toRule));
  return [...table.rules.values()]
    .map(toView)
    .sort((a, b) => ACTION_ORDER[a.action] - ACTION_ORDER[b.action] || (a.intent ?? '').localeCompare(b.intent ?? '') || a.phrase.localeCompare(b.phrase));
}

/** The phrase as stored, or a 400 naming it. */
export function keywordPhrase(raw: string): string {
  const phrase = normalizeKeyword(raw);
  if (!phrase) throw InputError.field('phrase', 'has no letters or digits: a keyword is compared without punctuation, emoji and spaces around it');
  if (phrase.length > MAX_PHRASE) throw InputError.field('phrase', `must be at most ${MAX_PHRASE} characters`);
  return phrase;
}

function keywordProblems(input: KeywordInput): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!(KEYWORD_ACTIONS as readonly string[]).includes(input.action)) problems.push({ field: 'action', message: `must be one of ${KEYWORD_ACTIONS.join(', ')}` });
  if (input.action === 'intent') {
    if (!input.intent) problems.push({ field: 'intent', message: "is required when the action is 'intent'" });
    else if (!INTENT_NAME.test(input.intent)) problems.push({ field: 'intent', message: 'must be lower case letters, digits and _, starting with a letter (e.g. moving_now)' });
  } else if (input.intent) problems.push({ field: 'intent', message: "is only for the action 'intent'" });
  if (input.action === 'none' && input.reply) problems.push({ field: 'reply', message: "a phrase switched off (action 'none') sends no reply" });
  if (input.language && !LANGUAGE_TAG.test(input.language)) problems.push({ field: 'language', message: 'must be a language code such as en, pt or pt_BR' });
  return problems;
}

/** Creates or replaces the tenant's row for a phrase. */
export async function putKeyword(db: Db, tenantId: string, rawPhrase: string, input: KeywordInput, actor: string): Promise<{ keyword: KeywordView; created: boolean }> {
  const phrase = keywordPhrase(rawPhrase);
  const problems = keywordProblems(input);
  if (problems.length) throw new InputError(problems);
  const result = await db.transaction(async (tx) => {
    const { rows } = await tx.query<KeywordRow & { created: boolean }>(
      `insert into keywords (id, tenant_id, phrase, action, intent, reply, language) values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (tenant_id, phrase) do update set action = excluded.action, intent = excluded.intent, reply = excluded.reply, language = excluded.language
       returning id, phrase, action, intent, reply, language, (xmax = 0) as created`,
      [newId(), tenantId, phrase, input.action, input.intent ?? null, input.reply ?? null, input.language ?? null],
    );
    const row = rows[0]!;
    await writeAudit(tx, {
      tenantId,
      actor,
      action: row.created ? 'keyword.created' : 'keyword.updated',
      entityType: 'keyword',
      entityId: row.id,
      data: { phrase, action: input.action, intent: input.intent ?? null },
    });
    return { keyword: toView(toRule(row)), created: row.created };
  });
  invalidateKeywordCache(db);
  return result;
}

/** Removes the tenant's row; a default phrase of the same words applies again. */
export async function deleteKeyword(db: Db, tenantId: string, rawPhrase: string, actor: string): Promise<KeywordView> {
  const phrase = keywordPhrase(rawPhrase);
  const view = await db.transaction(async (tx) => {
    const { rows } = await tx.query<KeywordRow>('delete from keywords where tenant_id = $1 and phrase = $2 returning id, phrase, action, intent, reply, language', [tenantId, phrase]);
    if (!rows[0]) {
      if (defaultKeywordTable().rules.has(phrase)) {
        throw new ConflictError(`${JSON.stringify(phrase)} is a default keyword; switch it off with PUT and action 'none' instead`, 'phrase');
      }
      throw new NotFoundError('keyword');
    }
    await writeAudit(tx, { tenantId, actor, action: 'keyword.deleted', entityType: 'keyword', entityId: rows[0].id, data: { phrase } });
    return toView(toRule(rows[0]));
  });
  invalidateKeywordCache(db);
  return view;
}

/**
 * How long loadKeywordTable trusts what it read. Writes through this process clear it at once;
 * a change made by another process reaches this one's inbound messages within this time.
 */
export const KEYWORD_CACHE_TTL_MS = 10_000;

const keywordCache = new WeakMap<object, Map<string, { until: number; table: KeywordTable }>>();

function invalidateKeywordCache(db: object): void {
  keywordCache.delete(db);
}

/** The tenant's effective table, for the inbound pipeline's matchKeyword(). */
export async function loadKeywordTable(db: Queryable, tenantId: string): Promise<KeywordTable> {
  let byTenant = keywordCache.get(db);
  const hit = byTenant?.get(tenantId);
  if (hit && hit.until > performance.now()) return hit.table;
  const table = withTenantRules(defaultKeywordTable(), (await tenantRows(db, tenantId)).map(toRule));
  if (!byTenant) keywordCache.set(db, (byTenant = new Map()));
  byTenant.set(tenantId, { until: performance.now() + KEYWORD_CACHE_TTL_MS, table });
  return table;
}
