import type { ConsentEntry } from '../consent.js';
import { addressFor, decideSend, type PolicySettings } from '../policy.js';
import { renderDeep } from '../template.js';
import { addDuration, dateAttributeMoment, nextLocalTime } from '../time.js';
import { evaluate, type ConditionFacts, type ContactFacts } from './conditions.js';
export type { ContactFacts } from './conditions.js';
import type { ActionNode, BranchNode, JourneyNode, SendChannel, SendNode, SplitNode, WaitNode } from './definition.js';
import { assignVariant } from './split.js';
import type { CompiledJourney } from './validate.js';

/**
 * One enrollment's walk, as a pure function: given where it stands, the contact and the time,
 * advance() runs nodes until the enrollment has to wait (a timer, an event, a webhook answer,
 * a send held for the recipient's allowed hours) or ends, and returns what to write. The
 * scheduler loads facts for a whole batch, calls this per enrollment and writes all outcomes
 * in one transaction; nothing here reads a clock, a database or the network.
 */

/** What an enrollment waits for besides its timer. `woken` is filled in by whoever wakes it. */
export type WaitState =
  | { kind: 'time'; node: string }
  | { kind: 'send'; node: string; reason: string }
  | { kind: 'event'; node: string; events: string[]; reply: boolean | string; woken?: Wake }
  | { kind: 'webhook'; node: string; woken?: Wake };

export type Wake =
  | { kind: 'event'; name: string; properties: Record<string, unknown>; event_id: string; at: string }
  | { kind: 'reply'; channel: string; text: string | null; payload: string | null; intent?: string | null; message_id?: string; at: string }
  | { kind: 'webhook'; status: number; body: unknown; error?: string };

/** Bookkeeping the engine keeps per enrollment, apart from the variables templates read. */
export interface Memo {
  splits?: Record<string, string>;
  last_send?: string;
  replies?: Record<string, { text: string | null; payload: string | null; intent?: string | null; channel: string; at: string }>;
}

export interface EnrollmentState {
  id: string;
  contact_id: string;
  node: string | null;
  wait: WaitState | null;
  vars: Record<string, unknown>;
  memo: Memo;
  steps: number;
  entered_at: Date;
}


export interface StepEnv {
  now: Date;
  journeyId: string;
  journey: CompiledJourney;
  contact: ContactFacts;
  consent: readonly ConsentEntry[];
  /** The recipient's zone (contact, else phone, else tenant). */
  zone: string;
  tenantZone: string;
  policy: PolicySettings;
  suppressed(channel: SendChannel, address: string): boolean;
  /** This contact's sends that count toward caps; advance() appends the ones it queues. */
  recentSends: { channel: string; at: Date }[];
  eventCount?: ConditionFacts['eventCount'];
  messages?: ConditionFacts['messages'];
  /** When the contact last wrote on WhatsApp (the 24-hour window); null when never, absent when not loaded. */
  whatsappInboundAt?: Date | null;
}

export interface OutboxMessage {
  kind: 'send' | 'action_webhook';
  node: string;
  channel: SendChannel;
  topic: string | null;
  transactional: boolean;
  status: 'queued' | 'suppressed';
  reason: string | null;
  /** 1 (lowest) to 5: the dispatcher takes urgent messages first. */
  priority: number;
  idempotency_key: string;
  due_at: Date | null;
  to_address: string | null;
  /** The variables the content is rendered with at dispatch. */
  vars: Record<string, unknown>;
}

export interface ContactUpdate {
  attributes: Record<string, unknown>;
  add_tags: string[];
  remove_tags: string[];
}

export interface StepRecord {
  node: string | null;
  outcome: string;
  detail?: Record<string, unknown>;
}

export type EnrollmentStatus = 'active' | 'completed' | 'converted' | 'exited' | 'cancelled' | 'failed';

export interface StepOutcome {
  enrollment_id: string;
  status: EnrollmentStatus;
  node: string | null;
  due_at: Date | null;
  wait: WaitState | null;
  vars: Record<string, unknown>;
  memo: Memo;
  /** Steps recorded so far, history included: the history's last seq. */
  steps: number;
  end_reason: string | null;
  messages: OutboxMessage[];
  contactUpdate: ContactUpdate | null;
  emits: { event: string; properties: Record<string, unknown> }[];
  history: StepRecord[];
}

