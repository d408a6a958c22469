import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSuppressed } from '../src/store/suppressions.js';
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

describe('suppressions', () => {
  it('normalises the address, and the same entry again is 200 with the first one', async () => {
    const first = await api.call(t, 'POST', '/v1/suppressions', { channel: 'sms', address: '(415) 555-2671', reason: 'stop_keyword', source: 'sms_keyword' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ channel: 'sms', address: '+14155552671', reason: 'stop_keyword', source: 'sms_keyword' });
    const again = await api.call(t, 'POST', '/v1/suppressions', { channel: 'sms', address: '+1 415 555 2671', reason: 'manual' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.body.id, reason: 'stop_keyword' });
    const email = await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: '  Bounce@Example.COM ', reason: 'bounced' });
    expect(email.status).toBe(201);
    expect(email.body).toMatchObject({ address: 'bounce@example.com', source: 'api' });
  });

  it('blocks by channel, and an entry for all channels blocks every one', async () => {
    expect(await isSuppressed(api.db, t.id, 'sms', '+14155552671')).toBe(true);
    expect(await isSuppressed(api.db, t.id, 'whatsapp', '+14155552671')).toBe(false);
    expect(await isSuppressed(api.db, t.id, 'email', 'bounce@example.com')).toBe(true);
    expect(await isSuppressed(api.db, other.id, 'email', 'bounce@example.com')).toBe(false);
    const all = await api.call(t, 'POST', '/v1/suppressions', { channel: 'all', address: '+14155550199', reason: 'legal' });
    expect(all.status).toBe(201);
    for (const channel of ['sms', 'whatsapp', 'voice'] as const) expect(await isSuppressed(api.db, t.id, channel, '+14155550199')).toBe(true);
  });

  it('refuses an address that does not fit the channel, naming the field', async () => {
    const res = await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: 'not-an-email', reason: 'bounced' });
    expect(res.status).toBe(400);
    expect(res.body.error.fields).toEqual([{ field: 'address', in: 'body', message: expect.stringContaining('not an email') }]);
    const phone = await api.call(t, 'POST', '/v1/suppressions', { channel: 'voice', address: 'hello@example.com', reason: 'x' });
    expect(phone.status).toBe(400);
    expect(phone.body.error.fields[0].field).toBe('address');
    const channel = await api.call(t, 'POST', '/v1/suppressions', { channel: 'telex', address: '+14155550100', reason: 'x' });
    expect(channel.body.error.fields[0].field).toBe('channel');
  });

  it('pages through entries with a cursor and filters by channel', async () => {
    for (let i = 0; i < 7; i++) await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: `page${i}@example.com`, reason: 'unsubscribed' });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { data: { address: string; channel: string }[]; next_cursor: string | null } } = await api.call(
        t,
        'GET',
        `/v1/suppressions?channel=email&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.body.data.every((s) => s.channel === 'email')).toBe(true);
      seen.push(...res.body.data.map((s) => s.address));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['bounce@example.com', ...Array.from({ length: 7 }, (_, i) => `page${i}@example.com`)]);
    expect((await api.call(other, 'GET', '/v1/suppressions')).body.data).toEqual([]);
    expect((await api.call(t, 'GET', '/v1/suppressions?cursor=nonsense')).status).toBe(400);
  });

  it('deletes an entry of the caller only, and audits every change without the address', async () => {
    const created = await api.call(t, 'POST', '/v1/suppressions', { channel: 'sms', address: '+14155550142', reason: 'complaint' });
    expect((await api.call(other, 'DELETE', `/v1/suppressions/${created.body.id}`)).status).toBe(404);
    const del = await api.call(t, 'DELETE', `/v1/suppressions/${created.body.id}`);
    expect(del.status).toBe(200);
    expect(del.body.id).toBe(created.body.id);
    expect(await isSuppressed(api.db, t.id, 'sms', '+14155550142')).toBe(false);
    expect((await api.call(t, 'DELETE', `/v1/suppressions/${created.body.id}`)).status).toBe(404);

    const audit = await api.call(t, 'GET', `/v1/audit-log?entity_type=suppression&entity_id=${created.body.id}`);
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(['suppression.deleted', 'suppression.created']);
    expect(audit.body.data[1].data).toEqual({ channel: 'sms', reason: 'complaint' });
    const { rows } = await api.db.query<{ data: unknown }>("select data from audit_log where entity_type = 'suppression'");
    expect(rows.length).toBeGreaterThanOrEqual(12);
    expect(JSON.stringify(rows)).not.toMatch(/@example\.com|\+1415/);
  });
});
