import { Type } from 'typebox';
import { MAX_BATCH } from './contact.js';
import { Timestamp, Uuid } from './common.js';

export const EventContactRef = Type.Object(
  {
    external_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    phone: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'any common format' })),
    email: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
  },
  { additionalProperties: false, description: 'finds the contact by external_id, else phone, else email; an unknown one is created' },
);

export const EventInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'e.g. form_submitted, purchase' }),
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'your own id for this event; a repeated delivery with the same id is recorded once' })),
    contact_id: Type.Optional(Uuid),
    contact: Type.Optional(EventContactRef),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'up to 32 KiB as JSON' })),
    occurred_at: Type.Optional(Type.String({ format: 'date-time', description: 'defaults to when it was received' })),
  },
  { additionalProperties: false, description: 'names its contact by contact_id or by contact identifiers' },
);

export const EventBatchBody = Type.Object({ events: Type.Array(EventInput, { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });

export const EventAccepted = Type.Object({
  id: Uuid,
  status: Type.Union([Type.Literal('recorded'), Type.Literal('duplicate')], { description: 'duplicate: an event with this id was recorded before; id is that event' }),
});

export const EventOutcome = Type.Object({
  index: Type.Integer({ description: 'position in the request' }),
  status: Type.Union([Type.Literal('recorded'), Type.Literal('duplicate'), Type.Literal('rejected')]),
  id: Type.Optional(Uuid),
  field: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});

export const EventBatchResult = Type.Object({
  recorded: Type.Integer(),
  duplicate: Type.Integer(),
  rejected: Type.Integer(),
  results: Type.Array(EventOutcome),
});

export const Event = Type.Object({
  id: Uuid,
  contact_id: Uuid,
  name: Type.String(),
  source_event_id: Type.Union([Type.String(), Type.Null()], { description: 'the id the sender gave' }),
  properties: Type.Record(Type.String(), Type.Unknown()),
  occurred_at: Timestamp,
  received_at: Timestamp,
});
