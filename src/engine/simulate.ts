import { PGlite } from '@electric-sql/pglite';
import type { JourneyDefinition, JourneyNode } from '../core/journey/definition.js';
import type { WaitState } from '../core/journey/engine.js';
import { checkDefinition, checkPublishable, compileJourney, type JourneyProblem } from '../core/journey/validate.js';
import { durationMs } from '../core/time.js';
import type { Db } from '../store/db.js';
import { enrollContacts } from '../store/enrollments.js';
import { ingestEvents } from '../store/events.js';
import { recordStatuses, type StatusUpdate } from '../store/message-status.js';
import { migrate } from '../store/migrate.js';
import { openPglite, pgliteDb } from '../store/pglite.js';
import { createTenant, type TenantPatch } from '../store/tenants.js';
import { ManualClock } from './clock.js';
import type { ActionWebhooks } from './dispatcher.js';
import { SandboxProvider, sandboxRegistry, type SandboxSend } from './providers.js';
import { REPLY_EVENT } from './triggers.js';
import { Worker } from './worker.js';
import { Agenda, buttonsOf, LINK, logUniform, OPEN_STATUS, pick, REPLY_CHANNELS, rng, syntheticContact, uuidOf, type Reaction, type Receipt, type SyntheticContact } from './simulate-crowd.js';
import { buildReport } from './simulate-report.js';

/**
 * The journey simulator: runs a definition through the real engine (scheduler, contact policy,
 * dispatcher) on a throwaway in-memory database, with synthetic contacts around the world, a
 * sandbox provider and a clock that jumps from one due moment to the next. People's reactions
 * (delivery, opens, clicks, replies, other events) are drawn from a seeded generator, each draw
 * keyed by what it is about, so the same seed, start and definition give the same report.
 *
 * Virtual time moves in ticks of at least `resolutionMs` (default five minutes): whatever falls
 * due inside a tick is handled at its end, as by a worker that polls that often. The engine's cost
 * is per batch, and each tick is at least one batch, so the resolution bounds the run time of
 * large simulations: at five minutes, 10,000 contacts over 30 days take about 30 s on one core.
 * Reactions that cannot move an enrollment (a reply nobody waits for, a goal event after the
 * journey ended) get no tick of their own and are recorded at the next one with their own time.
 */

export interface SimulationProbabilities {
  /** Of the messages sent, the share delivered; the rest bounce (email) or are undeliverable. */
  delivered?: number;
  /** Of the delivered e-mails and WhatsApp messages, the share opened / read. */
  opened?: number;
  /** Of the opened (SMS: delivered) messages that carry a link, the share clicked. */
  clicked?: number;
  /** Of the delivered SMS, WhatsApp and e-mail messages, the share answered. A reply implies a read. */
  replied?: number;
}

export interface SimulatedEvent {
  name: string;
  /** The share of contacts that do it, once, at a moment drawn evenly within `within` of the start. */
  probability: number;
  within: string;
  properties?: Record<string, unknown>;
}

export interface SimulationProgress {
  virtualNow: Date;
  /** Virtual days elapsed, out of `total`. */
  done: number;
  total: number;
}

export interface SimulationOptions {
  contacts: number;
  days: number;
  seed?: number;
  /** The moment contacts enrol; default the start of the current hour (UTC). */
  start?: Date;
  probabilities?: SimulationProbabilities;
  replyTexts?: string[];
  events?: SimulatedEvent[];
  /**
   * The simulated tenant's settings: its zone (default Europe/London), send window, quiet hours,
   * frequency caps. What is not given keeps a new tenant's defaults, which are part of what is
   * simulated: sends outside the allowed hours are held.
   */
  tenant?: Omit<TenantPatch, 'name'>;
  /** Shortest step of virtual time, in ms (at least 1 s). */
  resolutionMs?: number;
  /** Clones its database from this instead of creating and migrating one (long-lived processes). */
  template?: SimulationTemplate;
  /** Stops the run (its reason is thrown) at the next step of virtual time. */
  signal?: AbortSignal;
  onProgress?(p: SimulationProgress): void;
}

export interface FunnelRow {
  node: string;
  type: JourneyNode['type'];
  name?: string;
  /** Enrollments that reached the node. */
  entered: number;
  /** Steps recorded at the node by outcome; branches by the path taken, splits by variant. */
  outcomes: Record<string, number>;
}

export interface TimelineEntry {
  at: string;
  node: string | null;
  outcome: string;
  detail: Record<string, unknown> | null;
}

