import type { ContactFields, NormalizeOptions } from '../core/contact.js';
import { InputError, type FieldProblem } from '../core/errors.js';
import { eventProblems, type EventInput } from '../core/event.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import { normalizeBatch, upsertContacts } from './contacts.js';
import type { Db, Queryable } from './db.js';
import { newId } from './ids.js';
import { onEventsRecorded } from '../engine/triggers.js';

export interface EventRow {
  id: string;
  contact_id: string;
  name: string;
  source_event_id: string | null;
  properties: Record<string, unknown>;
  occurred_at: Date;
  received_at: Date;
}

export type EventOutcome =
  | { index: number; status: 'recorded' | 'duplicate'; id: string }
  | { index: number; status: 'rejected'; field: string; message: string };

export interface IngestResult {
  recorded: number;
  duplicate: number;
  rejected: number;
  /** One per input, in input order. */
  results: EventOutcome[];
  /** The rows this call wrote (not the duplicates), for whatever reacts to new events. */
  inserted: EventRow[];
}

const COLUMNS = 'id, contact_id, name, source_event_id, properties, occurred_at, received_at';

/**
 * Validates every event, then finds or creates the contacts they name and records them, in a
 * fixed number of set-based statements whatever the batch size:
 *   1. contacts named by contact_id are checked to be the tenant's (one select);
 *   2. contacts named by identifiers are found or created (upsertContacts in 'ensure' mode);
 *   3. every event is inserted at once; the unique index on the sender's id turns a repeated
 *      delivery into a no-op, and a repeat inside the batch is dropped before it (first wins);
 *   4. only when there were repeats, the ids they repeat are looked up.
 * A malformed field anywhere throws InputError before anything is written. An event whose
 * contact cannot be used (unknown contact_id, identifiers owned by different contacts) is
 * reported as rejected and the others are recorded.
 *
 * `prefix` names fields in problems: 'events' gives `events[3].contact.phone`, '' gives `contact.phone`.
 */
export async function ingestEvents(db: Db, tenantId: string, inputs: EventInput[], now: Date, opts: NormalizeOptions, prefix = 'events'): Promise<IngestResult> {
  const at = (i: number, f: string) => (prefix ? `${prefix}[${i}].${f}` : f);
  return recordEvents(db, tenantId, inputs, checkEvents(inputs, opts, prefix, at), now, at);
}

/**
 * ingestEvents after the check. `receivedAt` gives each event its own time of arrival (and of
 * occurrence, when it names none); otherwise every event is received `now`.
 */
async function recordEvents(
  db: Db,
  tenantId: string,
  inputs: EventInput[],
  refs: ContactRefs,
  now: Date,
  at: FieldOf,
  receivedAt?: readonly Date[],
): Promise<IngestResult> {
  const contactOf = await resolveContacts(db, tenantId, inputs, refs, now, at);

  const rows: EventRow[] = [];
  const rowOf = new Map<number, EventRow>();
  const firstWithSource = new Map<string, number>();
  inputs.forEach((e, i) => {
    const contact = contactOf[i];
    if (typeof contact !== 'string') return;
    if (e.id !== undefined) {
      if (firstWithSource.has(e.id)) return;
      firstWithSource.set(e.id, i);
    }
    const received = receivedAt?.[i] ?? now;
    const row: EventRow = {
      id: newId(),
      contact_id: contact,
      name: e.name,
      source_event_id: e.id ?? null,
      properties: e.properties ?? {},
      occurred_at: e.occurred_at ? new Date(e.occurred_at) : received,
      received_at: received,
    };
    rows.push(row);
    rowOf.set(i, row);
  });

  // Recording the events and what they set off in journeys is one transaction: an accepted
  // event has enrolled, woken or ended whatever it should.
  const { written, idForSource } = await db.transaction(async (tx) => {
    const written = new Set<string>();
    if (rows.length) {
      const { rows: ids } = await tx.query<{ id: string }>(
        `insert into events (id, tenant_id, contact_id, name, source_event_id, properties, occurred_at, received_at)
         select x.id, $1, x.contact_id, x.name, x.source_event_id, x.properties, x.occurred_at, x.received_at
           from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, name text, source_event_id text, properties jsonb, occurred_at timestamptz, received_at timestamptz)
         on conflict (tenant_id, source_event_id) where source_event_id is not null do nothing
         returning id`,
        [tenantId, JSON.stringify(rows)],
      );
      for (const r of ids) written.add(r.id);
    }

    // The id a repeated sender id stands for: the row written now, or the one stored before.
    const idForSource = new Map<string, string>();
    for (const r of rows) if (r.source_event_id !== null && written.has(r.id)) idForSource.set(r.source_event_id, r.id);
    const unresolved = [...firstWithSource.keys()].filter((s) => !idForSource.has(s));
    if (unresolved.length) {
      const { rows: stored } = await tx.query<{ id: string; source_event_id: string }>(
        'select id, source_event_id from events where tenant_id = $1 and source_event_id = any($2::text[])',
        [tenantId, unresolved],
      );
      for (const r of stored) idForSource.set(r.source_event_id, r.id);
    }
    if (written.size) await onEventsRecorded(tx, tenantId, rows.filter((r) => written.has(r.id)), now);
    return { written, idForSource };
  });

  const results: EventOutcome[] = inputs.map((e, index) => {
    const contact = contactOf[index];
    if (typeof contact !== 'string') return { index, status: 'rejected', field: contact!.field, message: contact!.message };
    const row = rowOf.get(index);
    if (row && written.has(row.id)) return { index, status: 'recorded', id: row.id };
    return { index, status: 'duplicate', id: idForSource.get(e.id!)! };
  });
  const count = (s: EventOutcome['status']) => results.filter((r) => r.status === s).length;
  return { recorded: count('recorded'), duplicate: count('duplicate'), rejected: count('rejected'), results, inserted: rows.filter((r) => written.has(r.id)) };
}

