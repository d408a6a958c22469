import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newWebhookSecret, verifyWebhookSignature } from '../src/channels/adapters/webhook.js';
import { deliveryFor } from '../src/channels/delivery.js';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { MAX_WEBHOOK_ANSWER_BYTES } from '../src/engine/dispatcher.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { RESULT_SETTLE_MS } from '../src/engine/result-webhook.js';
import { REPLY_EVENT } from '../src/engine/triggers.js';
import { guardedRequester, parsePrivateAllowList, type HostLookup } from '../src/channels/webhook-guard.js';
import { Worker } from '../src/engine/worker.js';
import { recordConsent } from '../src/store/consent.js';
import { createContact } from '../src/store/contacts.js';
import type { Db } from '../src/store/db.js';
import { ingestEvents } from '../src/store/events.js';
import { createAccount } from '../src/store/provider-accounts.js';
import { createTenant } from '../src/store/tenants.js';
import { FakeWebhookReceiver } from './fakes/webhook-receiver.js';
import { freshDb } from './helpers/db.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

let db: Db;
let clock: ManualClock;
let sandbox: SandboxProvider;
let worker: Worker;
let tenant: string;

const HOUR = 3600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  db = await freshDb();
});
afterAll(() => db.close());

beforeEach(async () => {
  // Monday 2026-03-02 15:00 UTC = 10:00 in New York.
  clock = new ManualClock('2026-03-02T15:00:00Z');
  sandbox = new SandboxProvider();
  worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox) });
  tenant = (await createTenant(db, { name: `Engine ${Math.random()}`, time_zone: 'America/New_York' })).id;
  await allowAnyTime(db, tenant);
});

async function contact(fields: Record<string, unknown> = {}, channels = ['sms', 'email', 'whatsapp']): Promise<string> {
  // NANP exchange codes start with 2-9.
  const n = `${2 + Math.floor(Math.random() * 8)}${Math.floor(Math.random() * 1e6)
    .toString()
    .padStart(6, '0')}`;
  const c = await createContact(db, tenant, { phone: `+1212${n}`, email: `p${n}@example.com`, ...fields }, {}, clock.now());
  await grantAll(db, tenant, [c.id], channels);
  return c.id;
}

async function event(contactId: string, name: string, properties: Record<string, unknown> = {}) {
  return ingestEvents(db, tenant, [{ name, contact_id: contactId, properties }], clock.now(), {});
}

async function enrollment(contactId: string) {
  const { rows } = await db.query<any>('select * from enrollments where contact_id = $1 order by entered_at desc limit 1', [contactId]);
  return rows[0];
}

async function messages(contactId: string) {
  const { rows } = await db.query<any>('select * from messages where contact_id = $1 order by created_at, node', [contactId]);
  return rows;
}

async function history(enrollmentId: string): Promise<string[]> {
  const { rows } = await db.query<{ node: string; outcome: string }>('select node, outcome from enrollment_steps where enrollment_id = $1 order by seq', [enrollmentId]);
  return rows.map((r) => `${r.node}:${r.outcome}`);
}

const sequence: JourneyDefinition = {
  name: 'Follow-up',
  entry: { event: 'form_submitted' },
  nodes: [
    { id: 'sms', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.first_name }}, thanks for your {{ trigger.form }} request' }, next: 'pause' },
    { id: 'pause', type: 'wait', duration: '0s', next: 'mail' },
    { id: 'mail', type: 'send', channel: 'email', content: { subject: 'Your {{ trigger.form }}', body: 'Dear {{ contact.first_name }} {{ contact.last_name }} of {{ contact.city }}' } },
  ],
};

