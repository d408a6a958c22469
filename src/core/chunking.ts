/**
 * Splits a knowledge item's body into chunks for search: each chunk is what a search result
 * quotes and what one embedding describes, so it should hold one idea and fit a prompt.
 *
 * Paragraphs are kept whole while they fit; a long paragraph is split into sentences, a long
 * sentence into words, a long word into slices. Units are packed greedily up to `maxChars`, and
 * each chunk after the first repeats the last sentences of the one before (up to
 * `overlapChars`), so a sentence that leans on the one before it still finds its context.
 */

export interface ChunkOptions {
  /** The longest chunk, in UTF-16 code units. */
  maxChars: number;
  /** How much of a chunk's tail the next chunk may repeat. */
  overlapChars: number;
}

// About 300 tokens of English: small enough that a chunk is about one thing and an embedding of
// it is sharp, large enough that an FAQ answer or a tip stays one chunk.
export const DEFAULT_CHUNKING: ChunkOptions = { maxChars: 1200, overlapChars: 200 };

interface Unit {
  text: string;
  /** The unit opens a paragraph: it is joined to the one before by a blank line. */
  paragraph: boolean;
}

const sentences = new Intl.Segmenter(undefined, { granularity: 'sentence' });

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

/** Pieces of at most max characters, split at spaces where it can and inside a word where it must. */
function byWords(text: string, max: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    for (let i = 0; i < word.length; i += max) {
      const piece = word.slice(i, i + max);
      if (!current) current = piece;
      else if (current.length + 1 + piece.length <= max && i === 0) current += ' ' + piece;
      else {
        out.push(current);
        current = piece;
      }
    }
  }
  if (current) out.push(current);
  return out;
}

function unitsOf(text: string, max: number): Unit[] {
  const units: Unit[] = [];
  for (const raw of text.split(/\n\s*\n/)) {
    const para = squash(raw);
    if (!para) continue;
    const pieces =
      para.length <= max
        ? [para]
        : [...sentences.segment(para)].map((s) => s.segment.trim()).filter(Boolean).flatMap((s) => (s.length <= max ? [s] : byWords(s, max)));
    pieces.forEach((p, i) => units.push({ text: p, paragraph: i === 0 }));
  }
  return units;
}

const joined = (units: Unit[]) => units.map((u, i) => (i === 0 ? u.text : (u.paragraph ? '\n\n' : ' ') + u.text)).join('');
const sep = (u: Unit) => (u.paragraph ? 2 : 1);

/** The chunks of a text, in order; a text that fits in one chunk is one chunk, an empty one none. */
export function chunkText(text: string, opts: ChunkOptions = DEFAULT_CHUNKING): string[] {
  const max = Math.max(1, Math.floor(opts.maxChars));
  const overlap = Math.max(0, Math.min(Math.floor(opts.overlapChars), max - 1));
  const units = unitsOf(text.replace(/\r\n?/g, '\n'), max);
  const chunks: string[] = [];
  let current: Unit[] = [];
  let length = 0;
  for (const unit of units) {
    const grown = current.length ? length + sep(unit) + unit.text.length : unit.text.length;
    if (grown <= max) {
      current.push(unit);
      length = grown;
      continue;
    }
    chunks.push(joined(current));
    // The tail of the chunk just written, as long as it fits both the overlap and, with the
    // new unit, the chunk; never the whole chunk, or the next one would add nothing new first.
    const tail: Unit[] = [];
    let tailLength = 0;
    for (let i = current.length - 1; i > 0; i--) {
      const u = current[i]!;
      const next = tail.length ? tailLength + sep(tail[0]!) + u.text.length : u.text.length;
      if (next > overlap || next + sep(unit) + unit.text.length > max) break;
      tail.unshift(u);
      tailLength = next;
    }
    current = [...tail, unit];
    length = tail.length ? tailLength + sep(unit) + unit.text.length : unit.text.length;
  }
  if (current.length) chunks.push(joined(current));
  return chunks;
}
