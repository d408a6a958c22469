import { Type } from 'typebox';
import { MAX_SYNTHESIS_ITEMS } from '../../engine/synthesize.js';
import { Uuid } from './common.js';
import { ReviewSubject, ReviewTask } from './reviews.js';

const Topic = Type.String({ minLength: 1, maxLength: 100 });

export const SynthesisPreviewBody = Type.Object(
  {
    contact_id: Uuid,
    channel: Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')], { description: 'the channel the message is for' }),
    query: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'free text to search the knowledge base with; without it the topics are searched' })),
    topics: Type.Optional(Type.Array(Topic, { maxItems: 50, description: "topics to search; default the contact's interests, recent topics and purchases" })),
    max_items: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SYNTHESIS_ITEMS, description: 'knowledge items to draw on (default 3)' })),
    max_length: Type.Optional(
      Type.Integer({ minimum: 40, maximum: 10_000, description: 'characters (code points), footer included; default 480 for SMS, 1000 for WhatsApp, 2000 for e-mail' }),
    ),
    cta: Type.Object(
      {
        text: Type.String({ minLength: 1, maxLength: 300, pattern: '\\S', description: 'the call to action, e.g. "Reply YES to book"' }),
        url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000, pattern: '^https?://', description: 'a link written after the text' })),
      },
      { additionalProperties: false },
    ),
    marketing: Type.Optional(Type.Boolean({ description: 'a marketing message on SMS or WhatsApp ends with the opt-out footer (default true)' })),
  },
  { additionalProperties: false },
);

export const SynthesisPreview = Type.Object({
  text: Type.String({ description: 'the message, footer included' }),
  source: Type.Union([Type.Literal('llm'), Type.Literal('composer')], { description: 'the chat model wrote it, or the deterministic composer' }),
  items_used: Type.Array(Type.Object({ id: Uuid, title: Type.String() }), { description: 'the knowledge items the message draws on' }),
  elements: Type.Array(Type.String(), { description: 'personal elements used: first_name, interest:<x>, topic:<x>, purchase:<x>' }),
  personalization_score: Type.Number({ minimum: 0, maximum: 1, description: "share of the contact's available personal elements the message uses" }),
  fallback_reason: Type.Union([Type.String(), Type.Null()], { description: "why the model's answer was set aside; null when it was used or no model is configured" }),
});

export const SynthesisDraftBody = Type.Object(
  { ...SynthesisPreviewBody.properties, subject: Type.Optional(ReviewSubject) },
  { additionalProperties: false },
);

export const SynthesisDraftPending = Type.Object({ review_task: ReviewTask });
