import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignVariant, hash32 } from './split.js';

const variants = (...weights: number[]) => weights.map((weight, i) => ({ name: String.fromCharCode(65 + i), weight }));

function shares(weights: number[], keys: number, key: (i: number) => string): number[] {
  const vs = variants(...weights);
  const counts = weights.map(() => 0);
  for (let i = 0; i < keys; i++) counts[assignVariant(vs, key(i))]!++;
  return counts.map((c) => c / keys);
}

describe('hash32', () => {
  it('never changes: running experiments would reshuffle their contacts', () => {
    expect(hash32('')).toBe(2872998923);
    expect(hash32('a')).toBe(444641715);
    expect(hash32('seed:contact-1:split')).toBe(215008556);
  });

  it('is an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const h = hash32(s);
        expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
      }),
    );
  });
});

describe('assignVariant', () => {
  it('gives the same key the same variant', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.001, max: 1000, noNaN: true }), { minLength: 2, maxLength: 20 }), fc.string(), (weights, key) => {
        const vs = variants(...weights);
        const a = assignVariant(vs, key);
        expect(assignVariant(vs, key)).toBe(a);
        expect(assignVariant(vs.map((v) => ({ ...v })), key)).toBe(a);
        expect(a).toBeGreaterThanOrEqual(0);
        expect(a).toBeLessThan(weights.length);
      }),
      { numRuns: 500 },
    );
  });

  it('never picks a variant without weight', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 1, 5), { minLength: 2, maxLength: 8 }), fc.string(), (weights, key) => {
        fc.pre(weights.some((w) => w > 0));
        expect(weights[assignVariant(variants(...weights), key)]).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('respects the weights within ±1.5% over 100k contacts', () => {
    for (const weights of [[1, 1], [70, 20, 10], [1, 2, 3, 4], [0.5, 0.25, 0.25], [95, 5]]) {
      const total = weights.reduce((a, b) => a + b, 0);
      const got = shares(weights, 100_000, (i) => `e7f3:contact-${i}:split-a`);
      got.forEach((share, k) => expect(Math.abs(share - weights[k]! / total)).toBeLessThan(0.015));
    }
  });

  it('respects the weights whatever they are', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 6 }), fc.string({ maxLength: 8 }), (weights, seed) => {
        const total = weights.reduce((a, b) => a + b, 0);
        const got = shares(weights, 20_000, (i) => `${seed}:${i}:node`);
        got.forEach((share, k) => expect(Math.abs(share - weights[k]! / total)).toBeLessThan(0.02));
      }),
      { numRuns: 20 },
    );
  });

  it('assigns the splits of one journey independently of each other', () => {
    const vs = variants(1, 1);
    const joint = [0, 0, 0, 0];
    const n = 100_000;
    for (let i = 0; i < n; i++) joint[assignVariant(vs, `s:c${i}:first`) * 2 + assignVariant(vs, `s:c${i}:second`)]!++;
    for (const cell of joint) expect(Math.abs(cell / n - 0.25)).toBeLessThan(0.01);
  });

  it('refuses an empty list', () => {
    expect(() => assignVariant([], 'k')).toThrow(/at least one variant/);
  });
});