/** Nodes one advance may pass; publishing forbids loops without a wait, so this only guards bugs. */
const MAX_NODES_PER_ADVANCE = 500;
export const DEFAULT_WEBHOOK_TIMEOUT = '30s';
export const DEFAULT_TOPIC = 'marketing';
export const TRANSACTIONAL_TOPIC = 'transactional';

export function advance(state: EnrollmentState, env: StepEnv): StepOutcome {
  const out: StepOutcome = {
    enrollment_id: state.id,
    status: 'active',
    node: state.node,
    due_at: null,
    wait: null,
    vars: state.vars,
    memo: state.memo,
    steps: state.steps,
    end_reason: null,
    messages: [],
    contactUpdate: null,
    emits: [],
    history: [],
  };
  const { journey } = env;
  let current: string | undefined;

  if (state.node === null) {
    current = journey.start;
  } else {
    const here = journey.nodes.get(state.node);
    if (!here) return end(out, 'failed', `node ${state.node} is not in this version`);
    current = resume(here, state, env, out);
    if (current === here.id && out.due_at) return out;
  }

  for (let passed = 0; ; passed++) {
    if (current === undefined) return end(out, 'completed', 'end of path');
    if (passed >= MAX_NODES_PER_ADVANCE) return end(out, 'failed', `passed ${MAX_NODES_PER_ADVANCE} nodes without waiting`);
    const node = journey.nodes.get(current);
    if (!node) return end(out, 'failed', `node ${current} is not in this version`);
    out.node = node.id;
    const next = run(node, env, out);
    if (next === STOP) return out;
    current = next;
  }
}

const STOP = Symbol('stop');
type Next = string | undefined | typeof STOP;

/** Where an enrollment that was waiting at `node` goes now that it is due or woken. */
function resume(node: JourneyNode, state: EnrollmentState, env: StepEnv, out: StepOutcome): string | undefined {
  const wait = state.wait;
  if (!wait || wait.node !== node.id) {
    // Due at a node with nothing to wait for: run it (a send held for its window, or a fresh start).
    return node.id;
  }
  switch (wait.kind) {
    case 'send':
      return node.id;
    case 'time':
      record(out, { node: node.id, outcome: 'waited' });
      return nextOf(node);
    case 'event': {
      const w = node as WaitNode;
      const woken = wait.woken;
      if (woken?.kind === 'event') {
        out.vars = { ...out.vars, event: { name: woken.name, properties: woken.properties, at: woken.at } };
        record(out, { node: node.id, outcome: 'event', detail: { event: woken.name, event_id: woken.event_id } });
        return w.on_event ?? w.next;
      }
      if (woken?.kind === 'reply') {
        const reply = { text: woken.text, payload: woken.payload, intent: woken.intent ?? null, channel: woken.channel, at: woken.at };
        const to = out.memo.last_send;
        out.memo = { ...out.memo, replies: { ...out.memo.replies, ...(to ? { [to]: reply } : {}), '*': reply } };
        out.vars = { ...out.vars, reply };
        record(out, { node: node.id, outcome: 'reply', detail: { channel: woken.channel, ...(woken.payload ? { payload: woken.payload } : {}), ...(woken.intent ? { intent: woken.intent } : {}) } });
        return w.on_reply ?? w.next;
      }
      record(out, { node: node.id, outcome: 'timeout' });
      return w.on_timeout ?? w.next;
    }
    case 'webhook': {
      const a = node as ActionNode;
      const woken = wait.woken;
      const saveAs = a.webhook?.save_as;
      if (woken?.kind === 'webhook' && !woken.error) {
        if (saveAs) out.vars = { ...out.vars, [saveAs]: woken.body };
        record(out, { node: node.id, outcome: 'webhook_answered', detail: { status: woken.status } });
      } else {
        if (saveAs) out.vars = { ...out.vars, [saveAs]: null };
        record(out, { node: node.id, outcome: 'webhook_failed', detail: { error: woken?.kind === 'webhook' ? (woken.error ?? `HTTP ${woken.status}`) : 'no answer in time' } });
      }
      return a.next;
    }
  }
}

