import { Type } from 'typebox';
import { Timestamp, Uuid } from './common.js';

const nullableString = (opts: Record<string, unknown>) => Type.Optional(Type.Union([Type.String(opts), Type.Null()]));

export const ContactInput = Type.Object(
  {
    external_id: nullableString({ maxLength: 255, description: 'your own id for this person' }),
    name: nullableString({ maxLength: 255 }),
    phone: nullableString({ maxLength: 40, description: 'any common format; stored as E.164 (numbers without + use the tenant default_country)' }),
    email: nullableString({ maxLength: 320 }),
    whatsapp: nullableString({ maxLength: 40, description: 'WhatsApp number, stored as E.164' }),
    time_zone: nullableString({ maxLength: 64, description: 'IANA zone, e.g. America/Chicago' }),
    locale: nullableString({ maxLength: 35, description: 'BCP 47 tag, e.g. pt-BR' }),
    attributes: Type.Optional(Type.Union([Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown()), Type.Null()])),
    tags: Type.Optional(Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 100 }), Type.Null()])),
  },
  { additionalProperties: false },
);

export const Contact = Type.Object({
  id: Uuid,
  external_id: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  phone: Type.Union([Type.String(), Type.Null()]),
  email: Type.Union([Type.String(), Type.Null()]),
  whatsapp: Type.Union([Type.String(), Type.Null()]),
  time_zone: Type.Union([Type.String(), Type.Null()]),
  locale: Type.Union([Type.String(), Type.Null()]),
  attributes: Type.Record(Type.String(), Type.Unknown()),
  tags: Type.Array(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const MAX_BATCH = 10_000;

export const BulkUpsertBody = Type.Object(
  { contacts: Type.Array(ContactInput, { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);

export const RowOutcome = Type.Object({
  index: Type.Integer({ description: 'position in the request' }),
  status: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('rejected')]),
  id: Type.Optional(Uuid),
  field: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});

export const BulkUpsertResult = Type.Object({
  created: Type.Integer(),
  updated: Type.Integer(),
  rejected: Type.Integer(),
  results: Type.Array(RowOutcome),
});
