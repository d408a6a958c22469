import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import type { SendChannel } from '../core/journey/definition.js';
import { templateProblems } from '../core/template.js';
import { writeAudit } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable } from './db.js';
import { newId } from './ids.js';

/**
 * Stored message templates. Send nodes name them (`content.template`) and the dispatcher renders
 * the template as it is at send time, so an edit reaches live journeys at once; a template that a
 * draft or live version names can therefore be neither deleted nor renamed.
 */

export interface WhatsAppTemplateRef {
  name: string;
  language: string;
  parameters?: string[];
}

export interface TemplateRow {
  id: string;
  name: string;
  channel: SendChannel;
  subject: string | null;
  body: string | null;
  html: string | null;
  whatsapp_template: WhatsAppTemplateRef | null;
  created_at: Date;
  updated_at: Date;
}

export interface TemplateInput {
  name: string;
  channel: SendChannel;
  subject?: string | null;
  body?: string | null;
  html?: string | null;
  whatsapp_template?: WhatsAppTemplateRef | null;
}

export type TemplatePatch = Partial<TemplateInput>;

type Content = Pick<TemplateRow, 'channel' | 'subject' | 'body' | 'html' | 'whatsapp_template'>;

const COLUMNS = 'id, name, channel, subject, body, html, whatsapp_template, created_at, updated_at';

/** What each channel needs, and refuses, so a template that could never be sent is not stored. */
export function templateContentProblems(t: Content): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const liquid = (field: string, source: string | null | undefined) => {
    if (source === null || source === undefined) return;
    const problem = templateProblems(source);
    if (problem) problems.push({ field, message: `is not a valid Liquid template: ${problem}` });
  };
  liquid('subject', t.subject);
  liquid('body', t.body);
  liquid('html', t.html);
  t.whatsapp_template?.parameters?.forEach((p, i) => liquid(`whatsapp_template.parameters[${i}]`, p));

  const only = (field: 'subject' | 'html' | 'whatsapp_template', channel: SendChannel) => {
    if (t[field] !== null && t.channel !== channel) problems.push({ field, message: `is only used by ${channel} templates, and this one is for ${t.channel}` });
  };
  only('subject', 'email');
  only('html', 'email');
  only('whatsapp_template', 'whatsapp');

  const has = (s: string | null) => s !== null && s.trim() !== '';
  switch (t.channel) {
    case 'email':
      if (!has(t.subject)) problems.push({ field: 'subject', message: 'is required for an email template' });
      if (!has(t.body) && !has(t.html)) problems.push({ field: 'body', message: 'an email template needs body (plain text) or html, or both' });
      break;
    case 'whatsapp':
      if (!has(t.body) && !t.whatsapp_template) problems.push({ field: 'body', message: 'a WhatsApp template needs body (inside the 24-hour window) or whatsapp_template, or both' });
      break;
    default:
      if (!has(t.body)) problems.push({ field: 'body', message: `is required for a ${t.channel} template` });
  }
  return problems;
}

function contentOf(input: TemplateInput): Content {
  return {
    channel: input.channel,
    subject: input.subject ?? null,
    body: input.body ?? null,
    html: input.html ?? null,
    whatsapp_template: input.whatsapp_template ?? null,
  };
}

function nameTaken(err: unknown, name: string): never {
  if (pgErrorCode(err) === UNIQUE_VIOLATION) throw new ConflictError(`a template named ${JSON.stringify(name)} already exists`, 'name');
  throw err;
}

export async function createTemplate(db: Db, tenantId: string, input: TemplateInput, actor: string, now: Date): Promise<TemplateRow> {
  const content = contentOf(input);
  const problems = templateContentProblems(content);
  if (problems.length) throw new InputError(problems);
  return db
    .transaction(async (tx) => {
      const { rows } = await tx.query<TemplateRow>(
        `insert into templates (id, tenant_id, name, channel, subject, body, html, whatsapp_template, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) returning ${COLUMNS}`,
        [newId(), tenantId, input.name, content.channel, content.subject, content.body, content.html, jsonOrNull(content.whatsapp_template), now],
      );
      const row = rows[0]!;
      await writeAudit(tx, { tenantId, actor, action: 'template.created', entityType: 'template', entityId: row.id, data: { name: row.name, channel: row.channel } });
      return row;
    })
    .catch((err: unknown) => nameTaken(err, input.name));
}

