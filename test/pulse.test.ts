import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toneArm } from '../src/core/pulse.js';
import { runCampaigns } from '../src/engine/campaign-runner.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { simulateReply } from '../src/engine/sandbox-reply.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import { newId } from '../src/store/ids.js';
import { recordStatuses, type StatusUpdate } from '../src/store/message-status.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { allowAnyTime } from './helpers/journeys.js';

/** The Relational Pulse end to end: the API, the campaign runner in the worker loop, the dispatcher and the sandbox. */

let api: TestApi;
let t: TestTenant;
let providers: ReturnType<typeof sandboxRegistry>;
let worker: Worker;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  api = await testApi();
});
afterAll(() => api.close());

beforeEach(async () => {
  t = await api.tenant(`Shop ${Math.random()}`);
  await allowAnyTime(api.db, t.id);
  providers = sandboxRegistry();
  worker = new Worker({ db: api.db, clock: api.clock, providers });
});

const CTA = { text: 'Any questions? Just reply.' };
const TEMPLATE = { name: 'weekly_pulse', language: 'en', parameters: ['{{ vars.synthesis.first_name | default: "there" }}', '{{ vars.synthesis.teaser }}'] };
const FOOTER = 'Reply STOP to opt out.';

let phoneSeq = 0;
interface ContactSpec {
  name?: string;
  attributes?: Record<string, unknown>;
  /** The consent topic granted on WhatsApp; null for none. */
  consent?: 'pulse' | 'all' | null;
}
/** A contact with a phone, pulse enabled and WhatsApp consent for the pulse unless told otherwise. */
async function contact(spec: ContactSpec = {}): Promise<string> {
  const phone = `+1415666${String(1000 + phoneSeq++).padStart(4, '0')}`;
  const attributes = spec.attributes ?? { pulse: { enabled: true } };
  const c = await createContact(api.db, t.id, { phone, name: spec.name ?? `Contact ${phoneSeq}`, attributes }, {}, api.clock.now());
  const topic = spec.consent === undefined ? 'pulse' : spec.consent;
  if (topic) {
    await api.db.query(
      `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
       values ($1, $2, 'whatsapp', $3, 'granted', 'express', gen_random_uuid(), '2020-01-01T00:00:00Z')`,
      [t.id, c.id, topic],
    );
  }
  return c.id;
}

async function knowledge(title: string, body: string, topics: string[], tags: string[] = []): Promise<string> {
  const res = await api.call(t, 'POST', '/v1/knowledge', { kind: 'tip', title, body, topics, tags });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function pulse(pulseSpec: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await api.call(t, 'POST', '/v1/campaigns', {
    name: `pulse-${Math.random()}`,
    type: 'pulse',
    action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE, ...pulseSpec } },
    schedule: { at: api.clock.now().toISOString() },
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const started = await api.call(t, 'POST', `/v1/campaigns/${res.body.id}/start`);
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  return res.body.id;
}

interface Row {
  contact_id: string;
  outcome: string;
  reason: string | null;
  message_id: string | null;
  occurrence_id: string;
}
const recipients = async (campaignId: string) =>
  (await api.db.query<Row>('select contact_id, outcome, reason, message_id, occurrence_id from campaign_recipients where campaign_id = $1 order by occurrence_id, seq', [campaignId])).rows;

interface Synth {
  message_id: string;
  contact_id: string;
  items: { id: string; title: string }[];
  elements: string[];
  personalization_score: number;
  source: string;
  variant: string | null;
  tone: string | null;
  pulse_week: string;
}
const synthesized = async (campaignId: string) =>
  (await api.db.query<Synth>('select * from synthesized_messages where campaign_id = $1 order by contact_id', [campaignId])).rows;

const sentTo = (id: string) => providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id && s.message.to !== null && s.message.id === id);
const sentMessages = () => providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id);

