import { randomUUID } from 'node:crypto';
import { generateApiKey, hashApiKey } from '../core/apikey.js';
import { NotFoundError } from '../core/errors.js';
import { writeAudit } from './audit.js';
import type { Queryable } from './db.js';

export interface ApiKeyRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, tenant_id, name, prefix, created_at, last_used_at, revoked_at';

/** Creates a key; the secret is in the result and nowhere else, since only its hash is stored. */
export async function createApiKey(db: Queryable, tenantId: string, name: string, actor: string): Promise<ApiKeyRow & { secret: string }> {
  const key = generateApiKey();
  const { rows } = await db.query<ApiKeyRow>(
    `insert into api_keys (id, tenant_id, name, prefix, key_hash) values ($1, $2, $3, $4, $5) returning ${COLUMNS}`,
    [randomUUID(), tenantId, name, key.prefix, key.hash],
  );
  const row = rows[0]!;
  await writeAudit(db, { tenantId, actor, action: 'api_key.created', entityType: 'api_key', entityId: row.id, data: { name, prefix: key.prefix } });
  return { ...row, secret: key.secret };
}

export async function listApiKeys(db: Queryable, tenantId: string): Promise<ApiKeyRow[]> {
  const { rows } = await db.query<ApiKeyRow>(`select ${COLUMNS} from api_keys where tenant_id = $1 order by created_at, id`, [tenantId]);
  return rows;
}

export async function revokeApiKey(db: Queryable, tenantId: string, id: string, actor: string): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
    [tenantId, id],
  );
  if (!rows[0]) throw new NotFoundError('api key');
  await writeAudit(db, { tenantId, actor, action: 'api_key.revoked', entityType: 'api_key', entityId: id, data: {} });
  return rows[0];
}

/** The active key with this secret, if any; notes its use at most once a minute to spare writes. */
export async function findActiveKey(db: Queryable, secret: string): Promise<{ id: string; tenant_id: string } | undefined> {
  const { rows } = await db.query<{ id: string; tenant_id: string; stale: boolean }>(
    `select id, tenant_id, (last_used_at is null or last_used_at < now() - interval '1 minute') as stale
       from api_keys where key_hash = $1 and revoked_at is null`,
    [hashApiKey(secret)],
  );
  const key = rows[0];
  if (key?.stale) await db.query('update api_keys set last_used_at = now() where id = $1', [key.id]);
  return key;
}
