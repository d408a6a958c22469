import type { JourneyDefinition } from '../../src/core/journey/definition.js';
import { compileJourney } from '../../src/core/journey/validate.js';
import type { Queryable } from '../../src/store/db.js';
import { newId } from '../../src/store/ids.js';

/**
 * Stores a journey with one published version, active, the way publishing leaves it, for
 * engine tests that do not go through the API.
 */
export async function publishJourney(db: Queryable, tenantId: string, def: JourneyDefinition, name = def.name ?? 'test journey'): Promise<string> {
  const id = newId();
  const compiled = compileJourney(def);
  await db.query(
    `insert into journeys (id, tenant_id, name, status, draft, version, entry_event, published_at) values ($1, $2, $3, 'active', $4, 1, $5, now())`,
    [id, tenantId, name, JSON.stringify(def), compiled.entryEvent],
  );
  await db.query(
    `insert into journey_versions (journey_id, version, tenant_id, definition, channels, published_at, published_by) values ($1, 1, $2, $3, $4, now(), 'test')`,
    [id, tenantId, JSON.stringify(def), compiled.channels],
  );
  return id;
}

/** Grants consent on these channels for every topic, recorded long ago. */
export async function grantAll(db: Queryable, tenantId: string, contactIds: string[], channels: string[]): Promise<void> {
  await db.query(
    `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
     select $1, c, ch, 'all', 'granted', 'express', gen_random_uuid(), '2020-01-01T00:00:00Z'
       from unnest($2::uuid[]) as c, unnest($3::text[]) as ch`,
    [tenantId, contactIds, channels],
  );
}

/** Sends allowed at any hour: engine tests that are not about time windows. */
export async function allowAnyTime(db: Queryable, tenantId: string): Promise<void> {
  await db.query(`update tenants set send_window = '{"days":[1,2,3,4,5,6,7],"start":"00:00","end":"00:00"}', quiet_hours = '{}' where id = $1`, [tenantId]);
}
