import { Type, type Static } from 'typebox';
import type { FieldProblem } from './errors.js';
import { literals, SendContent } from './journey/definition.js';
import { PulseSpec, pulseProblems } from './pulse.js';
import type { OptOutFooters } from './tenant.js';

/**
 * A campaign sends one thing to one audience, once or on a recurring schedule
 * (core/campaign-schedule.ts): a message on a channel, or an enrollment into a journey. Its lifecycle:
 *
 *   draft ──start──▶ scheduled ──(runner: first occurrence due)──▶ running ──(runner: audience written)──▶ completed
 *                        │  ▲                                        │  ▲
 *                      pause└resume (not started yet)              pause└resume
 *                        ▼  │                                        ▼  │
 *                        paused ◀────────────────────────────────────┘  │
 *   stop from any status but completed/cancelled ──▶ cancelled
 *
 * completed and cancelled are final. `run` and `complete` are the runner's; the API offers the rest.
 */

export const CAMPAIGN_TYPES = ['win_back', 'follow_up', 'promotional', 'feedback', 'pulse', 'custom'] as const;
export type CampaignType = (typeof CAMPAIGN_TYPES)[number];
export const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];
export const CAMPAIGN_ACTIONS = ['start', 'pause', 'resume', 'stop', 'run', 'complete'] as const;
export type CampaignAction = (typeof CAMPAIGN_ACTIONS)[number];
/** Channels a campaign message may go on (the webhook channel belongs to journeys). */
export const CAMPAIGN_CHANNELS = ['sms', 'email', 'whatsapp', 'voice'] as const;

/** Explicit lists are for small, hand-picked audiences; larger ones are segments. */
export const MAX_CONTACT_IDS = 10_000;
const strict = { additionalProperties: false } as const;
const Uuid = Type.String({ format: 'uuid' });

export const CampaignAudience = Type.Object(
  {
    segment_id: Type.Optional(Type.String({ format: 'uuid', description: "a saved segment, evaluated when the campaign fires (its members then)" })),
    definition: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'a segment definition (docs/segments.md), evaluated when the campaign fires' })),
    contact_ids: Type.Optional(Type.Array(Uuid, { minItems: 1, maxItems: MAX_CONTACT_IDS, description: 'an explicit list of contacts; unknown or deleted ones are left out' })),
  },
  { ...strict, description: 'exactly one of segment_id, definition, contact_ids' },
);
export type CampaignAudience = Static<typeof CampaignAudience>;

export const CampaignSend = Type.Object(
  {
    channel: literals(CAMPAIGN_CHANNELS),
    content: SendContent,
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'consent topic checked at dispatch; default "marketing", or "transactional" when transactional' })),
    transactional: Type.Optional(Type.Boolean()),
    priority: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, description: 'default 2: campaigns give way to journeys' })),
  },
  strict,
);
export type CampaignSend = Static<typeof CampaignSend>;

export const CampaignActionSpec = Type.Object(
  {
    send: Type.Optional(CampaignSend),
    journey_id: Type.Optional(Type.String({ format: 'uuid', description: "enrol each recipient into the journey's live version" })),
    pulse: Type.Optional(PulseSpec),
  },
  { ...strict, description: 'exactly one of send, journey_id, pulse (the last only with type pulse)' },
);
export type CampaignActionSpec = Static<typeof CampaignActionSpec>;

export const CampaignSchedule = Type.Object(
  {
    at: Type.Optional(Type.String({ format: 'date-time', description: 'once, at this instant; with no field at all, as soon as it is started' })),
    local_at: Type.Optional(Type.String({ description: "once, at this wall-clock time in each recipient's zone: YYYY-MM-DDTHH:mm, no offset" })),
    cron: Type.Optional(Type.String({ minLength: 9, maxLength: 100, description: 'recurring: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1" for Mondays at 09:00' })),
    zone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "the IANA zone the cron is read in; default the tenant's" })),
    recipient_local: Type.Optional(Type.Boolean({ description: "read the cron in each recipient's zone instead (Monday 09:00 wherever they are)" })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'a recurring campaign starts no occurrence after this and then completes' })),
  },
  { ...strict, description: 'at most one of at, local_at, cron (docs/campaigns.md, "Schedules")' },
);
export type CampaignSchedule = Static<typeof CampaignSchedule>;

