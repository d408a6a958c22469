import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { createTenantWithKey, listTenants } from '../../store/tenants.js';
import { isAdmin } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { TenantBody, TenantCreateBody } from '../schemas/tenant.js';
import { sendError } from '../errors.js';
import { checkTimeZone } from './tenant.js';

/**
 * Tenant management for operators (agencies running Rapport for many businesses). Needs the admin
 * token; tenant API keys never reach these routes.
 */
export const adminRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  const { db } = deps;
  app.addHook('onRequest', async (req, reply) => {
    if (!isAdmin(req, deps)) return sendError(reply, 401, 'unauthorized', 'tenant management needs the admin token (RAPPORT_ADMIN_TOKEN)');
  });

  app.post(
    '/tenants',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a tenant and its first API key',
        body: TenantCreateBody,
        response: { 201: Type.Object({ tenant: TenantBody, api_key: Type.String({ description: 'shown once' }) }), ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      checkTimeZone(req.body.time_zone);
      const { tenant, apiKey } = await db.transaction((tx) => createTenantWithKey(tx, req.body, 'admin'));
      return reply.status(201).send({ tenant, api_key: apiKey });
    },
  );

  app.get('/tenants', { schema: { tags: ['admin'], summary: 'List tenants', response: { 200: Type.Object({ data: Type.Array(TenantBody) }), ...errors(401) } } }, async () => ({
    data: await listTenants(db),
  }));
};
