import { NotFoundError } from '../core/errors.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { SendChannel } from '../core/journey/definition.js';
import type { Queryable } from './db.js';

/** What the API shows of the outbox; the scheduler writes it and the dispatcher moves it on. */

export type MessageStatus =
  | 'queued'
  | 'sending'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'opened'
  | 'clicked'
  | 'replied'
  | 'failed'
  | 'bounced'
  | 'undeliverable'
  | 'suppressed'
  | 'cancelled';

export interface MessageRow {
  id: string;
  contact_id: string;
  enrollment_id: string | null;
  journey_id: string | null;
  node: string | null;
  kind: 'send' | 'action_webhook';
  channel: SendChannel;
  topic: string | null;
  transactional: boolean;
  status: MessageStatus;
  reason: string | null;
  to_address: string | null;
  provider: string | null;
  provider_message_id: string | null;
  cost: number | null;
  currency: string | null;
  attempts: number;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
  delivered_at: Date | null;
  opened_at: Date | null;
  clicked_at: Date | null;
  replied_at: Date | null;
  failed_at: Date | null;
}

export interface MessageDetail extends MessageRow {
  content: unknown;
  rendered: unknown;
  timeline: { status: string; at: Date; detail: Record<string, unknown> | null }[];
}

// cost is numeric: as float8 it leaves the driver a number rather than a string.
const COLUMNS = `id, contact_id, enrollment_id, journey_id, node, kind, channel, topic, transactional, status, reason, to_address,
  provider, provider_message_id, cost::float8 as cost, currency, attempts, due_at, created_at, updated_at,
  sent_at, delivered_at, opened_at, clicked_at, replied_at, failed_at`;

export interface MessageFilter {
  contact_id?: string;
  enrollment_id?: string;
  journey_id?: string;
  status?: MessageStatus;
  channel?: SendChannel;
  limit?: number;
  cursor?: string;
}

/** One page of messages, newest first (ids are UUIDv7, so by when they were queued). */
export async function listMessages(db: Queryable, tenantId: string, f: MessageFilter): Promise<{ data: MessageRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<MessageRow>(
    `select ${COLUMNS} from messages
      where tenant_id = $1 and ($2::uuid is null or id < $2)
        and ($3::uuid is null or contact_id = $3) and ($4::uuid is null or enrollment_id = $4) and ($5::uuid is null or journey_id = $5)
        and ($6::text is null or status = $6) and ($7::text is null or channel = $7)
      order by id desc limit $8`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.contact_id ?? null, f.enrollment_id ?? null, f.journey_id ?? null, f.status ?? null, f.channel ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/** A message with what it was to say, what it said, and every status it went through, oldest first. */
export async function getMessage(db: Queryable, tenantId: string, id: string): Promise<MessageDetail> {
  const { rows } = await db.query<Omit<MessageDetail, 'timeline'>>(`select ${COLUMNS}, content, rendered from messages where tenant_id = $1 and id = $2`, [tenantId, id]);
  const row = rows[0];
  if (!row) throw new NotFoundError('message');
  const { rows: timeline } = await db.query<MessageDetail['timeline'][number]>('select status, at, detail from message_status where message_id = $1 order by id', [id]);
  return { ...row, timeline };
}
