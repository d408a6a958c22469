import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listAudit } from '../../store/audit.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { AuditPage, AuditQuery } from '../schemas/privacy.js';

export const auditRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  app.get(
    '/audit-log',
    { schema: { tags: ['audit'], summary: 'Who changed what, newest first', querystring: AuditQuery, response: { 200: AuditPage, ...errors(400, 401) } } },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const rows = await listAudit(db, req.auth.tenantId, { limit: limit + 1, before: req.query.before, entityType: req.query.entity_type, entityId: req.query.entity_id });
      const data = rows.slice(0, limit);
      return { data, next_before: rows.length > limit ? data[data.length - 1]!.id : null };
    },
  );
};
