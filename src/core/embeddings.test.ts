import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dot, normalise, sketch, SKETCH_BITS } from './embeddings.js';

const differing = (a: string, b: string) => [...a].filter((c, i) => c !== b[i]).length;

describe('sketch', () => {
  it('is the same for the same vector, in any process', () => {
    const v = normalise(Array.from({ length: 300 }, (_, i) => Math.sin(i)));
    expect(sketch(v)).toBe(sketch([...v]));
    expect(sketch(v)).toMatch(new RegExp(`^[01]{${SKETCH_BITS}}$`));
  });

  it('estimates the angle between two vectors from the bits they differ in', () => {
    const vec = fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 256, maxLength: 256 }).filter((v) => v.some((x) => Math.abs(x) > 0.01));
    fc.assert(
      fc.property(vec, vec, fc.double({ min: 0, max: 1, noNaN: true }), (a, b, mix) => {
        const x = normalise(a);
        // a second vector at a controlled distance from the first
        const y = normalise(x.map((xi, i) => mix * xi + (1 - mix) * normalise(b)[i]!));
        const angle = Math.acos(Math.max(-1, Math.min(1, dot(x, y))));
        const estimate = (Math.PI * differing(sketch(x), sketch(y))) / SKETCH_BITS;
        // four standard deviations of the estimate at its widest (θ = π/2)
        expect(Math.abs(estimate - angle)).toBeLessThan(4 * Math.PI * Math.sqrt(0.25 / SKETCH_BITS));
      }),
      { numRuns: 100 },
    );
  });
});