export const CampaignThrottle = Type.Object(
  { per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'at most this many sends (or enrollments) fall due per minute' })) },
  strict,
);
export type CampaignThrottle = Static<typeof CampaignThrottle>;

export const CampaignType = literals(CAMPAIGN_TYPES);
export const CampaignStatus = literals(CAMPAIGN_STATUSES);

/**
 * What the body schemas cannot say: which alternatives go together. Problems name the field by
 * its path. A pulse may leave its audience empty ({}): every contact, narrowed by the pulse's own
 * targeting (core/pulse.ts). A pulse's max_length is checked against `footers`, the tenant's
 * own opt-out lines, and the built-in ones for the languages it left out.
 */
export function campaignProblems(c: { type?: CampaignType; audience?: CampaignAudience; action?: CampaignActionSpec }, footers?: OptOutFooters | null): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (c.audience) {
    const given = (['segment_id', 'definition', 'contact_ids'] as const).filter((k) => c.audience![k] !== undefined);
    const everyone = given.length === 0 && c.action?.pulse !== undefined;
    if (given.length !== 1 && !everyone) problems.push({ field: 'audience', message: `give exactly one of segment_id, definition, contact_ids${given.length ? ` (got ${given.join(', ')})` : ' (only a pulse may leave it out)'}` });
  }
  if (c.action) {
    const given = (['send', 'journey_id', 'pulse'] as const).filter((k) => c.action![k] !== undefined);
    if (given.length !== 1) problems.push({ field: 'action', message: 'give exactly one of send, journey_id, pulse' });
    if (c.action.pulse) {
      if (c.type !== undefined && c.type !== 'pulse') problems.push({ field: 'action.pulse', message: `belongs to a campaign of type pulse, not ${c.type}` });
      problems.push(...pulseProblems(c.action.pulse, 'action.pulse', footers));
    }
    const send = c.action.send;
    if (send) {
      const k = send.content;
      if (k.template === undefined && k.body === undefined && k.html === undefined && k.whatsapp_template === undefined) {
        problems.push({ field: 'action.send.content', message: 'give a template, a body, html or a whatsapp_template' });
      }
      if (k.url !== undefined) problems.push({ field: 'action.send.content.url', message: 'belongs to the webhook channel, which campaigns do not send on' });
    }
  }
  return problems;
}

const FINAL: readonly CampaignStatus[] = ['completed', 'cancelled'];

/**
 * The status `action` leads to from `status`, or null when it is not allowed there. `started`
 * says whether the campaign has fired (a paused campaign that never ran resumes as scheduled).
 */
export function nextStatus(status: CampaignStatus, action: CampaignAction, started: boolean): CampaignStatus | null {
  switch (action) {
    case 'start':
      return status === 'draft' ? 'scheduled' : null;
    case 'run':
      return status === 'scheduled' ? 'running' : null;
    case 'pause':
      return status === 'scheduled' || status === 'running' ? 'paused' : null;
    case 'resume':
      return status === 'paused' ? (started ? 'running' : 'scheduled') : null;
    case 'stop':
      return FINAL.includes(status) ? null : 'cancelled';
    case 'complete':
      return status === 'running' ? 'completed' : null;
  }
}

/** The statuses `action` is allowed from, for the 409 message. */
export function allowedFrom(action: CampaignAction): CampaignStatus[] {
  return CAMPAIGN_STATUSES.filter((s) => nextStatus(s, action, true) !== null || nextStatus(s, action, false) !== null);
}

/** Statuses in which the definition may still change: nothing has been written for it yet. */
export function editable(status: CampaignStatus): boolean {
  return status === 'draft' || status === 'scheduled';
}
