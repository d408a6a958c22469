import type { ContactFields } from './contact.js';

/**
 * Identity resolution for contact upserts: decides, for each incoming row, which stored contact it
 * is (or that it is a new one), given who currently holds each of its identifiers.
 *
 * The rules, in order:
 * - a row with an external id is the contact with that external id; failing that, the contact
 *   holding its phone (then email) if that contact has no external id of its own; failing that, new;
 * - a row without an external id is the contact holding its phone, else its email, else new;
 * - a phone or email already held by a contact other than the row's target is a conflict, and the
 *   row is rejected rather than silently moving the address;
 * - rows of one batch that name the same contact merge in order (later values win, attributes
 *   merge, tags add up), so a batch never writes one contact twice.
 */

export interface Holder {
  id: string;
  external_id: string | null;
}

/** Who holds each identifier of one row right now. */
export interface Holders {
  external_id?: Holder | null;
  phone?: Holder | null;
  email?: Holder | null;
}

export type RowOutcome =
  | { index: number; status: 'created' | 'updated'; id: string }
  | { index: number; status: 'rejected'; field: string; message: string };

export interface ContactWrite {
  id: string;
  isNew: boolean;
  fields: ContactFields;
}

export interface IdentityPlan {
  outcomes: RowOutcome[];
  /** One entry per distinct contact, fields merged across the rows that named it. */
  writes: ContactWrite[];
}

type Key = 'external_id' | 'phone' | 'email';
const KEYS: Key[] = ['external_id', 'phone', 'email'];

export function mergeFields(into: ContactFields, next: ContactFields): ContactFields {
  const pick = <K extends keyof ContactFields>(k: K): ContactFields[K] => (next[k] ?? into[k]) as ContactFields[K];
  return {
    external_id: pick('external_id'),
    name: pick('name'),
    phone: pick('phone'),
    email: pick('email'),
    whatsapp: pick('whatsapp'),
    time_zone: pick('time_zone'),
    locale: pick('locale'),
    attributes: into.attributes || next.attributes ? { ...into.attributes, ...next.attributes } : null,
    tags: into.tags || next.tags ? [...new Set([...(into.tags ?? []), ...(next.tags ?? [])])] : null,
  };
}

/**
 * Plans an upsert of rows (already normalised) given the current holders of their identifiers.
 * newId makes the id of each contact to create.
 */
export function planUpsert(rows: ContactFields[], holders: Holders[], newId: () => string): IdentityPlan {
  const outcomes: RowOutcome[] = [];
  const writes = new Map<string, ContactWrite>();
  // identifier value -> contact id it belongs to within this batch
  const claimed = new Map<string, string>();
  const claimKey = (k: Key, v: string) => `${k}\u0000${v}`;

  rows.forEach((row, index) => {
    const h = holders[index] ?? {};
    let target: string | undefined;
    if (row.external_id) {
      target = h.external_id?.id;
      if (!target && h.phone && h.phone.external_id === null) target = h.phone.id;
      if (!target && h.email && h.email.external_id === null) target = h.email.id;
    } else {
      target = h.phone?.id ?? h.email?.id;
    }
    if (!target) {
      // The same rules against contacts named earlier in this batch.
      for (const k of KEYS) {
        const v = row[k];
        const id = v ? claimed.get(claimKey(k, v)) : undefined;
        const theirExternalId = id ? writes.get(id)!.fields.external_id : null;
        if (id && (k === 'external_id' || !row.external_id || theirExternalId === null)) {
          target = id;
          break;
        }
      }
    }

    const conflict = ((): { field: string; message: string } | undefined => {
      for (const k of ['phone', 'email'] as const) {
        const holder = h[k];
        if (row[k] && holder && holder.id !== target) {
          const who = holder.external_id ? `the contact with external_id ${JSON.stringify(holder.external_id)}` : `contact ${holder.id}`;
          return { field: k, message: `${row[k]} already belongs to ${who}` };
        }
      }
      for (const k of KEYS) {
        const v = row[k];
        const id = v ? claimed.get(claimKey(k, v)) : undefined;
        if (id && id !== target) {
          return { field: k, message: `${v} is given to a different contact earlier in this batch` };
        }
      }
      const existing = target ? writes.get(target) : undefined;
      if (existing && row.external_id && existing.fields.external_id && existing.fields.external_id !== row.external_id) {
        return { field: 'external_id', message: `names a contact that an earlier row gave external_id ${JSON.stringify(existing.fields.external_id)}` };
      }
      return undefined;
    })();
    if (conflict) {
      outcomes.push({ index, status: 'rejected', ...conflict });
      return;
    }

    const isNew = !target;
    const id = target ?? newId();
    const prior = writes.get(id);
    writes.set(id, prior ? { ...prior, fields: mergeFields(prior.fields, row) } : { id, isNew, fields: row });
    for (const k of KEYS) {
      const v = row[k];
      if (v) claimed.set(claimKey(k, v), id);
    }
    outcomes.push({ index, status: (prior?.isNew ?? isNew) ? 'created' : 'updated', id });
  });

  return { outcomes, writes: [...writes.values()] };
}
