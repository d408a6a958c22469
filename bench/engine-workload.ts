/**
 * The workload of bench/engine.ts and bench/trigger.ts, shared with test/workers.test.ts: one
 * tenant that may send at any hour, contacts spread over twelve time zones with three attributes
 * and consent on SMS and email, the three-step journey (SMS, wait 0, email), enrolment of
 * everyone in it, and the tenant's Twilio and SendGrid accounts pointed at bench/provider-fake.ts.
 * Seeding is set-based SQL so that preparing 100,000 contacts takes seconds and is not what is
 * measured.
 */
import { builtInAdapters } from '../src/channels/adapters/index.js';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { compileJourney } from '../src/core/journey/validate.js';
import { SecretBox } from '../src/core/secrets.js';
import { SandboxProvider } from '../src/engine/providers.js';
import type { Db, Queryable } from '../src/store/db.js';
import { enrollContacts } from '../src/store/enrollments.js';
import { newId } from '../src/store/ids.js';
import { createAccount } from '../src/store/provider-accounts.js';
import { createTenant } from '../src/store/tenants.js';

export const ZONES = [
  'America/New_York',
  'America/Chicago',
  'America/Los_Angeles',
  'America/Sao_Paulo',
  'Europe/London',
  'Europe/Berlin',
  'Africa/Lagos',
  'Africa/Johannesburg',
  'Asia/Kolkata',
  'Asia/Tokyo',
  'Australia/Sydney',
  'Pacific/Auckland',
];
const CITIES = ['Lisbon', 'Lagos', 'Osaka', 'Denver', 'Leeds', 'Pune', 'Perth', 'Recife'];
const PLANS = ['free', 'basic', 'pro', 'enterprise'];

/** SMS, a wait of 0 (it passes at once, but is a node of its own with its own history row), then an email rendered from three attributes. */
export const THREE_STEPS: JourneyDefinition = {
  name: 'Engine bench',
  entry: { api: true },
  nodes: [
    { id: 'sms', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.first_name }}, your {{ contact.plan }} plan is ready' }, next: 'pause' },
    { id: 'pause', type: 'wait', duration: '0s', next: 'mail' },
    {
      id: 'mail',
      type: 'send',
      channel: 'email',
      content: { subject: 'Welcome, {{ contact.first_name }}', body: 'Dear {{ contact.first_name }} of {{ contact.city }}, the {{ contact.plan | upcase }} plan starts today.' },
    },
  ],
};

/** History rows each enrollment of THREE_STEPS leaves, in seq order. */
export const THREE_STEPS_HISTORY = ['sms:queued', 'pause:waited', 'mail:queued', 'mail:completed'];

/** A tenant whose send window is every hour of every day and that has no quiet hours. */
export async function benchTenant(db: Queryable, name = 'Engine bench'): Promise<string> {
  const t = await createTenant(db, { name, time_zone: 'UTC' });
  await sendAnyHour(db, t.id);
  return t.id;
}

/** Lets the tenant send at every hour of every day, without quiet hours. */
export async function sendAnyHour(db: Queryable, tenantId: string): Promise<void> {
  await db.query(`update tenants set send_window = '{"days":[1,2,3,4,5,6,7],"start":"00:00","end":"00:00"}', quiet_hours = '{}' where id = $1`, [tenantId]);
}

/**
 * Inserts `n` contacts with consent on SMS and email (granted long ago, every topic), 20,000
 * per statement; returns their ids in insertion order. Ids are UUIDv7 like the API's.
 */
export async function seedContacts(db: Queryable, tenantId: string, n: number, offset = 0): Promise<string[]> {
  const ids = Array.from({ length: n }, () => newId());
  const CHUNK = 20_000;
  for (let from = 0; from < n; from += CHUNK) {
    const chunk = ids.slice(from, from + CHUNK);
    await db.query(
      `with c as (
         insert into contacts (id, tenant_id, external_id, name, phone, email, time_zone, locale, attributes, tags, created_at, updated_at)
         select x.id, $1, 'bench-' || (x.i + $3), 'Contact ' || (x.i + $3), '+4477' || lpad((x.i + $3)::text, 8, '0'),
                'contact.' || (x.i + $3) || '@example.com', ($4::text[])[1 + (x.i + $3) % array_length($4::text[], 1)], 'en',
                jsonb_build_object('first_name', 'Ada' || (x.i + $3), 'city', ($5::text[])[1 + (x.i + $3) % array_length($5::text[], 1)],
                                   'plan', ($6::text[])[1 + (x.i + $3) % array_length($6::text[], 1)]),
                '{}', now(), now()
           from unnest($2::uuid[]) with ordinality as x(id, i)
         returning id)
       insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
       select $1, c.id, ch, 'all', 'granted', 'express', gen_random_uuid(), '2020-01-01T00:00:00Z'
         from c, unnest(array['sms', 'email']) as ch`,
      [tenantId, chunk, offset + from, ZONES, CITIES, PLANS],
    );
  }
  return ids;
}

