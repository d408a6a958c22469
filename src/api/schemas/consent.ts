import { Type } from 'typebox';
import { ALL_TOPICS } from '../../core/consent.js';
import { CONSENT_CHANNELS, CONSENT_TYPES } from '../../core/channels.js';
import { MAX_BATCH } from './contact.js';
import { Timestamp, Uuid } from './common.js';

export const ConsentChannel = Type.Enum(CONSENT_CHANNELS);
export const ConsentType = Type.Enum(CONSENT_TYPES);
export const ConsentStatus = Type.Enum(['granted', 'revoked']);

const consentFields = {
  channel: ConsentChannel,
  topic: Type.Optional(
    Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', default: ALL_TOPICS, description: `what the consent covers, e.g. "marketing"; "${ALL_TOPICS}" is the whole channel` }),
  ),
  status: ConsentStatus,
  type: Type.Optional(Type.Union([ConsentType, Type.Null()], { description: 'required when granted' })),
  source: Type.String({ minLength: 1, maxLength: 100, description: 'how it was given or withdrawn, e.g. web_form, api, sms_keyword' }),
  wording: Type.Optional(Type.Union([Type.String({ maxLength: 10_000, description: 'the text the person agreed to' }), Type.Null()])),
  ip: Type.Optional(Type.Union([Type.String({ maxLength: 45, description: 'IPv4 or IPv6 address it was given from' }), Type.Null()])),
  proof: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown(), { description: 'evidence, e.g. form URL or screenshot id (up to 16 KiB)' }), Type.Null()])),
  recorded_at: Type.Optional(Type.String({ format: 'date-time', description: 'when it was given or withdrawn; defaults to now; at most 5 minutes ahead' })),
};

export const ConsentInput = Type.Object(consentFields, { additionalProperties: false });

export const ConsentBatchBody = Type.Object(
  { records: Type.Array(Type.Object({ contact_id: Uuid, ...consentFields }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);

export const ConsentRecord = Type.Object({
  id: Uuid,
  contact_id: Uuid,
  channel: ConsentChannel,
  topic: Type.String(),
  status: ConsentStatus,
  type: Type.Union([ConsentType, Type.Null()]),
  source: Type.String(),
  wording: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  proof: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  recorded_at: Timestamp,
  created_at: Timestamp,
});

export const ConsentCurrent = Type.Object({
  channel: ConsentChannel,
  topic: Type.String(),
  status: ConsentStatus,
  type: Type.Union([ConsentType, Type.Null()]),
  recorded_at: Timestamp,
});

export const ConsentLedger = Type.Object({
  records: Type.Array(ConsentRecord, { description: 'every record, oldest first' }),
  current: Type.Array(ConsentCurrent, { description: 'the record that stands for each channel and topic' }),
});

export const ConsentBatchResult = Type.Object({ recorded: Type.Integer(), ids: Type.Array(Uuid, { description: 'record ids, in request order' }) });
