import { chunkText } from '../core/chunking.js';
import { sketch, vectorLiteral, type EmbeddingsClient } from '../core/embeddings.js';
import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import { validityProblems, type KnowledgeKind, type SearchLanguage } from '../core/knowledge.js';
import { writeAudit } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { Db, Queryable } from './db.js';
import { newId } from './ids.js';

/**
 * The knowledge base: items and their chunks. An item's body is chunked on every write of its
 * title, body or language, and the chunks are embedded first, outside the transaction (no
 * network call inside one). When the embeddings endpoint fails the item is stored without
 * vectors; each later write embeds up to BACKFILL chunks that still lack them (or were embedded
 * in another vector space), so the base catches up without a worker of its own.
 */

export interface KnowledgeItemInput {
  kind: KnowledgeKind;
  title: string;
  body: string;
  language?: SearchLanguage;
  tags?: string[];
  topics?: string[];
  valid_from?: string | null;
  valid_until?: string | null;
  source?: string | null;
  url?: string | null;
  metadata?: Record<string, unknown>;
}

export type KnowledgeItemPatch = Partial<KnowledgeItemInput>;

export interface KnowledgeItemSummary {
  id: string;
  kind: KnowledgeKind;
  title: string;
  language: SearchLanguage;
  tags: string[];
  topics: string[];
  valid_from: Date | null;
  valid_until: Date | null;
  source: string | null;
  url: string | null;
  metadata: Record<string, unknown>;
  chunk_count: number;
  embedded_chunks: number;
  created_at: Date;
  updated_at: Date;
}

export interface KnowledgeItemRow extends KnowledgeItemSummary {
  body: string;
}

export interface WriteContext {
  actor: string;
  now: Date;
  embeddings?: EmbeddingsClient | null;
}

const BACKFILL = 64;

/** An item's columns without its body, for tables aliased `i`. */
export const SUMMARY_COLUMNS = `i.id, i.kind, i.title, i.language, i.tags, i.topics, i.valid_from, i.valid_until, i.source, i.url, i.metadata,
  (select count(*)::int from knowledge_chunks c where c.item_id = i.id) as chunk_count,
  (select count(c.embedding)::int from knowledge_chunks c where c.item_id = i.id) as embedded_chunks,
  i.created_at, i.updated_at`;
const COLUMNS = `${SUMMARY_COLUMNS}, i.body`;

interface Chunked {
  texts: string[];
  vectors: number[][] | null;
  space: string | null;
}

/** What an embedding of a chunk sees: the item's title gives a chunk of a long document its subject. */
const embeddingText = (title: string, chunk: string) => `${title}\n\n${chunk}`;

/** The body's chunks, embedded when a client is given and its endpoint answers. */
async function prepareChunks(title: string, body: string, embeddings: EmbeddingsClient | null | undefined): Promise<Chunked> {
  const texts = chunkText(body);
  // A body of whitespace still leaves the title to be found.
  if (!texts.length) texts.push('');
  if (!embeddings) return { texts, vectors: null, space: null };
  try {
    return { texts, vectors: await embeddings.embed(texts.map((t) => embeddingText(title, t))), space: embeddings.space };
  } catch {
    return { texts, vectors: null, space: null };
  }
}

/**
 * Replaces an item's chunks. The tsvector is computed here, in the same statement, because it
 * holds the item's title as well as the chunk's text; the words go into the tenant's vocabulary.
 */
async function writeChunks(tx: Queryable, tenantId: string, itemId: string, title: string, language: string, c: Chunked): Promise<void> {
  await tx.query('delete from knowledge_chunks where item_id = $1', [itemId]);
  const vectors = c.vectors?.map((v) => vectorLiteral(v)) ?? c.texts.map(() => null);
  const sketches = c.vectors?.map((v) => sketch(v)) ?? c.texts.map(() => null);
  await tx.query(
    `insert into knowledge_chunks (item_id, seq, tenant_id, text, tsv, embedding, sketch, embedding_space)
     select $1, c.seq - 1, $2, c.text,
            setweight(to_tsvector($4::regconfig, $3), 'A') || setweight(to_tsvector($4::regconfig, c.text), 'B'),
            c.embedding::real[], c.sketch::bit(512), case when c.embedding is not null then $5 end
       from unnest($6::text[], $7::text[], $8::text[]) with ordinality as c(text, embedding, sketch, seq)`,
    [itemId, tenantId, title, language, c.space, c.texts, vectors, sketches],
  );
  // Only words of letters: they are what gets misspelt, and they quote safely into a tsquery.
  await tx.query(
    `insert into knowledge_terms (tenant_id, term)
     select distinct $2::uuid, t from knowledge_chunks c, unnest(tsvector_to_array(c.tsv)) t
      where c.item_id = $1 and t ~ '^[[:alpha:]]{3,40}$'
      order by 2
     on conflict do nothing`,
    [itemId, tenantId],
  );
}

