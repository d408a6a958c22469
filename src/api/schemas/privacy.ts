import { Type } from 'typebox';
import { Timestamp, Uuid } from './common.js';
import { ConsentCurrent, ConsentRecord } from './consent.js';
import { Contact } from './contact.js';
import { Event } from './event.js';
import { Suppression } from './suppression.js';

export const AuditEntry = Type.Object({
  id: Type.Integer(),
  actor: Type.String({ description: 'key:<api key id> or admin' }),
  action: Type.String({ description: 'e.g. consent.recorded, contact.erased' }),
  entity_type: Type.String(),
  entity_id: Type.Union([Type.String(), Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown(), { description: 'ids and non-personal details only' }),
  created_at: Timestamp,
});

export const AuditPage = Type.Object({
  data: Type.Array(AuditEntry),
  next_before: Type.Union([Type.Integer(), Type.Null()], { description: 'pass as ?before= for the next (older) page; null on the last page' }),
});

export const AuditQuery = Type.Object(
  {
    entity_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    entity_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const ContactDetail = Type.Object({
  ...Contact.properties,
  consent: Type.Array(ConsentCurrent, { description: 'current consent per channel and topic' }),
  recent_events: Type.Array(Event, { description: 'the latest 20, newest first' }),
});

export const Erasure = Type.Object({
  id: Uuid,
  erased: Type.Literal(true),
  counts: Type.Object({
    events: Type.Integer(),
    consent_records: Type.Integer(),
    suppressions_anonymised: Type.Integer({ description: 'suppressions that lost their address and keep blocking it by hash' }),
  }),
});

export const ContactExport = Type.Object({
  exported_at: Timestamp,
  contact: Contact,
  consent: Type.Object({ records: Type.Array(ConsentRecord), current: Type.Array(ConsentCurrent) }),
  events: Type.Array(Event),
  suppressions: Type.Array(Suppression),
  audit: Type.Array(AuditEntry),
});
