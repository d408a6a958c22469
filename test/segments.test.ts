import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsentEntry } from '../src/core/consent.js';
import { evaluate } from '../src/core/journey/conditions.js';
import type { Condition } from '../src/core/journey/definition.js';
import { isoInstant, type SegmentCondition } from '../src/core/segment.js';
import type { Db } from '../src/store/db.js';
import { newId } from '../src/store/ids.js';
import { compileSegment } from '../src/store/segment-sql.js';
import { countSegment, createSegment, previewSegment, streamSegment } from '../src/store/segments.js';
import { createTenant } from '../src/store/tenants.js';
import { addressHash } from '../src/core/suppression.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

/**
 * Segments over a small world whose every member is chosen by hand, then the SQL against the
 * journey condition evaluator (the reference for the shared leaves) on generated contacts.
 */

const NOW = new Date('2026-03-02T10:00:00Z');
const DAY = 86_400_000;
const ago = (days: number, hours = 0) => new Date(NOW.getTime() - days * DAY - hours * 3_600_000);
const ahead = (days: number) => new Date(NOW.getTime() + days * DAY);
const dateOnly = (d: Date) => d.toISOString().slice(0, 10);

interface Send {
  sent: Date;
  opened?: boolean;
  clicked?: boolean;
  replied?: boolean;
  channel?: string;
}
interface Person {
  name: string;
  email?: string;
  phone?: string;
  attributes?: Record<string, unknown>;
  tags?: string[];
  created_at?: Date;
  consent?: { channel: string; topic: string; status: 'granted' | 'revoked'; at: Date }[];
  inbound?: { channel: string; at: Date }[];
  sends?: Send[];
  events?: { name: string; at: Date; properties?: Record<string, unknown> }[];
}

/** Inserts people as the pipelines would leave them; returns name → contact id. */
async function seed(db: Db, tenantId: string, people: Person[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const p of people) {
    const id = newId();
    ids.set(p.name, id);
    await db.query(
      `insert into contacts (id, tenant_id, external_id, name, email, phone, attributes, tags, created_at) values ($1, $2, $3, $3, $4, $5, $6, $7, $8)`,
      [id, tenantId, p.name, p.email ?? null, p.phone ?? null, JSON.stringify(p.attributes ?? {}), p.tags ?? [], p.created_at ?? ago(400)],
    );
    for (const c of p.consent ?? []) {
      await db.query(
        `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at) values ($1, $2, $3, $4, $5, 'express', $6, $7)`,
        [tenantId, id, c.channel, c.topic, c.status, newId(), c.at],
      );
    }
    const conversations = new Map<string, string>();
    for (const m of p.inbound ?? []) {
      let conv = conversations.get(m.channel);
      if (!conv) {
        conv = newId();
        conversations.set(m.channel, conv);
        const last = Math.max(...(p.inbound ?? []).filter((x) => x.channel === m.channel).map((x) => x.at.getTime()));
        await db.query(
          `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $5, $5)`,
          [conv, tenantId, id, m.channel, new Date(last)],
        );
      }
      await db.query(
        `insert into inbound_messages (id, tenant_id, contact_id, conversation_id, channel, provider, provider_message_id, from_address, to_address, text, received_at)
         values ($1, $2, $3, $4, $5, 'sandbox', $6, 'x', 'y', 'hi', $7)`,
        [newId(), tenantId, id, conv, m.channel, newId(), m.at],
      );
    }
    for (const s of p.sends ?? []) {
      const later = new Date(s.sent.getTime() + 3_600_000);
      await db.query(
        `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, created_at, updated_at, sent_at, delivered_at, opened_at, clicked_at, replied_at)
         values ($1, $2, $3, $4, 'delivered', $9, '{}', $5, $5, $5, $5, $6, $7, $8)`,
        [newId(), tenantId, id, s.channel ?? 'whatsapp', s.sent, s.opened ? later : null, s.clicked ? later : null, s.replied ? later : null, newId()],
      );
    }
    for (const e of p.events ?? []) {
      await db.query(`insert into events (id, tenant_id, contact_id, name, properties, occurred_at) values ($1, $2, $3, $4, $5, $6)`, [
        newId(),
        tenantId,
        id,
        e.name,
        JSON.stringify(e.properties ?? {}),
        e.at,
      ]);
    }
  }
  return ids;
}

