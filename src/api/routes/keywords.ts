import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { deleteKeyword, listKeywords, putKeyword } from '../../store/keywords.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { Keyword, KeywordInput, KeywordParams } from '../schemas/keywords.js';

/** The tenant's keyword table: the defaults (STOP, HELP, START…) and its own phrases over them. */
export const keywordRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  app.get(
    '/keywords',
    {
      schema: {
        tags: ['keywords'],
        summary: 'The effective keyword table',
        description:
          'Every phrase an inbound message is matched against, defaults and yours, each with its source. A message matches only when the whole of it, without case, accents, surrounding punctuation or emoji, is the phrase.',
        response: { 200: Type.Object({ data: Type.Array(Keyword) }), ...errors(401) },
      },
    },
    async (req) => ({ data: await listKeywords(db, req.auth.tenantId) }),
  );

  app.put(
    '/keywords/:phrase',
    {
      schema: {
        tags: ['keywords'],
        summary: 'Set what a phrase does',
        description: "Creates (201) or replaces (200) your row for the phrase; it takes precedence over a default of the same words. action 'none' switches a default off.",
        params: KeywordParams,
        body: KeywordInput,
        response: { 200: Keyword, 201: Keyword, ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const { keyword, created } = await putKeyword(db, req.auth.tenantId, req.params.phrase, req.body, req.auth.actor);
      return reply.status(created ? 201 : 200).send(keyword);
    },
  );

  app.delete(
    '/keywords/:phrase',
    {
      schema: {
        tags: ['keywords'],
        summary: 'Remove your row for a phrase',
        description: 'A default of the same words applies again. Deleting a default itself is a 409: switch it off with action none.',
        params: KeywordParams,
        response: { 200: Keyword, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => deleteKeyword(db, req.auth.tenantId, req.params.phrase, req.auth.actor),
  );
};
