import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import { mapSegmentRefs, segmentProblems, segmentRefs, type SegmentCondition } from '../core/segment.js';
import { writeAudit } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import { CONTACT_COLUMNS, type ContactRow } from './contacts.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable } from './db.js';
import { newId } from './ids.js';
import { compileSegment, type CompiledSegment } from './segment-sql.js';

/**
 * Saved segments, and evaluating a definition over a tenant's contacts: a count, a preview (count
 * and the first contacts), a page of members, or every member in batches. Each evaluation
 * compiles the definition (with the segments it names) to one predicate (segment-sql.ts) and
 * pages by contacts.id, so memory stays flat however large the audience.
 */

export interface SegmentRow {
  id: string;
  name: string;
  description: string | null;
  definition: SegmentCondition;
  created_at: Date;
  updated_at: Date;
}

export interface SegmentInput {
  name: string;
  description?: string | null;
  definition: unknown;
}

export type SegmentPatch = Partial<SegmentInput>;

const COLUMNS = 'id, name, description, definition, created_at, updated_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Segments naming segments: deeper than this is refused rather than compiled into a huge predicate. */
const MAX_REF_DEPTH = 8;

function checked(definition: unknown): SegmentCondition {
  const problems = segmentProblems(definition);
  if (problems.length) throw new InputError(problems);
  return definition as SegmentCondition;
}

/** The definition with every in_segment as an id of one of the tenant's segments, and those ids. */
async function resolveRefs(db: Queryable, tenantId: string, definition: SegmentCondition): Promise<{ definition: SegmentCondition; refs: string[] }> {
  const named = segmentRefs(definition);
  if (!named.length) return { definition, refs: [] };
  const wanted = [...new Set(named.map((n) => n.ref))];
  const { rows } = await db.query<{ id: string; name: string }>(
    'select id, name from segments where tenant_id = $1 and (id = any($2::uuid[]) or name = any($3::text[]))',
    [tenantId, wanted.filter((r) => UUID.test(r)), wanted],
  );
  // Ids come back lower-case; a caller may have written one in capitals.
  const byRef = new Map<string, string>();
  for (const r of rows) {
    byRef.set(r.name, r.id);
    byRef.set(r.id, r.id);
  }
  const find = (ref: string) => byRef.get(ref) ?? (UUID.test(ref) ? byRef.get(ref.toLowerCase()) : undefined);
  const unknown = named.filter((n) => find(n.ref) === undefined);
  if (unknown.length) throw new InputError(unknown.map((n) => ({ field: n.field, message: 'names no segment of this tenant (by id or name)' })));
  const to = (ref: string) => find(ref)!;
  return { definition: mapSegmentRefs(definition, to), refs: [...new Set(named.map((n) => to(n.ref)))] };
}

/** The stored definitions of `ids` and of every segment they name, transitively. */
async function loadReferenced(db: Queryable, tenantId: string, ids: string[]): Promise<Map<string, SegmentCondition>> {
  const out = new Map<string, SegmentCondition>();
  if (!ids.length) return out;
  const { rows } = await db.query<{ id: string; definition: SegmentCondition; depth: number }>(
    `with recursive r(id, depth) as (
       select unnest($2::uuid[]), 1
       union
       select x.ref, r.depth + 1 from r join segments s on s.id = r.id and s.tenant_id = $1 cross join lateral unnest(s.refs) as x(ref) where r.depth <= $3
     )
     select s.id, s.definition, max(r.depth) as depth from r join segments s on s.id = r.id and s.tenant_id = $1 group by s.id, s.definition`,
    [tenantId, ids, MAX_REF_DEPTH],
  );
  if (rows.some((r) => r.depth > MAX_REF_DEPTH)) throw InputError.field('definition', `segments name segments more than ${MAX_REF_DEPTH} levels deep`);
  for (const r of rows) out.set(r.id, r.definition);
  return out;
}

/**
 * Validates a definition (400 naming each field), resolves the segments it names and compiles
 * it for the tenant at `now`; `ranged` compiles it for windows of contacts (see CompileContext).
 */
