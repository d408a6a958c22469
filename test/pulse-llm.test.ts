import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCampaigns } from '../src/engine/campaign-runner.js';
import { httpLlm, type LlmClient } from '../src/engine/llm-client.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { runRefinements } from '../src/engine/pulse-refine.js';
import { simulateReply } from '../src/engine/sandbox-reply.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import { FakeLlm } from './fakes/llm.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { TEST_DATABASE_URL } from './helpers/db.js';
import { allowAnyTime } from './helpers/journeys.js';

/**
 * The Relational Pulse with a chat model configured (docs/campaigns.md, "With a model"): the
 * batch writes the composer's messages held, the worker asks the model outside the batch's
 * transaction (an OpenAI-compatible fake on loopback), checks the answer and releases the
 * message, or opens its review task, or keeps the composer's text with the reason.
 */

let api: TestApi;
let t: TestTenant;
let llm: FakeLlm;
let model: LlmClient;
let providers: ReturnType<typeof sandboxRegistry>;
let worker: Worker;
const MINUTE = 60_000;

const CTA = { text: 'Any questions? Just reply.' };
const TEMPLATE = { name: 'weekly_pulse', language: 'en', parameters: ['{{ vars.synthesis.first_name | default: "there" }}', '{{ vars.synthesis.teaser }}'] };
const FOOTER = 'Reply STOP to opt out.';

interface Context {
  customer: { first_name: string | null };
  knowledge: { title: string }[];
  call_to_action: string;
}
const contextOf = (req: FakeLlm['requests'][number]) => JSON.parse(req.messages[1]!.content.replace(/^Context \(JSON\):\n/, '')) as Context;
/** What a well-behaved model writes for this context. */
const goodAnswer = (c: Context) => `Hi ${c.customer.first_name}! ${c.knowledge[0]!.title}: worth a look this week. ${c.call_to_action}`;

beforeAll(async () => {
  api = await testApi();
  llm = await FakeLlm.start();
  model = httpLlm({ baseUrl: llm.baseUrl, model: 'fake-chat', timeoutMs: 2_000, concurrency: 3 });
});
afterAll(async () => {
  await llm.close();
  await api.close();
});

beforeEach(async () => {
  t = await api.tenant(`Shop ${Math.random()}`);
  await allowAnyTime(api.db, t.id);
  providers = sandboxRegistry();
  worker = new Worker({ db: api.db, clock: api.clock, providers, llm: model });
  llm.requests.length = 0;
  // Ben's model invents a discount; Cy's request is refused; everyone else gets a good answer.
  llm.respondWith((req) => {
    const c = contextOf(req);
    if (c.customer.first_name === 'Ben') return `Hi Ben! Take 30% off this week. ${c.call_to_action}`;
    if (c.customer.first_name === 'Cy') return { status: 400 };
    return goodAnswer(c);
  });
  await knowledge('Automation tip', 'Set up automated order status updates. It saves hours.', ['tips']);
});

let phoneSeq = 0;
/** A contact with pulse enabled, WhatsApp consent for the pulse and (unless told otherwise) an open 24-hour window. */
async function contact(name: string, opts: { time_zone?: string; window?: boolean } = {}): Promise<string> {
  const phone = `+1415777${String(1000 + phoneSeq++).padStart(4, '0')}`;
  const c = await createContact(api.db, t.id, { phone, name, time_zone: opts.time_zone, attributes: { pulse: { enabled: true } } }, {}, api.clock.now());
  await api.db.query(
    `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
     values ($1, $2, 'whatsapp', 'pulse', 'granted', 'express', gen_random_uuid(), '2020-01-01T00:00:00Z')`,
    [t.id, c.id],
  );
  if (opts.window !== false) await simulateReply(api.db, t.id, { channel: 'whatsapp', contact_id: c.id, text: 'hi' }, api.clock.now());
  return c.id;
}

