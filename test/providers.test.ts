import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/api/app.js';
import type { AccountProblem, ChannelAdapter, ProviderKind } from '../src/channels/types.js';
import type { SendChannel } from '../src/core/journey/definition.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { createApiKey } from '../src/store/apikeys.js';
import type { Db } from '../src/store/db.js';
import { findAccountByRoute, loadAccounts, SecretKeyRequiredError } from '../src/store/provider-accounts.js';
import { createTenant } from '../src/store/tenants.js';
import { freshDb } from './helpers/db.js';

/**
 * Provider accounts through the API, with adapters made up here: each requires one credential and
 * one config field, which is all the store needs to show that it asks the adapter and names what
 * it says.
 */
function testAdapter(kind: ProviderKind, channels: SendChannel[], needs: { credentials: string[]; config: string[] }, inbound = true): ChannelAdapter {
  return {
    kind,
    channels,
    check(credentials, config) {
      const problems: AccountProblem[] = [];
      for (const f of needs.credentials) if (!credentials[f]) problems.push({ field: `credentials.${f}`, message: 'is required' });
      for (const f of needs.config) if (config[f] === undefined) problems.push({ field: `config.${f}`, message: 'is required' });
      return problems;
    },
    send: () => Promise.resolve({ ok: false, permanent: true, error: 'test adapter' }),
    ...(inbound ? { inbound: { route: () => null, verify: () => false, parse: () => [] } } : {}),
  };
}

const adapters = new Map<ProviderKind, ChannelAdapter>([
  ['twilio', testAdapter('twilio', ['sms'], { credentials: ['token'], config: ['from'] })],
  ['twilio_whatsapp', testAdapter('twilio_whatsapp', ['whatsapp'], { credentials: ['token'], config: ['from'] })],
  ['meta_whatsapp', testAdapter('meta_whatsapp', ['whatsapp'], { credentials: ['access_token'], config: ['phone_number_id'] })],
  ['smtp', testAdapter('smtp', ['email'], { credentials: ['password'], config: ['from_email'] }, false)],
  ['sandbox', testAdapter('sandbox', ['sms', 'email', 'whatsapp', 'voice', 'webhook'], { credentials: [], config: [] })],
]);

const TOKEN = 'tok_live_4f9a8b7c6d5e4f3a2b1c';
const box = new SecretBox('a-test-secret-key-that-is-long-enough-0123');

interface Tenant {
  id: string;
  key: string;
}

let db: Db;
let app: App;
let keyless: App;
let clock: ManualClock;
let t: Tenant;
let other: Tenant;

async function tenant(name: string): Promise<Tenant> {
  const created = await createTenant(db, { name });
  return { id: created.id, key: (await createApiKey(db, created.id, 'test', 'test')).secret };
}

async function call(as: Tenant, method: string, url: string, body?: unknown, on: App = app): Promise<{ status: number; body: any; text: string }> {
  const res = await on.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${as.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: JSON.parse(res.body), text: res.body };
}

