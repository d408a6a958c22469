import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { addSuppression, deleteSuppression, listSuppressions } from '../../store/suppressions.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { Suppression, SuppressionChannel, SuppressionInput } from '../schemas/suppression.js';
import { normalizeOptions } from '../tenant-options.js';

/** Addresses that are never sent to, whatever the consent ledger says. */
export const suppressionRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.get(
    '/suppressions',
    {
      schema: {
        tags: ['suppressions'],
        summary: 'List suppressed addresses, a page at a time',
        querystring: Type.Object({ ...PageQuery, channel: Type.Optional(SuppressionChannel) }, { additionalProperties: false }),
        response: { 200: Page(Suppression), ...errors(400, 401) },
      },
    },
    async (req) => listSuppressions(db, req.auth.tenantId, req.query),
  );

  app.post(
    '/suppressions',
    {
      schema: {
        tags: ['suppressions'],
        summary: 'Suppress an address on one channel or all',
        description: 'Idempotent: the same channel and address again returns the existing entry with 200; a new entry is 201.',
        body: SuppressionInput,
        response: { 200: Suppression, 201: Suppression, ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const r = await addSuppression(db, req.auth.tenantId, req.body, await normalizeOptions(db, req.auth.tenantId), req.auth.actor, clock.now());
      return reply.status(r.created ? 201 : 200).send(r.suppression);
    },
  );

  app.delete(
    '/suppressions/:id',
    { schema: { tags: ['suppressions'], summary: 'Remove a suppression; the address may be sent to again', params: IdParams, response: { 200: Suppression, ...errors(401, 404) } } },
    async (req) => deleteSuppression(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );
};
