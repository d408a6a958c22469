import type { JourneyDefinition } from '../core/journey/definition.js';
import { compileJourney, type CompiledJourney } from '../core/journey/validate.js';
import type { Queryable } from './db.js';

export interface LiveVersion {
  journey_id: string;
  tenant_id: string;
  name: string;
  version: number;
  compiled: CompiledJourney;
}

/**
 * Published versions never change, so each process compiles a version once and keeps it. The
 * bound keeps a process serving thousands of tenants from holding every version ever published.
 */
const MAX_CACHED = 2_000;
const cache = new Map<string, Promise<LiveVersion>>();

export function versionKey(journeyId: string, version: number): string {
  return `${journeyId}@${version}`;
}

export function getVersion(db: Queryable, journeyId: string, version: number): Promise<LiveVersion> {
  const key = versionKey(journeyId, version);
  let hit = cache.get(key);
  if (hit) {
    // Refresh its place so the most used stay.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  hit = loadVersion(db, journeyId, version);
  hit.catch(() => cache.delete(key));
  cache.set(key, hit);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  return hit;
}

/** Loads several versions at once; the batch paths call this with the distinct versions of a batch. */
export async function getVersions(db: Queryable, keys: Iterable<{ journey_id: string; version: number }>): Promise<Map<string, LiveVersion>> {
  const out = new Map<string, LiveVersion>();
  const distinct = new Map<string, { journey_id: string; version: number }>();
  for (const k of keys) distinct.set(versionKey(k.journey_id, k.version), k);
  // Sequential: `db` may be a transaction's client, which runs one statement at a time; most are cached.
  for (const [key, k] of distinct) out.set(key, await getVersion(db, k.journey_id, k.version));
  return out;
}

async function loadVersion(db: Queryable, journeyId: string, version: number): Promise<LiveVersion> {
  const { rows } = await db.query<{ tenant_id: string; name: string; definition: JourneyDefinition }>(
    `select v.tenant_id, j.name, v.definition from journey_versions v join journeys j on j.id = v.journey_id where v.journey_id = $1 and v.version = $2`,
    [journeyId, version],
  );
  const row = rows[0];
  if (!row) throw new Error(`journey ${journeyId} has no version ${version}`);
  return { journey_id: journeyId, tenant_id: row.tenant_id, name: row.name, version, compiled: compileJourney(row.definition) };
}
