import { Type, type Static, type TLiteral, type TSchema, type TSchemaOptions, type TUnion } from 'typebox';

/**
 * The journey definition format: one TypeBox schema that validates definitions posted to the
 * API, is published as JSON Schema (GET /v1/journeys/schema.json) for editors, and gives the
 * TypeScript types the engine walks. Rules that span fields (exactly one wait mode, every
 * `next` names a node, no loop without a wait...) live in validate.ts, which names the node.
 */

/** "30s", "15m", "2h", "3d", "1w", or compounds such as "1d12h"; "0s" is allowed (wait 0). */
export const DURATION_PATTERN = '^([0-9]{1,6}[smhdw])+$';
export const Duration = Type.String({
  pattern: DURATION_PATTERN,
  description: 'a duration: digits and a unit (s, m, h, d, w), compounds allowed ("1d12h"); days and weeks are calendar days in the recipient\'s zone',
});

/** A union of string literals from a list. Mapping the list loses each literal's type (Static gave never), so the tuple is restated. */
export function literals<const T extends readonly string[]>(values: T, options?: TSchemaOptions): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((v) => Type.Literal(v)), options) as never;
}

const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'local time of day, HH:MM (24-hour)' });
const NodeId = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$', description: 'node id: a letter, then letters, digits, _ or -' });
const Weekdays = Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), { minItems: 1, maxItems: 7, uniqueItems: true, description: 'ISO weekdays, 1 = Monday' });

export const SEND_CHANNELS = ['sms', 'email', 'whatsapp', 'voice', 'webhook'] as const;
export type SendChannel = (typeof SEND_CHANNELS)[number];
const ChannelName = literals(SEND_CHANNELS);

export const OPERATORS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'in', 'not_in', 'contains', 'starts_with', 'matches', 'exists', 'not_exists'] as const;
export type Operator = (typeof OPERATORS)[number];
const Op = literals(OPERATORS, { description: 'comparison; exists and not_exists take no value' });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
const Value = Type.Union([Scalar, Type.Array(Scalar)], { description: 'compared value; a list for in and not_in' });

const Compare = { op: Type.Optional(Op), value: Type.Optional(Value) };
const strict = { additionalProperties: false };

export const ENGAGEMENT_STATUSES = ['sent', 'delivered', 'opened', 'clicked', 'replied', 'failed'] as const;
export type EngagementStatus = (typeof ENGAGEMENT_STATUSES)[number];

/** Leaf conditions. `op` defaults to eq when a value is given and to exists when it is not. */
export const AttributeCondition = Type.Object({ attribute: Type.String({ minLength: 1, maxLength: 200, description: 'contact attribute, dot path for nested values' }), ...Compare }, strict);
export const FieldCondition = Type.Object(
  { field: literals(['name', 'email', 'phone', 'whatsapp', 'time_zone', 'locale', 'external_id']), ...Compare },
  strict,
);
export const PropertyCondition = Type.Object(
  { property: Type.String({ minLength: 1, maxLength: 200, description: 'property of the event being matched (entry, goal, exit or awaited event), dot path' }), ...Compare },
  strict,
);
export const VariableCondition = Type.Object(
  { variable: Type.String({ minLength: 1, maxLength: 200, description: 'enrollment variable, dot path (entry event properties are under "trigger", webhook answers under their save_as name)' }), ...Compare },
  strict,
);
export const TagCondition = Type.Object({ tag: Type.String({ minLength: 1, maxLength: 100 }), present: Type.Optional(Type.Boolean({ default: true })) }, strict);
export const ConsentCondition = Type.Object(
  {
    consent: literals(['sms', 'email', 'whatsapp', 'voice']),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    granted: Type.Optional(Type.Boolean({ default: true })),
  },
  strict,
);
export const EventHistoryCondition = Type.Object(
  {
    event: Type.String({ minLength: 1, maxLength: 200, description: 'the contact did this event...' }),
    within: Type.Optional(Duration),
    min_count: Type.Optional(Type.Integer({ minimum: 0, default: 1, description: 'at least this many times (0 with max_count 0 means "did not")' })),
    max_count: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);
export const ReplyCondition = Type.Object(
  {
    reply_to: Type.Union([NodeId, Type.Literal('any')], { description: 'the send node whose reply is tested, or "any" for the latest reply in this enrollment' }),
    text: Type.Optional(Type.Object({ op: Op, value: Type.Optional(Value) }, strict)),
    payload: Type.Optional(Type.String({ maxLength: 200, description: 'button / quick-reply payload equal to this' })),
    intent: Type.Optional(
      Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'the named intent of the reply, from a button payload or typed words in the keyword table (moving_now)' }),
    ),
  },
  strict,
);
export const EngagementCondition = Type.Object(
  {
    engaged: Type.Object(
      {
        node: NodeId,
        status: literals(ENGAGEMENT_STATUSES),
        within: Type.Optional(Duration),
      },
      { ...strict, description: 'the message sent by that node reached this status (within the time after it was sent); wrap in not for "not within"' },
    ),
  },
  strict,
);

