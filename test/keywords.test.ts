import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REPLIES, matchKeyword } from '../src/core/keywords.js';
import { keywordPhrase, loadKeywordTable } from '../src/store/keywords.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

const fieldsOf = (res: { body: any }) => [...new Set(res.body.error.fields.map((f: { field: string }) => f.field))];
const entry = async (as: TestTenant, phrase: string) => (await api.call(as, 'GET', '/v1/keywords')).body.data.filter((k: { phrase: string }) => k.phrase === phrase);

describe('keywords API', () => {
  it('lists the default table, each entry marked as a default', async () => {
    const res = await api.call(t, 'GET', '/v1/keywords');
    expect(res.status).toBe(200);
    const byPhrase = new Map(res.body.data.map((k: { phrase: string }) => [k.phrase, k]));
    expect(byPhrase.get('stop')).toEqual({ phrase: 'stop', action: 'opt_out', intent: null, reply: DEFAULT_REPLIES.opt_out.en, language: 'en', after_opt_out: false, source: 'default' });
    expect(byPhrase.get('no mas mensajes')).toMatchObject({ action: 'opt_out', language: 'es', reply: DEFAULT_REPLIES.opt_out.es });
    expect(byPhrase.get('yes')).toMatchObject({ action: 'opt_in', after_opt_out: true });
    expect(byPhrase.get('help')).toMatchObject({ action: 'help', reply: DEFAULT_REPLIES.help.en });
    expect(byPhrase.get('moving now')).toMatchObject({ action: 'intent', intent: 'moving_now', reply: null });
    expect(res.body.data.every((k: { source: string }) => k.source === 'default')).toBe(true);
    // Grouped by action: opt-outs first, intents last.
    const actions = res.body.data.map((k: { action: string }) => k.action);
    expect(actions.indexOf('intent')).toBeGreaterThan(actions.lastIndexOf('opt_out'));
  });

  it('replaces a default phrase with a tenant row, normalising the phrase, and audits it', async () => {
    const created = await api.call(t, 'PUT', '/v1/keywords/STOP!', { action: 'opt_out', reply: '{{tenant}}: unsubscribed. Questions? 555-0100', language: 'en' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ phrase: 'stop', action: 'opt_out', intent: null, reply: '{{tenant}}: unsubscribed. Questions? 555-0100', language: 'en', after_opt_out: false, source: 'tenant' });
    expect(await entry(t, 'stop')).toEqual([created.body]);

    const replaced = await api.call(t, 'PUT', `/v1/keywords/${encodeURIComponent(' Stop ')}`, { action: 'opt_out' });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ phrase: 'stop', reply: DEFAULT_REPLIES.opt_out.en, source: 'tenant' });

    const { rows } = await api.db.query<{ action: string; data: unknown }>("select action, data from audit_log where tenant_id = $1 and entity_type = 'keyword' order by id", [t.id]);
    expect(rows.map((r) => r.action)).toEqual(['keyword.created', 'keyword.updated']);
    expect(rows[0]!.data).toEqual({ phrase: 'stop', action: 'opt_out', intent: null });
  });

  it('switches a default off with action none, so the inbound table no longer matches it', async () => {
    expect(matchKeyword('End', null, await loadKeywordTable(api.db, t.id))).toMatchObject({ action: 'opt_out' });
    const res = await api.call(t, 'PUT', '/v1/keywords/end', { action: 'none' });
    expect(res.status).toBe(201);
    expect(await entry(t, 'end')).toEqual([expect.objectContaining({ action: 'none', reply: null, source: 'tenant' })]);
    // The write cleared this process's cache: the next inbound message sees it.
    expect(matchKeyword('End', null, await loadKeywordTable(api.db, t.id))).toBeNull();
    expect(matchKeyword('Stop', null, await loadKeywordTable(api.db, t.id))).toMatchObject({ action: 'opt_out' });
  });

  it('adds phrases and intents of its own, matched from text and from payloads', async () => {
    const res = await api.call(t, 'PUT', `/v1/keywords/${encodeURIComponent("I'm parked legally")}`, { action: 'intent', intent: 'dispute', reply: 'Thanks, we will check.' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ phrase: 'im parked legally', action: 'intent', intent: 'dispute' });
    const table = await loadKeywordTable(api.db, t.id);
    expect(matchKeyword("I'm parked legally!", null, table)).toMatchObject({ action: 'intent', intent: 'dispute', reply: 'Thanks, we will check.' });
    expect(matchKeyword('whatever the button said', 'dispute', table)).toMatchObject({ intent: 'dispute', via: 'payload' });
    expect(matchKeyword(null, 'moving_now', table)).toMatchObject({ intent: 'moving_now' });

    const other = await api.tenant('Other');
    expect(matchKeyword("I'm parked legally", null, await loadKeywordTable(api.db, other.id))).toBeNull();
    expect(await entry(other, 'im parked legally')).toEqual([]);
    expect(await entry(other, 'stop')).toEqual([expect.objectContaining({ source: 'default' })]);
  });

  it('refuses bad rows with 400 naming the field, writing nothing', async () => {
    const put = (phrase: string, body: unknown) => api.call(t, 'PUT', `/v1/keywords/${encodeURIComponent(phrase)}`, body);
    expect(fieldsOf(await put('x', { action: 'intent' }))).toEqual(['intent']);
    expect(fieldsOf(await put('x', { action: 'opt_out', intent: 'moving_now' }))).toEqual(['intent']);
    expect(fieldsOf(await put('x', { action: 'intent', intent: 'Moving Now' }))).toEqual(['intent']);
    expect(fieldsOf(await put('x', { action: 'none', reply: 'bye' }))).toEqual(['reply']);
    expect(fieldsOf(await put('x', { action: 'help', language: 'english' }))).toEqual(['language']);
    expect(fieldsOf(await put('x', { action: 'shout' }))).toEqual(['action']);
    expect(fieldsOf(await put('x', { action: 'help', colour: 'red' }))).toEqual(['colour']);
    expect(fieldsOf(await put('!!! 🛑', { action: 'help' }))).toEqual(['phrase']);
    // Longer than the router takes for a path parameter.
    expect((await put('a'.repeat(101), { action: 'help' })).status).toBe(414);
    // A phrase that normalisation lengthens (ﬀ is ff) is measured after it.
    expect(() => keywordPhrase('\ufb00'.repeat(60))).toThrow(/at most 100/);
    const res = await put('x', { action: 'intent' });
    expect(res.status).toBe(400);
    expect(await entry(t, 'x')).toEqual([]);
  });

  it('deletes a tenant row, bringing back the default; a default itself is a 409 and an unknown phrase a 404', async () => {
    await api.call(t, 'PUT', '/v1/keywords/help', { action: 'help', reply: 'Acme help: 555-0100' });
    const res = await api.call(t, 'DELETE', '/v1/keywords/HELP');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ phrase: 'help', reply: 'Acme help: 555-0100', source: 'tenant' });
    expect(await entry(t, 'help')).toEqual([expect.objectContaining({ source: 'default', reply: DEFAULT_REPLIES.help.en })]);
    expect(matchKeyword('help', null, await loadKeywordTable(api.db, t.id))!.reply).toBe(DEFAULT_REPLIES.help.en);

    const again = await api.call(t, 'DELETE', '/v1/keywords/help');
    expect(again.status).toBe(409);
    expect(fieldsOf(again)).toEqual(['phrase']);
    expect((await api.call(t, 'DELETE', '/v1/keywords/never-set')).status).toBe(404);
  });

  it('serves the inbound table from a cache that another process changes only after it expires', async () => {
    const me = await api.tenant('Cached');
    await api.call(me, 'PUT', '/v1/keywords/quit', { action: 'none' });
    expect(matchKeyword('quit', null, await loadKeywordTable(api.db, me.id))).toBeNull();
    // Another process's write (here: straight into the table) is not seen until the cache expires.
    await api.db.query("delete from keywords where tenant_id = $1 and phrase = 'quit'", [me.id]);
    expect(matchKeyword('quit', null, await loadKeywordTable(api.db, me.id))).toBeNull();
  });
});
