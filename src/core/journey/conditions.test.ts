import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConsentEntry } from '../consent.js';
import { collectNeeds, evaluate, matchesEvent, type ConditionFacts, type MessageTimes } from './conditions.js';
import { OPERATORS, type Condition, type Operator } from './definition.js';

const NOW = new Date('2026-05-04T12:00:00Z');
const at = (iso: string) => new Date(iso);

function facts(over: Partial<ConditionFacts> = {}): ConditionFacts {
  return {
    contact: {
      name: 'Ana Lima',
      email: 'ana@example.com',
      phone: '+5511999990000',
      whatsapp: null,
      time_zone: 'America/Sao_Paulo',
      locale: 'pt-BR',
      external_id: 'crm-17',
      attributes: {
        plan: 'pro',
        seats: 12,
        score: '7.5',
        zip: '01310',
        vip: true,
        trial: 'false',
        renewal: '2026-06-01',
        last_seen: '2026-05-01T08:30:00Z',
        interests: ['yoga', 'Running'],
        address: { city: 'São Paulo', geo: { lat: -23.5 } },
        nothing: null,
      },
      tags: ['vip', 'beta'],
    },
    consent: [],
    vars: { trigger: { source: 'qr', amount: 30 }, crm: { tier: 'gold' } },
    now: NOW,
    ...over,
  };
}

const attr = (attribute: string, op?: Operator, value?: unknown): Condition => ({ attribute, ...(op ? { op } : {}), ...(value !== undefined ? { value } : {}) }) as Condition;
const holds = (c: Condition, f: ConditionFacts = facts()) => evaluate(c, f);

