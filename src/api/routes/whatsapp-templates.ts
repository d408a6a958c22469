import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  createWhatsAppTemplate,
  deleteWhatsAppTemplate,
  getWhatsAppTemplate,
  listWhatsAppTemplates,
  patchWhatsAppTemplate,
  templateParameterCount,
  type WhatsAppTemplateRow,
} from '../../store/whatsapp-templates.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams, Page, PageQuery } from '../schemas/common.js';
import { TemplateStatus, WhatsAppTemplate, WhatsAppTemplateInput, WhatsAppTemplatePatch } from '../schemas/whatsapp-templates.js';

const withCount = (t: WhatsAppTemplateRow) => ({ ...t, parameter_count: templateParameterCount(t.components) });

/** The registry of WhatsApp templates Meta approved, sent outside the 24-hour window. */
export const whatsappTemplateRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/whatsapp-templates',
    {
      schema: {
        tags: ['whatsapp templates'],
        summary: 'Register a WhatsApp template',
        description:
          "Records a template as it stands at Meta (create it there, in WhatsApp Manager or through your provider). Components are checked against Meta's rules, each problem a 400 naming the field. Name and language are unique together in your tenant (409).",
        body: WhatsAppTemplateInput,
        response: { 201: WhatsAppTemplate, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(withCount(await createWhatsAppTemplate(db, req.auth.tenantId, req.body, req.auth.actor, clock.now()))),
  );

  app.get(
    '/whatsapp-templates',
    {
      schema: {
        tags: ['whatsapp templates'],
        summary: 'List WhatsApp templates, a page at a time',
        querystring: Type.Object(
          { ...PageQuery, name: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })), language: Type.Optional(Type.String({ minLength: 2, maxLength: 12 })), status: Type.Optional(TemplateStatus) },
          { additionalProperties: false },
        ),
        response: { 200: Page(WhatsAppTemplate), ...errors(400, 401) },
      },
    },
    async (req) => {
      const page = await listWhatsAppTemplates(db, req.auth.tenantId, req.query);
      return { ...page, data: page.data.map(withCount) };
    },
  );

  app.get(
    '/whatsapp-templates/:id',
    { schema: { tags: ['whatsapp templates'], summary: 'Get a WhatsApp template', params: IdParams, response: { 200: WhatsAppTemplate, ...errors(401, 404) } } },
    async (req) => withCount(await getWhatsAppTemplate(db, req.auth.tenantId, req.params.id)),
  );

  app.patch(
    '/whatsapp-templates/:id',
    {
      schema: {
        tags: ['whatsapp templates'],
        summary: 'Change a WhatsApp template',
        description: "Sets the given fields, e.g. the status Meta gave it after review; components replace the stored list whole and are checked again.",
        params: IdParams,
        body: WhatsAppTemplatePatch,
        response: { 200: WhatsAppTemplate, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => withCount(await patchWhatsAppTemplate(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now())),
  );

  app.delete(
    '/whatsapp-templates/:id',
    {
      schema: {
        tags: ['whatsapp templates'],
        summary: 'Remove a WhatsApp template from the registry',
        description: 'Rapport stops sending it; the template at Meta is not touched.',
        params: IdParams,
        response: { 200: WhatsAppTemplate, ...errors(401, 404) },
      },
    },
    async (req) => withCount(await deleteWhatsAppTemplate(db, req.auth.tenantId, req.params.id, req.auth.actor)),
  );
};
