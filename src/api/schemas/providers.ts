import { Type } from 'typebox';
import { PROVIDER_KINDS } from '../../channels/types.js';
import { SEND_CHANNELS } from '../../core/journey/definition.js';
import { Timestamp, Uuid } from './common.js';

export const ProviderKind = Type.Enum(PROVIDER_KINDS, { description: 'the provider; docs/providers/<kind>.md says what each needs' });
const Channel = Type.Enum(SEND_CHANNELS, { description: "the channel this account sends; one of the provider's channels, its first by default" });

const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '^\\S(.*\\S)?$', description: 'unique in your tenant' });
const Priority = Type.Integer({ minimum: 0, maximum: 1000, description: 'lower goes first; the next account of the channel takes over when one fails (default 100)' });
const Credentials = Type.Record(Type.String(), Type.String({ maxLength: 10_000 }), {
  maxProperties: 50,
  description: 'secrets (auth tokens, API keys, signing secrets): encrypted at rest, never returned; replaced as a whole on PATCH',
});
const Config = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: 100,
  description: 'everything else: sender numbers (from, numbers[]), from_email, phone_number_id, base_url, rate_per_second; replaced as a whole on PATCH',
});

export const ProviderAccountInput = Type.Object(
  {
    name: Name,
    kind: ProviderKind,
    channel: Type.Optional(Channel),
    priority: Type.Optional(Priority),
    enabled: Type.Optional(Type.Boolean({ description: 'a disabled account sends nothing but still receives (default true)' })),
    credentials: Credentials,
    config: Type.Optional(Config),
  },
  { additionalProperties: false },
);

export const ProviderAccountPatch = Type.Object(
  {
    name: Type.Optional(Name),
    channel: Type.Optional(Channel),
    priority: Type.Optional(Priority),
    enabled: Type.Optional(Type.Boolean()),
    credentials: Type.Optional(Credentials),
    config: Type.Optional(Config),
  },
  { additionalProperties: false, description: 'sets the given fields; credentials and config replace the stored ones whole; the kind cannot change' },
);

export const ProviderAccount = Type.Object({
  id: Uuid,
  name: Type.String(),
  kind: ProviderKind,
  channel: Channel,
  priority: Type.Integer(),
  enabled: Type.Boolean(),
  credentials: Type.Record(Type.String(), Type.String(), { description: 'field names with the secret masked: "••••" and its last 4 characters' }),
  config: Type.Record(Type.String(), Type.Unknown()),
  webhook_urls: Type.Union(
    [
      Type.Object({
        shared: Type.String({ description: '<public url>/webhooks/<kind>: the provider routes by the receiving number or phone_number_id' }),
        account: Type.String({ description: '<public url>/webhooks/<kind>/<account id>: for this account alone' }),
      }),
      Type.Null(),
    ],
    { description: "where to point the provider's webhooks (status callbacks, inbound messages); null when it sends none" },
  ),
  created_at: Timestamp,
  updated_at: Timestamp,
});
