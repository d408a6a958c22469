import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SendResult } from '../src/channels/types.js';
import { ManualClock } from '../src/engine/clock.js';
import { RETRY_DELAYS_MS, retrySchedule } from '../src/engine/dispatcher.js';
import type { Delivery, OutgoingMessage, ProviderRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import type { Db } from '../src/store/db.js';
import { ingestEvents } from '../src/store/events.js';
import { recordProviderReceipts } from '../src/store/message-status.js';
import { createTenant } from '../src/store/tenants.js';
import { freshDb } from './helpers/db.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/** A provider whose next answers are scripted; every call is recorded. */
class ScriptedProvider implements ProviderRegistry {
  readonly calls: OutgoingMessage[] = [];
  answers: (() => SendResult | Promise<SendResult>)[] = [];
  async send(msg: OutgoingMessage): Promise<Delivery> {
    this.calls.push(msg);
    const next = this.answers.shift() ?? (() => ({ ok: true, provider_message_id: `SM${this.calls.length}` }) as SendResult);
    return { provider: 'twilio', account_id: null, result: await next() };
  }
}

let db: Db;
let clock: ManualClock;
let provider: ScriptedProvider;
let worker: Worker;
let tenant: string;

beforeAll(async () => {
  db = await freshDb();
});
afterAll(() => db.close());

beforeEach(async () => {
  clock = new ManualClock('2026-03-02T15:00:00Z');
  provider = new ScriptedProvider();
  worker = new Worker({ db, clock, providers: provider });
  tenant = (await createTenant(db, { name: `Dispatch ${Math.random()}`, time_zone: 'America/New_York' })).id;
  await allowAnyTime(db, tenant);
  await publishJourney(db, tenant, { entry: { event: 'go' }, nodes: [{ id: 'sms', type: 'send', channel: 'sms', content: { body: 'Hello' } }] });
});

async function enrolOne(): Promise<string> {
  const n = Math.floor(Math.random() * 1e7).toString().padStart(7, '0');
  const c = await createContact(db, tenant, { phone: `+1212${2 + (Number(n[0]) % 8)}${n.slice(1)}` }, {}, clock.now());
  await grantAll(db, tenant, [c.id], ['sms']);
  await ingestEvents(db, tenant, [{ name: 'go', contact_id: c.id }], clock.now(), {});
  await worker.drain();
  return c.id;
}

const message = async (contactId: string) => (await db.query<any>('select * from messages where contact_id = $1', [contactId])).rows[0];
const timeline = async (id: string) => (await db.query<{ status: string }>('select status from message_status where message_id = $1 order by at, status', [id])).rows.map((r) => r.status);

describe('dispatcher retries and provider answers', () => {
  it('retries a temporary failure on the schedule: three quick retries, then 5, 30 and 120 minutes, then fails', async () => {
    expect(RETRY_DELAYS_MS).toEqual([5_000, 20_000, 60_000, 300_000, 1_800_000, 7_200_000]);
    provider.answers = Array.from({ length: 7 }, () => () => ({ ok: false, permanent: false, code: 'server', error: 'HTTP 503' }));
    const c = await enrolOne();
    const start = clock.now().getTime();
    const dues: number[] = [];
    for (const delay of RETRY_DELAYS_MS) {
      const m = await message(c);
      expect(m.status).toBe('queued');
      dues.push(new Date(m.due_at).getTime() - start);
      clock.advance(delay);
      await worker.drain();
    }
    expect(dues).toEqual(RETRY_DELAYS_MS.reduce<number[]>((acc, d) => [...acc, (acc.at(-1) ?? 0) + d], []));
    const m = await message(c);
    expect(m).toMatchObject({ status: 'failed', attempts: 7 });
    expect(m.reason).toBe('server: HTTP 503');
    expect(provider.calls).toHaveLength(7);
  });

  it('waits out a rate limit as long as asked, without counting an attempt', async () => {
    provider.answers = [() => ({ ok: false, permanent: false, code: 'rate_limited', error: 'HTTP 429', retry_after_ms: 2_500 })];
    const c = await enrolOne();
    let m = await message(c);
    expect(m).toMatchObject({ status: 'queued', attempts: 0 });
    expect(new Date(m.due_at).getTime() - clock.now().getTime()).toBe(2_500);
    clock.advance(2_500);
    await worker.drain();
    m = await message(c);
    expect(m).toMatchObject({ status: 'sent', attempts: 1, provider: 'twilio', provider_message_id: 'SM2' });
  });

  it('records a permanent failure at once with its code, and the journey goes on', async () => {
    provider.answers = [() => ({ ok: false, permanent: true, code: 'invalid_recipient', error: 'The number is not a mobile number' })];
    const c = await enrolOne();
    expect(await message(c)).toMatchObject({ status: 'failed', attempts: 1, reason: 'invalid_recipient: The number is not a mobile number' });
    const { rows } = await db.query<any>('select status from enrollments where contact_id = $1', [c]);
    expect(rows[0].status).toBe('completed');
  });

  it('keeps a receipt that came before the message was recorded, and applies it when it is', async () => {
    // The provider calls back inside its own send call: the receipt beats the dispatcher's record.
    let found: Map<string, string> | undefined;
    provider.answers = [
      async () => {
        found = await db.transaction((tx) => recordProviderReceipts(tx, 'twilio', [{ provider_message_id: 'SMfast', status: 'delivered', at: clock.now() }], clock.now()));
        return { ok: true, provider_message_id: 'SMfast' };
      },
    ];
    const c = await enrolOne();
    expect(found?.size).toBe(0);
    const m = await message(c);
    expect(m.status).toBe('delivered');
    expect(await timeline(m.id)).toEqual(['delivered', 'queued', 'sent'].sort());
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from pending_receipts where provider_message_id = 'SMfast'`);
    expect(rows[0]!.n).toBe(0);
  });

  it("hands the node's options, rendered, and the contact's name and language to the provider", async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'with_options' },
      nodes: [
        {
          id: 'menu',
          type: 'send',
          channel: 'sms',
          content: { body: 'Pick one' },
          options: { media: '{{ trigger.image }}', buttons: [{ id: 'yes', title: 'Yes {{ contact.name }}' }] },
        },
      ],
    });
    const c = await createContact(db, tenant, { phone: '+12125559876', name: 'Lee', locale: 'es-MX' }, {}, clock.now());
    await grantAll(db, tenant, [c.id], ['sms']);
    await ingestEvents(db, tenant, [{ name: 'with_options', contact_id: c.id, properties: { image: 'https://cdn.example/map.png' } }], clock.now(), {});
    await worker.drain();
    const call = provider.calls.find((m) => m.to === '+12125559876')!;
    expect(call.options).toEqual({ media: 'https://cdn.example/map.png', buttons: [{ id: 'yes', title: 'Yes Lee' }] });
    expect(call.contact).toEqual({ name: 'Lee', locale: 'es-MX' });
  });

  it('reads a retry schedule from the environment and refuses a bad one by name', () => {
    expect(retrySchedule('1s, 2m,1h')).toEqual([1_000, 120_000, 3_600_000]);
    expect(() => retrySchedule('1s,soon')).toThrow(/RAPPORT_RETRY_SCHEDULE/);
  });
});

describe('WhatsApp at dispatch and urgency', () => {
  const wrote = (contactId: string, at: Date) =>
    db.query(
      `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at) values (gen_random_uuid(), $1, $2, 'whatsapp', $3, $3, $3)
       on conflict (tenant_id, contact_id, channel) do update set last_inbound_at = excluded.last_inbound_at`,
      [tenant, contactId, at],
    );

  async function whatsappContact(): Promise<string> {
    const n = Math.floor(Math.random() * 1e7).toString().padStart(7, '0');
    const c = await createContact(db, tenant, { phone: `+1646${2 + (Number(n[0]) % 8)}${n.slice(1)}` }, {}, clock.now());
    await grantAll(db, tenant, [c.id], ['whatsapp']);
    return c.id;
  }

  beforeEach(async () => {
    await publishJourney(db, tenant, {
      entry: { event: 'notify' },
      reentry: { mode: 'always' },
      nodes: [
        {
          id: 'note',
          type: 'send',
          channel: 'whatsapp',
          priority: '{{ trigger.urgency }}',
          content: { body: 'Plain text', whatsapp_template: { name: 'notice', language: 'en', parameters: ['{{ trigger.urgency }}'] } },
        },
      ],
    });
  });

  const notify = async (contactId: string, urgency: number) => {
    await ingestEvents(db, tenant, [{ name: 'notify', contact_id: contactId, properties: { urgency } }], clock.now(), {});
    await worker.drain();
  };
  const sentTo = () => provider.calls.filter((m) => m.channel === 'whatsapp').map((m) => (m.whatsapp_template ? `template:${m.whatsapp_template.parameters[0]}` : `text:${m.body}`));

  it('sends the text while the window is open and the template once it has closed', async () => {
    const c = await whatsappContact();
    await wrote(c, new Date(clock.now().getTime() - 3600_000));
    await notify(c, 3);
    clock.advance(24 * 3600_000);
    await notify(c, 3);
    expect(sentTo()).toEqual(['text:Plain text', 'template:3']);
    const rendered = (await db.query<any>('select rendered from messages where contact_id = $1 order by created_at', [c])).rows.map((r) => Object.keys(r.rendered).sort());
    expect(rendered[0]).not.toContain('whatsapp_template');
    expect(rendered[1]).not.toContain('body');
  });

  it('holds a second template for an hour, lets an urgent one through, and takes urgent messages first', async () => {
    const c = await whatsappContact();
    await notify(c, 2);
    clock.advance(10 * 60_000);
    await notify(c, 3);
    expect(sentTo()).toEqual(['template:2']);
    const held = (await db.query<any>(`select status, due_at, reason, attempts from messages where contact_id = $1 and status = 'queued'`, [c])).rows[0];
    expect(held).toMatchObject({ reason: 'whatsapp_template_limit', attempts: 0 });
    expect(new Date(held.due_at).getTime()).toBe(clock.now().getTime() + 50 * 60_000);
    await notify(c, 5);
    expect(sentTo()).toEqual(['template:2', 'template:5']);
    // The urgent template counts too: the held one waits an hour from it.
    clock.advance(50 * 60_000);
    await worker.drain();
    expect(sentTo()).toEqual(['template:2', 'template:5']);
    clock.advance(10 * 60_000);
    await worker.drain();
    expect(sentTo()).toEqual(['template:2', 'template:5', 'template:3']);

    // Due together, the urgent one is claimed first even though it is the younger.
    provider.calls.length = 0;
    const [a, b] = [await whatsappContact(), await whatsappContact()];
    await wrote(a, clock.now());
    await wrote(b, clock.now());
    const small = new Worker({ db, clock, providers: provider, dispatchBatchSize: 1 });
    await ingestEvents(db, tenant, [{ name: 'notify', contact_id: a, properties: { urgency: 1 } }], clock.now(), {});
    clock.advance(1000);
    await ingestEvents(db, tenant, [{ name: 'notify', contact_id: b, properties: { urgency: 5 } }], clock.now(), {});
    await small.drain();
    expect(provider.calls.map((m) => m.to)).toEqual([(await contactPhone(b)), (await contactPhone(a))]);
  });

  it('blocks a template the registry knows is not approved, with the reason', async () => {
    await db.query(`insert into whatsapp_templates (id, tenant_id, name, language, category, status) values (gen_random_uuid(), $1, 'notice', 'en', 'utility', 'paused')`, [tenant]);
    const c = await whatsappContact();
    await notify(c, 3);
    expect(sentTo()).toEqual([]);
    expect(await message(c)).toMatchObject({ status: 'suppressed', reason: 'whatsapp_template_not_approved: notice (en) is paused' });
  });
});

async function contactPhone(id: string): Promise<string> {
  return (await db.query<{ phone: string }>('select phone from contacts where id = $1', [id])).rows[0]!.phone;
}

describe('answers that leave the outcome unknown', () => {
  it('says a message that failed after a timed-out attempt may have been delivered; open circuits cost no attempt', async () => {
    provider.answers = [
      () => ({ ok: false, permanent: false, code: 'unavailable', error: 'every sms provider of this tenant is failing (2 circuits open)', retry_after_ms: 30_000 }),
      () => ({ ok: false, permanent: false, code: 'timeout', error: 'no answer within 15000 ms' }),
      () => ({ ok: false, permanent: true, code: 'rejected', error: 'Message body too long' }),
    ];
    const c = await enrolOne();
    expect(await message(c)).toMatchObject({ status: 'queued', attempts: 0 });
    clock.advance(30_000);
    await worker.drain();
    expect(await message(c)).toMatchObject({ status: 'queued', attempts: 1 });
    clock.advance(5_000);
    await worker.drain();
    const m = await message(c);
    expect(m).toMatchObject({ status: 'failed', attempts: 2 });
    expect(m.reason).toBe('rejected: Message body too long (a provider did not answer an attempt and may have delivered it)');
  });
});
