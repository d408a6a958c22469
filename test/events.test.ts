import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBatcher, ingestEvents } from '../src/store/events.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
  other = await api.tenant('Other');
  await api.call(t, 'PATCH', '/v1/tenant', { settings: { default_country: 'US' } });
});
afterAll(() => api.close());

const count = async (sql: string, params: unknown[] = []) => (await api.db.query<{ n: number }>(sql, params)).rows[0]!.n;

describe('events', () => {
  it('records an event for a contact found by phone in any format', async () => {
    const c = await api.call(t, 'POST', '/v1/contacts', { external_id: 'ev-1', phone: '+14155552671' });
    const res = await api.call(t, 'POST', '/v1/events', { name: 'form_submitted', contact: { phone: '(415) 555-2671' }, properties: { form: 'demo' } });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('recorded');
    const { rows } = await api.db.query('select contact_id, name, properties, occurred_at from events where id = $1', [res.body.id]);
    expect(rows[0]).toEqual({ contact_id: c.body.id, name: 'form_submitted', properties: { form: 'demo' }, occurred_at: new Date('2026-03-02T10:00:00Z') });
  });

  it('creates a contact it does not know', async () => {
    const res = await api.call(t, 'POST', '/v1/events', { name: 'qr_scanned', contact: { email: 'New.Person@Example.com', external_id: 'ev-new' }, occurred_at: '2026-03-01T09:30:00Z' });
    expect(res.status).toBe(202);
    const list = await api.call(t, 'GET', '/v1/contacts?external_id=ev-new');
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0].email).toBe('new.person@example.com');
    const events = await api.call(t, 'GET', `/v1/events?contact_id=${list.body.data[0].id}`);
    expect(events.body.data).toMatchObject([{ id: res.body.id, name: 'qr_scanned', occurred_at: '2026-03-01T09:30:00.000Z', properties: {} }]);
  });

  it('records a delivery repeated with the same id once, answering with the first event', async () => {
    const body = { name: 'purchase', id: 'shop-order-1001', contact: { external_id: 'ev-1' }, properties: { total: 42 } };
    const first = await api.call(t, 'POST', '/v1/events', body);
    const second = await api.call(t, 'POST', '/v1/events', { ...body, properties: { total: 43 } });
    expect(first.body.status).toBe('recorded');
    expect(second.status).toBe(202);
    expect(second.body).toEqual({ id: first.body.id, status: 'duplicate' });
    expect(await count("select count(*)::int as n from events where source_event_id = 'shop-order-1001'")).toBe(1);
    // The sender's id is the sender's own: another tenant may use the same one.
    const theirs = await api.call(other, 'POST', '/v1/events', { ...body, contact: { external_id: 'x' } });
    expect(theirs.body.status).toBe('recorded');
  });

  it('records an id repeated inside one batch once (first wins) and reports every event', async () => {
    const res = await api.call(t, 'POST', '/v1/events/batch', {
      events: [
        { name: 'clicked', id: 'dup-a', contact: { external_id: 'ev-1' }, properties: { n: 1 } },
        { name: 'clicked', id: 'dup-a', contact: { external_id: 'ev-1' }, properties: { n: 2 } },
        { name: 'clicked', id: 'shop-order-1001', contact: { external_id: 'ev-1' } },
        { name: 'clicked', contact: { external_id: 'ev-1' } },
      ],
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ recorded: 2, duplicate: 2, rejected: 0 });
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['recorded', 'duplicate', 'duplicate', 'recorded']);
    expect(res.body.results[1].id).toBe(res.body.results[0].id);
    const { rows } = await api.db.query("select properties from events where source_event_id = 'dup-a'");
    expect(rows).toEqual([{ properties: { n: 1 } }]);
  });

  it('rejects only the events whose contact cannot be used', async () => {
    const theirs = await api.call(other, 'POST', '/v1/contacts', { external_id: 'their-contact' });
    await api.call(t, 'POST', '/v1/contacts', { external_id: 'owner-a', email: 'owner-a@example.com' });
    const res = await api.call(t, 'POST', '/v1/events/batch', {
      events: [
        { name: 'ok', contact: { external_id: 'ev-1' } },
        { name: 'foreign', contact_id: theirs.body.id },
        { name: 'conflict', contact: { external_id: 'owner-b', email: 'owner-a@example.com' } },
      ],
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ recorded: 1, duplicate: 0, rejected: 2 });
    expect(res.body.results[1]).toMatchObject({ index: 1, status: 'rejected', field: 'events[1].contact_id' });
    expect(res.body.results[2]).toMatchObject({ index: 2, status: 'rejected', field: 'events[2].contact.email' });
    expect(await count("select count(*)::int as n from events where name in ('foreign', 'conflict')")).toBe(0);

    const single = await api.call(t, 'POST', '/v1/events', { name: 'foreign', contact_id: theirs.body.id });
    expect(single.status).toBe(404);
    expect(single.body.error.fields[0].field).toBe('contact_id');
    const clash = await api.call(t, 'POST', '/v1/events', { name: 'conflict', contact: { external_id: 'owner-b', email: 'owner-a@example.com' } });
    expect(clash.status).toBe(409);
    expect(clash.body.error.fields[0].field).toBe('contact.email');
  });

  it('refuses a malformed batch naming each field, and writes nothing', async () => {
    const contacts = await count('select count(*)::int as n from contacts');
    const events = await count('select count(*)::int as n from events');
    const shape = await api.call(t, 'POST', '/v1/events/batch', {
      events: [{ name: 'ok', contact: { email: 'fresh@example.com' } }, { name: '', contact: { email: 'x@example.com' } }, { name: 'x', contact: { nick: 'n' } }],
    });
    expect(shape.status).toBe(400);
    const shapeFields = shape.body.error.fields.map((f: { field: string }) => f.field);
    expect(shapeFields).toEqual(expect.arrayContaining(['events[1].name', 'events[2].contact.nick']));
    const rules = await api.call(t, 'POST', '/v1/events/batch', {
      events: [
        { name: 'ok', contact: { email: 'fresh@example.com' } },
        { name: 'a', contact: { phone: 'call me' } },
        { name: 'b' },
        { name: 'c', contact_id: '0190b5a0-0000-7000-8000-000000000000', contact: { email: 'y@example.com' } },
        { name: 'd', contact: { email: 'z@example.com' }, properties: { blob: 'x'.repeat(33 * 1024) } },
      ],
    });
    expect(rules.status).toBe(400);
    expect(rules.body.error.fields.map((f: { field: string }) => f.field).sort()).toEqual(['events[1].contact.phone', 'events[2].contact_id', 'events[3].contact', 'events[4].properties']);
    expect(await count('select count(*)::int as n from contacts')).toBe(contacts);
    expect(await count('select count(*)::int as n from events')).toBe(events);
  });

  it('lists events newest first, filtered by name, a page at a time', async () => {
    const res = await api.call(t, 'POST', '/v1/events/batch', { events: Array.from({ length: 5 }, (_, i) => ({ name: 'page_view', contact: { external_id: 'ev-1' }, properties: { i } })) });
    expect(res.body.recorded).toBe(5);
    const first = await api.call(t, 'GET', '/v1/events?name=page_view&limit=3');
    expect(first.body.data.map((e: { properties: { i: number } }) => e.properties.i)).toEqual([4, 3, 2]);
    const second = await api.call(t, 'GET', `/v1/events?name=page_view&limit=3&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((e: { properties: { i: number } }) => e.properties.i)).toEqual([1, 0]);
    expect(second.body.next_cursor).toBeNull();
    expect((await api.call(other, 'GET', '/v1/events?name=page_view')).body.data).toEqual([]);
  });

  it('answers events posted at the same moment each as if it were alone', async () => {
    const c = await api.call(t, 'POST', '/v1/contacts', { external_id: 'burst-1' });
    const posts = [
      ...Array.from({ length: 20 }, (_, i) => ({ name: 'burst', contact_id: c.body.id, properties: { i } })),
      { name: 'burst', id: 'burst-twice', contact: { external_id: 'burst-2' } },
      { name: 'burst', id: 'burst-twice', contact: { external_id: 'burst-2' } },
      { name: 'burst', contact_id: '00000000-0000-4000-8000-000000000000' },
      { name: 'burst', contact_id: c.body.id, contact: { external_id: 'burst-1' } },
    ];
    const answers = await Promise.all(posts.map((body) => api.call(t, 'POST', '/v1/events', body)));
    expect(answers.slice(0, 20).map((a) => [a.status, a.body.status])).toEqual(Array.from({ length: 20 }, () => [202, 'recorded']));
    const [first, second, unknown, malformed] = answers.slice(20);
    // Whichever of the two came first is recorded; the other answers with its id.
    expect([first!.body.status, second!.body.status].sort()).toEqual(['duplicate', 'recorded']);
    expect(second!.body.id).toBe(first!.body.id);
    expect(unknown!.status).toBe(404);
    expect(unknown!.body.error.fields).toEqual([{ field: 'contact_id', in: 'body', message: 'is not a contact of this tenant' }]);
    expect(malformed!.status).toBe(400);
    expect(malformed!.body.error.fields[0].field).toBe('contact');
    expect(await count("select count(*)::int as n from events where name = 'burst'")).toBe(21);
  });

  it('writes the events that arrive while one is being written in one transaction, each received when it came', async () => {
    const c = await api.call(t, 'POST', '/v1/contacts', { external_id: 'shared-1' });
    const batcher = new EventBatcher(api.db, () => api.clock.now());
    const at = (i: number) => new Date(Date.parse('2026-03-02T09:00:00Z') + i * 1000);
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.record(t.id, { name: 'shared', contact_id: c.body.id, properties: { i } }, at(i), {})));
    expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 10 }, () => 'recorded'));
    const { rows } = await api.db.query<{ id: string; i: number; received_at: Date; occurred_at: Date; tx: string }>(
      "select id, (properties->>'i')::int as i, received_at, occurred_at, xmin::text as tx from events where name = 'shared' order by (properties->>'i')::int",
    );
    expect(rows.map((r) => r.id)).toEqual(outcomes.map((o) => (o.status === 'recorded' ? o.id : '')));
    expect(rows.map((r) => [r.received_at, r.occurred_at])).toEqual(rows.map((r) => [at(r.i), at(r.i)]));
    // Rows written by one transaction carry its id (xmin): the first event went alone, the nine that came meanwhile together.
    expect(rows.map((r) => r.tx === rows[0]!.tx)).toEqual([true, ...Array.from({ length: 9 }, () => false)]);
    expect(new Set(rows.slice(1).map((r) => r.tx)).size).toBe(1);
  });

  it('writes again alone each event of a shared transaction that failed, so one failure is nobody else\'s', async () => {
    const c = await api.call(t, 'POST', '/v1/contacts', { external_id: 'shared-2' });
    await api.db.exec(`
      create function refuse_poison() returns trigger language plpgsql as $$
      begin
        if new.name = 'poison' then raise exception 'poisoned event'; end if;
        return new;
      end $$;
      create trigger refuse_poison before insert on events for each row execute function refuse_poison();`);
    try {
      const batcher = new EventBatcher(api.db, () => api.clock.now());
      const names = ['fine', 'fine', 'poison', 'fine', 'fine'];
      const settled = await Promise.allSettled(names.map((name) => batcher.record(t.id, { name, contact_id: c.body.id }, api.clock.now(), {})));
      expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.status : (r.reason as Error).message))).toEqual(['recorded', 'recorded', 'poisoned event', 'recorded', 'recorded']);
      expect(await count("select count(*)::int as n from events where contact_id = $1 and name = 'fine'", [c.body.id])).toBe(4);
    } finally {
      await api.db.exec('drop trigger refuse_poison on events; drop function refuse_poison()');
    }
  });

  it('returns the rows it wrote, for whatever reacts to new events', async () => {
    const r = await ingestEvents(api.db, t.id, [{ name: 'signup', id: 'once', contact: { external_id: 'ev-1' } }, { name: 'signup', id: 'once', contact: { external_id: 'ev-1' } }], api.clock.now(), {});
    expect(r.inserted).toHaveLength(1);
    expect(r.inserted[0]).toMatchObject({ id: r.results[0]!.status === 'recorded' ? r.results[0]!.id : '', name: 'signup', source_event_id: 'once' });
    const again = await ingestEvents(api.db, t.id, [{ name: 'signup', id: 'once', contact: { external_id: 'ev-1' } }], api.clock.now(), {});
    expect(again.inserted).toEqual([]);
  });

  it('accepts a batch of 10,000 events', async () => {
    const events = Array.from({ length: 10_000 }, (_, i) => ({
      name: 'bulk_seen',
      id: `bulk-${i}`,
      contact: { external_id: `bulk-contact-${i % 2500}` },
      properties: { i },
    }));
    const res = await api.call(t, 'POST', '/v1/events/batch', { events });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ recorded: 10_000, duplicate: 0, rejected: 0 });
    expect(await count("select count(*)::int as n from events where name = 'bulk_seen'")).toBe(10_000);
    expect(await count("select count(*)::int as n from contacts where external_id like 'bulk-contact-%'")).toBe(2500);
  });
});