function run(node: JourneyNode, env: StepEnv, out: StepOutcome): Next {
  switch (node.type) {
    case 'send':
      return runSend(node, env, out);
    case 'wait':
      return runWait(node, env, out);
    case 'branch':
      return runBranch(node, env, out);
    case 'split':
      return runSplit(node, env, out);
    case 'action':
      return runAction(node, env, out);
    case 'exit':
      record(out, { node: node.id, outcome: 'exit' });
      end(out, 'completed', `exit node ${node.id}`);
      return STOP;
  }
}

/** The reason a WhatsApp send outside the 24-hour window, with no template to fall back on, is blocked. */
export const WHATSAPP_WINDOW_CLOSED = 'whatsapp_window_closed';

/**
 * Whether a WhatsApp send has content WhatsApp will deliver now: any content inside the window,
 * only a template outside it. A stored template may hold one, which the dispatcher checks.
 */
export function whatsappSendable(node: SendNode, lastInbound: Date | null, now: Date): boolean {
  if (whatsappWindowOpen(lastInbound, now)) return true;
  return node.content.whatsapp_template !== undefined || node.content.template !== undefined;
}

export const WHATSAPP_WINDOW_MS = 24 * 3600_000;

export function whatsappWindowOpen(lastInbound: Date | null, now: Date): boolean {
  return lastInbound !== null && now.getTime() - lastInbound.getTime() < WHATSAPP_WINDOW_MS;
}

export const DEFAULT_PRIORITY = 3;

/** The node's priority, rendered from Liquid when it is a string; anything but 1 to 5 is the default. */
function sendPriority(node: SendNode, env: StepEnv, out: StepOutcome): number {
  if (node.priority === undefined) return DEFAULT_PRIORITY;
  const raw = typeof node.priority === 'number' ? node.priority : Number(String(renderDeep(node.priority, scopeOf(env, out))).trim());
  return Number.isInteger(raw) && raw >= 1 && raw <= 5 ? raw : DEFAULT_PRIORITY;
}

function runSend(node: SendNode, env: StepEnv, out: StepOutcome): Next {
  const transactional = node.transactional === true;
  const topic = node.topic ?? (transactional ? TRANSACTIONAL_TOPIC : DEFAULT_TOPIC);
  const address = node.channel === 'webhook' ? null : addressFor(node.channel, env.contact);
  const decision = decideSend(
    env.now,
    { channel: node.channel, topic, transactional, ignoreQuietHours: transactional && node.ignore_quiet_hours === true, key: `${env.contact.id}:${node.id}` },
    {
      zone: env.zone,
      address: node.channel === 'webhook' ? 'webhook' : address,
      consent: env.consent,
      suppressed: address !== null && env.suppressed(node.channel, address),
      recentSends: env.recentSends,
    },
    env.policy,
  );
  const base = {
    kind: 'send' as const,
    node: node.id,
    channel: node.channel,
    topic: node.channel === 'webhook' ? null : topic,
    transactional,
    to_address: address,
    vars: out.vars,
    priority: sendPriority(node, env, out),
  };
  // WhatsApp delivers free-form text only within 24 hours of the contact's last message; a send
  // with nothing else to offer is blocked now, so the journey can take its on_blocked path.
  const windowClosed =
    decision.action === 'send' && node.channel === 'whatsapp' && env.whatsappInboundAt !== undefined && !whatsappSendable(node, env.whatsappInboundAt, env.now);
  if (decision.action === 'defer') {
    out.wait = { kind: 'send', node: node.id, reason: decision.reason };
    out.due_at = decision.until;
    record(out, { node: node.id, outcome: 'deferred', detail: { reason: decision.reason, until: decision.until.toISOString() } });
    return STOP;
  }
  out.memo = { ...out.memo, last_send: node.id };
  if (decision.action === 'block' || windowClosed) {
    const reason = decision.action === 'block' ? decision.reason : WHATSAPP_WINDOW_CLOSED;
    const detail = decision.action === 'block' ? decision.detail : undefined;
    out.messages.push({ ...base, status: 'suppressed', reason, idempotency_key: idempotencyKey(out, node.id), due_at: null });
    record(out, { node: node.id, outcome: 'blocked', detail: { reason, ...(detail ? { detail } : {}) } });
    return node.on_blocked ?? node.next;
  }
  out.messages.push({ ...base, status: 'queued', reason: null, idempotency_key: idempotencyKey(out, node.id), due_at: env.now });
  env.recentSends.push({ channel: node.channel, at: env.now });
  record(out, { node: node.id, outcome: 'queued', detail: { channel: node.channel } });
  return node.next;
}

