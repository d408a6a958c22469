import { Type } from 'typebox';
import { Duration } from '../../core/journey/definition.js';

// Checked by the journey validator rather than the body schema, so problems name the node.
const Definition = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  description: 'a journey definition, inline content only (a simulation has no stored templates); its JSON Schema is at GET /v1/journeys/schema.json',
});

const Share = (what: string, dflt: number) => Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: `${what} (default ${dflt})` }));

export const MAX_API_SIMULATED_CONTACTS = 10_000;

export const SimulationInput = Type.Object(
  {
    definition: Definition,
    contacts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_API_SIMULATED_CONTACTS, default: 1000, description: 'synthetic contacts, spread over 12 time zones' })),
    days: Type.Optional(Type.Integer({ minimum: 1, maximum: 365, default: 30, description: 'virtual days to run' })),
    seed: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647, description: 'the same seed, start and definition give the same report (default 1)' })),
    start: Type.Optional(Type.String({ format: 'date-time', description: 'when contacts enrol (default: the start of the current hour)' })),
    probabilities: Type.Optional(
      Type.Object(
        {
          delivered: Share('share of sent messages delivered; the rest bounce or are undeliverable', 0.95),
          opened: Share('share of delivered e-mails opened and WhatsApp messages read', 0.4),
          clicked: Share('share of opened messages (SMS: delivered) with a link that are clicked', 0.1),
          replied: Share('share of delivered SMS, WhatsApp and e-mails answered', 0.2),
        },
        { additionalProperties: false },
      ),
    ),
    reply_texts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1000 }), { minItems: 1, maxItems: 100, description: 'what replies say, picked at random' })),
    events: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            probability: Type.Number({ minimum: 0, maximum: 1, description: 'share of contacts that do it, once' }),
            within: Duration,
            properties: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          },
          { additionalProperties: false, description: 'an event contacts do at a moment drawn evenly within `within` of the start (a goal, an exit, an awaited event)' },
        ),
        { maxItems: 20 },
      ),
    ),
    resolution: Type.Optional(Type.String({ pattern: '^([0-9]{1,6}[smhd])+$', description: 'shortest step of virtual time, 1s to 1d (default 5m); smaller is more exact and slower' })),
  },
  { additionalProperties: false },
);

const Counts = Type.Record(Type.String(), Type.Integer());

export const SimulationReport = Type.Object(
  {
    contacts: Type.Integer(),
    days: Type.Number(),
    seed: Type.Integer(),
    start: Type.String({ format: 'date-time' }),
    virtual_end: Type.String({ format: 'date-time', description: 'start plus days: the horizon of the run' }),
    wall_ms: Type.Integer({ description: 'how long the simulation took' }),
    tenant_time_zone: Type.String(),
    resolution_ms: Type.Integer(),
    probabilities: Type.Object({ delivered: Type.Number(), opened: Type.Number(), clicked: Type.Number(), replied: Type.Number() }),
    funnel: Type.Array(
      Type.Object({
        node: Type.String(),
        type: Type.String({ description: 'send, wait, branch, split, action or exit' }),
        name: Type.Optional(Type.String()),
        entered: Type.Integer({ description: 'enrollments that reached the node' }),
        outcomes: Type.Record(Type.String(), Type.Integer(), {
          description: 'steps recorded at the node by outcome (queued, deferred, reply, timeout...); branches as taken:<name>, splits as variant:<name>, endings as completed, converted...',
        }),
      }),
      { description: 'one row per node, in definition order' },
    ),
    ended: Type.Record(Type.String(), Type.Integer(), { description: 'enrollments by status at the end; active ones were still in the journey' }),
    messages: Type.Record(Type.String(), Counts, { description: 'messages by channel and final status' }),
    blocked: Type.Record(Type.String(), Type.Integer(), { description: 'sends skipped by the contact policy, by reason' }),
    deferred: Type.Record(Type.String(), Type.Integer(), { description: 'sends held for later (quiet hours, send window, frequency cap), by reason' }),
    sample: Type.Object({
      contact: Type.Object({
        id: Type.String(),
        name: Type.String(),
        zone: Type.String(),
        locale: Type.String(),
        phone: Type.String(),
        email: Type.String(),
        attributes: Type.Record(Type.String(), Type.Unknown()),
      }),
      timeline: Type.Array(
        Type.Object({
          at: Type.String({ format: 'date-time' }),
          node: Type.Union([Type.String(), Type.Null()]),
          outcome: Type.String({ description: 'an engine step (queued, waiting, reply...), a message status (sent, delivered, read...) or event' }),
          detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
        }),
      ),
    }),
  },
  { description: 'what happened to the synthetic contacts; docs/simulation.md explains each part' },
);
