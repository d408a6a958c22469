import type { Queryable } from './db.js';

export interface AuditEntry {
  tenantId: string;
  actor: string;
  action: string;
  entityType: string;
  entityId?: string | null;
  /** Ids and non-personal details only: the log outlives erasure of the contacts it mentions. */
  data?: Record<string, unknown>;
}

export async function writeAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query('insert into audit_log (tenant_id, actor, action, entity_type, entity_id, data) values ($1, $2, $3, $4, $5, $6)', [
    e.tenantId,
    e.actor,
    e.action,
    e.entityType,
    e.entityId ?? null,
    JSON.stringify(e.data ?? {}),
  ]);
}

/** Writes many entries in one statement, for batches that audit every row they change. */
export async function writeAuditBatch(db: Queryable, entries: AuditEntry[]): Promise<void> {
  if (!entries.length) return;
  await db.query(
    `insert into audit_log (tenant_id, actor, action, entity_type, entity_id, data)
     select x.tenant_id, x.actor, x.action, x.entity_type, x.entity_id, coalesce(x.data, '{}')
       from jsonb_to_recordset($1::jsonb) as x(tenant_id uuid, actor text, action text, entity_type text, entity_id text, data jsonb)`,
    [JSON.stringify(entries.map((e) => ({ tenant_id: e.tenantId, actor: e.actor, action: e.action, entity_type: e.entityType, entity_id: e.entityId ?? null, data: e.data ?? {} })))],
  );
}

export interface AuditRow {
  id: number;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string | null;
  data: Record<string, unknown>;
  created_at: Date;
}

/** Newest first; `before` is the id of the last entry of the previous page. */
export async function listAudit(
  db: Queryable,
  tenantId: string,
  opts: { limit: number; before?: number; entityType?: string; entityId?: string },
): Promise<AuditRow[]> {
  const { rows } = await db.query<AuditRow>(
    `select id, actor, action, entity_type, entity_id, data, created_at from audit_log
      where tenant_id = $1 and ($2::bigint is null or id < $2) and ($3::text is null or entity_type = $3) and ($4::text is null or entity_id = $4)
      order by id desc limit $5`,
    [tenantId, opts.before ?? null, opts.entityType ?? null, opts.entityId ?? null, opts.limit],
  );
  return rows;
}
