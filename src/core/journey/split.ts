/**
 * Weighted A/B/n assignment, stable per key: the same key always lands in the same variant, so a
 * contact that re-enters or is replayed sees the same content. The hash is part of the contract:
 * changing it would move contacts between variants of running experiments.
 */

/** A 32-bit hash spread evenly over its range: FNV-1a over UTF-16 code units, then murmur3's finaliser (FNV alone is weak in the high bits for short keys). */
export function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The index of the variant `key` falls in, each variant taking a share of [0, 1) proportional to
 * its weight. The caller picks the key, typically `${enrollmentSeed}:${contactId}:${nodeId}` so
 * that splits of one journey are independent of each other.
 */
export function assignVariant(variants: readonly { name: string; weight: number }[], key: string): number {
  if (variants.length === 0) throw new Error('assignVariant needs at least one variant');
  let total = 0;
  for (const v of variants) total += v.weight > 0 ? v.weight : 0;
  if (!(total > 0)) return 0;
  let point = (hash32(key) / 0x100000000) * total;
  for (let i = 0; i < variants.length; i++) {
    const w = variants[i]!.weight;
    if (!(w > 0)) continue;
    if (point < w) return i;
    point -= w;
  }
  // Rounding can leave the point a hair past the last share.
  for (let i = variants.length - 1; i >= 0; i--) if (variants[i]!.weight > 0) return i;
  return 0;
}