function runWait(node: WaitNode, env: StepEnv, out: StepOutcome): Next {
  if (node.until_event) {
    const u = node.until_event;
    out.wait = { kind: 'event', node: node.id, events: (u.events ?? []).map((e) => e.event), reply: u.reply ? (u.reply.channel ?? true) : false };
    out.due_at = addDuration(env.now, u.timeout, env.zone);
    record(out, { node: node.id, outcome: 'waiting', detail: { for: 'event', timeout_at: out.due_at.toISOString() } });
    return STOP;
  }
  let target: Date | null;
  if (node.duration !== undefined) target = addDuration(env.now, node.duration, env.zone);
  else if (node.until_time) target = nextLocalTime(env.now, env.zone, node.until_time.time, node.until_time.days);
  else if (node.until_date) {
    const a = node.until_date;
    target = dateAttributeMoment(lookup(env.contact.attributes, a.attribute), a.offset, a.time, env.zone);
    if (target === null) {
      record(out, { node: node.id, outcome: 'skipped', detail: { reason: `attribute ${a.attribute} holds no date` } });
      return node.on_past ?? node.next;
    }
    if (node.on_past !== undefined && target.getTime() < env.now.getTime()) {
      record(out, { node: node.id, outcome: 'past', detail: { until: target.toISOString() } });
      return node.on_past;
    }
  } else target = env.now;
  if (target.getTime() <= env.now.getTime()) {
    record(out, { node: node.id, outcome: 'waited', detail: { until: target.toISOString() } });
    return node.next;
  }
  out.wait = { kind: 'time', node: node.id };
  out.due_at = target;
  record(out, { node: node.id, outcome: 'waiting', detail: { until: target.toISOString() } });
  return STOP;
}

function runBranch(node: BranchNode, env: StepEnv, out: StepOutcome): Next {
  const facts = conditionFacts(env, out);
  for (let i = 0; i < node.branches.length; i++) {
    const b = node.branches[i]!;
    if (evaluate(b.when, facts)) {
      record(out, { node: node.id, outcome: 'branch', detail: { taken: b.name ?? i } });
      return b.next;
    }
  }
  record(out, { node: node.id, outcome: 'branch', detail: { taken: 'default' } });
  return node.default;
}

function runSplit(node: SplitNode, env: StepEnv, out: StepOutcome): Next {
  const held = out.memo.splits?.[node.id];
  let variant = held === undefined ? undefined : node.variants.find((v) => v.name === held);
  if (!variant) {
    variant = node.variants[assignVariant(node.variants, `${env.journeyId}:${env.contact.id}:${node.id}`)]!;
    out.memo = { ...out.memo, splits: { ...out.memo.splits, [node.id]: variant.name } };
  }
  record(out, { node: node.id, outcome: 'split', detail: { variant: variant.name } });
  return variant.next;
}