async function knowledge(title: string, body: string, topics: string[]): Promise<void> {
  const res = await api.call(t, 'POST', '/v1/knowledge', { kind: 'tip', title, body, topics });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function pulse(extra: Record<string, unknown> = {}): Promise<string> {
  const res = await api.call(t, 'POST', '/v1/campaigns', {
    name: `pulse-${Math.random()}`,
    type: 'pulse',
    action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE } },
    schedule: { at: api.clock.now().toISOString() },
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect((await api.call(t, 'POST', `/v1/campaigns/${res.body.id}/start`)).status).toBe(200);
  return res.body.id;
}

interface MessageRow {
  id: string;
  contact_id: string;
  status: string;
  reason: string | null;
  due_at: Date | null;
  held: boolean;
  text: string;
}
const messagesOf = async (campaignId: string) =>
  (
    await api.db.query<MessageRow>(
      `select m.id, m.contact_id, m.status, m.reason, m.due_at, m.content ? 'refine' as held, m.content->'vars'->'synthesis'->>'text' as text
         from campaign_recipients r join messages m on m.id = r.message_id where r.campaign_id = $1`,
      [campaignId],
    )
  ).rows;
const byContact = async (campaignId: string) => new Map((await messagesOf(campaignId)).map((m) => [m.contact_id, m]));

interface SynthRow {
  contact_id: string;
  source: string;
  fallback_reason: string | null;
  elements: string[];
  personalization_score: number;
}
const synthesized = async (campaignId: string) =>
  new Map(
    (await api.db.query<SynthRow>('select contact_id, source, fallback_reason, elements, personalization_score from synthesized_messages where campaign_id = $1', [campaignId])).rows.map((r) => [
      r.contact_id,
      r,
    ]),
  );
const sentBody = (messageId: string) => providers.sandbox.sent.filter((s) => s.message.id === messageId).map((s) => s.message.body);
const pending = async () => Number((await api.db.query<{ n: string }>('select count(*) as n from pulse_refinements where tenant_id = $1', [t.id])).rows[0]!.n);

describe('refining with the model', () => {
  it("writes the composer's messages held, then sends the model's answer where it passes the checks and the composer's text where not", async () => {
    const [ana, ben, cy] = [await contact('Ana Diaz'), await contact('Ben'), await contact('Cy')];
    const id = await pulse();

    // The batch: inside its transaction no model is asked; the messages wait, held.
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    const before = await byContact(id);
    expect([...before.values()].map((m) => [m.status, m.due_at, m.held])).toEqual([
      ['queued', null, true],
      ['queued', null, true],
      ['queued', null, true],
    ]);
    expect(await pending()).toBe(3);
    expect(llm.requests).toHaveLength(0);
    const composed = before.get(ben)!.text;
    expect(composed).toContain(CTA.text);

    await worker.drain();
    expect(llm.requests).toHaveLength(3);
    expect(llm.requests.every((r) => r.model === 'fake-chat' && /Use only facts found in the context/.test(r.messages[0]!.content))).toBe(true);
    expect(await pending()).toBe(0);

    const after = await byContact(id);
    const synth = await synthesized(id);
    expect(sentBody(after.get(ana)!.id)).toEqual([`Hi Ana! Automation tip: worth a look this week. ${CTA.text}\n\n${FOOTER}`]);
    expect(synth.get(ana)).toMatchObject({ source: 'llm', fallback_reason: null });
    expect(synth.get(ana)!.elements).toContain('first_name');
    expect(synth.get(ana)!.personalization_score).toBeGreaterThan(0);
    // The invented discount and the refused request: the composer's text goes, with the reason.
    expect(sentBody(after.get(ben)!.id)).toEqual([composed]);
    expect(synth.get(ben)).toMatchObject({ source: 'composer', fallback_reason: expect.stringMatching(/unknown_number: the number 30/) });
    expect(synth.get(cy)).toMatchObject({ source: 'composer', fallback_reason: expect.stringMatching(/^http_400: /) });
    expect(sentBody(after.get(cy)!.id)).toHaveLength(1);
    expect([...after.values()].every((m) => m.status === 'sent' && !m.held)).toBe(true);
  });

  it("opens review tasks on the model's answer when the tenant reviews synthesized messages", async () => {
    expect((await api.call(t, 'PATCH', '/v1/tenant', { settings: { synthesis_review: true } })).status).toBe(200);
    const [ana, dee] = [await contact('Ana'), await contact('Dee')];
    const id = await pulse();
    await worker.drain();
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(0);

    const tasks = (await api.call(t, 'GET', '/v1/reviews?status=pending')).body.data as { id: string; contact_id: string; draft: string; sources: { source: string } }[];
    expect(tasks).toHaveLength(2);
    const task = (c: string) => tasks.find((x) => x.contact_id === c)!;
    expect(task(ana).draft).toBe(`Hi Ana! Automation tip: worth a look this week. ${CTA.text}\n\n${FOOTER}`);
    expect(task(ana).sources.source).toBe('llm');
    const messages = await byContact(id);
    expect(messages.get(dee)).toMatchObject({ status: 'queued', due_at: null, held: false });

    expect((await api.call(t, 'POST', `/v1/reviews/${task(ana).id}/approve`)).status).toBe(200);
    await worker.drain();
    expect(sentBody(messages.get(ana)!.id)).toEqual([task(ana).draft]);
    expect(sentBody(messages.get(dee)!.id)).toHaveLength(0);
  });

  it('releases each message at its throttle slot, not when the model answered', async () => {
    const ids = [await contact('Ana'), await contact('Dee'), await contact('Eli')];
    const start = api.clock.now().getTime();
    const id = await pulse({ throttle: { per_minute: 1 } });
    await worker.drain();
    const messages = await messagesOf(id);
    expect(messages.filter((m) => m.status === 'queued').map((m) => m.due_at!.getTime() - start).sort((a, b) => a - b)).toEqual([MINUTE, 2 * MINUTE]);
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(1);
    api.clock.advance(2 * MINUTE);
    await worker.drain();
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id).map((s) => s.message.body)).toHaveLength(ids.length);
  });

  it('keeps a refined message held while its campaign is paused, and forgets a stopped one without asking the model', async () => {
    await contact('Ana');
    const paused = await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    expect((await api.call(t, 'POST', `/v1/campaigns/${paused}/pause`)).status).toBe(200);
    // Resume before the model answered: the message stays held for it.
    expect((await api.call(t, 'POST', `/v1/campaigns/${paused}/resume`)).status).toBe(200);
    expect((await messagesOf(paused))[0]).toMatchObject({ due_at: null, held: true });
    expect((await api.call(t, 'POST', `/v1/campaigns/${paused}/pause`)).status).toBe(200);
    await worker.drain();
    expect(llm.requests).toHaveLength(1);
    expect((await messagesOf(paused))[0]).toMatchObject({ status: 'queued', due_at: null, held: false, text: expect.stringMatching(/^Hi Ana! Automation tip/) });
    expect((await api.call(t, 'POST', `/v1/campaigns/${paused}/resume`)).status).toBe(200);
    await worker.drain();
    expect(sentBody((await messagesOf(paused))[0]!.id)[0]).toMatch(/^Hi Ana! Automation tip/);

    // Next week, a second tenant-wide pulse; stopped before the model was asked.
    api.clock.advance(7 * 24 * 60 * MINUTE);
    const stopped = await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    expect(await pending()).toBe(1);
    expect((await api.call(t, 'POST', `/v1/campaigns/${stopped}/stop`)).status).toBe(200);
    llm.requests.length = 0;
    await worker.drain();
    expect(llm.requests).toHaveLength(0);
    expect(await pending()).toBe(0);
    expect((await messagesOf(stopped))[0]).toMatchObject({ status: 'cancelled', reason: 'campaign stopped' });
  });

  it("cancels a recipient-local message whose moment passed while it waited for the model, and sends the others at their local time", async () => {
    api.clock.set('2026-03-01T20:00:00Z');
    const tokyo = await contact('Ana', { time_zone: 'Asia/Tokyo' });
    const la = await contact('Dee', { time_zone: 'America/Los_Angeles', window: false });
    const id = await pulse({ schedule: { local_at: '2026-03-02T09:00' } });
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    expect(await pending()).toBe(2);

    // The model's worker comes back at 08:00 UTC: Tokyo's 09:00 has gone, Los Angeles' is ahead.
    api.clock.set('2026-03-02T08:00:00Z');
    await worker.drain();
    const m = await byContact(id);
    expect(m.get(tokyo)).toMatchObject({ status: 'cancelled', reason: 'local_time_passed' });
    expect(m.get(la)).toMatchObject({ status: 'queued', held: false, due_at: new Date('2026-03-02T17:00:00Z') });
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id)).toHaveLength(0);

    api.clock.set('2026-03-02T17:00:00Z');
    await worker.drain();
    // Outside the window: the approved template goes, with the model's text kept on the record.
    expect(providers.sandbox.sent.filter((s) => s.message.id === m.get(la)!.id)).toHaveLength(1);
    expect((await byContact(id)).get(la)!.text).toMatch(/^Hi Dee! Automation tip/);
  });

  it("waits out another worker's lease, and after three abandoned attempts sends the composer's text", async () => {
    const [ana, dee] = [await contact('Ana'), await contact('Dee')];
    const id = await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    const m = await byContact(id);
    // Ana's row: taken three times by workers that died. Dee's: leased by a live one.
    await api.db.query(`update pulse_refinements set attempts = 3, lease_until = $2 where message_id = $1`, [m.get(ana)!.id, new Date(api.clock.now().getTime() - 1)]);
    await api.db.query(`update pulse_refinements set attempts = 1, lease_until = $2 where message_id = $1`, [m.get(dee)!.id, new Date(api.clock.now().getTime() + MINUTE)]);
    await worker.drain();
    expect(llm.requests).toHaveLength(0);
    expect(sentBody(m.get(ana)!.id)).toEqual([m.get(ana)!.text]);
    expect((await synthesized(id)).get(ana)).toMatchObject({ source: 'composer', fallback_reason: 'abandoned after 3 attempts' });
    expect(sentBody(m.get(dee)!.id)).toHaveLength(0);

    api.clock.advance(MINUTE);
    await worker.drain();
    expect(llm.requests).toHaveLength(1);
    expect(sentBody(m.get(dee)!.id)[0]).toMatch(/^Hi Dee! Automation tip/);
  });

  it("asks a rate-limited or failing model again later, and keeps the composer's text after the third failure", async () => {
    const [ana, dee] = [await contact('Ana'), await contact('Dee')];
    let limited = 1;
    let down = 3;
    llm.respondWith((req) => {
      const c = contextOf(req);
      if (c.customer.first_name === 'Ana' && limited-- > 0) return { status: 429 };
      if (c.customer.first_name === 'Dee' && down-- > 0) return { status: 503 };
      return goodAnswer(c);
    });
    const id = await pulse();
    await worker.drain();
    expect(llm.requests).toHaveLength(2);
    const m = await byContact(id);
    expect([m.get(ana)!.held, m.get(dee)!.held]).toEqual([true, true]);

    api.clock.advance(30_000);
    await worker.drain();
    expect(sentBody(m.get(ana)!.id)[0]).toMatch(/^Hi Ana! Automation tip/);
    expect(sentBody(m.get(dee)!.id)).toHaveLength(0);

    api.clock.advance(120_000);
    await worker.drain();
    expect(llm.requests).toHaveLength(5);
    expect(sentBody(m.get(dee)!.id)).toEqual([m.get(dee)!.text]);
    expect((await synthesized(id)).get(dee)).toMatchObject({ source: 'composer', fallback_reason: expect.stringMatching(/^http_503: /) });
    expect((await synthesized(id)).get(ana)).toMatchObject({ source: 'llm' });
  });

  it('asks the model once per message when several workers refine at the same time', async () => {
    for (let i = 0; i < 12; i++) await contact(`Guest${i}`);
    await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    const now = () => api.clock.now();
    const sweeps = await Promise.all([runRefinements(api.db, now, model), runRefinements(api.db, now, model), runRefinements(api.db, now, model)]);
    const rest = await runRefinements(api.db, now, model, { concurrency: 12 });
    const claimed = sweeps.reduce((n, s) => n + s.claimed, rest.claimed);
    expect(claimed).toBe(12);
    expect(llm.requests).toHaveLength(12);
    expect(new Set(llm.requests.map((r) => contextOf(r).customer.first_name)).size).toBe(12);
    expect(await pending()).toBe(0);
  });

  it('takes the review setting as it is when the model answers, not as it was when the batch was written', async () => {
    const ana = await contact('Ana');
    const id = await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    expect((await api.call(t, 'PATCH', '/v1/tenant', { settings: { synthesis_review: true } })).status).toBe(200);
    await worker.drain();
    const tasks = (await api.call(t, 'GET', '/v1/reviews?status=pending')).body.data as { contact_id: string; draft: string }[];
    expect(tasks.map((x) => [x.contact_id, x.draft.slice(0, 20)])).toEqual([[ana, 'Hi Ana! Automation t']]);
    expect((await byContact(id)).get(ana)).toMatchObject({ status: 'queued', due_at: null, held: false });
  });

  it("releases, as composed, messages a worker without a model finds waiting for one for half an hour", async () => {
    const ana = await contact('Ana');
    const id = await pulse();
    await runCampaigns(api.db, api.clock.now(), { refine: true });
    const composed = (await byContact(id)).get(ana)!.text;
    const plain = new Worker({ db: api.db, clock: api.clock, providers });
    await plain.drain();
    expect((await byContact(id)).get(ana)).toMatchObject({ held: true, due_at: null });
    api.clock.advance(31 * MINUTE);
    await plain.drain();
    expect(sentBody((await byContact(id)).get(ana)!.id)).toEqual([composed]);
    expect((await synthesized(id)).get(ana)).toMatchObject({ source: 'composer', fallback_reason: expect.stringMatching(/^no model configured/) });
    expect(llm.requests).toHaveLength(0);
    expect(await pending()).toBe(0);
  });
});

