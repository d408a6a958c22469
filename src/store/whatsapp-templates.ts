import type { TemplateButtonParam } from '../channels/types.js';
import { toE164 } from '../core/contact.js';
import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import { writeAudit } from './audit.js';
import { decodeCursor, encodeCursor } from './contact-search.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable } from './db.js';
import { newId } from './ids.js';

/**
 * The WhatsApp template registry: the message templates Meta approved for the tenant's WhatsApp
 * Business account, by name and language, with their components as Meta describes them. Outside
 * the 24-hour customer-service window WhatsApp delivers nothing else, so the dispatcher looks the
 * template up here (findApprovedTemplate) to know it is approved and how many parameters it takes.
 *
 * Components are checked against Meta's published rules, so a template Meta would refuse is not
 * registered: one BODY with text, placeholders {{1}}…{{n}} without gaps, at most 10 buttons with
 * texts of 25 characters, URL buttons with one {{1}} at the end at most, phone buttons in E.164.
 * Component and button types are accepted in either case and stored upper case, as Meta returns them.
 */

export const WHATSAPP_TEMPLATE_CATEGORIES = ['marketing', 'utility', 'authentication'] as const;
export const WHATSAPP_TEMPLATE_STATUSES = ['pending', 'approved', 'rejected', 'paused', 'disabled'] as const;
export type WhatsAppTemplateCategory = (typeof WHATSAPP_TEMPLATE_CATEGORIES)[number];
export type WhatsAppTemplateStatus = (typeof WHATSAPP_TEMPLATE_STATUSES)[number];

export interface TemplateButton {
  type: string;
  text?: string;
  url?: string;
  phone_number?: string;
  [field: string]: unknown;
}

export interface TemplateComponent {
  type: string;
  format?: string;
  text?: string;
  buttons?: TemplateButton[];
  [field: string]: unknown;
}

export interface WhatsAppTemplateRow {
  id: string;
  name: string;
  language: string;
  category: WhatsAppTemplateCategory;
  components: TemplateComponent[];
  status: WhatsAppTemplateStatus;
  provider_template_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface WhatsAppTemplateInput {
  name: string;
  language: string;
  category: WhatsAppTemplateCategory;
  components: TemplateComponent[];
  status?: WhatsAppTemplateStatus;
  provider_template_id?: string | null;
}

export type WhatsAppTemplatePatch = Partial<WhatsAppTemplateInput>;

const COLUMNS = 'id, name, language, category, components, status, provider_template_id, created_at, updated_at';

/** Meta's rule for template names. */
export const TEMPLATE_NAME = /^[a-z0-9_]{1,512}$/;
/** Meta's language codes: en, en_US, pt_BR, zh_HK… */
export const TEMPLATE_LANGUAGE = /^[a-z]{2,3}(_[A-Z]{2,4})?$/;

// Meta's limits (WhatsApp Cloud API, template components).
const LIMITS = { header: 60, body: 1024, footer: 60, buttons: 10, buttonText: 25, url: 2000, urlButtons: 2, phoneButtons: 1 };
const COMPONENT_TYPES = ['HEADER', 'BODY', 'FOOTER', 'BUTTONS'];
const HEADER_FORMATS = ['TEXT', 'IMAGE', 'VIDEO', 'DOCUMENT', 'LOCATION'];
const BUTTON_TYPES = ['QUICK_REPLY', 'URL', 'PHONE_NUMBER', 'COPY_CODE', 'OTP', 'FLOW', 'CATALOG', 'MPM', 'VOICE_CALL'];
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/** The placeholders of a text, as written between the braces. */
function placeholders(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!.trim());
}

/** Problems with a text's placeholders: {{1}}…{{n}}, each number from 1 to n used, nothing else. */
function placeholderProblems(field: string, text: string): FieldProblem[] {
  const found = placeholders(text);
  if (found.some((p) => !/^[1-9]\d*$/.test(p))) {
    return [{ field, message: 'placeholders are {{1}}, {{2}}, … (named parameters are not supported)' }];
  }
  const numbers = new Set(found.map(Number));
  const n = Math.max(0, ...numbers);
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !numbers.has(i));
  return missing.length ? [{ field, message: `placeholders must run {{1}} to {{${n}}} without gaps; missing ${missing.map((i) => `{{${i}}}`).join(', ')}` }] : [];
}

