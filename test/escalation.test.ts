import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildApp, type App } from '../src/api/app.js';
import { newWebhookSecret } from '../src/channels/adapters/webhook.js';
import { deliveryFor } from '../src/channels/delivery.js';
import type { InboundMessage } from '../src/channels/types.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { recordInbound } from '../src/engine/inbound.js';
import { SandboxProvider } from '../src/engine/providers.js';
import { RESULT_SETTLE_MS, RESULT_WEBHOOK_SUBJECT } from '../src/engine/result-webhook.js';
import { parsePrivateAllowList } from '../src/channels/webhook-guard.js';
import { Worker } from '../src/engine/worker.js';
import { createApiKey } from '../src/store/apikeys.js';
import type { Db } from '../src/store/db.js';
import { createTenant } from '../src/store/tenants.js';
import { FakeWebhookReceiver } from './fakes/webhook-receiver.js';
import { freshDb } from './helpers/db.js';

/**
 * The progressive-escalation recipe as shipped (docs/recipes/progressive-escalation.yaml), set up
 * the way its page says (templates, keywords, a webhook account, consent, all through the API),
 * driven through the seed's scenarios with the sandbox for WhatsApp and voice and a clock that
 * jumps. The result is read by API and received, signed, by a real HTTP endpoint.
 */

const RECIPE = fileURLToPath(new URL('../docs/recipes/progressive-escalation.yaml', import.meta.url));
const PAGE = readFileSync(fileURLToPath(new URL('../docs/recipes/progressive-escalation.md', import.meta.url)), 'utf8');
const MINUTE = 60_000;

let db: Db;
let app: App;
let clock: ManualClock;
let sandbox: SandboxProvider;
let worker: Worker;
let receiver: FakeWebhookReceiver;
let key: string;
let tenantId: string;
let journeyId: string;

async function call(method: string, url: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
}