/** Pause and resume take the campaign row first; a sweep settling meanwhile must see what they committed. */
describe.skipIf(!TEST_DATABASE_URL)('a sweep settling while the campaign changes status (PostgreSQL)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  for (const [action, from, to] of [
    ['pause', 'running', 'paused'],
    ['resume', 'paused', 'running'],
  ] as const) {
    it(`waits for a ${action} in progress and honours it`, async () => {
      const ana = await contact('Ana');
      const id = await pulse();
      await runCampaigns(api.db, api.clock.now(), { refine: true });
      if (from === 'paused') expect((await api.call(t, 'POST', `/v1/campaigns/${id}/pause`)).status).toBe(200);
      const message = (await byContact(id)).get(ana)!.id;
      let sweep: ReturnType<typeof runRefinements> | undefined;
      await api.db.transaction(async (tx) => {
        // What changeCampaignStatus does, with the sweep started between its first lock and its commit.
        await tx.query('select id from campaigns where id = $1 for update', [id]);
        await tx.query(`update messages set due_at = null where id = $1`, [message]);
        sweep = runRefinements(api.db, () => api.clock.now(), model);
        await sleep(400);
        await tx.query(`update campaigns set status = $2 where id = $1`, [id, to]);
      });
      expect((await sweep!).claimed).toBe(1);
      const m = (await byContact(id)).get(ana)!;
      expect(m.held).toBe(false);
      expect(m.text).toMatch(/^Hi Ana! Automation tip/);
      if (to === 'paused') expect(m.due_at).toBeNull();
      else expect(m.due_at).toEqual(api.clock.now());
    });
  }
});
