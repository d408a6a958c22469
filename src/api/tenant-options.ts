import type { NormalizeOptions } from '../core/contact.js';
import type { Queryable } from '../store/db.js';
import { getTenant } from '../store/tenants.js';

/** How the tenant's phone numbers are read: its default country for numbers written without +. */
export async function normalizeOptions(db: Queryable, tenantId: string): Promise<NormalizeOptions> {
  const t = await getTenant(db, tenantId);
  return { defaultCountry: t.settings.default_country };
}