async function ok(method: string, url: string, body?: unknown, type?: string): Promise<any> {
  const res = await call(method, url, body, type);
  expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

beforeAll(async () => {
  db = await freshDb();
  clock = new ManualClock('2026-03-02T10:00:00Z');
  const secrets = new SecretBox('escalation-test-secret-key-0123456789');
  sandbox = new SandboxProvider();
  // The receiver listens on loopback, which result webhooks reach only when the operator allows it.
  const delivery = deliveryFor(db, { secrets, sandbox, webhookAllowPrivate: parsePrivateAllowList('127.0.0.1') });
  app = await buildApp({ db, clock, secrets, adapters: delivery.adapters });
  worker = new Worker({ db, clock, providers: delivery.router });
  const signing = newWebhookSecret();
  receiver = await new FakeWebhookReceiver({ secret: signing }).start();

  tenantId = (await createTenant(db, { name: 'Parkwise' })).id;
  key = (await createApiKey(db, tenantId, 'test', 'test')).secret;
  await ok('POST', '/v1/providers', { name: 'results', kind: 'webhook', credentials: { signing_secret: signing } });
  // What the page says to register, read from the page.
  const templates = [...PAGE.matchAll(/```json template\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
  expect(templates.map((t) => t.name)).toEqual(['parking_alert_smart', 'parking_alert_critical', 'parking_alert_emergency']);
  for (const t of templates) await ok('POST', '/v1/whatsapp-templates', t);
  const keywords = JSON.parse(PAGE.match(/```json keywords\n([\s\S]*?)```/)![1]!) as { phrase: string; intent: string }[];
  for (const k of keywords) await ok('PUT', `/v1/keywords/${encodeURIComponent(k.phrase)}`, { action: 'intent', intent: k.intent });

  const journey = await ok('POST', '/v1/journeys', readFileSync(RECIPE, 'utf8'), 'application/yaml');
  expect((await call('POST', `/v1/journeys/${journey.id}/validate`)).body).toEqual({ valid: true, problems: [] });
  await ok('POST', `/v1/journeys/${journey.id}/publish`);
  journeyId = journey.id;
});

afterAll(async () => {
  await receiver?.close();
  await app?.close();
  await db?.close();
});

let phones = 0;
/** A car owner who registered the sticker: a contact with consent on WhatsApp and voice for alerts. */
async function owner(): Promise<{ id: string; phone: string }> {
  const phone = `+6012345${String(6700 + ++phones).padStart(4, '0')}`;
  const c = await ok('POST', '/v1/contacts', { phone, name: `Owner ${phones}` });
  for (const channel of ['whatsapp', 'voice']) {
    await ok('POST', `/v1/contacts/${c.id}/consent`, { channel, topic: 'transactional', status: 'granted', type: 'express', source: 'qr_sticker_signup' });
  }
  return { id: c.id, phone };
}

/** Raises an alert as the app behind the QR sticker does, and finds the enrollment it started. */
async function alert(o: { id: string; phone: string }, properties: Record<string, unknown>): Promise<string> {
  await ok('POST', '/v1/events', { name: 'parking.alert', contact: { phone: o.phone }, properties });
  await worker.drain();
  const list = await ok('GET', `/v1/journeys/${journeyId}/enrollments?contact_id=${o.id}`);
  expect(list.data).toHaveLength(1);
  return list.data[0].id;
}

let inboundSeq = 0;
/** The owner writes on WhatsApp, as the provider's webhook would report it, at the clock's time plus `offsetMs`. */
async function writes(o: { phone: string }, m: Partial<InboundMessage>, offsetMs = 0): Promise<void> {
  const at = new Date(clock.now().getTime() + offsetMs);
  const item: InboundMessage = { type: 'message', channel: 'whatsapp', from: o.phone, to: '+60390001000', text: null, payload: null, provider_message_id: `wamid.in${++inboundSeq}`, at, ...m };
  await recordInbound(db, { tenant_id: tenantId, provider: 'sandbox', account_id: null }, [item], clock.now());
}

async function later(ms: number): Promise<void> {
  clock.advance(ms);
  await worker.drain();
}

const sentTo = (phone: string) => sandbox.sent.filter((s) => s.message.to === phone).map((s) => s.message);
const deliveriesFor = (enrollmentId: string) => receiver.received.filter((r) => (r.json as { data?: { enrollment_id?: string } })?.data?.enrollment_id === enrollmentId);

/** The result by API, and the webhook the callback received for it: once, signed, the same JSON. */
async function result(enrollmentId: string): Promise<any> {
  const got = await ok('GET', `/v1/enrollments/${enrollmentId}/result`);
  const hooks = deliveriesFor(enrollmentId);
  expect(hooks).toHaveLength(1);
  expect(hooks[0]).toMatchObject({ method: 'POST', path: '/hooks/parking', verified: true });
  const { rows } = await db.query<{ id: string; status: string }>(`select id, status from messages where enrollment_id = $1 and kind = 'result_webhook'`, [enrollmentId]);
  expect(rows).toEqual([{ id: expect.any(String), status: 'sent' }]);
  expect(hooks[0]!.headers['webhook-id']).toBe(rows[0]!.id);
  expect(hooks[0]!.json).toMatchObject({ id: rows[0]!.id, subject: RESULT_WEBHOOK_SUBJECT, idempotency_key: `result:${enrollmentId}`, data: got });
  return got;
}

describe('the progressive-escalation recipe', () => {
  it('is valid against the published JSON Schema, as editors check it', async () => {
    const schema = (await app.inject({ method: 'GET', url: '/v1/journeys/schema.json' })).json();
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    const recipe = parseYaml(readFileSync(RECIPE, 'utf8'));
    expect(validate(recipe), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...recipe, result_webhook: { url: 'https://example.com', secret: 'whsec_x' } })).toBe(false);
  });

  it('window open, urgency 3: the text goes, "moving now" comes back: success, direct, active', async () => {
    const o = await owner();
    await writes(o, { text: 'Thanks for the sticker!' }, -2 * 60 * MINUTE);
    const id = await alert(o, { urgency: 3, plate: 'ABC-123', location: 'Jalan Ampang 12', callback_url: receiver.url('/hooks/parking') });
    const [first] = sentTo(o.phone);
    expect(first).toMatchObject({ channel: 'whatsapp', body: expect.stringContaining('Your car ABC-123 is blocking someone at Jalan Ampang 12 with MEDIUM urgency') });
    expect(first!.whatsapp_template).toBeUndefined();
    expect((await ok('GET', `/v1/enrollments/${id}/result`)).status).toBe('pending');

    await later(MINUTE);
    await writes(o, { text: 'Moving now!' });
    await worker.drain();
    // The result waits for the follow-up queued in the same step to leave, so it can report it.
    expect(deliveriesFor(id)).toHaveLength(0);
    await later(RESULT_SETTLE_MS);

    expect(sentTo(o.phone).map((m) => m.body)).toEqual([first!.body, "Thank you! We'll let them know you are on your way to ABC-123."]);
    const r = await result(id);
    expect(r).toMatchObject({
      enrollment_id: id,
      journey_id: journeyId,
      enrollment_status: 'completed',
      status: 'success',
      deliveryMethod: 'direct',
      sessionStatus: 'active',
      escalationLevel: 0,
      templateUsed: null,
      userResponse: 'moving_now',
      maxEscalationReached: false,
      followUpSent: true,
      trigger: { urgency: 3, plate: 'ABC-123', event: 'parking.alert' },
    });
    const sent = (await db.query<{ provider_message_id: string }>(`select provider_message_id from messages where enrollment_id = $1 and kind = 'send' order by created_at desc limit 1`, [id])).rows[0]!;
    expect(r.messageId).toBe(sent.provider_message_id);
    expect(r.timestamps).toEqual({
      triggered: '2026-03-02T10:00:00.000Z',
      first_sent: '2026-03-02T10:00:00.000Z',
      responded: '2026-03-02T10:01:00.000Z',
      escalations: [],
      ended: '2026-03-02T10:01:00.000Z',
    });
  });

  it('window closed, urgency 3: the smart template, "More details" tapped: success, smart_template, reactivated, the details follow', async () => {
    clock.set('2026-03-03T10:00:00Z');
    const o = await owner();
    const id = await alert(o, { urgency: 3, plate: 'XYZ-987', callback_url: receiver.url('/hooks/parking') });
    const [template] = sentTo(o.phone);
    expect(template).toMatchObject({ whatsapp_template: { name: 'parking_alert_smart', language: 'en', parameters: ['XYZ-987', 'your parking spot'] } });
    expect(template!.body).toBeUndefined();

    await later(2 * MINUTE);
    const pressed = sandbox.sent.find((s) => s.message === template)!.provider_message_id;
    await writes(o, { text: 'More details', payload: 'More details', in_reply_to: pressed });
    await worker.drain();
    await later(RESULT_SETTLE_MS);

    const followUp = sentTo(o.phone)[1]!;
    expect(followUp.body).toBe('Thanks for responding! Someone is blocked by your car XYZ-987 with MEDIUM urgency. Please move it as soon as you can.');
    expect(followUp.whatsapp_template).toBeUndefined();
    const r = await result(id);
    expect(r).toMatchObject({
      status: 'success',
      deliveryMethod: 'smart_template',
      sessionStatus: 'reactivated',
      escalationLevel: 0,
      templateUsed: 'parking_alert_smart',
      userResponse: 'want_info',
      maxEscalationReached: false,
      followUpSent: true,
    });
    expect(r.timestamps).toMatchObject({ responded: '2026-03-03T10:02:00.000Z', escalations: [] });
    const contact = await ok('GET', `/v1/contacts/${o.id}`);
    expect(contact.attributes).toMatchObject({ parking_alert_last_answer: 'want_info' });
  });

  it('window closed, urgency 5, no answer: smart, escalation and emergency templates, then the call: delivered_with_escalation', async () => {
    clock.set('2026-03-04T10:00:00Z');
    const o = await owner();
    const id = await alert(o, { urgency: 5, plate: 'EMG-555', location: 'Fire lane B', callback_url: receiver.url('/hooks/parking') });
    const names = () => sentTo(o.phone).map((m) => (m.channel === 'voice' ? 'call' : m.whatsapp_template?.name));
    expect(names()).toEqual(['parking_alert_smart']);
    await later(5 * MINUTE - 1000);
    expect(names()).toEqual(['parking_alert_smart']);
    await later(1000);
    expect(names()).toEqual(['parking_alert_smart', 'parking_alert_critical']);
    await later(3 * MINUTE);
    expect(names()).toEqual(['parking_alert_smart', 'parking_alert_critical', 'parking_alert_emergency', 'call']);
    expect(sentTo(o.phone)[3]!.body).toContain('This is an emergency call about your vehicle E M G - 5 5 5, parked at Fire lane B.');
    const priorities = (await db.query<{ priority: number }>(`select priority from messages where enrollment_id = $1 and kind = 'send'`, [id])).rows;
    expect(priorities.map((p) => p.priority)).toEqual([5, 5, 5, 5]);
    expect((await ok('GET', `/v1/enrollments/${id}/result`)).status).toBe('pending');
    expect(deliveriesFor(id)).toHaveLength(0);

    await later(5 * MINUTE);
    const r = await result(id);
    expect(r).toMatchObject({
      enrollment_status: 'completed',
      status: 'delivered_with_escalation',
      deliveryMethod: 'voice_call',
      sessionStatus: 'expired',
      escalationLevel: 3,
      templateUsed: 'parking_alert_emergency',
      userResponse: null,
      maxEscalationReached: true,
      followUpSent: false,
    });
    expect(r.timestamps).toEqual({
      triggered: '2026-03-04T10:00:00.000Z',
      first_sent: '2026-03-04T10:00:00.000Z',
      responded: null,
      escalations: ['2026-03-04T10:05:00.000Z', '2026-03-04T10:08:00.000Z', '2026-03-04T10:08:00.000Z'],
      ended: '2026-03-04T10:13:00.000Z',
    });
    expect((await ok('GET', `/v1/contacts/${o.id}`)).tags).toContain('parking_alert_unresponsive');
  });

  it('urgency 2, no answer: the template alone, and the alert ends after 5 minutes', async () => {
    clock.set('2026-03-05T10:00:00Z');
    const o = await owner();
    const id = await alert(o, { urgency: '2', plate: 'LOW-222', callback_url: receiver.url('/hooks/parking') });
    await later(5 * MINUTE);
    await later(60 * MINUTE);
    expect(sentTo(o.phone).map((m) => m.whatsapp_template?.name)).toEqual(['parking_alert_smart']);
    const r = await result(id);
    expect(r).toMatchObject({ status: 'delivered_with_escalation', deliveryMethod: 'smart_template', escalationLevel: 0, maxEscalationReached: false, userResponse: null });
    expect(r.timestamps).toMatchObject({ triggered: '2026-03-05T10:00:00.000Z', escalations: [], ended: '2026-03-05T10:05:00.000Z' });
  });

  it('reports each enrollment once, however long the workers keep going', async () => {
    await later(24 * 60 * MINUTE);
    const byEnrollment = new Map<string, number>();
    for (const r of receiver.received) {
      const e = (r.json as { data: { enrollment_id: string } }).data.enrollment_id;
      byEnrollment.set(e, (byEnrollment.get(e) ?? 0) + 1);
    }
    expect([...byEnrollment.values()]).toEqual([1, 1, 1, 1]);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
  });
});

describe('result webhooks on any end, and the result route', () => {
  it('an alert without a callback_url sends no webhook; the result is still there', async () => {
    const o = await owner();
    const id = await alert(o, { urgency: 1, plate: 'NOC-111' });
    await later(5 * MINUTE);
    const { rows } = await db.query(`select 1 from messages where enrollment_id = $1 and kind = 'result_webhook'`, [id]);
    expect(rows).toHaveLength(0);
    expect(await ok('GET', `/v1/enrollments/${id}/result`)).toMatchObject({ status: 'delivered_with_escalation', enrollment_status: 'completed' });
  });

  it('a cancelled or exited enrollment reports too; a callback that is not a URL is recorded as failed', async () => {
    const a = await owner();
    const cancelled = await alert(a, { urgency: 4, plate: 'CAN-444', callback_url: receiver.url('/hooks/parking') });
    await ok('POST', `/v1/enrollments/${cancelled}/cancel`);
    await worker.drain();
    expect((await result(cancelled)).enrollment_status).toBe('cancelled');

    const b = await owner();
    const resolved = await alert(b, { urgency: 3, plate: 'RES-333', callback_url: receiver.url('/hooks/parking') });
    await ok('POST', '/v1/events', { name: 'parking.resolved', contact: { phone: b.phone } });
    await worker.drain();
    expect(await result(resolved)).toMatchObject({ enrollment_status: 'exited', status: 'delivered_with_escalation' });

    const c = await owner();
    const wrong = await alert(c, { urgency: 3, plate: 'BAD-000', callback_url: 'call me maybe' });
    await later(5 * MINUTE);
    const { rows } = await db.query<{ status: string; reason: string }>(`select status, reason from messages where enrollment_id = $1 and kind = 'result_webhook'`, [wrong]);
    expect(rows).toEqual([{ status: 'failed', reason: 'result_webhook url is not an http(s) URL: call me maybe' }]);
  });

  it('retries a refused delivery with the same webhook-id', async () => {
    const o = await owner();
    receiver.next({ status: 503, body: 'busy' });
    const id = await alert(o, { urgency: 1, plate: 'RTY-101', callback_url: receiver.url('/hooks/parking') });
    await later(5 * MINUTE);
    expect(deliveriesFor(id)).toHaveLength(1);
    await later(5_000);
    const [first, second] = deliveriesFor(id);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    const { rows } = await db.query<{ status: string; attempts: number }>(`select status, attempts from messages where enrollment_id = $1 and kind = 'result_webhook'`, [id]);
    expect(rows).toEqual([{ status: 'sent', attempts: 2 }]);
  });

  it('is the tenant’s own: another tenant, or no such enrollment, is a 404', async () => {
    const o = await owner();
    const id = await alert(o, { urgency: 1, plate: 'OWN-100' });
    const other = await createTenant(db, { name: 'Elsewhere' });
    const otherKey = (await createApiKey(db, other.id, 'test', 'test')).secret;
    const res = await app.inject({ method: 'GET', url: `/v1/enrollments/${id}/result`, headers: { authorization: `Bearer ${otherKey}` } });
    expect(res.statusCode).toBe(404);
    expect((await call('GET', '/v1/enrollments/0195c2a4-5d2e-7c11-9a43-1b2c3d4e5f60/result')).status).toBe(404);
    const openapi = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(openapi.paths['/v1/enrollments/{id}/result']!.get!.responses)).toEqual(expect.arrayContaining(['200', '404']));
  });

  it('refuses a result_webhook that cannot be an http(s) URL, and Liquid that does not parse', async () => {
    const def = (url: string) => ({ entry: { api: true }, result_webhook: { url }, nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { body: 'Hi' } }] });
    for (const url of ['ftp://example.com/x', 'example.com/results', 'mailto:{{ trigger.to }}']) {
      const res = await call('POST', '/v1/journeys', { name: `bad ${url}`, definition: def(url) });
      expect(res.status, url).toBe(400);
      expect(res.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['definition.result_webhook.url']);
    }
    for (const url of ['https://example.com/{{ trigger.id }}', '{{ trigger.callback_url }}', 'ht{{ x }}']) {
      expect((await call('POST', '/v1/journeys', { name: `good ${url}`, definition: def(url) })).status, url).toBe(201);
    }
    const broken = await ok('POST', '/v1/journeys', { name: 'broken liquid', definition: def('{{ trigger.callback_url') });
    const published = await call('POST', `/v1/journeys/${broken.id}/publish`);
    expect(published.status).toBe(422);
    expect(published.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['definition.result_webhook.url']);
  });
});
