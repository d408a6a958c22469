import { Type } from 'typebox';
import { DELIVERY_METHODS, RESULT_STATUSES, SESSION_STATUSES } from '../../engine/enrollment-result.js';
import { Timestamp, Uuid } from './common.js';

export const MAX_ENROLL_BATCH = 1000;

export const ENROLLMENT_STATUSES = ['active', 'completed', 'converted', 'exited', 'cancelled', 'failed'] as const;
export const EnrollmentStatus = Type.Enum(ENROLLMENT_STATUSES);

const ContactRef = Type.Object(
  {
    external_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    phone: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'any common format' })),
    email: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
  },
  { additionalProperties: false, description: 'identifiers of an existing contact; one that matches no contact is refused, never created' },
);

const Vars = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown(), {
  description: 'enrollment variables, read by templates as {{ vars.x }} and by conditions as variable: x (up to 32 KiB as JSON)',
});

const Target = Type.Object({ contact_id: Type.Optional(Uuid), contact: Type.Optional(ContactRef), vars: Type.Optional(Vars) }, { additionalProperties: false });

export const EnrollBody = Type.Object(
  {
    contact_id: Type.Optional(Uuid),
    contact: Type.Optional(ContactRef),
    vars: Type.Optional(Vars),
    contacts: Type.Optional(
      Type.Array(Target, { minItems: 1, maxItems: MAX_ENROLL_BATCH, description: `up to ${MAX_ENROLL_BATCH} contacts, each by contact_id or contact; top-level vars apply to all, their own vars win` }),
    ),
  },
  { additionalProperties: false, description: 'one contact (contact_id or contact) or a list (contacts)' },
);

export const EnrollResult = Type.Object({
  enrolled: Type.Array(Type.Object({ contact_id: Uuid, enrollment_id: Uuid })),
  skipped: Type.Array(
    Type.Object({
      contact_id: Uuid,
      reason: Type.Enum(['already_enrolled', 'reentry_not_allowed'], {
        description: 'already_enrolled: the contact is in this journey now (or named twice); reentry_not_allowed: the journey\'s re-entry rule refuses another entry',
      }),
    }),
  ),
});

const summaryFields = {
  id: Uuid,
  journey_id: Uuid,
  version: Type.Integer({ description: 'the journey version it runs on, fixed when it entered' }),
  contact_id: Uuid,
  status: EnrollmentStatus,
  node: Type.Union([Type.String(), Type.Null()], { description: 'the node it is at; null before its first step' }),
  due_at: Type.Union([Timestamp, Type.Null()], { description: 'when it is next looked at; null while its journey is paused or once it ended' }),
  entered_at: Timestamp,
  ended_at: Type.Union([Timestamp, Type.Null()]),
  end_reason: Type.Union([Type.String(), Type.Null()]),
};

export const EnrollmentSummary = Type.Object(summaryFields);

const Step = Type.Object({
  seq: Type.Integer(),
  at: Timestamp,
  node: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String({ description: 'e.g. queued, waiting, waited, branch, split, reply, timeout, blocked, completed, cancelled' }),
  detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
});

const nullableTime = Type.Union([Timestamp, Type.Null()]);
const EnrollmentMessage = Type.Object({
  id: Uuid,
  node: Type.Union([Type.String(), Type.Null()]),
  kind: Type.String({ description: "send; action_webhook for a webhook action; result_webhook for the journey's result webhook, queued when the enrollment ended" }),
  channel: Type.String(),
  status: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  sent_at: nullableTime,
  delivered_at: nullableTime,
  opened_at: nullableTime,
  clicked_at: nullableTime,
  replied_at: nullableTime,
  failed_at: nullableTime,
});

export const Enrollment = Type.Object({
  ...summaryFields,
  paused_due_at: Type.Union([Timestamp, Type.Null()], { description: 'the timer held while the journey is paused' }),
  wait: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'what it waits for besides time' }),
  vars: Type.Record(Type.String(), Type.Unknown()),
  splits: Type.Record(Type.String(), Type.String(), { description: 'variant assigned at each split node' }),
  source: Type.String({ description: 'what enrolled it: api, event, campaign…' }),
  history: Type.Array(Step, { description: 'every step it took, oldest first' }),
  messages: Type.Array(EnrollmentMessage, { description: 'the messages it queued, oldest first' }),
});

/** GET /v1/enrollments/{id}/result, and the `data` of a journey's result webhook. */
export const EnrollmentResultSchema = Type.Object(
  {
    enrollment_id: Uuid,
    journey_id: Uuid,
    enrollment_status: EnrollmentStatus,
    status: Type.Enum(RESULT_STATUSES, {
      description:
        'success: the contact answered; pending: no answer yet and the enrollment still runs; delivered_with_escalation: it ended without an answer after at least one message went out; failed: it ended and nothing went out',
    }),
    deliveryMethod: Type.Union([Type.Enum(DELIVERY_METHODS), Type.Null()], {
      description:
        'how the message that counted went: the one the answer replies to, else the last that went out. direct is WhatsApp session text; a WhatsApp template is smart_template as the first message, emergency_template as the last template when it is the third message or later, escalation_template otherwise; null when nothing went out',
    }),
    sessionStatus: Type.Enum(SESSION_STATUSES, {
      description: "the contact's WhatsApp window: active when they wrote in the 24 hours before the alert, reactivated when it was closed and they answered on WhatsApp, expired otherwise",
    }),
    escalationLevel: Type.Integer({ minimum: 0, description: 'messages that went out after the first and before the answer (follow-ups do not count)' }),
    templateUsed: Type.Union([Type.String(), Type.Null()], { description: 'the last WhatsApp template that went out, up to the message that counted' }),
    userResponse: Type.Union([Type.String(), Type.Null()], { description: "the answer's intent (moving_now), else its button payload, else its text; null without an answer" }),
    messageId: Type.Union([Type.String(), Type.Null()], { description: "the provider's id of the last message that went out (wamid…, SM…)" }),
    maxEscalationReached: Type.Boolean({ description: 'an emergency template, or a voice call after the first message, went out' }),
    followUpSent: Type.Boolean({ description: 'a message went out after the answer' }),
    trigger: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'the properties of the event that started the enrollment' }),
    timestamps: Type.Object({
      triggered: Timestamp,
      first_sent: Type.Union([Timestamp, Type.Null()]),
      responded: Type.Union([Timestamp, Type.Null()]),
      escalations: Type.Array(Timestamp, { description: 'when each alert message after the first went out' }),
      ended: Type.Union([Timestamp, Type.Null()]),
    }),
  },
  { description: 'what an enrollment achieved: the answer, how the message reached the contact, how far it escalated (see docs/recipes/progressive-escalation.md)' },
);