const WORLD: Person[] = [
  {
    name: 'ana',
    email: 'ana@example.org',
    phone: '+14155550101',
    attributes: { segment: 'premium', renewal_date: dateOnly(ahead(10)), ltv: 1200, vip: true, pulse: { topics: ['tips', 'updates'] } },
    tags: ['vip'],
    consent: [{ channel: 'whatsapp', topic: 'tips', status: 'granted', at: ago(100) }],
    inbound: [
      { channel: 'whatsapp', at: ago(0, 2) },
      { channel: 'whatsapp', at: ago(3) },
    ],
    sends: [
      { sent: ago(10), opened: true, replied: true },
      { sent: ago(20), replied: true },
    ],
    events: [{ name: 'purchase', at: ago(5), properties: { product: 'product_a', amount: 80 } }],
  },
  {
    name: 'ben',
    email: 'ben@example.com',
    attributes: { segment: 'premium', renewal_date: dateOnly(ahead(45)), ltv: '90' },
    consent: [
      { channel: 'whatsapp', topic: 'all', status: 'granted', at: ago(300) },
      { channel: 'whatsapp', topic: 'tips', status: 'revoked', at: ago(200) },
    ],
    inbound: [{ channel: 'sms', at: ago(200) }],
    sends: [{ sent: ago(200), channel: 'sms' }],
    created_at: ago(500),
  },
  {
    name: 'cara',
    email: 'cara@example.org',
    attributes: { segment: 'basic', renewal_date: dateOnly(ahead(5)), ltv: '300' },
    tags: ['trial'],
    consent: [
      { channel: 'whatsapp', topic: 'tips', status: 'granted', at: ago(50) },
      { channel: 'whatsapp', topic: 'all', status: 'revoked', at: ago(40) },
    ],
    inbound: [{ channel: 'whatsapp', at: ago(1, 6) }],
    sends: [{ sent: ago(1), opened: true }, { sent: ago(2) }, { sent: ago(3) }, { sent: ago(4) }],
    events: [
      { name: 'purchase', at: ago(10), properties: { product: 'product_b', amount: 150 } },
      { name: 'purchase', at: ago(20), properties: { product: 'product_b', amount: 20 } },
      { name: 'purchase', at: ago(100), properties: { product: 'product_b', amount: 20 } },
    ],
    created_at: ago(30),
  },
  { name: 'dan', email: 'dan@example.org', phone: '+14155550104', created_at: ago(10) },
  {
    name: 'eve',
    email: 'eve@example.org',
    attributes: { segment: 'premium', renewal_date: 'soon' },
    consent: [{ channel: 'whatsapp', topic: 'tips', status: 'granted', at: ago(60) }],
    sends: [{ sent: ago(30), clicked: true }, { sent: ago(31), opened: true }, { sent: ago(32) }],
    events: [
      { name: 'purchase', at: ago(40), properties: { product: 'product_a', amount: 50 } },
      { name: 'purchase', at: ago(60), properties: { product: 'product_a', amount: 500 } },
    ],
  },
];

/** The five examples of the issue, as docs/segments.md writes them. */
const EXAMPLES: Record<string, { definition: SegmentCondition; members: string[] }> = {
  'no interaction in 180 days': { definition: { not: { last: 'interaction', op: 'within_last', value: '180d' } }, members: ['ben', 'dan'] },
  'engagement score at least 0.3': { definition: { score: 'engagement', op: 'gte', value: 0.3 }, members: ['ana', 'eve'] },
  'bought product_a': { definition: { event: 'purchase', where: { property: 'product', value: 'product_a' } }, members: ['ana', 'eve'] },
  'renewal_date within the next 30 days': { definition: { attribute: 'renewal_date', op: 'within_next', value: '30d' }, members: ['ana', 'cara'] },
  'premium segment and pulse topic tips': {
    definition: { all: [{ attribute: 'segment', value: 'premium' }, { consent: 'whatsapp', topic: 'tips' }] },
    members: ['ana', 'eve'],
  },
};

