import { NotFoundError } from '../core/errors.js';
import { WHATSAPP_WINDOW_MS, type EnrollmentStatus } from '../core/journey/engine.js';
import type { Queryable } from '../store/db.js';

/**
 * What an enrollment achieved, in the shape the caller of an alert wants back (the progressive
 * escalation recipe, docs/recipes/progressive-escalation.md): did the person answer, how did the
 * message reach them, how far did it escalate. It reads only what happened — the enrollment, the
 * messages it sent and the contact's replies — never the journey's nodes, so it holds for any
 * journey, edited copies of the recipe included.
 *
 * The rules, applied to the enrollment's sends that went out (status sent, delivered, read,
 * opened, clicked or replied; queued, blocked, cancelled and failed ones did not reach anyone):
 *
 *   - the response is the contact's first inbound message, on any channel, received after the
 *     enrollment entered and not after it ended; STOP, START and HELP are not responses;
 *   - alert messages are those queued before the response, or named by it (all of them without
 *     one); follow-ups those queued from the moment it came;
 *   - each alert message has a method: voice_call, sms, email, direct (WhatsApp session text),
 *     or for a WhatsApp template smart_template when it is the first message, emergency_template
 *     when it is the last template and the third message or later, escalation_template otherwise;
 *   - deliveryMethod is the method of the message the response answers (the one the reply names,
 *     else the last alert message), or without a response of the last alert message;
 *   - status: success with a response; pending while the enrollment runs without one;
 *     delivered_with_escalation when it ended without one after at least one message went out;
 *     failed when it ended and nothing went out;
 *   - sessionStatus, of the WhatsApp customer-service window: active when the contact wrote on
 *     WhatsApp in the 24 hours before the enrollment entered, reactivated when it was closed and
 *     the response came on WhatsApp, expired otherwise;
 *   - escalationLevel is the number of alert messages after the first; maxEscalationReached is
 *     true when an emergency template, or a voice call after the first message, went out.
 */

export const RESULT_STATUSES = ['success', 'delivered_with_escalation', 'pending', 'failed'] as const;
export const DELIVERY_METHODS = ['direct', 'smart_template', 'escalation_template', 'emergency_template', 'voice_call', 'sms', 'email'] as const;
export const SESSION_STATUSES = ['active', 'expired', 'reactivated'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];
export type DeliveryMethod = (typeof DELIVERY_METHODS)[number];
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** One of the enrollment's sends (messages of kind 'send'). */
export interface ResultMessage {
  id: string;
  channel: string;
  status: string;
  /** What was sent: a WhatsApp template has `whatsapp_template.name`. Null until sent. */
  rendered: Record<string, unknown> | null;
  provider_message_id: string | null;
  created_at: Date;
  sent_at: Date | null;
}

/** An inbound message from the contact. */
export interface ResultInbound {
  channel: string;
  text: string | null;
  payload: string | null;
  /** The keyword action (opt_out, opt_in, help, intent), null for plain text. */
  keyword: string | null;
  intent: string | null;
  /** Rapport's message it answers, when known. */
  in_reply_to: string | null;
  received_at: Date;
}

export interface ResultFacts {
  enrollment: {
    id: string;
    journey_id: string;
    status: EnrollmentStatus;
    entered_at: Date;
    ended_at: Date | null;
    vars: Record<string, unknown>;
  };
  /** In the order they were queued (ties: the order of the step that queued them). */
  messages: readonly ResultMessage[];
  /** The contact's inbound messages from the moment the enrollment entered. */
  inbound: readonly ResultInbound[];
  /** When the contact last wrote on WhatsApp before the enrollment entered; null when never. */
  whatsappInboundBefore: Date | null;
}

export interface EnrollmentResult {
  enrollment_id: string;
  journey_id: string;
  /** The enrollment's own status: active, completed, converted, exited, cancelled or failed. */
  enrollment_status: EnrollmentStatus;
  status: ResultStatus;
  deliveryMethod: DeliveryMethod | null;
  sessionStatus: SessionStatus;
  escalationLevel: number;
  templateUsed: string | null;
  userResponse: string | null;
  messageId: string | null;
  maxEscalationReached: boolean;
  followUpSent: boolean;
  /** The properties of the event that started the enrollment, as the caller sent them. */
  trigger: Record<string, unknown> | null;
  timestamps: {
    triggered: string;
    first_sent: string | null;
    responded: string | null;
    escalations: string[];
    ended: string | null;
  };
}

const WENT: ReadonlySet<string> = new Set(['sent', 'delivered', 'read', 'opened', 'clicked', 'replied']);
/** Compliance keywords are recorded apart from replies and wake no journey; they answer nothing. */
const NOT_RESPONSES: ReadonlySet<string> = new Set(['opt_out', 'opt_in', 'help']);

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
const ms = (d: Date) => new Date(d).getTime();

function templateOf(m: ResultMessage): string | null {
  const t = m.rendered?.whatsapp_template;
  return m.channel === 'whatsapp' && t && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' ? (t as { name: string }).name : null;
}

