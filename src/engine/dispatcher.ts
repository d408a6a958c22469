import { signWebhook } from '../channels/adapters/webhook.js';
import type { EmailPreparer } from '../channels/email-prepare.js';
import type { HttpRequester } from '../channels/http-client.js';
import { DEFAULT_TEMPLATE_INTERVAL_MINUTES, planWhatsapp, URGENT_PRIORITY, type WhatsappCandidate, type WhatsappPlan } from './whatsapp-plan.js';
import type { ActionNode, SendContent, SendNode } from '../core/journey/definition.js';
import { templateScope, TRANSACTIONAL_TOPIC, type ContactFacts, type Wake } from '../core/journey/engine.js';
import { decideSend } from '../core/policy.js';
import { isRenderLimit, render, renderDeep, renderHtml } from '../core/template.js';
import type { TenantSettings } from '../core/tenant.js';
import { durationMs } from '../core/time.js';
import { resolveZone } from '../core/zone.js';
import type { Db, Queryable } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { applyPendingReceipts } from '../store/message-status.js';
import { getVersions, versionKey, type LiveVersion } from '../store/journey-versions.js';
import { isSuppressedIn, loadContactFacts, loadSuppressed, tenantPolicies } from '../store/step-batch.js';
import type { Delivery, OutgoingMessage, ProviderRegistry, SendResult } from './providers.js';
import { deliverResultWebhook } from './result-webhook.js';
import { guardedRequester } from '../channels/webhook-guard.js';

/**
 * Takes due messages off the outbox and hands them to providers:
 *   1. in a transaction: claim a batch (SKIP LOCKED), ask the contact policy again (an opt-out
 *      or suppression may have arrived since it was queued; quiet hours may have begun), mark
 *      the ones that may go as 'sending' with a lease, hold or suppress the others;
 *   2. outside any transaction: render and call the providers;
 *   3. in a second transaction: record each result.
 * A process that dies in step 2 leaves 'sending' rows whose lease runs out; they are claimed
 * again and sent once more with the same idempotency key.
 */

export const DEFAULT_DISPATCH_BATCH = 500;
/**
 * How long a 'sending' message belongs to the worker that claimed it; after that another worker
 * sends it again. RAPPORT_SEND_LEASE_MS shortens it where waiting five minutes for a killed
 * worker's messages is too long (the crash tests).
 */
const LEASE_MS = leaseMs(process.env.RAPPORT_SEND_LEASE_MS);