export interface SampleContact {
  id: string;
  name: string;
  zone: string;
  locale: string;
  phone: string;
  email: string;
  attributes: Record<string, unknown>;
}

export interface SimulationReport {
  contacts: number;
  days: number;
  seed: number;
  start: string;
  virtual_end: string;
  wall_ms: number;
  tenant_time_zone: string;
  /** The shortest step of virtual time, in ms. */
  resolution_ms: number;
  probabilities: Required<SimulationProbabilities>;
  funnel: FunnelRow[];
  /** Enrollments by status at the end; "active" ones were still in the journey. */
  ended: Record<string, number>;
  /** Messages by channel and final status. */
  messages: Record<string, Record<string, number>>;
  /** Sends skipped by the contact policy, by reason. */
  blocked: Record<string, number>;
  /** Sends held for later (quiet hours, send window, frequency cap), by reason. */
  deferred: Record<string, number>;
  sample: { contact: SampleContact; timeline: TimelineEntry[] };
}

export const DEFAULT_PROBABILITIES: Required<SimulationProbabilities> = { delivered: 0.95, opened: 0.4, clicked: 0.1, replied: 0.2 };
export const DEFAULT_REPLY_TEXTS = ['Yes', 'Yes please', 'No thanks', 'Tell me more', 'How much is it?', 'Call me tomorrow'];
export const MAX_SIMULATED_CONTACTS = 100_000;
export const DEFAULT_TENANT_ZONE = 'Europe/London';
export const DEFAULT_RESOLUTION_MS = 5 * 60_000;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Answers every action webhook with 200 and `{}` without leaving the process: the simulator calls no URL. */
const STUB_ANSWER: ActionWebhooks = { request: () => Promise.resolve({ status: 200, headers: { get: () => null }, text: '{}' }) };

// ---------------------------------------------------------------------------------------------
// Checks

/**
 * The checks a definition must pass to be simulated: those of publishing, with no stored
 * templates, since the simulation has none. Fields are relative to the definition.
 */
export function simulationProblems(input: unknown): { definition: JourneyDefinition; problems: JourneyProblem[] } {
  const { definition, problems } = checkDefinition(input);
  if (problems.length) return { definition, problems };
  const publish = checkPublishable(definition, { templateExists: () => false }).map((p) =>
    /\.content\.template$/.test(p.field)
      ? { ...p, message: `uses the stored template ${JSON.stringify(templateOf(definition, p.node))}; a simulation has no stored templates, so give the content inline (body, subject, html or whatsapp_template)` }
      : p,
  );
  return { definition, problems: publish };
}

function templateOf(def: JourneyDefinition, node: string | undefined): string | undefined {
  const n = def.nodes.find((x) => x.id === node);
  return n?.type === 'send' ? n.content.template : undefined;
}

export class SimulationError extends Error {
  constructor(readonly problems: JourneyProblem[]) {
    super(`the journey cannot be simulated: ${problems.map((p) => `${p.field || 'definition'}${p.node ? ` (node ${p.node})` : ''}: ${p.message}`).join('; ')}`.slice(0, 1000));
    this.name = 'SimulationError';
  }
}

function checkOptions(o: SimulationOptions): void {
  const bad = (what: string) => {
    throw new RangeError(what);
  };
  if (!Number.isInteger(o.contacts) || o.contacts < 1 || o.contacts > MAX_SIMULATED_CONTACTS) bad(`contacts must be a whole number from 1 to ${MAX_SIMULATED_CONTACTS}`);
  if (!(o.days > 0) || o.days > 3660) bad('days must be more than 0 and at most 3660');
  if (o.seed !== undefined && !Number.isInteger(o.seed)) bad('seed must be a whole number');
  if (o.start !== undefined && Number.isNaN(o.start.getTime())) bad('start is not a valid date');
  if (o.resolutionMs !== undefined && !(o.resolutionMs >= 1000 && o.resolutionMs <= DAY)) bad('resolution must be from 1 second to 1 day');
  for (const [k, v] of Object.entries(o.probabilities ?? {})) if (v !== undefined && !(v >= 0 && v <= 1)) bad(`probability ${k} must be between 0 and 1`);
  if (o.replyTexts !== undefined && !o.replyTexts.length) bad('replyTexts needs at least one text');
  for (const e of o.events ?? []) {
    if (!e.name) bad('every simulated event needs a name');
    if (!(e.probability >= 0 && e.probability <= 1)) bad(`probability of event ${e.name} must be between 0 and 1`);
    durationMs(e.within);
  }
}

// ---------------------------------------------------------------------------------------------
// The run