/** One case per leaf kind (and the tricky corners of a few). */
const LEAVES: [string, SegmentCondition, string[]][] = [
  ['field contains', { field: 'email', op: 'contains', value: '@EXAMPLE.org' }, ['ana', 'cara', 'dan', 'eve']],
  ['field not_exists', { field: 'phone', op: 'not_exists' }, ['ben', 'cara', 'eve']],
  ['field created_at older_than', { field: 'created_at', op: 'older_than', value: '60d' }, ['ana', 'ben', 'eve']],
  ['field created_at gt relative', { field: 'created_at', op: 'gt', value: { ago: '60d' } }, ['cara', 'dan']],
  ['attribute number gte (numeric strings count)', { attribute: 'ltv', op: 'gte', value: 300 }, ['ana', 'cara']],
  ['attribute typed as string', { attribute: 'ltv', type: 'string', value: '1200' }, ['ana']],
  ['attribute boolean', { attribute: 'vip', value: true }, ['ana']],
  ['attribute in', { attribute: 'segment', op: 'in', value: ['basic', 'gold'] }, ['cara']],
  ['attribute neq (missing passes)', { attribute: 'segment', op: 'neq', value: 'premium' }, ['cara', 'dan']],
  ['nested attribute list contains', { attribute: 'pulse.topics', op: 'contains', value: 'tips' }, ['ana']],
  ['attribute date lt relative', { attribute: 'renewal_date', op: 'lt', value: { from_now: '30d' } }, ['ana', 'cara']],
  ['attribute date gt ISO', { attribute: 'renewal_date', type: 'date', op: 'gt', value: dateOnly(ahead(7)) }, ['ana', 'ben']],
  ['tag', { tag: 'vip' }, ['ana']],
  ['tag absent', { tag: 'vip', present: false }, ['ben', 'cara', 'dan', 'eve']],
  ['consent, whole channel', { consent: 'whatsapp' }, ['ben']],
  ['consent topic: a later channel revocation wins', { consent: 'whatsapp', topic: 'tips', granted: false }, ['ben', 'cara', 'dan']],
  ['suppressed email', { suppressed: 'email' }, ['dan']],
  ['suppressed any', { suppressed: 'any' }, ['ana', 'dan']],
  ['whatsapp window open', { whatsapp_window: 'open' }, ['ana']],
  ['whatsapp window closed', { whatsapp_window: 'closed' }, ['ben', 'cara', 'dan', 'eve']],
  ['last inbound older than 180d', { last: 'inbound', op: 'older_than', value: '180d' }, ['ben']],
  ['last inbound on whatsapp within 2d', { last: 'inbound', channel: 'whatsapp', op: 'within_last', value: '2d' }, ['ana', 'cara']],
  ['last outbound never', { last: 'outbound', op: 'not_exists' }, ['dan']],
  ['replies in 30 days, at least 2', { engagement: 'replies', within: '30d', op: 'gte', value: 2 }, ['ana']],
  ['opens in 90 days', { engagement: 'opens', within: '90d' }, ['ana', 'cara', 'eve']],
  ['no sends in 90 days', { engagement: 'sends', within: '90d', op: 'eq', value: 0 }, ['ben', 'dan']],
  ['sends neq 4', { engagement: 'sends', op: 'neq', value: 4 }, ['ana', 'ben', 'dan', 'eve']],
  ['clicks lt 1', { engagement: 'clicks', op: 'lt', value: 1 }, ['ana', 'ben', 'cara', 'dan']],
  ['score below 0.1', { score: 'engagement', op: 'lt', value: 0.1 }, ['cara']],
  ['no score', { score: 'engagement', op: 'not_exists' }, ['ben', 'dan']],
  ['purchased at least twice', { event: 'purchase', min_count: 2 }, ['cara', 'eve']],
  ['purchased exactly twice in 30 days', { event: 'purchase', within: '30d', min_count: 2, max_count: 2 }, ['cara']],
  ['did not purchase in 30 days', { event: 'purchase', within: '30d', min_count: 0, max_count: 0 }, ['ben', 'dan', 'eve']],
  ['purchased something over 100', { event: 'purchase', where: { property: 'amount', op: 'gt', value: 100 } }, ['cara', 'eve']],
  ['last purchase over 100', { last_event: 'purchase', property: 'amount', op: 'gt', value: 100 }, ['cara']],
  ['last purchase not 50 (no purchase passes)', { last_event: 'purchase', property: 'amount', op: 'neq', value: 50 }, ['ana', 'ben', 'cara', 'dan']],
  ['any / not', { any: [{ tag: 'trial' }, { not: { attribute: 'segment', op: 'exists' } }] }, ['cara', 'dan']],
];

