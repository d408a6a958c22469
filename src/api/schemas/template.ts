import { Type } from 'typebox';
import { SEND_CHANNELS } from '../../core/journey/definition.js';
import { Timestamp, Uuid } from './common.js';

export const TemplateChannel = Type.Enum(SEND_CHANNELS, { description: 'the channel the template is written for' });

// Null first: with coerceTypes, ajv would turn null into "" when the string branch comes first.
const nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Optional(Type.Union([Type.Null(), s]));

const WhatsAppTemplate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512, description: 'name of the template approved by Meta' }),
    language: Type.String({ minLength: 2, maxLength: 15, description: 'its language code, e.g. en_US' }),
    parameters: Type.Optional(Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 20, description: 'body parameters, in order (Liquid)' })),
  },
  { additionalProperties: false, description: 'approved WhatsApp template, sent outside the 24-hour customer-service window' },
);

const fields = {
  subject: nullable(Type.String({ maxLength: 1000, description: 'email subject (Liquid)' })),
  body: nullable(Type.String({ maxLength: 20000, description: 'SMS text, WhatsApp session text, voice script, email plain text or webhook body (Liquid)' })),
  html: nullable(Type.String({ maxLength: 500000, description: 'email HTML (Liquid); every output is HTML-escaped unless written with | raw' })),
  whatsapp_template: Type.Optional(Type.Union([Type.Null(), WhatsAppTemplate])),
};

const TemplateName = Type.String({ minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$', description: 'unique in your tenant; send nodes refer to the template by it' });

export const TemplateInput = Type.Object({ name: TemplateName, channel: TemplateChannel, ...fields }, { additionalProperties: false });

export const TemplatePatch = Type.Object(
  { name: Type.Optional(TemplateName), channel: Type.Optional(TemplateChannel), ...fields },
  { additionalProperties: false, description: 'sets the given fields; null clears one' },
);

export const Template = Type.Object({
  id: Uuid,
  name: Type.String(),
  channel: TemplateChannel,
  subject: Type.Union([Type.String(), Type.Null()]),
  body: Type.Union([Type.String(), Type.Null()]),
  html: Type.Union([Type.String(), Type.Null()]),
  whatsapp_template: Type.Union([WhatsAppTemplate, Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});
