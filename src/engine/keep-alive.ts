import { addressFor } from '../core/policy.js';
import type { WhatsappKeepAlive } from '../core/tenant.js';
import type { Queryable } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { newId } from '../store/ids.js';
import { WHATSAPP_WINDOW_MS } from '../core/journey/engine.js';

/**
 * WhatsApp keep-alive (seed 002's session maintenance), for tenants that switch it on: a contact
 * whose 24-hour window closes within `expiring_within_hours` gets the tenant's short message as
 * free-form text while it still may, once per window. If they answer, the window runs another 24
 * hours and an urgent alert can later go as text rather than a template; if they do not, nothing
 * more is sent. The message goes through the outbox like any other: consent for its topic,
 * suppression and quiet hours apply at dispatch, and one sent after the window closed is blocked.
 */

export const DEFAULT_EXPIRING_WITHIN_HOURS = 18;
export const DEFAULT_KEEP_ALIVE_TOPIC = 'keep_alive';
/** The last stretch of a window is left alone: a message queued then may arrive after it closes. */
const CLOSING_MARGIN_MS = 15 * 60_000;
/** How often a worker looks for windows to keep open. */
export const KEEP_ALIVE_SWEEP_MS = 15 * 60_000;
const MAX_PER_SWEEP = 5000;

interface Candidate {
  tenant_id: string;
  contact_id: string;
  conversation_id: string;
  last_inbound_at: Date;
  phone: string | null;
  whatsapp: string | null;
  settings: { whatsapp_keep_alive: WhatsappKeepAlive };
}

/** Queues the keep-alive messages due now; returns how many were queued. */
export async function runKeepAlive(db: Queryable, now: Date): Promise<number> {
  const { rows: tenants } = await db.query<{ id: string; settings: { whatsapp_keep_alive: WhatsappKeepAlive } }>(
    `select id, settings from tenants where (settings->'whatsapp_keep_alive'->>'enabled')::boolean`,
  );
  let queued = 0;
  for (const t of tenants) {
    const k = t.settings.whatsapp_keep_alive;
    const within = (k.expiring_within_hours ?? DEFAULT_EXPIRING_WITHIN_HOURS) * 3600_000;
    // Windows that close between (now + margin) and (now + within).
    const from = new Date(now.getTime() - WHATSAPP_WINDOW_MS + CLOSING_MARGIN_MS);
    const to = new Date(now.getTime() - WHATSAPP_WINDOW_MS + within);
    const { rows } = await db.query<Candidate>(
      `select c.tenant_id, c.contact_id, c.id as conversation_id, c.last_inbound_at, k.phone, k.whatsapp
         from conversations c join contacts k on k.id = c.contact_id
        where c.tenant_id = $1 and c.channel = 'whatsapp' and c.assignee is null
          and c.last_inbound_at > $2 and c.last_inbound_at <= $3
        order by c.last_inbound_at limit ${MAX_PER_SWEEP}`,
      [t.id, from, to],
    );
    const messages = rows.flatMap((r) => {
      const to = addressFor('whatsapp', r);
      if (!to) return [];
      return [
        {
          id: newId(),
          contact_id: r.contact_id,
          // One per window: the window is named by the inbound message that opened it.
          idempotency_key: `keep-alive:${r.conversation_id}:${new Date(r.last_inbound_at).getTime()}`,
          content: { inline: { body: k.message } },
          to_address: to,
        },
      ];
    });
    if (!messages.length) continue;
    const { rowCount } = await db.query(
      `with ins as (
         insert into messages (id, tenant_id, contact_id, kind, channel, topic, transactional, status, idempotency_key, due_at, content, to_address,
                               priority, created_at, updated_at)
         select x.id, $1, x.contact_id, 'send', 'whatsapp', $3, false, 'queued', x.idempotency_key, $4, x.content, x.to_address, 2, $4, $4
           from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, idempotency_key text, content jsonb, to_address text)
         on conflict (tenant_id, idempotency_key) do nothing
         returning id)
       insert into message_status (message_id, status, at) select id, 'queued', $4 from ins`,
      [t.id, JSON.stringify(messages), k.topic ?? DEFAULT_KEEP_ALIVE_TOPIC, now],
    );
    queued += rowCount;
  }
  if (queued) await notifyWork(db);
  return queued;
}