/** Stores a journey with one published, active version, as publishing leaves it. */
export async function publish(db: Queryable, tenantId: string, def: JourneyDefinition): Promise<string> {
  const id = newId();
  const compiled = compileJourney(def);
  await db.query(
    `insert into journeys (id, tenant_id, name, status, draft, version, entry_event, published_at) values ($1, $2, $3, 'active', $4, 1, $5, now())`,
    [id, tenantId, def.name ?? 'bench', JSON.stringify(def), compiled.entryEvent],
  );
  await db.query(
    `insert into journey_versions (journey_id, version, tenant_id, definition, channels, published_at, published_by) values ($1, 1, $2, $3, $4, now(), 'bench')`,
    [id, tenantId, JSON.stringify(def), compiled.channels],
  );
  return id;
}

/**
 * Enrols every contact, due now, `chunk` per enrollContacts call and per transaction; with
 * `oneTransaction` all chunks commit together, so workers already listening see the whole load
 * at once.
 */
export async function enrollAll(db: Db, tenantId: string, journeyId: string, contactIds: string[], opts: { chunk?: number; oneTransaction?: boolean } = {}): Promise<number> {
  const chunk = opts.chunk ?? 10_000;
  const target = { journey_id: journeyId, tenant_id: tenantId, version: 1 };
  const enrol = async (tx: Queryable, ids: string[]) =>
    (await enrollContacts(tx, target, ids.map((contact_id) => ({ contact_id })), new Date(), 'bench')).enrolled.length;
  const chunks: string[][] = [];
  for (let i = 0; i < contactIds.length; i += chunk) chunks.push(contactIds.slice(i, i + chunk));
  let enrolled = 0;
  if (opts.oneTransaction) {
    await db.transaction(async (tx) => {
      for (const ids of chunks) enrolled += await enrol(tx, ids);
    });
  } else {
    for (const ids of chunks) enrolled += await db.transaction((tx) => enrol(tx, ids));
  }
  return enrolled;
}

/** Whoever sends through the accounts of addHttpAccounts opens their sealed credentials with it (RAPPORT_SECRET_KEY). */
export const HTTP_SECRET_KEY = 'rapport-bench-engine-secret-key-0123456789ab';
/** What the fake accepts: start it with ProviderFake.start(TWILIO, SENDGRID). */
export const TWILIO = { account_sid: `AC${'e'.repeat(32)}`, auth_token: 'b'.repeat(32) };
export const SENDGRID = { api_key: `SG.rapport-bench-engine.${'k'.repeat(43)}` };

/**
 * Gives the tenant a Twilio account for SMS and (unless `channels` leaves it out) a SendGrid
 * account for e-mail, both pointed at the fake, first in priority, with a sender rate no run
 * reaches: the providers' throughput limits are not what is measured.
 */
export async function addHttpAccounts(db: Db, tenantId: string, fakeUrl: string, channels: readonly ('sms' | 'email')[] = ['sms', 'email']): Promise<void> {
  const deps = { secrets: new SecretBox(HTTP_SECRET_KEY), adapters: builtInAdapters(new SandboxProvider()) };
  const accounts = {
    sms: { name: 'Bench Twilio', kind: 'twilio', credentials: TWILIO, config: { from: '+14155550100' } },
    email: { name: 'Bench SendGrid', kind: 'sendgrid', credentials: SENDGRID, config: { from: 'Rapport Bench <bench@example.com>' } },
  } as const;
  for (const channel of channels) {
    const a = accounts[channel];
    await createAccount(db, deps, tenantId, { ...a, channel, priority: 1, config: { ...a.config, base_url: fakeUrl, rate_per_second: 1_000_000 } }, 'bench', new Date());
  }
}
