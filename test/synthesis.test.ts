import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/engine/clock.js';
import { httpLlm } from '../src/engine/llm-client.js';
import { createApiKey } from '../src/store/apikeys.js';
import type { Db } from '../src/store/db.js';
import { createTenant } from '../src/store/tenants.js';
import { FakeLlm } from './fakes/llm.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { freshDb } from './helpers/db.js';

const call = (api: TestApi, t: TestTenant, method: string, url: string, body?: unknown) => api.call(t, method, url, body);

const FOOTER = 'Reply STOP to opt out.';
const CTA = { text: 'See the spring range:', url: 'https://shop.example/spring' };
const GOOD = 'Hi Ana! Since you love gardening: mulch keeps roots cool in spring. See the spring range: https://shop.example/spring';

describe('message synthesis', () => {
  let db: Db;
  let clock: ManualClock;
  let llm: FakeLlm;
  // Two apps on one database: one writing with the fake model, one with the composer only.
  let withModel: TestApi;
  let composerOnly: TestApi;
  let a: TestTenant;
  let b: TestTenant;
  let ana: string;
  let mulch: string;
  let kit: string;

  beforeAll(async () => {
    db = await freshDb();
    clock = new ManualClock('2026-03-02T10:00:00Z');
    llm = await FakeLlm.start();
    withModel = await testApi({ db, clock, llm: httpLlm({ baseUrl: llm.baseUrl, model: 'fake-chat', apiKey: 'sk-test-synthesis', timeoutMs: 300 }) });
    composerOnly = await testApi({ db, clock });
    const tenant = async (name: string) => {
      const t = await createTenant(db, { name, brand_voice: { tone: 'warm, plain-spoken', signature: 'The Greenhouse team', guidelines: 'No exclamation marks in headlines.' } });
      return { id: t.id, key: (await createApiKey(db, t.id, 'test', 'test')).secret };
    };
    a = await tenant('Greenhouse');
    b = await tenant('Other');
    const contact = await call(withModel, a, 'POST', '/v1/contacts', {
      name: 'Ana Souza',
      phone: '+14155550142',
      email: 'ana@example.com',
      locale: 'en-GB',
      attributes: { interests: ['gardening'], purchases: ['seed kit'], recent_topics: ['watering'] },
    });
    expect(contact.status).toBe(201);
    ana = contact.body.id;
    expect((await call(withModel, a, 'POST', '/v1/contacts', { name: 'Bruno Lima', email: 'bruno@example.net' })).status).toBe(201);
    const item = async (body: object) => {
      const r = await call(withModel, a, 'POST', '/v1/knowledge', body);
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    mulch = await item({ kind: 'tip', title: 'Mulch for gardening in spring', body: 'Mulch keeps roots cool. It also saves water.', topics: ['gardening'] });
    kit = await item({ kind: 'tip', title: 'Your seed kit', body: 'Sow the seeds 2 cm deep and keep them moist.', topics: ['seed kit'] });
    await item({ kind: 'update', title: 'Parking works', body: 'The car park is closed on Friday.', topics: ['store'] });
  });

  afterAll(async () => {
    await withModel?.close();
    await composerOnly?.close();
    await llm?.close();
    await db?.close();
  });

  beforeEach(() => {
    llm.requests.length = 0;
  });

  const preview = (app: TestApi, extra: object = {}) => call(app, a, 'POST', '/v1/synthesis/preview', { contact_id: ana, channel: 'sms', cta: CTA, ...extra });

  it("uses a good answer, appends the footer, and records the items and elements; the prompt holds the rules and the contact's context", async () => {
    llm.reply(GOOD);
    const r = await preview(withModel);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ source: 'llm', fallback_reason: null, text: `${GOOD}\n\n${FOOTER}` });
    expect(r.body.items_used.map((i: { id: string }) => i.id).sort()).toEqual([mulch, kit].sort());
    expect(r.body.elements).toEqual(['first_name', 'interest:gardening']);
    expect(r.body.personalization_score).toBe(0.5);

    expect(llm.requests).toHaveLength(1);
    const req = llm.requests[0]!;
    expect(req.model).toBe('fake-chat');
    expect(req.authorization).toBe('Bearer sk-test-synthesis');
    expect(req.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(req.messages[0]!.content).toMatch(/warm, plain-spoken/);
    expect(req.messages[0]!.content).toMatch(/Do not add any fact, offer, price/);
    expect(req.messages[0]!.content).toContain(`under ${480 - 2 - FOOTER.length} characters`);
    expect(req.messages[1]!.content).toContain('Mulch keeps roots cool');
    expect(req.messages[1]!.content).not.toContain('Parking works');
    expect(req.messages[1]!.content).not.toContain('bruno');
  });

  it.each([
    ['too long', () => llm.reply(`Hi Ana! ${'Mulch keeps roots cool. '.repeat(40)}See the spring range: https://shop.example/spring`), /^too_long/],
    ['an invented link and number', () => llm.reply('Hi Ana! Take 30% off at https://deals.example/now. See the spring range: https://shop.example/spring'), /unknown_url: the link https:\/\/deals\.example\/now.*unknown_number: the number 30/],
    ["another contact's e-mail", () => llm.reply('Hi Ana! Bruno (bruno@example.net) loved our mulch. See the spring range: https://shop.example/spring'), /other_contact: mentions another contact \(bruno@example\.net\)/],
    ['no call to action', () => llm.reply('Hi Ana! Mulch keeps roots cool.'), /missing_cta/],
    ['HTTP 500', () => llm.fail({ status: 500 }), /^http_500: /],
    ['a hang past the timeout', () => llm.fail({ hangMs: 3_000 }), /^timeout: no answer within 300 ms/],
  ])('falls back to the composer on %s, saying why', async (_name, script, reason) => {
    script();
    const r = await preview(withModel);
    expect(r.status).toBe(200);
    expect(r.body.source).toBe('composer');
    expect(r.body.fallback_reason).toMatch(reason);
    expect(llm.requests).toHaveLength(1);
    // The composer's message: what the contact is tied to first, then the CTA, signature, footer.
    expect(r.body.text.startsWith('Hi Ana!\n\nFor your seed kit: Your seed kit. Sow the seeds 2 cm deep and keep them moist.')).toBe(true);
    expect(r.body.text.endsWith(`${CTA.text} ${CTA.url}\n\nThe Greenhouse team\n\n${FOOTER}`)).toBe(true);
    expect(r.body.items_used).toEqual([
      { id: kit, title: 'Your seed kit' },
      { id: mulch, title: 'Mulch for gardening in spring' },
    ]);
    expect(r.body.elements).toEqual(['first_name', 'purchase:seed kit', 'interest:gardening']);
  });

  it('without an endpoint configured, composes; no footer on e-mail or non-marketing sends; max_length holds', async () => {
    const r = await preview(composerOnly, { max_length: 160 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ source: 'composer', fallback_reason: null });
    expect([...r.body.text].length).toBeLessThanOrEqual(160);
    expect(r.body.text.endsWith(FOOTER)).toBe(true);
    expect(llm.requests).toHaveLength(0);

    const email = await preview(composerOnly, { channel: 'email' });
    expect(email.body.text).not.toContain('STOP');
    const service = await preview(composerOnly, { marketing: false });
    expect(service.body.text).not.toContain('STOP');
  });

  it('searches the topics it is given instead of the interests', async () => {
    const r = await preview(composerOnly, { topics: ['store'], max_items: 1 });
    expect(r.status).toBe(200);
    expect(r.body.items_used.map((i: { title: string }) => i.title)).toEqual(['Parking works']);
  });

  it("answers 404 for another tenant's contact and 400 naming the field", async () => {
    const other = await call(withModel, b, 'POST', '/v1/synthesis/preview', { contact_id: ana, channel: 'sms', cta: CTA });
    expect(other.status).toBe(404);
    expect(llm.requests).toHaveLength(0);

    const bad = await call(withModel, a, 'POST', '/v1/synthesis/preview', { contact_id: ana, channel: 'fax', max_items: 99 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields.map((f: { field: string }) => f.field).sort()).toEqual(expect.arrayContaining(['channel', 'cta', 'max_items']));

    const short = await preview(composerOnly, { max_length: 60 });
    expect(short.status).toBe(400);
    expect(short.body.error.fields).toEqual([expect.objectContaining({ field: 'max_length', message: expect.stringMatching(/at least 73 /) })]);
  });

  it("ends the message with the tenant's own opt-out footer, which must name an opt-out keyword", async () => {
    const settings = (body: object) => call(composerOnly, a, 'PATCH', '/v1/tenant', { settings: body });
    try {
      const mine = 'Text STOP to leave Greenhouse offers.';
      const set = await settings({ opt_out_footer: { en: mine, es: 'Responde BAJA para salir.' } });
      expect(set.status).toBe(200);
      expect(set.body.settings.opt_out_footer).toEqual({ en: mine, es: 'Responde BAJA para salir.' });
      const r = await preview(composerOnly);
      expect(r.status).toBe(200);
      expect(r.body.text.endsWith(`The Greenhouse team\n\n${mine}`)).toBe(true);
      expect(r.body.text).not.toContain(FOOTER);
      // The model is told the footer's length and its answer gets this footer too.
      llm.reply(GOOD);
      const model = await preview(withModel);
      expect(model.body).toMatchObject({ source: 'llm', text: `${GOOD}\n\n${mine}` });
      expect(llm.requests[0]!.messages[0]!.content).toContain(`under ${480 - 2 - mine.length} characters`);
      // Another tenant keeps the built-in line.
      const bruno = await call(composerOnly, b, 'POST', '/v1/contacts', { name: 'Bea', phone: '+14155550199' });
      expect((await call(composerOnly, b, 'POST', '/v1/synthesis/preview', { contact_id: bruno.body.id, channel: 'sms', cta: CTA })).body.text.endsWith(FOOTER)).toBe(true);

      // Refused, naming the language: no keyword, a keyword in lower case, too long, two lines. Nothing changes.
      const noStop = await settings({ opt_out_footer: { en: 'Tap the link in your profile to opt out.', es: 'Responde BAJA para salir.' } });
      expect(noStop.status).toBe(400);
      expect(noStop.body.error.fields).toEqual([
        expect.objectContaining({ field: 'settings.opt_out_footer.en', message: expect.stringContaining("must name one of the tenant's opt-out keywords in capitals") }),
      ]);
      expect((await settings({ opt_out_footer: { de: 'Antworte stopp zum Abmelden.' } })).body.error.fields[0].field).toBe('settings.opt_out_footer.de');
      const long = await settings({ opt_out_footer: { en: `Reply STOP to opt out. ${'x'.repeat(100)}` } });
      expect(long.status).toBe(400);
      expect(long.body.error.fields).toEqual([expect.objectContaining({ field: 'settings.opt_out_footer.en', message: expect.stringMatching(/120/) })]);
      expect((await settings({ opt_out_footer: { en: 'Reply STOP\nto opt out.' } })).body.error.fields[0].field).toBe('settings.opt_out_footer.en');
      expect((await settings({ opt_out_footer: { EN: 'Reply STOP to opt out.' } })).status).toBe(400);
      expect((await call(composerOnly, a, 'GET', '/v1/tenant')).body.settings.opt_out_footer.en).toBe(mine);
      const admin = { id: '', key: 'test-admin-token-0123456789' };
      const newTenant = (footer: string) => call(composerOnly, admin, 'POST', '/v1/tenants', { name: 'New', settings: { opt_out_footer: { pt: footer } } });
      expect((await newTenant('Responda com um emoji para sair.')).body.error.fields[0].field).toBe('settings.opt_out_footer.pt');
      expect((await newTenant('Responda SAIR para sair.')).status).toBe(201);

      // The tenant's own keywords count: one it added, not one it switched off.
      expect((await call(composerOnly, a, 'PUT', '/v1/keywords/salir', { action: 'opt_out', language: 'es' })).status).toBeLessThan(300);
      expect((await settings({ opt_out_footer: { es: 'Responde SALIR para salir.' } })).status).toBe(200);
      expect((await call(composerOnly, a, 'PUT', '/v1/keywords/stop', { action: 'none' })).status).toBeLessThan(300);
      expect((await settings({ opt_out_footer: { en: mine } })).body.error.fields[0].field).toBe('settings.opt_out_footer.en');
    } finally {
      await call(composerOnly, a, 'DELETE', '/v1/keywords/salir');
      await call(composerOnly, a, 'DELETE', '/v1/keywords/stop');
      expect((await settings({})).status).toBe(200);
    }
  });
});