/** Component and button types upper-cased, as stored. */
export function normalizeComponents(components: TemplateComponent[]): TemplateComponent[] {
  return components.map((c) => ({
    ...c,
    type: String(c.type).toUpperCase(),
    ...(typeof c.format === 'string' ? { format: c.format.toUpperCase() } : {}),
    ...(Array.isArray(c.buttons) ? { buttons: c.buttons.map((b) => ({ ...b, type: String(b.type).toUpperCase() })) } : {}),
  }));
}

function buttonProblems(path: string, buttons: TemplateButton[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (buttons.length < 1 || buttons.length > LIMITS.buttons) problems.push({ field: path, message: `must hold 1 to ${LIMITS.buttons} buttons` });
  buttons.forEach((b, i) => {
    const at = `${path}[${i}]`;
    if (!BUTTON_TYPES.includes(b.type)) return problems.push({ field: `${at}.type`, message: `must be one of ${BUTTON_TYPES.join(', ')}` });
    if (b.text !== undefined && (typeof b.text !== 'string' || b.text.length < 1 || b.text.length > LIMITS.buttonText)) {
      problems.push({ field: `${at}.text`, message: `must be 1 to ${LIMITS.buttonText} characters` });
    }
    if (['QUICK_REPLY', 'URL', 'PHONE_NUMBER'].includes(b.type) && b.text === undefined) problems.push({ field: `${at}.text`, message: 'is required' });
    if (b.type === 'URL') {
      if (typeof b.url !== 'string' || !/^https?:\/\/[^\s/]+/i.test(b.url) || b.url.length > LIMITS.url) {
        problems.push({ field: `${at}.url`, message: `must be an http(s) URL of at most ${LIMITS.url} characters` });
      } else {
        const vars = placeholders(b.url);
        if (vars.length > 1 || (vars.length === 1 && (vars[0] !== '1' || !/\{\{\s*1\s*\}\}$/.test(b.url)))) {
          problems.push({ field: `${at}.url`, message: 'may hold one placeholder, {{1}}, and only at its end' });
        }
      }
    }
    if (b.type === 'PHONE_NUMBER') {
      const phone = typeof b.phone_number === 'string' && b.phone_number.startsWith('+') ? toE164(b.phone_number) : null;
      if (!phone || !('e164' in phone) || phone.e164 !== b.phone_number) problems.push({ field: `${at}.phone_number`, message: 'must be a phone number in E.164, e.g. +14155550100' });
    }
  });
  const count = (type: string) => buttons.filter((b) => b.type === type).length;
  if (count('URL') > LIMITS.urlButtons) problems.push({ field: path, message: `at most ${LIMITS.urlButtons} URL buttons` });
  if (count('PHONE_NUMBER') > LIMITS.phoneButtons) problems.push({ field: path, message: `at most ${LIMITS.phoneButtons} PHONE_NUMBER button` });
  // Meta shows quick replies and the other buttons in two groups and refuses them interleaved.
  const groups = buttons.map((b) => b.type === 'QUICK_REPLY').filter((q, i, all) => i === 0 || q !== all[i - 1]).length;
  if (groups > 2) problems.push({ field: path, message: 'quick replies and the other buttons must each be grouped together' });
  return problems;
}

/** What Meta would refuse in a template's components, by field (components[1].buttons[0].text). */
export function componentProblems(raw: TemplateComponent[]): FieldProblem[] {
  const components = normalizeComponents(raw);
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  components.forEach((c, i) => {
    const at = `components[${i}]`;
    if (!COMPONENT_TYPES.includes(c.type)) return problems.push({ field: `${at}.type`, message: `must be one of ${COMPONENT_TYPES.join(', ')}` });
    if (seen.has(c.type)) return problems.push({ field: `${at}.type`, message: `a template has one ${c.type} at most` });
    seen.add(c.type);
    const text = typeof c.text === 'string' ? c.text : undefined;
    switch (c.type) {
      case 'HEADER': {
        const format = c.format ?? 'TEXT';
        if (!HEADER_FORMATS.includes(format)) problems.push({ field: `${at}.format`, message: `must be one of ${HEADER_FORMATS.join(', ')}` });
        else if (format === 'TEXT') {
          if (!text?.trim() || text.length > LIMITS.header) problems.push({ field: `${at}.text`, message: `a text header needs text of 1 to ${LIMITS.header} characters` });
          else if (placeholders(text).length > 1) problems.push({ field: `${at}.text`, message: 'a header holds one placeholder at most, {{1}}' });
          else problems.push(...placeholderProblems(`${at}.text`, text));
        }
        break;
      }
      case 'BODY':
        if (!text?.trim() || text.length > LIMITS.body) problems.push({ field: `${at}.text`, message: `the body needs text of 1 to ${LIMITS.body} characters` });
        else problems.push(...placeholderProblems(`${at}.text`, text));
        break;
      case 'FOOTER':
        if (!text?.trim() || text.length > LIMITS.footer) problems.push({ field: `${at}.text`, message: `a footer needs text of 1 to ${LIMITS.footer} characters` });
        else if (placeholders(text).length) problems.push({ field: `${at}.text`, message: 'a footer holds no placeholders' });
        break;
      case 'BUTTONS':
        if (!Array.isArray(c.buttons)) problems.push({ field: `${at}.buttons`, message: 'is required' });
        else problems.push(...buttonProblems(`${at}.buttons`, c.buttons));
        break;
    }
  });
  if (!seen.has('BODY') && !problems.some((p) => p.field.startsWith('components['))) {
    problems.push({ field: 'components', message: 'a template needs a BODY component with text' });
  }
  return problems;
}

/** The number of body parameters a send must fill: n for a body using {{1}}…{{n}}. */
export function templateParameterCount(components: TemplateComponent[]): number {
  const body = components.find((c) => String(c.type).toUpperCase() === 'BODY');
  const numbers = typeof body?.text === 'string' ? placeholders(body.text).map(Number).filter(Number.isInteger) : [];
  return Math.max(0, ...numbers);
}

/** The buttons that take a parameter at send time: URL buttons with {{1}}, and quick replies (their payload). */
export function templateButtonParameters(components: TemplateComponent[]): Omit<TemplateButtonParam, 'parameter'>[] {
  const buttons = components.find((c) => String(c.type).toUpperCase() === 'BUTTONS')?.buttons ?? [];
  return buttons.flatMap<Omit<TemplateButtonParam, 'parameter'>>((b, index) => {
    const type = String(b.type).toUpperCase();
    if (type === 'QUICK_REPLY') return [{ index, sub_type: 'quick_reply' }];
    if (type === 'URL' && typeof b.url === 'string' && placeholders(b.url).length) return [{ index, sub_type: 'url' }];
    return [];
  });
}

function inputProblems(t: WhatsAppTemplateInput): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!TEMPLATE_NAME.test(t.name)) problems.push({ field: 'name', message: 'must be lower case letters, digits and underscores, at most 512 (Meta’s rule)' });
  if (!TEMPLATE_LANGUAGE.test(t.language)) problems.push({ field: 'language', message: 'must be a language code as Meta writes it, e.g. en, en_US, pt_BR' });
  if (!(WHATSAPP_TEMPLATE_CATEGORIES as readonly string[]).includes(t.category)) problems.push({ field: 'category', message: `must be one of ${WHATSAPP_TEMPLATE_CATEGORIES.join(', ')}` });
  if (t.status !== undefined && !(WHATSAPP_TEMPLATE_STATUSES as readonly string[]).includes(t.status)) {
    problems.push({ field: 'status', message: `must be one of ${WHATSAPP_TEMPLATE_STATUSES.join(', ')}` });
  }
  if (!Array.isArray(t.components)) problems.push({ field: 'components', message: 'must be a list of components' });
  else problems.push(...componentProblems(t.components));
  return problems;
}