export async function simulate(def: JourneyDefinition, opts: SimulationOptions): Promise<SimulationReport> {
  const began = performance.now();
  checkOptions(opts);
  const { problems } = simulationProblems(def);
  if (problems.length) throw new SimulationError(problems);

  const seed = opts.seed ?? 1;
  const start = opts.start ?? new Date(Math.floor(Date.now() / HOUR) * HOUR);
  const startMs = start.getTime();
  const endMs = startMs + opts.days * DAY;
  const resolution = opts.resolutionMs ?? DEFAULT_RESOLUTION_MS;
  const p = { ...DEFAULT_PROBABILITIES, ...Object.fromEntries(Object.entries(opts.probabilities ?? {}).filter(([, v]) => v !== undefined)) };
  const replyTexts = opts.replyTexts ?? DEFAULT_REPLY_TEXTS;
  const tenantZone = opts.tenant?.time_zone ?? DEFAULT_TENANT_ZONE;
  const compiled = compileJourney(def);

  const db = opts.template ? await opts.template.open() : await freshDatabase();
  try {
    // Everything is in memory, so an index probe costs about what a sequential read does.
    await db.exec('set random_page_cost = 1.1');
    const tenant = (await createTenant(db, { ...opts.tenant, name: 'Simulation', time_zone: tenantZone }, 'simulation')).id;
    // The journey's id is part of split assignment; derived from seed and definition, the same
    // run assigns the same variants. (The engine caches versions by id: same id, same definition.)
    const journeyId = uuidOf(`rapport-simulation:${seed}:journey:${JSON.stringify(def)}`);
    await db.query(
      `insert into journeys (id, tenant_id, name, status, draft, version, entry_event, created_at, updated_at, published_at)
       values ($1, $2, $3, 'active', $4, 1, $5, $6, $6, $6)`,
      [journeyId, tenant, def.name ?? 'Simulated journey', JSON.stringify(def), compiled.entryEvent, start],
    );
    await db.query(
      `insert into journey_versions (journey_id, version, tenant_id, definition, channels, published_at, published_by) values ($1, 1, $2, $3, $4, $5, 'simulation')`,
      [journeyId, tenant, JSON.stringify(def), compiled.channels, start],
    );

    const people = Array.from({ length: opts.contacts }, (_, i) => syntheticContact(seed, i, start));
    await insertContacts(db, tenant, people, start);
    const indexOf = new Map(people.map((c, i) => [c.id, i]));

    const enrolled = await db.transaction((tx) =>
      enrollContacts(
        tx,
        { journey_id: journeyId, tenant_id: tenant, version: 1, reentry: def.reentry },
        people.map((c) => ({ contact_id: c.id, vars: { trigger: { event: def.entry.event ?? 'simulation', simulated: true } } })),
        start,
        'simulation',
      ),
    );
    const contactOfEnrollment = new Map(enrolled.enrolled.map((e) => [e.enrollment_id, e.contact_id]));
    // Fresh tables have no statistics, and the default costs are for a disk: left alone, the
    // planner hash-joins whole tables for a batch of 500 ids instead of probing their indexes.
    await db.exec('analyze');

    const receipts = new Agenda<Receipt>();
    const reactions = new Agenda<Reaction>();
    for (const [k, e] of (opts.events ?? []).entries()) {
      const within = durationMs(e.within);
      people.forEach((c, i) => {
        const r = rng(`${seed}:event:${k}:${e.name}:${i}`);
        if (r() >= e.probability) return;
        reactions.push({ at: startMs + Math.floor(r() * within), contact_id: c.id, name: e.name, properties: { ...(e.properties ?? {}), simulated: true } });
      });
    }

    const sent: SandboxSend[] = [];
    const sandbox = new SandboxProvider({ keep: 0, onSend: (s) => sent.push(s) });
    const clock = new ManualClock(start);
    const worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox), actionWebhooks: STUB_ANSWER });
    const visits = new Map<string, number>();

    const react = (s: SandboxSend, now: number) => {
      if (s.repeat) return;
      const m = s.message;
      if (m.channel === 'webhook') return;
      // The idempotency key is enrollment:node:step.
      const [enrollment, node] = m.idempotency_key.split(':');
      const contact = contactOfEnrollment.get(enrollment ?? '');
      if (!contact || !node) return;
      const visitKey = `${contact}:${node}`;
      const visit = (visits.get(visitKey) ?? 0) + 1;
      visits.set(visitKey, visit);
      const r = rng(`${seed}:message:${indexOf.get(contact)}:${node}:${visit}`);
      const at = (t: number, status: StatusUpdate['status'], detail?: Record<string, unknown>) =>
        receipts.push({ at: t, update: { message_id: m.id, status, at: new Date(t), ...(detail ? { detail } : {}) } });

      if (r() >= p.delivered) {
        at(now + logUniform(r, 2 * SECOND, 60 * SECOND), m.channel === 'email' ? 'bounced' : 'undeliverable', { reason: 'simulated' });
        return;
      }
      const delivered = now + 2 * SECOND + Math.floor(r() * 8 * SECOND);
      at(delivered, 'delivered');
      const openAs = OPEN_STATUS[m.channel];
      const replies = REPLY_CHANNELS.has(m.channel) && r() < p.replied;
      const replyAt = delivered + logUniform(r, MINUTE, 6 * HOUR);
      let seen: number | null = null;
      if (openAs && (r() < p.opened || replies)) {
        seen = delivered + logUniform(r, MINUTE, 8 * HOUR);
        // A reply means it was read by then.
        if (replies && seen >= replyAt) seen = Math.max(delivered + SECOND, replyAt - logUniform(r, 5 * SECOND, 5 * MINUTE));
        at(seen, openAs);
      }
      const hasLink = LINK.test(`${m.body ?? ''} ${m.html ?? ''} ${(m.whatsapp_template?.parameters ?? []).join(' ')}`);
      const clickFrom = openAs ? seen : delivered;
      if (hasLink && clickFrom !== null && r() < p.clicked) at(clickFrom + logUniform(r, 5 * SECOND, 10 * MINUTE), 'clicked');
      if (!replies) return;
      const buttons = m.channel === 'whatsapp' ? buttonsOf(compiled.nodes.get(node)) : [];
      const button = buttons.length ? pick(r, buttons) : null;
      const text = button ? button.text : pick(r, replyTexts);
      const payload = button ? button.payload : null;
      at(replyAt, 'replied', { text, ...(payload ? { payload } : {}) });
      reactions.push({ at: replyAt, contact_id: contact, name: REPLY_EVENT, properties: { channel: m.channel, text, payload, message_id: m.id, simulated: true } });
    };

    // Receipts only matter to conditions on engagement; without any, they are written in bulk.
    const receiptsMatter = compiled.needs.engagement;
    // Reactions that cannot change where an enrollment stands (none waits for them, ends on them
    // or enters on them) need no tick of their own: they are recorded at the next tick, with the
    // time they happened, before anything that reads event history runs.
    const endsOn = new Set([...(def.goals ?? []), ...(def.exit_on ?? [])].map((m) => m.event));
    let quiet: Reaction[] = [];

    const applyUntil = async (now: number, final = false) => {
      if (receiptsMatter || final || receipts.size >= 10_000) {
        const due = receipts.takeUntil(now);
        for (let i = 0; i < due.length; i += 10_000) {
          const chunk = due.slice(i, i + 10_000).map((d) => d.update);
          await db.transaction((tx) => recordStatuses(tx, chunk));
        }
      }
      const happened = [...quiet.filter((q) => q.at <= now), ...reactions.takeUntil(now)].sort((a, b) => a.at - b.at);
      quiet = quiet.filter((q) => q.at > now);
      for (let i = 0; i < happened.length; i += 5000) {
        await ingestEvents(
          db,
          tenant,
          happened.slice(i, i + 5000).map((h) => ({ name: h.name, contact_id: h.contact_id, properties: h.properties, occurred_at: new Date(h.at).toISOString() })),
          new Date(now),
          {},
        );
      }
    };

    const nextDue = async (): Promise<number | null> => {
      const { rows } = await db.query<{ at: Date | null }>(
        `select least((select min(due_at) from enrollments where due_at is not null), (select min(due_at) from messages where due_at is not null)) as at`,
      );
      return rows[0]?.at ? rows[0].at.getTime() : null;
    };

    const urgent = (r: Reaction, open: Map<string, WaitState | null>): boolean => {
      if (r.name === compiled.entryEvent) return true;
      if (!open.has(r.contact_id)) return false;
      if (endsOn.has(r.name)) return true;
      const w = open.get(r.contact_id);
      if (w?.kind !== 'event' || w.woken) return false;
      if (w.events.includes(r.name)) return true;
      return r.name === REPLY_EVENT && (w.reply === true || (w.reply !== false && w.reply === r.properties.channel));
    };

    /**
     * The time of the first reaction before `until` that can change an enrollment, setting the
     * quiet ones before it aside. Until then nothing else moves (no timer is due), so the
     * enrollments as they stand now are as they will stand when it happens.
     */
    const nextUrgent = async (until: number): Promise<number | null> => {
      for (;;) {
        const batch = reactions.takeBefore(until, 5000);
        if (!batch.length) return null;
        const { rows } = await db.query<{ contact_id: string; wait: WaitState | null }>(
          `select e.contact_id, e.wait from unnest($2::uuid[]) as x(contact_id)
             join enrollments e on e.tenant_id = $1 and e.contact_id = x.contact_id and e.ended_at is null`,
          [tenant, [...new Set(batch.map((r) => r.contact_id))]],
        );
        const open = new Map(rows.map((r) => [r.contact_id, r.wait]));
        const first = batch.findIndex((r) => urgent(r, open));
        quiet.push(...(first < 0 ? batch : batch.slice(0, first)));
        if (first >= 0) {
          for (const r of batch.slice(first)) reactions.push(r);
          return batch[first]!.at;
        }
      }
    };

    let now = startMs;
    for (;;) {
      opts.signal?.throwIfAborted();
      await applyUntil(now);
      await worker.drain();
      for (const s of sent.splice(0)) react(s, now);
      opts.onProgress?.({ virtualNow: new Date(now), done: (now - startMs) / DAY, total: opts.days });
      const due = await nextDue();
      const reaction = await nextUrgent(Math.min(due ?? Infinity, endMs + 1));
      const candidates = [due, reaction].filter((t): t is number => t !== null);
      if (!candidates.length) break;
      const next = Math.max(Math.min(...candidates), now + resolution);
      if (next > endMs) break;
      now = next;
      clock.set(new Date(now));
    }
    // The last stretch up to the horizon; receipts of what this sends would come after it.
    clock.set(new Date(endMs));
    await applyUntil(endMs, true);
    await worker.drain();
    opts.onProgress?.({ virtualNow: new Date(endMs), done: opts.days, total: opts.days });

    const report = await buildReport(db, def, people[0]!, enrolled.enrolled.find((e) => e.contact_id === people[0]!.id)?.enrollment_id ?? null);
    return {
      contacts: opts.contacts,
      days: opts.days,
      seed,
      start: start.toISOString(),
      virtual_end: new Date(endMs).toISOString(),
      wall_ms: Math.round(performance.now() - began),
      tenant_time_zone: tenantZone,
      resolution_ms: resolution,
      probabilities: p,
      ...report,
    };
  } finally {
    await db.close();
  }
}

