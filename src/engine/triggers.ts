import type { ConsentEntry } from '../core/consent.js';
import { matchesEvent, evaluate, type ConditionFacts } from '../core/journey/conditions.js';
import type { Wake, WaitState } from '../core/journey/engine.js';
import type { Queryable } from '../store/db.js';
import { endEnrollments, enrollContacts, lockEnrollments, notifyWork } from '../store/enrollments.js';
import { getVersions, versionKey, type LiveVersion } from '../store/journey-versions.js';
import { newId } from '../store/ids.js';
import { loadContactFacts } from '../store/step-batch.js';

/**
 * What a recorded event does to journeys, in the transaction that records it:
 *   - an open enrollment whose version names it as a goal ends as converted, as an exit event
 *     ends as exited (its queued messages are cancelled);
 *   - an enrollment waiting for it (or, for `message.received`, for a reply) is woken: its
 *     timer is set to now and the event is handed to the engine in `wait.woken`;
 *   - every active journey whose entry event it is enrols the contact, when the entry filter
 *     holds and the re-entry rules allow.
 * A fixed number of statements per batch of events, whatever its size.
 */

/** The event an inbound message is recorded as; a wait for a reply is a wait for this. */
export const REPLY_EVENT = 'message.received';

export interface RecordedEvent {
  id: string;
  contact_id: string;
  name: string;
  properties: Record<string, unknown>;
  occurred_at: Date;
}

interface OpenEnrollment {
  id: string;
  journey_id: string;
  version: number;
  contact_id: string;
  wait: WaitState | null;
  due_at: Date | null;
}

interface EntryJourney {
  id: string;
  version: number;
  entry_event: string;
}

export interface TriggerResult {
  enrolled: number;
  woken: number;
  converted: number;
  exited: number;
}

export async function onEventsRecorded(tx: Queryable, tenantId: string, events: RecordedEvent[], now: Date): Promise<TriggerResult> {
  const result: TriggerResult = { enrolled: 0, woken: 0, converted: 0, exited: 0 };
  if (!events.length) return result;
  const names = [...new Set(events.map((e) => e.name))];
  const contactIds = [...new Set(events.map((e) => e.contact_id))];
  const { rows: journeys } = await tx.query<EntryJourney>(
    `select id, version, entry_event from journeys where tenant_id = $1 and status = 'active' and entry_event = any($2::text[])`,
    [tenantId, names],
  );
  const { rows: open } = await tx.query<OpenEnrollment>(
    `select e.id, e.journey_id, e.version, e.contact_id, e.wait, e.due_at
       from unnest($2::uuid[]) as x(contact_id) join enrollments e on e.tenant_id = $1 and e.contact_id = x.contact_id and e.ended_at is null`,
    [tenantId, contactIds],
  );
  if (!journeys.length && !open.length) return result;

  const versions = await getVersions(tx, [...journeys.map((j) => ({ journey_id: j.id, version: j.version })), ...open]);
  // Contacts and consent are read only for conditions to look at: goals, exits and waits of open
  // enrollments, entry filters. Entering a journey without a filter needs neither (the contact
  // exists: its event was just written with a foreign key to it).
  const filtered = journeys.some((j) => versions.get(versionKey(j.id, j.version))!.compiled.def.entry.where);
  const involved = [...new Set([...(filtered ? contactIds : []), ...open.map((o) => o.contact_id)])];
  const { contacts, consent } = await loadContactFacts(
    tx,
    involved.map((c) => ({ tenant_id: tenantId, contact_id: c })),
  );
  const factsOf = (contactId: string): Omit<ConditionFacts, 'event'> | null => {
    const c = contacts.get(contactId);
    return c ? { contact: c, consent: consent.get(contactId) ?? ([] as ConsentEntry[]), vars: {}, now } : null;
  };

  const ordered = [...events].sort((a, b) => a.occurred_at.getTime() - b.occurred_at.getTime());
  const converted = new Set<string>();
  const exited = new Set<string>();
  const wakes = new Map<string, Wake>();
  const openBy = new Map<string, OpenEnrollment[]>();
  for (const o of open) {
    const l = openBy.get(o.contact_id);
    if (l) l.push(o);
    else openBy.set(o.contact_id, [o]);
  }

  for (const ev of ordered) {
    const facts = factsOf(ev.contact_id);
    if (!facts) continue;
    const event = { name: ev.name, properties: ev.properties };
    for (const o of openBy.get(ev.contact_id) ?? []) {
      if (converted.has(o.id) || exited.has(o.id)) continue;
      const def = versions.get(versionKey(o.journey_id, o.version))!.compiled.def;
      const withVars = { ...facts, vars: {} };
      if (def.goals?.some((g) => g.event === ev.name && matchesEvent(g, event, withVars))) {
        converted.add(o.id);
        continue;
      }
      if (def.exit_on?.some((x) => x.event === ev.name && matchesEvent(x, event, withVars))) {
        exited.add(o.id);
        continue;
      }
      if (o.wait?.kind !== 'event' || wakes.has(o.id)) continue;
      const wake = wakeFor(o.wait, versions.get(versionKey(o.journey_id, o.version))!, ev, withVars);
      if (wake) wakes.set(o.id, wake);
    }
  }

  const byJourney = new Map<string, { journey: EntryJourney; version: LiveVersion; contacts: { contact_id: string; vars: Record<string, unknown> }[] }>();
  for (const ev of ordered) {
    for (const j of journeys) {
      if (j.entry_event !== ev.name) continue;
      const version = versions.get(versionKey(j.id, j.version))!;
      const where = version.compiled.def.entry.where;
      if (where) {
        const facts = factsOf(ev.contact_id);
        if (!facts || !evaluate(where, { ...facts, event: { name: ev.name, properties: ev.properties } })) continue;
      }
      let group = byJourney.get(j.id);
      if (!group) byJourney.set(j.id, (group = { journey: j, version, contacts: [] }));
      group.contacts.push({ contact_id: ev.contact_id, vars: { trigger: { event: ev.name, event_id: ev.id, ...ev.properties } } });
    }
  }

  // Ending and waking are three statements; concurrent transactions recording events of the same
  // contacts in other orders would lock the enrollments they share in other orders and deadlock.
  await lockEnrollments(tx, [...converted, ...exited, ...wakes.keys()]);
  const ended = new Set([
    ...(await endEnrollments(tx, tenantId, [...converted], 'converted', 'goal reached', now)),
    ...(await endEnrollments(tx, tenantId, [...exited], 'exited', 'exit event', now)),
  ]);
  result.converted = [...converted].filter((id) => ended.has(id)).length;
  result.exited = [...exited].filter((id) => ended.has(id)).length;
  if (wakes.size) {
    const { rowCount } = await tx.query(
      // A paused journey's enrollment keeps its wake for resume in paused_due_at.
      `update enrollments e
          set wait = e.wait || jsonb_build_object('woken', x.wake), updated_at = $2,
              due_at = case when e.paused_due_at is null then $2::timestamptz end,
              paused_due_at = case when e.paused_due_at is not null then $2::timestamptz end
         from jsonb_to_recordset($1::jsonb) as x(id uuid, wake jsonb)
        where e.id = x.id and e.ended_at is null and e.wait->>'kind' = 'event' and not (e.wait ? 'woken')`,
      [JSON.stringify([...wakes].map(([id, wake]) => ({ id, wake }))), now],
    );
    result.woken = rowCount;
    if (rowCount) await notifyWork(tx);
  }
  // Journeys in id order, as enrollContacts takes contacts in id order: the journey_entries rows
  // it locks are then locked in one order by every transaction, whichever event came first.
  const entering = [...byJourney.values()].sort((a, b) => (a.journey.id < b.journey.id ? -1 : a.journey.id > b.journey.id ? 1 : 0));
  for (const { journey, version, contacts: list } of entering) {
    // Who is in the journey was read above, with this transaction's ends taken out.
    const inJourney = new Set(open.filter((o) => o.journey_id === journey.id && !ended.has(o.id)).map((o) => o.contact_id));
    const r = await enrollContacts(
      tx,
      { journey_id: journey.id, tenant_id: tenantId, version: journey.version, reentry: version.compiled.def.reentry },
      list,
      now,
      'event',
      { open: inJourney },
    );
    result.enrolled += r.enrolled.length;
  }
  return result;
}

