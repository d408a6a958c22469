import type { Queryable } from './db.js';

/**
 * What happens to a message after it has left: provider receipts (delivered, read, bounced...),
 * opens and clicks, replies. Receipts arrive late, twice, and out of order, so a message's status
 * only moves forward along
 *
 *   sent < delivered < read | opened < clicked < replied
 *
 * and failed, bounced and undeliverable end it. A late 'delivered' after 'clicked' leaves the
 * status alone but still fills delivered_at, which engagement conditions read. A failure after
 * an open, click or reply is ignored: engagement proves the message arrived. A repeat of what is
 * already recorded changes nothing and adds no timeline row, so a provider retrying its webhook
 * is harmless. Messages that never left (queued, sending, suppressed, cancelled) are not touched:
 * while one is 'sending' the dispatcher still has to record the provider's answer.
 */

export const RECEIPT_STATUSES = ['delivered', 'read', 'opened', 'clicked', 'replied', 'failed', 'bounced', 'undeliverable'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];

export interface StatusUpdate {
  message_id: string;
  status: ReceiptStatus;
  at: Date;
  detail?: Record<string, unknown>;
}

type AtColumn = 'delivered_at' | 'opened_at' | 'clicked_at' | 'replied_at' | 'failed_at';

const RANK: Record<string, number> = { sent: 1, delivered: 2, read: 3, opened: 3, clicked: 4, replied: 5 };
const TERMINAL: ReadonlySet<string> = new Set(['failed', 'bounced', 'undeliverable']);
const COLUMN: Record<ReceiptStatus, AtColumn> = {
  delivered: 'delivered_at',
  // WhatsApp's "read" and an e-mail open are the same fact to a journey: the person saw it.
  read: 'opened_at',
  opened: 'opened_at',
  clicked: 'clicked_at',
  replied: 'replied_at',
  failed: 'failed_at',
  bounced: 'failed_at',
  undeliverable: 'failed_at',
};
const COLUMNS: readonly AtColumn[] = ['delivered_at', 'opened_at', 'clicked_at', 'replied_at', 'failed_at'];

type Current = { id: string; status: string; reason: string | null } & Record<AtColumn, Date | null>;

/**
 * Applies receipts to messages in three statements whatever their number: the messages are read
 * and locked, the changes worked out here, then written with their timeline rows. Call inside a
 * transaction so the lock holds until the write. Returns how many updates changed something.
 */
export async function recordStatuses(tx: Queryable, updates: readonly StatusUpdate[]): Promise<number> {
  if (!updates.length) return 0;
  for (const u of updates) {
    if (!(u.status in COLUMN)) throw new RangeError(`${JSON.stringify(u.status)} is not a receipt status (${RECEIPT_STATUSES.join(', ')})`);
    if (!(u.at instanceof Date) || Number.isNaN(u.at.getTime())) throw new RangeError(`the receipt for message ${u.message_id} has no valid time`);
  }
  const ids = [...new Set(updates.map((u) => u.message_id))];
  const { rows } = await tx.query<Current>(
    `select m.id, m.status, m.reason, m.delivered_at, m.opened_at, m.clicked_at, m.replied_at, m.failed_at
       from unnest($1::uuid[]) as x(id) join messages m on m.id = x.id
      order by m.id for update of m`,
    [ids],
  );
  const current = new Map(rows.map((r) => [r.id, { ...r }]));

  // Receipts for one message are applied in the order they happened, whatever order they came in.
  const ordered = updates.map((u, i) => ({ u, i })).sort((a, b) => a.u.at.getTime() - b.u.at.getTime() || a.i - b.i);
  const changed = new Set<Current>();
  const timeline: { n: number; message_id: string; status: string; at: string; detail: Record<string, unknown> | null }[] = [];
  for (const { u } of ordered) {
    const m = current.get(u.message_id);
    if (!m || !apply(m, u)) continue;
    changed.add(m);
    timeline.push({ n: timeline.length, message_id: m.id, status: u.status, at: u.at.toISOString(), detail: u.detail ?? null });
  }
  if (!changed.size) return 0;

  const latest = new Map<string, number>();
  for (const t of timeline) latest.set(t.message_id, Math.max(latest.get(t.message_id) ?? 0, Date.parse(t.at)));
  const writes = [...changed].map((m) => ({
    id: m.id,
    status: m.status,
    reason: m.reason,
    ...Object.fromEntries(COLUMNS.map((c) => [c, m[c]])),
    at: new Date(latest.get(m.id)!),
  }));
  await tx.query(
    `update messages m
        set status = x.status, reason = x.reason, delivered_at = x.delivered_at, opened_at = x.opened_at, clicked_at = x.clicked_at,
            replied_at = x.replied_at, failed_at = x.failed_at, updated_at = greatest(m.updated_at, x.at)
       from jsonb_to_recordset($1::jsonb) as x(id uuid, status text, reason text, delivered_at timestamptz, opened_at timestamptz,
            clicked_at timestamptz, replied_at timestamptz, failed_at timestamptz, at timestamptz)
      where m.id = x.id`,
    [JSON.stringify(writes)],
  );
  await tx.query(
    `insert into message_status (message_id, status, at, detail)
     select x.message_id, x.status, x.at, x.detail from jsonb_to_recordset($1::jsonb) as x(n int, message_id uuid, status text, at timestamptz, detail jsonb)
      order by x.n`,
    [JSON.stringify(timeline)],
  );
  return timeline.length;
}

