import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

describe('contacts', () => {
  it('creates a contact with its phone in E.164 and email lower-cased', async () => {
    const res = await api.call(t, 'POST', '/v1/contacts', { external_id: 'c-1', name: 'Ana', phone: '+1 (415) 555-2671', email: 'Ana@Example.COM', tags: ['vip', 'vip'] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ external_id: 'c-1', phone: '+14155552671', email: 'ana@example.com', tags: ['vip'] });
  });

  it('refuses a second contact with the same identifier', async () => {
    const res = await api.call(t, 'POST', '/v1/contacts', { email: 'ana@example.com' });
    expect(res.status).toBe(409);
    expect(res.body.error.fields[0].field).toBe('email');
  });

  it('names every bad field and writes nothing', async () => {
    const before = await api.db.query('select count(*)::int as n from contacts');
    const res = await api.call(t, 'POST', '/v1/contacts/bulk', {
      contacts: [{ external_id: 'ok-1', phone: '+14155550100' }, { phone: 'not a phone' }, { email: 'nope', time_zone: 'Mars/Base' }, { nickname: 'x' }],
    });
    expect(res.status).toBe(400);
    const fields = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['contacts[3].nickname']));
    const after = await api.db.query('select count(*)::int as n from contacts');
    expect(after.rows).toEqual(before.rows);
  });

  it('reports semantic problems per field once the shape is right', async () => {
    const res = await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: [{ phone: 'not a phone' }, { email: 'nope', time_zone: 'Mars/Base' }] });
    expect(res.status).toBe(400);
    expect(res.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['contacts[0].phone', 'contacts[1].email', 'contacts[1].time_zone']);
  });

  it('upserts by external id, then phone, then email, merging attributes and adding tags', async () => {
    const a = await api.call(t, 'POST', '/v1/contacts/upsert', { external_id: 'u-1', phone: '+14155550101', attributes: { plan: 'basic', city: 'Austin' }, tags: ['a'] });
    expect(a.body.status).toBe('created');
    const b = await api.call(t, 'POST', '/v1/contacts/upsert', { phone: '+1 415 555 0101', attributes: { plan: 'gold' }, tags: ['b'] });
    expect(b.body.status).toBe('updated');
    expect(b.body.contact).toMatchObject({ id: a.body.contact.id, external_id: 'u-1', attributes: { plan: 'gold', city: 'Austin' }, tags: ['a', 'b'] });
  });

  it('writes nothing when an upsert changes nothing, and writes when one field changes', async () => {
    const row = { external_id: 'same-1', name: 'Sam', email: 'sam@example.com', attributes: { plan: 'gold' }, tags: ['a'] };
    const first = await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: [row] });
    const id = first.body.results[0].id;
    const version = async () =>
      (await api.db.query<{ xmin: string; updated_at: Date }>('select xmin::text as xmin, updated_at from contacts where id = $1', [id])).rows[0]!;
    const before = await version();
    api.clock.advance(60_000);
    await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: [row, { external_id: 'same-1', tags: ['a'] }] });
    expect(await version()).toEqual(before);
    await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: [{ ...row, attributes: { plan: 'platinum' } }] });
    const after = await version();
    expect(after.xmin).not.toBe(before.xmin);
    expect(after.updated_at.getTime()).toBe(before.updated_at.getTime() + 60_000);
  });

  it('bulk upserts, merging rows that name the same person and rejecting stolen identifiers', async () => {
    const res = await api.call(t, 'POST', '/v1/contacts/bulk', {
      contacts: [
        { external_id: 'b-1', email: 'b1@example.com', attributes: { n: 1 } },
        { external_id: 'b-1', name: 'Bea', attributes: { m: 2 } },
        { external_id: 'b-2', email: 'ana@example.com' },
        { email: 'b3@example.com' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 3, updated: 0, rejected: 1 });
    expect(res.body.results[2]).toMatchObject({ index: 2, status: 'rejected', field: 'email' });
    expect(res.body.results[0].id).toBe(res.body.results[1].id);
    const list = await api.call(t, 'GET', '/v1/contacts?external_id=b-1');
    expect(list.body.data[0]).toMatchObject({ name: 'Bea', email: 'b1@example.com', attributes: { n: 1, m: 2 } });
  });

  it('patches exactly: null clears, tags replace, null attributes are removed', async () => {
    const c = await api.call(t, 'POST', '/v1/contacts', { external_id: 'p-1', name: 'Pat', attributes: { a: 1, b: 2 }, tags: ['x'] });
    const res = await api.call(t, 'PATCH', `/v1/contacts/${c.body.id}`, { name: null, attributes: { a: null, c: 3 }, tags: ['y'] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: null, attributes: { b: 2, c: 3 }, tags: ['y'] });
  });

  it('pages through search results with a cursor', async () => {
    await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: Array.from({ length: 25 }, (_, i) => ({ external_id: `pg-${i}`, tags: ['paged'], attributes: { i } })) });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { data: { external_id: string }[]; next_cursor: string | null } } = await api.call(t, 'GET', `/v1/contacts?tag=paged&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.body.data.map((c) => c.external_id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    const one = await api.call(t, 'GET', '/v1/contacts?attr=i:7');
    expect(one.body.data.map((c: { external_id: string }) => c.external_id)).toEqual(['pg-7']);
  });

  it('answers 401 without a valid key', async () => {
    expect((await api.call(null, 'GET', '/v1/contacts')).status).toBe(401);
    expect((await api.call({ id: 'x', key: 'rpk_' + 'a'.repeat(32) }, 'GET', '/v1/contacts')).status).toBe(401);
  });
});
