import { Type } from 'typebox';
import { SEND_CHANNELS } from '../../core/journey/definition.js';
import { Timestamp, Uuid } from './common.js';

export const MESSAGE_STATUSES = [
  'queued',
  'sending',
  'sent',
  'delivered',
  'read',
  'opened',
  'clicked',
  'replied',
  'failed',
  'bounced',
  'undeliverable',
  'suppressed',
  'cancelled',
] as const;

export const MessageStatus = Type.Enum(MESSAGE_STATUSES);
export const MessageChannel = Type.Enum(SEND_CHANNELS);

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const nullableTime = nullable(Timestamp);

const fields = {
  id: Uuid,
  contact_id: Uuid,
  enrollment_id: nullable(Uuid),
  journey_id: nullable(Uuid),
  node: nullable(Type.String()),
  kind: Type.String({ description: 'send, or action_webhook for a webhook action' }),
  channel: MessageChannel,
  topic: nullable(Type.String({ description: 'the consent topic it was checked against' })),
  transactional: Type.Boolean(),
  status: MessageStatus,
  reason: nullable(Type.String({ description: 'why it was suppressed, failed or cancelled' })),
  to_address: nullable(Type.String()),
  provider: nullable(Type.String()),
  provider_message_id: nullable(Type.String()),
  cost: nullable(Type.Number()),
  currency: nullable(Type.String()),
  attempts: Type.Integer(),
  due_at: Type.Union([Timestamp, Type.Null()], { description: 'when the dispatcher may take it; null once it left the queue' }),
  created_at: Timestamp,
  updated_at: Timestamp,
  sent_at: nullableTime,
  delivered_at: nullableTime,
  opened_at: nullableTime,
  clicked_at: nullableTime,
  replied_at: nullableTime,
  failed_at: nullableTime,
};

export const Message = Type.Object(fields);

export const MessageDetail = Type.Object({
  ...fields,
  content: Type.Unknown({ description: 'what the send node asked for, rendered at dispatch' }),
  rendered: Type.Unknown({ description: 'what was sent, once rendered; null before' }),
  timeline: Type.Array(
    Type.Object({ status: Type.String(), at: Timestamp, detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]) }),
    { description: 'every status it went through, oldest first' },
  ),
});