describe('targeting', () => {
  it('reaches contacts with WhatsApp consent, pulse enabled, a matching topic and enough engagement, with items chosen for each', async () => {
    const tips = await knowledge('Automation tip for your workflow', 'Set up automated order status updates. It saves hours.', ['tips', 'automation']);
    const stock = await knowledge('Real-time inventory checks', 'Ask whether a product is in stock. The answer is live.', ['product_updates', 'inventory']);
    await knowledge('Unrelated news', 'Something else entirely.', ['other']);

    const a = await contact({ name: 'Ana Diaz', attributes: { pulse: { enabled: true, topics: ['tips'] }, interests: ['automation'] } });
    await contact({ consent: null, attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    await contact({ attributes: { pulse: { enabled: false, topics: ['tips'] } } });
    await contact({ attributes: { pulse: { topics: ['tips'] } } });
    await contact({ attributes: { pulse: { enabled: true, topics: ['other'] } } });
    const e = await contact({ name: 'Eve', attributes: { pulse: { enabled: true }, interests: ['inventory', 'product_updates'] } });
    const h = await contact({ name: 'Hal', consent: 'all', attributes: { pulse: { enabled: true, topics: ['product_updates'] } } });
    // Engagement: f was sent two messages lately and did nothing with them (score 0); g answered (score 1).
    const f = await contact({ attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    const g = await contact({ name: 'Gus', attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    const lastWeek = new Date(api.clock.now().getTime() - 7 * DAY);
    for (const [who, replied] of [[f, null], [f, null], [g, lastWeek]] as const) {
      await api.db.query(
        `insert into messages (id, tenant_id, contact_id, kind, channel, status, idempotency_key, content, created_at, updated_at, sent_at, replied_at)
         values ($1, $2, $3, 'send', 'sms', 'sent', $4, '{}', $5, $5, $5, $6)`,
        [newId(), t.id, who, `earlier-${newId()}`, lastWeek, replied],
      );
    }

    const id = await pulse({ topics: ['tips', 'product_updates'], min_engagement: 0.3, max_items: 2 });
    await worker.drain();

    const rows = await recipients(id);
    expect(rows.map((r) => r.contact_id).sort()).toEqual([a, e, h, g].sort());
    expect(rows.every((r) => r.outcome === 'queued' && r.message_id)).toBe(true);
    const { rows: messages } = await api.db.query<{ contact_id: string; channel: string; topic: string; idempotency_key: string; status: string }>(
      `select contact_id, channel, topic, idempotency_key, status from messages where id = any($1::uuid[])`,
      [rows.map((r) => r.message_id)],
    );
    for (const m of messages) {
      expect(m).toMatchObject({ channel: 'whatsapp', topic: 'pulse', idempotency_key: `pulse:2026-W10:${m.contact_id}`, status: 'sent' });
    }

    const synth = await synthesized(id);
    expect(synth).toHaveLength(4);
    const of = (c: string) => synth.find((s) => s.contact_id === c)!;
    for (const s of synth) {
      expect(s.source).toBe('composer');
      expect(s.pulse_week).toBe('2026-W10');
      expect(s.items.length).toBeGreaterThan(0);
      expect(s.items.length).toBeLessThanOrEqual(2);
      // Only items of the pulse's topics.
      expect(s.items.every((i) => i.id === tips || i.id === stock)).toBe(true);
    }
    expect(of(a).items[0]).toEqual({ id: tips, title: 'Automation tip for your workflow' });
    expect(of(a).elements).toEqual(expect.arrayContaining(['first_name', 'interest:automation']));
    expect(of(a).personalization_score).toBe(1);
    expect(of(e).items[0]!.id).toBe(stock);
    expect(of(h).items[0]!.id).toBe(stock);
  });

  it("takes the tenant's pulse_min_engagement when the pulse sets none, and the pulse's own over it", async () => {
    await knowledge('A tip', 'Do this. Then that.', ['tips']);
    const idle = await contact({ attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    const keen = await contact({ attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    const lastWeek = new Date(api.clock.now().getTime() - 7 * DAY);
    for (const [who, replied] of [[idle, null], [keen, lastWeek]] as const) {
      await api.db.query(
        `insert into messages (id, tenant_id, contact_id, kind, channel, status, idempotency_key, content, created_at, updated_at, sent_at, replied_at)
         values ($1, $2, $3, 'send', 'sms', 'sent', $4, '{}', $5, $5, $5, $6)`,
        [newId(), t.id, who, `earlier-${newId()}`, lastWeek, replied],
      );
    }
    const set = await api.call(t, 'PATCH', '/v1/tenant', { settings: { pulse_min_engagement: 0.5 } });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const floor = await pulse({});
    await worker.drain();
    expect((await recipients(floor)).map((r) => r.contact_id)).toEqual([keen]);
    const bad = await api.call(t, 'PATCH', '/v1/tenant', { settings: { pulse_min_engagement: 2 } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('pulse_min_engagement');
  });

  it('narrows an explicit list of contacts by the same rules', async () => {
    await knowledge('A tip', 'Do this. Then that.', ['tips']);
    const yes = await contact();
    const no = await contact({ consent: null });
    const id = await pulse({}, { audience: { contact_ids: [yes, no] } });
    await worker.drain();
    expect((await recipients(id)).map((r) => r.contact_id)).toEqual([yes]);
  });

  it('refuses a pulse on another type, a second action, or a non-pulse without an audience, naming the field', async () => {
    const wrongType = await api.call(t, 'POST', '/v1/campaigns', { name: 'x', type: 'promotional', audience: { contact_ids: [newId()] }, action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE } } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.fields.map((f: { field: string }) => f.field)).toContain('action.pulse');
    const noAudience = await api.call(t, 'POST', '/v1/campaigns', { name: 'y', type: 'promotional', action: { send: { channel: 'sms', content: { body: 'hi' } } } });
    expect(noAudience.status).toBe(400);
    expect(noAudience.body.error.fields[0].field).toBe('audience');
    const badSplit = await api.call(t, 'POST', '/v1/campaigns', {
      name: 'z',
      type: 'pulse',
      action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE, tone_test: { variants: [{ name: 'a', tone: 'warm' }, { name: 'b', tone: 'crisp' }], split: [100] } } },
    });
    expect(badSplit.status).toBe(400);
    expect(badSplit.body.error.fields[0].field).toBe('action.pulse.tone_test.split');
    const created = await api.call(t, 'POST', '/v1/campaigns', { name: 'w', type: 'pulse', action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE } } });
    expect(created.status).toBe(201);
    expect(created.body.audience).toEqual({});
    const retyped = await api.call(t, 'PATCH', `/v1/campaigns/${created.body.id}`, { type: 'promotional' });
    expect(retyped.status).toBe(400);
  });
});

describe('the WhatsApp window', () => {
  it('sends the synthesized text inside the window and the template with its parameters outside it', async () => {
    await knowledge('Mulch for gardening in spring', 'Mulch keeps roots cool. Spread it thin.', ['gardening']);
    const open = await contact({ name: 'Ana', attributes: { pulse: { enabled: true }, interests: ['gardening'] } });
    const closed = await contact({ name: 'Ben', attributes: { pulse: { enabled: true } } });
    await simulateReply(api.db, t.id, { channel: 'whatsapp', contact_id: open, text: 'hello there' }, api.clock.now());

    const id = await pulse({});
    await worker.drain();
    const rows = await recipients(id);
    const byContact = new Map(rows.map((r) => [r.contact_id, r.message_id!]));
    const text = (await synthesized(id)).find((s) => s.contact_id === open)!;
    expect(text.items[0]!.title).toBe('Mulch for gardening in spring');

    const [inWindow] = sentTo(byContact.get(open)!);
    expect(inWindow!.message.whatsapp_template).toBeUndefined();
    expect(inWindow!.message.body).toMatch(/^Hi Ana!\n\nSince you're into gardening: Mulch for gardening in spring\. Mulch keeps roots cool\.\n\nAny questions\? Just reply\./);
    expect(inWindow!.message.body!.endsWith(FOOTER)).toBe(true);

    const [outside] = sentTo(byContact.get(closed)!);
    expect(outside!.message.body).toBeUndefined();
    expect(outside!.message.whatsapp_template).toEqual({ name: 'weekly_pulse', language: 'en', parameters: ['Ben', 'Mulch for gardening in spring'] });
  });

  it('sends a text holding Liquid as it is, never as a template', async () => {
    await knowledge('Use {{ braces }} in your notes', 'Write {% raw %} and {{ x }} freely.', ['notes']);
    const who = await contact({ name: 'Cy', attributes: { pulse: { enabled: true }, interests: ['notes'] } });
    await simulateReply(api.db, t.id, { channel: 'whatsapp', contact_id: who, text: 'hi' }, api.clock.now());
    await pulse({});
    await worker.drain();
    const [sent] = sentMessages();
    expect(sent!.message.body).toContain('Use {{ braces }} in your notes. Write {% raw %} and {{ x }} freely.');
  });
});

describe('at most one pulse a week', () => {
  it('skips contacts already sent this week, by a second occurrence or another pulse campaign, and prefers new items next week', async () => {
    const items = [
      await knowledge('Tip one', 'First. More.', ['tips']),
      await knowledge('Tip two', 'Second. More.', ['tips']),
      await knowledge('Tip three', 'Third. More.', ['tips']),
      await knowledge('Tip four', 'Fourth. More.', ['tips']),
    ];
    const a = await contact({ attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    const b = await contact({ attributes: { pulse: { enabled: true, topics: ['tips'] } } });
    // Mondays and Tuesdays at 11:00 UTC; the clock starts on Monday 2 March 2026 at 10:00.
    const id = await pulse({ max_items: 2 }, { schedule: { cron: '0 11 * * 1,2', zone: 'UTC' } });
    api.clock.advance(HOUR);
    await worker.drain();
    expect(sentMessages()).toHaveLength(2);

    api.clock.advance(DAY);
    await worker.drain();
    const other = await pulse({});
    await worker.drain();
    expect(sentMessages()).toHaveLength(2);
    const rows = await recipients(id);
    const occurrences = [...new Set(rows.map((r) => r.occurrence_id))];
    expect(occurrences).toHaveLength(2);
    expect(rows.filter((r) => r.occurrence_id === occurrences[1]).map((r) => [r.outcome, r.reason])).toEqual([
      ['skipped', 'weekly_cap'],
      ['skipped', 'weekly_cap'],
    ]);
    expect((await recipients(other)).map((r) => r.reason)).toEqual(['weekly_cap', 'weekly_cap']);

    // The next Monday is another week: sent again, with the two items not sent last time.
    api.clock.advance(6 * DAY);
    await worker.drain();
    expect(sentMessages()).toHaveLength(4);
    const synth = await synthesized(id);
    for (const who of [a, b]) {
      const [first, second] = synth.filter((s) => s.contact_id === who).sort((x, y) => x.pulse_week.localeCompare(y.pulse_week));
      expect(first!.pulse_week).toBe('2026-W10');
      expect(second!.pulse_week).toBe('2026-W11');
      const before = new Set(first!.items.map((i) => i.id));
      expect(second!.items.some((i) => before.has(i.id))).toBe(false);
      expect([...first!.items, ...second!.items].map((i) => i.id).sort()).toEqual([...items].sort());
    }
  });
});

describe('back-off', () => {
  it('sends a contact who left its last pulses unanswered only every few weeks, and keeps sending one who answers', async () => {
    await knowledge('Weekly tip', 'Keep going. It works.', ['tips']);
    const silent = await contact();
    const chatty = await contact();
    const id = await pulse({ backoff: { after_unanswered: 2, every_weeks: 3 } }, { schedule: { cron: '0 11 * * 1', zone: 'UTC' } });
    const outcome = new Map<string, string[]>();
    for (let week = 0; week < 6; week++) {
      api.clock.advance(week === 0 ? HOUR : 7 * DAY);
      await worker.drain();
      const rows = await recipients(id);
      const latest = rows.filter((r) => r.occurrence_id === rows[rows.length - 1]!.occurrence_id);
      for (const r of latest) {
        outcome.set(r.contact_id, [...(outcome.get(r.contact_id) ?? []), r.reason ?? 'sent']);
        if (r.contact_id === chatty && r.message_id) {
          await simulateReply(api.db, t.id, { channel: 'whatsapp', contact_id: chatty, text: 'thanks!', message_id: r.message_id }, api.clock.now());
        }
      }
    }
    // Weeks 10 and 11 unanswered; held in 12 and 13; 14 is three weeks after 11; held again in 15.
    expect(outcome.get(silent)).toEqual(['sent', 'sent', 'backoff', 'backoff', 'sent', 'backoff']);
    expect(outcome.get(chatty)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent', 'sent']);
  });
});

describe('human review', () => {
  it('holds pulses for review: approve and edit send the final text, reject cancels, a resume does not release an undecided one', async () => {
    await knowledge('Weekly tip', 'Keep going. It works.', ['tips']);
    const settings = await api.call(t, 'PATCH', '/v1/tenant', { settings: { synthesis_review: true } });
    expect(settings.status).toBe(200);
    const [p, q, r, s] = [await contact({ name: 'Pia' }), await contact({ name: 'Quin' }), await contact({ name: 'Rae' }), await contact({ name: 'Sol' })];
    for (const who of [p, q, r, s]) await simulateReply(api.db, t.id, { channel: 'whatsapp', contact_id: who, text: 'hi' }, api.clock.now());
    // One a minute: the occurrence stays running, so the campaign can be paused.
    const id = await pulse({}, { throttle: { per_minute: 1 } });
    await worker.drain();
    expect(sentMessages()).toHaveLength(0);

    const rows = await recipients(id);
    const message = new Map(rows.map((x) => [x.contact_id, x.message_id!]));
    const { rows: held } = await api.db.query<{ id: string; status: string; due_at: Date | null }>('select id, status, due_at from messages where id = any($1::uuid[])', [[...message.values()]]);
    expect(held.every((m) => m.status === 'queued' && m.due_at === null)).toBe(true);
    const tasks = (await api.call(t, 'GET', '/v1/reviews?status=pending')).body.data as { id: string; contact_id: string; draft: string; subject: Record<string, string>; sources: { items_used: unknown[] } }[];
    expect(tasks).toHaveLength(4);
    const task = (c: string) => tasks.find((x) => x.contact_id === c)!;
    expect(task(p).subject).toEqual({ campaign_id: id, occurrence: rows[0]!.occurrence_id, message_id: message.get(p) });
    expect(task(p).sources.items_used).toHaveLength(1);

    // Pause and resume: the messages still waiting for review stay held.
    expect((await api.call(t, 'POST', `/v1/campaigns/${id}/pause`)).status).toBe(200);
    expect((await api.call(t, 'POST', `/v1/campaigns/${id}/resume`)).status).toBe(200);
    await worker.drain();
    expect(sentMessages()).toHaveLength(0);

    expect((await api.call(t, 'POST', `/v1/reviews/${task(p).id}/approve`)).status).toBe(200);
    const edited = `Hi Quin, a short note this week. ${CTA.text}\n\n${FOOTER}`;
    expect((await api.call(t, 'POST', `/v1/reviews/${task(q).id}/edit`, { text: edited })).status).toBe(200);
    expect((await api.call(t, 'POST', `/v1/reviews/${task(r).id}/reject`, { reason: 'not this week' })).status).toBe(200);
    // Approved, a message falls due at its throttle slot (one a minute, in recipient order), not all at once.
    const { rows: released } = await api.db.query<{ id: string; due_at: Date }>('select id, due_at from messages where id = any($1::uuid[])', [[message.get(p), message.get(q)]]);
    const slot = (c: string) => api.clock.now().getTime() + rows.findIndex((x) => x.contact_id === c) * 60_000;
    expect(new Map(released.map((m) => [m.id, m.due_at.getTime()]))).toEqual(new Map([p, q].map((c) => [message.get(c), slot(c)])));
    api.clock.advance(4 * 60_000);
    await worker.drain();

    expect(sentTo(message.get(p)!)[0]!.message.body).toBe(task(p).draft);
    expect(sentTo(message.get(q)!)[0]!.message.body).toBe(edited);
    expect(sentTo(message.get(r)!)).toHaveLength(0);
    expect(sentTo(message.get(s)!)).toHaveLength(0);
    const { rows: rejected } = await api.db.query<{ status: string; reason: string; history: string[] }>(
      `select m.status, m.reason, array(select st.status from message_status st where st.message_id = m.id order by st.id) as history from messages m where m.id = $1`,
      [message.get(r)],
    );
    expect(rejected[0]).toEqual({ status: 'cancelled', reason: 'review rejected', history: ['queued', 'cancelled'] });
    const { rows: waiting } = await api.db.query<{ status: string; due_at: Date | null }>('select status, due_at from messages where id = $1', [message.get(s)]);
    expect(waiting[0]).toEqual({ status: 'queued', due_at: null });
    // A decision is final; the message is not touched again.
    expect((await api.call(t, 'POST', `/v1/reviews/${task(r).id}/approve`)).status).toBe(409);
  });
});

describe('results per run', () => {
  it('reports totals and delivery, read and response rates, replies counted within 48 hours', async () => {
    await knowledge('Weekly tip', 'Keep going. It works.', ['tips']);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await contact({ name: `Reader ${i}` }));
    const id = await pulse({});
    await worker.drain();
    const rows = await recipients(id);
    expect(rows).toHaveLength(10);
    const msg = rows.map((r) => r.message_id!);
    const at = (h: number) => new Date(api.clock.now().getTime() + h * HOUR);
    const updates: StatusUpdate[] = [
      ...msg.slice(0, 8).map((m) => ({ message_id: m, status: 'delivered' as const, at: at(0.1) })),
      ...msg.slice(0, 5).map((m) => ({ message_id: m, status: 'read' as const, at: at(0.5) })),
      ...msg.slice(0, 2).map((m) => ({ message_id: m, status: 'replied' as const, at: at(1) })),
      // Answered, but after 48 hours: no response by the report's rule.
      { message_id: msg[2]!, status: 'replied', at: at(50) },
    ];
    await api.db.transaction((tx) => recordStatuses(tx, updates));

    const res = await api.call(t, 'GET', `/v1/campaigns/${id}/runs`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data).toHaveLength(1);
    const run = res.body.data[0];
    expect(run).toMatchObject({
      key: expect.any(String),
      status: 'completed',
      recipients: 10,
      messages: { sent: 10, delivered: 8, read: 5, responded: 2 },
      rates: { delivery: 0.8, read: 0.625, response: 0.25 },
    });
    expect(run.totals).toMatchObject({ recipients: 10, responded: 3, opened: 2, delivered: 3, sent: 2 });
    const scores = (await synthesized(id)).map((s) => s.personalization_score);
    expect(run.pulse.synthesized).toBe(10);
    expect(run.pulse.mean_personalization_score).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / scores.length, 3);
    expect(run.pulse.tone_test).toBeNull();
    expect(res.body.tone_test).toBeNull();

    // Any campaign has runs; a message campaign has no pulse part.
    const sms = await api.call(t, 'POST', '/v1/campaigns', { name: 'plain', type: 'custom', audience: { contact_ids: ids.slice(0, 2) }, action: { send: { channel: 'whatsapp', content: { body: 'hi' } } } });
    await api.call(t, 'POST', `/v1/campaigns/${sms.body.id}/start`);
    await runCampaigns(api.db, api.clock.now());
    const plain = await api.call(t, 'GET', `/v1/campaigns/${sms.body.id}/runs`);
    expect(plain.body.data[0]).toMatchObject({ recipients: 2, pulse: null, messages: { sent: 0 }, rates: { delivery: null } });
    expect((await api.call(t, 'GET', `/v1/campaigns/${newId()}/runs`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/campaigns/${id}/runs?cursor=nope`)).status).toBe(400);
  });
});

describe('tone test', () => {
  it('splits contacts between tones near the split, keeps each in its arm, and reports which arm leads', async () => {
    await knowledge('Weekly tip', 'Keep going. It works.', ['tips']);
    const n = 240;
    const contacts = Array.from({ length: n }, (_, i) => ({ id: newId(), name: `Person ${i}`, phone: `+1415777${String(i).padStart(4, '0')}` }));
    await api.db.query(
      `insert into contacts (id, tenant_id, name, phone, attributes, created_at, updated_at)
       select x.id, $1, x.name, x.phone, '{"pulse": {"enabled": true}}', $3, $3 from jsonb_to_recordset($2::jsonb) as x(id uuid, name text, phone text)`,
      [t.id, JSON.stringify(contacts), api.clock.now()],
    );
    await api.db.query(
      `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
       select $1, c, 'whatsapp', 'pulse', 'granted', 'express', gen_random_uuid(), '2020-01-01T00:00:00Z' from unnest($2::uuid[]) as c`,
      [t.id, contacts.map((c) => c.id)],
    );
    const test = {
      variants: [
        { name: 'personal', tone: 'highly personal' },
        { name: 'professional', tone: 'professional and friendly', cta: { text: 'Reply to book a call.' } },
      ],
      split: [50, 50],
    };
    const id = await pulse({ tone_test: test });
    await worker.drain();

    const synth = await synthesized(id);
    expect(synth).toHaveLength(n);
    const personal = synth.filter((s) => s.variant === 'personal');
    expect(personal.length / n).toBeGreaterThan(0.38);
    expect(personal.length / n).toBeLessThan(0.62);
    for (const s of synth) {
      expect(s.variant).toBe(toneArm(test, id, s.contact_id).name);
      expect(s.tone).toBe(s.variant === 'personal' ? 'highly personal' : 'professional and friendly');
    }
    const { rows: texts } = await api.db.query<{ id: string; text: string }>(`select id, content->'vars'->'synthesis'->>'text' as text from messages where id = any($1::uuid[])`, [
      synth.map((s) => s.message_id),
    ]);
    const textOf = new Map(texts.map((x) => [x.id, x.text]));
    for (const s of synth) expect(textOf.get(s.message_id)).toContain(s.variant === 'professional' ? 'Reply to book a call.' : CTA.text);

    // Everyone's pulse is delivered; 30% of the personal arm answer, 10% of the professional one.
    const pro = synth.filter((s) => s.variant === 'professional');
    const answering = [...personal.slice(0, Math.round(personal.length * 0.3)), ...pro.slice(0, Math.round(pro.length * 0.1))];
    await api.db.transaction((tx) =>
      recordStatuses(tx, [
        ...synth.map((s) => ({ message_id: s.message_id, status: 'delivered' as const, at: api.clock.now() })),
        ...answering.map((s) => ({ message_id: s.message_id, status: 'replied' as const, at: new Date(api.clock.now().getTime() + HOUR) })),
      ]),
    );
    const res = await api.call(t, 'GET', `/v1/campaigns/${id}/runs`);
    expect(res.status).toBe(200);
    for (const report of [res.body.tone_test, res.body.data[0].pulse.tone_test]) {
      expect(report).toMatchObject({ leader: 'personal', significant: true });
      expect(report.variants).toEqual([
        { name: 'personal', tone: 'highly personal', recipients: personal.length, delivered: personal.length, responded: Math.round(personal.length * 0.3), response_rate: expect.any(Number) },
        { name: 'professional', tone: 'professional and friendly', recipients: pro.length, delivered: pro.length, responded: Math.round(pro.length * 0.1), response_rate: expect.any(Number) },
      ]);
      expect(report.verdict).toContain(`personal leads`);
      expect(report.verdict).toContain(`(${Math.round(personal.length * 0.3)}/${personal.length})`);
    }
  });
});

describe("the tenant's own opt-out footer", () => {
  it('must fit max_length: creating or changing a pulse, and lengthening the footer under a pulse that may still send, are refused naming the footer', async () => {
    await knowledge('Weekly tip', 'Keep going. It works.', ['tips']);
    const ana = await contact({ name: 'Ana' });
    const long = 'Reply STOP and we stop these weekly tips from the Shop on WhatsApp.';
    // CTA, a blank line, the footer: the built-in lines leave room in 90 characters, this one does not.
    const needs = CTA.text.length + 2 + long.length;
    expect(needs).toBeGreaterThan(90);
    const body = (maxLength: number) => ({ name: `fits-${maxLength}-${Math.random()}`, type: 'pulse', action: { pulse: { cta: CTA, whatsapp_template: TEMPLATE, max_length: maxLength } } });
    const footer = (en: string) => api.call(t, 'PATCH', '/v1/tenant', { settings: { opt_out_footer: { en } } });

    const created = await api.call(t, 'POST', '/v1/campaigns', { ...body(90), schedule: { at: api.clock.now().toISOString() } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const refused = await footer(long);
    expect(refused.status).toBe(400);
    expect(refused.body.error.fields).toEqual([
      expect.objectContaining({
        field: 'settings.opt_out_footer.en',
        message: expect.stringContaining(`pulse campaign ${JSON.stringify(created.body.name)} has no room for it: max_length 90 cannot hold this call to action and the longest opt-out footer (${long.length} characters, settings.opt_out_footer.en); it needs at least ${needs}`),
      }),
    ]);
    expect((await api.call(t, 'GET', '/v1/tenant')).body.settings.opt_out_footer).toBeUndefined();

    expect((await api.call(t, 'PATCH', `/v1/campaigns/${created.body.id}`, { action: body(needs).action })).status).toBe(200);
    expect((await footer(long)).status).toBe(200);
    // Now the footer is the tenant's, a pulse is checked against it when created or changed.
    for (const res of [await api.call(t, 'POST', '/v1/campaigns', body(90)), await api.call(t, 'PATCH', `/v1/campaigns/${created.body.id}`, { action: body(needs - 1).action })]) {
      expect(res.status).toBe(400);
      expect(res.body.error.fields).toEqual([
        expect.objectContaining({ field: 'action.pulse.max_length', message: expect.stringContaining(`(${long.length} characters, settings.opt_out_footer.en); it needs at least ${needs}`) }),
      ]);
    }

    // The pulse that fits writes its message with the whole footer instead of skipping it as max_length.
    expect((await api.call(t, 'POST', `/v1/campaigns/${created.body.id}/start`)).status).toBe(200);
    await worker.drain();
    expect((await recipients(created.body.id)).map((r) => [r.contact_id, r.outcome, r.reason])).toEqual([[ana, 'queued', null]]);
    const [m] = (await synthesized(created.body.id)).map((s) => s.message_id);
    const { rows } = await api.db.query<{ text: string }>(`select content->'vars'->'synthesis'->>'text' as text from messages where id = $1`, [m]);
    expect(rows[0]!.text.endsWith(`\n\n${long}`)).toBe(true);
    expect(rows[0]!.text.length).toBeLessThanOrEqual(needs);
  });
});