interface Waiting {
  input: EventInput;
  /** Its contact identifiers, normalised, when it names its contact that way. */
  contact: ContactFields | null;
  receivedAt: Date;
  resolve: (outcome: EventOutcome) => void;
  reject: (err: unknown) => void;
}

interface Line {
  tenantId: string;
  waiting: Waiting[];
  writing: boolean;
}

/** Names fields as a single event's: `contact.phone`, `contact_id`. */
const bare: FieldOf = (_, field) => field;

/** Events written together at most, so that one transaction stays short. */
const MAX_SHARED = 500;

/**
 * Records events posted one per request in shared transactions. An event that arrives while
 * none of its tenant's is being written is written at once, alone; those that arrive meanwhile
 * wait for that write to finish and then go together, in one transaction. So at a low rate
 * nothing waits, and at a high one the dozen statements and the commit of recording an event
 * and what it sets off in journeys serve many events instead of one each.
 *
 * Each caller gets what writing its event alone would have given: a malformed event is refused
 * before it joins anything, and when a shared write fails, each of its events is written again
 * on its own, so one event's failure is nobody else's. An event answers only once its
 * transaction has committed.
 */
export class EventBatcher {
  private readonly lines = new Map<string, Line>();

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Records one event received at `receivedAt`; throws InputError, naming the field, for a malformed one. */
  record(tenantId: string, input: EventInput, receivedAt: Date, opts: NormalizeOptions): Promise<EventOutcome> {
    const refs = checkEvents([input], opts, '', bare);
    // Identifiers are normalised with the tenant's settings as the request read them: a line per setting.
    const key = `${tenantId}|${opts.defaultCountry ?? ''}`;
    return new Promise((resolve, reject) => {
      let line = this.lines.get(key);
      if (!line) this.lines.set(key, (line = { tenantId, waiting: [], writing: false }));
      line.waiting.push({ input, contact: refs.fields[0] ?? null, receivedAt, resolve, reject });
      if (!line.writing) void this.drain(key, line);
    });
  }

  private async drain(key: string, line: Line): Promise<void> {
    line.writing = true;
    try {
      while (line.waiting.length) await this.write(line.tenantId, line.waiting.splice(0, MAX_SHARED));
    } finally {
      line.writing = false;
      this.lines.delete(key);
    }
  }

  private async write(tenantId: string, batch: Waiting[]): Promise<void> {
    const refs: ContactRefs = { events: [], fields: [] };
    batch.forEach((w, i) => {
      if (!w.contact) return;
      refs.events.push(i);
      refs.fields.push(w.contact);
    });
    let result: IngestResult;
    try {
      result = await recordEvents(
        this.db,
        tenantId,
        batch.map((w) => w.input),
        refs,
        this.now(),
        bare,
        batch.map((w) => w.receivedAt),
      );
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const w of batch) await this.write(tenantId, [w]);
      return;
    }
    batch.forEach((w, i) => w.resolve({ ...result.results[i]!, index: 0 }));
  }
}

