import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { InputError } from '../../core/errors.js';
import { loadEnrollmentResult } from '../../engine/enrollment-result.js';
import { cancelEnrollment, enrollFromApi, getEnrollment, listEnrollments, UnresolvedContactsError, type EnrollTargetInput } from '../../store/journey-enrollments.js';
import type { RouteDeps } from '../app.js';
import { sendError } from '../errors.js';
import { errors, IdParams, Page, PageQuery, Uuid } from '../schemas/common.js';
import { EnrollBody, Enrollment, EnrollmentResultSchema, EnrollmentStatus, EnrollmentSummary, EnrollResult } from '../schemas/enrollment.js';
import { normalizeOptions } from '../tenant-options.js';

export const enrollmentRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/journeys/:id/enrollments',
    {
      schema: {
        tags: ['enrollments'],
        summary: 'Enrol existing contacts in the live version of a journey',
        description:
          'One contact (contact_id, or contact identifiers) or up to 1,000 (contacts), in one transaction. Contacts must exist: an unknown one is a 404 for a single contact and a 400 naming contacts[i] for a list, and nothing is enrolled. Contacts already in the journey, or refused by its re-entry rule, are listed as skipped. 409 unless the journey is active.',
        params: IdParams,
        body: EnrollBody,
        response: { 200: EnrollResult, ...errors(400, 401, 404, 409) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const batch = b.contacts !== undefined;
      if (batch && (b.contact_id !== undefined || b.contact !== undefined)) {
        throw InputError.field('contacts', 'give contacts for a list, or contact_id / contact for one contact, not both');
      }
      const targets: EnrollTargetInput[] = batch
        ? b.contacts!.map((t) => ({ ...t, vars: { ...b.vars, ...t.vars } }))
        : [{ contact_id: b.contact_id, contact: b.contact, vars: b.vars }];
      try {
        return await enrollFromApi(
          db,
          req.auth.tenantId,
          req.params.id,
          targets,
          await normalizeOptions(db, req.auth.tenantId),
          req.auth.actor,
          clock.now(),
          (i) => (batch ? `contacts[${i}]` : ''),
        );
      } catch (err) {
        if (!(err instanceof UnresolvedContactsError)) throw err;
        const fields = err.problems.slice(0, 1000).map(({ field, message }) => ({ field, in: 'body', message }));
        const first = err.problems[0]!;
        const message = `${first.field} ${first.message}`;
        if (batch) return sendError(reply, 400, 'invalid_request', fields.map((f) => `${f.field} ${f.message}`).slice(0, 5).join('; '), fields);
        return first.kind === 'not_found' ? sendError(reply, 404, 'not_found', message, fields) : sendError(reply, 409, 'conflict', message, fields);
      }
    },
  );

  app.get(
    '/journeys/:id/enrollments',
    {
      schema: {
        tags: ['enrollments'],
        summary: "List a journey's enrollments, in the order they entered",
        params: IdParams,
        querystring: Type.Object({ ...PageQuery, status: Type.Optional(EnrollmentStatus), contact_id: Type.Optional(Uuid) }, { additionalProperties: false }),
        response: { 200: Page(EnrollmentSummary), ...errors(400, 401, 404) },
      },
    },
    async (req) => listEnrollments(db, req.auth.tenantId, req.params.id, req.query),
  );

  app.get(
    '/enrollments/:id',
    {
      schema: {
        tags: ['enrollments'],
        summary: 'Get an enrollment with its history and messages',
        params: IdParams,
        response: { 200: Enrollment, ...errors(401, 404) },
      },
    },
    async (req) => getEnrollment(db, req.auth.tenantId, req.params.id),
  );

  app.get(
    '/enrollments/:id/result',
    {
      schema: {
        tags: ['enrollments'],
        summary: 'What an enrollment achieved: answer, delivery method, escalation',
        description:
          "Computed from what happened (its messages and the contact's replies), as of now, for any journey: status success, pending, delivered_with_escalation or failed; deliveryMethod; the WhatsApp sessionStatus; escalationLevel; templateUsed; userResponse; timestamps. A journey's result_webhook POSTs the same JSON when an enrollment ends. The rules are in docs/recipes/progressive-escalation.md.",
        params: IdParams,
        response: { 200: EnrollmentResultSchema, ...errors(401, 404) },
      },
    },
    async (req) => loadEnrollmentResult(db, req.auth.tenantId, req.params.id),
  );

  app.post(
    '/enrollments/:id/cancel',
    {
      schema: {
        tags: ['enrollments'],
        summary: 'Cancel an enrollment',
        description: 'Ends it as cancelled and cancels its queued messages. 409 if it has already ended.',
        params: IdParams,
        response: { 200: Enrollment, ...errors(401, 404, 409) },
      },
    },
    async (req) => cancelEnrollment(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );
};
