import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ConflictError } from '../../core/errors.js';
import { EventBatcher, ingestEvents, listEvents } from '../../store/events.js';
import { BULK_BODY_LIMIT, type RouteDeps } from '../app.js';
import { sendError } from '../errors.js';
import { errors, Page, PageQuery, Uuid } from '../schemas/common.js';
import { Event, EventAccepted, EventBatchBody, EventBatchResult, EventInput } from '../schemas/event.js';
import { normalizeOptions } from '../tenant-options.js';

export const eventRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  // Events posted one per request share transactions when they arrive faster than one is written.
  const batcher = new EventBatcher(db, () => clock.now());
  // The tenant's default country reads phone numbers; events that name their contact by id need none.
  const optionsFor = (tenantId: string, events: { contact?: unknown }[]) => (events.some((e) => e.contact) ? normalizeOptions(db, tenantId) : {});

  app.post(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Record an event that happened to a contact',
        description:
          'Name the contact by contact_id, or by identifiers in contact (an unknown one is created). An id you give makes retries safe: a second delivery answers duplicate with the first event id.',
        body: EventInput,
        response: { 202: EventAccepted, ...errors(400, 401, 404, 409) },
      },
    },
    async (req, reply) => {
      const receivedAt = clock.now();
      const outcome = await batcher.record(req.auth.tenantId, req.body, receivedAt, await optionsFor(req.auth.tenantId, [req.body]));
      if (outcome.status === 'rejected') {
        if (outcome.field === 'contact_id') return sendError(reply, 404, 'not_found', `contact_id ${outcome.message}`, [{ field: 'contact_id', in: 'body', message: outcome.message }]);
        throw new ConflictError(`${outcome.field} ${outcome.message}`, outcome.field);
      }
      return reply.status(202).send({ id: outcome.id, status: outcome.status });
    },
  );

  app.post(
    '/events/batch',
    {
      bodyLimit: BULK_BODY_LIMIT,
      schema: {
        tags: ['events'],
        summary: 'Record up to 10,000 events in one request',
        description:
          'A malformed field anywhere refuses the whole request (400, nothing written). An event whose contact cannot be used (unknown contact_id, identifiers that belong to different contacts) is reported as rejected and the rest are recorded.',
        body: EventBatchBody,
        response: { 202: EventBatchResult, ...errors(400, 401, 413) },
      },
    },
    async (req, reply) => {
      const r = await ingestEvents(db, req.auth.tenantId, req.body.events, clock.now(), await optionsFor(req.auth.tenantId, req.body.events));
      return reply.status(202).send({ recorded: r.recorded, duplicate: r.duplicate, rejected: r.rejected, results: r.results });
    },
  );

  app.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'List events, newest first',
        querystring: Type.Object(
          { ...PageQuery, contact_id: Type.Optional(Uuid), name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Page(Event), ...errors(400, 401) },
      },
    },
    async (req) => listEvents(db, req.auth.tenantId, req.query),
  );
};