describe('journey engine', () => {
  it('enrols on an event and walks send, wait 0 and send into the outbox, then the sandbox', async () => {
    await publishJourney(db, tenant, sequence);
    const c = await contact({ attributes: { first_name: 'Ada', last_name: 'Lovelace', city: 'London' } });
    await event(c, 'form_submitted', { form: 'quote' });
    const e = await enrollment(c);
    expect(e).toMatchObject({ status: 'active', node: null, vars: { trigger: { event: 'form_submitted', form: 'quote' } } });
    await worker.drain();
    expect(await history(e.id)).toEqual(['sms:queued', 'pause:waited', 'mail:queued', 'mail:completed']);
    const sent = await messages(c);
    expect(sent.map((m: any) => [m.node, m.channel, m.status])).toEqual([
      ['mail', 'email', 'sent'],
      ['sms', 'sms', 'sent'],
    ]);
    const bodies = sandbox.sent.filter((s) => s.message.to === sent[1].to_address || s.message.to === sent[0].to_address).map((s) => s.message);
    expect(bodies.find((m) => m.channel === 'sms')?.body).toBe('Hi Ada, thanks for your quote request');
    expect(bodies.find((m) => m.channel === 'email')).toMatchObject({ subject: 'Your quote', body: 'Dear Ada Lovelace of London' });
    expect((await enrollment(c)).status).toBe('completed');
  });

  it('holds a wait for its duration on the injected clock', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'signed_up' },
      nodes: [
        { id: 'w', type: 'wait', duration: '2d', next: 'hello' },
        { id: 'hello', type: 'send', channel: 'sms', content: { body: 'two days later' } },
      ],
    });
    const c = await contact();
    await event(c, 'signed_up');
    await worker.drain();
    expect(await messages(c)).toHaveLength(0);
    clock.advance(2 * DAY - 1000);
    await worker.drain();
    expect(await messages(c)).toHaveLength(0);
    clock.advance(1000);
    await worker.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent']);
  });

  const replyJourney: JourneyDefinition = {
    entry: { event: 'car_blocking' },
    nodes: [
      { id: 'ask', type: 'send', channel: 'whatsapp', content: { body: 'Your car blocks the gate. Can you move it?' }, next: 'wait' },
      { id: 'wait', type: 'wait', until_event: { reply: {}, timeout: '15m' }, on_reply: 'route', on_timeout: 'escalate' },
      {
        id: 'route',
        type: 'branch',
        branches: [
          { name: 'moving', when: { reply_to: 'ask', payload: 'moving_now' }, next: 'thanks' },
          { name: 'yes', when: { reply_to: 'ask', text: { op: 'in', value: ['yes', 'ok'] } }, next: 'thanks' },
        ],
        default: 'escalate',
      },
      { id: 'thanks', type: 'send', channel: 'whatsapp', content: { body: 'Thank you{% if reply.text %}, you said {{ reply.text }}{% endif %}' } },
      { id: 'escalate', type: 'send', channel: 'sms', content: { body: 'Urgent: please move your car' } },
    ],
  };

  /** The contact wrote on WhatsApp a moment ago: the 24-hour window is open for free-form text. */
  const wroteOnWhatsapp = (contactId: string) =>
    db.query(
      `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at) values (gen_random_uuid(), $1, $2, 'whatsapp', $3, $3, $3)`,
      [tenant, contactId, clock.now()],
    );

  it('wakes a wait on a reply and branches on its text', async () => {
    await publishJourney(db, tenant, replyJourney);
    const c = await contact();
    await wroteOnWhatsapp(c);
    await event(c, 'car_blocking');
    await worker.drain();
    clock.advance(5 * 60_000);
    const r = await event(c, REPLY_EVENT, { channel: 'whatsapp', text: ' YES ' });
    expect(r.recorded).toBe(1);
    await worker.drain();
    const e = await enrollment(c);
    expect(await history(e.id)).toEqual(['ask:queued', 'wait:waiting', 'wait:reply', 'route:branch', 'thanks:queued', 'thanks:completed']);
    const thanks = sandbox.sent.find((s) => s.message.body?.startsWith('Thank you'));
    expect(thanks?.message.body).toBe('Thank you, you said  YES ');
  });

  it('takes the timeout path when no reply comes', async () => {
    await publishJourney(db, tenant, replyJourney);
    const c = await contact();
    await wroteOnWhatsapp(c);
    await event(c, 'car_blocking');
    await worker.drain();
    clock.advance(15 * 60_000);
    await worker.drain();
    const e = await enrollment(c);
    expect(await history(e.id)).toEqual(['ask:queued', 'wait:waiting', 'wait:timeout', 'escalate:queued', 'escalate:completed']);
  });

  it('blocks a WhatsApp text outside the 24-hour window and takes on_blocked; a template goes out', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'notice' },
      nodes: [
        { id: 'text', type: 'send', channel: 'whatsapp', content: { body: 'Free-form' }, next: 'templated', on_blocked: 'fallback' },
        { id: 'fallback', type: 'send', channel: 'sms', content: { body: 'By SMS instead' }, next: 'templated' },
        { id: 'templated', type: 'send', channel: 'whatsapp', content: { body: 'Hi', whatsapp_template: { name: 'notice', language: 'en' } } },
      ],
    });
    const c = await contact();
    // Wrote 25 hours ago: the window has closed.
    await db.query(
      `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at) values (gen_random_uuid(), $1, $2, 'whatsapp', $3, $3, $3)`,
      [tenant, c, new Date(clock.now().getTime() - 25 * 3600_000)],
    );
    await event(c, 'notice');
    await worker.drain();
    const e = await enrollment(c);
    expect(await history(e.id)).toEqual(['text:blocked', 'fallback:queued', 'templated:queued', 'templated:completed']);
    expect((await messages(c)).map((m: { node: string; status: string; reason: string | null }) => [m.node, m.status, m.reason])).toEqual(
      expect.arrayContaining([
        ['text', 'suppressed', 'whatsapp_window_closed'],
        ['fallback', 'sent', null],
      ]),
    );
  });

  it('holds a marketing SMS for quiet hours in the recipient\'s zone and spreads it after 08:00', async () => {
    await db.query(`update tenants set quiet_hours = '{"sms":{"start":"08:00","end":"21:00"}}' where id = $1`, [tenant]);
    await publishJourney(db, tenant, { entry: { event: 'late' }, nodes: [{ id: 'hi', type: 'send', channel: 'sms', content: { body: 'good morning' } }] });
    // 22:30 in New York (03:30 UTC next day).
    clock.set('2026-03-03T03:30:00Z');
    const c = await contact({ time_zone: 'America/New_York' });
    await event(c, 'late');
    await worker.drain();
    expect(await messages(c)).toHaveLength(0);
    const e = await enrollment(c);
    expect(e.wait).toMatchObject({ kind: 'send', reason: 'quiet_hours' });
    // 08:00 New York = 13:00 UTC; spread over 10 minutes.
    expect(e.due_at.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-03T13:00:00Z'));
    expect(e.due_at.getTime()).toBeLessThan(Date.parse('2026-03-03T13:10:00Z'));
    clock.set(e.due_at);
    await worker.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent']);
  });

  it('records a send without consent as suppressed with its reason and goes on', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'x' },
      nodes: [
        { id: 'sms', type: 'send', channel: 'sms', content: { body: 'a' }, next: 'mail' },
        { id: 'mail', type: 'send', channel: 'email', content: { subject: 's', body: 'b' } },
      ],
    });
    const c = await contact({}, ['email']);
    await event(c, 'x');
    await worker.drain();
    const m = await messages(c);
    expect(m.map((x: any) => [x.node, x.status, x.reason])).toEqual([
      ['mail', 'sent', null],
      ['sms', 'suppressed', 'no_consent'],
    ]);
  });

  it("branches on the contact's event history: how often an event happened within a period, read by the scheduler in one statement per batch", async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'checkout' },
      nodes: [
        { id: 'w', type: 'wait', duration: '1h', next: 'b' },
        {
          id: 'b',
          type: 'branch',
          branches: [{ name: 'regular', when: { event: 'purchase', within: '2d', min_count: 3 }, next: 'vip' }],
          default: 'thanks',
        },
        { id: 'vip', type: 'send', channel: 'sms', content: { body: 'vip' } },
        { id: 'thanks', type: 'send', channel: 'sms', content: { body: 'thanks' } },
      ],
    });
    const [regular, lapsed, once] = [await contact(), await contact(), await contact()];
    // lapsed bought three times, but four days ago: outside the period.
    for (let i = 0; i < 3; i++) await event(lapsed, 'purchase');
    clock.advance(4 * DAY);
    for (let i = 0; i < 3; i++) await event(regular, 'purchase');
    await event(once, 'purchase');
    // Other contacts' purchases in the same batch must not count for these.
    const crowd = await Promise.all(Array.from({ length: 5 }, () => contact()));
    for (const c of crowd) for (let i = 0; i < 3; i++) await event(c, 'purchase');
    for (const c of [regular, lapsed, once]) await event(c, 'checkout');
    await worker.drain();
    clock.advance(HOUR);
    await worker.drain();
    const bodies = async (c: string) => (await messages(c)).map((m: { node: string }) => m.node);
    expect(await bodies(regular)).toEqual(['vip']);
    expect(await bodies(lapsed)).toEqual(['thanks']);
    expect(await bodies(once)).toEqual(['thanks']);
  });

  it('ends an enrollment as converted on a goal event and cancels what it had queued', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'cart_abandoned' },
      goals: [{ event: 'purchase' }],
      nodes: [
        { id: 'w', type: 'wait', duration: '1h', next: 'nudge' },
        { id: 'nudge', type: 'send', channel: 'sms', content: { body: 'still there?' } },
      ],
    });
    const c = await contact();
    await event(c, 'cart_abandoned');
    await worker.drain();
    await event(c, 'purchase', { total: 10 });
    const e = await enrollment(c);
    expect(e).toMatchObject({ status: 'converted', end_reason: 'goal reached', due_at: null });
    clock.advance(2 * HOUR);
    await worker.drain();
    expect(await messages(c)).toHaveLength(0);
  });

  it('sends a message in the same worker loop whose scheduler batch queued it, without waiting for a poll', async () => {
    await publishJourney(db, tenant, { entry: { event: 'now' }, nodes: [{ id: 'hi', type: 'send', channel: 'sms', content: { body: 'at once' } }] });
    const c = await contact();
    await event(c, 'now');
    expect(await worker.once()).toBe(true);
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent']);
  });

  it('re-enters a journey on the event that just converted the contact, when re-entry allows it', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'purchase' },
      goals: [{ event: 'purchase' }],
      reentry: { mode: 'always' },
      nodes: [{ id: 'w', type: 'wait', duration: '1d' }],
    });
    const c = await contact();
    await event(c, 'purchase', { n: 1 });
    await event(c, 'purchase', { n: 2 });
    const { rows } = await db.query<any>('select status, end_reason, vars from enrollments where contact_id = $1 order by entered_at, ended_at nulls last', [c]);
    expect(rows.map((r: any) => [r.status, r.end_reason, r.vars.trigger.n])).toEqual([
      ['converted', 'goal reached', 1],
      ['active', null, 2],
    ]);
  });

  it('does not enrol a contact twice into a journey it is in, and counts only the entry that happened', async () => {
    await publishJourney(db, tenant, { entry: { event: 'ping' }, reentry: { mode: 'always', max_entries: 2 }, nodes: [{ id: 'w', type: 'wait', duration: '1d' }] });
    const c = await contact();
    const first = await ingestEvents(db, tenant, [{ name: 'ping', contact_id: c }, { name: 'ping', contact_id: c }], clock.now(), {});
    await event(c, 'ping');
    expect(first.recorded).toBe(2);
    const { rows } = await db.query<any>('select count(*)::int as n from enrollments where contact_id = $1', [c]);
    expect(rows[0].n).toBe(1);
    const { rows: entries } = await db.query<any>('select entries from journey_entries where contact_id = $1', [c]);
    expect(entries).toEqual([{ entries: 1 }]);
  });

  it('cancels queued messages and exits enrollments when the contact opts out of the channel', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'promo' },
      nodes: [
        { id: 'sms', type: 'send', channel: 'sms', content: { body: 'deal' }, next: 'w' },
        { id: 'w', type: 'wait', duration: '1d', next: 'again' },
        { id: 'again', type: 'send', channel: 'sms', content: { body: 'deal again' } },
      ],
    });
    const c = await contact();
    await event(c, 'promo');
    // Scheduler only: the message stays queued.
    const scheduler = new Worker({ db, clock, providers: sandboxRegistry(sandbox), dispatch: false });
    await scheduler.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['queued']);
    await recordConsent(db, tenant, c, { channel: 'sms', status: 'revoked', source: 'api' }, 'test', clock.now());
    expect((await messages(c)).map((m: any) => [m.status, m.reason])).toEqual([['cancelled', 'opted out']]);
    expect(await enrollment(c)).toMatchObject({ status: 'exited', end_reason: 'opted out' });
    clock.advance(2 * DAY);
    await worker.drain();
    expect(sandbox.sent.filter((s) => s.message.body?.startsWith('deal'))).toHaveLength(0);
  });

  it('updates attributes, emits an event that enrols into another journey, and records a split', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'qualified' },
      nodes: [
        { id: 'tag', type: 'action', update: { attributes: { stage: 'lead-{{ trigger.score }}' }, add_tags: ['lead'] }, next: 'ab' },
        {
          id: 'ab',
          type: 'split',
          variants: [
            { name: 'A', weight: 1, next: 'emit' },
            { name: 'B', weight: 1, next: 'emit' },
          ],
        },
        { id: 'emit', type: 'action', emit: { event: 'lead_created', properties: { stage: '{{ contact.stage }}' } } },
      ],
    });
    await publishJourney(db, tenant, {
      entry: { event: 'lead_created', where: { property: 'stage', value: 'lead-7' } },
      nodes: [{ id: 'hello', type: 'send', channel: 'email', content: { subject: 'Welcome', body: 'stage {{ trigger.stage }}' } }],
    });
    const c = await contact();
    await event(c, 'qualified', { score: 7 });
    await worker.drain();
    const { rows } = await db.query<any>('select attributes, tags from contacts where id = $1', [c]);
    expect(rows[0]).toMatchObject({ attributes: { stage: 'lead-7' }, tags: ['lead'] });
    const { rows: ens } = await db.query<any>('select status, memo from enrollments where contact_id = $1 order by entered_at', [c]);
    expect(ens).toHaveLength(2);
    expect(['A', 'B']).toContain(ens[0].memo.splits.ab);
    expect(sandbox.sent.some((s) => s.message.body === 'stage lead-7')).toBe(true);
  });

  it('ends only the enrollment whose action template blows its bounds; the rest of the batch goes on', async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'scored' },
      nodes: [
        {
          id: 'heavy',
          type: 'action',
          update: { attributes: { done: '{% for a in (1..trigger.n) %}{% for b in (1..trigger.n) %}{% endfor %}{% endfor %}yes' } },
          next: 'hello',
        },
        { id: 'hello', type: 'send', channel: 'email', content: { subject: 'Hi', body: 'done' } },
      ],
    });
    const light = await contact();
    const heavy = await contact();
    await event(light, 'scored', { n: 2 });
    await event(heavy, 'scored', { n: 20_000 });
    await worker.drain();
    expect(await enrollment(light)).toMatchObject({ status: 'completed' });
    const failed = await enrollment(heavy);
    expect(failed.status).toBe('failed');
    expect(failed.end_reason).toMatch(/^at or after node "heavy": .*limit exceeded/);
    expect(sandbox.sent.map((s) => s.message.to)).toHaveLength(1);
  });

  it('parks a paused journey\'s enrollments and resumes them', async () => {
    const j = await publishJourney(db, tenant, {
      entry: { event: 'p' },
      nodes: [
        { id: 'w', type: 'wait', duration: '1h', next: 's' },
        { id: 's', type: 'send', channel: 'sms', content: { body: 'after pause' } },
      ],
    });
    const c = await contact();
    await event(c, 'p');
    await worker.drain();
    await db.query(`update journeys set status = 'paused' where id = $1`, [j]);
    clock.advance(2 * HOUR);
    await worker.drain();
    const parked = await enrollment(c);
    expect(parked).toMatchObject({ due_at: null, status: 'active' });
    expect(parked.paused_due_at).not.toBeNull();
    await db.query(`update journeys set status = 'active' where id = $1`, [j]);
    await db.query('update enrollments set due_at = paused_due_at, paused_due_at = null where id = $1', [parked.id]);
    await worker.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent']);
  });

  describe('webhook action', () => {
    let server: Server;
    let port: number;
    let url: string;
    const seen: any[] = [];
    // The fake listens on every loopback address, so 127.0.0.1, ::1 and localhost reach it unless refused.
    const loopback = { request: guardedRequester({ allowPrivate: parsePrivateAllowList('127.0.0.0/8,::1') }) };
    beforeAll(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          seen.push({ url: req.url, headers: req.headers, body: JSON.parse(body || 'null') });
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ price: 129, currency: 'EUR' }));
        });
      });
      await new Promise<void>((r) => server.listen({ port: 0, host: '::', ipv6Only: false }, r));
      port = (server.address() as AddressInfo).port;
      url = `http://127.0.0.1:${port}/quote`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));
    beforeEach(() => {
      worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox), actionWebhooks: loopback });
    });

    /** A quote from the URL the event names; without one the apology goes. */
    const quoteJourney = (hookUrl = '{{ trigger.url }}'): JourneyDefinition => ({
      entry: { event: 'quote_requested' },
      reentry: { mode: 'always' },
      nodes: [
        { id: 'price', type: 'action', webhook: { url: hookUrl, body: { product: '{{ trigger.product }}' }, save_as: 'quote', timeout: '5s' }, next: 'priced' },
        { id: 'priced', type: 'branch', branches: [{ when: { variable: 'quote.price', op: 'exists' }, next: 'tell' }], default: 'sorry' },
        { id: 'tell', type: 'send', channel: 'sms', content: { body: 'Your price: {{ vars.quote.price }} {{ vars.quote.currency }}' } },
        { id: 'sorry', type: 'send', channel: 'sms', content: { body: 'No quote for {{ trigger.product }} yet' } },
      ],
    });

    it('keeps the JSON answer in the enrollment for later templates', async () => {
      await publishJourney(db, tenant, {
        entry: { event: 'quote_requested' },
        nodes: [
          { id: 'price', type: 'action', webhook: { url, body: { product: '{{ trigger.product }}' }, save_as: 'quote' }, next: 'tell' },
          { id: 'tell', type: 'send', channel: 'sms', content: { body: 'Your price: {{ vars.quote.price }} {{ vars.quote.currency }}' } },
        ],
      });
      const c = await contact();
      await event(c, 'quote_requested', { product: 'solar' });
      await worker.drain();
      expect(seen.at(-1).body).toEqual({ product: 'solar' });
      expect(seen.at(-1).headers['idempotency-key']).toMatch(/:price:/);
      // No webhook account: unsigned, as before.
      expect(seen.at(-1).headers['webhook-signature']).toBeUndefined();
      expect(sandbox.sent.some((s) => s.message.body === 'Your price: 129 EUR')).toBe(true);
      const e = await enrollment(c);
      expect(e.vars.quote).toEqual({ price: 129, currency: 'EUR' });
    });

    it('refuses internal destinations without the allow-list: the journey takes its failure path and nothing reaches them', async () => {
      await publishJourney(db, tenant, quoteJourney());
      // Only the name of the pretend internal service is stubbed; localhost goes to the system resolver.
      const internal: HostLookup = (hostname) =>
        hostname === 'pricing.internal.test' ? Promise.resolve([{ address: '10.0.0.5', family: 4 }]) : import('node:dns/promises').then((d) => d.lookup(hostname, { all: true }));
      worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox), actionWebhooks: { request: guardedRequester({ lookup: internal }) } });
      const cases: [string, RegExp][] = [
        [`http://127.0.0.1:${port}/quote`, /^blocked_destination: 127\.0\.0\.1 is a loopback address$/],
        [`http://localhost:${port}/quote`, /^blocked_destination: localhost resolves to (127\.0\.0\.1|::1), a loopback address$/],
        [`http://[::1]:${port}/quote`, /^blocked_destination: ::1 is a loopback address$/],
        [`http://pricing.internal.test:${port}/quote`, /^blocked_destination: pricing\.internal\.test resolves to 10\.0\.0\.5, a private address$/],
      ];
      const before = seen.length;
      for (const [hookUrl, refusal] of cases) {
        const c = await contact();
        await event(c, 'quote_requested', { product: 'solar', url: hookUrl });
        await worker.drain();
        const [call, ...sends] = await messages(c);
        expect(call, hookUrl).toMatchObject({ kind: 'action_webhook', status: 'failed' });
        expect(call.reason, hookUrl).toMatch(refusal);
        const e = await enrollment(c);
        expect(e.vars.quote, hookUrl).toBeNull();
        expect(sends.map((m: any) => [m.node, m.status]), hookUrl).toEqual([['sorry', 'sent']]);
        const { rows: steps } = await db.query<any>(`select outcome, detail from enrollment_steps where enrollment_id = $1 and node = 'price' order by seq`, [e.id]);
        expect(steps.at(-1).outcome, hookUrl).toBe('webhook_failed');
        expect(steps.at(-1).detail.error, hookUrl).toMatch(refusal);
      }
      expect(seen.length).toBe(before);

      // The same addresses do reach the fake once allowed: the refusals above were the guard's.
      worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox), actionWebhooks: loopback });
      for (const [hookUrl] of cases.slice(0, 3)) {
        const c = await contact();
        await event(c, 'quote_requested', { product: 'solar', url: hookUrl });
        await worker.drain();
        expect((await enrollment(c)).vars.quote, hookUrl).toEqual({ price: 129, currency: 'EUR' });
      }
      expect(seen.length).toBe(before + 3);
    });

    it('keeps an answer of up to 256 KiB and refuses a bigger one with answer_too_large', async () => {
      const receiver = await new FakeWebhookReceiver({ secret: newWebhookSecret(), rejectUnsigned: false }).start();
      /** A JSON answer of exactly `bytes` bytes. */
      const answer = (bytes: number) => {
        const shell = JSON.stringify({ price: 7, currency: 'EUR', pad: '' });
        return JSON.stringify({ price: 7, currency: 'EUR', pad: 'x'.repeat(bytes - shell.length) });
      };
      try {
        receiver.next(
          { status: 200, headers: { 'content-type': 'application/json' }, body: answer(MAX_WEBHOOK_ANSWER_BYTES) },
          { status: 200, headers: { 'content-type': 'application/json' }, body: answer(MAX_WEBHOOK_ANSWER_BYTES + 1) },
        );
        await publishJourney(db, tenant, quoteJourney(receiver.url('/quote')));
        const fits = await contact();
        await event(fits, 'quote_requested', { product: 'solar' });
        await worker.drain();
        expect((await enrollment(fits)).vars.quote).toMatchObject({ price: 7, currency: 'EUR' });

        const big = await contact();
        await event(big, 'quote_requested', { product: 'solar' });
        await worker.drain();
        expect(receiver.received).toHaveLength(2);
        const [call, ...sends] = await messages(big);
        const refusal = `answer_too_large: the answer is ${MAX_WEBHOOK_ANSWER_BYTES + 1} bytes, more than the ${MAX_WEBHOOK_ANSWER_BYTES} an enrollment keeps`;
        expect(call).toMatchObject({ kind: 'action_webhook', status: 'failed', reason: refusal });
        const e = await enrollment(big);
        expect(e.vars.quote).toBeNull();
        expect(sends.map((m: any) => m.node)).toEqual(['sorry']);
        const { rows: steps } = await db.query<any>(`select outcome, detail from enrollment_steps where enrollment_id = $1 and node = 'price' order by seq`, [e.id]);
        expect(steps.at(-1)).toMatchObject({ outcome: 'webhook_failed', detail: { error: refusal } });
        expect(JSON.stringify(steps)).not.toContain('x'.repeat(1000));
      } finally {
        await receiver.close();
      }
    });

    it('does not follow a redirect', async () => {
      const receiver = await new FakeWebhookReceiver({ secret: newWebhookSecret(), rejectUnsigned: false }).start();
      try {
        receiver.next({ status: 302, headers: { location: `http://127.0.0.1:${port}/quote` } });
        await publishJourney(db, tenant, quoteJourney(receiver.url('/quote')));
        const before = seen.length;
        const c = await contact();
        await event(c, 'quote_requested', { product: 'solar' });
        await worker.drain();
        const [call, ...sends] = await messages(c);
        expect(call).toMatchObject({ kind: 'action_webhook', status: 'failed' });
        expect(call.reason).toBe(`HTTP 302: redirects are not followed (to http://127.0.0.1:${port}/quote)`);
        expect(sends.map((m: any) => m.node)).toEqual(['sorry']);
        expect(receiver.received).toHaveLength(1);
        expect(seen.length).toBe(before);
      } finally {
        await receiver.close();
      }
    });

    it("signs the call with the tenant's webhook account, as the webhook channel signs", async () => {
      const secret = newWebhookSecret();
      const box = new SecretBox('engine-test-secret-key-0123456789abcdef');
      const delivery = deliveryFor(db, { secrets: box, sandbox, webhookAllowPrivate: parsePrivateAllowList('127.0.0.1') });
      await createAccount(db, { secrets: box, adapters: delivery.adapters }, tenant, { name: 'hooks', kind: 'webhook', credentials: { signing_secret: secret } }, 'test', clock.now());
      worker = new Worker({ db, clock, providers: sandboxRegistry(sandbox), actionWebhooks: delivery.actionWebhooks });
      // A careful receiver: it answers 401 to a request whose signature does not check out.
      const receiver = await new FakeWebhookReceiver({ secret }).start();
      try {
        receiver.next({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ price: 99, currency: 'USD' }) });
        await publishJourney(db, tenant, quoteJourney(receiver.url('/quote')));
        const c = await contact();
        await event(c, 'quote_requested', { product: 'heat pump' });
        await worker.drain();
        const [got] = receiver.received;
        expect(got?.problem).toBeUndefined();
        expect(got?.verified).toBe(true);
        expect(verifyWebhookSignature(secret, got!.headers, got!.body)).toBe(true);
        expect(verifyWebhookSignature(newWebhookSecret(), got!.headers, got!.body)).toBe(false);
        const [call] = await messages(c);
        expect(got!.headers['webhook-id']).toBe(call.idempotency_key);
        expect(got!.headers['idempotency-key']).toBe(call.idempotency_key);
        expect(JSON.parse(got!.body)).toEqual({ product: 'heat pump' });
        expect((await enrollment(c)).vars.quote).toEqual({ price: 99, currency: 'USD' });
      } finally {
        await receiver.close();
      }
    });
  });

  describe('webhook channel and result webhooks', () => {
    // What deliveryFor() builds with this allow-list and resolver, and the tenant's webhook account.
    async function guarded(secret: string, allow?: string, resolvesTo?: string): Promise<void> {
      const box = new SecretBox('engine-test-secret-key-0123456789abcdef');
      const lookup: HostLookup | undefined = resolvesTo
        ? async (hostname) => {
            if (hostname !== 'hooks.example.test') throw new Error(`unexpected lookup of ${hostname}`);
            return [{ address: resolvesTo, family: 4 }];
          }
        : undefined;
      const delivery = deliveryFor(db, { secrets: box, sandbox, webhookAllowPrivate: parsePrivateAllowList(allow), webhookLookup: lookup });
      await createAccount(db, { secrets: box, adapters: delivery.adapters }, tenant, { name: 'hooks', kind: 'webhook', credentials: { signing_secret: secret } }, 'test', clock.now());
      worker = new Worker({ db, clock, providers: delivery.router, actionWebhooks: delivery.actionWebhooks });
    }
    const shipped: JourneyDefinition = {
      entry: { event: 'order_shipped' },
      result_webhook: { url: '{{ trigger.callback_url }}' },
      nodes: [{ id: 'notify', type: 'send', channel: 'webhook', content: { url: '{{ trigger.hook_url }}', body: 'Your order is on its way' } }],
    };
    /** The enrollment's step send and result webhook, after both had their go. */
    async function sendAndResult(c: string, hookUrl: string, callbackUrl: string) {
      await publishJourney(db, tenant, shipped);
      await event(c, 'order_shipped', { hook_url: hookUrl, callback_url: callbackUrl });
      await worker.drain();
      clock.advance(2 * RESULT_SETTLE_MS);
      await worker.drain();
      clock.advance(HOUR);
      await worker.drain();
      const rows = await messages(c);
      return { send: rows.find((m: any) => m.kind === 'send'), result: rows.find((m: any) => m.kind === 'result_webhook') };
    }

    it('refuses loopback for good by default: nothing reaches the receiver, the refusal is recorded, nothing retried', async () => {
      const secret = newWebhookSecret();
      await guarded(secret);
      const receiver = await new FakeWebhookReceiver({ secret }).start();
      try {
        const { send, result } = await sendAndResult(await contact(), receiver.url('/step'), receiver.url('/result'));
        expect(send).toMatchObject({ status: 'failed', attempts: 1, reason: expect.stringMatching(/^blocked_destination: 127\.0\.0\.1 is a loopback address/) });
        expect(result).toMatchObject({ status: 'failed', attempts: 1, reason: expect.stringMatching(/^blocked_destination: 127\.0\.0\.1 is a loopback address/) });
        expect(receiver.received).toHaveLength(0);
      } finally {
        await receiver.close();
      }
    });

    it('refuses a name that resolves to a private address', async () => {
      const secret = newWebhookSecret();
      await guarded(secret, '127.0.0.1', '10.1.2.3');
      const receiver = await new FakeWebhookReceiver({ secret }).start();
      try {
        const port = new URL(receiver.url()).port;
        const { send, result } = await sendAndResult(await contact(), `http://hooks.example.test:${port}/step`, `http://hooks.example.test:${port}/result`);
        const why = 'blocked_destination: hooks.example.test resolves to 10.1.2.3, a private address';
        expect(send).toMatchObject({ status: 'failed', attempts: 1, reason: why });
        expect(result).toMatchObject({ status: 'failed', attempts: 1, reason: why });
        expect(receiver.received).toHaveLength(0);
      } finally {
        await receiver.close();
      }
    });

    it('reaches a private destination the allow-list names, signed', async () => {
      const secret = newWebhookSecret();
      await guarded(secret, '127.0.0.1', '127.0.0.1');
      const receiver = await new FakeWebhookReceiver({ secret }).start();
      try {
        const port = new URL(receiver.url()).port;
        const { send, result } = await sendAndResult(await contact(), `http://hooks.example.test:${port}/step`, `http://hooks.example.test:${port}/result`);
        expect(send).toMatchObject({ status: 'sent' });
        expect(result).toMatchObject({ status: 'sent' });
        expect(receiver.received.map((r) => [r.path, r.verified])).toEqual([
          ['/step', true],
          ['/result', true],
        ]);
      } finally {
        await receiver.close();
      }
    });
  });

  it('defers a send over the frequency cap until the cap allows it', async () => {
    await db.query(`update tenants set frequency_caps = '[{"channel":"sms","limit":1,"period":"1d"}]' where id = $1`, [tenant]);
    await publishJourney(db, tenant, {
      entry: { event: 'a' },
      reentry: { mode: 'always' },
      nodes: [{ id: 's', type: 'send', channel: 'sms', content: { body: 'capped' } }],
    });
    const c = await contact();
    await event(c, 'a');
    await worker.drain();
    clock.advance(HOUR);
    await event(c, 'a');
    await worker.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent']);
    const e = await enrollment(c);
    expect(e.wait).toMatchObject({ kind: 'send', reason: 'frequency_cap' });
    expect(e.due_at.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-03T15:00:00Z'));
    clock.set(e.due_at);
    await worker.drain();
    expect((await messages(c)).map((m: any) => m.status)).toEqual(['sent', 'sent']);
  });
});
