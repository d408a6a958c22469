import { Type } from 'typebox';
import { KNOWLEDGE_KINDS, SEARCH_LANGUAGES } from '../../core/knowledge.js';
import { Timestamp, Uuid } from './common.js';

export const KnowledgeKind = Type.Enum(KNOWLEDGE_KINDS, { description: 'what the item is' });
const Language = Type.Enum(SEARCH_LANGUAGES, { description: "the text search configuration its words are stemmed with; 'english' unless given" });

// Commas separate several values in one query parameter, so a label cannot hold one.
const Label = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^,]*[^,\\s][^,]*$' });
const Labels = (what: string) => Type.Array(Label, { maxItems: 50, description: what });

// Null first: with coerceTypes, ajv would turn null into "" when the string branch comes first.
const nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Optional(Type.Union([Type.Null(), s]));

const Title = Type.String({ minLength: 1, maxLength: 500, pattern: '\\S' });
// About 200 pages of text: a manual, not a library.
const Body = Type.String({ minLength: 1, maxLength: 500_000, pattern: '\\S', description: 'the text; a long one is split into chunks for search' });

const optional = {
  language: Type.Optional(Language),
  tags: Type.Optional(Labels('free labels, matched exactly by ?tags=')),
  topics: Type.Optional(Labels('subjects the item is about, matched exactly by ?topics=')),
  valid_from: nullable(Type.String({ format: 'date-time', description: 'in force from this moment (inclusive); open when absent' })),
  valid_until: nullable(Type.String({ format: 'date-time', description: 'in force until this moment (exclusive); must be after valid_from' })),
  source: nullable(Type.String({ maxLength: 200, description: 'where the item comes from, e.g. product_updates' })),
  url: nullable(Type.String({ maxLength: 2000, format: 'uri', description: 'a page with more' })),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'anything else, kept as given' })),
};

export const KnowledgeItemInput = Type.Object({ kind: KnowledgeKind, title: Title, body: Body, ...optional }, { additionalProperties: false });

export const KnowledgeItemPatch = Type.Object(
  { kind: Type.Optional(KnowledgeKind), title: Type.Optional(Title), body: Type.Optional(Body), ...optional },
  { additionalProperties: false, description: 'sets the given fields; null clears an optional one' },
);

const summaryFields = {
  id: Uuid,
  kind: KnowledgeKind,
  title: Type.String(),
  language: Language,
  tags: Type.Array(Type.String()),
  topics: Type.Array(Type.String()),
  valid_from: Type.Union([Timestamp, Type.Null()]),
  valid_until: Type.Union([Timestamp, Type.Null()]),
  source: Type.Union([Type.String(), Type.Null()]),
  url: Type.Union([Type.String(), Type.Null()]),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  chunk_count: Type.Integer({ description: 'chunks the body was split into' }),
  embedded_chunks: Type.Integer({ description: 'chunks with a vector (when an embeddings endpoint is configured)' }),
  created_at: Timestamp,
  updated_at: Timestamp,
};

export const KnowledgeItemSummary = Type.Object(summaryFields, { description: 'a knowledge item without its body' });
export const KnowledgeItem = Type.Object({ ...summaryFields, body: Type.String() });

const list = (what: string) => Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), { maxItems: 50, description: `${what}; repeat the parameter or separate values with commas` }));

export const KnowledgeListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    kinds: list('only these kinds'),
    topics: list('only items with any of these topics'),
    tags: list('only items with any of these tags'),
    valid_at: Type.Optional(Type.String({ format: 'date-time', description: 'only items in force at this moment' })),
  },
  { additionalProperties: false },
);

const searchFields = {
  kinds: list('only these kinds'),
  topics: list('only items with any of these topics'),
  tags: list('only items with any of these tags'),
  valid_at: Type.Optional(Type.String({ format: 'date-time', description: 'only items in force at this moment; now when absent' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10 })),
};

export const KnowledgeSearchQuery = Type.Object(
  { q: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S', description: 'what to look for, in words; "quoted phrases", or, and -exclusions work as in web search' }), ...searchFields },
  { additionalProperties: false },
);

export const KnowledgeSearchBody = Type.Object(
  { q: Type.String({ minLength: 1, maxLength: 20_000, pattern: '\\S', description: 'what to look for; may be a whole message' }), ...searchFields },
  { additionalProperties: false },
);

const NullableScore = Type.Union([Type.Number(), Type.Null()]);

export const KnowledgeSearchResult = Type.Object({
  data: Type.Array(
    Type.Object({
      item: KnowledgeItemSummary,
      chunk: Type.Object({ seq: Type.Integer(), text: Type.String() }, { description: 'the passage of the item that matched best' }),
      score: Type.Number({ description: 'what the results are ordered by (docs/knowledge.md)' }),
      scores: Type.Object(
        {
          text: Type.Number({ description: 'full-text rank, 0 to 1' }),
          trigram: { ...NullableScore, description: 'rank of misspelling corrections; null when the database lacks pg_trgm' },
          vector: { ...NullableScore, description: 'cosine similarity to the query; null without an embeddings endpoint' },
        },
        { description: "each signal's own value" },
      ),
    }),
  ),
  ranking: Type.Object({ text: Type.Boolean(), trigram: Type.Boolean(), vector: Type.Boolean() }, { description: 'which signals ranked this answer' }),
});
