import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
  other = await api.tenant('Other');
});
afterAll(() => api.close());

async function contact(tenant: TestTenant, fields: Record<string, unknown>): Promise<string> {
  const res = await api.call(tenant, 'POST', '/v1/contacts', fields);
  expect(res.status).toBe(201);
  return res.body.id;
}

describe('consent ledger', () => {
  it('records a grant with its evidence and derives current consent', async () => {
    const id = await contact(t, { external_id: 'cs-1', phone: '+14155552671' });
    const res = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, {
      channel: 'sms',
      status: 'granted',
      type: 'express_written',
      source: 'web_form',
      wording: 'I agree to receive texts from Acme.',
      ip: '203.0.113.7',
      proof: { form_url: 'https://acme.test/join' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ contact_id: id, channel: 'sms', topic: 'all', status: 'granted', type: 'express_written', recorded_at: '2026-03-02T10:00:00.000Z' });

    const ledger = await api.call(t, 'GET', `/v1/contacts/${id}/consent`);
    expect(ledger.status).toBe(200);
    expect(ledger.body.records).toHaveLength(1);
    expect(ledger.body.records[0]).toMatchObject({ wording: 'I agree to receive texts from Acme.', ip: '203.0.113.7', proof: { form_url: 'https://acme.test/join' } });
    expect(ledger.body.current).toEqual([{ channel: 'sms', topic: 'all', status: 'granted', type: 'express_written', recorded_at: '2026-03-02T10:00:00.000Z' }]);
  });

  it('keeps the newer decision when an older record arrives later, and lists records oldest first', async () => {
    const id = await contact(t, { external_id: 'cs-2' });
    await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'email', topic: 'newsletter', status: 'revoked', source: 'unsubscribe_link', recorded_at: '2026-03-01T12:00:00Z' });
    await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'email', topic: 'newsletter', status: 'granted', type: 'express', source: 'import', recorded_at: '2026-02-01T12:00:00Z' });
    const ledger = await api.call(t, 'GET', `/v1/contacts/${id}/consent`);
    expect(ledger.body.records.map((r: { status: string }) => r.status)).toEqual(['granted', 'revoked']);
    expect(ledger.body.current).toEqual([{ channel: 'email', topic: 'newsletter', status: 'revoked', type: null, recorded_at: '2026-03-01T12:00:00.000Z' }]);
  });

  it('lets a revocation win over a grant recorded at the same instant, whichever comes first', async () => {
    const id = await contact(t, { external_id: 'cs-3' });
    const at = '2026-03-01T08:00:00Z';
    await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'whatsapp', status: 'revoked', source: 'api', recorded_at: at });
    await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'whatsapp', status: 'granted', type: 'express', source: 'api', recorded_at: at });
    const ledger = await api.call(t, 'GET', `/v1/contacts/${id}/consent`);
    expect(ledger.body.current).toMatchObject([{ channel: 'whatsapp', status: 'revoked' }]);
  });

  it('refuses a grant without type, a future time and an unknown channel, naming each field', async () => {
    const id = await contact(t, { external_id: 'cs-4' });
    const noType = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'granted', source: 'api' });
    expect(noType.status).toBe(400);
    expect(noType.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['type']);
    const future = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'revoked', source: 'api', recorded_at: '2026-03-02T10:06:00Z' });
    expect(future.status).toBe(400);
    expect(future.body.error.fields[0].field).toBe('recorded_at');
    const skew = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'revoked', source: 'api', recorded_at: '2026-03-02T10:04:00Z' });
    expect(skew.status).toBe(201);
    const badChannel = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'fax', status: 'revoked', source: 'api' });
    expect(badChannel.status).toBe(400);
    expect(badChannel.body.error.fields[0].field).toBe('channel');
    const noSource = await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'sms', status: 'revoked' });
    expect(noSource.body.error.fields[0].field).toBe('source');
    const ledger = await api.call(t, 'GET', `/v1/contacts/${id}/consent`);
    expect(ledger.body.records).toHaveLength(1);
  });

  it('answers 404 for a contact of another tenant and writes nothing', async () => {
    const theirs = await contact(other, { external_id: 'theirs' });
    const res = await api.call(t, 'POST', `/v1/contacts/${theirs}/consent`, { channel: 'sms', status: 'revoked', source: 'api' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect((await api.call(t, 'GET', `/v1/contacts/${theirs}/consent`)).status).toBe(404);
    const { rows } = await api.db.query('select count(*)::int as n from consent_records where contact_id = $1', [theirs]);
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('audits each record without the wording or the ip', async () => {
    const id = await contact(t, { external_id: 'cs-5' });
    await api.call(t, 'POST', `/v1/contacts/${id}/consent`, { channel: 'voice', topic: 'alerts', status: 'granted', type: 'express', source: 'ivr', wording: 'Press 1 to agree', ip: '198.51.100.4' });
    const { rows } = await api.db.query<{ action: string; entity_type: string; data: Record<string, unknown> }>(
      'select action, entity_type, data from audit_log where entity_id = $1',
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'consent.recorded', entity_type: 'contact', data: { channel: 'voice', topic: 'alerts', status: 'granted', type: 'express', source: 'ivr' } });
    expect(JSON.stringify(rows[0]!.data)).not.toMatch(/Press 1|198\.51/);
  });
});

describe('consent batch', () => {
  it('records many contacts in one request and derives the state of each', async () => {
    const bulk = await api.call(t, 'POST', '/v1/contacts/bulk', { contacts: Array.from({ length: 50 }, (_, i) => ({ external_id: `cb-${i}` })) });
    const ids: string[] = bulk.body.results.map((r: { id: string }) => r.id);
    const records = ids.flatMap((contact_id, i) => [
      { contact_id, channel: 'sms', status: 'granted', type: 'express', source: 'import', recorded_at: '2026-02-01T00:00:00Z' },
      // the same key twice in one batch: the later record stands
      { contact_id, channel: 'sms', status: i % 2 ? 'revoked' : 'granted', type: i % 2 ? null : 'implied', source: 'import', recorded_at: '2026-02-02T00:00:00Z' },
    ]);
    const res = await api.call(t, 'POST', '/v1/consent/batch', { records });
    expect(res.status).toBe(200);
    expect(res.body.recorded).toBe(100);
    expect(res.body.ids).toHaveLength(100);
    const { rows } = await api.db.query<{ status: string; n: number }>(
      'select status, count(*)::int as n from consent_state where contact_id = any($1::uuid[]) group by status order by status',
      [ids],
    );
    expect(rows).toEqual([
      { status: 'granted', n: 25 },
      { status: 'revoked', n: 25 },
    ]);
    const audit = await api.db.query('select count(*)::int as n from audit_log where action = $1 and entity_id = any($2::text[])', ['consent.recorded', ids]);
    expect(audit.rows[0]).toEqual({ n: 100 });
  });

  it('refuses the whole batch naming each bad record, and writes nothing', async () => {
    const ok = await contact(t, { external_id: 'cb-ok' });
    const theirs = await contact(other, { external_id: 'cb-theirs' });
    const before = await api.db.query('select count(*)::int as n from consent_records');
    const shape = await api.call(t, 'POST', '/v1/consent/batch', {
      records: [
        { contact_id: ok, channel: 'sms', status: 'revoked', source: 'api' },
        { contact_id: ok, channel: 'pigeon', status: 'revoked', source: 'api' },
      ],
    });
    expect(shape.status).toBe(400);
    expect(shape.body.error.fields.map((f: { field: string }) => f.field)).toContain('records[1].channel');
    const rules = await api.call(t, 'POST', '/v1/consent/batch', {
      records: [
        { contact_id: ok, channel: 'sms', status: 'revoked', source: 'api' },
        { contact_id: ok, channel: 'sms', status: 'granted', source: 'api' },
      ],
    });
    expect(rules.status).toBe(400);
    expect(rules.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['records[1].type']);
    const foreign = await api.call(t, 'POST', '/v1/consent/batch', {
      records: [
        { contact_id: ok, channel: 'sms', status: 'revoked', source: 'api' },
        { contact_id: theirs, channel: 'sms', status: 'revoked', source: 'api' },
      ],
    });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['records[1].contact_id']);
    const after = await api.db.query('select count(*)::int as n from consent_records');
    expect(after.rows).toEqual(before.rows);
  });
});
