import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { simulateReply } from '../../engine/sandbox-reply.js';
import type { RouteDeps } from '../app.js';
import { errors } from '../schemas/common.js';
import { SandboxReplyInput, SandboxReplyResult } from '../schemas/sandbox.js';

/** Trying journeys out without a phone: replies and button presses typed in, handled as real ones. */
export const sandboxRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock }) => {
  app.post(
    '/sandbox/replies',
    {
      schema: {
        tags: ['sandbox'],
        summary: 'Simulate a reply or button press from a contact',
        description:
          'Records an inbound message as if the contact had answered on the channel, and does everything a provider webhook does with a real one: the contact is found (or created, for an unknown from), the conversation opens (and with it the WhatsApp 24-hour window), the answered message becomes replied, STOP, START and HELP change consent and queue their confirmation, an intent (payload moving_now) is recognised, and journeys waiting for a reply wake. A quick-reply button press is payload plus the button text. ' +
          'It is filed under the built-in sandbox provider, or, when message_id names a message sent through one of your provider accounts, under that account; its provider message id is sandbox-reply:<id>. ' +
          'Errors: 400 naming the field (neither text nor payload, both or neither of contact_id and from, a contact without an address for the channel, message_id on another channel or to another contact); 404 for a contact_id or message_id that is not yours; 409 for a message_id not sent yet, or a contact_id whose number another contact also has (give from instead). ' +
          'Answers 201, or 200 with duplicate true when a reply with this id was recorded before (nothing new is recorded). docs/providers.md#simulating-replies has examples.',
        body: SandboxReplyInput,
        response: { 200: SandboxReplyResult, 201: SandboxReplyResult, ...errors(400, 401, 404, 409) },
      },
    },
    async (req, reply) => {
      const outcome = await simulateReply(db, req.auth.tenantId, req.body, clock.now());
      return reply.status(outcome.duplicate ? 200 : 201).send(outcome);
    },
  );
};
