import { Type } from 'typebox';
import { Contact } from './contact.js';
import { Timestamp, Uuid } from './common.js';

// Checked by the segment validator rather than the body schema, so each problem names its path (definition.all[2].value).
const Definition = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  description: 'a segment condition: {"all": [...]}, {"any": [...]}, {"not": {...}} or one leaf; docs/segments.md describes every leaf',
});

const SegmentName = Type.String({ minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$', description: 'unique in your tenant; in_segment may name a segment by it' });
const Description = Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2000 })]));

export const SegmentInput = Type.Object({ name: SegmentName, description: Description, definition: Definition }, { additionalProperties: false });

export const SegmentPatch = Type.Object(
  { name: Type.Optional(SegmentName), description: Description, definition: Type.Optional(Definition) },
  { additionalProperties: false, description: 'the given fields replace the stored ones; segments that name this one see the change at their next evaluation' },
);

export const Segment = Type.Object({
  id: Uuid,
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  definition: Type.Record(Type.String(), Type.Unknown(), { description: 'in_segment leaves hold segment ids' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const SampleQuery = Type.Object(
  { sample: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 20, description: 'how many members to return (the first by id)' })) },
  { additionalProperties: false },
);

export const PreviewBody = Type.Object(
  { definition: Definition, sample: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 20 })) },
  { additionalProperties: false },
);

export const Preview = Type.Object({
  count: Type.Integer({ description: 'contacts in the segment now' }),
  sample: Type.Array(Contact),
  took_ms: Type.Number({ description: 'time the evaluation took in the database, in milliseconds' }),
});
