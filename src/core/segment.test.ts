import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparisonType, isoInstant, mapSegmentRefs, relativeInstant, segmentProblems, segmentRefs, type SegmentCondition } from './segment.js';

const fields = (def: unknown) => segmentProblems(def).map((p) => p.field);

describe('segmentProblems', () => {
  it('accepts the five examples of the issue', () => {
    const examples: SegmentCondition[] = [
      { not: { last: 'interaction', op: 'within_last', value: '180d' } },
      { score: 'engagement', op: 'gte', value: 0.3 },
      { event: 'purchase', where: { property: 'product', value: 'product_a' } },
      { attribute: 'renewal_date', op: 'within_next', value: '30d' },
      { all: [{ attribute: 'segment', value: 'premium' }, { consent: 'whatsapp', topic: 'tips' }] },
    ];
    for (const e of examples) expect(segmentProblems(e)).toEqual([]);
  });

  it('names the field of each problem by its path', () => {
    const def = {
      all: [
        { tag: 'vip' },
        { attribute: 'renewal_date', op: 'within_next', value: 'a month' },
        { any: [{ event: 'purchase', within: 'soon' }, { nope: true }] },
        { not: { consent: 'fax' } },
        { attribute: 'plan', value: ['a', 'b'] },
        { field: 'created_at', op: 'gt', value: 'yesterday' },
        { event: 'purchase', min_count: 3, max_count: 1, where: { property: 'sku', op: 'gt', value: [1] } },
        { score: 'engagement', op: 'gte' },
        { last: 'inbound', op: 'contains', value: 'x' },
        { attribute: 'ltv', type: 'number', op: 'gt', value: 'lots' },
        { attribute: 'plan', op: 'matches', value: '^p' },
      ],
    };
    expect(fields(def)).toEqual([
      'definition.all[1].value',
      'definition.all[2].any[0].within',
      'definition.all[2].any[1]',
      'definition.all[3].not.consent',
      'definition.all[4].value',
      'definition.all[5].value',
      'definition.all[6].max_count',
      'definition.all[6].where.value',
      'definition.all[7].value',
      'definition.all[8].op',
      'definition.all[9].value',
      'definition.all[10].op',
    ]);
  });

  it('refuses keys beside all / any / not, unknown fields, empty lists and deep nesting', () => {
    expect(fields({ all: [{ tag: 'a' }], tag: 'b' })).toEqual(['definition.tag']);
    expect(fields({ tag: 'a', colour: 'red' })).toEqual(['definition.colour']);
    expect(fields({ any: [] })).toEqual(['definition.any']);
    let deep: unknown = { tag: 'a' };
    for (let i = 0; i < 20; i++) deep = { not: deep };
    expect(segmentProblems(deep)[0]!.message).toMatch(/deeper/);
    expect(fields('premium')).toEqual(['definition']);
  });

  it('never throws on arbitrary JSON, and a problem always names a field under definition', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        for (const p of segmentProblems(v)) expect(p.field.startsWith('definition')).toBe(true);
      }),
    );
  });

  it('keeps a valid definition valid under not(not(x)) and de Morgan rewrites', () => {
    const leaf = fc.oneof(
      fc.record({ attribute: fc.constantFrom('plan', 'a.b'), op: fc.constantFrom('eq' as const, 'neq' as const, 'gt' as const, 'contains' as const), value: fc.oneof(fc.string({ maxLength: 5 }), fc.integer()) }),
      fc.record({ tag: fc.string({ minLength: 1, maxLength: 5 }) }),
      fc.record({ consent: fc.constantFrom('sms' as const, 'whatsapp' as const), topic: fc.constantFrom('tips', 'all'), granted: fc.boolean() }),
      fc.record({ engagement: fc.constantFrom('clicks' as const, 'replies' as const), within: fc.constantFrom('30d', '2w'), op: fc.constantFrom('gte' as const, 'lt' as const), value: fc.nat(5) }),
      fc.record({ last: fc.constantFrom('inbound' as const, 'interaction' as const), op: fc.constantFrom('within_last' as const, 'older_than' as const), value: fc.constantFrom('1d', '180d') }),
      fc.record({ whatsapp_window: fc.constantFrom('open' as const, 'closed' as const) }),
    );
    fc.assert(
      fc.property(leaf, leaf, (x, y) => {
        const defs: SegmentCondition[] = [x, { not: { not: x } }, { not: { all: [x, y] } }, { any: [{ not: x }, { not: y }] }];
        for (const d of defs) expect(segmentProblems(d)).toEqual([]);
      }),
    );
  });
});

describe('dates', () => {
  it('reads ISO dates and date-times, UTC without an offset, and refuses dates that do not exist', () => {
    expect(isoInstant('2026-03-01')?.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(isoInstant('2026-03-01T12:30')?.toISOString()).toBe('2026-03-01T12:30:00.000Z');
    expect(isoInstant('2026-03-01 12:30:00+0200')?.toISOString()).toBe('2026-03-01T10:30:00.000Z');
    expect(isoInstant('2024-02-29')).not.toBeNull();
    for (const bad of ['2026-02-29', '2026-04-31', '2026-13-01', '0000-01-01', '2026-03-01T24:00', 'soon', '2026-3-1']) expect(isoInstant(bad)).toBeNull();
  });

  it('puts relative instants before or after now', () => {
    const now = new Date('2026-03-02T10:00:00Z');
    expect(relativeInstant({ ago: '180d' }, now).toISOString()).toBe('2025-09-03T10:00:00.000Z');
    expect(relativeInstant({ from_now: '1d12h' }, now).toISOString()).toBe('2026-03-03T22:00:00.000Z');
  });

  it('infers the comparison type from operator and value unless told', () => {
    expect(comparisonType('within_next', '30d', undefined)).toBe('date');
    expect(comparisonType('lt', { ago: '1d' }, undefined)).toBe('date');
    expect(comparisonType('gt', 3, undefined)).toBe('number');
    expect(comparisonType('eq', '3', 'string')).toBe('string');
    expect(comparisonType('eq', 'x', undefined)).toBe('any');
  });
});

describe('references', () => {
  it('lists in_segment references with their fields and rewrites them', () => {
    const def: SegmentCondition = { all: [{ in_segment: 'vip' }, { not: { any: [{ tag: 'x' }, { in_segment: 'churned' }] } }] };
    expect(segmentRefs(def)).toEqual([
      { field: 'definition.all[0].in_segment', ref: 'vip' },
      { field: 'definition.all[1].not.any[1].in_segment', ref: 'churned' },
    ]);
    expect(mapSegmentRefs(def, (r) => `id-${r}`)).toEqual({ all: [{ in_segment: 'id-vip' }, { not: { any: [{ tag: 'x' }, { in_segment: 'id-churned' }] } }] });
  });
});
