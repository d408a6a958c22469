import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { eraseContact, exportContact, getContactDetail } from '../../store/contact-privacy.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams } from '../schemas/common.js';
import { ContactDetail, ContactExport, Erasure } from '../schemas/privacy.js';

/** One contact as a whole: its page, its erasure and its export. */
export const contactDetailRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.get(
    '/contacts/:id',
    { schema: { tags: ['contacts'], summary: 'A contact with its current consent and latest events', params: IdParams, response: { 200: ContactDetail, ...errors(401, 404) } } },
    async (req) => getContactDetail(db, req.auth.tenantId, req.params.id),
  );

  app.delete(
    '/contacts/:id',
    {
      schema: {
        tags: ['contacts'],
        summary: 'Erase a contact and everything held about them (GDPR erasure)',
        description:
          "Deletes the contact and every row holding its data, in one transaction: consent ledger, events, messages with their status history, replies, conversations, enrollments with their steps, review tasks, campaign recipient rows (the campaigns' totals no longer count it). Suppressions of its addresses lose the address but keep blocking it. The audit log keeps an entry with counts only.",
        params: IdParams,
        response: { 200: Erasure, ...errors(401, 404) },
      },
    },
    async (req) => ({ id: req.params.id, erased: true as const, counts: await eraseContact(db, req.auth.tenantId, req.params.id, req.auth.actor) }),
  );

  app.get(
    '/contacts/:id/export',
    {
      schema: {
        tags: ['contacts'],
        summary: 'Everything held about a contact, as one document (GDPR access and portability)',
        description:
          'The contact, its consent records and state, events, messages (with their status history and, for synthesized ones, what they were built from), replies, conversations, enrollments with their steps, review tasks, campaign memberships, the suppressions of its addresses and the audit entries about it.',
        params: IdParams,
        response: { 200: ContactExport, ...errors(401, 404) },
      },
    },
    async (req) => exportContact(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );
};
