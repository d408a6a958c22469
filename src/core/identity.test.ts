import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ContactFields } from './contact.js';
import { planUpsert, type Holders } from './identity.js';

const blank: ContactFields = { external_id: null, name: null, phone: null, email: null, whatsapp: null, time_zone: null, locale: null, attributes: null, tags: null };
const row = (f: Partial<ContactFields>): ContactFields => ({ ...blank, ...f });
let n = 0;
const ids = () => `new-${++n}`;

describe('planUpsert', () => {
  it('matches by external id first, then phone, then email', () => {
    const holders: Holders[] = [
      { external_id: { id: 'A', external_id: 'x' }, phone: { id: 'A', external_id: 'x' } },
      { phone: { id: 'B', external_id: null } },
      { email: { id: 'C', external_id: 'c' } },
    ];
    const plan = planUpsert([row({ external_id: 'x', phone: '+1' }), row({ phone: '+2' }), row({ email: 'c@x' })], holders, ids);
    expect(plan.outcomes).toEqual([
      { index: 0, status: 'updated', id: 'A' },
      { index: 1, status: 'updated', id: 'B' },
      { index: 2, status: 'updated', id: 'C' },
    ]);
  });

  it('attaches an external id to a contact known only by phone', () => {
    const plan = planUpsert([row({ external_id: 'new', phone: '+1' })], [{ phone: { id: 'P', external_id: null } }], ids);
    expect(plan.outcomes[0]).toEqual({ index: 0, status: 'updated', id: 'P' });
    expect(plan.writes[0]!.fields.external_id).toBe('new');
  });

  it('refuses to move a phone held by a contact with another external id', () => {
    const plan = planUpsert([row({ external_id: 'mine', phone: '+1' })], [{ phone: { id: 'P', external_id: 'theirs' } }], ids);
    expect(plan.outcomes[0]).toMatchObject({ status: 'rejected', field: 'phone' });
    expect(plan.writes).toEqual([]);
  });

  it('merges rows of one batch that name the same new contact', () => {
    const plan = planUpsert(
      [row({ external_id: 'e', attributes: { a: 1 }, tags: ['t1'] }), row({ external_id: 'e', name: 'N', attributes: { b: 2 }, tags: ['t2', 't1'] })],
      [{}, {}],
      ids,
    );
    expect(plan.writes).toHaveLength(1);
    expect(plan.writes[0]!.fields).toMatchObject({ name: 'N', attributes: { a: 1, b: 2 }, tags: ['t1', 't2'] });
    expect(plan.outcomes.map((o) => o.status)).toEqual(['created', 'created']);
  });

  it('rejects a later row giving an address already given to another contact in the batch', () => {
    const plan = planUpsert([row({ external_id: 'a', email: 'same@x' }), row({ external_id: 'b', email: 'same@x' })], [{}, {}], ids);
    expect(plan.outcomes[1]).toMatchObject({ status: 'rejected', field: 'email' });
  });

  // The invariant the database's unique indexes rely on: no two writes share an identifier,
  // and every accepted row points at a write.
  it('never plans two contacts with one identifier, whatever the batch', () => {
    const ident = fc.option(fc.constantFrom('1', '2', '3'), { nil: null });
    const arbRow = fc.record({ external_id: ident, phone: ident, email: ident }).map((r) => row(r));
    fc.assert(
      fc.property(fc.array(arbRow, { maxLength: 12 }), (rows) => {
        const plan = planUpsert(rows, rows.map(() => ({})), ids);
        for (const k of ['external_id', 'phone', 'email'] as const) {
          const values = plan.writes.map((w) => w.fields[k]).filter((v) => v !== null);
          expect(new Set(values).size).toBe(values.length);
        }
        const writeIds = new Set(plan.writes.map((w) => w.id));
        for (const o of plan.outcomes) if (o.status !== 'rejected') expect(writeIds.has(o.id)).toBe(true);
        expect(plan.outcomes).toHaveLength(rows.length);
      }),
    );
  });
});
