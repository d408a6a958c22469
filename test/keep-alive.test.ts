import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/engine/clock.js';
import { recordInbound } from '../src/engine/inbound.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { createContact } from '../src/store/contacts.js';
import type { Db } from '../src/store/db.js';
import { createTenant } from '../src/store/tenants.js';
import { testApi, type TestApi } from './helpers/api.js';
import { freshDb } from './helpers/db.js';
import { allowAnyTime, grantAll } from './helpers/journeys.js';

/** Seed 002's session maintenance: a short text keeps a contact's WhatsApp window open. */

let db: Db;
let clock: ManualClock;

beforeAll(async () => {
  db = await freshDb();
});
afterAll(() => db.close());

describe('WhatsApp keep-alive', () => {
  let tenant: string;
  let providers: ReturnType<typeof sandboxRegistry>;
  let worker: Worker;

  beforeEach(async () => {
    clock = new ManualClock('2026-06-01T08:00:00Z');
    providers = sandboxRegistry();
    worker = new Worker({ db, clock, providers });
    tenant = (
      await createTenant(db, {
        name: `Parking ${Math.random()}`,
        settings: { whatsapp_keep_alive: { enabled: true, message: 'Hi {{ contact.name }}, your parking sticker is active ✅' } },
      })
    ).id;
    await allowAnyTime(db, tenant);
  });

  const writes = (from: string, text = 'hello') =>
    recordInbound(
      db,
      { tenant_id: tenant, provider: 'sandbox', account_id: null },
      [{ type: 'message', channel: 'whatsapp', from, to: 'sandbox', text, payload: null, provider_message_id: `in-${Math.random()}`, at: clock.now() }],
      clock.now(),
    );
  const sentTo = (phone: string) => providers.sandbox.sent.filter((s) => s.message.to === phone).map((s) => s.message.body);

  it('sends the message once per window when it closes within 18 hours, and again after the contact answers', async () => {
    const c = await createContact(db, tenant, { phone: '+60123456789', name: 'Aisha' }, {}, clock.now());
    await grantAll(db, tenant, [c.id], ['whatsapp']);
    await writes('+60123456789');
    await worker.drain();
    clock.advance(5 * 3600_000);
    await worker.drain();
    // 19 hours of window left: not yet.
    expect(sentTo('+60123456789')).toEqual([]);
    clock.advance(1 * 3600_000 + 60_000);
    await worker.drain();
    expect(sentTo('+60123456789')).toEqual(['Hi Aisha, your parking sticker is active ✅']);
    clock.advance(3 * 3600_000);
    await worker.drain();
    expect(sentTo('+60123456789')).toHaveLength(1);

    await writes('+60123456789', 'thanks!');
    clock.advance(5 * 3600_000);
    await worker.drain();
    expect(sentTo('+60123456789')).toHaveLength(1);
    clock.advance(3600_000 + 60_000);
    await worker.drain();
    expect(sentTo('+60123456789')).toHaveLength(2);
  });

  it('leaves alone contacts who never wrote, whose window closed, who have no consent, or whom a person took over', async () => {
    const wrote = await createContact(db, tenant, { phone: '+60123456780' }, {}, clock.now());
    const never = await createContact(db, tenant, { phone: '+60123456781' }, {}, clock.now());
    await createContact(db, tenant, { phone: '+60123456782' }, {}, clock.now());
    const takenOver = await createContact(db, tenant, { phone: '+60123456783' }, {}, clock.now());
    await grantAll(db, tenant, [wrote.id, never.id, takenOver.id], ['whatsapp']);
    await writes('+60123456780');
    await writes('+60123456782');
    await writes('+60123456783');
    await db.query(`update conversations set assignee = 'agent@acme.example' where contact_id = $1`, [takenOver.id]);
    // Past the window's end without a worker running: too late to keep it open.
    clock.advance(24 * 3600_000 + 60_000);
    await worker.drain();
    expect(providers.sandbox.sent.filter((s) => s.message.tenant_id === tenant)).toEqual([]);
    const { rows } = await db.query<{ status: string; reason: string | null }>(`select status, reason from messages where tenant_id = $1`, [tenant]);
    expect(rows).toEqual([]);
  });

  it('blocks the keep-alive of a contact without consent for it, with the reason', async () => {
    await createContact(db, tenant, { phone: '+60123456784' }, {}, clock.now());
    await writes('+60123456784');
    clock.advance(7 * 3600_000);
    await worker.drain();
    const { rows } = await db.query<{ status: string; reason: string | null }>(`select status, reason from messages where tenant_id = $1`, [tenant]);
    expect(rows).toEqual([{ status: 'suppressed', reason: 'no_consent' }]);
  });

  it('does nothing for a tenant that has not switched it on', async () => {
    const off = (await createTenant(db, { name: `Off ${Math.random()}` })).id;
    const c = await createContact(db, off, { phone: '+60123456785' }, {}, clock.now());
    await grantAll(db, off, [c.id], ['whatsapp']);
    await recordInbound(
      db,
      { tenant_id: off, provider: 'sandbox', account_id: null },
      [{ type: 'message', channel: 'whatsapp', from: '+60123456785', to: 'sandbox', text: 'hi', payload: null, provider_message_id: 'in-off', at: clock.now() }],
      clock.now(),
    );
    clock.advance(7 * 3600_000);
    await worker.drain();
    expect((await db.query('select 1 from messages where tenant_id = $1', [off])).rows).toEqual([]);
  });
});

describe('the keep-alive setting', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await testApi();
  });
  afterAll(() => api.close());

  it('is set through the tenant API and refused with the field named when malformed', async () => {
    const t = await api.tenant('Keep');
    const ok = await api.call(t, 'PATCH', '/v1/tenant', { settings: { whatsapp_keep_alive: { enabled: true, message: 'Still here for you', expiring_within_hours: 12 } } });
    expect(ok.status).toBe(200);
    expect(ok.body.settings.whatsapp_keep_alive).toEqual({ enabled: true, message: 'Still here for you', expiring_within_hours: 12 });
    const bad = await api.call(t, 'PATCH', '/v1/tenant', { settings: { whatsapp_keep_alive: { enabled: true, expiring_within_hours: 30 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields.map((f: { field: string }) => f.field)).toEqual(expect.arrayContaining(['settings.whatsapp_keep_alive.message', 'settings.whatsapp_keep_alive.expiring_within_hours']));
  });
});
