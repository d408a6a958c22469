import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

const send = (url: string, payload: string, contentType = 'application/json', method: 'POST' | 'GET' = 'POST') =>
  api.app.inject({ method, url, payload, headers: { authorization: `Bearer ${t.key}`, 'content-type': contentType } });

describe('HTTP errors', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /v1/nothing-here' } });
  });

  it('limits body size per route: 1 MiB by default, more for bulk routes', async () => {
    const big = JSON.stringify({ name: 'x', attributes: { blob: 'y'.repeat(1024 * 1024) } });
    const res = await send('/v1/contacts', big);
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');

    const bulk = JSON.stringify({ contacts: Array.from({ length: 10_000 }, (_, i) => ({ external_id: `big-${i}`, name: `Person number ${i}`, attributes: { note: 'z'.repeat(100) } })) });
    expect(bulk.length).toBeGreaterThan(1024 * 1024);
    const ok = await send('/v1/contacts/bulk', bulk);
    expect(ok.statusCode).toBe(200);
    expect(ok.json().created).toBe(10_000);
  });

  it('refuses more than 10,000 rows in one bulk call by field', async () => {
    const res = await send('/v1/contacts/bulk', JSON.stringify({ contacts: Array.from({ length: 10_001 }, (_, i) => ({ external_id: `o-${i}` })) }));
    expect(res.statusCode).toBe(400);
    expect(res.json().error.fields[0].field).toBe('contacts');
  });

  it('explains malformed JSON and wrong content types', async () => {
    const bad = await send('/v1/contacts', '{"name": ');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.fields[0].field).toBe('body');
    const text = await send('/v1/contacts', 'name=x', 'text/plain');
    expect(text.statusCode).toBe(415);
  });

  it('names bad query parameters and path ids', async () => {
    const q = await api.call(t, 'GET', '/v1/contacts?limit=5000');
    expect(q.status).toBe(400);
    expect(q.body.error.fields[0]).toMatchObject({ field: 'limit', in: 'querystring' });
    const id = await api.call(t, 'GET', '/v1/contacts/not-a-uuid');
    expect(id.status).toBe(400);
    expect(id.body.error.fields[0]).toMatchObject({ field: 'id', in: 'params' });
    const cursor = await api.call(t, 'GET', '/v1/contacts?cursor=garbage');
    expect(cursor.status).toBe(400);
    expect(cursor.body.error.fields[0].field).toBe('cursor');
  });
});
