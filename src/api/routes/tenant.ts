import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { InputError } from '../../core/errors.js';
import { isValidTimeZone } from '../../core/contact.js';
import { getTenant, updateTenant } from '../../store/tenants.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { TenantBody, TenantPatchBody } from '../schemas/tenant.js';

export function checkTimeZone(zone: string | undefined): void {
  if (zone !== undefined && !isValidTimeZone(zone)) throw InputError.field('time_zone', `${JSON.stringify(zone)} is not an IANA time zone (e.g. "Europe/Paris")`);
}

/** The caller's own tenant: its settings and policies. */
export const tenantRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  app.get('/tenant', { schema: { tags: ['tenant'], summary: 'Get your tenant and its policies', response: { 200: TenantBody, ...errors(401) } } }, async (req) =>
    getTenant(db, req.auth.tenantId),
  );

  app.patch(
    '/tenant',
    { schema: { tags: ['tenant'], summary: 'Change tenant settings, send window, quiet hours, caps or brand voice', body: TenantPatchBody, response: { 200: TenantBody, ...errors(400, 401) } } },
    async (req) => {
      checkTimeZone(req.body.time_zone);
      return updateTenant(db, req.auth.tenantId, req.body, req.auth.actor);
    },
  );
};
