import { advance, type EnrollmentState, type StepEnv } from '../core/journey/engine.js';
import type { PolicySettings } from '../core/policy.js';
import { resolveZone } from '../core/zone.js';
import type { Db, Tx } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { getVersions, versionKey, type LiveVersion } from '../store/journey-versions.js';
import {
  claimDueEnrollments,
  isSuppressedIn,
  journeysAndTenants,
  loadContactFacts,
  loadEngagement,
  loadEventTimes,
  loadRecentSends,
  loadSuppressed,
  loadWhatsappInbound,
  longestCap,
  parkEnrollments,
  writeOutcomes,
  type ClaimedEnrollment,
  type OutcomeRow,
  type TenantPolicyRow,
} from '../store/step-batch.js';
import { endEnrollments } from '../store/enrollments.js';
import { addressFor } from '../core/policy.js';
import { recordEmittedEvents } from './triggers.js';

export const DEFAULT_BATCH_SIZE = 500;
export const DEFAULT_SPREAD_MINUTES = 10;

export interface BatchResult {
  claimed: number;
  /** Steps recorded (history rows), the unit of the engine's throughput figures. */
  steps: number;
  messages: number;
  /** Messages that became due now: the dispatcher has work. */
  queued: number;
}

/**
 * Claims one batch of due enrollments, advances each with the pure engine, and commits every
 * transition, history record, outbox message and contact change in the same transaction. A
 * worker that dies before the commit loses nothing: the rows unlock and another takes them.
 */
export async function runSchedulerBatch(db: Db, now: Date, limit = DEFAULT_BATCH_SIZE): Promise<BatchResult> {
  return db.transaction(async (tx) => {
    const claimed = await claimDueEnrollments(tx, now, limit);
    if (!claimed.length) return { claimed: 0, steps: 0, messages: 0, queued: 0 };
    const result = await evaluateBatch(tx, now, claimed);
    return { claimed: claimed.length, ...result };
  });
}

