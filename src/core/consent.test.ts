import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONSENT_TYPES } from './channels.js';
import { ALL_TOPICS, consentProblems, effectiveConsent, latestPerTopic, supersedes, type ConsentEntry } from './consent.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const topics = [ALL_TOPICS, 'marketing', 'alerts'] as const;
const channels = ['sms', 'email'] as const;

// Two channels and four instants, so records that compete and ties are common rather than rare.
const entry = fc.record({
  channel: fc.constantFrom(...channels),
  topic: fc.constantFrom(...topics),
  status: fc.constantFrom('granted' as const, 'revoked' as const),
  type: fc.constantFrom(...CONSENT_TYPES),
  at: fc.integer({ min: 0, max: 3 }),
}).map((r): ConsentEntry => ({ channel: r.channel, topic: r.topic, status: r.status, type: r.status === 'granted' ? r.type : null, recorded_at: new Date(T0 + r.at * 60_000) }));

const ledger = fc.array(entry, { maxLength: 20 });
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

describe('effectiveConsent', () => {
  it('does not depend on the order of the ledger', () => {
    const permuted = ledger.chain((entries) => fc.tuple(fc.constant(entries), fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length })));
    fc.assert(
      fc.property(permuted, fc.constantFrom(...channels), fc.constantFrom(...topics), ([entries, shuffled], channel, topic) => {
        const a = effectiveConsent(entries, channel, topic);
        const b = effectiveConsent(shuffled, channel, topic);
        expect(b.granted).toBe(a.granted);
        expect(b.decidedBy?.recorded_at).toEqual(a.decidedBy?.recorded_at);
        expect(b.decidedBy?.status).toBe(a.decidedBy?.status);
      }),
      { numRuns: 300 },
    );
  });

  it('is decided by the latest relevant record, and a tie is a revocation', () => {
    fc.assert(
      fc.property(ledger, fc.constantFrom(...channels), fc.constantFrom(...topics), (entries, channel, topic) => {
        const relevant = entries.filter((e) => e.channel === channel && (e.topic === topic || e.topic === ALL_TOPICS));
        const r = effectiveConsent(entries, channel, topic);
        if (!relevant.length) {
          expect(r).toEqual({ granted: false, decidedBy: null });
          return;
        }
        const latest = Math.max(...relevant.map((e) => e.recorded_at.getTime()));
        const atLatest = relevant.filter((e) => e.recorded_at.getTime() === latest);
        expect(r.granted).toBe(atLatest.every((e) => e.status === 'granted'));
        expect(r.decidedBy!.recorded_at.getTime()).toBe(latest);
      }),
    );
  });

  it('a channel-wide revocation after any topic grant leaves that topic without consent', () => {
    fc.assert(
      fc.property(ledger, fc.constantFrom(...channels), fc.constantFrom('marketing', 'alerts'), (entries, channel, topic) => {
        const stop: ConsentEntry = { channel, topic: ALL_TOPICS, status: 'revoked', type: null, recorded_at: at(7) };
        expect(effectiveConsent([...entries, stop], channel, topic).granted).toBe(false);
        expect(effectiveConsent([...entries, stop], channel, ALL_TOPICS).granted).toBe(false);
      }),
    );
  });

  it('a later grant for one topic re-opens that topic only', () => {
    const stop: ConsentEntry = { channel: 'sms', topic: ALL_TOPICS, status: 'revoked', type: null, recorded_at: at(1) };
    const grant: ConsentEntry = { channel: 'sms', topic: 'alerts', status: 'granted', type: 'express', recorded_at: at(2) };
    expect(effectiveConsent([grant, stop], 'sms', 'alerts')).toMatchObject({ granted: true, decidedBy: grant });
    expect(effectiveConsent([grant, stop], 'sms', 'marketing')).toMatchObject({ granted: false, decidedBy: stop });
    expect(effectiveConsent([grant, stop], 'voice', 'alerts')).toEqual({ granted: false, decidedBy: null });
  });

  it('a topic never granted or revoked is not granted by a grant of another topic', () => {
    fc.assert(
      fc.property(ledger, fc.constantFrom(...channels), (entries, channel) => {
        const other = entries.filter((e) => e.topic === 'marketing');
        expect(effectiveConsent(other, channel, 'alerts')).toEqual({ granted: false, decidedBy: null });
      }),
    );
  });
});

describe('latestPerTopic', () => {
  it('keeps one record per channel and topic, superseded by no other record of it', () => {
    fc.assert(
      fc.property(ledger, (entries) => {
        const kept = latestPerTopic(entries);
        const keys = new Set(entries.map((e) => `${e.channel}/${e.topic}`));
        expect(kept).toHaveLength(keys.size);
        for (const k of kept) {
          const same = entries.filter((e) => e.channel === k.channel && e.topic === k.topic);
          expect(same.some((e) => supersedes(e, k))).toBe(false);
        }
      }),
    );
  });
});

describe('consentProblems', () => {
  const now = at(0);
  it('requires a type for a grant and refuses a time more than five minutes ahead', () => {
    expect(consentProblems({ channel: 'sms', status: 'granted', source: 'api' }, now, 'records[2]').map((p) => p.field)).toEqual(['records[2].type']);
    expect(consentProblems({ channel: 'sms', status: 'revoked', source: 'api', recorded_at: at(6).toISOString() }, now).map((p) => p.field)).toEqual(['recorded_at']);
    expect(consentProblems({ channel: 'sms', status: 'revoked', source: 'api', recorded_at: at(4).toISOString() }, now)).toEqual([]);
    expect(consentProblems({ channel: 'sms', status: 'revoked', source: 'api', ip: '999.1.1.1' }, now).map((p) => p.field)).toEqual(['ip']);
    expect(consentProblems({ channel: 'sms', status: 'revoked', source: 'api', ip: '2001:db8::1' }, now)).toEqual([]);
  });
});
