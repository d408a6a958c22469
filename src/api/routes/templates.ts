import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { createTemplate, deleteTemplate, getTemplate, listTemplates, patchTemplate } from '../../store/templates.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { Template, TemplateChannel, TemplateInput, TemplatePatch } from '../schemas/template.js';

/** Stored message templates, named by send nodes and rendered with Liquid at send time. */
export const templateRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'Create a message template',
        description: 'Every Liquid field is parsed now: a syntax error or an unknown filter is a 400 naming the field. The name is unique in your tenant (409 otherwise).',
        body: TemplateInput,
        response: { 201: Template, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(await createTemplate(db, req.auth.tenantId, req.body, req.auth.actor, clock.now())),
  );

  app.get(
    '/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'List templates, a page at a time',
        querystring: Type.Object(
          { ...PageQuery, channel: Type.Optional(TemplateChannel), name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Page(Template), ...errors(400, 401) },
      },
    },
    async (req) => listTemplates(db, req.auth.tenantId, req.query),
  );

  app.get(
    '/templates/:id',
    { schema: { tags: ['templates'], summary: 'Get a template', params: IdParams, response: { 200: Template, ...errors(401, 404) } } },
    async (req) => getTemplate(db, req.auth.tenantId, req.params.id),
  );

  app.patch(
    '/templates/:id',
    {
      schema: {
        tags: ['templates'],
        summary: 'Change a template',
        description:
          'Sets the given fields; null clears one. Live journeys send the new content from now on. Renaming is refused (409) while a draft or live journey names the template.',
        params: IdParams,
        body: TemplatePatch,
        response: { 200: Template, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => patchTemplate(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now()),
  );

  app.delete(
    '/templates/:id',
    {
      schema: {
        tags: ['templates'],
        summary: 'Delete a template',
        description: 'Refused (409, naming the journeys) while the draft or live version of a journey that is not archived names it.',
        params: IdParams,
        response: { 200: Template, ...errors(401, 404, 409) },
      },
    },
    async (req) => deleteTemplate(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );
};