let api: TestApi;
let db: Db;
let tenant: TestTenant;
let other: TestTenant;
let byId: Map<string, string>;

async function members(tenantId: string, definition: SegmentCondition): Promise<string[]> {
  const names: string[] = [];
  for await (const batch of streamSegment(db, tenantId, definition, 2, { now: NOW })) names.push(...batch.map((c) => c.name!));
  return names.sort();
}

beforeAll(async () => {
  api = await testApi();
  db = api.db;
  api.clock.set(NOW);
  tenant = await api.tenant('Segments');
  other = await api.tenant('Other');
  const ids = await seed(db, tenant.id, WORLD);
  byId = new Map([...ids].map(([n, id]) => [id, n]));
  await db.query(`insert into suppressions (id, tenant_id, channel, address_hash, address, reason, source) values ($1, $2, 'email', $3, 'dan@example.org', 'bounced', 'test')`, [
    newId(),
    tenant.id,
    addressHash('dan@example.org'),
  ]);
  await db.query(`insert into suppressions (id, tenant_id, channel, address_hash, address, reason, source) values ($1, $2, 'all', $3, '+14155550101', 'complaint', 'test')`, [
    newId(),
    tenant.id,
    addressHash('+14155550101'),
  ]);
  // Another tenant where everyone matches everything: none of them may ever show up.
  await seed(db, other.id, WORLD.map((p) => ({ ...p, name: `${p.name}-other`, attributes: { ...p.attributes, segment: 'premium' } })));
});
afterAll(() => api.close());

describe('the examples of the issue', () => {
  for (const [name, { definition, members: expected }] of Object.entries(EXAMPLES)) {
    it(name, async () => {
      expect(await members(tenant.id, definition)).toEqual(expected);
      expect(await countSegment(db, tenant.id, definition, NOW)).toBe(expected.length);
    });
  }
});

describe('each leaf', () => {
  for (const [name, definition, expected] of LEAVES) {
    it(name, async () => {
      expect(await members(tenant.id, definition)).toEqual(expected);
      // Two-valued everywhere: the complement is exactly the rest.
      const rest = WORLD.map((p) => p.name).filter((n) => !expected.includes(n));
      expect(await members(tenant.id, { not: definition })).toEqual(rest);
    });
  }

  it('in_segment inlines a saved segment', async () => {
    await createSegment(db, tenant.id, { name: 'premium', definition: { attribute: 'segment', value: 'premium' } }, 'test', NOW);
    expect(await members(tenant.id, { all: [{ in_segment: 'premium' }, { not: { tag: 'vip' } }] })).toEqual(['ben', 'eve']);
  });
});

