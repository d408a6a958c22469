import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import {
  campaignTotals,
  changeCampaignStatus,
  createCampaign,
  deleteCampaign,
  getCampaign,
  listCampaigns,
  listRecipients,
  patchCampaign,
  recipientsCsv,
  type RecipientState,
} from '../../store/campaigns.js';
import { listCampaignRuns } from '../../store/campaign-runs.js';
import type { RouteDeps } from '../app.js';
import { CampaignRunsPage, CampaignRunsQuery } from '../schemas/campaign-runs.js';
import { errors, IdParams, Page } from '../schemas/common.js';
import { Campaign, CampaignInput, CampaignListQuery, CampaignPatch, CampaignWithTotals, Recipient, RecipientsQuery } from '../schemas/campaigns.js';

/** Campaigns, their lifecycle and their results; docs/campaigns.md. */
export const campaignRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/campaigns',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Create a campaign, as a draft',
        description: 'Nothing is sent until it is started. The audience is one of segment_id, definition, contact_ids; the action one of send, journey_id (400 naming the field). The name is unique in your tenant (409).',
        body: CampaignInput,
        response: { 201: Campaign, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(await createCampaign(db, req.auth.tenantId, req.body, req.auth.actor, clock.now())),
  );

  app.get(
    '/campaigns',
    { schema: { tags: ['campaigns'], summary: 'List campaigns, a page at a time', querystring: CampaignListQuery, response: { 200: Page(Campaign), ...errors(400, 401) } } },
    async (req) => listCampaigns(db, req.auth.tenantId, req.query),
  );

  app.get(
    '/campaigns/:id',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Get a campaign with its totals',
        description: 'totals counts its recipients by their state now (see GET /campaigns/{id}/recipients).',
        params: IdParams,
        response: { 200: CampaignWithTotals, ...errors(401, 404) },
      },
    },
    async (req) => {
      const c = await getCampaign(db, req.auth.tenantId, req.params.id);
      return { ...c, totals: await campaignTotals(db, req.auth.tenantId, c.id) };
    },
  );

  app.patch(
    '/campaigns/:id',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Change a campaign that has not fired',
        description: '409 naming status unless it is draft or scheduled.',
        params: IdParams,
        body: CampaignPatch,
        response: { 200: Campaign, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => patchCampaign(db, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now()),
  );

  app.delete(
    '/campaigns/:id',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Delete a draft, completed or cancelled campaign',
        description: 'With its recipients. 409 naming status while it is scheduled, running or paused: stop it first.',
        params: IdParams,
        response: { 200: Campaign, ...errors(401, 404, 409) },
      },
    },
    async (req) => deleteCampaign(db, req.auth.tenantId, req.params.id, req.auth.actor),
  );

  const lifecycle: [action: 'start' | 'pause' | 'resume' | 'stop', summary: string, description: string][] = [
    ['start', 'Start a draft campaign', 'It becomes scheduled and fires at its schedule\'s first occurrence (at once when it has none). 409 naming status unless it is a draft; 409 naming action.journey_id unless its journey is active.'],
    ['pause', 'Pause a scheduled or running campaign', 'No further recipients are written, and its messages still in the outbox are held until resume. 409 naming status otherwise.'],
    ['resume', 'Resume a paused campaign', 'Held messages are spaced again by the throttle from now (recipient-local ones go back to their local times; those whose time passed are cancelled), and the audience is written on from where it stopped. 409 naming status unless it is paused.'],
    ['stop', 'Stop a campaign for good', 'It becomes cancelled; its messages still in the outbox are cancelled. Enrollments already made stay in their journey. 409 naming status if it has completed or was cancelled.'],
  ];
  for (const [action, summary, description] of lifecycle) {
    app.post(
      `/campaigns/:id/${action}`,
      { schema: { tags: ['campaigns'], summary, description, params: IdParams, response: { 200: Campaign, ...errors(401, 404, 409) } } },
      async (req) => changeCampaignStatus(db, req.auth.tenantId, req.params.id, action, req.auth.actor, clock.now()),
    );
  }

  app.get(
    '/campaigns/:id/runs',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Results per run: totals and delivery, read and response rates',
        description:
          'One row per occurrence, newest first: its recipients by state, and the delivery (delivered / sent), read (read / delivered) and response (replied within 48 hours of sending / delivered) rates of the messages it sent. A pulse adds the mean personalization score and, with a tone test, each arm and which leads; tone_test sums the test over every run.',
        params: IdParams,
        querystring: CampaignRunsQuery,
        response: { 200: CampaignRunsPage, ...errors(400, 401, 404) },
      },
    },
    async (req) => listCampaignRuns(db, req.auth.tenantId, req.params.id, req.query),
  );

  app.get(
    '/campaigns/:id/recipients',
    {
      schema: {
        tags: ['campaigns'],
        summary: 'Who a campaign reached and where each stands',
        description:
          'In contact order. state is read now from the message (queued, sent, delivered, opened, clicked, answered, failed, opted_out, cancelled) or the enrollment (pending, converted, or the best state of the messages its journey sent), or skipped with a reason. ?format=csv streams every recipient as CSV with a header row.',
        params: IdParams,
        querystring: RecipientsQuery,
        response: { 200: Type.Union([Page(Recipient), Type.String({ description: 'text/csv' })]), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const { tenantId } = req.auth;
      const state = req.query.state as RecipientState | undefined;
      if (req.query.format !== 'csv') return listRecipients(db, tenantId, req.params.id, { ...req.query, state });
      const c = await getCampaign(db, tenantId, req.params.id);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="campaign-${c.id}-recipients.csv"`)
        // Fastify sends a stream as it is, without the response schema; the type provider cannot say so.
        .send(Readable.from(recipientsCsv(db, tenantId, c.id, state)) as unknown as string);
    },
  );
};
