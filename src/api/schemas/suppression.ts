import { Type } from 'typebox';
import { SUPPRESSION_CHANNELS } from '../../core/suppression.js';
import { Timestamp, Uuid } from './common.js';

export const SuppressionChannel = Type.Enum(SUPPRESSION_CHANNELS);

export const SuppressionInput = Type.Object(
  {
    channel: SuppressionChannel,
    address: Type.String({ minLength: 1, maxLength: 320, description: 'email for email, phone number for sms, whatsapp and voice, either for all' }),
    reason: Type.String({ minLength: 1, maxLength: 200, description: 'e.g. unsubscribed, bounced, complaint, legal' }),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'where it came from; defaults to api' })),
  },
  { additionalProperties: false },
);

export const Suppression = Type.Object({
  id: Uuid,
  channel: SuppressionChannel,
  address: Type.Union([Type.String(), Type.Null()], { description: 'null once the contact was erased; the entry still blocks the address' }),
  reason: Type.String(),
  source: Type.String(),
  created_at: Timestamp,
});
