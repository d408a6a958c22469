import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import type { JourneyDefinition, SendChannel } from '../core/journey/definition.js';
import { checkDefinition, checkPublishable, compileJourney, type JourneyProblem } from '../core/journey/validate.js';
import { writeAudit } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import type { Db, Queryable, Tx } from './db.js';
import { endEnrollments, notifyWork } from './enrollments.js';
import { newId } from './ids.js';
import { existingTemplateNames } from './templates.js';

/**
 * Journeys and their lifecycle:
 *
 *   draft ──publish──► active ──pause──► paused ──resume──► active
 *   publish on active or paused: a new version, the status kept
 *   any status but archived ──archive──► archived (read-only, open enrollments cancelled)
 *
 * The draft is edited freely (it must only be well-formed); publishing checks the graph, copies
 * the draft into an immutable journey_versions row and points the journey at it. Enrollments keep
 * the version they entered with, so publishing never touches them. Every lifecycle change takes
 * the journey row FOR UPDATE first: workers and enrolments read it FOR SHARE, so a pause or an
 * archive never interleaves with a batch that is advancing the same journey.
 */

export type JourneyStatus = 'draft' | 'active' | 'paused' | 'archived';

export interface JourneySummary {
  id: string;
  name: string;
  status: JourneyStatus;
  /** The live version; null until the first publish. */
  version: number | null;
  entry_event: string | null;
  open_enrollments: number;
  created_at: Date;
  updated_at: Date;
  published_at: Date | null;
}

export interface JourneyDetail extends JourneySummary {
  draft: Record<string, unknown>;
}

export interface VersionSummary {
  journey_id: string;
  version: number;
  channels: SendChannel[];
  published_at: Date;
  published_by: string;
}

export interface VersionDetail extends VersionSummary {
  /** As published: immutable, and what every enrollment on this version runs. */
  definition: Record<string, unknown>;
}

/** A problem as the API reports it: the field under `definition`, the node named first in the message. */
export interface DefinitionProblem extends FieldProblem {
  node?: string;
}

/** The draft cannot be published as it is; nothing was written. */
export class JourneyProblemsError extends Error {
  constructor(readonly problems: DefinitionProblem[]) {
    super(`the journey cannot be published: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`.slice(0, 500));
    this.name = 'JourneyProblemsError';
  }
}

/** `nodes[2].content.body` → `definition.nodes[2].content.body`, the node named at the head of the message. */
export function apiProblems(problems: JourneyProblem[]): DefinitionProblem[] {
  return problems.map((p) => {
    const field = p.field === '' ? 'definition' : p.field.startsWith('[') ? `definition${p.field}` : `definition.${p.field}`;
    const message = p.node ? `node "${p.node}": ${p.message}` : p.message;
    return { field, message, ...(p.node ? { node: p.node } : {}) };
  });
}

const SUMMARY = `j.id, j.name, j.status, j.version, j.entry_event, j.created_at, j.updated_at, j.published_at,
  (select count(*)::int from enrollments e where e.journey_id = j.id and e.ended_at is null) as open_enrollments`;

/**
 * The draft as stored: the definition as written, carrying the journey's name (templates read it
 * as `journey.name`). Structural problems refuse it; graph problems wait for publish.
 */
function checkedDraft(definition: unknown, name: string): Record<string, unknown> {
  if (definition === null || typeof definition !== 'object' || Array.isArray(definition)) throw InputError.field('definition', 'must be an object (a journey definition)');
  const draft = { ...(definition as Record<string, unknown>), name };
  const { problems } = checkDefinition(draft);
  if (problems.length) throw new InputError(apiProblems(problems));
  return draft;
}

export async function createJourney(db: Db, tenantId: string, input: { name: string; definition: unknown }, actor: string, now: Date): Promise<JourneyDetail> {
  const draft = checkedDraft(input.definition, input.name);
  const id = newId();
  return db.transaction(async (tx) => {
    await tx.query(
      `insert into journeys (id, tenant_id, name, status, draft, created_at, updated_at) values ($1, $2, $3, 'draft', $4, $5, $5)`,
      [id, tenantId, input.name, JSON.stringify(draft), now],
    );
    await writeAudit(tx, { tenantId, actor, action: 'journey.created', entityType: 'journey', entityId: id, data: { name: input.name } });
    return getJourney(tx, tenantId, id);
  });
}