export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | Static<typeof AttributeCondition>
  | Static<typeof FieldCondition>
  | Static<typeof PropertyCondition>
  | Static<typeof VariableCondition>
  | Static<typeof TagCondition>
  | Static<typeof ConsentCondition>
  | Static<typeof EventHistoryCondition>
  | Static<typeof ReplyCondition>
  | Static<typeof EngagementCondition>;

const LEAVES = [AttributeCondition, FieldCondition, PropertyCondition, VariableCondition, TagCondition, ConsentCondition, EventHistoryCondition, ReplyCondition, EngagementCondition];

/**
 * Conditions nest through all / any / not. Every use refers to one definition under the
 * journey schema's $defs, so the published JSON Schema states it once.
 */
export const ConditionSchema = Type.Unsafe<Condition>({ $ref: '#/$defs/Condition' });
export const ConditionDef = Type.Union([
  Type.Object({ all: Type.Array(ConditionSchema, { minItems: 1, maxItems: 100 }) }, strict),
  Type.Object({ any: Type.Array(ConditionSchema, { minItems: 1, maxItems: 100 }) }, strict),
  Type.Object({ not: ConditionSchema }, strict),
  ...LEAVES,
]);

const EventMatch = Type.Object(
  { event: Type.String({ minLength: 1, maxLength: 200 }), where: Type.Optional(ConditionSchema) },
  { ...strict, description: 'an event by name, with an optional condition on its properties and the contact' },
);
export type EventMatch = { event: string; where?: Condition };

// ---------------------------------------------------------------------------------------------
// Nodes

const Base = { id: NodeId, name: Type.Optional(Type.String({ maxLength: 200, description: 'label shown in listings and the funnel' })) };
const Next = Type.Optional(NodeId);

export const SendContent = Type.Object(
  {
    template: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'name of a stored template; inline fields below override its parts' })),
    subject: Type.Optional(Type.String({ maxLength: 1000, description: 'email subject (Liquid)' })),
    body: Type.Optional(Type.String({ maxLength: 20000, description: 'text body: SMS, WhatsApp session text, voice script, email plain text (Liquid)' })),
    html: Type.Optional(Type.String({ maxLength: 500000, description: 'email HTML (Liquid)' })),
    whatsapp_template: Type.Optional(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 512 }),
          language: Type.String({ minLength: 2, maxLength: 15 }),
          parameters: Type.Optional(Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 20, description: 'body parameters (Liquid)' })),
        },
        { ...strict, description: 'approved WhatsApp template, used outside the 24-hour window' },
      ),
    ),
    url: Type.Optional(Type.String({ maxLength: 2000, description: 'webhook channel: the endpoint (Liquid)' })),
  },
  { ...strict, description: 'inline Liquid content, or a stored template by name' },
);
export type SendContent = Static<typeof SendContent>;

export const SendNode = Type.Object(
  {
    ...Base,
    type: Type.Literal('send'),
    channel: ChannelName,
    content: SendContent,
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'consent topic checked before sending; default "marketing", or "transactional" when transactional' })),
    transactional: Type.Optional(Type.Boolean({ description: 'transactional sends bypass frequency caps and the journey send window (not consent, suppression or quiet hours)' })),
    ignore_quiet_hours: Type.Optional(Type.Boolean({ description: 'only with transactional: urgent alerts that must go out at night' })),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'per-node provider options (sender, media, buttons...)' })),
    priority: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 5 }), Type.String({ minLength: 1, maxLength: 200 })], {
        description:
          'urgency from 1 (lowest) to 5, or Liquid giving one ("{{ trigger.urgency }}"); default 3. Urgent messages leave the outbox first, and at 4 and 5 pass the per-contact WhatsApp template limit',
      }),
    ),
    next: Next,
    on_blocked: Type.Optional(NodeId),
  },
  { ...strict, description: 'queue a message; continue at next, or at on_blocked when the policy blocks it (no consent, suppressed, no address, WhatsApp window closed without a template)' },
);