describe('comparisons', () => {
  it('defaults op to eq with a value and to exists without', () => {
    expect(holds(attr('plan', undefined, 'pro'))).toBe(true);
    expect(holds(attr('plan', undefined, 'basic'))).toBe(false);
    expect(holds(attr('plan'))).toBe(true);
    expect(holds(attr('missing'))).toBe(false);
  });

  it('compares strings exactly and numbers numerically, numeric strings included', () => {
    expect(holds(attr('plan', 'eq', 'Pro'))).toBe(false);
    expect(holds(attr('seats', 'eq', 12))).toBe(true);
    expect(holds(attr('seats', 'eq', '12'))).toBe(true);
    expect(holds(attr('seats', 'eq', '12.0'))).toBe(true);
    expect(holds(attr('score', 'eq', 7.5))).toBe(true);
    expect(holds(attr('score', 'neq', 7.5))).toBe(false);
  });

  it('keeps strings with leading zeros as strings (postcodes, identifiers)', () => {
    expect(holds(attr('zip', 'eq', '01310'))).toBe(true);
    expect(holds(attr('zip', 'eq', 1310))).toBe(false);
  });

  it('compares booleans, also against "true" and "false"', () => {
    expect(holds(attr('vip', 'eq', true))).toBe(true);
    expect(holds(attr('vip', 'eq', 'true'))).toBe(true);
    expect(holds(attr('trial', 'eq', false))).toBe(true);
    expect(holds(attr('vip', 'eq', 1))).toBe(false);
  });

  it('orders numbers, then dates as instants, then strings', () => {
    expect(holds(attr('seats', 'gt', 10))).toBe(true);
    expect(holds(attr('seats', 'gte', '12'))).toBe(true);
    expect(holds(attr('seats', 'lt', 12))).toBe(false);
    expect(holds(attr('score', 'lte', 8))).toBe(true);
    expect(holds(attr('renewal', 'gt', '2026-05-31'))).toBe(true);
    expect(holds(attr('renewal', 'lt', '2026-06-01T00:00:01Z'))).toBe(true);
    expect(holds(attr('last_seen', 'gt', '2026-05-01T10:00:00+02:00'))).toBe(true); // 08:30Z vs 08:00Z
    expect(holds(attr('last_seen', 'lt', '2026-05-01T08:31'))).toBe(true); // no offset: UTC
    expect(holds(attr('plan', 'gt', 'basic'))).toBe(true);
    expect(holds(attr('plan', 'gt', 3))).toBe(false);
    expect(holds(attr('vip', 'gt', 0))).toBe(false);
  });

  it('tests membership with in and not_in, a list attribute matching any of its items', () => {
    expect(holds(attr('plan', 'in', ['basic', 'pro']))).toBe(true);
    expect(holds(attr('seats', 'in', ['12', 13]))).toBe(true);
    expect(holds(attr('plan', 'not_in', ['basic', 'pro']))).toBe(false);
    expect(holds(attr('interests', 'in', ['chess', 'yoga']))).toBe(true);
    expect(holds(attr('interests', 'not_in', ['chess']))).toBe(true);
  });

  it('contains: substring ignoring case on strings, membership on lists', () => {
    expect(holds({ field: 'name', op: 'contains', value: 'LIMA' })).toBe(true);
    expect(holds(attr('interests', 'contains', 'yoga'))).toBe(true);
    expect(holds(attr('interests', 'contains', 'running'))).toBe(false);
    expect(holds(attr('seats', 'contains', 1))).toBe(false);
  });

  it('starts_with ignores case; matches is a case-insensitive RegExp', () => {
    expect(holds({ field: 'phone', op: 'starts_with', value: '+55' })).toBe(true);
    expect(holds({ field: 'email', op: 'starts_with', value: 'ANA@' })).toBe(true);
    expect(holds({ field: 'email', op: 'matches', value: '@EXAMPLE\\.com$' })).toBe(true);
    expect(holds({ field: 'email', op: 'matches', value: '^bob' })).toBe(false);
    expect(holds(attr('seats', 'matches', '^1\\d$'))).toBe(true);
    expect(holds({ field: 'email', op: 'matches', value: '(' })).toBe(false);
  });

  it('reads dot paths into nested values, never the prototype', () => {
    expect(holds(attr('address.city', 'eq', 'São Paulo'))).toBe(true);
    expect(holds(attr('address.geo.lat', 'lt', 0))).toBe(true);
    expect(holds(attr('address.geo.lng'))).toBe(false);
    expect(holds(attr('plan.length'))).toBe(false);
    expect(holds(attr('constructor'))).toBe(false);
    expect(holds(attr('address.toString'))).toBe(false);
  });

  it('fails every op on a missing value except neq, not_in and not_exists', () => {
    const values: Partial<Record<Operator, unknown>> = { in: ['a'], not_in: ['a'], exists: undefined, not_exists: undefined };
    for (const path of ['missing', 'nothing', 'address.nope']) {
      for (const op of OPERATORS) {
        const c = attr(path, op, op in values ? values[op] : 'a');
        expect([op, holds(c)]).toEqual([op, op === 'neq' || op === 'not_in' || op === 'not_exists']);
      }
    }
  });

  it('reads eq null as "is unset"', () => {
    expect(holds(attr('nothing', 'eq', null))).toBe(true);
    expect(holds(attr('missing', 'eq', null))).toBe(true);
    expect(holds(attr('plan', 'eq', null))).toBe(false);
    expect(holds(attr('plan', 'neq', null))).toBe(true);
  });

  it('reads fields, event properties and variables', () => {
    expect(holds({ field: 'whatsapp' })).toBe(false);
    expect(holds({ field: 'locale', value: 'pt-BR' })).toBe(true);
    expect(holds({ property: 'total', op: 'gte', value: 100 })).toBe(false);
    expect(holds({ property: 'total', op: 'gte', value: 100 }, facts({ event: { name: 'purchase', properties: { total: 120 } } }))).toBe(true);
    expect(holds({ variable: 'trigger.source', value: 'qr' })).toBe(true);
    expect(holds({ variable: 'crm.tier', op: 'in', value: ['gold', 'platinum'] })).toBe(true);
  });
});

