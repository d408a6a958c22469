import { Type } from 'typebox';
import { SEND_CHANNELS } from '../../core/journey/definition.js';
import { Timestamp, Uuid } from './common.js';

export const JOURNEY_STATUSES = ['draft', 'active', 'paused', 'archived'] as const;
export const JourneyStatus = Type.Enum(JOURNEY_STATUSES, {
  description: 'draft: never published; active: enrolling and running; paused: timers held, no new enrollments; archived: read-only',
});

// Checked by the journey validator rather than the body schema, so problems name the node.
const Definition = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  description: 'a journey definition; its JSON Schema is at GET /v1/journeys/schema.json and docs/journeys.md describes it',
});

const JourneyName = Type.String({ minLength: 1, maxLength: 200, description: 'shown in listings; templates read it as journey.name' });

export const JourneyInput = Type.Object(
  { name: JourneyName, definition: Definition },
  {
    additionalProperties: false,
    description: 'JSON, or YAML (Content-Type application/yaml): either this shape or a bare definition carrying its own name',
  },
);

export const JourneyPatch = Type.Object(
  { name: Type.Optional(JourneyName), definition: Type.Optional(Definition) },
  { additionalProperties: false, description: 'replaces the draft definition and/or renames; live versions are untouched until the next publish' },
);

const journeyFields = {
  id: Uuid,
  name: Type.String(),
  status: JourneyStatus,
  version: Type.Union([Type.Integer(), Type.Null()], { description: 'the live version; null until the first publish' }),
  entry_event: Type.Union([Type.String(), Type.Null()], { description: 'the event that enrols contacts in the live version' }),
  open_enrollments: Type.Integer({ description: 'enrollments that have not ended, on any version' }),
  created_at: Timestamp,
  updated_at: Timestamp,
  published_at: Type.Union([Timestamp, Type.Null()]),
};

export const JourneySummary = Type.Object(journeyFields);
export const Journey = Type.Object({ ...journeyFields, draft: Type.Record(Type.String(), Type.Unknown(), { description: 'the editable definition' }) });

export const JourneyProblem = Type.Object({
  field: Type.String({ description: 'e.g. definition.nodes[2].content.body' }),
  node: Type.Optional(Type.String({ description: 'id of the node the problem is in' })),
  message: Type.String({ description: 'starts with node "<id>": when the problem is in a node' }),
});

export const ValidationResult = Type.Object({ valid: Type.Boolean(), problems: Type.Array(JourneyProblem) });

const versionFields = {
  journey_id: Uuid,
  version: Type.Integer(),
  channels: Type.Array(Type.Enum(SEND_CHANNELS), { description: 'channels its send nodes use' }),
  published_at: Timestamp,
  published_by: Type.String({ description: 'the actor: key:<id>, admin or cli' }),
};

export const VersionSummary = Type.Object(versionFields);
export const Version = Type.Object({ ...versionFields, definition: Type.Record(Type.String(), Type.Unknown()) });
export const Published = Type.Object({ ...versionFields, status: JourneyStatus });

export const VersionParams = Type.Object({ id: Uuid, version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