function taken(err: unknown, t: { name?: string; language?: string }): never {
  if (pgErrorCode(err) === UNIQUE_VIOLATION) throw new ConflictError(`a WhatsApp template ${JSON.stringify(t.name)} in ${t.language} already exists`, 'name');
  throw err;
}

export async function createWhatsAppTemplate(db: Db, tenantId: string, input: WhatsAppTemplateInput, actor: string, now: Date): Promise<WhatsAppTemplateRow> {
  const problems = inputProblems(input);
  if (problems.length) throw new InputError(problems);
  return db
    .transaction(async (tx) => {
      const { rows } = await tx.query<WhatsAppTemplateRow>(
        `insert into whatsapp_templates (id, tenant_id, name, language, category, components, status, provider_template_id, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) returning ${COLUMNS}`,
        [newId(), tenantId, input.name, input.language, input.category, JSON.stringify(normalizeComponents(input.components)), input.status ?? 'approved', input.provider_template_id ?? null, now],
      );
      const row = rows[0]!;
      await writeAudit(tx, {
        tenantId,
        actor,
        action: 'whatsapp_template.created',
        entityType: 'whatsapp_template',
        entityId: row.id,
        data: { name: row.name, language: row.language, status: row.status },
      });
      return row;
    })
    .catch((err: unknown) => taken(err, input));
}

