import { templateScope, type ContactFacts } from '../core/journey/engine.js';
import { isHttpUrl } from '../core/journey/validate.js';
import { render } from '../core/template.js';
import type { Queryable } from './db.js';
import { newId } from './ids.js';
import { getVersions, versionKey } from './journey-versions.js';

/** The idempotency key of an enrollment's result webhook: one per enrollment, however it ended. */
export const resultWebhookKey = (enrollmentId: string) => `result:${enrollmentId}`;

export interface EndedEnrollment {
  id: string;
  tenant_id: string;
  journey_id: string;
  version: number;
}

/**
 * Queues the result webhook of each ended enrollment whose journey version has `result_webhook`:
 * a message of kind 'result_webhook' to the URL rendered now, with the contact and variables as
 * they are at the end. The dispatcher computes the result when it sends it. A URL that renders
 * empty (the caller gave no callback) queues nothing; one that is not an http(s) URL is recorded
 * as failed, so the caller's mistake shows on the enrollment. Call in the transaction that ends
 * the enrollments; returns how many were queued to go now.
 */
export async function queueResultWebhooks(tx: Queryable, ended: readonly EndedEnrollment[], now: Date): Promise<number> {
  if (!ended.length) return 0;
  // Versions are cached per process (the scheduler has just loaded them), so a batch of journeys
  // without result webhooks costs no query here.
  const versions = await getVersions(tx, ended);
  const hooked = ended.filter((e) => versions.get(versionKey(e.journey_id, e.version))?.compiled.def.result_webhook);
  if (!hooked.length) return 0;

  // A contact erased since ended its enrollment without anyone to report about: the join drops it.
  const { rows } = await tx.query<ContactFacts & { enrollment_id: string; vars: Record<string, unknown> }>(
    `select e.id as enrollment_id, e.vars, c.id, c.name, c.email, c.phone, c.whatsapp, c.time_zone, c.locale, c.external_id, c.attributes, c.tags
       from enrollments e join contacts c on c.id = e.contact_id
      where e.id = any($1::uuid[])`,
    [hooked.map((e) => e.id)],
  );
  const facts = new Map(rows.map(({ enrollment_id, vars, ...contact }) => [enrollment_id, { vars, contact }]));

  const messages: Record<string, unknown>[] = [];
  for (const e of hooked) {
    const f = facts.get(e.id);
    if (!f) continue;
    const version = versions.get(versionKey(e.journey_id, e.version))!;
    let url: string;
    let problem: string | null = null;
    try {
      url = render(version.compiled.def.result_webhook!.url, templateScope(f.contact, f.vars ?? {}, version.name)).trim();
      if (url === '') continue;
      if (!isHttpUrl(url)) problem = `result_webhook url is not an http(s) URL: ${url.slice(0, 200)}`;
    } catch (err) {
      url = '';
      problem = `result_webhook url: ${(err as Error).message}`.slice(0, 500);
    }
    messages.push({
      id: newId(),
      tenant_id: e.tenant_id,
      contact_id: f.contact.id,
      enrollment_id: e.id,
      journey_id: e.journey_id,
      status: problem ? 'failed' : 'queued',
      reason: problem,
      idempotency_key: resultWebhookKey(e.id),
      due_at: problem ? null : now,
      content: { url },
    });
  }
  if (!messages.length) return 0;
  const { rows: inserted } = await tx.query<{ status: string }>(
    `with ins as (
       insert into messages (id, tenant_id, contact_id, enrollment_id, journey_id, kind, channel, topic, transactional, status, reason,
                             idempotency_key, due_at, content, failed_at, created_at, updated_at)
       select x.id, x.tenant_id, x.contact_id, x.enrollment_id, x.journey_id, 'result_webhook', 'webhook', null, true, x.status, x.reason,
              x.idempotency_key, x.due_at, x.content, case when x.status = 'failed' then $2::timestamptz end, $2, $2
         from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, contact_id uuid, enrollment_id uuid, journey_id uuid, status text, reason text,
              idempotency_key text, due_at timestamptz, content jsonb)
       on conflict (tenant_id, idempotency_key) do nothing
       returning id, status, reason)
     insert into message_status (message_id, status, at, detail)
     select id, status, $2, case when reason is null then null else jsonb_build_object('reason', reason) end from ins
     returning status`,
    [JSON.stringify(messages), now],
  );
  return inserted.filter((r) => r.status === 'queued').length;
}
