import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import { addressHash, normalizeAddress, type SuppressionChannel } from '../core/suppression.js';
import type { NormalizeOptions } from '../core/contact.js';
import type { ConsentChannel } from '../core/channels.js';
import { writeAudit, writeAuditBatch } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { Db, Queryable } from './db.js';
import { newId } from './ids.js';

export interface SuppressionRow {
  id: string;
  channel: SuppressionChannel;
  /** Null once the contact it belonged to was erased; the hash still blocks it. */
  address: string | null;
  reason: string;
  source: string;
  created_at: Date;
}

export interface SuppressionInput {
  channel: SuppressionChannel;
  address: string;
  reason: string;
  source?: string;
}

const COLUMNS = 'id, channel, address, reason, source, created_at';

/**
 * Adds an address to the list. The same channel and address twice is the same entry: the first
 * one is returned with created = false and its reason is kept.
 */
export async function addSuppression(
  db: Db,
  tenantId: string,
  input: SuppressionInput,
  opts: NormalizeOptions,
  actor: string,
  now: Date,
): Promise<{ created: boolean; suppression: SuppressionRow }> {
  const n = normalizeAddress(input.channel, input.address, opts.defaultCountry);
  if ('problem' in n) throw InputError.field('address', n.problem);
  const hash = addressHash(n.address);
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<SuppressionRow>(
      `insert into suppressions (id, tenant_id, channel, address_hash, address, reason, source, created_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (tenant_id, channel, address_hash) do nothing returning ${COLUMNS}`,
      [newId(), tenantId, input.channel, hash, n.address, input.reason, input.source ?? 'api', now],
    );
    if (rows[0]) {
      await writeAudit(tx, { tenantId, actor, action: 'suppression.created', entityType: 'suppression', entityId: rows[0].id, data: { channel: input.channel, reason: input.reason } });
      return { created: true, suppression: rows[0] };
    }
    const existing = await tx.query<SuppressionRow>(`select ${COLUMNS} from suppressions where tenant_id = $1 and channel = $2 and address_hash = $3`, [
      tenantId,
      input.channel,
      hash,
    ]);
    if (!existing.rows[0]) throw new ConflictError('the matching entry was deleted at the same moment; send the request again');
    return { created: false, suppression: existing.rows[0] };
  });
}

/**
 * Adds addresses that providers reported dead or refusing (hard bounces, complaints), inside the
 * caller's transaction. Addresses come from sent messages, so they are already normalised; an
 * address already listed keeps its first reason.
 */
export async function suppressInTx(tx: Queryable, tenantId: string, entries: SuppressionInput[], actor: string, now: Date): Promise<number> {
  const rows = entries.map((e) => ({ id: newId(), channel: e.channel, address_hash: addressHash(e.address), address: e.address, reason: e.reason, source: e.source ?? 'provider' }));
  if (!rows.length) return 0;
  const { rows: created } = await tx.query<{ id: string; channel: string; reason: string }>(
    `insert into suppressions (id, tenant_id, channel, address_hash, address, reason, source, created_at)
     select x.id, $1, x.channel, x.address_hash, x.address, x.reason, x.source, $3
       from jsonb_to_recordset($2::jsonb) as x(id uuid, channel text, address_hash text, address text, reason text, source text)
     on conflict (tenant_id, channel, address_hash) do nothing
     returning id, channel, reason`,
    [tenantId, JSON.stringify(rows), now],
  );
  await writeAuditBatch(
    tx,
    created.map((r) => ({ tenantId, actor, action: 'suppression.created', entityType: 'suppression', entityId: r.id, data: { channel: r.channel, reason: r.reason } })),
  );
  return created.length;
}

export async function deleteSuppression(db: Db, tenantId: string, id: string, actor: string): Promise<SuppressionRow> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<SuppressionRow>(`delete from suppressions where tenant_id = $1 and id = $2 returning ${COLUMNS}`, [tenantId, id]);
    const row = rows[0];
    if (!row) throw new NotFoundError('suppression');
    await writeAudit(tx, { tenantId, actor, action: 'suppression.deleted', entityType: 'suppression', entityId: id, data: { channel: row.channel, reason: row.reason } });
    return row;
  });
}

/** One page in creation order (ids are UUIDv7), optionally of one channel. */
export async function listSuppressions(
  db: Queryable,
  tenantId: string,
  f: { limit?: number; cursor?: string; channel?: SuppressionChannel },
): Promise<{ data: SuppressionRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<SuppressionRow>(
    `select ${COLUMNS} from suppressions
      where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or channel = $3)
      order by id limit $4`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.channel ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/**
 * Whether sends to this address on this channel are blocked, by an entry for the channel or
 * for all channels. The address is taken as contacts store it (E.164 or lower-cased email).
 */
export async function isSuppressed(db: Queryable, tenantId: string, channel: ConsentChannel, address: string): Promise<boolean> {
  const { rows } = await db.query('select 1 from suppressions where tenant_id = $1 and address_hash = $2 and channel in ($3, $4) limit 1', [
    tenantId,
    addressHash(address),
    channel,
    'all',
  ]);
  return rows.length > 0;
}

/** Entries that block any of these addresses, on any channel. */
export async function suppressionsFor(db: Queryable, tenantId: string, addresses: string[]): Promise<SuppressionRow[]> {
  if (!addresses.length) return [];
  const { rows } = await db.query<SuppressionRow>(`select ${COLUMNS} from suppressions where tenant_id = $1 and address_hash = any($2::text[]) order by id`, [
    tenantId,
    addresses.map(addressHash),
  ]);
  return rows;
}
