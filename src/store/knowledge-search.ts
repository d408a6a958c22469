import { sketch, vectorLiteral, type EmbeddingsClient } from '../core/embeddings.js';
import { LEXICAL_WEIGHT, SEARCH_LANGUAGES, TRIGRAM_THRESHOLD, VECTOR_WEIGHT } from '../core/knowledge.js';
import type { Db } from './db.js';
import { SUMMARY_COLUMNS, type KnowledgeItemSummary } from './knowledge.js';

/**
 * Knowledge search: one statement that ranks a tenant's chunks and returns each item once, with
 * its best chunk. Three signals, each a column of the answer:
 *
 * - text: ts_rank_cd of the chunk's tsvector (title weight A, text B) against
 *   websearch_to_tsquery of the query, parsed in each item's language; normalised to
 *   rank / (rank + 1).
 * - trigram (needs pg_trgm): query words the tenant's vocabulary does not hold are corrected to
 *   the most similar known words (similarity ≥ 0.3, three at most per word); the score is
 *   ts_rank_cd of the corrections, times the similarity of the best correction the chunk holds.
 *   So "reciept" finds "receipt", below an exact match.
 * - vector (needs an embeddings client): cosine similarity of the query's and the chunk's unit
 *   vectors, a dot product over real[] in SQL. The 100 chunks nearest by sketch (a 512-bit
 *   SimHash compared with bit_count) are taken first and scored with their full vectors. With
 *   pgvector on the server the full vectors are compared directly instead.
 *
 * Without vectors the score is text + trigram. With them it is
 *   0.5 · lexical / best lexical + 0.5 · max(vector, 0) / best vector
 * over the candidates (the 100 best lexical chunks and the 100 nearest), so either signal can
 * carry a result the other misses.
 */

export interface KnowledgeSearch {
  query: string;
  kinds?: string[];
  topics?: string[];
  tags?: string[];
  /** Only items in force at this moment. */
  validAt: Date;
  limit: number;
  embeddings?: EmbeddingsClient | null;
}

export interface KnowledgeHit {
  item: KnowledgeItemSummary;
  chunk: { seq: number; text: string };
  score: number;
  /** Each signal's own value; null when the signal was not used. */
  scores: { text: number; trigram: number | null; vector: number | null };
}

export interface KnowledgeSearchResult {
  data: KnowledgeHit[];
  /** Which signals ranked this answer. */
  ranking: { text: true; trigram: boolean; vector: boolean };
}

interface Capabilities {
  trigram: boolean;
  pgvector: boolean;
}

// Each candidate costs an exact dot product (0.25 ms at 1,536 dimensions on PostgreSQL 15), and
// a results page holds at most 100 items.
const CANDIDATES = 100;
const CAPABILITY_TTL_MS = 60_000;
const capabilities = new WeakMap<Db, { at: number; caps: Promise<Capabilities> }>();

/**
 * What the database offers, looked up by name on the search path (an extension installed in a
 * schema the search path does not reach is as good as absent). Cached for a minute per Db, so an
 * extension created by an operator is picked up without a restart.
 */
export function searchCapabilities(db: Db): Promise<Capabilities> {
  const hit = capabilities.get(db);
  if (hit && Date.now() - hit.at < CAPABILITY_TTL_MS) return hit.caps;
  const caps = db
    .query<{ trigram: boolean; pgvector: boolean }>(
      `select to_regprocedure('similarity(text,text)') is not null as trigram, to_regtype('vector') is not null as pgvector`,
    )
    .then((r) => r.rows[0]!);
  capabilities.set(db, { at: Date.now(), caps });
  caps.catch(() => capabilities.delete(db));
  return caps;
}

/** SQL for the dot product of two real[] of one length; with unit vectors, their cosine. */
const dotSql = (a: string, b: string) => `(select sum(x * y) from unnest(${a}, ${b}) as d(x, y))`;

