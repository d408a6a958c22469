import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { approveReviewTask, editReviewTask, getReviewTask, listReviewTasks, rejectReviewTask } from '../../store/reviews.js';
import type { RouteDeps } from '../app.js';
import { errors, IdParams } from '../schemas/common.js';
import { ReviewEditBody, ReviewListQuery, ReviewRejectBody, ReviewTask, ReviewTaskPage } from '../schemas/reviews.js';

/** Human review of synthesized messages: the queue and the one decision per task; docs/synthesis.md. */
export const reviewRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.get(
    '/reviews',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'List review tasks, oldest first, a page at a time',
        description: 'Filter with ?status=pending for the queue still to decide.',
        querystring: ReviewListQuery,
        response: { 200: ReviewTaskPage, ...errors(400, 401) },
      },
    },
    async (req) => listReviewTasks(db, req.auth.tenantId, req.query),
  );

  app.get(
    '/reviews/:id',
    {
      schema: { tags: ['synthesis'], summary: 'Get a review task: the draft, its sources and the decision', params: IdParams, response: { 200: ReviewTask, ...errors(401, 404) } },
    },
    async (req) => getReviewTask(db, req.auth.tenantId, req.params.id),
  );

  app.post(
    '/reviews/:id/approve',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'Approve the draft as it is',
        description: 'Sets final to the draft. A decision is final: 409 naming status when the task was already decided.',
        params: IdParams,
        response: { 200: ReviewTask, ...errors(401, 404, 409) },
      },
    },
    async (req) => approveReviewTask(db, req.auth.tenantId, req.params.id, req.auth.actor, clock.now()),
  );

  app.post(
    '/reviews/:id/edit',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'Approve the task with your own text',
        description:
          "The text must fit the task's max_length, hold its call to action and end with its opt-out footer (rules); otherwise 400 naming text. 409 naming status when the task was already decided.",
        params: IdParams,
        body: ReviewEditBody,
        response: { 200: ReviewTask, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => editReviewTask(db, req.auth.tenantId, req.params.id, req.body.text, req.auth.actor, clock.now()),
  );

  app.post(
    '/reviews/:id/reject',
    {
      schema: {
        tags: ['synthesis'],
        summary: 'Reject the draft: nothing is sent',
        description: '409 naming status when the task was already decided.',
        params: IdParams,
        body: ReviewRejectBody,
        response: { 200: ReviewTask, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => rejectReviewTask(db, req.auth.tenantId, req.params.id, req.body.reason, req.auth.actor, clock.now()),
  );
};
