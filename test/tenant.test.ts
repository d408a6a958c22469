import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant('Clinic');
});
afterAll(() => api.close());

describe('tenant settings', () => {
  it('has sensible defaults: quiet hours 08:00–21:00 for sms and voice', async () => {
    const res = await api.call(t, 'GET', '/v1/tenant');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'Clinic', time_zone: 'UTC', quiet_hours: { sms: { start: '08:00', end: '21:00' }, voice: { start: '08:00', end: '21:00' } } });
  });

  it('updates policies and audits the change', async () => {
    const res = await api.call(t, 'PATCH', '/v1/tenant', {
      time_zone: 'America/Chicago',
      send_window: { days: [1, 2, 3, 4, 5], start: '09:30', end: '18:00' },
      frequency_caps: [{ channel: 'sms', limit: 3, period: '7d' }],
      brand_voice: { tone: 'warm, brief' },
      settings: { default_country: 'US' },
    });
    expect(res.status).toBe(200);
    expect(res.body.frequency_caps).toEqual([{ channel: 'sms', limit: 3, period: '7d' }]);
    const audit = await api.db.query<{ action: string }>('select action from audit_log where tenant_id = $1 order by id desc limit 1', [t.id]);
    expect(audit.rows[0]!.action).toBe('tenant.updated');
    // default_country now lets national numbers in
    const c = await api.call(t, 'POST', '/v1/contacts', { phone: '(415) 555-2671' });
    expect(c.body.phone).toBe('+14155552671');
  });

  it('refuses bad settings by field name and changes nothing', async () => {
    for (const [body, field] of [
      [{ time_zone: 'Moon/Crater' }, 'time_zone'],
      [{ send_window: { days: [8], start: '09:00', end: '17:00' } }, 'send_window.days[0]'],
      [{ quiet_hours: { sms: { start: '25:00', end: '21:00' } } }, 'quiet_hours.sms.start'],
      [{ frequency_caps: [{ channel: 'sms', limit: 3, period: 'weekly' }] }, 'frequency_caps[0].period'],
      [{ colour: 'blue' }, 'colour'],
    ] as const) {
      const res = await api.call(t, 'PATCH', '/v1/tenant', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain(field);
    }
    const after = await api.call(t, 'GET', '/v1/tenant');
    expect(after.body.time_zone).toBe('America/Chicago');
  });
});

describe('API keys', () => {
  it('shows a new key once, lists it without the secret, and stops it working when revoked', async () => {
    const created = await api.call(t, 'POST', '/v1/api-keys', { name: 'zapier' });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^rpk_/);
    const stored = await api.db.query<{ key_hash: string }>('select key_hash from api_keys where id = $1', [created.body.id]);
    expect(stored.rows[0]!.key_hash).not.toContain(created.body.key);

    const other: TestTenant = { id: t.id, key: created.body.key };
    expect((await api.call(other, 'GET', '/v1/tenant')).status).toBe(200);

    const list = await api.call(t, 'GET', '/v1/api-keys');
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    expect(list.body.data.map((k: { name: string }) => k.name)).toContain('zapier');

    expect((await api.call(t, 'DELETE', `/v1/api-keys/${created.body.id}`)).status).toBe(200);
    expect((await api.call(other, 'GET', '/v1/tenant')).status).toBe(401);
  });
});

describe('admin', () => {
  const admin = () => ({ authorization: `Bearer ${api.adminToken}` });

  it('creates tenants with the admin token only', async () => {
    expect((await api.call(t, 'POST', '/v1/tenants', { name: 'Nope' })).status).toBe(401);
    const res = await api.app.inject({ method: 'POST', url: '/v1/tenants', headers: { ...admin(), 'content-type': 'application/json' }, payload: { name: 'Agency client', time_zone: 'Europe/Lisbon' } });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    const asNew: TestTenant = { id: body.tenant.id, key: body.api_key };
    expect((await api.call(asNew, 'GET', '/v1/tenant')).body.name).toBe('Agency client');
  });

  it('acts for the tenant named in X-Rapport-Tenant', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/tenant', headers: { ...admin(), 'x-rapport-tenant': t.id } });
    expect(res.json().id).toBe(t.id);
    const missing = await api.app.inject({ method: 'GET', url: '/v1/tenant', headers: admin() });
    expect(missing.statusCode).toBe(400);
  });
});