function runAction(node: ActionNode, env: StepEnv, out: StepOutcome): Next {
  if (node.update) {
    const u = node.update;
    const prev = out.contactUpdate ?? { attributes: {}, add_tags: [], remove_tags: [] };
    const attributes = u.attributes ? renderValues(u.attributes, env, out) : {};
    out.contactUpdate = {
      attributes: { ...prev.attributes, ...attributes },
      add_tags: [...prev.add_tags.filter((t) => !u.remove_tags?.includes(t)), ...(u.add_tags ?? [])],
      remove_tags: [...prev.remove_tags.filter((t) => !u.add_tags?.includes(t)), ...(u.remove_tags ?? [])],
    };
    // Later conditions in the same advance see the change.
    const attrs = { ...env.contact.attributes };
    for (const [k, v] of Object.entries(attributes)) {
      if (v === null) delete attrs[k];
      else attrs[k] = v;
    }
    const tags = new Set(env.contact.tags);
    for (const t of u.add_tags ?? []) tags.add(t);
    for (const t of u.remove_tags ?? []) tags.delete(t);
    env.contact = { ...env.contact, attributes: attrs, tags: [...tags] };
    record(out, { node: node.id, outcome: 'updated', detail: { attributes: Object.keys(attributes), add_tags: u.add_tags ?? [], remove_tags: u.remove_tags ?? [] } });
    return node.next;
  }
  if (node.emit) {
    const properties = node.emit.properties ? (renderValues(node.emit.properties, env, out) as Record<string, unknown>) : {};
    out.emits.push({ event: node.emit.event, properties });
    record(out, { node: node.id, outcome: 'emitted', detail: { event: node.emit.event } });
    return node.next;
  }
  if (node.webhook) {
    out.messages.push({
      kind: 'action_webhook',
      node: node.id,
      channel: 'webhook',
      topic: null,
      transactional: true,
      status: 'queued',
      reason: null,
      idempotency_key: idempotencyKey(out, node.id),
      due_at: env.now,
      to_address: null,
      vars: out.vars,
      priority: DEFAULT_PRIORITY,
    });
    out.wait = { kind: 'webhook', node: node.id };
    out.due_at = addDuration(env.now, node.webhook.timeout ?? DEFAULT_WEBHOOK_TIMEOUT, env.zone);
    // A little slack past the request timeout so the dispatcher's answer normally arrives first.
    out.due_at = new Date(out.due_at.getTime() + 5_000);
    record(out, { node: node.id, outcome: 'calling_webhook' });
    return STOP;
  }
  return node.next;
}

/** Liquid strings inside action values render now; send content renders at dispatch, with the contact as it is then. */
function renderValues(values: Record<string, unknown>, env: StepEnv, out: StepOutcome): Record<string, unknown> {
  return renderDeep(values, scopeOf(env, out)) as Record<string, unknown>;
}

export function scopeOf(env: Pick<StepEnv, 'contact' | 'journey'>, out: Pick<StepOutcome, 'vars'>): Record<string, unknown> {
  return templateScope(env.contact, out.vars, env.journey.def.name ?? null);
}

/** What Liquid templates see: `contact` (fields, attributes flattened, and both as given), `vars`, `trigger`. */
export function templateScope(contact: ContactFacts, vars: Record<string, unknown>, journeyName: string | null): Record<string, unknown> {
  const { attributes, ...fields } = contact;
  return {
    contact: { ...attributes, ...fields, attributes },
    vars,
    trigger: vars.trigger ?? {},
    event: vars.event ?? {},
    reply: vars.reply ?? {},
    journey: { name: journeyName },
  };
}

function conditionFacts(env: StepEnv, out: StepOutcome): ConditionFacts {
  const replies: Record<string, { text: string | null; payload: string | null; intent: string | null; at: Date }> = {};
  for (const [k, r] of Object.entries(out.memo.replies ?? {})) replies[k] = { text: r.text, payload: r.payload, intent: r.intent ?? null, at: new Date(r.at) };
  return {
    contact: env.contact,
    consent: env.consent,
    vars: out.vars,
    now: env.now,
    eventCount: env.eventCount,
    replies,
    messages: env.messages,
  };
}

/**
 * Enrollment, node and step counter: unique per visit of a node (every visit records a step),
 * and the same when a rolled-back batch is evaluated again, so the outbox's unique index turns
 * a replay into a no-op.
 */
function idempotencyKey(out: StepOutcome, node: string): string {
  return `${out.enrollment_id}:${node}:${out.steps}`;
}

function nextOf(node: JourneyNode): string | undefined {
  return 'next' in node ? node.next : undefined;
}

/** History and the step counter move together: seq of a record = steps after it. */
function record(out: StepOutcome, r: StepRecord): void {
  out.history.push(r);
  out.steps++;
}

function end(out: StepOutcome, status: EnrollmentStatus, reason: string): StepOutcome {
  record(out, { node: out.node, outcome: status, detail: { reason } });
  out.status = status;
  out.end_reason = reason;
  out.due_at = null;
  out.wait = null;
  return out;
}

function lookup(obj: Record<string, unknown>, path: string): unknown {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}
