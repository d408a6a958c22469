import { Type, type TSchema } from 'typebox';
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
  counts: Type.Object(
    {
      events: Type.Integer(),
      consent_records: Type.Integer(),
      messages: Type.Integer({ description: 'outbound messages of every kind, with their status history' }),
      inbound_messages: Type.Integer(),
      conversations: Type.Integer(),
      enrollments: Type.Integer({ description: 'with their steps' }),
      review_tasks: Type.Integer(),
      campaign_recipients: Type.Integer({ description: "campaign recipient rows: the campaigns' totals no longer count the contact" }),
      synthesized_messages: Type.Integer(),
      pending_receipts: Type.Integer({ description: "provider receipts that were waiting for one of the contact's messages" }),
      suppressions_anonymised: Type.Integer({ description: 'suppressions that lost their address and keep blocking it by hash' }),
    },
    { description: 'rows deleted (or anonymised) per table' },
  ),
});

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Json = Type.Unknown();
const Detail = Nullable(Type.Record(Type.String(), Type.Unknown()));

const ExportedMessage = Type.Object({
  id: Uuid,
  kind: Type.String({ description: 'send, reply (a keyword confirmation), action_webhook or result_webhook' }),
  channel: Type.String(),
  topic: Nullable(Type.String()),
  transactional: Type.Boolean(),
  status: Type.String(),
  reason: Nullable(Type.String()),
  journey_id: Nullable(Uuid),
  enrollment_id: Nullable(Uuid),
  node: Nullable(Type.String()),
  content: Json,
  rendered: Json,
  to_address: Nullable(Type.String()),
  provider: Nullable(Type.String()),
  provider_message_id: Nullable(Type.String()),
  cost: Nullable(Type.String()),
  currency: Nullable(Type.String()),
  created_at: Timestamp,
  sent_at: Nullable(Timestamp),
  delivered_at: Nullable(Timestamp),
  opened_at: Nullable(Timestamp),
  clicked_at: Nullable(Timestamp),
  replied_at: Nullable(Timestamp),
  failed_at: Nullable(Timestamp),
  status_history: Type.Array(Type.Object({ status: Type.String(), at: Timestamp, detail: Detail })),
  synthesis: Nullable(
    Type.Object(
      {
        source: Type.String(),
        items: Json,
        elements: Type.Array(Type.String()),
        personalization_score: Type.Number(),
        fallback_reason: Nullable(Type.String()),
        variant: Nullable(Type.String()),
        tone: Nullable(Type.String()),
        pulse_week: Nullable(Type.String()),
        campaign_id: Nullable(Uuid),
        occurrence_id: Nullable(Uuid),
        created_at: Timestamp,
      },
      { description: 'for a synthesized message: the knowledge items and personal elements it was built from' },
    ),
  ),
});

const ExportedInbound = Type.Object({
  id: Uuid,
  conversation_id: Uuid,
  channel: Type.String(),
  provider: Type.String(),
  provider_message_id: Type.String(),
  from_address: Type.String(),
  to_address: Type.String(),
  text: Nullable(Type.String()),
  payload: Nullable(Type.String()),
  keyword: Nullable(Type.String()),
  intent: Nullable(Type.String()),
  media: Json,
  in_reply_to: Nullable(Uuid),
  received_at: Timestamp,
});

const ExportedConversation = Type.Object({
  id: Uuid,
  channel: Type.String(),
  status: Type.String(),
  assignee: Nullable(Type.String()),
  last_inbound_at: Nullable(Timestamp),
  last_outbound_at: Nullable(Timestamp),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const ExportedEnrollment = Type.Object({
  id: Uuid,
  journey_id: Uuid,
  journey_name: Type.String(),
  version: Type.Integer(),
  status: Type.String(),
  node: Nullable(Type.String()),
  due_at: Nullable(Timestamp),
  vars: Type.Record(Type.String(), Type.Unknown()),
  memo: Type.Record(Type.String(), Type.Unknown()),
  source: Type.String(),
  entered_at: Timestamp,
  ended_at: Nullable(Timestamp),
  end_reason: Nullable(Type.String()),
  steps: Type.Array(Type.Object({ seq: Type.Integer(), at: Timestamp, node: Nullable(Type.String()), outcome: Type.String(), detail: Detail })),
});

const ExportedReviewTask = Type.Object({
  id: Uuid,
  channel: Type.String(),
  draft: Type.String(),
  final: Nullable(Type.String()),
  sources: Json,
  rules: Json,
  subject: Json,
  status: Type.String(),
  decided_by: Nullable(Type.String()),
  decided_at: Nullable(Timestamp),
  reason: Nullable(Type.String()),
  created_at: Timestamp,
});

const ExportedCampaignMembership = Type.Object({
  campaign_id: Uuid,
  campaign_name: Type.String(),
  occurrence_key: Type.String(),
  outcome: Type.String({ description: 'queued (a message), enrolled (into its journey) or skipped' }),
  reason: Nullable(Type.String()),
  message_id: Nullable(Uuid),
  enrollment_id: Nullable(Uuid),
  created_at: Timestamp,
});

export const ContactExport = Type.Object({
  exported_at: Timestamp,
  contact: Contact,
  consent: Type.Object({ records: Type.Array(ConsentRecord), current: Type.Array(ConsentCurrent) }),
  events: Type.Array(Event),
  messages: Type.Array(ExportedMessage, { description: 'every message to the contact, oldest first, with its status history' }),
  inbound_messages: Type.Array(ExportedInbound, { description: 'what the contact sent: replies, keywords, button presses' }),
  conversations: Type.Array(ExportedConversation),
  enrollments: Type.Array(ExportedEnrollment, { description: 'journeys the contact went through, with each step' }),
  review_tasks: Type.Array(ExportedReviewTask, { description: 'drafts written for the contact and what reviewers made of them' }),
  campaigns: Type.Array(ExportedCampaignMembership, { description: 'campaign occurrences that reached or skipped the contact' }),
  suppressions: Type.Array(Suppression),
  audit: Type.Array(AuditEntry),
});
