import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { searchKnowledge } from '../../store/knowledge-search.js';
import { createKnowledgeItem, deleteKnowledgeItem, getKnowledgeItem, listKnowledgeItems, patchKnowledgeItem } from '../../store/knowledge.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams, Page } from '../schemas/common.js';
import {
  KnowledgeItem,
  KnowledgeItemInput,
  KnowledgeItemPatch,
  KnowledgeItemSummary,
  KnowledgeListQuery,
  KnowledgeSearchBody,
  KnowledgeSearchQuery,
  KnowledgeSearchResult,
} from '../schemas/knowledge.js';

/** `?topics=a,b&topics=c` → ['a', 'b', 'c'] */
const values = (list: string[] | undefined) => list?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

/** The tenant's knowledge base: tips, updates, reminders, insights, FAQs and documents, searchable. */
export const knowledgeRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock, embeddings = null }) => {
  const tags = ['knowledge'];

  app.post(
    '/knowledge',
    {
      schema: {
        tags,
        summary: 'Add a knowledge item',
        description: 'The body is split into chunks for search (and embedded when an embeddings endpoint is configured). valid_until must be after valid_from.',
        body: KnowledgeItemInput,
        response: { 201: KnowledgeItem, ...errors(400, 401) },
      },
    },
    async (req, reply) => reply.status(201).send(await createKnowledgeItem(db, req.auth.tenantId, req.body, { actor: req.auth.actor, now: clock.now(), embeddings })),
  );

  app.get(
    '/knowledge',
    {
      schema: {
        tags,
        summary: 'List knowledge items, a page at a time',
        description: 'In creation order, without bodies (GET one item for its body).',
        querystring: KnowledgeListQuery,
        response: { 200: Page(KnowledgeItemSummary), ...errors(400, 401) },
      },
    },
    async (req) =>
      listKnowledgeItems(db, req.auth.tenantId, {
        limit: req.query.limit,
        cursor: req.query.cursor,
        kinds: values(req.query.kinds),
        topics: values(req.query.topics),
        tags: values(req.query.tags),
        valid_at: req.query.valid_at ? new Date(req.query.valid_at) : undefined,
      }),
  );

  const search = (tenantId: string, q: { q: string; kinds?: string[]; topics?: string[]; tags?: string[]; valid_at?: string; limit?: number }) =>
    searchKnowledge(db, tenantId, {
      query: q.q,
      kinds: values(q.kinds),
      topics: values(q.topics),
      tags: values(q.tags),
      validAt: q.valid_at ? new Date(q.valid_at) : clock.now(),
      limit: q.limit ?? 10,
      embeddings,
    });
  const searchDescription =
    'Ranks items in force at valid_at (now by default) by full-text rank, misspelling corrections (with pg_trgm) and, when an embeddings endpoint is configured, vector similarity; each result carries its best chunk and every score. See docs/knowledge.md.';

  app.get(
    '/knowledge/search',
    { schema: { tags, summary: 'Search the knowledge base', description: searchDescription, querystring: KnowledgeSearchQuery, response: { 200: KnowledgeSearchResult, ...errors(400, 401) } } },
    async (req) => search(req.auth.tenantId, req.query),
  );

  app.post(
    '/knowledge/search',
    {
      schema: {
        tags,
        summary: 'Search the knowledge base with a long query',
        description: `The same as GET, for queries too long for a URL (a whole message, say). ${searchDescription}`,
        body: KnowledgeSearchBody,
        response: { 200: KnowledgeSearchResult, ...errors(400, 401) },
      },
    },
    async (req) => search(req.auth.tenantId, req.body),
  );

  app.get(
    '/knowledge/:id',
    { schema: { tags, summary: 'Get a knowledge item', params: IdParams, response: { 200: KnowledgeItem, ...errors(401, 404) } } },
    async (req) => getKnowledgeItem(db, req.auth.tenantId, req.params.id),
  );

  app.patch(
    '/knowledge/:id',
    {
      schema: {
        tags,
        summary: 'Change a knowledge item',
        description: 'Sets the given fields; null clears an optional one. A new title, body or language re-chunks the item.',
        params: IdParams,
        body: KnowledgeItemPatch,
        response: { 200: KnowledgeItem, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => patchKnowledgeItem(db, req.auth.tenantId, req.params.id, req.body, { actor: req.auth.actor, now: clock.now(), embeddings }),
  );

  app.delete(
    '/knowledge/:id',
    { schema: { tags, summary: 'Delete a knowledge item', params: IdParams, response: { 200: KnowledgeItem, ...errors(401, 404) } } },
    async (req) => deleteKnowledgeItem(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );
};