describe('leaves', () => {
  it('tag, present by default', () => {
    expect(holds({ tag: 'vip' })).toBe(true);
    expect(holds({ tag: 'VIP' })).toBe(false);
    expect(holds({ tag: 'vip', present: false })).toBe(false);
    expect(holds({ tag: 'churned', present: false })).toBe(true);
  });

  it('consent follows the ledger: latest record wins, channel-wide revocation covers topics', () => {
    const entry = (topic: string, status: 'granted' | 'revoked', iso: string): ConsentEntry => ({ channel: 'whatsapp', topic, status, type: status === 'granted' ? 'express' : null, recorded_at: at(iso) });
    const f = facts({ consent: [entry('marketing', 'granted', '2026-01-01T00:00:00Z'), entry('all', 'granted', '2026-01-01T00:00:00Z')] });
    expect(holds({ consent: 'whatsapp' }, f)).toBe(true);
    expect(holds({ consent: 'whatsapp', topic: 'marketing' }, f)).toBe(true);
    expect(holds({ consent: 'sms' }, f)).toBe(false);
    expect(holds({ consent: 'sms', granted: false }, f)).toBe(true);
    const stopped = facts({ consent: [...f.consent, entry('all', 'revoked', '2026-02-01T00:00:00Z')] });
    expect(holds({ consent: 'whatsapp', topic: 'marketing' }, stopped)).toBe(false);
  });

  it('event history counts in the window, at least once by default', () => {
    const calls: [string, number | null][] = [];
    const f = facts({
      eventCount: (name, since) => {
        calls.push([name, since]);
        return name === 'purchase' ? (since === null ? 5 : 2) : 0;
      },
    });
    expect(holds({ event: 'purchase' }, f)).toBe(true);
    expect(holds({ event: 'purchase', within: '2d', min_count: 3 }, f)).toBe(false);
    expect(holds({ event: 'purchase', within: '1w', max_count: 2 }, f)).toBe(true);
    expect(holds({ event: 'refund', min_count: 0, max_count: 0 }, f)).toBe(true);
    expect(calls).toEqual([
      ['purchase', null],
      ['purchase', 2 * 86_400_000],
      ['purchase', 7 * 86_400_000],
      ['refund', null],
    ]);
  });

  it('event history without a counter counts nothing', () => {
    expect(holds({ event: 'purchase' })).toBe(false);
    expect(holds({ event: 'purchase', min_count: 0, max_count: 0 })).toBe(true);
  });

  it('reply: by node or the latest, text trimmed and without case, payload exact', () => {
    const f = facts({
      replies: {
        ask: { text: '  Yes please ', payload: null, at: NOW },
        '*': { text: null, payload: 'CONFIRM', at: NOW },
      },
    });
    expect(holds({ reply_to: 'ask' }, f)).toBe(true);
    expect(holds({ reply_to: 'other' }, f)).toBe(false);
    expect(holds({ reply_to: 'ask', text: { op: 'eq', value: 'YES PLEASE' } }, f)).toBe(true);
    expect(holds({ reply_to: 'ask', text: { op: 'in', value: ['yes please ', 'y'] } }, f)).toBe(true);
    expect(holds({ reply_to: 'ask', text: { op: 'starts_with', value: 'yes' } }, f)).toBe(true);
    expect(holds({ reply_to: 'ask', text: { op: 'matches', value: '^(yes|y|sim)\\b' } }, f)).toBe(true);
    expect(holds({ reply_to: 'any', payload: 'CONFIRM' }, f)).toBe(true);
    expect(holds({ reply_to: 'any', payload: 'confirm' }, f)).toBe(false);
    expect(holds({ reply_to: 'any', text: { op: 'exists' } }, f)).toBe(false);
    expect(holds({ reply_to: 'any', text: { op: 'not_exists' } }, f)).toBe(true);
    expect(holds({ reply_to: 'any' })).toBe(false);
  });

  it('engaged: the status was reached, within the time after sending when given', () => {
    const m = (o: Partial<MessageTimes>): MessageTimes => ({ sent_at: null, delivered_at: null, opened_at: null, clicked_at: null, replied_at: null, failed_at: null, ...o });
    const f = facts({
      messages: {
        mail: m({ sent_at: at('2026-05-01T10:00:00Z'), delivered_at: at('2026-05-01T10:00:05Z'), opened_at: at('2026-05-02T09:00:00Z') }),
        text: m({ sent_at: at('2026-05-01T10:00:00Z'), failed_at: at('2026-05-01T10:00:01Z') }),
      },
    });
    expect(holds({ engaged: { node: 'mail', status: 'opened' } }, f)).toBe(true);
    expect(holds({ engaged: { node: 'mail', status: 'opened', within: '1d' } }, f)).toBe(true);
    expect(holds({ engaged: { node: 'mail', status: 'opened', within: '12h' } }, f)).toBe(false);
    expect(holds({ not: { engaged: { node: 'mail', status: 'opened', within: '12h' } } }, f)).toBe(true);
    expect(holds({ engaged: { node: 'mail', status: 'clicked' } }, f)).toBe(false);
    expect(holds({ engaged: { node: 'text', status: 'failed', within: '1m' } }, f)).toBe(true);
    expect(holds({ engaged: { node: 'never_sent', status: 'sent' } }, f)).toBe(false);
    expect(holds({ engaged: { node: 'mail', status: 'sent' } })).toBe(false);
  });
});