/** Applies one receipt to the message as it stands; true when it changed the status or a time. */
function apply(m: Current, u: StatusUpdate): boolean {
  if (TERMINAL.has(m.status)) return false;
  const rank = RANK[m.status];
  // Not yet out of the outbox (or never going out): nothing a receipt may change.
  if (rank === undefined) return false;
  const column = COLUMN[u.status];
  if (TERMINAL.has(u.status)) {
    if (rank > RANK.delivered!) return false;
    m.status = u.status;
    m[column] ??= u.at;
    const reason = u.detail?.reason ?? u.detail?.error;
    if (typeof reason === 'string') m.reason = reason;
    return true;
  }
  const first = m[column] === null;
  if (first) m[column] = u.at;
  const forward = RANK[u.status]! > rank;
  if (forward) m.status = u.status;
  return first || forward;
}

/** A receipt as a provider's webhook gives it: by the provider's message id. */
export interface ProviderReceipt {
  provider_message_id: string;
  status: ReceiptStatus | 'sent';
  at: Date;
  detail?: Record<string, unknown>;
}

/**
 * Applies receipts addressed by provider id. A receipt for an id not recorded yet is kept in
 * pending_receipts until the dispatcher records the message as sent (applyPendingReceipts):
 * fast providers call back before their own API answer has been written down. Returns the
 * message ids the receipts found.
 */
export async function recordProviderReceipts(tx: Queryable, provider: string, receipts: readonly ProviderReceipt[], receivedAt: Date): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (!receipts.length) return found;
  const ids = [...new Set(receipts.map((r) => r.provider_message_id))];
  const { rows } = await tx.query<{ id: string; provider_message_id: string }>(
    `select m.id, m.provider_message_id from messages m where m.provider = $1 and m.provider_message_id = any($2::text[])`,
    [provider, ids],
  );
  for (const r of rows) found.set(r.provider_message_id, r.id);
  const updates: StatusUpdate[] = [];
  const pending: ProviderReceipt[] = [];
  for (const r of receipts) {
    const id = found.get(r.provider_message_id);
    if (!id) pending.push(r);
    // 'sent' is what the dispatcher records itself; the provider saying so adds nothing.
    else if (r.status !== 'sent') updates.push({ message_id: id, status: r.status, at: r.at, ...(r.detail ? { detail: r.detail } : {}) });
  }
  await recordStatuses(tx, updates);
  const waiting = pending.filter((r) => r.status !== 'sent');
  if (waiting.length) {
    await tx.query(
      `insert into pending_receipts (provider, provider_message_id, status, at, detail, received_at)
       select $1, x.provider_message_id, x.status, x.at, x.detail, $3 from jsonb_to_recordset($2::jsonb) as x(provider_message_id text, status text, at timestamptz, detail jsonb)`,
      [provider, JSON.stringify(waiting.map((r) => ({ ...r, at: r.at.toISOString(), detail: r.detail ?? null }))), receivedAt],
    );
  }
  return found;
}

/** How long a receipt may wait for its message before it is dropped as belonging to none. */
export const PENDING_RECEIPT_TTL_MS = 24 * 3600_000;

/** Applies the receipts that arrived before these messages were recorded as sent. */
export async function applyPendingReceipts(tx: Queryable, sent: readonly { id: string; provider: string; provider_message_id: string }[], now: Date): Promise<number> {
  if (!sent.length) return 0;
  const { rows } = await tx.query<{ provider: string; provider_message_id: string; status: ReceiptStatus; at: Date; detail: Record<string, unknown> | null }>(
    `delete from pending_receipts p using unnest($1::text[], $2::text[]) as x(provider, provider_message_id)
      where p.provider = x.provider and p.provider_message_id = x.provider_message_id
      returning p.provider, p.provider_message_id, p.status, p.at, p.detail`,
    [sent.map((s) => s.provider), sent.map((s) => s.provider_message_id)],
  );
  // Housekeeping rides along, rarely: receipts for messages that will never be recorded.
  if (Math.random() < 0.01) await tx.query(`delete from pending_receipts where received_at < $1`, [new Date(now.getTime() - PENDING_RECEIPT_TTL_MS)]);
  if (!rows.length) return 0;
  const byKey = new Map(sent.map((s) => [`${s.provider}|${s.provider_message_id}`, s.id]));
  return recordStatuses(
    tx,
    rows.map((r) => ({ message_id: byKey.get(`${r.provider}|${r.provider_message_id}`)!, status: r.status, at: new Date(r.at), ...(r.detail ? { detail: r.detail } : {}) })),
  );
}
