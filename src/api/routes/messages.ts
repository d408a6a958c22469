import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { getMessage, listMessages } from '../../store/messages-read.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams, Page, PageQuery, Uuid } from '../schemas/common.js';
import { Message, MessageChannel, MessageDetail, MessageStatus } from '../schemas/message.js';

/** The outbox as a delivery record: what was sent, to whom, and what became of it. */
export const messageRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  app.get(
    '/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'List messages, newest first',
        querystring: Type.Object(
          {
            ...PageQuery,
            contact_id: Type.Optional(Uuid),
            enrollment_id: Type.Optional(Uuid),
            journey_id: Type.Optional(Uuid),
            status: Type.Optional(MessageStatus),
            channel: Type.Optional(MessageChannel),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(Message), ...errors(400, 401) },
      },
    },
    async (req) => listMessages(db, req.auth.tenantId, req.query),
  );

  app.get(
    '/messages/:id',
    { schema: { tags: ['messages'], summary: 'Get a message with its status timeline', params: IdParams, response: { 200: MessageDetail, ...errors(401, 404) } } },
    async (req) => getMessage(db, req.auth.tenantId, req.params.id),
  );
};
