import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../../core/errors.js';
import { JourneyDefinition } from '../../core/journey/definition.js';
import {
  archiveJourney,
  createJourney,
  getJourney,
  getVersionDetail,
  JourneyProblemsError,
  listJourneys,
  listVersions,
  patchJourney,
  pauseJourney,
  publishJourney,
  resumeJourney,
  validateJourney,
} from '../../store/journeys.js';
import type { RouteDeps } from '../app.js';
import { sendError } from '../errors.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { Journey, JourneyInput, JourneyPatch, JourneyStatus, JourneySummary, Published, ValidationResult, Version, VersionParams, VersionSummary } from '../schemas/journey.js';

/** A definition of 500 nodes with e-mail HTML inline is larger than the API's default body limit. */
const DEFINITION_BODY_LIMIT = 4 * 1024 * 1024;

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/**
 * A journey document is `{name, definition}` or a bare definition (it has `entry` or `nodes`)
 * whose own `name` names the journey; either way the result is `{name?, definition}`.
 * Anything else is returned as it is, for the body schema to refuse by name.
 */
export function journeyDocument(doc: unknown): unknown {
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && !('definition' in doc) && ('entry' in doc || 'nodes' in doc)) {
    const name = (doc as { name?: unknown }).name;
    return { ...(name !== undefined ? { name } : {}), definition: doc };
  }
  return doc;
}

/** A YAML body; aliases are capped by the yaml package, so a "billion laughs" document is refused rather than expanded. */
export function journeyBodyFromYaml(text: string): unknown {
  try {
    return journeyDocument(parseYaml(text, { maxAliasCount: 100 }));
  } catch (err) {
    throw InputError.field('body', `is not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The JSON Schema of a journey definition, as editors fetch it. */
export function publishedJourneySchema(): Record<string, unknown> {
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...(JSON.parse(JSON.stringify(JourneyDefinition)) as Record<string, unknown>) };
}

/** Served without a key, next to /health: editors and CI fetch it to check journey files. */
export const journeySchemaRoute: FastifyPluginAsyncTypebox = async (app) => {
  const schema = publishedJourneySchema();
  app.get(
    '/journeys/schema.json',
    {
      schema: {
        tags: ['journeys'],
        summary: 'The JSON Schema of a journey definition (no API key needed)',
        description:
          'JSON Schema 2020-12. Point an editor at it (e.g. `# yaml-language-server: $schema=<server>/v1/journeys/schema.json` at the top of a YAML file). It checks the shape of each node; rules across nodes (every next names a node, no loop without a wait...) are checked by POST /v1/journeys/{id}/validate.',
        security: [],
        response: { 200: Type.Object({}, { additionalProperties: true, description: 'a JSON Schema document' }) },
      },
    },
    async () => schema,
  );
};

const StatusChange = (summary: string, description: string) => ({
  schema: { tags: ['journeys'], summary, description, params: IdParams, response: { 200: Journey, ...errors(401, 404, 409) } },
});

export const journeyRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  // Scoped to this plugin: only journey bodies may be YAML.
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, journeyBodyFromYaml(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.post(
    '/journeys',
    {
      bodyLimit: DEFINITION_BODY_LIMIT,
      schema: {
        tags: ['journeys'],
        summary: 'Create a journey as a draft',
        description:
          'The definition must be well-formed (400 naming each field as definition.nodes[2]…, the node first in the message); rules across nodes are checked when publishing. The body may be YAML.',
        body: JourneyInput,
        response: { 201: Journey, ...errors(400, 401, 413, 415) },
      },
    },
    async (req, reply) => reply.status(201).send(await createJourney(db, req.auth.tenantId, req.body, req.auth.actor, clock.now())),
  );

  app.get(
    '/journeys',
    {
      schema: {
        tags: ['journeys'],
        summary: 'List journeys, a page at a time',
        querystring: Type.Object(
          { ...PageQuery, status: Type.Optional(JourneyStatus), name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Page(JourneySummary), ...errors(400, 401) },
      },
    },
    async (req) => listJourneys(db, req.auth.tenantId, req.query),
  );

  app.get(
    '/journeys/:id',
    { schema: { tags: ['journeys'], summary: 'Get a journey with its draft', params: IdParams, response: { 200: Journey, ...errors(401, 404) } } },
    async (req) => getJourney(db, req.auth.tenantId, req.params.id),
  );

  app.patch(
    '/journeys/:id',
    {
      bodyLimit: DEFINITION_BODY_LIMIT,
      schema: {
        tags: ['journeys'],
        summary: 'Edit the draft of a journey',
        description: 'Allowed in every status but archived (409). Running enrollments and the live version are untouched until the next publish. The body may be YAML.',
        params: IdParams,
        body: JourneyPatch,
        response: { 200: Journey, ...errors(400, 401, 404, 409, 413, 415) },
      },
    },
    async (req) => patchJourney(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now()),
  );

  app.post(
    '/journeys/:id/validate',
    {
      schema: {
        tags: ['journeys'],
        summary: 'Check whether the draft can be published',
        description: 'Runs every check publishing runs, against your templates, and changes nothing.',
        params: IdParams,
        response: { 200: ValidationResult, ...errors(401, 404) },
      },
    },
    async (req) => validateJourney(db, req.auth.tenantId, req.params.id),
  );

  app.post(
    '/journeys/:id/publish',
    {
      schema: {
        tags: ['journeys'],
        summary: 'Publish the draft as the next version and make it live',
        description:
          'The new version takes new enrollments; enrollments already running stay on the version they entered. A paused journey stays paused. A draft that fails the checks is a 422 whose fields name each problem and its node; nothing is written.',
        params: IdParams,
        response: { 201: Published, ...errors(401, 404, 409, 422) },
      },
    },
    async (req, reply) => {
      try {
        return reply.status(201).send(await publishJourney(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()));
      } catch (err) {
        if (!(err instanceof JourneyProblemsError)) throw err;
        const fields = err.problems.slice(0, 1000).map(({ field, message }) => ({ field, in: 'body', message }));
        return sendError(reply, 422, 'invalid_journey', err.message, fields);
      }
    },
  );

  app.get(
    '/journeys/:id/versions',
    {
      schema: {
        tags: ['journeys'],
        summary: 'List the published versions of a journey, newest first',
        params: IdParams,
        response: { 200: Type.Object({ data: Type.Array(VersionSummary) }), ...errors(401, 404) },
      },
    },
    async (req) => ({ data: await listVersions(db, req.auth.tenantId, req.params.id) }),
  );

  app.get(
    '/journeys/:id/versions/:version',
    { schema: { tags: ['journeys'], summary: 'Get one published version with its definition', params: VersionParams, response: { 200: Version, ...errors(400, 401, 404) } } },
    async (req) => getVersionDetail(db, req.auth.tenantId, req.params.id, req.params.version),
  );

  app.post(
    '/journeys/:id/pause',
    StatusChange('Pause an active journey', 'No new enrollments; open enrollments keep their place and their timers are held until resume. 409 unless the journey is active.'),
    async (req) => pauseJourney(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );

  app.post(
    '/journeys/:id/resume',
    StatusChange('Resume a paused journey', 'Held timers run again; those that passed during the pause fall due at once. 409 unless the journey is paused.'),
    async (req) => resumeJourney(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );

  app.post(
    '/journeys/:id/archive',
    StatusChange(
      'Archive a journey',
      'For good: the journey can no longer be edited, published or enrolled into; its open enrollments are cancelled with their queued messages. 409 if already archived.',
    ),
    async (req) => archiveJourney(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );
};
