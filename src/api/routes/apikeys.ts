import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { createApiKey, listApiKeys, revokeApiKey } from '../../store/apikeys.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams } from '../schemas/common.js';
import { ApiKeyBody, NewApiKeyBody } from '../schemas/tenant.js';

export const apiKeyRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  app.post(
    '/api-keys',
    {
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key (the secret is in this response only)',
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
        response: { 201: NewApiKeyBody, ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const { secret, ...key } = await createApiKey(db, req.auth.tenantId, req.body.name, req.auth.actor);
      return reply.status(201).send({ ...key, key: secret });
    },
  );

  app.get('/api-keys', { schema: { tags: ['api keys'], summary: 'List API keys (never their secrets)', response: { 200: Type.Object({ data: Type.Array(ApiKeyBody) }), ...errors(401) } } }, async (req) => ({
    data: await listApiKeys(db, req.auth.tenantId),
  }));

  app.delete(
    '/api-keys/:id',
    { schema: { tags: ['api keys'], summary: 'Revoke an API key; it stops working at once', params: IdParams, response: { 200: ApiKeyBody, ...errors(401, 404) } } },
    async (req) => revokeApiKey(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );
};
