import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../../core/errors.js';
import { createSegment, deleteSegment, getSegment, listSegments, patchSegment, previewSegment, segmentMembers } from '../../store/segments.js';
import type { RouteDeps } from '../app.js';
import { Contact } from '../schemas/contact.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { YAML_TYPES } from './journeys.js';
import { Preview, PreviewBody, SampleQuery, Segment, SegmentInput, SegmentPatch } from '../schemas/segments.js';

/** Saved segments, their preview and their members; docs/segments.md describes the definition. */
export const segmentRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  // Scoped to this plugin, as for journeys: a segment written in YAML is posted as it is.
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseYaml(body as string, { maxAliasCount: 100 }));
    } catch (err) {
      done(InputError.field('body', `is not valid YAML: ${err instanceof Error ? err.message : String(err)}`), undefined);
    }
  });

  app.post(
    '/segments',
    {
      schema: {
        tags: ['segments'],
        summary: 'Save a segment',
        description: 'The definition is checked now (400 naming each field, as definition.all[1].value); in_segment names are stored as ids. The name is unique in your tenant (409). The body may be YAML.',
        body: SegmentInput,
        response: { 201: Segment, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(await createSegment(db, req.auth.tenantId, req.body, req.auth.actor, clock.now())),
  );

  app.get(
    '/segments',
    {
      schema: {
        tags: ['segments'],
        summary: 'List segments, a page at a time',
        querystring: Type.Object({ ...PageQuery, name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }),
        response: { 200: Page(Segment), ...errors(400, 401) },
      },
    },
    async (req) => listSegments(db, req.auth.tenantId, req.query),
  );

  app.post(
    '/segments/preview',
    {
      schema: {
        tags: ['segments'],
        summary: 'Evaluate a definition without saving it',
        description: 'The count of matching contacts and the first `sample` of them (by id). Nothing is written. The body may be YAML.',
        body: PreviewBody,
        response: { 200: Preview, ...errors(400, 401) },
      },
    },
    async (req) => previewSegment(db, req.auth.tenantId, req.body.definition, clock.now(), req.body.sample ?? 20),
  );

  app.get(
    '/segments/:id',
    { schema: { tags: ['segments'], summary: 'Get a segment', params: IdParams, response: { 200: Segment, ...errors(401, 404) } } },
    async (req) => getSegment(db, req.auth.tenantId, req.params.id),
  );

  app.patch(
    '/segments/:id',
    {
      schema: {
        tags: ['segments'],
        summary: 'Change a segment',
        description: 'A definition that would make segments name each other in a cycle is refused (409).',
        params: IdParams,
        body: SegmentPatch,
        response: { 200: Segment, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => patchSegment(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now()),
  );

  app.delete(
    '/segments/:id',
    {
      schema: {
        tags: ['segments'],
        summary: 'Delete a segment',
        description: 'Refused (409, naming them) while other segments name it with in_segment.',
        params: IdParams,
        response: { 200: Segment, ...errors(401, 404, 409) },
      },
    },
    async (req) => deleteSegment(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );

  app.get(
    '/segments/:id/preview',
    {
      schema: {
        tags: ['segments'],
        summary: 'Count a saved segment and show a sample',
        params: IdParams,
        querystring: SampleQuery,
        response: { 200: Preview, ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const segment = await getSegment(db, req.auth.tenantId, req.params.id);
      return previewSegment(db, req.auth.tenantId, segment.definition, clock.now(), req.query.sample ?? 20);
    },
  );

  app.get(
    '/segments/:id/contacts',
    {
      schema: {
        tags: ['segments'],
        summary: 'The members of a segment, a page at a time',
        description: 'In id order; each page is evaluated when it is asked for, so a contact that joins or leaves between pages is seen as it is then.',
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Contact), ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const segment = await getSegment(db, req.auth.tenantId, req.params.id);
      return segmentMembers(db, req.auth.tenantId, segment.definition, clock.now(), req.query);
    },
  );
};