export const WaitUntilTime = Type.Object(
  { time: LocalTime, days: Type.Optional(Weekdays) },
  { ...strict, description: 'the next moment, strictly after now, that is this local time on one of these days in the recipient\'s zone' },
);
export const WaitUntilDate = Type.Object(
  {
    attribute: Type.String({ minLength: 1, maxLength: 200, description: 'contact attribute holding a date (YYYY-MM-DD) or date-time' }),
    offset: Type.Optional(Type.String({ pattern: '^[+-]?([0-9]{1,6}[smhdw])+$', description: 'e.g. "-3d" for three days before' })),
    time: Type.Optional(LocalTime),
  },
  { ...strict, description: 'a date attribute plus or minus an offset; a date without time means that day at `time` (default 09:00) in the recipient\'s zone' },
);
export const WaitForEvent = Type.Object(
  {
    events: Type.Optional(Type.Array(EventMatch, { minItems: 1, maxItems: 20 })),
    reply: Type.Optional(
      Type.Object(
        { channel: Type.Optional(literals(['sms', 'email', 'whatsapp', 'voice'])) },
        { ...strict, description: 'a reply (inbound message) from the contact, on any channel unless one is named' },
      ),
    ),
    timeout: Duration,
  },
  { ...strict, description: 'wait until one of these events or a reply arrives, or the timeout passes' },
);

export const WaitNode = Type.Object(
  {
    ...Base,
    type: Type.Literal('wait'),
    duration: Type.Optional(Duration),
    until_time: Type.Optional(WaitUntilTime),
    until_date: Type.Optional(WaitUntilDate),
    until_event: Type.Optional(WaitForEvent),
    next: Next,
    on_event: Type.Optional(NodeId),
    on_reply: Type.Optional(NodeId),
    on_timeout: Type.Optional(NodeId),
    on_past: Type.Optional(NodeId),
  },
  {
    ...strict,
    description:
      'exactly one of duration, until_time, until_date, until_event; until_event continues at on_event / on_reply / on_timeout, each defaulting to next; until_date continues at on_past, when given, if its moment has already gone by or the attribute holds no date',
  },
);

export const BranchNode = Type.Object(
  {
    ...Base,
    type: Type.Literal('branch'),
    branches: Type.Array(Type.Object({ name: Type.Optional(Type.String({ maxLength: 200 })), when: ConditionSchema, next: NodeId }, strict), {
      minItems: 1,
      maxItems: 50,
      description: 'tested in order; the first that holds is taken',
    }),
    default: Type.Optional(NodeId),
  },
  strict,
);

export const SplitNode = Type.Object(
  {
    ...Base,
    type: Type.Literal('split'),
    variants: Type.Array(
      Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), weight: Type.Number({ exclusiveMinimum: 0, maximum: 1000000 }), next: NodeId }, strict),
      { minItems: 2, maxItems: 20, description: 'weighted A/B/n; a contact always lands in the same variant of a given split' },
    ),
  },
  strict,
);

export const ActionNode = Type.Object(
  {
    ...Base,
    type: Type.Literal('action'),
    update: Type.Optional(
      Type.Object(
        {
          attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'merged into the contact\'s attributes; string values are Liquid; null removes' })),
          add_tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })),
          remove_tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })),
        },
        strict,
      ),
    ),
    webhook: Type.Optional(
      Type.Object(
        {
          url: Type.String({ minLength: 1, maxLength: 2000, description: 'http(s) URL (Liquid)' }),
          method: Type.Optional(literals(['GET', 'POST', 'PUT', 'PATCH'])),
          headers: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 2000 }))),
          body: Type.Optional(Type.Unknown({ description: 'JSON body; string values are Liquid' })),
          save_as: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', description: 'variable that keeps the JSON answer for later templates and conditions' })),
          timeout: Type.Optional(Duration),
        },
        strict,
      ),
    ),
    emit: Type.Optional(Type.Object({ event: Type.String({ minLength: 1, maxLength: 200 }), properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }, strict)),
    next: Next,
  },
  { ...strict, description: 'exactly one of update, webhook, emit' },
);