export async function getJourney(db: Queryable, tenantId: string, id: string): Promise<JourneyDetail> {
  const { rows } = await db.query<JourneyDetail>(`select ${SUMMARY}, j.draft from journeys j where j.tenant_id = $1 and j.id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('journey');
  return rows[0];
}

/** One page in creation order (ids are UUIDv7). */
export async function listJourneys(
  db: Queryable,
  tenantId: string,
  f: { limit?: number; cursor?: string; status?: JourneyStatus; name?: string },
): Promise<{ data: JourneySummary[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<JourneySummary>(
    `select ${SUMMARY} from journeys j
      where j.tenant_id = $1 and ($2::uuid is null or j.id > $2) and ($3::text is null or j.status = $3) and ($4::text is null or j.name = $4)
      order by j.id limit $5`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.status ?? null, f.name ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

interface LockedJourney {
  id: string;
  name: string;
  status: JourneyStatus;
  version: number | null;
  draft: Record<string, unknown>;
}

/** Takes the journey row FOR UPDATE; the lifecycle changes below start here. */
async function lockJourney(tx: Queryable, tenantId: string, id: string): Promise<LockedJourney> {
  const { rows } = await tx.query<LockedJourney>('select id, name, status, version, draft from journeys where tenant_id = $1 and id = $2 for update', [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('journey');
  return rows[0];
}

function wrongStatus(j: LockedJourney, doing: string, allowed: string): ConflictError {
  return new ConflictError(`journey ${JSON.stringify(j.name)} is ${j.status}; only ${allowed} journeys can be ${doing}`, 'status');
}

/** Edits the draft (name, definition or both) in any status but archived; live versions are untouched. */
export async function patchJourney(db: Db, tenantId: string, id: string, patch: { name?: string; definition?: unknown }, actor: string, now: Date): Promise<JourneyDetail> {
  return db.transaction(async (tx) => {
    const j = await lockJourney(tx, tenantId, id);
    if (j.status === 'archived') throw new ConflictError(`journey ${JSON.stringify(j.name)} is archived and can no longer be edited; create a new journey`, 'status');
    const name = patch.name ?? j.name;
    const draft = patch.definition !== undefined ? checkedDraft(patch.definition, name) : { ...j.draft, name };
    await tx.query('update journeys set name = $3, draft = $4, updated_at = $5 where tenant_id = $1 and id = $2', [tenantId, id, name, JSON.stringify(draft), now]);
    await writeAudit(tx, { tenantId, actor, action: 'journey.updated', entityType: 'journey', entityId: id, data: { name, fields: Object.keys(patch) } });
    return getJourney(tx, tenantId, id);
  });
}

function templatesNamed(def: JourneyDefinition): string[] {
  return def.nodes.flatMap((n) => (n.type === 'send' && n.content.template ? [n.content.template] : []));
}

/**
 * Both checks on a draft: structure, then the graph rules publishing needs, with the tenant's
 * templates. `lockTemplates` holds the templates named FOR SHARE until the caller's transaction
 * ends, so a concurrent delete cannot pull one from under a publish.
 */
async function draftProblems(db: Queryable, tenantId: string, draft: unknown, lockTemplates: boolean): Promise<{ definition: JourneyDefinition; problems: DefinitionProblem[] }> {
  const { definition, problems } = checkDefinition(draft);
  if (problems.length) return { definition, problems: apiProblems(problems) };
  const known = await existingTemplateNames(db, tenantId, templatesNamed(definition), lockTemplates);
  return { definition, problems: apiProblems(checkPublishable(definition, { templateExists: (name) => known.has(name) })) };
}

/** Runs the publish checks on the draft without changing anything. */
export async function validateJourney(db: Queryable, tenantId: string, id: string): Promise<{ valid: boolean; problems: DefinitionProblem[] }> {
  const j = await getJourney(db, tenantId, id);
  const { problems } = await draftProblems(db, tenantId, j.draft, false);
  return { valid: problems.length === 0, problems };
}

/**
 * Publishes the draft as the next version and makes it live, in one transaction. A paused journey
 * stays paused; a draft or active one becomes active. JourneyProblemsError when the checks fail.
 */
export async function publishJourney(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<VersionSummary & { status: JourneyStatus }> {
  return db.transaction(async (tx) => {
    const j = await lockJourney(tx, tenantId, id);
    if (j.status === 'archived') throw new ConflictError(`journey ${JSON.stringify(j.name)} is archived and can no longer be published; create a new journey`, 'status');
    const { definition, problems } = await draftProblems(tx, tenantId, j.draft, true);
    if (problems.length) throw new JourneyProblemsError(problems);
    const compiled = compileJourney(definition);
    const { rows } = await tx.query<VersionSummary>(
      `insert into journey_versions (journey_id, version, tenant_id, definition, channels, published_at, published_by)
       select $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6 from journey_versions where journey_id = $1
       returning journey_id, version, channels, published_at, published_by`,
      [id, tenantId, JSON.stringify(definition), compiled.channels, now, actor],
    );
    const v = rows[0]!;
    const status: JourneyStatus = j.status === 'paused' ? 'paused' : 'active';
    await tx.query(
      'update journeys set version = $3, entry_event = $4, status = $5, published_at = $6, updated_at = $6 where tenant_id = $1 and id = $2',
      [tenantId, id, v.version, compiled.entryEvent, status, now],
    );
    await writeAudit(tx, {
      tenantId,
      actor,
      action: 'journey.published',
      entityType: 'journey',
      entityId: id,
      data: { version: v.version, previous_version: j.version, status, channels: v.channels },
    });
    return { ...v, status };
  });
}

/** Stops the journey: no new enrollments, and open ones keep their timers in paused_due_at. */
export async function pauseJourney(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<JourneyDetail> {
  return db.transaction(async (tx) => {
    const j = await lockJourney(tx, tenantId, id);
    if (j.status !== 'active') throw wrongStatus(j, 'paused', 'active');
    const { rowCount } = await tx.query(
      `update enrollments set paused_due_at = due_at, due_at = null, updated_at = $3
        where journey_id = $2 and tenant_id = $1 and ended_at is null and due_at is not null`,
      [tenantId, id, now],
    );
    return changeStatus(tx, tenantId, j, 'paused', actor, now, { enrollments_parked: rowCount });
  });
}

/** Restarts a paused journey: parked timers come back (those already past fall due at once). */
export async function resumeJourney(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<JourneyDetail> {
  return db.transaction(async (tx) => {
    const j = await lockJourney(tx, tenantId, id);
    if (j.status !== 'paused') throw wrongStatus(j, 'resumed', 'paused');
    const { rowCount } = await tx.query(
      `update enrollments set due_at = paused_due_at, paused_due_at = null, updated_at = $3
        where journey_id = $2 and tenant_id = $1 and ended_at is null and paused_due_at is not null`,
      [tenantId, id, now],
    );
    if (rowCount) await notifyWork(tx);
    return changeStatus(tx, tenantId, j, 'active', actor, now, { enrollments_resumed: rowCount });
  });
}

/** Retires the journey for good: read-only from now on, its open enrollments cancelled with their queued messages. */
export async function archiveJourney(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<JourneyDetail> {
  return db.transaction(async (tx) => {
    const j = await lockJourney(tx, tenantId, id);
    if (j.status === 'archived') throw new ConflictError(`journey ${JSON.stringify(j.name)} is already archived`, 'status');
    const { rows } = await tx.query<{ id: string }>('select id from enrollments where journey_id = $2 and tenant_id = $1 and ended_at is null', [tenantId, id]);
    const ended = await endEnrollments(
      tx,
      tenantId,
      rows.map((r) => r.id),
      'cancelled',
      'journey archived',
      now,
    );
    return changeStatus(tx, tenantId, j, 'archived', actor, now, { enrollments_cancelled: ended.length });
  });
}

const STATUS_ACTIONS = { paused: 'journey.paused', active: 'journey.resumed', archived: 'journey.archived' } as const;

async function changeStatus(
  tx: Tx,
  tenantId: string,
  j: LockedJourney,
  status: keyof typeof STATUS_ACTIONS,
  actor: string,
  now: Date,
  data: Record<string, unknown>,
): Promise<JourneyDetail> {
  await tx.query('update journeys set status = $3, updated_at = $4 where tenant_id = $1 and id = $2', [tenantId, j.id, status, now]);
  const action = STATUS_ACTIONS[status];
  await writeAudit(tx, { tenantId, actor, action, entityType: 'journey', entityId: j.id, data: { from: j.status, ...data } });
  return getJourney(tx, tenantId, j.id);
}

/** Every published version of a journey, newest first, without their definitions. */
export async function listVersions(db: Queryable, tenantId: string, journeyId: string): Promise<VersionSummary[]> {
  const { rows } = await db.query<VersionSummary>(
    `select j.id as journey_id, v.version, v.channels, v.published_at, v.published_by
       from journeys j left join journey_versions v on v.journey_id = j.id
      where j.tenant_id = $1 and j.id = $2
      order by v.version desc`,
    [tenantId, journeyId],
  );
  if (!rows.length) throw new NotFoundError('journey');
  return rows.filter((r) => r.version !== null);
}

export async function getVersionDetail(db: Queryable, tenantId: string, journeyId: string, version: number): Promise<VersionDetail> {
  const { rows } = await db.query<VersionDetail>(
    `select journey_id, version, channels, published_at, published_by, definition from journey_versions
      where tenant_id = $1 and journey_id = $2 and version = $3`,
    [tenantId, journeyId, version],
  );
  if (!rows[0]) throw new NotFoundError('journey version');
  return rows[0];
}
