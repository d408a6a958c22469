import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backedOff,
  chooseItems,
  contactSubjects,
  isoWeek,
  knowledgePool,
  MIN_ARM_DELIVERED,
  occurrenceWeek,
  pulseProblems,
  pulseTargeting,
  teaser,
  toneArm,
  toneVerdict,
  weeksBetween,
  type PoolItem,
  type PulseSpec,
} from './pulse.js';
import { segmentProblems } from './segment.js';

const spec = (over: Partial<PulseSpec> = {}): PulseSpec => ({
  cta: { text: 'Any questions? Just reply.' },
  whatsapp_template: { name: 'weekly_pulse', language: 'en', parameters: ['{{ vars.synthesis.first_name }}', '{{ vars.synthesis.teaser }}'] },
  ...over,
});

describe('pulse targeting', () => {
  it('is a valid segment definition: consent for pulse, pulse.enabled, a WhatsApp address, topics and engagement', () => {
    const def = pulseTargeting(spec({ topics: ['tips', 'product_updates'], min_engagement: 0.3 }));
    expect(segmentProblems(def)).toEqual([]);
    expect(def).toEqual({
      all: [
        { consent: 'whatsapp', topic: 'pulse' },
        { attribute: 'pulse.enabled', value: true },
        { any: [{ field: 'whatsapp', op: 'exists' }, { field: 'phone', op: 'exists' }] },
        { any: [{ attribute: 'pulse.topics', op: 'in', value: ['tips', 'product_updates'] }, { attribute: 'interests', op: 'in', value: ['tips', 'product_updates'] }] },
        { any: [{ score: 'engagement', op: 'gte', value: 0.3 }, { score: 'engagement', op: 'not_exists' }] },
      ],
    });
  });

  it('leaves out the topic and score conditions when the pulse has none, and ANDs the audience in front', () => {
    const audience = { tag: 'premium' };
    const def = pulseTargeting(spec({ min_engagement: 0 }), audience);
    expect(segmentProblems(def)).toEqual([]);
    expect((def as { all: unknown[] }).all).toHaveLength(4);
    expect((def as { all: unknown[] }).all[0]).toEqual(audience);
  });
});

describe('pulse problems', () => {
  it('accepts a well-formed pulse', () => {
    expect(pulseProblems(spec({ tone_test: { variants: [{ name: 'personal', tone: 'highly personal' }, { name: 'pro', tone: 'professional' }], split: [50, 50] } }))).toEqual([]);
  });

  it('names the field of each problem', () => {
    const problems = pulseProblems(
      spec({
        max_length: 40,
        whatsapp_template: { name: 't', language: 'en', parameters: ['{{ contact.name | nosuchfilter }}'] },
        tone_test: { variants: [{ name: 'a', tone: 'x' }, { name: 'a', tone: 'y' }], split: [100] },
      }),
    );
    expect(problems.map((p) => p.field).sort()).toEqual(['action.pulse.max_length', 'action.pulse.tone_test.split', 'action.pulse.tone_test.variants[1].name', 'action.pulse.whatsapp_template.parameters[0]']);
  });

  it('refuses a split with no weight', () => {
    expect(pulseProblems(spec({ tone_test: { variants: [{ name: 'a', tone: 'x' }, { name: 'b', tone: 'y' }], split: [0, 0] } }))[0]?.field).toBe('action.pulse.tone_test.split');
  });
});

describe('weeks', () => {
  it('reads the ISO week in the zone, across a year boundary', () => {
    // Sunday 2026-01-04 23:30 in New York is Monday 04:30 UTC: week 1 there, week 2 in UTC.
    const at = new Date('2026-01-05T04:30:00Z');
    expect(isoWeek(at, 'America/New_York')).toBe('2026-W01');
    expect(isoWeek(at, 'UTC')).toBe('2026-W02');
    expect(isoWeek(new Date('2026-12-31T12:00:00Z'), 'UTC')).toBe('2026-W53');
    expect(weeksBetween('2026-W52', '2027-W02')).toBe(3);
    expect(weeksBetween('2026-W10', '2026-W10')).toBe(0);
  });

  it('takes a recipient-local occurrence\'s week from its wall time', () => {
    expect(occurrenceWeek('2026-03-09T09:00', new Date('2026-03-08T19:00:00Z'), 'UTC')).toBe('2026-W11');
    expect(occurrenceWeek(null, new Date('2026-03-08T19:00:00Z'), 'UTC')).toBe('2026-W10');
  });
});