async function freshDatabase(): Promise<Db> {
  const db = await openPglite();
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

/**
 * A migrated empty database kept in memory, cloned for each simulation: a clone takes about a
 * third of the time of creating and migrating one. For processes that simulate more than once
 * (the API server, tests); close() releases it.
 */
export class SimulationTemplate {
  private base: Promise<PGlite> | null = null;

  async open(): Promise<Db> {
    this.base ??= (async () => {
      const pg = await PGlite.create();
      await migrate(pgliteDb(pg));
      return pg;
    })();
    this.base.catch(() => (this.base = null));
    return pgliteDb(await (await this.base).clone());
  }

  async close(): Promise<void> {
    const base = this.base;
    this.base = null;
    if (base) await (await base).close();
  }
}

async function insertContacts(db: Db, tenant: string, people: SyntheticContact[], at: Date): Promise<void> {
  const CHUNK = 5000;
  for (let i = 0; i < people.length; i += CHUNK) {
    const chunk = people.slice(i, i + CHUNK);
    await db.transaction(async (tx) => {
      await tx.query(
        `insert into contacts (id, tenant_id, external_id, name, phone, email, whatsapp, time_zone, locale, attributes, tags, created_at, updated_at)
         select x.id, $1, x.external_id, x.name, x.phone, x.email, x.phone, x.time_zone, x.locale, x.attributes, '{}', $3, $3
           from jsonb_to_recordset($2::jsonb) as x(id uuid, external_id text, name text, phone text, email text, time_zone text, locale text, attributes jsonb)`,
        [tenant, JSON.stringify(chunk), at],
      );
      // Consent on every channel and topic. Only the current state is written: the policy reads
      // nothing else, and the ledger rows would double the setup time.
      await tx.query(
        `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
         select $1, c, ch, 'all', 'granted', 'express', gen_random_uuid(), $3
           from unnest($2::uuid[]) as c, unnest(array['sms', 'email', 'whatsapp', 'voice']) as ch`,
        [tenant, chunk.map((c) => c.id), new Date(at.getTime() - DAY)],
      );
    });
  }
}