type FieldOf = (i: number, field: string) => string;

/** Contact identifiers of the events that name their contact that way, normalised, with the event each came from. */
interface ContactRefs {
  events: number[];
  fields: ContactFields[];
}

/** Throws InputError naming every malformed field of every event; nothing has been written yet. */
function checkEvents(inputs: EventInput[], opts: NormalizeOptions, prefix: string, at: FieldOf): ContactRefs {
  const problems = inputs.flatMap((e, i) => eventProblems(e, prefix ? `${prefix}[${i}]` : ''));
  const events = inputs.flatMap((e, i) => (e.contact ? [i] : []));
  let fields: ContactFields[] = [];
  try {
    fields = normalizeBatch(events.map((i) => inputs[i]!.contact!), opts, 'contact', true);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    // normalizeBatch numbers rows within the sub-list it was given; name them by event.
    problems.push(...err.problems.map((p) => ({ ...p, field: p.field.replace(/^contact\[(\d+)\]/, (_, j: string) => at(events[Number(j)]!, 'contact')) })));
  }
  if (problems.length) throw new InputError(problems);
  return { events, fields };
}

/** The contact id of each event, or why the event cannot be recorded. */
async function resolveContacts(db: Db, tenantId: string, inputs: EventInput[], refs: ContactRefs, now: Date, at: FieldOf): Promise<(string | FieldProblem)[]> {
  const contactOf: (string | FieldProblem)[] = new Array(inputs.length);
  const byId = inputs.flatMap((e, i) => (e.contact_id ? [i] : []));
  if (byId.length) {
    // A join rather than id = any(...): with thousands of ids the planner turns = any into a scan of every contact.
    const { rows } = await db.query<{ id: string }>('select c.id from unnest($2::uuid[]) as x(id) join contacts c on c.tenant_id = $1 and c.id = x.id', [
      tenantId,
      [...new Set(byId.map((i) => inputs[i]!.contact_id!))],
    ]);
    const known = new Set(rows.map((r) => r.id));
    for (const i of byId) {
      const id = inputs[i]!.contact_id!;
      contactOf[i] = known.has(id) ? id : { field: at(i, 'contact_id'), message: 'is not a contact of this tenant' };
    }
  }
  if (refs.fields.length) {
    // Many events of a batch usually name the same person; resolve each distinct reference once.
    const distinct = new Map<string, { fields: ContactFields; events: number[] }>();
    refs.fields.forEach((r, k) => {
      const key = `${r.external_id ?? ''}\u0000${r.phone ?? ''}\u0000${r.email ?? ''}`;
      const d = distinct.get(key);
      if (d) d.events.push(refs.events[k]!);
      else distinct.set(key, { fields: r, events: [refs.events[k]!] });
    });
    const groups = [...distinct.values()];
    const upserted = await upsertContacts(db, tenantId, groups.map((g) => g.fields), now, 'ensure');
    for (const o of upserted.outcomes) {
      for (const i of groups[o.index]!.events) {
        contactOf[i] = o.status === 'rejected' ? { field: at(i, `contact.${o.field}`), message: o.message } : o.id;
      }
    }
  }
  return contactOf;
}

export interface EventFilter {
  contact_id?: string;
  name?: string;
  limit?: number;
  cursor?: string;
}

/** One page of events, newest first (ids are UUIDv7, so by when they were received). */
export async function listEvents(db: Queryable, tenantId: string, f: EventFilter): Promise<{ data: EventRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<EventRow>(
    `select ${COLUMNS} from events
      where tenant_id = $1 and ($2::uuid is null or id < $2) and ($3::uuid is null or contact_id = $3) and ($4::text is null or name = $4)
      order by id desc limit $5`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.contact_id ?? null, f.name ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/** Every event of a contact, oldest first. */
export async function contactEvents(db: Queryable, tenantId: string, contactId: string): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(`select ${COLUMNS} from events where tenant_id = $1 and contact_id = $2 order by id`, [tenantId, contactId]);
  return rows;
}
