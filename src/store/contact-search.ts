import { InputError } from '../core/errors.js';
import { toE164, type NormalizeOptions } from '../core/contact.js';
import { CONTACT_COLUMNS, type ContactRow } from './contacts.js';
import type { Queryable } from './db.js';

export interface ContactFilter {
  limit?: number;
  cursor?: string;
  q?: string;
  external_id?: string;
  email?: string;
  phone?: string;
  tag?: string[];
  attr?: string[];
  updated_after?: string;
}

/** Cursors are opaque to clients; inside they are the last id of the previous page. */
export function encodeCursor(id: string): string {
  return Buffer.from(id).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!/^[0-9a-f-]{36}$/.test(id)) throw InputError.field('cursor', 'is not a cursor returned by this API');
  return id;
}

/** One page of contacts in id order (creation order, since ids are UUIDv7). */
export async function listContacts(db: Queryable, tenantId: string, f: ContactFilter, opts: NormalizeOptions): Promise<{ data: ContactRow[]; next_cursor: string | null }> {
  const limit = f.limit ?? 100;
  const where = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const add = (sql: string, ...values: unknown[]) => {
    let clause = sql;
    for (const v of values) {
      params.push(v);
      clause = clause.replace('?', `$${params.length}`);
    }
    where.push(clause);
  };

  if (f.cursor) add('id > ?', decodeCursor(f.cursor));
  if (f.external_id) add('external_id = ?', f.external_id);
  if (f.email) add('email = ?', f.email.trim().toLowerCase());
  if (f.phone) {
    const r = toE164(f.phone, opts.defaultCountry);
    if ('problem' in r) throw InputError.field('phone', `${JSON.stringify(f.phone)} ${r.problem}`);
    add('phone = ?', r.e164);
  }
  if (f.tag?.length) add('tags @> ?::text[]', f.tag);
  for (const a of f.attr ?? []) {
    const i = a.indexOf(':');
    // Compare as text so ?attr=age:42 finds both 42 and "42".
    add('attributes ->> ? = ?', a.slice(0, i), a.slice(i + 1));
  }
  if (f.updated_after) add('updated_at > ?', new Date(f.updated_after));
  if (f.q) {
    const like = `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    add('(name ilike ? or email ilike ? or phone like ? or external_id = ?)', like, like, like, f.q);
  }

  params.push(limit + 1);
  const { rows } = await db.query<ContactRow>(`select ${CONTACT_COLUMNS} from contacts where ${where.join(' and ')} order by id limit $${params.length}`, params);
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, next_cursor: more ? encodeCursor(data[data.length - 1]!.id) : null };
}