export const ExitNode = Type.Object({ ...Base, type: Type.Literal('exit') }, strict);

export const NODE_TYPES = ['send', 'wait', 'branch', 'split', 'action', 'exit'] as const;
export type NodeType = (typeof NODE_TYPES)[number];
export const NODE_SCHEMAS: Record<NodeType, TSchema> = { send: SendNode, wait: WaitNode, branch: BranchNode, split: SplitNode, action: ActionNode, exit: ExitNode };

export const JourneyNode = Type.Union([SendNode, WaitNode, BranchNode, SplitNode, ActionNode, ExitNode]);

// ---------------------------------------------------------------------------------------------
// The journey

export const Entry = Type.Object(
  {
    event: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'enrol the contact of every event of this name' })),
    where: Type.Optional(ConditionSchema),
    api: Type.Optional(Type.Boolean({ description: 'contacts may be enrolled with POST /v1/journeys/{id}/enrollments (always true)' })),
    campaign: Type.Optional(Type.Boolean({ description: 'campaigns may enrol audiences in this journey' })),
  },
  { ...strict, description: 'what enrols a contact; where filters on the event\'s properties and the contact' },
);

export const Reentry = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('never'), Type.Literal('cooldown'), Type.Literal('always')], { default: 'never' })),
    cooldown: Type.Optional(Duration),
    max_entries: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
  },
  { ...strict, description: 'whether a contact may enter again; a contact is never in the same journey twice at once' },
);

export const JourneySendWindow = Type.Object(
  {
    days: Weekdays,
    start: LocalTime,
    end: LocalTime,
    time_zone: Type.Optional(Type.String({ maxLength: 64, description: '"recipient" (default), "tenant", or an IANA zone' })),
  },
  strict,
);

export const ResultWebhook = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: 'where to POST the result: an http(s) URL, or Liquid rendered when the enrollment ends ("{{ trigger.callback_url }}"); one that renders empty sends nothing',
    }),
  },
  {
    ...strict,
    description:
      "when an enrollment ends (any way), POST its result (GET /v1/enrollments/{id}/result) to this URL once, signed with the tenant's webhook account (Standard Webhooks)",
  },
);
export type ResultWebhook = Static<typeof ResultWebhook>;

export const JourneyDefinition = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    entry: Entry,
    reentry: Type.Optional(Reentry),
    send_window: Type.Optional(JourneySendWindow),
    goals: Type.Optional(Type.Array(EventMatch, { maxItems: 20, description: 'events that end the enrollment as converted' })),
    exit_on: Type.Optional(Type.Array(EventMatch, { maxItems: 20, description: 'events that end the enrollment (e.g. purchase, opted_out)' })),
    result_webhook: Type.Optional(ResultWebhook),
    start: Type.Optional(NodeId),
    nodes: Type.Array(JourneyNode, { minItems: 1, maxItems: 500 }),
  },
  { ...strict, $id: 'https://rapport.dev/schema/journey.json', $defs: { Condition: ConditionDef }, title: 'Rapport journey', description: 'A journey definition. `start` names the first node (default: the first in the list); a node without next ends the journey.' },
);

export type SendNode = Static<typeof SendNode>;
export type WaitNode = Static<typeof WaitNode>;
export type BranchNode = Static<typeof BranchNode>;
export type SplitNode = Static<typeof SplitNode>;
export type ActionNode = Static<typeof ActionNode>;
export type ExitNode = Static<typeof ExitNode>;
export type JourneyNode = SendNode | WaitNode | BranchNode | SplitNode | ActionNode | ExitNode;
export type Reentry = Static<typeof Reentry>;
export type JourneySendWindow = Static<typeof JourneySendWindow>;
export type Entry = Omit<Static<typeof Entry>, 'where'> & { where?: Condition };
export interface JourneyDefinition {
  $schema?: string;
  name?: string;
  description?: string;
  entry: Entry;
  reentry?: Reentry;
  send_window?: JourneySendWindow;
  goals?: EventMatch[];
  exit_on?: EventMatch[];
  result_webhook?: ResultWebhook;
  start?: string;
  nodes: JourneyNode[];
}
