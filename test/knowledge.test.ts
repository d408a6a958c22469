import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpEmbeddings } from '../src/engine/embeddings-http.js';
import type { Db } from '../src/store/db.js';
import { createKnowledgeItem } from '../src/store/knowledge.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { FakeEmbeddings } from './fakes/embeddings.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { freshDb, TEST_DATABASE_URL } from './helpers/db.js';

/**
 * The API on a fresh database with or without pg_trgm, embedding with the fake endpoint when
 * given one. The migrations create no extension: the embedded database opened by openPglite
 * loads and creates pg_trgm itself, a server gets it from its operator (here, the test), and the
 * plain PGlite of freshDb() has none.
 */
async function knowledgeApi(opts: { trigram: boolean; embeddingsUrl?: string }): Promise<TestApi> {
  let db: Db;
  if (TEST_DATABASE_URL) {
    db = await freshDb();
    if (opts.trigram) await db.query('create extension if not exists pg_trgm');
  } else if (opts.trigram) {
    db = await openPglite(undefined, { maintenanceMs: 0 });
    await migrate(db);
  } else {
    db = await freshDb();
  }
  const embeddings = opts.embeddingsUrl ? httpEmbeddings({ baseUrl: opts.embeddingsUrl, model: 'fake-embed', apiKey: 'sk-test-knowledge' }) : null;
  const api = await testApi({ db, embeddings });
  return {
    ...api,
    async close() {
      await api.close();
      await db.close();
    },
  };
}

const fieldsOf = (res: { body: any }) => res.body.error.fields.map((f: { field: string }) => f.field);