describe('back-off', () => {
  const unanswered = (weeks: string[]) => weeks.map((week) => ({ week, answered: false }));

  it('holds a contact whose last three pulses went unanswered until four weeks after the last', () => {
    const history = unanswered(['2026-W10', '2026-W09', '2026-W08']);
    expect(backedOff(history, '2026-W11')).toBe(true);
    expect(backedOff(history, '2026-W13')).toBe(true);
    expect(backedOff(history, '2026-W14')).toBe(false);
  });

  it('does not hold one that answered any of them, or has had fewer', () => {
    expect(backedOff([{ week: '2026-W10', answered: false }, { week: '2026-W09', answered: true }, { week: '2026-W08', answered: false }], '2026-W11')).toBe(false);
    expect(backedOff(unanswered(['2026-W10', '2026-W09']), '2026-W11')).toBe(false);
  });

  it('follows the campaign\'s own numbers', () => {
    expect(backedOff(unanswered(['2026-W10']), '2026-W11', { after_unanswered: 1, every_weeks: 2 })).toBe(true);
    expect(backedOff(unanswered(['2026-W10']), '2026-W12', { after_unanswered: 1, every_weeks: 2 })).toBe(false);
  });
});

describe('tone arms', () => {
  const variants = [
    { name: 'a', tone: 'personal' },
    { name: 'b', tone: 'professional' },
  ];

  it('keeps a contact in its arm and splits near the weights', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.integer({ min: 10, max: 90 }), (campaign, share) => {
        const test = { variants, split: [share, 100 - share] };
        const n = 4000;
        const contacts = Array.from({ length: n }, (_, i) => `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`);
        const arms = contacts.map((c) => toneArm(test, campaign, c).name);
        expect(contacts.map((c) => toneArm(test, campaign, c).name)).toEqual(arms);
        const inA = arms.filter((a) => a === 'a').length;
        // Four standard deviations of a binomial share at n = 4000 is under 3.2 points.
        expect(Math.abs(inA / n - share / 100)).toBeLessThan(0.035);
      }),
      { numRuns: 20 },
    );
  });

  it('splits equally without weights', () => {
    let inA = 0;
    for (let i = 0; i < 2000; i++) if (toneArm({ variants }, 'c1', `contact-${i}`).name === 'a') inA++;
    expect(inA / 2000).toBeGreaterThan(0.45);
    expect(inA / 2000).toBeLessThan(0.55);
  });
});

describe('tone verdict', () => {
  it('says "not enough data" while an arm has too few delivered pulses', () => {
    const v = toneVerdict([
      { name: 'a', tone: 'x', recipients: 40, delivered: MIN_ARM_DELIVERED - 1, responded: 20 },
      { name: 'b', tone: 'y', recipients: 40, delivered: 40, responded: 2 },
    ]);
    expect(v).toMatchObject({ leader: null, significant: false });
    expect(v.verdict).toMatch(/^not enough data/);
    expect(v.verdict).toContain('a 20/29');
  });

  it('names the leader with the counts, and says whether the lead is significant', () => {
    const clear = toneVerdict([
      { name: 'a', tone: 'x', recipients: 200, delivered: 200, responded: 60 },
      { name: 'b', tone: 'y', recipients: 200, delivered: 200, responded: 20 },
    ]);
    expect(clear).toMatchObject({ leader: 'a', significant: true });
    expect(clear.z).toBeGreaterThan(1.96);
    expect(clear.verdict).toContain('a leads: 30.0% response (60/200) against b 10.0% (20/200); significant');
    const close = toneVerdict([
      { name: 'a', tone: 'x', recipients: 50, delivered: 50, responded: 10 },
      { name: 'b', tone: 'y', recipients: 50, delivered: 50, responded: 12 },
    ]);
    expect(close).toMatchObject({ leader: 'b', significant: false });
  });
});

