import { Type } from 'typebox';
import { BrandVoice, FrequencyCap, QuietHours, SendWindow, TenantSettings } from '../../core/tenant.js';
import { Timestamp, Uuid } from './common.js';

const TimeZone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone, e.g. Europe/Lisbon' });

export const TenantPatchBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    time_zone: Type.Optional(TimeZone),
    send_window: Type.Optional(SendWindow),
    quiet_hours: Type.Optional(QuietHours),
    frequency_caps: Type.Optional(Type.Array(FrequencyCap, { maxItems: 20 })),
    brand_voice: Type.Optional(BrandVoice),
    settings: Type.Optional(TenantSettings),
  },
  { additionalProperties: false },
);

export const TenantCreateBody = Type.Intersect([TenantPatchBody, Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) })]);

export const TenantBody = Type.Object({
  id: Uuid,
  name: Type.String(),
  time_zone: Type.String(),
  send_window: SendWindow,
  quiet_hours: QuietHours,
  frequency_caps: Type.Array(FrequencyCap),
  brand_voice: BrandVoice,
  settings: TenantSettings,
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const ApiKeyBody = Type.Object({
  id: Uuid,
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
  created_at: Timestamp,
  last_used_at: Type.Union([Timestamp, Type.Null()]),
  revoked_at: Type.Union([Timestamp, Type.Null()]),
});

export const NewApiKeyBody = Type.Intersect([ApiKeyBody, Type.Object({ key: Type.String({ description: 'the secret; shown this once and never again' }) })]);