export async function searchKnowledge(db: Db, tenantId: string, s: KnowledgeSearch): Promise<KnowledgeSearchResult> {
  const caps = await searchCapabilities(db);
  let queryVector: number[] | null = null;
  if (s.embeddings && s.query.trim()) {
    // A failing endpoint costs the answer its vector signal, not the answer.
    queryVector = await s.embeddings.embed([s.query]).then((v) => v[0] ?? null, () => null);
  }
  const nonEmpty = (l?: string[]) => (l && l.length ? l : null);
  const params: unknown[] = [tenantId, s.query, [...SEARCH_LANGUAGES], nonEmpty(s.kinds), nonEmpty(s.topics), nonEmpty(s.tags), s.validAt, s.limit];
  const p = (v: unknown) => `$${params.push(v)}`;

  const fixes = caps.trigram
    ? `words as (
         select distinct w as word from unnest(tsvector_to_array(to_tsvector('simple', $2))) as w
          where length(w) between 3 and 40
            and not exists (select 1 from knowledge_terms k where k.tenant_id = $1 and k.term = w)
       ),
       fixes as materialized (
         select f.term, max(f.sim) as sim from words w
          cross join lateral (
            select k.term, similarity(w.word, k.term) as sim from knowledge_terms k
             where k.tenant_id = $1 and abs(length(k.term) - length(w.word)) <= 3 and similarity(w.word, k.term) >= ${TRIGRAM_THRESHOLD}
             order by 2 desc, 1 limit 3
          ) f
          group by f.term
       ),`
    : `fixes as (select null::text as term, null::real as sim where false),`;

  let vectorCtes = '';
  let vectorScore = 'null::float8';
  let candidates = 'select item_id, seq from lexical';
  if (queryVector) {
    const space = p(s.embeddings!.space);
    const dims = p(queryVector.length);
    const full = p(vectorLiteral(queryVector));
    // The space names the model and its dimensions; the length check guards the exact scores
    // only, since reading cardinality(embedding) in the pass over every chunk would detoast
    // each whole vector that the sketch is there to avoid.
    const inSpace = `c.embedding_space = ${space}`;
    // pgvector's inner product operator (<#>) is the negative dot product, in C; untested here
    // (neither PGlite nor the CI server has pgvector), so it stays this one expression.
    const exact = caps.pgvector ? `(-(c.embedding::vector <#> ${full}::real[]::vector))` : dotSql('c.embedding', `${full}::real[]`);
    const nearestFirst = caps.pgvector ? `${exact} desc` : `bit_count(c.sketch # ${p(sketch(queryVector))}::bit(512))`;
    vectorCtes = `nearest as materialized (
         select c.item_id, c.seq from knowledge_chunks c join items i on i.id = c.item_id
          where c.tenant_id = $1 and ${inSpace}
          order by ${nearestFirst} limit ${CANDIDATES}
       ),`;
    vectorScore = `case when ${inSpace} and cardinality(c.embedding) = ${dims} then ${exact} end`;
    candidates += ' union select item_id, seq from nearest';
  }
  const score = queryVector
    ? `${LEXICAL_WEIGHT} * coalesce((text_score + trigram_score) / nullif(max(text_score + trigram_score) over (), 0), 0)
       + ${VECTOR_WEIGHT} * coalesce(greatest(vector_score, 0) / nullif(max(greatest(vector_score, 0)) over (), 0), 0)`
    : 'text_score + trigram_score';

  const sql = `
    with items as (
      select id, language from knowledge_items
       where tenant_id = $1
         and ($4::text[] is null or kind = any($4::text[]))
         and ($5::text[] is null or topics && $5::text[])
         and ($6::text[] is null or tags && $6::text[])
         and (valid_from is null or valid_from <= $7) and (valid_until is null or valid_until > $7)
    ),
    queries as materialized (select l as language, websearch_to_tsquery(l::regconfig, $2) as tsq from unnest($3::text[]) as l),
    ${fixes}
    fuzzy as materialized (select string_agg(quote_literal(term), ' | ')::tsquery as tsq from fixes),
    lexical as materialized (
      select * from (
        select c.item_id, c.seq, ts_rank_cd(c.tsv, q.tsq, 32) as text_score,
               case when c.tsv @@ f.tsq
                    then ts_rank_cd(c.tsv, f.tsq, 32) * (select max(x.sim) from fixes x where c.tsv @@ quote_literal(x.term)::tsquery)
                    else 0 end as trigram_score
          from knowledge_chunks c
          join items i on i.id = c.item_id
          join queries q on q.language = i.language
          cross join fuzzy f
         where c.tenant_id = $1 and (c.tsv @@ q.tsq or coalesce(c.tsv @@ f.tsq, false))
      ) as m
      order by text_score + trigram_score desc, item_id, seq
      limit ${CANDIDATES}
    ),
    ${vectorCtes}
    scored as materialized (
      select k.item_id, k.seq, coalesce(l.text_score, 0)::float8 as text_score, coalesce(l.trigram_score, 0)::float8 as trigram_score,
             ${vectorScore}::float8 as vector_score
        from (${candidates}) as k
        join knowledge_chunks c on c.item_id = k.item_id and c.seq = k.seq
        left join lexical l on l.item_id = k.item_id and l.seq = k.seq
    ),
    fused as (select *, (${score})::float8 as score from scored),
    best as (select distinct on (item_id) * from fused order by item_id, score desc, seq)
    select b.seq as chunk_seq, c.text as chunk_text, b.score, b.text_score, b.trigram_score, b.vector_score, ${SUMMARY_COLUMNS}
      from best b
      join knowledge_chunks c on c.item_id = b.item_id and c.seq = b.seq
      join knowledge_items i on i.id = b.item_id
     where b.score > 0
     order by b.score desc, b.item_id
     limit $8`;

  const { rows } = await db.query<KnowledgeItemSummary & { chunk_seq: number; chunk_text: string; score: number; text_score: number; trigram_score: number; vector_score: number | null }>(sql, params);
  return {
    data: rows.map(({ chunk_seq, chunk_text, score, text_score, trigram_score, vector_score, ...item }) => ({
      item,
      chunk: { seq: chunk_seq, text: chunk_text },
      score,
      scores: { text: text_score, trigram: caps.trigram ? trigram_score : null, vector: queryVector ? vector_score : null },
    })),
    ranking: { text: true, trigram: caps.trigram, vector: queryVector !== null },
  };
}
