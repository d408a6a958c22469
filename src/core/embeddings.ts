/**
 * Embeddings for knowledge search: the client contract and the vector math done before a vector
 * reaches the database. Vectors are stored unit length, so cosine similarity in SQL is a plain
 * dot product.
 */

export interface EmbeddingsClient {
  /**
   * Names the vector space: the model, and the dimensions when they are asked for. Vectors are
   * only compared with vectors of the same space; a chunk embedded in another is re-embedded.
   */
  readonly space: string;
  /**
   * One vector per text, in order. Throws when the endpoint fails; callers decide whether to go
   * on without vectors.
   */
  embed(texts: string[]): Promise<number[][]>;
}

/** The vector scaled to length 1; the zero vector stays zero. */
export function normalise(v: readonly number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? v.map((x) => x / norm) : v.map(() => 0);
}

export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Bits of a sketch. A dot product over real[] in SQL costs about 20 µs a row for 128 dimensions
 * and 0.25 ms for 1,536 on PostgreSQL 15, so a pass over 10,000 full vectors would take seconds;
 * bit_count(a # b) over 512-bit sketches takes well under a microsecond a row. The sketch is a
 * SimHash (the signs of 512 random projections): the share of differing bits estimates the
 * angle between two vectors (θ ≈ π · differing / 512, a standard deviation near 0.07 rad), so
 * the chunks nearest by sketch hold the truly nearest, which are then scored exactly.
 * Changing it needs a migration: the column is bit(512).
 */
export const SKETCH_BITS = 512;

const projections = new Map<number, Int8Array>();

/** A fixed ±1 matrix per input size, the same in every process (a seeded xorshift, not Math.random). */
function projection(dims: number): Int8Array {
  let m = projections.get(dims);
  if (m) return m;
  m = new Int8Array(dims * SKETCH_BITS);
  let x = (0x9e3779b9 ^ dims) >>> 0 || 1;
  for (let i = 0; i < m.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    m[i] = x & 1 ? 1 : -1;
  }
  projections.set(dims, m);
  return m;
}

/** The SimHash of a vector as a bit string literal ('0110…', SKETCH_BITS long), for a bit(512) column. */
export function sketch(v: readonly number[]): string {
  const m = projection(v.length);
  let bits = '';
  for (let j = 0; j < SKETCH_BITS; j++) {
    let s = 0;
    const row = j * v.length;
    for (let i = 0; i < v.length; i++) s += m[row + i]! * v[i]!;
    bits += s > 0 ? '1' : '0';
  }
  return bits;
}

/** A vector as a PostgreSQL array literal (`{0.1,0.2}`), the form bound to a `real[]` parameter. */
export function vectorLiteral(v: readonly number[]): string {
  return `{${v.map((x) => (Number.isFinite(x) ? Math.fround(x) : 0)).join(',')}}`;
}