function wakeFor(wait: Extract<WaitState, { kind: 'event' }>, version: LiveVersion, ev: RecordedEvent, facts: Omit<ConditionFacts, 'event'>): Wake | null {
  const at = ev.occurred_at.toISOString();
  if (ev.name === REPLY_EVENT && wait.reply !== false) {
    const channel = typeof ev.properties.channel === 'string' ? ev.properties.channel : '';
    if (wait.reply === true || wait.reply === channel) {
      const text = typeof ev.properties.text === 'string' ? ev.properties.text : null;
      const payload = typeof ev.properties.payload === 'string' ? ev.properties.payload : null;
      const intent = typeof ev.properties.intent === 'string' ? ev.properties.intent : null;
      const message = typeof ev.properties.message_id === 'string' ? ev.properties.message_id : undefined;
      return { kind: 'reply', channel, text, payload, intent, at, ...(message ? { message_id: message } : {}) };
    }
  }
  if (!wait.events.includes(ev.name)) return null;
  const node = version.compiled.nodes.get(wait.node);
  const matches = node?.type === 'wait' ? (node.until_event?.events ?? []) : [];
  const event = { name: ev.name, properties: ev.properties };
  if (!matches.some((m) => m.event === ev.name && matchesEvent(m, event, facts))) return null;
  return { kind: 'event', name: ev.name, properties: ev.properties, event_id: ev.id, at };
}

/** Records events emitted by action nodes and lets them trigger journeys in turn. */
export async function recordEmittedEvents(tx: Queryable, emitted: { tenant_id: string; contact_id: string; event: string; properties: Record<string, unknown> }[], now: Date): Promise<void> {
  const rows = emitted.map((e) => ({ id: newId(), tenant_id: e.tenant_id, contact_id: e.contact_id, name: e.event, properties: e.properties }));
  await tx.query(
    `insert into events (id, tenant_id, contact_id, name, properties, occurred_at, received_at)
     select x.id, x.tenant_id, x.contact_id, x.name, x.properties, $2, $2
       from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, contact_id uuid, name text, properties jsonb)`,
    [JSON.stringify(rows), now],
  );
  const byTenant = new Map<string, RecordedEvent[]>();
  for (const r of rows) {
    const list = byTenant.get(r.tenant_id) ?? [];
    list.push({ id: r.id, contact_id: r.contact_id, name: r.name, properties: r.properties, occurred_at: now });
    byTenant.set(r.tenant_id, list);
  }
  for (const [tenant, list] of byTenant) await onEventsRecorded(tx, tenant, list, now);
}
