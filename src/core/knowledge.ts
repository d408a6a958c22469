import type { FieldProblem } from './errors.js';

/** What a knowledge item is; journeys and synthesis pick items by kind. */
export const KNOWLEDGE_KINDS = ['tip', 'update', 'reminder', 'insight', 'faq', 'document'] as const;
export type KnowledgeKind = (typeof KNOWLEDGE_KINDS)[number];

/**
 * Text search configurations an item may be written in: the ones PostgreSQL 15 and later ship
 * (so PGlite and a server agree). 'english' stems English words; 'simple' only lowercases,
 * for languages without a stemmer or text that is mostly names and codes.
 */
export const SEARCH_LANGUAGES = [
  'simple',
  'arabic',
  'danish',
  'dutch',
  'english',
  'finnish',
  'french',
  'german',
  'greek',
  'hungarian',
  'indonesian',
  'irish',
  'italian',
  'lithuanian',
  'nepali',
  'norwegian',
  'portuguese',
  'romanian',
  'russian',
  'serbian',
  'spanish',
  'swedish',
  'tamil',
  'turkish',
  'yiddish',
] as const;
export type SearchLanguage = (typeof SEARCH_LANGUAGES)[number];

/**
 * Hybrid ranking weights. The lexical part (full-text plus trigram) and the vector part are each
 * divided by their best value among the candidates, so both run from 0 to 1 before weighting;
 * equal weights let either one carry a result the other misses.
 */
export const LEXICAL_WEIGHT = 0.5;
export const VECTOR_WEIGHT = 0.5;

/** A query word is corrected to a known word this similar (pg_trgm's own default threshold). */
export const TRIGRAM_THRESHOLD = 0.3;

/** valid_until must come after valid_from; either may be open. */
export function validityProblems(from: Date | null, until: Date | null): FieldProblem[] {
  if (from && until && until.getTime() <= from.getTime()) return [{ field: 'valid_until', message: 'must be after valid_from' }];
  return [];
}