describe('streaming and preview', () => {
  it('streams in batches of the size asked, every member once', async () => {
    const sizes: number[] = [];
    const seen: string[] = [];
    for await (const batch of streamSegment(db, tenant.id, { field: 'email', op: 'exists' }, 2, { now: NOW })) {
      sizes.push(batch.length);
      seen.push(...batch.map((c) => c.id));
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(new Set(seen).size).toBe(5);
    expect([...seen].sort()).toEqual(seen);
  });

  it('previews the count and the first members by id', async () => {
    const p = await previewSegment(db, tenant.id, { attribute: 'segment', value: 'premium' }, NOW, 2);
    expect(p.count).toBe(3);
    expect(p.sample.map((c) => c.name)).toEqual(['ana', 'ben']);
    expect(p.took_ms).toBeGreaterThanOrEqual(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Generated data against the journey evaluator

const PLAN = fc.constantFrom<unknown>('pro', 'basic', 'Pro', 'pro plan', '10', '007', 10, 2.5, true, 'true', null, ['pro', 'x'], [10, 'basic']);
const VALUE = fc.constantFrom<string | number | boolean>('pro', 'basic', 'PRO', 'pr', '10', '10.0', 10, 2.5, 'true', true, '2026-03-01', 'a');
const ORDERED = fc.constantFrom<string | number>('pro', 'b', '10', '9', 10, 2.5, '2026-03-01', '2026-03-01T12:00:00+02:00', 'Z');
const DATE = fc.constantFrom<unknown>('2026-02-28', '2026-03-01T12:00:00Z', '2026-03-01T13:00:00+02:00', '2026-03-02 09:00', 'soon', 7, undefined);

const person = fc.record({
  name: fc.constantFrom('Ana', 'ana', 'Ben', 'Bea', null),
  attrs: fc.record({ plan: fc.option(PLAN, { nil: undefined }), d: DATE }, { requiredKeys: [] }),
  tags: fc.subarray(['a', 'b', 'c']),
  consent: fc.array(
    fc.record({ topic: fc.constantFrom('all', 'tips'), status: fc.constantFrom<'granted' | 'revoked'>('granted', 'revoked'), day: fc.integer({ min: 0, max: 1 }) }),
    { maxLength: 3 },
  ),
});

const leaf: fc.Arbitrary<object> = fc.oneof(
  fc.record({ attribute: fc.constantFrom('plan', 'd'), op: fc.constantFrom('eq' as const, 'neq' as const), value: fc.oneof(VALUE, fc.constant(null)) }),
  fc.record({ attribute: fc.constantFrom('plan', 'd'), op: fc.constantFrom('in' as const, 'not_in' as const), value: fc.array(VALUE, { minLength: 1, maxLength: 3 }) }),
  fc.record({ attribute: fc.constantFrom('plan', 'd'), op: fc.constantFrom('gt' as const, 'gte' as const, 'lt' as const, 'lte' as const), value: ORDERED }),
  fc.record({ attribute: fc.constantFrom('plan', 'd'), op: fc.constantFrom('contains' as const, 'starts_with' as const), value: fc.constantFrom<string | number>('pr', 'PRO', 'x', '1', 10, '2026') }),
  fc.record({ attribute: fc.constantFrom('plan', 'd', 'nope'), op: fc.constantFrom('exists' as const, 'not_exists' as const) }),
  fc.record({ field: fc.constant('name' as const), op: fc.constantFrom('eq' as const, 'contains' as const, 'starts_with' as const, 'gt' as const), value: fc.constantFrom('ana', 'An', 'b', 'Bea') }),
  fc.record({ tag: fc.constantFrom('a', 'b', 'z'), present: fc.boolean() }),
  fc.record({ consent: fc.constant('whatsapp' as const), topic: fc.constantFrom('tips', 'all'), granted: fc.boolean() }),
);
/** Generated conditions are both journey and segment conditions (the shared leaves only). */
type Both = Condition & SegmentCondition;
const tree = fc.letrec<{ node: object }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ all: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ any: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('node') }),
  ),
})).node as fc.Arbitrary<Both>;

