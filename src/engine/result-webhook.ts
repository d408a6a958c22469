import { NotFoundError } from '../core/errors.js';
import type { Queryable } from '../store/db.js';
import { loadEnrollmentResult } from './enrollment-result.js';
import type { OutgoingMessage, ProviderRegistry, SendResult } from './providers.js';

/**
 * Sends an ended enrollment's result to its journey's `result_webhook` URL. The outbox row was
 * queued when the enrollment ended (src/store/result-webhooks.ts); the result is computed here,
 * at dispatch, so it reports everything up to the moment it leaves. It goes as a message on the
 * webhook channel through the provider registry: the tenant's webhook account signs it with its
 * Standard Webhooks secret (webhook-id is the message id, the same on every retry) and the result
 * is the request's `data`; a tenant without a webhook account has it recorded by the sandbox, as
 * any channel without an account. Failures retry on the dispatcher's schedule like any send.
 * The URL may come from the triggering event, i.e. from any API caller of the tenant, so the
 * webhook adapter's destination guard applies: a private or loopback destination the operator
 * has not allowed fails the message for good with `blocked_destination: …`.
 */

/** The `subject` of a result webhook, so one endpoint can tell results from journey steps. */
export const RESULT_WEBHOOK_SUBJECT = 'enrollment.result';

/**
 * How long a result waits for the enrollment's other messages that are leaving at the same time
 * (its last step queued a follow-up and ended): long enough for their answers to be recorded.
 */
export const RESULT_SETTLE_MS = 1000;
/** A provider call takes at most the router's timeout (15 s); a send 'sending' for longer has lost its worker. */
const STALE_SENDING_MS = 60_000;

export interface ResultWebhookMessage {
  id: string;
  tenant_id: string;
  enrollment_id: string | null;
  idempotency_key: string;
  content: object;
}

export interface ResultDelivery {
  rendered: Record<string, unknown> | null;
  result: SendResult & { provider?: string };
  account_id?: string | null;
  hold?: { until: Date; reason: string };
}

/**
 * Computes the result and hands it to the provider registry. Never throws: what went wrong is in
 * the answer, permanent (the enrollment is gone) or worth a retry; `hold` puts it back unattempted.
 */
export async function deliverResultWebhook(db: Queryable, msg: ResultWebhookMessage, providers: ProviderRegistry, now: Date): Promise<ResultDelivery> {
  const url = (msg.content as { url?: unknown }).url;
  if (!msg.enrollment_id || typeof url !== 'string') return gone('the result webhook has no enrollment or URL');
  let data;
  try {
    // Messages of the enrollment still leaving would be missing from the result: wait for them.
    // A send claimed long ago belongs to a worker that died; its lease, minutes long, is not waited out.
    const { rows: busy } = await db.query(
      `select 1 from messages
        where enrollment_id = $1 and tenant_id = $2 and kind in ('send', 'action_webhook')
          and ((status = 'sending' and updated_at > $4) or (status = 'queued' and due_at <= $3))
        limit 1`,
      [msg.enrollment_id, msg.tenant_id, now, new Date(now.getTime() - STALE_SENDING_MS)],
    );
    if (busy.length) {
      const reason = "waiting for the enrollment's last messages to leave";
      return { rendered: null, result: { ok: false, permanent: false, error: reason }, hold: { until: new Date(now.getTime() + RESULT_SETTLE_MS), reason } };
    }
    data = await loadEnrollmentResult(db, msg.tenant_id, msg.enrollment_id);
  } catch (err) {
    if (err instanceof NotFoundError) return gone('the enrollment is gone');
    // A database hiccup is worth a retry; thrown, it would fail the batch, whose other sends
    // have already left.
    return { rendered: null, result: { ok: false, permanent: false, error: `computing the result: ${(err as Error).message}` } };
  }
  const out: OutgoingMessage = {
    id: msg.id,
    tenant_id: msg.tenant_id,
    channel: 'webhook',
    to: null,
    idempotency_key: msg.idempotency_key,
    url,
    subject: RESULT_WEBHOOK_SUBJECT,
    options: { data },
  };
  const { id: _id, tenant_id: _t, idempotency_key: _k, ...rendered } = out;
  try {
    const d = await providers.send(out);
    return { rendered, result: d.result.ok ? { ...d.result, provider: d.provider } : d.result, account_id: d.account_id };
  } catch (err) {
    // Loading the tenant's accounts failed (database, secret key): the message is not at fault.
    return { rendered, result: { ok: false, permanent: false, code: 'config', error: (err as Error).message } };
  }
}

function gone(error: string): ResultDelivery {
  return { rendered: null, result: { ok: false, permanent: true, error } };
}