/** The result of one enrollment from plain rows; see the rules at the top of this file. */
export function enrollmentResult(f: ResultFacts): EnrollmentResult {
  const e = f.enrollment;
  const entered = ms(e.entered_at);
  const until = e.ended_at ? ms(e.ended_at) : Infinity;
  const responses = f.inbound
    .filter((m) => !NOT_RESPONSES.has(m.keyword ?? '') && ms(m.received_at) >= entered && ms(m.received_at) <= until)
    .sort((a, b) => ms(a.received_at) - ms(b.received_at));
  const response = responses[0] ?? null;

  // A stable sort: messages one step queued together (the emergency template, then the call)
  // keep the order they are given in, which the loader takes from their time-ordered ids.
  const went = f.messages
    .filter((m) => m.channel !== 'webhook' && WENT.has(m.status) && m.sent_at)
    .sort((a, b) => ms(a.created_at) - ms(b.created_at) || ms(a.sent_at!) - ms(b.sent_at!));
  // What was queued once the answer was in (the same instant included: the step it woke) follows up.
  const before = (m: ResultMessage) => !response || ms(m.created_at) < ms(response.received_at) || m.id === response.in_reply_to;
  const alert = went.filter(before);
  const followUps = went.filter((m) => !before(m));

  let lastTemplate = -1;
  for (let i = 0; i < alert.length; i++) if (templateOf(alert[i]!)) lastTemplate = i;
  const method = (i: number): DeliveryMethod => {
    const m = alert[i]!;
    if (m.channel === 'voice') return 'voice_call';
    if (m.channel === 'sms') return 'sms';
    if (m.channel === 'email') return 'email';
    if (!templateOf(m)) return 'direct';
    if (i === 0) return 'smart_template';
    return i >= 2 && i === lastTemplate ? 'emergency_template' : 'escalation_template';
  };

  const answeredAt = response?.in_reply_to ? alert.findIndex((m) => m.id === response.in_reply_to) : -1;
  const deciding = answeredAt >= 0 ? answeredAt : alert.length - 1;
  let templateUsed: string | null = null;
  for (let i = 0; i <= deciding; i++) templateUsed = templateOf(alert[i]!) ?? templateUsed;
  const methods = alert.map((_, i) => method(i));

  const sinceWrote = f.whatsappInboundBefore === null ? null : entered - ms(f.whatsappInboundBefore);
  const windowOpen = sinceWrote !== null && sinceWrote >= 0 && sinceWrote < WHATSAPP_WINDOW_MS;
  const sessionStatus: SessionStatus = windowOpen ? 'active' : responses.some((m) => m.channel === 'whatsapp') ? 'reactivated' : 'expired';

  const status: ResultStatus = response ? 'success' : e.status === 'active' ? 'pending' : alert.length ? 'delivered_with_escalation' : 'failed';
  const lastWent = [...went].sort((a, b) => ms(a.sent_at!) - ms(b.sent_at!) || ms(a.created_at) - ms(b.created_at)).at(-1);
  const trigger = e.vars.trigger;

  return {
    enrollment_id: e.id,
    journey_id: e.journey_id,
    enrollment_status: e.status,
    status,
    deliveryMethod: deciding >= 0 ? methods[deciding]! : null,
    sessionStatus,
    escalationLevel: Math.max(0, alert.length - 1),
    templateUsed,
    userResponse: response ? (response.intent ?? response.payload ?? response.text ?? null) : null,
    messageId: lastWent?.provider_message_id ?? null,
    maxEscalationReached: methods.some((m, i) => m === 'emergency_template' || (m === 'voice_call' && i > 0)),
    followUpSent: followUps.length > 0,
    trigger: trigger !== null && typeof trigger === 'object' && !Array.isArray(trigger) ? (trigger as Record<string, unknown>) : null,
    timestamps: {
      triggered: iso(e.entered_at)!,
      first_sent: iso(alert[0]?.sent_at ?? went[0]?.sent_at),
      responded: iso(response?.received_at),
      escalations: alert.slice(1).map((m) => iso(m.sent_at)!),
      ended: iso(e.ended_at),
    },
  };
}

/** The replies read: a contact writing more than this after an alert has long since answered it. */
const MAX_INBOUND = 100;

/** The result of one of the tenant's enrollments, as of now; NotFoundError when it has none by that id. */
export async function loadEnrollmentResult(db: Queryable, tenantId: string, enrollmentId: string): Promise<EnrollmentResult> {
  const { rows } = await db.query<ResultFacts['enrollment'] & { contact_id: string }>(
    'select id, journey_id, contact_id, status, entered_at, ended_at, vars from enrollments where tenant_id = $1 and id = $2',
    [tenantId, enrollmentId],
  );
  const enrollment = rows[0];
  if (!enrollment) throw new NotFoundError('enrollment');
  const { rows: messages } = await db.query<ResultMessage>(
    `select id, channel, status, rendered, provider_message_id, created_at, sent_at
       from messages where enrollment_id = $1 and tenant_id = $2 and kind = 'send' order by created_at, id`,
    [enrollmentId, tenantId],
  );
  // Inbound messages are reached through the contact's conversations, whose index leads there.
  const { rows: inbound } = await db.query<ResultInbound>(
    `select i.channel, i.text, i.payload, i.keyword, i.intent, i.in_reply_to, i.received_at
       from conversations c join inbound_messages i on i.conversation_id = c.id
      where c.tenant_id = $1 and c.contact_id = $2 and i.received_at >= $3 and ($4::timestamptz is null or i.received_at <= $4)
      order by i.received_at, i.id limit ${MAX_INBOUND}`,
    [tenantId, enrollment.contact_id, enrollment.entered_at, enrollment.ended_at],
  );
  const { rows: before } = await db.query<{ at: Date | null }>(
    `select max(i.received_at) as at
       from conversations c join inbound_messages i on i.conversation_id = c.id
      where c.tenant_id = $1 and c.contact_id = $2 and c.channel = 'whatsapp' and i.received_at < $3 and i.received_at >= $4`,
    [tenantId, enrollment.contact_id, enrollment.entered_at, new Date(ms(enrollment.entered_at) - WHATSAPP_WINDOW_MS)],
  );
  return enrollmentResult({ enrollment, messages, inbound, whatsappInboundBefore: before[0]?.at ?? null });
}