describe('choosing knowledge items', () => {
  const item = (id: string, topics: string[], fresh: number, tags: string[] = []): PoolItem => ({ id, kind: 'tip', title: `Item ${id}`, text: 'Text.', topics, tags, url: null, fresh });
  const pool = knowledgePool(
    [item('old-garden', ['gardening'], 1), item('new-garden', ['Gardening'], 5), item('kit', ['seed_kit'], 3), item('news', ['news'], 9), item('promo', [], 8, ['tips'])],
    ['tips'],
  );

  it('puts the contact\'s subjects first, then the campaign\'s topics, fresher first among equals', () => {
    const subjects = contactSubjects({ name: 'Ana', locale: null, tags: [], attributes: { interests: ['gardening'], purchases: ['Seed kit'] } });
    expect(chooseItems(pool, subjects, new Set(), 3).map((i) => i.id)).toEqual(['new-garden', 'kit', 'old-garden']);
    expect(chooseItems(pool, [], new Set(), 2).map((i) => i.id)).toEqual(['promo', 'news']);
  });

  it('prefers items the contact was not sent last time, and fills up with the freshest', () => {
    const subjects = contactSubjects({ name: 'Ana', locale: null, tags: [], attributes: { pulse: { topics: ['gardening'] } } });
    expect(chooseItems(pool, subjects, new Set(['new-garden']), 3).map((i) => i.id)).toEqual(['old-garden', 'promo', 'news']);
    expect(chooseItems(pool, subjects, new Set(['new-garden', 'old-garden', 'promo', 'news', 'kit']), 2).map((i) => i.id)).toEqual(['news', 'promo']);
  });

  it('picks what scoring every item and sorting would pick', () => {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    const arbItem = fc.record({ topics: fc.subarray(keys, { maxLength: 3 }), tags: fc.subarray(keys, { maxLength: 1 }), fresh: fc.integer({ min: 0, max: 20 }) });
    fc.assert(
      fc.property(
        fc.array(arbItem, { minLength: 1, maxLength: 25 }),
        fc.subarray(keys),
        fc.subarray(keys),
        fc.array(fc.nat(24), { maxLength: 4 }),
        fc.integer({ min: 1, max: 5 }),
        (raw, campaignTopics, subjects, prev, max) => {
          const p = knowledgePool(
            raw.map((r, i) => item(`i${String(i).padStart(2, '0')}`, r.topics, r.fresh, r.tags)),
            campaignTopics,
          );
          const previous = new Set(prev.map((i) => `i${String(i).padStart(2, '0')}`));
          const weight = (it: PoolItem) => {
            const named = new Set([...it.topics, ...it.tags]);
            return 2 * subjects.filter((k) => named.has(k)).length + campaignTopics.filter((k) => named.has(k)).length + (previous.has(it.id) ? -3 : 0);
          };
          const order = p.items.map((it, i) => ({ it, i, w: weight(it) }));
          const best = order.filter((x) => x.w > 0).sort((x, y) => y.w - x.w || x.i - y.i).slice(0, max);
          const rest = order.filter((x) => !best.includes(x));
          const expected = [...best, ...rest.filter((x) => !previous.has(x.it.id)), ...rest.filter((x) => previous.has(x.it.id))].slice(0, max).map((x) => x.it.id);
          expect(chooseItems(p, subjects, previous, max).map((x) => x.id)).toEqual(expected);
        },
      ),
    );
  });

  it('never returns more than asked, nor the same item twice', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('gardening', 'tips', 'news', 'seed kit', 'other'), { maxLength: 5 }), fc.integer({ min: 0, max: 6 }), (subjects, max) => {
        const chosen = chooseItems(pool, subjects, new Set(['kit']), max);
        expect(chosen.length).toBe(Math.min(max, pool.items.length));
        expect(new Set(chosen.map((i) => i.id)).size).toBe(chosen.length);
      }),
    );
  });
});

describe('teaser', () => {
  it('keeps a short title and cuts a long one at a word', () => {
    expect(teaser('New: real-time inventory checks')).toBe('New: real-time inventory checks');
    expect(teaser('Automation tip for your workflow: set up automated order status updates today', 40)).toBe('Automation tip for your workflow: set…');
    expect(teaser(undefined)).toBe('');
  });
});