describe('matchesEvent', () => {
  it('matches the name, then where with the event as property source', () => {
    const { event: _e, ...f } = facts();
    const m = { event: 'purchase', where: { all: [{ property: 'total', op: 'gt' as const, value: 50 }, { attribute: 'plan', value: 'pro' }] } };
    expect(matchesEvent(m, { name: 'purchase', properties: { total: 80 } }, f)).toBe(true);
    expect(matchesEvent(m, { name: 'purchase', properties: { total: 20 } }, f)).toBe(false);
    expect(matchesEvent(m, { name: 'refund', properties: { total: 80 } }, f)).toBe(false);
    expect(matchesEvent({ event: 'refund' }, { name: 'refund', properties: {} }, f)).toBe(true);
  });
});

describe('collectNeeds', () => {
  it('keeps the widest window per event and notes engagement and replies', () => {
    const needs = collectNeeds({
      any: [
        { event: 'purchase', within: '2d' },
        { not: { event: 'purchase', within: '1w' } },
        { all: [{ event: 'visit', within: '1h' }, { engaged: { node: 'a', status: 'opened' } }] },
      ],
    });
    expect(needs).toEqual({ eventHistory: new Map([['purchase', 7 * 86_400_000], ['visit', 3_600_000]]), engagement: true, replies: false });
    collectNeeds({ all: [{ event: 'visit' }, { reply_to: 'any' }] }, needs);
    expect(needs.eventHistory.get('visit')).toBe(Infinity);
    expect(needs.replies).toBe(true);
    expect(collectNeeds({ attribute: 'plan' })).toEqual({ eventHistory: new Map(), engagement: false, replies: false });
  });
});

// ---------------------------------------------------------------------------------------------
// Laws

const scalar = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom('a', 'B', 'pro', '3', '2026-01-01', '', 'true'), fc.boolean(), fc.constant(null));
const attributes = fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })));
const leaf: fc.Arbitrary<Condition> = fc.oneof(
  fc.record({ attribute: fc.constantFrom('a', 'b', 'c', 'd'), op: fc.constantFrom(...OPERATORS.filter((o) => o !== 'in' && o !== 'not_in' && o !== 'exists' && o !== 'not_exists')), value: scalar }),
  fc.record({ attribute: fc.constantFrom('a', 'b', 'c', 'd'), op: fc.constantFrom('in' as const, 'not_in' as const), value: fc.array(scalar, { maxLength: 3 }) }),
  fc.record({ attribute: fc.constantFrom('a', 'b', 'c', 'd'), op: fc.constantFrom('exists' as const, 'not_exists' as const) }),
  fc.record({ tag: fc.constantFrom('x', 'y'), present: fc.boolean() }),
);
const { cond } = fc.letrec<{ cond: Condition }>((tie) => ({
  cond: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ all: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ any: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('cond') }),
  ),
}));
const factsArb = fc.record({ attributes, tags: fc.subarray(['x', 'y']) }).map(({ attributes, tags }) => facts({ contact: { ...facts().contact, attributes, tags } }));

