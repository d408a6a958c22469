import { Type } from 'typebox';
import { WHATSAPP_TEMPLATE_CATEGORIES, WHATSAPP_TEMPLATE_STATUSES } from '../../store/whatsapp-templates.js';
import { Timestamp, Uuid } from './common.js';

const Name = Type.String({ minLength: 1, maxLength: 512, description: "the template's name at Meta: lower case letters, digits and underscores" });
const Language = Type.String({ minLength: 2, maxLength: 12, description: 'its language code as Meta writes it: en, en_US, pt_BR…' });
export const TemplateCategory = Type.Enum(WHATSAPP_TEMPLATE_CATEGORIES);
export const TemplateStatus = Type.Enum(WHATSAPP_TEMPLATE_STATUSES, { description: 'only approved templates are sent (default approved)' });

// Meta names more fields than are checked here (example, otp_type, flow_id…): they are kept as given.
const Button = Type.Object(
  {
    type: Type.String({ description: 'QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW… (any case)' }),
    text: Type.Optional(Type.String({ description: 'at most 25 characters' })),
    url: Type.Optional(Type.String({ description: 'URL buttons: may end with {{1}}, filled at send time' })),
    phone_number: Type.Optional(Type.String({ description: 'PHONE_NUMBER buttons: E.164' })),
  },
  { additionalProperties: true },
);

const Component = Type.Object(
  {
    type: Type.String({ description: 'HEADER, BODY, FOOTER or BUTTONS (any case)' }),
    format: Type.Optional(Type.String({ description: 'HEADER: TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION' })),
    text: Type.Optional(Type.String({ description: 'HEADER (60, one {{1}} at most), BODY (1024, {{1}}…{{n}} without gaps), FOOTER (60, none)' })),
    buttons: Type.Optional(Type.Array(Button, { description: '1 to 10; at most 2 URL and 1 PHONE_NUMBER' })),
  },
  { additionalProperties: true },
);

const Components = Type.Array(Component, { minItems: 1, maxItems: 10, description: "the template's components as Meta describes them; one BODY is required" });

// Null first: with coerceTypes, ajv would turn null into "" when the string branch comes first.
const ProviderTemplateId = Type.Union([Type.Null(), Type.String({ minLength: 1, maxLength: 200 })], { description: "the provider's id for it: Meta's template id, Twilio's ContentSid (HX…)" });

export const WhatsAppTemplateInput = Type.Object(
  {
    name: Name,
    language: Language,
    category: TemplateCategory,
    components: Components,
    status: Type.Optional(TemplateStatus),
    provider_template_id: Type.Optional(ProviderTemplateId),
  },
  { additionalProperties: false },
);

export const WhatsAppTemplatePatch = Type.Object(
  {
    name: Type.Optional(Name),
    language: Type.Optional(Language),
    category: Type.Optional(TemplateCategory),
    components: Type.Optional(Components),
    status: Type.Optional(TemplateStatus),
    provider_template_id: Type.Optional(ProviderTemplateId),
  },
  { additionalProperties: false, description: 'sets the given fields; components replace the stored list whole' },
);

export const WhatsAppTemplate = Type.Object({
  id: Uuid,
  name: Type.String(),
  language: Type.String(),
  category: TemplateCategory,
  components: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  status: TemplateStatus,
  provider_template_id: Type.Union([Type.String(), Type.Null()]),
  parameter_count: Type.Integer({ description: 'body parameters a send fills ({{1}}…{{n}})' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