async function evaluateBatch(tx: Tx, now: Date, claimed: ClaimedEnrollment[]): Promise<Omit<BatchResult, 'claimed'>> {
  const { statuses, tenants } = await journeysAndTenants(tx, [...new Set(claimed.map((e) => e.journey_id))]);
  const park: string[] = [];
  const gone: ClaimedEnrollment[] = [];
  const live: ClaimedEnrollment[] = [];
  for (const e of claimed) {
    const s = statuses.get(e.journey_id);
    if (s === 'active') live.push(e);
    else if (s === 'paused') park.push(e.id);
    else gone.push(e);
  }
  await parkEnrollments(tx, park);
  for (const [tenant, ids] of groupBy(gone, (e) => e.tenant_id)) await endEnrollments(tx, tenant, ids.map((e) => e.id), 'cancelled', 'journey archived', now);
  if (!live.length) return { steps: 0, messages: 0, queued: 0 };

  // One after another: a transaction's client runs one statement at a time anyway.
  const versions = await getVersions(tx, live);
  const { contacts, consent } = await loadContactFacts(
    tx,
    live.map((e) => ({ tenant_id: e.tenant_id, contact_id: e.contact_id })),
  );

  // Suppressions are looked up by address hash; only the addresses this batch could send to.
  const addresses: { tenant_id: string; address: string }[] = [];
  for (const e of live) {
    const c = contacts.get(e.contact_id);
    const v = versions.get(versionKey(e.journey_id, e.version))!;
    if (!c) continue;
    for (const ch of v.compiled.channels) {
      if (ch === 'webhook') continue;
      const a = addressFor(ch, c);
      if (a) addresses.push({ tenant_id: e.tenant_id, address: a });
    }
  }

  const capped = live.filter((e) => (tenants.get(e.tenant_id)?.frequency_caps.length ?? 0) > 0);
  const longest = Math.max(0, ...[...tenants.values()].map((t) => longestCap(t.frequency_caps)));
  const engaged = live.filter((e) => versions.get(versionKey(e.journey_id, e.version))!.compiled.needs.engagement);
  const histories = historyNeeds(live, versions);

  const suppressed = await loadSuppressed(tx, addresses);
  const recent = capped.length ? await loadRecentSends(tx, capped, new Date(now.getTime() - longest)) : new Map<string, { channel: string; at: Date }[]>();
  const engagement = engaged.length ? await loadEngagement(tx, engaged.map((e) => e.id)) : undefined;
  const onWhatsapp = live.filter((e) => versions.get(versionKey(e.journey_id, e.version))!.compiled.channels.includes('whatsapp'));
  const whatsappInbound = onWhatsapp.length ? await loadWhatsappInbound(tx, onWhatsapp.map((e) => ({ tenant_id: e.tenant_id, contact_id: e.contact_id }))) : null;
  const eventTimes = histories.names.length ? await loadEventTimes(tx, histories.pairs, histories.names, histories.since(now)) : undefined;

  const rows: OutcomeRow[] = [];
  const ended: ClaimedEnrollment[] = [];
  const broken: { e: ClaimedEnrollment; reason: string }[] = [];
  for (const e of live) {
    const contact = contacts.get(e.contact_id);
    const tenant = tenants.get(e.tenant_id)!;
    const version = versions.get(versionKey(e.journey_id, e.version))!;
    if (!contact) {
      ended.push(e);
      continue;
    }
    const zone = resolveZone(contact, tenant.time_zone).zone;
    let sends = recent.get(e.contact_id);
    if (!sends) recent.set(e.contact_id, (sends = []));
    const times = eventTimes?.get(e.contact_id);
    const env: StepEnv = {
      now,
      journeyId: e.journey_id,
      journey: version.compiled,
      contact,
      consent: consent.get(e.contact_id) ?? [],
      zone,
      tenantZone: tenant.time_zone,
      policy: policySettings(tenant, version),
      suppressed: (channel, address) => isSuppressedIn(suppressed, e.tenant_id, channel, address),
      recentSends: sends,
      eventCount: times
        ? (name, sinceMs) => {
            const list = times.get(name);
            if (!list) return 0;
            if (sinceMs === null) return list.length;
            const from = now.getTime() - sinceMs;
            return list.filter((t) => t > from).length;
          }
        : undefined,
      messages: engagement?.get(e.id),
      ...(whatsappInbound && version.compiled.channels.includes('whatsapp') ? { whatsappInboundAt: whatsappInbound.get(e.contact_id) ?? null } : {}),
    };
    const state: EnrollmentState = { id: e.id, contact_id: e.contact_id, node: e.node, wait: e.wait, vars: e.vars, memo: e.memo, steps: e.steps, entered_at: e.entered_at };
    try {
      rows.push({ tenant_id: e.tenant_id, journey_id: e.journey_id, version: e.version, contact_id: e.contact_id, outcome: advance(state, env) });
    } catch (err) {
      // A template in an action that fails to render (over its time or memory bound) must not
      // roll back the batch, or the same batch would fail again forever: this enrollment ends.
      broken.push({ e, reason: `at or after node ${JSON.stringify(e.node ?? version.compiled.start)}: ${(err as Error).message}`.slice(0, 500) });
    }
  }
  for (const [tenant, list] of groupBy(ended, (e) => e.tenant_id)) await endEnrollments(tx, tenant, list.map((e) => e.id), 'failed', 'contact no longer exists', now);
  for (const { e, reason } of broken) await endEnrollments(tx, e.tenant_id, [e.id], 'failed', reason, now);

  const written = await writeOutcomes(tx, now, rows);
  const emitted = rows.flatMap((r) => r.outcome.emits.map((em) => ({ tenant_id: r.tenant_id, contact_id: r.contact_id, ...em })));
  if (emitted.length) await recordEmittedEvents(tx, emitted, now);
  // Enrollments that came due again already (a held send whose moment is now) and queued
  // messages both mean more work for someone right away.
  if (written.queued > 0 || rows.some((r) => r.outcome.due_at !== null && r.outcome.due_at.getTime() <= now.getTime())) await notifyWork(tx);
  return { steps: written.steps, messages: written.messages, queued: written.queued };
}

function policySettings(tenant: TenantPolicyRow, version: LiveVersion): PolicySettings {
  const w = version.compiled.def.send_window;
  const zone = w?.time_zone && w.time_zone !== 'recipient' ? (w.time_zone === 'tenant' ? tenant.time_zone : w.time_zone) : undefined;
  const spread = tenant.settings.spread_minutes;
  const capAction = tenant.settings.frequency_cap_action;
  return {
    quietHours: tenant.quiet_hours,
    sendWindow: w ? { days: w.days, start: w.start, end: w.end, ...(zone ? { zone } : {}) } : tenant.send_window,
    caps: tenant.frequency_caps,
    spreadMinutes: typeof spread === 'number' ? spread : DEFAULT_SPREAD_MINUTES,
    capAction: capAction === 'block' ? 'block' : 'defer',
  };
}

/** Which contacts need which event history for their version's conditions, and how far back. */
function historyNeeds(live: ClaimedEnrollment[], versions: Map<string, LiveVersion>) {
  const names = new Set<string>();
  let longest = 0;
  const pairs: { tenant_id: string; contact_id: string }[] = [];
  for (const e of live) {
    const needs = versions.get(versionKey(e.journey_id, e.version))!.compiled.needs.eventHistory;
    if (!needs.size) continue;
    pairs.push({ tenant_id: e.tenant_id, contact_id: e.contact_id });
    for (const [name, ms] of needs) {
      names.add(name);
      longest = Math.max(longest, ms);
    }
  }
  return { names: [...names], pairs, since: (now: Date) => (Number.isFinite(longest) ? new Date(now.getTime() - longest) : null) };
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const l = m.get(k);
    if (l) l.push(i);
    else m.set(k, [i]);
  }
  return m;
}
