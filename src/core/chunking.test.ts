import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkText, DEFAULT_CHUNKING } from './chunking.js';

const words = (s: string) => s.split(/\s+/).filter(Boolean);

/** Where `part` occurs in `whole` as a run of words starting from `from` to `to`; -1 when it does not. */
function runAt(whole: string[], part: string[], from: number, to: number): number {
  for (let i = from; i <= to && i + part.length <= whole.length; i++) {
    if (part.every((w, k) => whole[i + k] === w)) return i;
  }
  return -1;
}

describe('chunkText', () => {
  it('keeps a short item as one chunk, whitespace tidied', () => {
    expect(chunkText('  Keep your receipt.\r\n\r\nIt is proof   of purchase. ')).toEqual(['Keep your receipt.\n\nIt is proof of purchase.']);
    expect(chunkText(' \n\n ')).toEqual([]);
  });

  it('splits a long document at paragraphs and sentences, with overlap', () => {
    const para = (n: number) => Array.from({ length: 6 }, (_, i) => `Paragraph ${n} sentence ${i} explains one detail of the returns process.`).join(' ');
    const doc = Array.from({ length: 8 }, (_, n) => para(n)).join('\n\n');
    const chunks = chunkText(doc, { maxChars: 400, overlapChars: 120 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(400);
    // sentences are never cut in half
    for (const c of chunks) expect(c).toMatch(/^Paragraph \d sentence \d .*process\.$/s);
    // the second chunk begins with the last sentence of the first
    const lastOfFirst = chunks[0]!.split(/(?<=\.)\s+/).pop()!;
    expect(chunks[1]!.startsWith(lastOfFirst)).toBe(true);
  });

  it('cuts a word longer than a chunk', () => {
    const chunks = chunkText('x'.repeat(25), { maxChars: 10, overlapChars: 3 });
    expect(chunks).toEqual(['xxxxxxxxxx', 'xxxxxxxxxx', 'xxxxx']);
  });

  it('bounds every chunk and covers every word in order, each chunk moving forward', () => {
    const word = fc.stringMatching(/^[a-z]{1,14}[.!?]?$/);
    const paragraph = fc.array(word, { minLength: 1, maxLength: 60 }).map((w) => w.join(' '));
    const text = fc.array(paragraph, { minLength: 1, maxLength: 12 }).map((p) => p.join('\n\n'));
    const opts = fc.record({ maxChars: fc.integer({ min: 20, max: 600 }), overlapChars: fc.integer({ min: 0, max: 300 }) });
    fc.assert(
      fc.property(text, opts, (t, o) => {
        const chunks = chunkText(t, o);
        const all = words(t);
        expect(chunks.length).toBeGreaterThan(0);
        let start = -1;
        let end = 0;
        for (const c of chunks) {
          expect(c.length).toBeLessThanOrEqual(o.maxChars);
          expect(c.trim()).toBe(c);
          const w = words(c);
          // it starts after the previous chunk's start, leaves no gap, and adds words of its own
          const at = runAt(all, w, Math.max(start + 1, end - w.length + 1), end);
          expect(at, `chunk ${JSON.stringify(c)} does not continue the previous one`).toBeGreaterThanOrEqual(0);
          start = at;
          end = at + w.length;
        }
        expect(end).toBe(all.length);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps text that fits as one chunk, whatever its paragraphs', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 40 }), (w) => {
        const t = w.join(' ');
        if (t.length > DEFAULT_CHUNKING.maxChars) return;
        expect(chunkText(t)).toEqual([t]);
      }),
    );
  });
});
