import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSuppressed } from '../src/store/suppressions.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;
let other: TestTenant;

const PHONE = '+14155552671';
const EMAIL = 'dana.private@example.com';

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
  other = await api.tenant('Other');
});
afterAll(() => api.close());

/** A contact with consent, events and a suppression of its email. */
async function populated(externalId: string, phone: string, email: string): Promise<string> {
  const c = await api.call(t, 'POST', '/v1/contacts', { external_id: externalId, name: 'Dana', phone, email, whatsapp: phone });
  expect(c.status).toBe(201);
  const id: string = c.body.id;
  await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'granted', type: 'express_written', source: 'web_form', wording: 'Yes, text me', ip: '203.0.113.9' });
  await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'email', topic: 'news', status: 'revoked', source: 'unsubscribe_link' });
  const ev = await api.call(t, 'POST', '/v1/events/batch', {
    events: Array.from({ length: 25 }, (_, i) => ({ name: 'page_view', id: `${externalId}-pv-${i}`, contact_id: id, properties: { path: `/p/${i}` } })),
  });
  expect(ev.body.recorded).toBe(25);
  expect((await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: email, reason: 'unsubscribed' })).status).toBe(201);
  expect((await api.call(t, 'POST', '/v1/suppressions', { channel: 'all', address: phone, reason: 'legal' })).status).toBe(201);
  return id;
}

describe('contact detail', () => {
  it('shows the contact with its current consent and its latest 20 events', async () => {
    const id = await populated('pv-1', '+14155550111', 'detail@example.com');
    const res = await api.call(t, 'GET', `/v1/contacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, external_id: 'pv-1', phone: '+14155550111' });
    expect(res.body.consent).toEqual([
      { channel: 'email', topic: 'news', status: 'revoked', type: null, recorded_at: '2026-03-02T10:00:00.000Z' },
      { channel: 'sms', topic: 'all', status: 'granted', type: 'express_written', recorded_at: '2026-03-02T10:00:00.000Z' },
    ]);
    expect(res.body.recent_events).toHaveLength(20);
    expect(res.body.recent_events[0].properties).toEqual({ path: '/p/24' });
    expect((await api.call(other, 'GET', `/v1/contacts/${id}`)).status).toBe(404);
  });
});

describe('export', () => {
  it('holds the contact, its consent, events, suppressions and audit trail in one document', async () => {
    const id = await populated('pv-2', '+14155550122', 'export@example.com');
    const res = await api.call(t, 'GET', `/v1/contacts/${id}/export`);
    expect(res.status).toBe(200);
    expect(res.body.exported_at).toBe('2026-03-02T10:00:00.000Z');
    expect(res.body.contact).toMatchObject({ id, email: 'export@example.com' });
    expect(res.body.consent.records.map((r: { channel: string; wording: string | null }) => [r.channel, r.wording])).toEqual([
      ['sms', 'Yes, text me'],
      ['email', null],
    ]);
    expect(res.body.consent.current).toHaveLength(2);
    expect(res.body.events).toHaveLength(25);
    expect(res.body.events[0].properties).toEqual({ path: '/p/0' });
    expect(res.body.suppressions.map((s: { channel: string; address: string }) => [s.channel, s.address])).toEqual([
      ['email', 'export@example.com'],
      ['all', '+14155550122'],
    ]);
    expect(res.body.audit.map((a: { action: string }) => a.action)).toEqual(['consent.recorded', 'consent.recorded']);
    expect((await api.call(other, 'GET', `/v1/contacts/${id}/export`)).status).toBe(404);
  });
});

describe('erasure', () => {
  it('erases the contact and its ledger and events; its addresses stay suppressed by hash alone', async () => {
    const id = await populated('pv-3', PHONE, EMAIL);
    const keep = await populated('pv-keep', '+14155550133', 'keep@example.com');
    expect((await api.call(other, 'DELETE', `/v1/contacts/${id}`)).status).toBe(404);

    const res = await api.call(t, 'DELETE', `/v1/contacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id, erased: true, counts: { events: 25, consent_records: 2, suppressions_anonymised: 2 } });

    expect((await api.call(t, 'GET', `/v1/contacts/${id}`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/contacts/${id}/consent`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/contacts/${id}/export`)).status).toBe(404);
    expect((await api.call(t, 'DELETE', `/v1/contacts/${id}`)).status).toBe(404);
    for (const table of ['events', 'consent_records', 'consent_state']) {
      const { rows } = await api.db.query(`select count(*)::int as n from ${table} where contact_id = $1`, [id]);
      expect(rows[0], table).toEqual({ n: 0 });
    }
    const { rows: kept } = await api.db.query('select count(*)::int as n from events where contact_id = $1', [keep]);
    expect(kept[0]).toEqual({ n: 25 });

    const sup = await api.call(t, 'GET', '/v1/suppressions?limit=1000');
    const blanked = sup.body.data.filter((s: { address: string | null }) => s.address === null);
    expect(blanked.map((s: { channel: string }) => s.channel)).toEqual(['email', 'all']);
    expect(await isSuppressed(api.db, t.id, 'email', EMAIL)).toBe(true);
    expect(await isSuppressed(api.db, t.id, 'sms', PHONE)).toBe(true);
    const again = await api.call(t, 'POST', '/v1/suppressions', { channel: 'email', address: EMAIL.toUpperCase(), reason: 'unsubscribed' });
    expect(again.status).toBe(200);
    expect(again.body.address).toBeNull();
  });

  it('leaves an audit trail of ids and counts that holds no email or phone anywhere', async () => {
    const trail = await api.call(t, 'GET', '/v1/audit-log?entity_type=contact&limit=1');
    expect(trail.body.data[0]).toMatchObject({ action: 'contact.erased', data: { events: 25, consent_records: 2, suppressions_anonymised: 2 } });
    const erasedId = trail.body.data[0].entity_id;
    const history = await api.call(t, 'GET', `/v1/audit-log?entity_type=contact&entity_id=${erasedId}`);
    expect(history.body.data.map((e: { action: string }) => e.action)).toEqual(['contact.erased', 'consent.recorded', 'consent.recorded']);

    const { rows } = await api.db.query('select * from audit_log');
    const dump = JSON.stringify(rows);
    for (const secret of [PHONE, PHONE.slice(2), EMAIL, 'dana.private', 'Yes, text me', '203.0.113.9']) expect(dump).not.toContain(secret);
  });

  it('pages the audit log with before', async () => {
    const first = await api.call(t, 'GET', '/v1/audit-log?limit=2');
    expect(first.body.data).toHaveLength(2);
    const second = await api.call(t, 'GET', `/v1/audit-log?limit=2&before=${first.body.next_before}`);
    expect(second.body.data[0].id).toBeLessThan(first.body.data[1].id);
    const theirs = await api.call(other, 'GET', '/v1/audit-log?limit=1000');
    expect(theirs.body.data.map((e: { action: string }) => e.action)).toEqual(['api_key.created', 'tenant.created']);
  });
});
