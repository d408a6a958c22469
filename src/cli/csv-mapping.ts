import type { ContactInput } from '../core/contact.js';

/**
 * How the columns of a contacts CSV become contact fields. Pure: no files, no database.
 *
 * By default a column whose header names a contact field (ignoring case, surrounding spaces, and
 * spaces or hyphens for underscores: "External ID", "time-zone") fills that field, and every other
 * column becomes an attribute named by its header. `--map field=Column` and
 * `--map attributes.key=Column` override this; a column may fill several fields.
 */

export const CONTACT_FIELDS = ['external_id', 'name', 'phone', 'email', 'whatsapp', 'time_zone', 'locale', 'tags'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

/** A --map option: a contact field or `attributes.<key>`, and the header of the column to read. */
export interface MapOverride {
  target: { field: ContactField } | { attribute: string };
  column: string;
  /** the option as written, for messages */
  spec: string;
}

export interface ColumnMapping {
  header: string[];
  /** column index of each mapped field */
  fields: Partial<Record<ContactField, number>>;
  /** attribute key and the column it comes from */
  attributes: { key: string; column: number }[];
  /** columns read by nothing (only without extra attributes, or with an empty header) */
  ignored: number[];
}

/** A mapping that cannot work with this file; the message names the columns there are. */
export class MappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MappingError';
  }
}

const MAX_ATTRIBUTE_KEY = 128;

/** "External ID" → "external_id": the form a header is compared in against field names. */
export function headerKey(header: string): string {
  return header.trim().toLowerCase().replace(/[\s-]+/g, '_');
}

/** Parses `phone=Mobile Number` or `attributes.plan=Plan`. */
export function parseMapOption(spec: string): MapOverride {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new MappingError(`--map ${spec}: write it as field=Column, e.g. --map phone="Mobile Number"`);
  const target = spec.slice(0, eq).trim();
  const column = spec.slice(eq + 1).trim();
  if (target.startsWith('attributes.')) {
    const key = target.slice('attributes.'.length);
    if (!key || key.length > MAX_ATTRIBUTE_KEY) throw new MappingError(`--map ${spec}: an attribute key is 1 to ${MAX_ATTRIBUTE_KEY} characters, as in attributes.plan=Plan`);
    return { target: { attribute: key }, column, spec };
  }
  const field = CONTACT_FIELDS.find((f) => f === target);
  if (!field) throw new MappingError(`--map ${spec}: "${target}" is not a contact field; use one of ${CONTACT_FIELDS.join(', ')}, or attributes.<key>`);
  return { target: { field }, column, spec };
}

function describeColumns(header: string[]): string {
  return header.map((h) => JSON.stringify(h)).join(', ');
}

function findColumn(header: string[], column: string): number | undefined {
  const exact = header.indexOf(column);
  if (exact >= 0) return exact;
  const loose = header.map((h, i) => (h.trim().toLowerCase() === column.toLowerCase() ? i : -1)).filter((i) => i >= 0);
  return loose.length === 1 ? loose[0] : undefined;
}

/** Decides which column feeds which field; throws MappingError naming the columns that exist. */
export function buildMapping(header: string[], overrides: MapOverride[] = [], extraAttributes = true): ColumnMapping {
  const seen = new Map<string, number>();
  header.forEach((h, i) => {
    const name = h.trim();
    if (!name) return;
    const first = seen.get(name);
    if (first !== undefined) throw new MappingError(`the header names column ${JSON.stringify(name)} twice (columns ${first + 1} and ${i + 1}); rename one of them`);
    seen.set(name, i);
  });

  const fields: ColumnMapping['fields'] = {};
  const attributes: ColumnMapping['attributes'] = [];
  const claimed = new Set<number>();
  const given = new Map<string, string>();
  for (const o of overrides) {
    const name = 'field' in o.target ? o.target.field : `attributes.${o.target.attribute}`;
    const earlier = given.get(name);
    if (earlier) throw new MappingError(`${name} is mapped twice (--map ${earlier} and --map ${o.spec}); keep one`);
    given.set(name, o.spec);
    const column = findColumn(header, o.column);
    if (column === undefined) throw new MappingError(`--map ${o.spec}: the file has no column ${JSON.stringify(o.column)}. Its columns are ${describeColumns(header)}`);
    claimed.add(column);
    if ('field' in o.target) fields[o.target.field] = column;
    else attributes.push({ key: o.target.attribute, column });
  }

  header.forEach((h, i) => {
    if (claimed.has(i)) return;
    const field = CONTACT_FIELDS.find((f) => f === headerKey(h));
    if (field && fields[field] === undefined) {
      fields[field] = i;
      claimed.add(i);
    }
  });

  const ignored: number[] = [];
  header.forEach((h, i) => {
    if (claimed.has(i)) return;
    const key = h.trim();
    if (extraAttributes && key && !attributes.some((a) => a.key === key)) attributes.push({ key, column: i });
    else ignored.push(i);
  });
  return { header, fields, attributes, ignored };
}

/** Tags in one cell, separated by commas or semicolons; blanks and repeats dropped. */
export function splitTags(cell: string): string[] {
  return [...new Set(cell.split(/[,;]/).map((t) => t.trim()).filter((t) => t !== ''))];
}

/** One CSV record as a contact. Empty cells are left out, so they never clear a stored value. */
export function toContactInput(record: readonly string[], mapping: ColumnMapping): ContactInput {
  const input: ContactInput = {};
  for (const field of CONTACT_FIELDS) {
    const column = mapping.fields[field];
    const cell = column === undefined ? '' : (record[column] ?? '').trim();
    if (!cell) continue;
    if (field === 'tags') {
      const tags = splitTags(cell);
      if (tags.length) input.tags = tags;
    } else {
      input[field] = cell;
    }
  }
  let attributes: Record<string, string> | undefined;
  for (const { key, column } of mapping.attributes) {
    const cell = (record[column] ?? '').trim();
    if (cell) (attributes ??= {})[key] = cell;
  }
  if (attributes) input.attributes = attributes;
  return input;
}

/** Where each column goes, one line per column, for the import's opening message. */
export function describeMapping(m: ColumnMapping): string[] {
  const targets = m.header.map(() => [] as string[]);
  for (const f of CONTACT_FIELDS) {
    const c = m.fields[f];
    if (c !== undefined) targets[c]!.push(f);
  }
  for (const a of m.attributes) targets[a.column]!.push(`attributes.${a.key}`);
  return m.header.map((h, i) => `${JSON.stringify(h)} → ${targets[i]!.length ? targets[i]!.join(', ') : '(ignored)'}`);
}

export type Delimiter = ',' | ';' | '\t';
const DELIMITERS: Delimiter[] = [',', ';', '\t'];

/** The delimiter of a CSV, judged by which one splits its header line most (quoted text excluded). */
export function detectDelimiter(sample: string): Delimiter {
  const counts = new Map<string, number>();
  let quoted = false;
  for (const ch of sample) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best: Delimiter = ',';
  for (const d of DELIMITERS) if ((counts.get(d) ?? 0) > (counts.get(best) ?? 0)) best = d;
  return best;
}

/** One CSV line (with its newline), quoting cells that need it, as RFC 4180 says. */
export function csvLine(cells: readonly string[], delimiter: Delimiter = ','): string {
  return (
    cells
      .map((c) => (c.includes('"') || c.includes(delimiter) || c.includes('\n') || c.includes('\r') || c !== c.trim() ? `"${c.replace(/"/g, '""')}"` : c))
      .join(delimiter) + '\n'
  );
}