async function add(api: TestApi, t: TestTenant, item: Record<string, unknown>): Promise<any> {
  const res = await api.call(t, 'POST', '/v1/knowledge', { kind: 'tip', ...item });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

const titles = (res: { body: any }) => res.body.data.map((h: any) => h.item.title);

/** A long document whose one paragraph about gift wrapping sits far from its start. */
function handbook(): string {
  const filler = (n: number) =>
    `Section ${n}. Our stores open at nine and close at six on weekdays. Staff can help you find sizes and colours. ` +
    `Loyalty points are added to your account after each visit, and they never expire while you shop with us once a year.`;
  const paras = Array.from({ length: 30 }, (_, i) => filler(i + 1));
  paras.splice(21, 0, 'Gift wrapping is free at the counter: choose a ribbon colour and we add a handwritten card.');
  return paras.join('\n\n');
}

describe('knowledge base, with pg_trgm', () => {
  let api: TestApi;
  let t: TestTenant;

  beforeAll(async () => {
    api = await knowledgeApi({ trigram: true });
    t = await api.tenant();
  });
  afterAll(() => api?.close());

  it('creates, reads, lists, changes and deletes items', async () => {
    const created = await add(api, t, {
      kind: 'faq',
      title: 'How do I track my order?',
      body: 'Open the link in your confirmation email to see where your parcel is.',
      tags: ['shipping', 'shipping'],
      topics: ['order_tracking'],
      source: 'knowledge_base',
      url: 'https://shop.example/help/tracking',
      metadata: { author: 'support' },
    });
    expect(created).toMatchObject({
      kind: 'faq',
      language: 'english',
      tags: ['shipping'],
      topics: ['order_tracking'],
      valid_from: null,
      valid_until: null,
      chunk_count: 1,
      embedded_chunks: 0,
      metadata: { author: 'support' },
      created_at: '2026-03-02T10:00:00.000Z',
    });
    const got = await api.call(t, 'GET', `/v1/knowledge/${created.id}`);
    expect(got.body).toEqual(created);

    const other = await add(api, t, { kind: 'update', title: 'New: real-time inventory', body: 'Ask whether a product is in stock.', topics: ['inventory'] });
    const page1 = await api.call(t, 'GET', '/v1/knowledge?limit=1');
    expect(page1.body.data.map((i: any) => i.id)).toEqual([created.id]);
    expect(page1.body.data[0].body).toBeUndefined();
    const page2 = await api.call(t, 'GET', `/v1/knowledge?limit=1&cursor=${page1.body.next_cursor}`);
    expect(page2.body).toMatchObject({ data: [{ id: other.id }], next_cursor: null });
    expect((await api.call(t, 'GET', '/v1/knowledge?kinds=update,tip')).body.data.map((i: any) => i.id)).toEqual([other.id]);
    expect((await api.call(t, 'GET', '/v1/knowledge?topics=order_tracking&topics=nothing')).body.data.map((i: any) => i.id)).toEqual([created.id]);
    expect((await api.call(t, 'GET', '/v1/knowledge?tags=shipping')).body.data.map((i: any) => i.id)).toEqual([created.id]);

    api.clock.advance(60_000);
    const patched = await api.call(t, 'PATCH', `/v1/knowledge/${created.id}`, { body: 'Tracking moved: open Orders in the app.', source: null, valid_until: '2026-06-01T00:00:00Z' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ body: 'Tracking moved: open Orders in the app.', source: null, valid_until: '2026-06-01T00:00:00.000Z', updated_at: '2026-03-02T10:01:00.000Z' });
    const found = await api.call(t, 'GET', '/v1/knowledge/search?q=app');
    expect(found.body.data.map((h: any) => h.chunk.text)).toEqual(['Tracking moved: open Orders in the app.']);
    expect((await api.call(t, 'GET', '/v1/knowledge/search?q=confirmation email')).body.data).toEqual([]);

    const deleted = await api.call(t, 'DELETE', `/v1/knowledge/${created.id}`);
    expect(deleted.status).toBe(200);
    expect((await api.call(t, 'GET', `/v1/knowledge/${created.id}`)).status).toBe(404);
    expect((await api.call(t, 'GET', '/v1/knowledge/search?q=tracking')).body.data).toEqual([]);
    const { rows } = await api.db.query<{ n: number }>('select count(*)::int as n from knowledge_chunks where item_id = $1', [created.id]);
    expect(rows[0]!.n).toBe(0);
    const audit = await api.db.query<{ action: string }>(`select action from audit_log where tenant_id = $1 and entity_type = 'knowledge_item' order by id`, [t.id]);
    expect(audit.rows.map((r) => r.action)).toEqual(['knowledge.created', 'knowledge.created', 'knowledge.updated', 'knowledge.deleted']);
  });

  it('refuses bad items with 400 naming the fields', async () => {
    const missing = await api.call(t, 'POST', '/v1/knowledge', { kind: 'memo', body: '', colour: 'red' });
    expect(missing.status).toBe(400);
    expect(fieldsOf(missing)).toEqual(expect.arrayContaining(['title', 'kind', 'body', 'colour']));

    const backwards = await api.call(t, 'POST', '/v1/knowledge', { kind: 'tip', title: 'T', body: 'B', valid_from: '2026-05-01T00:00:00Z', valid_until: '2026-04-01T00:00:00Z' });
    expect(backwards.status).toBe(400);
    expect(fieldsOf(backwards)).toEqual(['valid_until']);

    const item = await add(api, t, { title: 'Spring sale', body: 'Ends in April.', valid_until: '2026-04-30T00:00:00Z' });
    const early = await api.call(t, 'PATCH', `/v1/knowledge/${item.id}`, { valid_from: '2026-05-01T00:00:00Z' });
    expect(early.status).toBe(400);
    expect(fieldsOf(early)).toEqual(['valid_until']);
    const badDates = await api.call(t, 'PATCH', `/v1/knowledge/${item.id}`, { valid_from: 'next week', language: 'klingon', tags: ['a,b'] });
    expect(fieldsOf(badDates)).toEqual(expect.arrayContaining(['valid_from', 'language', 'tags[0]']));
    expect((await api.call(t, 'GET', '/v1/knowledge/search?q=%20')).status).toBe(400);
    expect((await api.call(t, 'GET', `/v1/knowledge/${item.id}`)).body.valid_from).toBeNull();
  });

  it('splits a long document into chunks and quotes the one that matched', async () => {
    const doc = await add(api, t, { kind: 'document', title: 'Store handbook', body: handbook() });
    expect(doc.chunk_count).toBeGreaterThan(3);
    const res = await api.call(t, 'GET', '/v1/knowledge/search?q=ribbon');
    expect(res.body.data).toHaveLength(1);
    expect(res.body.data[0].item.id).toBe(doc.id);
    expect(res.body.data[0].chunk.seq).toBeGreaterThan(0);
    expect(res.body.data[0].chunk.text).toContain('Gift wrapping is free');
    const { rows } = await api.db.query<{ n: number; longest: number }>('select count(*)::int as n, max(length(text))::int as longest from knowledge_chunks where item_id = $1', [doc.id]);
    expect(rows[0]!.n).toBe(doc.chunk_count);
    expect(rows[0]!.longest).toBeLessThanOrEqual(1200);
  });

  it('ranks the obviously relevant item first, filters by topic and hides items out of force', async () => {
    const s = await api.tenant('Ranking');
    const refund = await add(api, s, { kind: 'faq', title: 'Refund policy', body: 'We refund any unused product within 30 days; the refund reaches your card in five days.', topics: ['billing'] });
    await add(api, s, { title: 'Care for leather shoes', body: 'Clean them monthly. If they crack, a refund is not possible.', topics: ['care'] });
    await add(api, s, { kind: 'update', title: 'Opening hours', body: 'We now open at eight on Saturdays.', topics: ['stores'] });
    const expired = await add(api, s, { kind: 'reminder', title: 'Refund week', body: 'Refund requests are answered twice as fast this week.', valid_until: '2026-03-01T00:00:00Z' });
    const future = await add(api, s, { kind: 'update', title: 'Refund app', body: 'Request a refund from the app.', valid_from: '2026-04-01T00:00:00Z' });

    const both = await api.call(s, 'GET', '/v1/knowledge/search?q=refund policy');
    expect(both.status).toBe(200);
    expect(both.body.ranking).toEqual({ text: true, trigram: true, vector: false });
    expect(titles(both)).toEqual(['Refund policy']);
    const res = await api.call(s, 'GET', '/v1/knowledge/search?q=refund');
    expect(res.body.data[0].item.id).toBe(refund.id);
    expect(res.body.data[0].scores.text).toBeGreaterThan(res.body.data[1].scores.text);
    expect(res.body.data[0].scores.vector).toBeNull();
    expect(titles(res)).not.toContain('Refund week');
    expect(titles(res)).not.toContain('Refund app');
    expect(titles(res)).toEqual(['Refund policy', 'Care for leather shoes']);

    expect(titles(await api.call(s, 'GET', '/v1/knowledge/search?q=refund&topics=care'))).toEqual(['Care for leather shoes']);
    expect(titles(await api.call(s, 'GET', '/v1/knowledge/search?q=refund&kinds=faq'))).toEqual(['Refund policy']);
    const later = await api.call(s, 'POST', '/v1/knowledge/search', { q: 'refund', valid_at: '2026-04-02T00:00:00Z', limit: 10 });
    expect(later.body.data.map((h: any) => h.item.id)).toContain(future.id);
    expect(later.body.data.map((h: any) => h.item.id)).not.toContain(expired.id);
    const earlier = await api.call(s, 'GET', '/v1/knowledge/search?q=refund&valid_at=2026-02-27T00:00:00Z');
    expect(earlier.body.data.map((h: any) => h.item.id)).toContain(expired.id);
  });

  it('finds a misspelt word through trigram similarity, below an exact match', async () => {
    const s = await api.tenant('Spelling');
    await add(api, s, { kind: 'faq', title: 'Lost your receipt?', body: 'We can email a copy of any receipt from the last two years.' });
    await add(api, s, { title: 'Parking', body: 'Free parking behind the store.' });
    const res = await api.call(s, 'GET', '/v1/knowledge/search?q=reciept');
    expect(titles(res)).toEqual(['Lost your receipt?']);
    expect(res.body.data[0].scores).toMatchObject({ text: 0 });
    expect(res.body.data[0].scores.trigram).toBeGreaterThan(0);
    const exact = await api.call(s, 'GET', '/v1/knowledge/search?q=receipt');
    expect(exact.body.data[0].score).toBeGreaterThan(res.body.data[0].score);
  });

  it("keeps each tenant's knowledge to itself", async () => {
    const a = await api.tenant('A');
    const b = await api.tenant('B');
    const secret = await add(api, a, { title: 'Supplier discount code', body: 'Use code ZEBRA-CROCUS for 40% off wholesale.' });
    await add(api, b, { title: 'Welcome', body: 'Hello from B.' });
    expect((await api.call(b, 'GET', '/v1/knowledge/search?q=zebra crocus discount')).body.data).toEqual([]);
    expect((await api.call(b, 'GET', '/v1/knowledge/search?q=zebre')).body.data).toEqual([]);
    expect((await api.call(b, 'GET', `/v1/knowledge/${secret.id}`)).status).toBe(404);
    expect((await api.call(b, 'PATCH', `/v1/knowledge/${secret.id}`, { title: 'Mine' })).status).toBe(404);
    expect((await api.call(b, 'DELETE', `/v1/knowledge/${secret.id}`)).status).toBe(404);
    expect(JSON.stringify((await api.call(b, 'GET', '/v1/knowledge')).body)).not.toContain(secret.id);
    expect(titles(await api.call(a, 'GET', '/v1/knowledge/search?q=zebra'))).toEqual(['Supplier discount code']);
  });
});

describe('knowledge base, without pg_trgm', () => {
  let api: TestApi;
  let t: TestTenant;

  beforeAll(async () => {
    api = await knowledgeApi({ trigram: false });
    t = await api.tenant();
  });
  afterAll(() => api?.close());

  it('still ranks by full text and says trigram matching is off', async () => {
    await add(api, t, { kind: 'faq', title: 'Lost your receipt?', body: 'We can email a copy of any receipt.' });
    const exact = await api.call(t, 'GET', '/v1/knowledge/search?q=receipts');
    expect(exact.body.ranking).toEqual({ text: true, trigram: false, vector: false });
    expect(titles(exact)).toEqual(['Lost your receipt?']);
    expect(exact.body.data[0].scores.trigram).toBeNull();
    expect((await api.call(t, 'GET', '/v1/knowledge/search?q=reciept')).body.data).toEqual([]);
  });
});

describe('knowledge base, with embeddings', () => {
  let api: TestApi;
  let t: TestTenant;
  let fake: FakeEmbeddings;

  beforeAll(async () => {
    fake = await FakeEmbeddings.start({ dims: 64, synonyms: [['money', 'refund', 'reimbursed', 'repaid']] });
    api = await knowledgeApi({ trigram: true, embeddingsUrl: fake.baseUrl });
    t = await api.tenant();
  });
  afterAll(async () => {
    await api?.close();
    await fake?.close();
  });

  it('embeds chunks on write and lets vector similarity reorder what text rank alone would give', async () => {
    const reimburse = await add(api, t, { kind: 'faq', title: 'Changed your mind?', body: 'You are reimbursed in full or repaid: a refund takes five days.' });
    expect(reimburse).toMatchObject({ chunk_count: 1, embedded_chunks: 1 });
    expect(fake.requests[0]).toMatchObject({
      model: 'fake-embed',
      authorization: 'Bearer sk-test-knowledge',
      input: ['Changed your mind?\n\nYou are reimbursed in full or repaid: a refund takes five days.'],
    });
    await add(api, t, { title: 'Refund desk', body: 'The refund desk is on floor two, next to the lift, the cafe, the toilets and the garden centre entrance.' });

    const hybrid = await api.call(t, 'GET', '/v1/knowledge/search?q=refund');
    expect(hybrid.body.ranking).toEqual({ text: true, trigram: true, vector: true });
    expect(titles(hybrid)).toEqual(['Changed your mind?', 'Refund desk']);
    const [mind, desk] = hybrid.body.data;
    expect(mind.scores.text).toBeLessThan(desk.scores.text);
    expect(mind.scores.vector).toBeGreaterThan(desk.scores.vector);

    // the same question with vectors off (the endpoint failing): text rank alone puts the desk first
    fake.failWith = 500;
    const textOnly = await api.call(t, 'GET', '/v1/knowledge/search?q=refund');
    fake.failWith = undefined;
    expect(textOnly.status).toBe(200);
    expect(textOnly.body.ranking.vector).toBe(false);
    expect(titles(textOnly)).toEqual(['Refund desk', 'Changed your mind?']);

    // and a question no word of which is in the item still finds it by meaning
    expect(titles(await api.call(t, 'GET', '/v1/knowledge/search?q=money')).slice(0, 1)).toEqual(['Changed your mind?']);
  });

  it('stores items while the endpoint is down and embeds them on a later write', async () => {
    fake.failWith = 503;
    const offline = await add(api, t, { title: 'Repairs', body: 'We repair zips for free.' });
    fake.failWith = undefined;
    expect(offline.embedded_chunks).toBe(0);
    await add(api, t, { title: 'Gift cards', body: 'Gift cards never expire.' });
    expect((await api.call(t, 'GET', `/v1/knowledge/${offline.id}`)).body.embedded_chunks).toBe(1);
  });

  it('takes the nearest chunks by sketch first and still finds the best one among many', async () => {
    const wide = await FakeEmbeddings.start({ dims: 512, synonyms: [['money', 'refund', 'reimburse', 'reimbursed']] });
    const w = await knowledgeApi({ trigram: false, embeddingsUrl: wide.baseUrl });
    try {
      const s = await w.tenant();
      const client = httpEmbeddings({ baseUrl: wide.baseUrl, model: 'fake-embed' });
      // more chunks than the sketch pass keeps, so the pass decides what is scored
      for (let i = 0; i < 150; i++) {
        await createKnowledgeItem(w.db, s.id, { kind: 'tip', title: `Note ${i}`, body: `Candle ${i} smells of cedar, amber and smoke ${i}.` }, { actor: 'test', now: new Date(), embeddings: client });
      }
      const target = await add(w, s, { title: 'Changed your mind?', body: 'Return it within 30 days and you are reimbursed.' });
      const { rows } = await w.db.query<{ n: number }>('select length(sketch)::int as n from knowledge_chunks where item_id = $1', [target.id]);
      expect(rows[0]!.n).toBe(512);
      const res = await w.call(s, 'GET', '/v1/knowledge/search?q=refund');
      expect(res.body.data[0].item.id).toBe(target.id);
      expect(res.body.data[0].scores.vector).toBeGreaterThan(0.2);
    } finally {
      await w.close();
      await wide.close();
    }
  });
});