export async function getTemplate(db: Queryable, tenantId: string, id: string): Promise<TemplateRow> {
  const { rows } = await db.query<TemplateRow>(`select ${COLUMNS} from templates where tenant_id = $1 and id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('template');
  return rows[0];
}

/** One page in creation order (ids are UUIDv7). */
export async function listTemplates(
  db: Queryable,
  tenantId: string,
  f: { limit?: number; cursor?: string; channel?: SendChannel; name?: string },
): Promise<{ data: TemplateRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<TemplateRow>(
    `select ${COLUMNS} from templates
      where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or channel = $3) and ($4::text is null or name = $4)
      order by id limit $5`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.channel ?? null, f.name ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/**
 * Journeys, other than archived ones, whose draft or live version has a send node naming the
 * template. Publishing takes the templates it names FOR SHARE, and delete and rename take the
 * template FOR UPDATE before asking this, so a journey cannot go live naming a template that is
 * being removed.
 */
async function journeysUsing(db: Queryable, tenantId: string, name: string): Promise<{ id: string; name: string }[]> {
  const { rows } = await db.query<{ id: string; name: string }>(
    `select j.id, j.name from journeys j
       left join journey_versions v on v.journey_id = j.id and v.version = j.version
      where j.tenant_id = $1 and j.status <> 'archived'
        and (exists (select 1 from jsonb_array_elements(j.draft->'nodes') n where n->>'type' = 'send' and n->'content'->>'template' = $2)
          or exists (select 1 from jsonb_array_elements(v.definition->'nodes') n where n->>'type' = 'send' and n->'content'->>'template' = $2))
      order by j.created_at limit 5`,
    [tenantId, name],
  );
  return rows;
}

function inUse(name: string, journeys: { id: string; name: string }[], doing: string): ConflictError {
  const list = journeys.map((j) => `${JSON.stringify(j.name)} (${j.id})`).join(', ');
  return new ConflictError(`template ${JSON.stringify(name)} cannot be ${doing}: journeys use it: ${list}; change or archive them first`, 'name');
}

async function lockTemplate(db: Queryable, tenantId: string, id: string): Promise<TemplateRow> {
  const { rows } = await db.query<TemplateRow>(`select ${COLUMNS} from templates where tenant_id = $1 and id = $2 for update`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('template');
  return rows[0];
}

/** Sets the given fields; null clears one. Renaming is refused while a journey names the template. */
export async function patchTemplate(db: Db, tenantId: string, id: string, patch: TemplatePatch, actor: string, now: Date): Promise<TemplateRow> {
  return db
    .transaction(async (tx) => {
      const current = await lockTemplate(tx, tenantId, id);
      const pick = <K extends keyof Content>(k: K): Content[K] => (k in patch ? ((patch[k] ?? null) as Content[K]) : current[k]);
      const next: Content = { channel: patch.channel ?? current.channel, subject: pick('subject'), body: pick('body'), html: pick('html'), whatsapp_template: pick('whatsapp_template') };
      const problems = templateContentProblems(next);
      if (problems.length) throw new InputError(problems);
      const name = patch.name ?? current.name;
      if (name !== current.name) {
        const users = await journeysUsing(tx, tenantId, current.name);
        if (users.length) throw inUse(current.name, users, 'renamed');
      }
      const { rows } = await tx.query<TemplateRow>(
        `update templates set name = $3, channel = $4, subject = $5, body = $6, html = $7, whatsapp_template = $8, updated_at = $9
          where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
        [tenantId, id, name, next.channel, next.subject, next.body, next.html, jsonOrNull(next.whatsapp_template), now],
      );
      await writeAudit(tx, {
        tenantId,
        actor,
        action: 'template.updated',
        entityType: 'template',
        entityId: id,
        data: { name, channel: next.channel, fields: Object.keys(patch) },
      });
      return rows[0]!;
    })
    .catch((err: unknown) => nameTaken(err, patch.name ?? ''));
}

/** Deletes a template that no draft or live version of a journey names. */
export async function deleteTemplate(db: Db, tenantId: string, id: string, actor: string): Promise<TemplateRow> {
  return db.transaction(async (tx) => {
    const current = await lockTemplate(tx, tenantId, id);
    const users = await journeysUsing(tx, tenantId, current.name);
    if (users.length) throw inUse(current.name, users, 'deleted');
    await tx.query('delete from templates where tenant_id = $1 and id = $2', [tenantId, id]);
    await writeAudit(tx, { tenantId, actor, action: 'template.deleted', entityType: 'template', entityId: id, data: { name: current.name, channel: current.channel } });
    return current;
  });
}

/**
 * Which of these names are templates of the tenant. `lock` takes them FOR SHARE, for a publish
 * that must not race a delete or rename.
 */
export async function existingTemplateNames(db: Queryable, tenantId: string, names: string[], lock = false): Promise<Set<string>> {
  if (!names.length) return new Set();
  const { rows } = await db.query<{ name: string }>(
    `select t.name from templates t where t.tenant_id = $1 and t.name = any($2::text[]) order by t.name${lock ? ' for share' : ''}`,
    [tenantId, [...new Set(names)]],
  );
  return new Set(rows.map((r) => r.name));
}

function jsonOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}