describe('SQL against the journey condition evaluator', () => {
  it('selects exactly the contacts the journey evaluator accepts, with not and de Morgan holding', async () => {
    const t = await createTenant(db, { name: 'generated' });
    await fc.assert(
      fc.asyncProperty(fc.array(person, { minLength: 1, maxLength: 8 }), tree, tree, async (people, x, y) => {
        await db.query('delete from contacts where tenant_id = $1', [t.id]);
        const facts = new Map<string, { contact: Parameters<typeof evaluate>[1]['contact']; consent: ConsentEntry[] }>();
        for (const [i, p] of people.entries()) {
          const id = newId();
          const attributes = Object.fromEntries(Object.entries(p.attrs).filter(([, v]) => v !== undefined));
          await db.query('insert into contacts (id, tenant_id, name, attributes, tags) values ($1, $2, $3, $4, $5)', [id, t.id, p.name, JSON.stringify(attributes), p.tags]);
          // consent_state holds one row per topic: the latest of the generated records for it.
          const latest = new Map<string, ConsentEntry>();
          for (const c of p.consent) {
            const e: ConsentEntry = { channel: 'whatsapp', topic: c.topic, status: c.status, type: 'express', recorded_at: new Date(NOW.getTime() - c.day * DAY) };
            const held = latest.get(c.topic);
            if (!held || e.recorded_at > held.recorded_at || (e.recorded_at.getTime() === held.recorded_at.getTime() && e.status === 'revoked')) latest.set(c.topic, e);
          }
          for (const e of latest.values()) {
            await db.query(
              `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at) values ($1, $2, 'whatsapp', $3, $4, 'express', $5, $6)`,
              [t.id, id, e.topic, e.status, newId(), e.recorded_at],
            );
          }
          const contact = { name: p.name, email: null, phone: null, whatsapp: null, time_zone: null, locale: null, external_id: String(i), attributes, tags: p.tags };
          facts.set(id, { contact, consent: [...latest.values()] });
        }
        const sql = async (d: SegmentCondition) => (await collectIds(t.id, d)).sort();
        const expected = (c: Condition) => [...facts].filter(([, f]) => evaluate(c, { ...f, vars: {}, now: NOW })).map(([id]) => id).sort();
        expect(await sql(x)).toEqual(expected(x));
        expect(await sql({ not: { not: x } })).toEqual(await sql(x));
        expect(await sql({ not: { all: [x, y] } })).toEqual(await sql({ any: [{ not: x }, { not: y }] }));
        expect(await sql({ not: { any: [x, y] } })).toEqual(await sql({ all: [{ not: x }, { not: y }] }));
      }),
      { numRuns: 40 },
    );
  });

  it('compares dates relative to now as a date reading of the value says', async () => {
    const t = await createTenant(db, { name: 'dates' });
    const day = fc.integer({ min: -40, max: 40 });
    const dateCond = fc.oneof(
      fc.record({ attribute: fc.constant('d'), op: fc.constantFrom('within_last' as const, 'within_next' as const, 'older_than' as const), value: fc.constantFrom('1d', '7d', '30d', '12h') }),
      fc.record({
        attribute: fc.constant('d'),
        op: fc.constantFrom('gt' as const, 'gte' as const, 'lt' as const, 'lte' as const),
        value: fc.oneof(fc.record({ ago: fc.constantFrom('1d', '7d', '30d') }), fc.record({ from_now: fc.constantFrom('1d', '7d', '30d') })),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(day.map((n) => dateOnly(ahead(n))), day.map((n) => ahead(n).toISOString()), fc.constantFrom('soon', '2026-02-30', '')), { maxLength: 6 }), dateCond, async (values, cond) => {
        await db.query('delete from contacts where tenant_id = $1', [t.id]);
        const ids: [string, string][] = [];
        for (const v of values) {
          const id = newId();
          ids.push([id, v]);
          await db.query('insert into contacts (id, tenant_id, attributes) values ($1, $2, $3)', [id, t.id, JSON.stringify({ d: v })]);
        }
        const ms = (s: string) => ({ '1d': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '12h': DAY / 2 })[s]!;
        const holds = (v: string) => {
          const d = isoInstant(v)?.getTime();
          if (d === undefined) return false;
          const now = NOW.getTime();
          if (cond.op === 'within_last') return d >= now - ms(cond.value as string) && d <= now;
          if (cond.op === 'within_next') return d >= now && d <= now + ms(cond.value as string);
          if (cond.op === 'older_than') return d < now - ms(cond.value as string);
          const rel = cond.value as { ago?: string; from_now?: string };
          const b = rel.ago ? now - ms(rel.ago) : now + ms(rel.from_now!);
          return cond.op === 'gt' ? d > b : cond.op === 'gte' ? d >= b : cond.op === 'lt' ? d < b : d <= b;
        };
        expect((await collectIds(t.id, cond)).sort()).toEqual(ids.filter(([, v]) => holds(v)).map(([id]) => id).sort());
      }),
      { numRuns: 40 },
    );
  });
});

