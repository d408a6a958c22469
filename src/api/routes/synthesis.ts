import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { synthesizeFor, synthesizeForSend } from '../../engine/synthesize.js';
import { getTenant } from '../../store/tenants.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { SynthesisDraftBody, SynthesisDraftPending, SynthesisPreview, SynthesisPreviewBody } from '../schemas/synthesis.js';

/** Personalized messages from a contact's profile and the tenant's knowledge base; docs/synthesis.md. */
export const synthesisRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock, llm = null, embeddings = null }) => {
  app.post(
    '/synthesis/preview',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'Synthesize a personalized message for one contact, without sending it',
        description:
          "Finds knowledge items for the contact (the query, else its interests), writes the message with the configured chat model, checks the answer and falls back to the deterministic composer when a check fails. Nothing is written. 404 for a contact not in your tenant; 400 when max_length cannot hold the call to action and footer.",
        body: SynthesisPreviewBody,
        response: { 200: SynthesisPreview, ...errors(400, 401, 404) },
      },
    },
    async (req) => {
      const tenant = await getTenant(db, req.auth.tenantId);
      const { contact_id, ...opts } = req.body;
      return synthesizeFor(db, tenant, contact_id, opts, { llm, embeddings, now: clock.now() });
    },
  );

  app.post(
    '/synthesis/drafts',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'Synthesize a message to send, held for human review when the tenant requires it',
        description:
          'The same body as the preview, plus an optional subject naming what the message is for. With settings.synthesis_review on, the draft is stored as a pending review task (201); otherwise the message is returned as the preview returns it (200). Nothing is sent either way.',
        body: SynthesisDraftBody,
        response: { 200: SynthesisPreview, 201: SynthesisDraftPending, ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const tenant = await getTenant(db, req.auth.tenantId);
      const { contact_id, subject, ...opts } = req.body;
      const r = await synthesizeForSend(db, tenant, contact_id, opts, { llm, embeddings, now: clock.now() }, subject, req.auth.actor);
      if (r.status === 'pending_review') return reply.status(201).send({ review_task: r.review_task });
      const { status: _ready, ...message } = r;
      return reply.status(200).send(message);
    },
  );
};
