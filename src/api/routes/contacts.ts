import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ConflictError } from '../../core/errors.js';
import { createContact, getContactRow, normalizeBatch, patchContact, upsertContacts } from '../../store/contacts.js';
import { listContacts } from '../../store/contact-search.js';
import { BULK_BODY_LIMIT, type RouteDeps } from '../app.js';
import { normalizeOptions } from '../tenant-options.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { BulkUpsertBody, BulkUpsertResult, Contact, ContactInput } from '../schemas/contact.js';

export const contactRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/contacts',
    { schema: { tags: ['contacts'], summary: 'Create a contact', body: ContactInput, response: { 201: Contact, ...errors(400, 401, 409) } } },
    async (req, reply) => {
      const contact = await createContact(db, req.auth.tenantId, req.body, await normalizeOptions(db, req.auth.tenantId), clock.now());
      return reply.status(201).send(contact);
    },
  );

  app.post(
    '/contacts/upsert',
    {
      schema: {
        tags: ['contacts'],
        summary: 'Create or update one contact, found by external_id, else phone, else email',
        description: 'Fields left out or null keep their stored value; attributes merge; tags are added.',
        body: ContactInput,
        response: { 200: Type.Object({ status: Type.Union([Type.Literal('created'), Type.Literal('updated')]), contact: Contact }), ...errors(400, 401, 409) },
      },
    },
    async (req) => {
      const rows = normalizeBatch([req.body], await normalizeOptions(db, req.auth.tenantId), '', true);
      const result = await upsertContacts(db, req.auth.tenantId, rows, clock.now());
      const outcome = result.outcomes[0]!;
      if (outcome.status === 'rejected') throw new ConflictError(`${outcome.field} ${outcome.message}`, outcome.field);
      return { status: outcome.status, contact: await getContactRow(db, req.auth.tenantId, outcome.id) };
    },
  );

  app.post(
    '/contacts/bulk',
    {
      bodyLimit: BULK_BODY_LIMIT,
      schema: {
        tags: ['contacts'],
        summary: 'Upsert up to 10,000 contacts in one request',
        description:
          'Matching and merging follow POST /v1/contacts/upsert. A malformed field anywhere rejects the whole request (400, nothing written); a row whose phone or email belongs to another contact is reported as rejected and the rest are written.',
        body: BulkUpsertBody,
        response: { 200: BulkUpsertResult, ...errors(400, 401, 413) },
      },
    },
    async (req) => {
      const rows = normalizeBatch(req.body.contacts, await normalizeOptions(db, req.auth.tenantId), 'contacts', true);
      const r = await upsertContacts(db, req.auth.tenantId, rows, clock.now());
      return { created: r.created, updated: r.updated, rejected: r.rejected, results: r.outcomes };
    },
  );

  app.patch(
    '/contacts/:id',
    {
      schema: {
        tags: ['contacts'],
        summary: 'Change a contact',
        description: 'Sets the given fields exactly: null clears a field, tags are replaced, attributes merge and an attribute set to null is removed.',
        params: IdParams,
        body: ContactInput,
        response: { 200: Contact, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => patchContact(db, req.auth.tenantId, req.params.id, req.body, await normalizeOptions(db, req.auth.tenantId), clock.now()),
  );

  app.get(
    '/contacts',
    {
      schema: {
        tags: ['contacts'],
        summary: 'Search and filter contacts, a page at a time',
        querystring: Type.Object(
          {
            ...PageQuery,
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'matches name, email, phone or external_id' })),
            external_id: Type.Optional(Type.String({ maxLength: 255 })),
            email: Type.Optional(Type.String({ maxLength: 320 })),
            phone: Type.Optional(Type.String({ maxLength: 40 })),
            tag: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 20, description: 'contacts having every tag given' })),
            attr: Type.Optional(
              Type.Array(Type.String({ pattern: '^[^:]+:.*$', maxLength: 300 }), { maxItems: 20, description: 'attribute equality, as key:value (e.g. plan:gold)' }),
            ),
            updated_after: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(Contact), ...errors(400, 401) },
      },
    },
    async (req) => listContacts(db, req.auth.tenantId, req.query, await normalizeOptions(db, req.auth.tenantId)),
  );
};