export async function getWhatsAppTemplate(db: Queryable, tenantId: string, id: string): Promise<WhatsAppTemplateRow> {
  const { rows } = await db.query<WhatsAppTemplateRow>(`select ${COLUMNS} from whatsapp_templates where tenant_id = $1 and id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('WhatsApp template');
  return rows[0];
}

/** One page in creation order. */
export async function listWhatsAppTemplates(
  db: Queryable,
  tenantId: string,
  f: { limit?: number; cursor?: string; name?: string; language?: string; status?: WhatsAppTemplateStatus },
): Promise<{ data: WhatsAppTemplateRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const { rows } = await db.query<WhatsAppTemplateRow>(
    `select ${COLUMNS} from whatsapp_templates
      where tenant_id = $1 and ($2::uuid is null or id > $2) and ($3::text is null or name = $3)
        and ($4::text is null or language = $4) and ($5::text is null or status = $5)
      order by id limit $6`,
    [tenantId, f.cursor ? decodeCursor(f.cursor) : null, f.name ?? null, f.language ?? null, f.status ?? null, limit + 1],
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}

/** Sets the given fields (components replace the stored list whole) and checks the result. */
export async function patchWhatsAppTemplate(db: Db, tenantId: string, id: string, patch: WhatsAppTemplatePatch, actor: string, now: Date): Promise<WhatsAppTemplateRow> {
  let next: WhatsAppTemplateInput | undefined;
  return db
    .transaction(async (tx) => {
      const { rows: found } = await tx.query<WhatsAppTemplateRow>(`select ${COLUMNS} from whatsapp_templates where tenant_id = $1 and id = $2 for update`, [tenantId, id]);
      const current = found[0];
      if (!current) throw new NotFoundError('WhatsApp template');
      next = {
        name: patch.name ?? current.name,
        language: patch.language ?? current.language,
        category: patch.category ?? current.category,
        components: patch.components ?? current.components,
        status: patch.status ?? current.status,
        provider_template_id: patch.provider_template_id === undefined ? current.provider_template_id : patch.provider_template_id,
      };
      const problems = inputProblems(next);
      if (problems.length) throw new InputError(problems);
      const { rows } = await tx.query<WhatsAppTemplateRow>(
        `update whatsapp_templates set name = $3, language = $4, category = $5, components = $6, status = $7, provider_template_id = $8, updated_at = $9
          where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
        [tenantId, id, next.name, next.language, next.category, JSON.stringify(normalizeComponents(next.components)), next.status, next.provider_template_id ?? null, now],
      );
      await writeAudit(tx, {
        tenantId,
        actor,
        action: 'whatsapp_template.updated',
        entityType: 'whatsapp_template',
        entityId: id,
        data: { name: next.name, language: next.language, status: next.status, fields: Object.keys(patch) },
      });
      return rows[0]!;
    })
    .catch((err: unknown) => taken(err, next ?? {}));
}

export async function deleteWhatsAppTemplate(db: Db, tenantId: string, id: string, actor: string): Promise<WhatsAppTemplateRow> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<WhatsAppTemplateRow>(`delete from whatsapp_templates where tenant_id = $1 and id = $2 returning ${COLUMNS}`, [tenantId, id]);
    if (!rows[0]) throw new NotFoundError('WhatsApp template');
    await writeAudit(tx, {
      tenantId,
      actor,
      action: 'whatsapp_template.deleted',
      entityType: 'whatsapp_template',
      entityId: id,
      data: { name: rows[0].name, language: rows[0].language },
    });
    return rows[0];
  });
}

/**
 * The approved template of that name for the dispatcher, or null. Language: the exact one
 * (pt_BR), else one of the same base language (pt, pt_PT), else any, so a contact whose locale has
 * no translation still gets the message rather than nothing.
 */
export async function findApprovedTemplate(db: Queryable, tenantId: string, name: string, language?: string | null): Promise<WhatsAppTemplateRow | null> {
  const wanted = language ? language.replace('-', '_') : null;
  const { rows } = await db.query<WhatsAppTemplateRow>(
    `select ${COLUMNS} from whatsapp_templates
      where tenant_id = $1 and name = $2 and status = 'approved'
      order by lower(language) = lower($3) desc nulls last,
               lower(split_part(language, '_', 1)) = lower(split_part($3, '_', 1)) desc nulls last,
               language
      limit 1`,
    [tenantId, name, wanted],
  );
  return rows[0] ?? null;
}