function dateOrNull(s: string | null | undefined): Date | null {
  return s ? new Date(s) : null;
}

function checkValidity(from: Date | null, until: Date | null): void {
  const problems = validityProblems(from, until);
  if (problems.length) throw new InputError(problems);
}

export async function getKnowledgeItem(db: Queryable, tenantId: string, id: string): Promise<KnowledgeItemRow> {
  const { rows } = await db.query<KnowledgeItemRow>(`select ${COLUMNS} from knowledge_items i where i.tenant_id = $1 and i.id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('knowledge item');
  return rows[0];
}

export async function createKnowledgeItem(db: Db, tenantId: string, input: KnowledgeItemInput, ctx: WriteContext): Promise<KnowledgeItemRow> {
  const from = dateOrNull(input.valid_from);
  const until = dateOrNull(input.valid_until);
  checkValidity(from, until);
  const language = input.language ?? 'english';
  const chunks = await prepareChunks(input.title, input.body, ctx.embeddings);
  const id = newId();
  await db.transaction(async (tx) => {
    await tx.query(
      `insert into knowledge_items (id, tenant_id, kind, title, body, language, tags, topics, valid_from, valid_until, source, url, metadata, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)`,
      [id, tenantId, input.kind, input.title, input.body, language, uniq(input.tags), uniq(input.topics), from, until, input.source ?? null, input.url ?? null, JSON.stringify(input.metadata ?? {}), ctx.now],
    );
    await writeChunks(tx, tenantId, id, input.title, language, chunks);
    await writeAudit(tx, { tenantId, actor: ctx.actor, action: 'knowledge.created', entityType: 'knowledge_item', entityId: id, data: { kind: input.kind, chunks: chunks.texts.length } });
  });
  await backfillQuietly(db, tenantId, ctx.embeddings);
  return getKnowledgeItem(db, tenantId, id);
}

/**
 * Sets the given fields; null clears an optional one. A new title, body or language re-chunks
 * (and re-embeds) the item. The chunks are prepared from the item as read before the
 * transaction; if another write changed its text meanwhile, this one is refused (409) rather
 * than storing chunks of a body that is no longer the item's.
 */
export async function patchKnowledgeItem(db: Db, tenantId: string, id: string, patch: KnowledgeItemPatch, ctx: WriteContext): Promise<KnowledgeItemRow> {
  const current = await getKnowledgeItem(db, tenantId, id);
  const title = patch.title ?? current.title;
  const body = patch.body ?? current.body;
  const language = patch.language ?? current.language;
  const from = 'valid_from' in patch ? dateOrNull(patch.valid_from) : current.valid_from;
  const until = 'valid_until' in patch ? dateOrNull(patch.valid_until) : current.valid_until;
  checkValidity(from, until);
  const rechunk = title !== current.title || body !== current.body || language !== current.language;
  const chunks = rechunk ? await prepareChunks(title, body, ctx.embeddings) : null;
  await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ title: string; body: string; language: string }>(
      'select title, body, language from knowledge_items where tenant_id = $1 and id = $2 for update',
      [tenantId, id],
    );
    const now = rows[0];
    if (!now) throw new NotFoundError('knowledge item');
    if (now.title !== current.title || now.body !== current.body || now.language !== current.language) {
      throw new ConflictError('the knowledge item changed while this change was prepared; send it again');
    }
    await tx.query(
      `update knowledge_items set kind = $3, title = $4, body = $5, language = $6, tags = $7, topics = $8, valid_from = $9, valid_until = $10,
              source = $11, url = $12, metadata = $13, updated_at = $14
        where tenant_id = $1 and id = $2`,
      [
        tenantId,
        id,
        patch.kind ?? current.kind,
        title,
        body,
        language,
        patch.tags ? uniq(patch.tags) : current.tags,
        patch.topics ? uniq(patch.topics) : current.topics,
        from,
        until,
        'source' in patch ? (patch.source ?? null) : current.source,
        'url' in patch ? (patch.url ?? null) : current.url,
        JSON.stringify(patch.metadata ?? current.metadata),
        ctx.now,
      ],
    );
    if (chunks) await writeChunks(tx, tenantId, id, title, language, chunks);
    await writeAudit(tx, { tenantId, actor: ctx.actor, action: 'knowledge.updated', entityType: 'knowledge_item', entityId: id, data: { fields: Object.keys(patch) } });
  });
  await backfillQuietly(db, tenantId, ctx.embeddings);
  return getKnowledgeItem(db, tenantId, id);
}

export async function deleteKnowledgeItem(db: Db, tenantId: string, id: string, actor: string): Promise<KnowledgeItemRow> {
  return db.transaction(async (tx) => {
    const current = await getKnowledgeItem(tx, tenantId, id);
    await tx.query('delete from knowledge_items where tenant_id = $1 and id = $2', [tenantId, id]);
    await writeAudit(tx, { tenantId, actor, action: 'knowledge.deleted', entityType: 'knowledge_item', entityId: id, data: { kind: current.kind } });
    return current;
  });
}

export interface KnowledgeFilter {
  limit?: number;
  cursor?: string;
  kinds?: string[];
  topics?: string[];
  tags?: string[];
  /** Only items in force at this moment. */
  valid_at?: Date;
}

/** One page in creation order, without bodies (a document's body can be large; GET one has it). */
export async function listKnowledgeItems(db: Queryable, tenantId: string, f: KnowledgeFilter): Promise<{ data: KnowledgeItemSummary[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<KnowledgeItemSummary>(
    `select ${SUMMARY_COLUMNS} from knowledge_items i
      where i.tenant_id = $1 and ($2::uuid is null or i.id > $2)
        and ($3::text[] is null or i.kind = any($3::text[]))
        and ($4::text[] is null or i.topics && $4::text[])
        and ($5::text[] is null or i.tags && $5::text[])
        and ($6::timestamptz is null or ((i.valid_from is null or i.valid_from <= $6) and (i.valid_until is null or i.valid_until > $6)))
      order by i.id limit $7`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, nonEmpty(f.kinds), nonEmpty(f.topics), nonEmpty(f.tags), f.valid_at ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/**
 * Embeds up to `limit` of the tenant's chunks that have no vector in the client's space, and
 * returns how many it embedded. A chunk rewritten meanwhile keeps its new state: the update
 * matches on the text that was embedded.
 */
export async function embedMissingChunks(db: Db, tenantId: string, client: EmbeddingsClient, limit = BACKFILL): Promise<number> {
  const { rows } = await db.query<{ item_id: string; seq: number; text: string; title: string }>(
    `select c.item_id, c.seq, c.text, i.title from knowledge_chunks c join knowledge_items i on i.id = c.item_id
      where c.tenant_id = $1 and (c.embedding is null or c.embedding_space is distinct from $2)
      order by c.item_id, c.seq limit $3`,
    [tenantId, client.space, limit],
  );
  if (!rows.length) return 0;
  const vectors = await client.embed(rows.map((r) => embeddingText(r.title, r.text)));
  const { rowCount } = await db.query(
    `update knowledge_chunks c set embedding = u.embedding::real[], sketch = u.sketch::bit(512), embedding_space = $6
       from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[]) as u(item_id, seq, text, embedding, sketch)
      where c.item_id = u.item_id and c.seq = u.seq and c.text = u.text`,
    [
      rows.map((r) => r.item_id),
      rows.map((r) => r.seq),
      rows.map((r) => r.text),
      vectors.map((v) => vectorLiteral(v)),
      vectors.map((v) => sketch(v)),
      client.space,
    ],
  );
  return rowCount;
}

/** The write has succeeded; catching up on vectors is a bonus that must not fail it. */
async function backfillQuietly(db: Db, tenantId: string, client: EmbeddingsClient | null | undefined): Promise<void> {
  if (!client) return;
  await embedMissingChunks(db, tenantId, client).catch(() => 0);
}

function uniq(list: string[] | undefined): string[] {
  return [...new Set(list ?? [])];
}

function nonEmpty(list: string[] | undefined): string[] | null {
  return list && list.length ? list : null;
}
