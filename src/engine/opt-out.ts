import { ALL_TOPICS } from '../core/consent.js';
import type { Queryable } from '../store/db.js';
import { endEnrollments } from '../store/enrollments.js';
import { getVersions, versionKey } from '../store/journey-versions.js';

export interface OptOut {
  contact_id: string;
  channel: string;
  topic: string;
}

/**
 * Makes opt-outs take effect before anything else is sent, in the transaction that records
 * them: queued messages on the channel (and topic, unless the whole channel was revoked) are
 * cancelled, and per the tenant's opt_out_action the contact's enrollments in journeys that
 * send on it end ("exit", the default) or go on with those sends skipped by the policy ("skip").
 */
export async function applyOptOuts(tx: Queryable, tenantId: string, optOuts: OptOut[], now: Date): Promise<{ cancelled: number; exited: number }> {
  if (!optOuts.length) return { cancelled: 0, exited: 0 };
  const rows = optOuts.map((o) => ({ contact_id: o.contact_id, channel: o.channel, topic: o.topic === ALL_TOPICS ? null : o.topic }));
  const { rows: cancelled } = await tx.query<{ id: string }>(
    `with c as (
       update messages m set status = 'cancelled', reason = 'opted out', due_at = null, updated_at = $3
         from jsonb_to_recordset($2::jsonb) as x(contact_id uuid, channel text, topic text)
        where m.tenant_id = $1 and m.contact_id = x.contact_id and m.channel = x.channel and (x.topic is null or m.topic = x.topic)
          and m.status = 'queued' and m.kind = 'send'
        returning m.id)
     insert into message_status (message_id, status, at, detail) select id, 'cancelled', $3, '{"reason":"opted out"}'::jsonb from c returning message_id as id`,
    [tenantId, JSON.stringify(rows), now],
  );

  const { rows: settings } = await tx.query<{ action: string | null }>(`select settings->>'opt_out_action' as action from tenants where id = $1`, [tenantId]);
  if ((settings[0]?.action ?? 'exit') !== 'exit') return { cancelled: cancelled.length, exited: 0 };

  const { rows: open } = await tx.query<{ id: string; journey_id: string; version: number; contact_id: string }>(
    `select e.id, e.journey_id, e.version, e.contact_id
       from unnest($2::uuid[]) as x(contact_id) join enrollments e on e.tenant_id = $1 and e.contact_id = x.contact_id and e.ended_at is null`,
    [tenantId, [...new Set(optOuts.map((o) => o.contact_id))]],
  );
  if (!open.length) return { cancelled: cancelled.length, exited: 0 };
  const versions = await getVersions(tx, open);
  const exit = open.filter((e) => {
    const v = versions.get(versionKey(e.journey_id, e.version))!.compiled;
    return optOuts.some(
      (o) =>
        o.contact_id === e.contact_id &&
        [...v.nodes.values()].some((n) => n.type === 'send' && n.channel === o.channel && (o.topic === ALL_TOPICS || (n.topic ?? (n.transactional ? 'transactional' : 'marketing')) === o.topic)),
    );
  });
  const exited = await endEnrollments(
    tx,
    tenantId,
    exit.map((e) => e.id),
    'exited',
    'opted out',
    now,
  );
  return { cancelled: cancelled.length, exited: exited.length };
}