async function account(as: Tenant, body: Record<string, unknown>): Promise<any> {
  const res = await call(as, 'POST', '/v1/providers', body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

// Distinct fields: ajv reports a name both too short and not matching its pattern.
const fieldsOf = (res: { body: any }) => [...new Set(res.body.error.fields.map((f: { field: string }) => f.field))];

async function routes(accountId: string): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>('select key from provider_routes where account_id = $1 order by key', [accountId]);
  return rows.map((r) => r.key);
}

beforeAll(async () => {
  db = await freshDb();
  clock = new ManualClock('2026-03-02T10:00:00Z');
  app = await buildApp({ db, clock, secrets: box, adapters, publicUrl: 'https://rapport.example.com/' });
  keyless = await buildApp({ db, clock, adapters });
  t = await tenant('Acme');
  other = await tenant('Other');
});
afterAll(async () => {
  await app.close();
  await keyless.close();
  await db.close();
});

describe('provider accounts', () => {
  it('creates an account with its credentials sealed: the database row holds no secret', async () => {
    const created = await account(t, { name: 'Twilio main', kind: 'twilio', credentials: { token: TOKEN, short: 'abc' }, config: { from: '+1 (415) 555-2671' } });
    expect(created).toMatchObject({
      name: 'Twilio main',
      kind: 'twilio',
      channel: 'sms',
      priority: 100,
      enabled: true,
      credentials: { token: '••••2b1c', short: '••••' },
      config: { from: '+1 (415) 555-2671' },
      webhook_urls: { shared: 'https://rapport.example.com/webhooks/twilio', account: `https://rapport.example.com/webhooks/twilio/${created.id}` },
      created_at: '2026-03-02T10:00:00.000Z',
    });

    const { rows } = await db.query<Record<string, unknown>>('select * from provider_accounts where id = $1', [created.id]);
    const stored = JSON.stringify(rows[0]);
    expect(stored).not.toContain(TOKEN);
    expect(stored).not.toContain('4f9a8b7c');
    expect(rows[0]!.credentials).toMatch(/^v1\.[0-9a-f]{8}\./);
    expect(box.openJson(rows[0]!.credentials as string)).toEqual({ token: TOKEN, short: 'abc' });
    expect(await routes(created.id)).toEqual(['address:+14155552671']);

    const audit = await db.query<{ action: string; data: unknown }>("select action, data from audit_log where entity_type = 'provider_account' and entity_id = $1", [created.id]);
    expect(audit.rows).toEqual([{ action: 'provider_account.created', data: { name: 'Twilio main', kind: 'twilio', channel: 'sms', credential_fields: ['token', 'short'] } }]);
    expect(JSON.stringify(audit.rows)).not.toContain(TOKEN);
  });

  it('lists and gets accounts with secrets masked, by channel then priority', async () => {
    const me = await tenant('Lister');
    const b = await account(me, { name: 'b', kind: 'twilio', priority: 20, credentials: { token: TOKEN }, config: { from: '+14155550101' } });
    const a = await account(me, { name: 'a', kind: 'twilio', priority: 10, credentials: { token: TOKEN }, config: { from: '+14155550102' } });
    const mail = await account(me, { name: 'mail', kind: 'smtp', credentials: { password: 'smtp-password-very-secret' }, config: { from_email: 'News <News@Acme.example>' } });

    const list = await call(me, 'GET', '/v1/providers');
    expect(list.status).toBe(200);
    expect(list.body.data.map((x: { name: string }) => x.name)).toEqual(['mail', 'a', 'b']);
    expect(list.text).not.toContain(TOKEN);
    expect(list.text).not.toContain('smtp-password-very-secret');
    expect(list.body.data[0]).toMatchObject({ channel: 'email', credentials: { password: '••••cret' }, webhook_urls: null });
    expect(await routes(mail.id)).toEqual(['address:news@acme.example']);

    const sms = await call(me, 'GET', '/v1/providers?channel=sms');
    expect(sms.body.data.map((x: { id: string }) => x.id)).toEqual([a.id, b.id]);
    expect((await call(me, 'GET', '/v1/providers?kind=smtp')).body.data).toHaveLength(1);

    const got = await call(me, 'GET', `/v1/providers/${b.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: b.id, credentials: { token: '••••2b1c' } });
    expect(got.text).not.toContain(TOKEN);
  });

  it('takes the webhook URL from the request when no public URL is configured', async () => {
    const res = await keyless.inject({ method: 'GET', url: '/v1/providers', headers: { authorization: `Bearer ${t.key}`, host: 'rapport.internal:8080' } });
    const first = JSON.parse(res.body).data[0];
    expect(first.webhook_urls).toEqual({ shared: 'http://rapport.internal:8080/webhooks/twilio', account: `http://rapport.internal:8080/webhooks/twilio/${first.id}` });
  });

  it("refuses bad input with 400 naming each field, the adapter's problems included", async () => {
    const before = (await db.query('select id from provider_accounts')).rows.length;
    const bad = async (body: Record<string, unknown>) => {
      const res = await call(t, 'POST', '/v1/providers', body);
      expect(res.status, res.text).toBe(400);
      return res;
    };
    const ok = { name: 'x', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550199' } };

    expect(fieldsOf(await bad({ ...ok, name: '' }))).toEqual(['name']);
    expect(fieldsOf(await bad({ ...ok, name: 'n'.repeat(101) }))).toEqual(['name']);
    expect(fieldsOf(await bad({ ...ok, kind: 'pigeon' }))).toEqual(['kind']);
    const noAdapter = await bad({ ...ok, kind: 'vonage' });
    expect(noAdapter.body.error.fields).toEqual([{ field: 'kind', in: 'body', message: 'no adapter for vonage in this Rapport build' }]);
    expect(fieldsOf(await bad({ ...ok, channel: 'email' }))).toEqual(['channel']);
    expect(fieldsOf(await bad({ ...ok, priority: 1001 }))).toEqual(['priority']);
    expect(fieldsOf(await bad({ ...ok, priority: 1.5 }))).toEqual(['priority']);
    expect(fieldsOf(await bad({ ...ok, credentials: { token: { nested: true } } }))).toEqual(['credentials.token']);
    expect(fieldsOf(await bad({ ...ok, config: ['not', 'an', 'object'] }))).toEqual(['config']);
    expect(fieldsOf(await bad({ ...ok, secret: 'x' }))).toEqual(['secret']);

    const adapterSays = await bad({ name: 'x', kind: 'twilio', credentials: {}, config: {} });
    expect(adapterSays.body.error.fields).toEqual([
      { field: 'credentials.token', in: 'body', message: 'is required' },
      { field: 'config.from', in: 'body', message: 'is required' },
    ]);
    expect(fieldsOf(await bad({ ...ok, config: { from: '+1555' } }))).toEqual(['config.from']);
    expect(fieldsOf(await bad({ ...ok, config: { from: '+14155550199', numbers: ['+14155550198', '12'] } }))).toEqual(['config.numbers[1]']);
    expect(fieldsOf(await bad({ ...ok, config: { from: '+14155550199', numbers: '+14155550198' } }))).toEqual(['config.numbers']);
    expect(fieldsOf(await bad({ name: 'm', kind: 'smtp', credentials: { password: 'p' }, config: { from_email: 'not-an-address@' } }))).toEqual(['config.from_email']);

    expect((await db.query('select id from provider_accounts')).rows.length).toBe(before);
  });

  it('routes by alphanumeric senders never, by short codes as digits, by well-formed numbers libphonenumber does not know', async () => {
    const me = await tenant('Senders');
    const drama = await account(me, { name: 'drama', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+44 7700 900001' } });
    expect(await routes(drama.id)).toEqual(['address:+447700900001']);
    expect((await findAccountByRoute(db, box, ['twilio'], { address: '+447700900001' }))?.id).toBe(drama.id);
    const alpha = await account(me, { name: 'alpha', kind: 'twilio', credentials: { token: TOKEN }, config: { from: 'ACME' } });
    expect(await routes(alpha.id)).toEqual([]);
    const short = await account(me, { name: 'short', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '12345' } });
    expect(await routes(short.id)).toEqual(['address:12345']);
  });

  it('answers 409 naming name for a duplicate name in the tenant, and lets another tenant use it', async () => {
    await account(t, { name: 'dup', kind: 'sandbox', credentials: {} });
    const res = await call(t, 'POST', '/v1/providers', { name: 'dup', kind: 'sandbox', credentials: {} });
    expect(res.status).toBe(409);
    expect(fieldsOf(res)).toEqual(['name']);
    expect((await call(other, 'POST', '/v1/providers', { name: 'dup', kind: 'sandbox', credentials: {} })).status).toBe(201);
  });

  it("answers 409 on a number or phone_number_id held by another tenant's account, without naming the tenant", async () => {
    const mine = await account(t, { name: 'wa', kind: 'meta_whatsapp', credentials: { access_token: TOKEN }, config: { phone_number_id: '106540352242922' } });
    const sameId = await call(other, 'POST', '/v1/providers', { name: 'wa', kind: 'meta_whatsapp', credentials: { access_token: TOKEN }, config: { phone_number_id: '106540352242922' } });
    expect(sameId.status).toBe(409);
    expect(fieldsOf(sameId)).toEqual(['config.phone_number_id']);
    expect(sameId.body.error.message).toContain('another');

    // The number of the first test, written another way.
    const sameNumber = await call(other, 'POST', '/v1/providers', { name: 'sms', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+1 415-555-2671' } });
    expect(sameNumber.status).toBe(409);
    expect(fieldsOf(sameNumber)).toEqual(['config.from']);
    expect(sameNumber.body.error.message).toContain('+14155552671 belongs to another twilio provider account');
    for (const leak of [t.id, 'Acme', 'Twilio main']) expect(sameNumber.text).not.toContain(leak);

    const inNumbers = await call(other, 'POST', '/v1/providers', { name: 'sms', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550150', numbers: ['+14155552671'] } });
    expect(fieldsOf(inNumbers)).toEqual(['config.numbers[0]']);
    // One number for SMS and for WhatsApp is two kinds of route: both may have it.
    expect((await call(other, 'POST', '/v1/providers', { name: 'wa-twilio', kind: 'twilio_whatsapp', credentials: { token: TOKEN }, config: { from: 'whatsapp:+14155552671' } })).status).toBe(201);
    expect((await db.query('select 1 from provider_accounts where tenant_id = $1 and name = $2', [other.id, 'sms'])).rows).toEqual([]);
    expect(await routes(mine.id)).toEqual(['external:106540352242922']);
  });

  it('gives a number claimed by two accounts at once to one of them, and a 409 to the other', async () => {
    const [x, y] = [await tenant('Racer X'), await tenant('Racer Y')];
    const body = (name: string) => ({ name, kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550155' } });
    const results = await Promise.all([call(x, 'POST', '/v1/providers', body('x')), call(y, 'POST', '/v1/providers', body('y'))]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(fieldsOf(results.find((r) => r.status === 409)!)).toEqual(['config.from']);
    const { rows } = await db.query('select tenant_id from provider_routes where kind = $1 and key = $2', ['twilio', 'address:+14155550155']);
    expect(rows).toHaveLength(1);
  });

  it('rewrites the routes on update, replacing credentials and config whole', async () => {
    const me = await tenant('Updater');
    const acc = await account(me, { name: 'main', kind: 'twilio', credentials: { token: TOKEN, extra: 'extra-secret-value' }, config: { from: '+14155550160', numbers: ['+14155550161'] } });
    expect(await routes(acc.id)).toEqual(['address:+14155550160', 'address:+14155550161']);

    clock.advance(60_000);
    const changed = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { config: { from: '+14155550162', numbers: ['+14155550163', '+14155550162'] }, priority: 5 });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toMatchObject({ priority: 5, config: { from: '+14155550162' }, credentials: { token: '••••2b1c', extra: '••••alue' }, updated_at: '2026-03-02T10:01:00.000Z' });
    expect(await routes(acc.id)).toEqual(['address:+14155550162', 'address:+14155550163']);
    // The numbers it gave up are free for another account.
    expect((await call(other, 'POST', '/v1/providers', { name: 'freed', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550160' } })).status).toBe(201);

    const creds = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { credentials: { token: 'new-token-0000000000-9999' } });
    expect(creds.body.credentials).toEqual({ token: '••••9999' });
    const { rows } = await db.query<{ credentials: string }>('select credentials from provider_accounts where id = $1', [acc.id]);
    expect(box.openJson(rows[0]!.credentials)).toEqual({ token: 'new-token-0000000000-9999' });

    // Config replaced whole: without `from` the adapter refuses it, and nothing changes.
    const partial = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { config: { numbers: ['+14155550164'] } });
    expect(partial.status).toBe(400);
    expect(fieldsOf(partial)).toEqual(['config.from']);
    expect(await routes(acc.id)).toEqual(['address:+14155550162', 'address:+14155550163']);

    const taken = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { config: { from: '+14155550160' } });
    expect(taken.status).toBe(409);
    expect(fieldsOf(taken)).toEqual(['config.from']);
    expect(await routes(acc.id)).toEqual(['address:+14155550162', 'address:+14155550163']);

    expect(fieldsOf(await call(me, 'PATCH', `/v1/providers/${acc.id}`, { kind: 'smtp' }))).toEqual(['kind']);
    expect(fieldsOf(await call(me, 'PATCH', `/v1/providers/${acc.id}`, { channel: 'voice' }))).toEqual(['channel']);
    await account(me, { name: 'second', kind: 'sandbox', credentials: {} });
    const rename = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { name: 'second' });
    expect(rename.status).toBe(409);
    expect(fieldsOf(rename)).toEqual(['name']);

    const audit = await db.query<{ action: string }>("select action from audit_log where entity_type = 'provider_account' and entity_id = $1 order by id", [acc.id]);
    expect(audit.rows.map((r) => r.action)).toEqual(['provider_account.created', 'provider_account.updated', 'provider_account.updated']);
  });

  it('deletes an account with its routes, and answers 404 for unknown ids', async () => {
    const me = await tenant('Deleter');
    const acc = await account(me, { name: 'gone', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550170' } });
    const res = await call(me, 'DELETE', `/v1/providers/${acc.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: acc.id, credentials: { token: '••••2b1c' } });
    expect(await routes(acc.id)).toEqual([]);
    expect(await findAccountByRoute(db, box, ['twilio'], { address: '+14155550170' })).toBeNull();
    for (const [method, body] of [['GET'], ['PATCH', { priority: 1 }], ['DELETE']] as const) {
      expect((await call(me, method, `/v1/providers/${acc.id}`, body)).status, method).toBe(404);
    }
  });

  it('finds the account of an inbound webhook by address, external id or account id, decrypted', async () => {
    const me = await tenant('Router');
    const sms = await account(me, { name: 'sms', kind: 'twilio', enabled: false, credentials: { token: 'router-token-123456' }, config: { from: '+14155550180', numbers: ['+14155550181'] } });
    const wa = await account(me, { name: 'wa', kind: 'twilio_whatsapp', credentials: { token: 'wa-token-123456' }, config: { from: 'whatsapp:+14155550180' } });
    const meta = await account(me, { name: 'meta', kind: 'meta_whatsapp', credentials: { access_token: 'EAAG-meta-token' }, config: { phone_number_id: '1234567890' } });

    const byNumber = await findAccountByRoute(db, box, ['twilio'], { address: '+14155550181' });
    expect(byNumber).toMatchObject({ id: sms.id, tenant_id: me.id, kind: 'twilio', channel: 'sms', credentials: { token: 'router-token-123456' }, config: { from: '+14155550180' } });
    expect((await findAccountByRoute(db, box, ['twilio'], { address: 'whatsapp:+1 415 555 0180' }))?.id).toBe(sms.id);
    // One number under two kinds: the caller's order of kinds decides.
    expect((await findAccountByRoute(db, box, ['twilio_whatsapp', 'twilio'], { address: '+14155550180' }))?.id).toBe(wa.id);
    expect((await findAccountByRoute(db, box, ['twilio', 'twilio_whatsapp'], { address: '+14155550180' }))?.id).toBe(sms.id);
    expect(await findAccountByRoute(db, box, ['vonage'], { address: '+14155550180' })).toBeNull();
    expect(await findAccountByRoute(db, box, ['twilio'], { address: '+14155550999' })).toBeNull();

    expect(await findAccountByRoute(db, box, ['meta_whatsapp'], { external_id: '1234567890' })).toMatchObject({ id: meta.id, credentials: { access_token: 'EAAG-meta-token' } });
    expect(await findAccountByRoute(db, box, ['twilio'], { external_id: '1234567890' })).toBeNull();

    expect((await findAccountByRoute(db, box, ['meta_whatsapp'], { account_id: meta.id }))?.id).toBe(meta.id);
    expect(await findAccountByRoute(db, box, ['twilio'], { account_id: meta.id })).toBeNull();
    expect(await findAccountByRoute(db, box, ['meta_whatsapp'], { account_id: 'not-a-uuid' })).toBeNull();
    expect(await findAccountByRoute(db, box, ['meta_whatsapp'], { account_id: '01900000-0000-7000-8000-000000000000' })).toBeNull();
    expect(await findAccountByRoute(db, box, [], { account_id: meta.id })).toBeNull();
    expect(await findAccountByRoute(db, box, ['twilio'], {})).toBeNull();
  });

  it('loads enabled accounts of a channel in priority order, decrypted, cached until this process writes', async () => {
    const me = await tenant('Loader');
    const later = await account(me, { name: 'later', kind: 'twilio', priority: 50, credentials: { token: 'later-token' }, config: { from: '+14155550190' } });
    const first = await account(me, { name: 'first', kind: 'twilio', priority: 10, credentials: { token: 'first-token' }, config: { from: '+14155550191' } });
    const tie = await account(me, { name: 'tie', kind: 'sandbox', channel: 'sms', priority: 50, credentials: {} });
    await account(me, { name: 'off', kind: 'twilio', priority: 1, enabled: false, credentials: { token: 'off' }, config: { from: '+14155550192' } });
    await account(me, { name: 'mail', kind: 'smtp', priority: 1, credentials: { password: 'p' }, config: { from_email: 'a@b.example' } });

    const loaded = await loadAccounts(db, box, me.id, 'sms');
    expect(loaded.map((a) => a.name)).toEqual(['first', 'later', 'tie']);
    expect(loaded.map((a) => a.id)).toEqual([first.id, later.id, tie.id]);
    expect(loaded[0]).toEqual({
      id: first.id,
      tenant_id: me.id,
      name: 'first',
      kind: 'twilio',
      channel: 'sms',
      priority: 10,
      credentials: { token: 'first-token' },
      config: { from: '+14155550191' },
    });
    expect(await loadAccounts(db, box, me.id, 'voice')).toEqual([]);

    // A change behind this process's back is seen only after the cache expires...
    await db.query('update provider_accounts set priority = 99 where id = $1', [first.id]);
    expect((await loadAccounts(db, box, me.id, 'sms')).map((a) => a.name)).toEqual(['first', 'later', 'tie']);
    // ...a write through the store clears it at once.
    await call(me, 'PATCH', `/v1/providers/${later.id}`, { priority: 60 });
    expect((await loadAccounts(db, box, me.id, 'sms')).map((a) => a.name)).toEqual(['tie', 'later', 'first']);
  });

  it('refuses to create or change accounts without a secret key, and still lists and deletes them', async () => {
    const me = await tenant('Keyless');
    const res = await call(me, 'POST', '/v1/providers', { name: 'x', kind: 'sandbox', credentials: {} }, keyless);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('secret_key_required');
    expect(res.body.error.message).toContain('RAPPORT_SECRET_KEY');

    const acc = await account(me, { name: 'made-with-key', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550200' } });
    const patch = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { priority: 1 }, keyless);
    expect(patch.status).toBe(409);
    expect(patch.body.error.code).toBe('secret_key_required');
    // The route's own error handler still gives every other error its usual shape.
    expect((await call(me, 'POST', '/v1/providers', { name: 'x' }, keyless)).body.error.code).toBe('invalid_request');

    const list = await call(me, 'GET', '/v1/providers', undefined, keyless);
    expect(list.body.data).toEqual([expect.objectContaining({ id: acc.id, credentials: {} })]);
    await expect(loadAccounts(db, null, me.id, 'sms')).rejects.toThrow(SecretKeyRequiredError);
    await expect(findAccountByRoute(db, null, ['twilio'], { address: '+14155550200' })).rejects.toThrow(/RAPPORT_SECRET_KEY/);
    expect(await loadAccounts(db, null, me.id, 'email')).toEqual([]);
    expect((await call(me, 'DELETE', `/v1/providers/${acc.id}`, undefined, keyless)).status).toBe(200);
  });

  it('says which account cannot be decrypted when the key is not the one that sealed it', async () => {
    const me = await tenant('Rotated');
    const acc = await account(me, { name: 'old-key', kind: 'twilio', credentials: { token: TOKEN }, config: { from: '+14155550210' } });
    const otherBox = new SecretBox('another-secret-key-which-is-also-long-enough');
    await expect(loadAccounts(db, otherBox, me.id, 'sms')).rejects.toThrow(/"old-key".*sealed with another key/);
    const app2 = await buildApp({ db, clock, secrets: otherBox, adapters });
    try {
      const got = await call(me, 'GET', `/v1/providers/${acc.id}`, undefined, app2);
      expect(got.body.credentials).toEqual({});
      const patch = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { priority: 3 }, app2);
      expect(patch.status).toBe(409);
      expect(fieldsOf(patch)).toEqual(['credentials']);
      const replaced = await call(me, 'PATCH', `/v1/providers/${acc.id}`, { priority: 3, credentials: { token: TOKEN } }, app2);
      expect(replaced.status).toBe(200);
      expect((await loadAccounts(db, otherBox, me.id, 'sms'))[0]!.credentials).toEqual({ token: TOKEN });
    } finally {
      await app2.close();
    }
  });
});