export async function prepareSegment(db: Queryable, tenantId: string, definition: unknown, now: Date, ranged = false): Promise<CompiledSegment> {
  const resolved = await resolveRefs(db, tenantId, checked(definition));
  const stored = await loadReferenced(db, tenantId, resolved.refs);
  return compileSegment(tenantId, resolved.definition, { now, ranged, resolve: (id) => stored.get(id) });
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const CONTACT_COLUMNS_C = CONTACT_COLUMNS.split(', ')
  .map((col) => `c.${col}`)
  .join(', ');
const BEFORE_ALL_IDS = '00000000-0000-0000-0000-000000000000';
/** Contacts judged per query when paging members for the API. */
const MEMBER_WINDOW = 5000;

/** How many of the tenant's contacts the segment holds. */
export async function countSegment(db: Queryable, tenantId: string, definition: unknown, now: Date): Promise<number> {
  const q = await prepareSegment(db, tenantId, definition, now);
  const { rows } = await db.query<{ n: string }>(`select count(*) as n from contacts c where c.tenant_id = $1::uuid and ${q.where}`, q.params);
  return Number(rows[0]!.n);
}

/** The next `size` contacts after `lo` (keyset on contacts.id), and those of them in the segment. */
async function judgeWindow(db: Queryable, tenantId: string, q: CompiledSegment, lo: string, size: number, columns: string): Promise<{ ids: string[]; rows: ContactRow[] }> {
  const ids = (await db.query<{ id: string }>('select id from contacts where tenant_id = $1 and id > $2 order by id limit $3', [tenantId, lo, size])).rows.map((r) => r.id);
  if (!ids.length) return { ids, rows: [] };
  const params = [...q.params];
  params[1] = ids;
  if (q.range) {
    params[q.range.first] = ids[0];
    params[q.range.last] = ids[ids.length - 1];
  }
  const { rows } = await db.query<ContactRow>(`select ${columns} from contacts c where c.tenant_id = $1::uuid and c.id = any($2::uuid[]) and ${q.where} order by c.id`, params);
  return { ids, rows };
}

/**
 * The members among the tenant's next `limit` contacts after `after` (passing on over windows
 * that hold none), and whether the walk is done: for a writer that moves its own cursor to the
 * last member it wrote, such as a campaign's batches. Each contact is judged about once over the
 * whole walk, where paging through members would judge part of a window again for every page.
 */
export async function nextWindowMembers(
  db: Queryable,
  tenantId: string,
  definition: unknown,
  now: Date,
  after: string | null,
  limit: number,
): Promise<{ members: ContactRow[]; done: boolean }> {
  const q = await prepareSegment(db, tenantId, definition, now, true);
  let lo = after ?? BEFORE_ALL_IDS;
  for (;;) {
    const { ids, rows } = await judgeWindow(db, tenantId, q, lo, limit, CONTACT_COLUMNS_C);
    const done = ids.length < limit;
    if (rows.length || done) return { members: rows, done };
    lo = ids[ids.length - 1]!;
  }
}

/**
 * The members among successive windows of `window` contacts after `after`: one query takes the
 * next window's ids (keyset on contacts.id), one judges them, with the segment compiled `ranged`
 * so that it reads only their history. The whole walk costs about one evaluation of the segment,
 * where paging with LIMIT over the unbounded predicate could make the planner rescan the tenant's
 * history for every page.
 */
async function* windows(
  db: Queryable,
  tenantId: string,
  q: CompiledSegment,
  after: string | null,
  window: number,
  columns: string,
  want?: number,
): AsyncGenerator<ContactRow[]> {
  let lo = after ?? BEFORE_ALL_IDS;
  let judged = 0;
  let found = 0;
  for (;;) {
    // Paging for `want` members, judge about as many contacts as the hit rate so far says it
    // takes (all of them match, at first), not a whole window of which most would be judged again
    // for the next page.
    const size = want === undefined ? window : Math.min(window, Math.max(64, Math.ceil(((want - found) * 1.1) / Math.max(found / Math.max(judged, 1), judged ? 0.01 : 1))));
    const { ids, rows } = await judgeWindow(db, tenantId, q, lo, size, columns);
    if (!ids.length) return;
    judged += ids.length;
    found += rows.length;
    yield rows;
    if (ids.length < size) return;
    lo = ids[ids.length - 1]!;
  }
}

/** The count and the first `sample` members (in id order, so the same sample twice), with how long both took. */
export async function previewSegment(db: Queryable, tenantId: string, definition: unknown, now: Date, sample: number): Promise<{ count: number; sample: ContactRow[]; took_ms: number }> {
  const started = performance.now();
  const q = await prepareSegment(db, tenantId, definition, now);
  const { rows } = await db.query<{ n: string }>(`select count(*) as n from contacts c where c.tenant_id = $1::uuid and ${q.where}`, q.params);
  const count = Number(rows[0]!.n);
  let first: ContactRow[] = [];
  if (sample > 0 && count > 0) {
    const n = q.params.length;
    first = (
      await db.query<ContactRow>(`select ${CONTACT_COLUMNS_C} from contacts c where c.tenant_id = $1::uuid and ${q.where} order by c.id limit $${n + 1}::int`, [...q.params, sample])
    ).rows;
  }
  return { count, sample: first, took_ms: Math.round((performance.now() - started) * 10) / 10 };
}

/** One page of members after `cursor`, for the API. */
export async function segmentMembers(
  db: Queryable,
  tenantId: string,
  definition: unknown,
  now: Date,
  opts: { limit?: number; cursor?: string },
): Promise<{ data: ContactRow[]; next_cursor: string | null }> {
  const limit = opts.limit ?? 100;
  const q = await prepareSegment(db, tenantId, definition, now, true);
  const data: ContactRow[] = [];
  let more = false;
  for await (const rows of windows(db, tenantId, q, opts.cursor ? decodeCursor(opts.cursor) : null, Math.max(MEMBER_WINDOW, limit + 1), CONTACT_COLUMNS_C, limit + 1)) {
    data.push(...rows);
    if (data.length > limit) {
      more = true;
      break;
    }
  }
  data.length = Math.min(data.length, limit);
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

export interface StreamOptions {
  /** The instant relative conditions are measured from, fixed for the whole stream (default: now). */
  now?: Date;
  /** Only the ids, when the caller loads what it needs itself. */
  idsOnly?: boolean;
}

/**
 * Every member, in batches of `batchSize` (the last may be smaller) in id order. Each query
 * judges the next `batchSize` contacts after the last one judged (keyset pagination on
 * contacts.id): no OFFSET, no cursor held open, at most two batches in memory. Each window sees
 * the data as it is when it runs, so a contact that changes mid-stream is judged on its state
 * when its window is read.
 */
export async function* streamSegment(db: Queryable, tenantId: string, definition: unknown, batchSize: number, opts: StreamOptions = {}): AsyncGenerator<ContactRow[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const q = await prepareSegment(db, tenantId, definition, opts.now ?? new Date(), true);
  let pending: ContactRow[] = [];
  for await (const rows of windows(db, tenantId, q, null, batchSize, opts.idsOnly ? 'c.id' : CONTACT_COLUMNS_C)) {
    pending = pending.length ? pending.concat(rows) : rows;
    while (pending.length >= batchSize) {
      yield pending.slice(0, batchSize);
      pending = pending.slice(batchSize);
    }
  }
  if (pending.length) yield pending;
}

// ---------------------------------------------------------------------------------------------
// Storage

function nameTaken(err: unknown, name: string | undefined): never {
  if (pgErrorCode(err) === UNIQUE_VIOLATION) throw new ConflictError(`a segment named ${JSON.stringify(name)} already exists`, 'name');
  throw err;
}

/** Serialises segment writes per tenant, so two edits cannot close a cycle between them. */
async function lockTenantSegments(db: Queryable, tenantId: string): Promise<void> {
  await db.query(`select pg_advisory_xact_lock(hashtextextended('rapport.segments:' || $1::text, 0))`, [tenantId]);
}

export async function createSegment(db: Db, tenantId: string, input: SegmentInput, actor: string, now: Date): Promise<SegmentRow> {
  const definition = checked(input.definition);
  return db
    .transaction(async (tx) => {
      await lockTenantSegments(tx, tenantId);
      const resolved = await resolveRefs(tx, tenantId, definition);
      const { rows } = await tx.query<SegmentRow>(
        `insert into segments (id, tenant_id, name, description, definition, refs, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7) returning ${COLUMNS}`,
        [newId(), tenantId, input.name, input.description ?? null, JSON.stringify(resolved.definition), resolved.refs, now],
      );
      const row = rows[0]!;
      await writeAudit(tx, { tenantId, actor, action: 'segment.created', entityType: 'segment', entityId: row.id, data: { name: row.name } });
      return row;
    })
    .catch((err: unknown) => nameTaken(err, input.name));
}

export async function getSegment(db: Queryable, tenantId: string, id: string): Promise<SegmentRow> {
  const { rows } = await db.query<SegmentRow>(`select ${COLUMNS} from segments where tenant_id = $1 and id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('segment');
  return rows[0];
}

export async function listSegments(db: Queryable, tenantId: string, f: { limit?: number; cursor?: string; name?: string }): Promise<{ data: SegmentRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<SegmentRow>(
    `select ${COLUMNS} from segments where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or name = $3) order by id limit $4`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.name ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

export async function patchSegment(db: Db, tenantId: string, id: string, patch: SegmentPatch, actor: string, now: Date): Promise<SegmentRow> {
  const definition = patch.definition === undefined ? undefined : checked(patch.definition);
  return db
    .transaction(async (tx) => {
      await lockTenantSegments(tx, tenantId);
      await getSegment(tx, tenantId, id);
      let resolved: { definition: SegmentCondition; refs: string[] } | undefined;
      if (definition) {
        resolved = await resolveRefs(tx, tenantId, definition);
        const { rows } = await tx.query(
          `with recursive r(id) as (
             select unnest($2::uuid[])
             union
             select x.ref from r join segments s on s.id = r.id and s.tenant_id = $1 cross join lateral unnest(s.refs) as x(ref)
           ) select 1 from r where id = $3 limit 1`,
          [tenantId, resolved.refs, id],
        );
        if (rows.length) throw new ConflictError('the definition names a segment that names this one (directly or through others): segments cannot name each other in a cycle', 'definition');
      }
      const { rows } = await tx.query<SegmentRow>(
        `update segments set name = coalesce($3, name), description = case when $4::boolean then $5 else description end,
                definition = coalesce($6::jsonb, definition), refs = coalesce($7::uuid[], refs), updated_at = $8
          where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
        [
          tenantId,
          id,
          patch.name ?? null,
          patch.description !== undefined,
          patch.description ?? null,
          resolved ? JSON.stringify(resolved.definition) : null,
          resolved ? resolved.refs : null,
          now,
        ],
      );
      const row = rows[0]!;
      await writeAudit(tx, { tenantId, actor, action: 'segment.updated', entityType: 'segment', entityId: id, data: { fields: Object.keys(patch) } });
      return row;
    })
    .catch((err: unknown) => nameTaken(err, patch.name));
}

/** Deletes a segment; refused (409, naming them) while other segments name it. */
export async function deleteSegment(db: Db, tenantId: string, id: string, actor: string): Promise<SegmentRow> {
  return db.transaction(async (tx) => {
    await lockTenantSegments(tx, tenantId);
    const row = await getSegment(tx, tenantId, id);
    const { rows: users } = await tx.query<{ name: string }>('select name from segments where tenant_id = $1 and refs @> array[$2::uuid] order by name limit 20', [tenantId, id]);
    if (users.length) throw new ConflictError(`segment ${JSON.stringify(row.name)} is named by ${users.map((u) => JSON.stringify(u.name)).join(', ')}; change those first`);
    await tx.query('delete from segments where tenant_id = $1 and id = $2', [tenantId, id]);
    await writeAudit(tx, { tenantId, actor, action: 'segment.deleted', entityType: 'segment', entityId: id, data: { name: row.name } });
    return row;
  });
}