function leaseMs(raw: string | undefined): number {
  if (!raw?.trim()) return 5 * 60_000;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100) throw new Error(`RAPPORT_SEND_LEASE_MS must be a whole number of milliseconds, at least 100, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Temporary failures retry after these delays, then fail: three quick retries for a blip, then
 * 5, 30 and 120 minutes for an outage. RAPPORT_RETRY_SCHEDULE replaces it ("5s,20s,1m,5m,30m,2h").
 * Rate-limit answers wait as long as the provider asks and count no attempt.
 */
export const RETRY_DELAYS_MS = retrySchedule(process.env.RAPPORT_RETRY_SCHEDULE);

export function retrySchedule(raw: string | undefined): number[] {
  if (!raw?.trim()) return [5_000, 20_000, 60_000, 5 * 60_000, 30 * 60_000, 120 * 60_000];
  const parts = raw.split(',').map((s) => s.trim());
  try {
    const delays = parts.map((p) => durationMs(p));
    if (delays.some((d) => d <= 0)) throw new Error('every delay must be positive');
    return delays;
  } catch (err) {
    throw new Error(`RAPPORT_RETRY_SCHEDULE must be a comma-separated list of durations such as "5s,20s,1m,5m,30m,2h": ${(err as Error).message}`, { cause: err });
  }
}
/** A provider asking to slow down for longer than this is treated as a failure worth an attempt. */
const MAX_RATE_LIMIT_WAIT_MS = 60 * 60_000;

interface ClaimedMessage {
  id: string;
  tenant_id: string;
  contact_id: string;
  enrollment_id: string | null;
  journey_id: string | null;
  node: string | null;
  kind: 'send' | 'action_webhook' | 'reply' | 'result_webhook';
  channel: SendNode['channel'];
  topic: string | null;
  transactional: boolean;
  idempotency_key: string;
  content: { version?: number; vars?: Record<string, unknown>; inline?: SendContent };
  to_address: string | null;
  attempts: number;
  /** 1 (lowest) to 5. */
  priority: number;
  /** Set on replies: the account that received what they answer. */
  account_id: string | null;
}

interface Prepared {
  msg: ClaimedMessage;
  contact: ContactFacts;
  version: LiveVersion | null;
  /** The tenant's settings as recheck() read them: e-mail footers and tracking switches. */
  settings: TenantSettings;
}

export interface DispatchOptions {
  /** Builds the e-mail that leaves (MJML, text part, footer, tracking); without it e-mail goes as rendered. */
  email?: EmailPreparer;
  /** How action nodes' webhooks leave; without it, guarded with no private range allowed, and unsigned. */
  actionWebhooks?: ActionWebhooks;
}

export interface ActionWebhooks {
  /** Makes the call: a guardedRequester (channels/webhook-guard.ts), or the simulator's stand-in. */
  request: HttpRequester;
  /** The tenant's Standard Webhooks signing secrets, current first; none sends the call unsigned. */
  secrets?(tenantId: string): Promise<string[]>;
}

const GUARDED_UNSIGNED: ActionWebhooks = { request: guardedRequester() };

export interface DispatchResult {
  claimed: number;
  sent: number;
  failed: number;
  held: number;
  suppressed: number;
}

export async function runDispatchBatch(db: Db, now: () => Date, providers: ProviderRegistry, limit = DEFAULT_DISPATCH_BATCH, options: DispatchOptions = {}): Promise<DispatchResult> {
  const result: DispatchResult = { claimed: 0, sent: 0, failed: 0, held: 0, suppressed: 0 };
  const start = now();
  const ready = await db.transaction(async (tx) => {
    // Urgent messages first (a small partial index finds them), then the rest by due time, up to
    // the limit, in one statement. One ordering by priority would walk every held message of a
    // higher priority on each claim.
    const columns = 'id, tenant_id, contact_id, enrollment_id, journey_id, node, kind, channel, topic, transactional, idempotency_key, content, to_address, attempts, priority, account_id';
    const { rows: claimed } = await tx.query<ClaimedMessage>(
      `with urgent as (
         select ${columns} from messages where due_at <= $1 and priority >= ${URGENT_PRIORITY} order by priority desc, due_at limit $2 for update skip locked),
       rest as (
         select ${columns} from messages where due_at <= $1 and not (id = any(array(select id from urgent)))
          order by due_at limit $2 - (select count(*) from urgent) for update skip locked)
       select * from urgent union all select * from rest`,
      [start, limit],
    );
    result.claimed = claimed.length;
    if (!claimed.length) return [];
    return recheck(tx, start, claimed, result);
  });
  if (!ready.length) return result;

  const templates = await loadTemplates(db, ready);
  const whatsapp = await planWhatsapp(db, whatsappCandidates(ready, templates), start);
  // One lookup of signing secrets per tenant and batch, shared by its action webhooks.
  const batch = { db, now: start, webhookSecrets: new Map<string, Promise<string[]>>() };
  const outcomes = await Promise.all(ready.map((p) => deliver(p, templates, providers, options, whatsapp.get(p.msg.id), batch)));

  await db.transaction(async (tx) => {
    const at = now();
    const sent: Record<string, unknown>[] = [];
    const retry: Record<string, unknown>[] = [];
    const failed: Record<string, unknown>[] = [];
    const blocked: Record<string, unknown>[] = [];
    const wakes: { id: string; node: string; wake: Wake }[] = [];
    outcomes.forEach(({ rendered, result: r, wake, account_id, blocked: why, hold }, i) => {
      const m = ready[i]!.msg;
      if (wake && m.enrollment_id && m.node) wakes.push({ id: m.enrollment_id, node: m.node, wake });
      if (why) {
        blocked.push({ id: m.id, reason: why });
        return;
      }
      if (hold) {
        // Held by a limit of Rapport's own: not an attempt, the provider never saw it.
        retry.push({ id: m.id, due_at: hold.until, error: hold.reason, refund: true });
        return;
      }
      if (r.ok) {
        sent.push({ id: m.id, provider: r.provider, provider_message_id: r.provider_message_id, rendered, cost: r.cost ?? null, currency: r.currency ?? null, account_id: account_id ?? null });
        return;
      }
      const code = 'code' in r ? r.code : undefined;
      if (!r.permanent && (code === 'rate_limited' || code === 'unavailable') && (r.retry_after_ms ?? 0) <= MAX_RATE_LIMIT_WAIT_MS) {
        // Waiting out a rate limit or open circuits is not an attempt: no provider looked at the message.
        retry.push({ id: m.id, due_at: new Date(at.getTime() + Math.max(r.retry_after_ms ?? 1000, 100)), error: r.error, code, refund: true });
      } else if (!r.permanent && m.attempts <= RETRY_DELAYS_MS.length) {
        const delay = Math.max(r.retry_after_ms ?? 0, RETRY_DELAYS_MS[m.attempts - 1]!);
        retry.push({ id: m.id, due_at: new Date(at.getTime() + delay), error: r.error, code: code ?? null, refund: false });
      } else failed.push({ id: m.id, error: code && !r.error.startsWith(`${code}:`) ? `${code}: ${r.error}` : r.error, timed_out: code === 'timeout' });
    });
    result.sent = sent.length;
    result.failed = failed.length;
    result.suppressed += blocked.length;
    if (blocked.length) {
      await tx.query(
        `with u as (
           update messages m set status = 'suppressed', reason = x.reason, updated_at = $2, due_at = null
             from jsonb_to_recordset($1::jsonb) as x(id uuid, reason text)
            where m.id = x.id and m.status = 'sending' returning m.id, x.reason)
         insert into message_status (message_id, status, at, detail) select id, 'suppressed', $2, jsonb_build_object('reason', reason) from u`,
        [JSON.stringify(blocked), at],
      );
    }
    if (sent.length) {
      // The contact's thread on the channel, where one exists (a send opens none), records when we
      // last wrote. Threads are locked first, one index probe each, in (tenant, contact, channel)
      // order as inbound.ts's upsert takes them: recording transactions and inbound webhooks
      // touching the same threads queue instead of deadlocking, which here would abort the record
      // of messages the providers already took. Only sends and replies go to the contact.
      await tx.query(
        `with u as (
           update messages m set status = 'sent', reason = null, provider = x.provider, provider_message_id = x.provider_message_id, rendered = x.rendered,
                  cost = x.cost, currency = x.currency, account_id = x.account_id, sent_at = $2, updated_at = $2, due_at = null
             from jsonb_to_recordset($1::jsonb) as x(id uuid, provider text, provider_message_id text, rendered jsonb, cost numeric, currency text, account_id uuid)
            where m.id = x.id and m.status = 'sending' returning m.id, m.tenant_id, m.contact_id, m.channel, m.kind),
         s as (insert into message_status (message_id, status, at) select id, 'sent', $2 from u),
         threads as (
           select c.id
             from (select distinct tenant_id, contact_id, channel from u where kind in ('send', 'reply') order by tenant_id, contact_id, channel) t
            cross join lateral (select c.id from conversations c where c.tenant_id = t.tenant_id and c.contact_id = t.contact_id and c.channel = t.channel for update) c)
         update conversations c set last_outbound_at = greatest(c.last_outbound_at, $2), updated_at = $2
          where c.id = any(array(select id from threads))`,
        [JSON.stringify(sent), at],
      );
      const real = sent.filter((x) => x.provider !== 'sandbox') as { id: string; provider: string; provider_message_id: string }[];
      if (real.length) await applyPendingReceipts(tx, real, at);
    }
    if (retry.length) {
      await tx.query(
        `with u as (
           update messages m set status = 'queued', due_at = x.due_at, reason = x.error, updated_at = $2,
                  attempts = case when x.refund then m.attempts - 1 else m.attempts end
             from jsonb_to_recordset($1::jsonb) as x(id uuid, due_at timestamptz, error text, code text, refund boolean)
            where m.id = x.id and m.status = 'sending' returning m.id, x.error, x.code)
         insert into message_status (message_id, status, at, detail)
         select id, 'queued', $2, jsonb_strip_nulls(jsonb_build_object('retry', error, 'code', code)) from u`,
        [JSON.stringify(retry), at],
      );
    }
    if (failed.length) {
      await tx.query(
        `with u as (
           update messages m set failed_at = $2, updated_at = $2, due_at = null, status = 'failed',
                  -- A provider that never answered may have taken the message: the record must not say it surely did not go.
                  reason = x.error || case when x.timed_out or exists (select 1 from message_status s where s.message_id = m.id and s.detail->>'code' = 'timeout')
                                           then ' (a provider did not answer an attempt and may have delivered it)' else '' end
             from jsonb_to_recordset($1::jsonb) as x(id uuid, error text, timed_out boolean)
            where m.id = x.id and m.status = 'sending' returning m.id, m.reason)
         insert into message_status (message_id, status, at, detail) select id, 'failed', $2, jsonb_build_object('reason', reason) from u`,
        [JSON.stringify(failed), at],
      );
    }
    if (wakes.length) {
      const { rowCount } = await tx.query(
        `update enrollments e
            set wait = e.wait || jsonb_build_object('woken', x.wake), updated_at = $2,
                due_at = case when e.paused_due_at is null then $2::timestamptz end,
                paused_due_at = case when e.paused_due_at is not null then $2::timestamptz end
           from jsonb_to_recordset($1::jsonb) as x(id uuid, node text, wake jsonb)
          where e.id = x.id and e.ended_at is null and e.wait->>'kind' = 'webhook' and e.wait->>'node' = x.node and not (e.wait ? 'woken')`,
        [JSON.stringify(wakes), at],
      );
      if (rowCount) await notifyWork(tx);
    }
  });
  return result;
}

/** The policy's last word before a message leaves: consent, suppression and allowed hours, as of now. */
async function recheck(tx: Queryable, now: Date, claimed: ClaimedMessage[], result: DispatchResult): Promise<Prepared[]> {
  const pairs = claimed.map((m) => ({ tenant_id: m.tenant_id, contact_id: m.contact_id }));
  // One after another: a transaction's client runs one statement at a time anyway.
  const { contacts, consent } = await loadContactFacts(tx, pairs);
  const tenants = await tenantPolicies(tx, [...new Set(claimed.map((m) => m.tenant_id))]);
  const versions = await getVersions(
    tx,
    claimed.flatMap((m) => (m.journey_id && m.content.version !== undefined ? [{ journey_id: m.journey_id, version: m.content.version }] : [])),
  );
  const suppressed = await loadSuppressed(
    tx,
    claimed.flatMap((m) => (m.to_address ? [{ tenant_id: m.tenant_id, address: m.to_address }] : [])),
  );
  const go: Prepared[] = [];
  const hold: { id: string; due_at: Date; reason: string }[] = [];
  const block: { id: string; reason: string }[] = [];
  for (const m of claimed) {
    const contact = contacts.get(m.contact_id);
    const tenant = tenants.get(m.tenant_id);
    const version = m.journey_id && m.content.version !== undefined ? (versions.get(versionKey(m.journey_id, m.content.version)) ?? null) : null;
    if (!contact || !tenant) {
      block.push({ id: m.id, reason: 'contact erased' });
      continue;
    }
    if (m.kind === 'send' && m.channel !== 'webhook') {
      const w = version?.compiled.def.send_window;
      const zone = w?.time_zone && w.time_zone !== 'recipient' ? (w.time_zone === 'tenant' ? tenant.time_zone : w.time_zone) : undefined;
      const d = decideSend(
        now,
        { channel: m.channel, topic: m.topic ?? 'marketing', transactional: m.transactional, ignoreQuietHours: m.transactional && ignoresQuietHours(version, m.node), key: `${m.contact_id}:${m.node}` },
        {
          zone: resolveZone(contact, tenant.time_zone).zone,
          address: m.to_address,
          consent: consent.get(m.contact_id) ?? [],
          suppressed: m.to_address !== null && isSuppressedIn(suppressed, m.tenant_id, m.channel, m.to_address),
          recentSends: [],
        },
        // Caps were counted when the message was queued; counting it again here would hold it for itself.
        { quietHours: tenant.quiet_hours, sendWindow: w ? { days: w.days, start: w.start, end: w.end, ...(zone ? { zone } : {}) } : tenant.send_window, caps: [], spreadMinutes: 10 },
      );
      if (d.action === 'block') {
        block.push({ id: m.id, reason: d.reason });
        continue;
      }
      if (d.action === 'defer') {
        hold.push({ id: m.id, due_at: d.until, reason: d.reason });
        continue;
      }
    }
    go.push({ msg: { ...m, attempts: m.attempts + 1 }, contact, version, settings: tenant.settings as TenantSettings });
  }
  result.held = hold.length;
  result.suppressed = block.length;
  if (go.length) {
    await tx.query(`update messages set status = 'sending', attempts = attempts + 1, due_at = $2, updated_at = $3 where id = any($1::uuid[])`, [
      go.map((p) => p.msg.id),
      new Date(now.getTime() + LEASE_MS),
      now,
    ]);
  }
  if (hold.length) {
    await tx.query(
      `update messages m set status = 'queued', due_at = x.due_at, updated_at = $2 from jsonb_to_recordset($1::jsonb) as x(id uuid, due_at timestamptz) where m.id = x.id`,
      [JSON.stringify(hold), now],
    );
  }
  if (block.length) {
    await tx.query(
      `with u as (
         update messages m set status = 'suppressed', reason = x.reason, due_at = null, updated_at = $2
           from jsonb_to_recordset($1::jsonb) as x(id uuid, reason text) where m.id = x.id returning m.id, x.reason)
       insert into message_status (message_id, status, at, detail) select id, 'suppressed', $2, jsonb_build_object('reason', reason) from u`,
      [JSON.stringify(block), now],
    );
  }
  return go;
}

function ignoresQuietHours(version: LiveVersion | null, node: string | null): boolean {
  const n = node ? version?.compiled.nodes.get(node) : undefined;
  return n?.type === 'send' && n.ignore_quiet_hours === true;
}

interface TemplateRow {
  tenant_id: string;
  name: string;
  subject: string | null;
  body: string | null;
  html: string | null;
  whatsapp_template: SendContent['whatsapp_template'] | null;
}

async function loadTemplates(db: Queryable, ready: Prepared[]): Promise<Map<string, TemplateRow>> {
  const wanted = new Map<string, { tenant_id: string; name: string }>();
  for (const p of ready) {
    const name = contentOf(p)?.template;
    if (name) wanted.set(`${p.msg.tenant_id}|${name}`, { tenant_id: p.msg.tenant_id, name });
  }
  if (!wanted.size) return new Map();
  const list = [...wanted.values()];
  const { rows } = await db.query<TemplateRow>(
    `select t.tenant_id, t.name, t.subject, t.body, t.html, t.whatsapp_template
       from unnest($1::uuid[], $2::text[]) as x(tenant_id, name) join templates t on t.tenant_id = x.tenant_id and t.name = x.name`,
    [list.map((l) => l.tenant_id), list.map((l) => l.name)],
  );
  return new Map(rows.map((r) => [`${r.tenant_id}|${r.name}`, r]));
}

function contentOf(p: Prepared): SendContent | undefined {
  if (p.msg.content.inline) return p.msg.content.inline;
  const node = p.msg.node ? p.version?.compiled.nodes.get(p.msg.node) : undefined;
  return node?.type === 'send' ? node.content : undefined;
}

type Delivered = {
  rendered: Record<string, unknown> | null;
  result: (SendResult & { provider?: string }) | { ok: true; provider: string; provider_message_id: string; cost?: number; currency?: string };
  account_id?: string | null;
  wake?: Wake;
  /** Not sent, by a rule that will not change on retry (the WhatsApp window): recorded as suppressed. */
  blocked?: string;
  /** Not sent yet, by a limit that lifts at `until`. */
  hold?: { until: Date; reason: string };
};

/** The content a message sends: the node's (or its inline) fields over its stored template's. */
function effectiveContent(p: Prepared, templates: Map<string, TemplateRow>): { content: SendContent; stored: TemplateRow | undefined } | null {
  const content = contentOf(p);
  if (!content) return null;
  return { content, stored: content.template ? templates.get(`${p.msg.tenant_id}|${content.template}`) : undefined };
}

function whatsappCandidates(ready: Prepared[], templates: Map<string, TemplateRow>): WhatsappCandidate[] {
  return ready.flatMap((p) => {
    if (p.msg.channel !== 'whatsapp' || p.msg.kind === 'action_webhook') return [];
    const found = effectiveContent(p, templates);
    if (!found) return [];
    const wa = found.content.whatsapp_template ?? found.stored?.whatsapp_template ?? null;
    const interval = p.settings.whatsapp_template_interval_minutes;
    return [
      {
        id: p.msg.id,
        tenant_id: p.msg.tenant_id,
        contact_id: p.msg.contact_id,
        priority: p.msg.priority,
        hasBody: (found.content.body ?? found.stored?.body ?? undefined) !== undefined,
        template: wa ? { name: wa.name, language: wa.language } : null,
        intervalMinutes: typeof interval === 'number' ? interval : DEFAULT_TEMPLATE_INTERVAL_MINUTES,
      },
    ];
  });
}

async function deliver(
  p: Prepared,
  templates: Map<string, TemplateRow>,
  providers: ProviderRegistry,
  options: DispatchOptions,
  whatsapp: WhatsappPlan | undefined,
  batch: { db: Queryable; now: Date; webhookSecrets: Map<string, Promise<string[]>> },
): Promise<Delivered & { result: { ok: boolean } }> {
  const scope = templateScope(p.contact, p.msg.content.vars ?? {}, p.version?.name ?? null);
  if (p.msg.kind === 'action_webhook') {
    const hooks = options.actionWebhooks ?? GUARDED_UNSIGNED;
    const secrets = () => {
      let found = batch.webhookSecrets.get(p.msg.tenant_id);
      if (!found) batch.webhookSecrets.set(p.msg.tenant_id, (found = hooks.secrets?.(p.msg.tenant_id) ?? Promise.resolve([])));
      return found;
    };
    return callWebhook(p, scope, hooks.request, secrets);
  }
  if (p.msg.kind === 'result_webhook') return deliverResultWebhook(batch.db, p.msg, providers, batch.now);
  if (whatsapp && 'block' in whatsapp) return { rendered: null, result: { ok: false, permanent: true, error: whatsapp.block }, blocked: whatsapp.block };
  if (whatsapp && 'hold_until' in whatsapp) return { rendered: null, result: { ok: false, permanent: false, error: whatsapp.reason }, hold: { until: whatsapp.hold_until, reason: whatsapp.reason } };
  let out: OutgoingMessage;
  try {
    const found = effectiveContent(p, templates);
    if (!found) throw new Error('the message has no content (its journey version or node is gone)');
    const { content, stored } = found;
    if (content.template && !stored) throw new Error(`template "${content.template}" does not exist`);
    const pick = (inline: string | undefined, fromTemplate: string | null | undefined) => inline ?? fromTemplate ?? undefined;
    const subject = pick(content.subject, stored?.subject);
    const body = pick(content.body, stored?.body);
    const html = pick(content.html, stored?.html);
    const wa = content.whatsapp_template ?? stored?.whatsapp_template ?? undefined;
    const url = content.url;
    const node = p.msg.node ? p.version?.compiled.nodes.get(p.msg.node) : undefined;
    // Buttons, media, voice menus: strings in them are Liquid like the content's.
    const options = node?.type === 'send' && node.options ? (renderDeep(node.options, scope) as Record<string, unknown>) : undefined;
    out = {
      id: p.msg.id,
      tenant_id: p.msg.tenant_id,
      channel: p.msg.channel,
      to: p.msg.to_address,
      idempotency_key: p.msg.idempotency_key,
      ...(subject !== undefined ? { subject: render(subject, scope) } : {}),
      ...(body !== undefined ? { body: render(body, scope) } : {}),
      ...(html !== undefined ? { html: renderHtml(html, scope) } : {}),
      ...(wa ? { whatsapp_template: { name: wa.name, language: wa.language, parameters: (wa.parameters ?? []).map((x) => render(x, scope)) } } : {}),
      ...(url !== undefined ? { url: render(url, scope) } : {}),
      ...(options ? { options } : {}),
      contact: { name: p.contact.name, locale: p.contact.locale },
      ...(p.msg.kind === 'reply' && p.msg.account_id ? { via_account: p.msg.account_id } : {}),
    };
    // Adapters send the template when there is one: inside the window the text goes instead.
    if (whatsapp && 'mode' in whatsapp) {
      if (whatsapp.mode === 'session') delete out.whatsapp_template;
      else {
        delete out.body;
        if (whatsapp.language && out.whatsapp_template) out.whatsapp_template = { ...out.whatsapp_template, language: whatsapp.language };
      }
    }
  } catch (err) {
    return { rendered: null, result: { ok: false, permanent: !isRenderLimit(err), error: `render: ${(err as Error).message}` } };
  }
  let warnings: string[] = [];
  if (p.msg.channel === 'email' && options.email) {
    const marketing = !p.msg.transactional && p.msg.topic !== TRANSACTIONAL_TOPIC;
    try {
      ({ message: out, warnings } = await options.email(out, { marketing, settings: p.settings }));
    } catch (err) {
      // Only the MJML renderer failing outright lands here; the same layout would fail again.
      return { rendered: null, result: { ok: false, permanent: true, error: `compose: ${(err as Error).message}` } };
    }
  }
  let delivery: Delivery;
  try {
    delivery = await providers.send(out);
  } catch (err) {
    // Loading the tenant's accounts failed (database, secret key): the message is not at fault.
    delivery = { provider: 'unknown', account_id: null, result: { ok: false, permanent: false, code: 'config', error: (err as Error).message } };
  }
  const { id: _id, tenant_id: _t, idempotency_key: _k, via_account: _v, contact: _c, ...sent } = out;
  const rendered = warnings.length ? { ...sent, warnings } : sent;
  return { rendered, result: delivery.result.ok ? { ...delivery.result, provider: delivery.provider } : delivery.result, account_id: delivery.account_id };
}

/**
 * The largest answer an action webhook may give: it is kept in the enrollment's variables, read
 * on every later step and copied into the step history, so a bigger one is refused.
 */
export const MAX_WEBHOOK_ANSWER_BYTES = 256 * 1024;

/**
 * An action node's webhook: its JSON answer goes back to the enrollment, which waits for it.
 * Every failure is permanent and wakes the enrollment with the error, so the journey goes on
 * without the answer instead of waiting out retries. The call goes through `request`, which
 * refuses internal destinations; it is signed as the webhook channel's requests are (Standard
 * Webhooks, `webhook-id` the idempotency key) when the tenant has a webhook account.
 */
async function callWebhook(
  p: Prepared,
  scope: Record<string, unknown>,
  request: HttpRequester,
  secrets: () => Promise<string[]>,
): Promise<Delivered & { result: { ok: boolean } }> {
  const node = p.msg.node ? p.version?.compiled.nodes.get(p.msg.node) : undefined;
  const hook = node?.type === 'action' ? (node as ActionNode).webhook : undefined;
  if (!hook) return { rendered: null, result: { ok: false, permanent: true, error: 'webhook node is gone' }, wake: { kind: 'webhook', status: 0, body: null, error: 'webhook node is gone' } };
  const url = render(hook.url, scope);
  const method = hook.method ?? 'POST';
  const body = hook.body === undefined ? undefined : JSON.stringify(renderDeep(hook.body, scope));
  const rendered = { url, method, ...(body ? { body } : {}) };
  const sent = method !== 'GET' && body ? body : undefined;
  const failed = (status: number, parsed: unknown, error: string) => ({ rendered, result: { ok: false, permanent: true, error } as const, wake: { kind: 'webhook', status, body: parsed, error } as const });
  try {
    const signing = await secrets().catch((err: unknown) => {
      throw new Error(`signing: ${(err as Error).message}`, { cause: err });
    });
    const signature: Record<string, string> = {};
    if (signing.length) {
      const id = p.msg.idempotency_key;
      // The receiver checks the timestamp against its own clock: wall time, not the batch's.
      const timestamp = Math.floor(Date.now() / 1000);
      signature['webhook-id'] = id;
      signature['webhook-timestamp'] = String(timestamp);
      signature['webhook-signature'] = signing.map((secret) => signWebhook(secret, id, timestamp, sent ?? '')).join(' ');
    }
    // A node's own header of the same name would travel beside the signature and spoil it.
    const own = Object.entries(hook.headers ?? {}).filter(([name]) => !(name.toLowerCase() in signature));
    const res = await request(
      url,
      { method, headers: { 'content-type': 'application/json', 'idempotency-key': p.msg.idempotency_key, ...Object.fromEntries(own), ...signature }, ...(sent ? { body: sent } : {}) },
      durationMs(hook.timeout ?? '30s'),
    );
    const size = Buffer.byteLength(res.text);
    if (size > MAX_WEBHOOK_ANSWER_BYTES) return failed(res.status, null, `answer_too_large: the answer is ${size} bytes, more than the ${MAX_WEBHOOK_ANSWER_BYTES} an enrollment keeps`);
    let parsed: unknown = res.text;
    try {
      parsed = res.text ? JSON.parse(res.text) : null;
    } catch {
      // A non-JSON answer is kept as text.
    }
    if (res.status >= 300 && res.status < 400) {
      // Following it would send the call, signed, to an address nobody checked.
      const where = res.headers.get('location');
      return failed(res.status, parsed, `HTTP ${res.status}: redirects are not followed${where ? ` (to ${where.slice(0, 200)})` : ''}`);
    }
    if (res.status < 200 || res.status >= 300) return failed(res.status, parsed, `HTTP ${res.status}`);
    return { rendered, result: { ok: true, provider: 'webhook', provider_message_id: `http_${res.status}` }, wake: { kind: 'webhook', status: res.status, body: parsed } };
  } catch (err) {
    return failed(0, null, (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message);
  }
}