async function collectIds(tenantId: string, definition: SegmentCondition): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of streamSegment(db, tenantId, definition, 3, { now: NOW, idsOnly: true })) out.push(...batch.map((c) => c.id));
  return out;
}

describe('compiled SQL', () => {
  it('carries every value of the definition as a parameter, never in its text', () => {
    const marker = fc.stringMatching(/^[a-z0-9'"$;\\ -]{1,12}$/).map((s) => `zq${s}`);
    const anyLeaf = fc.oneof(
      fc.record({ attribute: marker, value: marker }),
      fc.record({ attribute: marker, op: fc.constant('in' as const), value: fc.array(marker, { minLength: 1, maxLength: 3 }) }),
      fc.record({ field: fc.constant('email' as const), op: fc.constant('contains' as const), value: marker }),
      fc.record({ tag: marker }),
      fc.record({ consent: fc.constant('sms' as const), topic: marker }),
      fc.record({ event: marker, where: fc.record({ property: marker, op: fc.constant('starts_with' as const), value: marker }) }),
      fc.record({ last_event: marker, property: marker, op: fc.constant('gt' as const), value: marker }),
    );
    fc.assert(
      fc.property(fc.array(anyLeaf, { minLength: 1, maxLength: 4 }), (leaves) => {
        const def = { any: leaves } as SegmentCondition;
        const { where, params } = compileSegment('00000000-0000-7000-8000-000000000000', def, { now: NOW, resolve: () => undefined });
        expect(where).not.toMatch(/zq/);
        const flat = JSON.stringify(params);
        for (const s of JSON.stringify(def).match(/zq[^"\\]*/g) ?? []) expect(flat).toContain(s.slice(0, 3));
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The HTTP API

describe('/v1/segments', () => {
  it('saves, lists, previews, pages the members, edits and deletes', async () => {
    const created = await api.call(tenant, 'POST', '/v1/segments', { name: 'tips subscribers', definition: EXAMPLES['premium segment and pulse topic tips']!.definition });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await api.call(tenant, 'GET', `/v1/segments?name=${encodeURIComponent('tips subscribers')}`)).body.data.map((s: { id: string }) => s.id)).toEqual([id]);
    const preview = await api.call(tenant, 'GET', `/v1/segments/${id}/preview?sample=1`);
    expect(preview.status).toBe(200);
    expect(preview.body.count).toBe(2);
    expect(preview.body.sample.map((c: { name: string }) => c.name)).toEqual(['ana']);
    const page1 = await api.call(tenant, 'GET', `/v1/segments/${id}/contacts?limit=1`);
    const page2 = await api.call(tenant, 'GET', `/v1/segments/${id}/contacts?limit=1&cursor=${page1.body.next_cursor}`);
    expect([...page1.body.data, ...page2.body.data].map((c: { name: string }) => c.name)).toEqual(['ana', 'eve']);
    expect(page2.body.next_cursor).toBeNull();
    const patched = await api.call(tenant, 'PATCH', `/v1/segments/${id}`, { definition: { tag: 'vip' }, description: 'VIPs' });
    expect(patched.status).toBe(200);
    expect(patched.body.description).toBe('VIPs');
    expect((await api.call(tenant, 'GET', `/v1/segments/${id}/preview`)).body.count).toBe(1);
    expect((await api.call(tenant, 'DELETE', `/v1/segments/${id}`)).status).toBe(200);
    expect((await api.call(tenant, 'GET', `/v1/segments/${id}`)).status).toBe(404);
  });

  it('previews an unsaved definition', async () => {
    const res = await api.call(tenant, 'POST', '/v1/segments/preview', { definition: EXAMPLES['no interaction in 180 days']!.definition, sample: 5 });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(2);
    expect(res.body.sample.map((c: { name: string }) => c.name).sort()).toEqual(['ben', 'dan']);
    expect(typeof res.body.took_ms).toBe('number');
  });

  it('takes a definition in YAML', async () => {
    const yaml = ['definition:', '  all:', '    - attribute: segment', '      value: premium', '    - consent: whatsapp', '      topic: tips', 'sample: 0', ''].join('\n');
    const res = await api.app.inject({ method: 'POST', url: '/v1/segments/preview', headers: { authorization: `Bearer ${tenant.key}`, 'content-type': 'application/yaml' }, payload: yaml });
    expect(res.statusCode).toBe(200);
    expect(res.json().count).toBe(2);
  });

  it('names the offending field in a 400', async () => {
    const res = await api.call(tenant, 'POST', '/v1/segments/preview', {
      definition: { all: [{ tag: 'vip' }, { attribute: 'renewal_date', op: 'within_next', value: 'a month' }, { event: 'purchase', within: 'soon' }, { frobnicate: 1 }] },
    });
    expect(res.status).toBe(400);
    const fields = res.body.error.fields.map((f: { field: string }) => f.field);
    expect(fields).toContain('definition.all[1].value');
    expect(fields).toContain('definition.all[2].within');
    expect(fields).toContain('definition.all[3]');
    const unknownRef = await api.call(tenant, 'POST', '/v1/segments', { name: 'dangling', definition: { not: { in_segment: 'no such segment' } } });
    expect(unknownRef.status).toBe(400);
    expect(unknownRef.body.error.fields[0].field).toBe('definition.not.in_segment');
  });

  it('refuses to delete a segment another names, and cycles', async () => {
    const base = await api.call(tenant, 'POST', '/v1/segments', { name: 'base', definition: { tag: 'vip' } });
    const user = await api.call(tenant, 'POST', '/v1/segments', { name: 'user', definition: { all: [{ in_segment: 'base' }, { consent: 'whatsapp' }] } });
    expect(user.status).toBe(201);
    expect(user.body.definition.all[0].in_segment).toBe(base.body.id);
    const del = await api.call(tenant, 'DELETE', `/v1/segments/${base.body.id}`);
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain('"user"');
    const cycle = await api.call(tenant, 'PATCH', `/v1/segments/${base.body.id}`, { definition: { in_segment: user.body.id } });
    expect(cycle.status).toBe(409);
    const self = await api.call(tenant, 'PATCH', `/v1/segments/${base.body.id}`, { definition: { in_segment: 'base' } });
    expect(self.status).toBe(409);
    expect((await api.call(tenant, 'DELETE', `/v1/segments/${user.body.id}`)).status).toBe(200);
    expect((await api.call(tenant, 'DELETE', `/v1/segments/${base.body.id}`)).status).toBe(200);
  });

  it("keeps tenants apart: another tenant's segment cannot be named, its contacts never counted", async () => {
    const mine = await api.call(other, 'POST', '/v1/segments', { name: 'everyone', definition: { field: 'name', op: 'exists' } });
    const res = await api.call(tenant, 'POST', '/v1/segments/preview', { definition: { in_segment: mine.body.id } });
    expect(res.status).toBe(400);
    const all = await api.call(tenant, 'POST', '/v1/segments/preview', { definition: { field: 'name', op: 'exists' }, sample: 100 });
    expect(all.body.count).toBe(WORLD.length);
    expect(all.body.sample.every((c: { id: string }) => byId.has(c.id))).toBe(true);
    expect((await api.call(tenant, 'GET', `/v1/segments/${mine.body.id}/contacts`)).status).toBe(404);
  });
});
