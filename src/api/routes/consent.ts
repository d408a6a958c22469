import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { getConsent, recordConsent, recordConsentBatch } from '../../store/consent.js';
import { BULK_BODY_LIMIT, type RouteDeps } from '../app.js';
import { errors, IdParams } from '../schemas/common.js';
import { ConsentBatchBody, ConsentBatchResult, ConsentInput, ConsentLedger, ConsentRecord } from '../schemas/consent.js';

/** The consent ledger: records are appended, never changed; current consent is derived from them. */
export const consentRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/contacts/:id/consent',
    {
      schema: {
        tags: ['consent'],
        summary: 'Record that a contact gave or withdrew consent',
        description:
          'Appends to the ledger. Current consent for the channel and topic moves to this record unless a later one is already stored; at the same instant a revocation wins.',
        params: IdParams,
        body: ConsentInput,
        response: { 201: ConsentRecord, ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => reply.status(201).send(await recordConsent(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now())),
  );

  app.get(
    '/contacts/:id/consent',
    { schema: { tags: ['consent'], summary: "A contact's consent ledger and current consent", params: IdParams, response: { 200: ConsentLedger, ...errors(401, 404) } } },
    async (req) => getConsent(db, req.auth.tenantId, req.params.id),
  );

  app.post(
    '/consent/batch',
    {
      bodyLimit: BULK_BODY_LIMIT,
      schema: {
        tags: ['consent'],
        summary: 'Record up to 10,000 consent records, all or none',
        description: 'Any bad field, or a contact_id that is not a contact of your tenant, refuses the whole request (400, nothing written).',
        body: ConsentBatchBody,
        response: { 200: ConsentBatchResult, ...errors(400, 401, 413) },
      },
    },
    async (req) => recordConsentBatch(db, req.auth.tenantId, req.body.records, req.auth.actor, clock.now()),
  );
};
