import { Type } from 'typebox';
import { Page, PageQuery, Timestamp, Uuid } from './common.js';

export const ReviewStatus = Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('edited'), Type.Literal('rejected')]);

export const ReviewSubject = Type.Object(
  {
    campaign_id: Type.Optional(Uuid),
    occurrence: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "the campaign occurrence, e.g. its scheduled time" })),
    enrollment_id: Type.Optional(Uuid),
    message_id: Type.Optional(Uuid),
  },
  { additionalProperties: false, description: 'what the draft is for, so the send that waits on it can find it again; {} for none' },
);

export const ReviewTask = Type.Object({
  id: Uuid,
  contact_id: Uuid,
  channel: Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')]),
  draft: Type.String({ description: 'the synthesized message, footer included' }),
  final: Type.Union([Type.String(), Type.Null()], { description: 'the text to send: the draft when approved, the reviewer\'s text when edited; null while pending or when rejected' }),
  sources: Type.Object({
    source: Type.Union([Type.Literal('llm'), Type.Literal('composer')], { description: 'the chat model wrote the draft, or the deterministic composer' }),
    items_used: Type.Array(Type.Object({ id: Uuid, title: Type.String() }), { description: 'the knowledge items the draft draws on, with their titles when it was written' }),
    elements: Type.Array(Type.String(), { description: 'personal elements used: first_name, interest:<x>, topic:<x>, purchase:<x>' }),
    personalization_score: Type.Number({ minimum: 0, maximum: 1 }),
    fallback_reason: Type.Union([Type.String(), Type.Null()], { description: "why the model's answer was set aside" }),
  }),
  rules: Type.Object(
    {
      max_length: Type.Integer({ description: 'characters (code points), footer included' }),
      cta: Type.Object({ text: Type.String(), url: Type.Optional(Type.Union([Type.String(), Type.Null()])) }),
      footer: Type.Union([Type.String(), Type.Null()], { description: 'the opt-out line an edit must end with; null when none is required' }),
    },
    { description: 'what an edit must keep' },
  ),
  subject: ReviewSubject,
  status: ReviewStatus,
  decided_by: Type.Union([Type.String(), Type.Null()], { description: 'the API key (key:<id>) or admin that decided' }),
  decided_at: Type.Union([Timestamp, Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why it was rejected' }),
  created_at: Timestamp,
});

export const ReviewTaskPage = Page(ReviewTask);

export const ReviewListQuery = Type.Object(
  { ...PageQuery, status: Type.Optional(ReviewStatus), contact_id: Type.Optional(Uuid) },
  { additionalProperties: false },
);

export const ReviewEditBody = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 10_000, description: 'the message to send instead, footer included' }) },
  { additionalProperties: false },
);

export const ReviewRejectBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S', description: 'why the draft must not be sent' }) },
  { additionalProperties: false },
);
