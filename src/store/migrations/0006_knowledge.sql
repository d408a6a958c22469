-- The knowledge base: a tenant's tips, updates, reminders, insights, FAQs and documents, split
-- into chunks for search (docs/knowledge.md).
--
-- No extension is created here. pg_trgm (misspellings) and pgvector are used when the database
-- has them, detected at search time: the embedded database loads pg_trgm itself, a server's
-- operator runs `create extension pg_trgm`. A migration that created them only where they
-- exist would give servers different schemas.
create table knowledge_items (
  id          uuid primary key,
  tenant_id   uuid not null references tenants(id) on delete cascade,
  kind        text not null check (kind in ('tip', 'update', 'reminder', 'insight', 'faq', 'document')),
  title       text not null,
  body        text not null,
  -- the text search configuration its words are stemmed with
  language    text not null default 'english',
  tags        text[] not null default '{}',
  topics      text[] not null default '{}',
  valid_from  timestamptz,
  valid_until timestamptz,
  source      text,
  url         text,
  metadata    jsonb not null default '{}',
  created_at  timestamptz not null,
  updated_at  timestamptz not null,
  constraint knowledge_items_validity check (valid_from is null or valid_until is null or valid_until > valid_from)
);
create index knowledge_items_tenant on knowledge_items (tenant_id, id);

-- tenant_id is the item's, repeated so that search reads the tenant's chunks without a join.
-- tsv holds the item's title (weight A) and the chunk's text (B), written with the chunk.
-- embedding is unit length in the vector space named by embedding_space; sketch is its SimHash
-- (core/embeddings.ts), compared first because it costs a fraction of a real[] dot product.
create table knowledge_chunks (
  item_id         uuid not null references knowledge_items(id) on delete cascade,
  seq             int not null,
  tenant_id       uuid not null,
  text            text not null,
  tsv             tsvector not null,
  embedding       real[],
  sketch          bit(512),
  embedding_space text,
  primary key (item_id, seq)
);
create index knowledge_chunks_tenant on knowledge_chunks (tenant_id, embedding_space);
create index knowledge_chunks_tsv on knowledge_chunks using gin (tsv);

-- Every word the tenant's chunks have held, for correcting misspelt query words by trigram
-- similarity. It only grows: a word no chunk holds any more matches nothing.
create table knowledge_terms (
  tenant_id uuid not null references tenants(id) on delete cascade,
  term      text not null,
  primary key (tenant_id, term)
);