describe('laws', () => {
  it('not c is the negation of c', () => {
    fc.assert(
      fc.property(cond, factsArb, (c, f) => {
        expect(evaluate({ not: c }, f)).toBe(!evaluate(c, f));
      }),
      { numRuns: 1000 },
    );
  });

  it('all is and, any is or, and De Morgan holds', () => {
    fc.assert(
      fc.property(cond, cond, factsArb, (a, b, f) => {
        const x = evaluate(a, f);
        const y = evaluate(b, f);
        expect(evaluate({ all: [a, b] }, f)).toBe(x && y);
        expect(evaluate({ any: [a, b] }, f)).toBe(x || y);
        expect(evaluate({ all: [a] }, f)).toBe(x);
        expect(evaluate({ any: [a] }, f)).toBe(x);
        expect(evaluate({ not: { all: [a, b] } }, f)).toBe(evaluate({ any: [{ not: a }, { not: b }] }, f));
        expect(evaluate({ not: { any: [a, b] } }, f)).toBe(evaluate({ all: [{ not: a }, { not: b }] }, f));
      }),
      { numRuns: 1000 },
    );
  });

  it('a number equals its string form, both ways', () => {
    const num = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    fc.assert(
      fc.property(num, (n) => {
        const f = facts({ contact: { ...facts().contact, attributes: { n, s: String(n) } } });
        expect(evaluate({ attribute: 'n', value: String(n) }, f)).toBe(true);
        expect(evaluate({ attribute: 's', value: n }, f)).toBe(true);
        expect(evaluate({ attribute: 's', op: 'gte', value: n }, f)).toBe(true);
        expect(evaluate({ attribute: 's', op: 'gt', value: n }, f)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('neq is not eq, not_in is not in, in [v] is eq v (for present values and non-null v)', () => {
    fc.assert(
      fc.property(attributes, fc.constantFrom('a', 'b', 'c'), scalar, (attrs, path, v) => {
        fc.pre(attrs[path] !== undefined && attrs[path] !== null && v !== null);
        const f = facts({ contact: { ...facts().contact, attributes: attrs } });
        const eq = evaluate({ attribute: path, op: 'eq', value: v }, f);
        expect(evaluate({ attribute: path, op: 'neq', value: v }, f)).toBe(!eq);
        if (!Array.isArray(attrs[path])) expect(evaluate({ attribute: path, op: 'in', value: [v] }, f)).toBe(eq);
        const inList = evaluate({ attribute: path, op: 'in', value: [v, 'zz'] }, f);
        expect(evaluate({ attribute: path, op: 'not_in', value: [v, 'zz'] }, f)).toBe(!inList);
      }),
      { numRuns: 1000 },
    );
  });

  it('orders numbers totally: exactly one of lt, eq, gt', () => {
    fc.assert(
      fc.property(fc.integer({ min: -50, max: 50 }), fc.integer({ min: -50, max: 50 }), fc.boolean(), (a, b, asString) => {
        const f = facts({ contact: { ...facts().contact, attributes: { a: asString ? String(a) : a } } });
        const ops = (['lt', 'eq', 'gt'] as const).map((op) => evaluate({ attribute: 'a', op, value: b }, f));
        expect(ops.filter(Boolean)).toHaveLength(1);
        expect(evaluate({ attribute: 'a', op: 'lte', value: b }, f)).toBe(!ops[2]);
        expect(evaluate({ attribute: 'a', op: 'gte', value: b }, f)).toBe(!ops[0]);
      }),
    );
  });

  it('exists and not_exists are complements', () => {
    fc.assert(
      fc.property(attributes, fc.constantFrom('a', 'b', 'c', 'd'), (attrs, path) => {
        const f = facts({ contact: { ...facts().contact, attributes: attrs } });
        expect(evaluate({ attribute: path, op: 'exists' }, f)).toBe(!evaluate({ attribute: path, op: 'not_exists' }, f));
      }),
    );
  });
});
