import { Type } from 'typebox';
import { KEYWORD_ACTIONS } from '../../core/keywords.js';
import { SANDBOX_REPLY_CHANNELS, SANDBOX_REPLY_LIMITS } from '../../engine/sandbox-reply.js';
import { Uuid } from './common.js';

const EXAMPLE_CONTACT = '0195f4a2-7c1e-7d3a-9b2f-3c4d5e6f7a8b';
const EXAMPLE_MESSAGE = '0195f4a3-1a2b-7c3d-8e4f-5a6b7c8d9e0f';

export const SandboxReplyInput = Type.Object(
  {
    channel: Type.Enum(SANDBOX_REPLY_CHANNELS, { description: 'the channel the contact answers on' }),
    contact_id: Type.Optional(Type.String({ format: 'uuid', description: 'the contact replying, from its address for the channel; or give from' })),
    from: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: SANDBOX_REPLY_LIMITS.from,
        description: 'the address replying: a phone number in international format (+14155550123) for sms, whatsapp and voice, an e-mail address for email. An unknown one becomes a contact, as with a real reply',
      }),
    ),
    text: Type.Optional(Type.String({ minLength: 1, maxLength: SANDBOX_REPLY_LIMITS.text, description: "what the contact typed; for a button press, the button's text" })),
    payload: Type.Optional(
      Type.String({ minLength: 1, maxLength: SANDBOX_REPLY_LIMITS.payload, description: 'the payload of the quick-reply button pressed (an intent name such as moving_now), a list row id, or the digits pressed on a call' }),
    ),
    message_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'the Rapport message being answered: yours, sent, on the same channel and to this contact. Without it the reply answers the latest message sent to the contact on the channel in the last 7 days, as a reply without a reference does',
      }),
    ),
    id: Type.Optional(
      Type.String({ minLength: 1, maxLength: SANDBOX_REPLY_LIMITS.id, description: 'your id for this reply: sending it again records nothing new and answers duplicate true. Default: a new one each time' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'names the contact by contact_id or from, and carries text, payload or both',
    examples: [
      // A quick-reply button pressed on WhatsApp, answering a named message, with an id to retry safely.
      { channel: 'whatsapp', contact_id: EXAMPLE_CONTACT, payload: 'moving_now', text: 'Moving now', message_id: EXAMPLE_MESSAGE, id: 'try-1' },
      // STOP by SMS from a number: consent on sms is revoked and the confirmation queued.
      { channel: 'sms', from: '+14155550123', text: 'STOP' },
    ],
  },
);

export const SandboxReplyResult = Type.Object(
  {
    id: Uuid,
    contact_id: Uuid,
    duplicate: Type.Boolean({ description: 'true when a reply with this id was recorded before; the other fields are that one' }),
    created_contact: Type.Optional(Type.Boolean({ description: 'true when from was an address of no contact, which is now one' })),
    keyword: Type.Optional(
      Type.Enum(
        KEYWORD_ACTIONS.filter((a) => a !== 'none'),
        { description: 'what keyword handling made of it: opt_out revokes consent on the channel, opt_in grants it, help answers; intent tags the reply. Absent for an ordinary reply' },
      ),
    ),
    intent: Type.Optional(Type.String({ description: 'the named intent (moving_now…), from the payload or the text' })),
    replied_to: Type.Optional(Type.String({ format: 'uuid', description: 'the message this one answers, now marked replied (a STOP, START or HELP answers it without marking it)' })),
    confirmation_id: Type.Optional(Type.String({ format: 'uuid', description: 'the confirmation queued in answer to STOP, START or HELP on sms or whatsapp; the worker sends it' })),
  },
  {
    examples: [{ id: '0195f4a3-4b5c-7d6e-8f70-8192a3b4c5d6', contact_id: EXAMPLE_CONTACT, duplicate: false, keyword: 'intent', intent: 'moving_now', replied_to: EXAMPLE_MESSAGE }],
  },
);
