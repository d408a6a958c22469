import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import type { ConsentChannel } from './channels.js';
import type { ConsentEntry } from './consent.js';
import { addressFor, decideSend, type PolicyDecision, type PolicySettings, type RecipientFacts, type SendRequest } from './policy.js';
import { DEFAULT_QUIET_HOURS, type FrequencyCap } from './tenant.js';
import { inWindowSets, type LocalWindow } from './time.js';

const NY = 'America/New_York';
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const at = (iso: string) => new Date(DateTime.fromISO(iso, { setZone: true }).toMillis());
const local = (d: Date, zone = NY) => DateTime.fromJSDate(d, { zone });

function consent(channel: ConsentChannel, status: 'granted' | 'revoked' = 'granted', topic = 'all', recorded = '2026-01-01T00:00:00Z'): ConsentEntry {
  return { channel, topic, status, type: status === 'granted' ? 'express' : null, recorded_at: new Date(recorded) };
}

const req = (over: Partial<SendRequest> = {}): SendRequest => ({ channel: 'sms', topic: 'marketing', transactional: false, ignoreQuietHours: false, key: 'contact-1:welcome', ...over });
const who = (over: Partial<RecipientFacts> = {}): RecipientFacts => ({
  zone: NY,
  address: '+12125550123',
  consent: [consent('sms'), consent('email'), consent('whatsapp'), consent('voice')],
  suppressed: false,
  recentSends: [],
  ...over,
});
const settings = (over: Partial<PolicySettings> = {}): PolicySettings => ({ quietHours: DEFAULT_QUIET_HOURS, sendWindow: null, caps: [], spreadMinutes: 10, ...over });

// Monday 2026-05-04, noon in New York.
const NOON = at('2026-05-04T12:00:00-04:00');

function deferred(d: PolicyDecision): { until: Date; reason: string } {
  if (d.action !== 'defer') throw new Error(`expected a deferral, got ${JSON.stringify(d)}`);
  return d;
}

describe('decideSend', () => {
  it('sends when nothing stands in the way', () => {
    expect(decideSend(NOON, req(), who(), settings())).toEqual({ action: 'send' });
  });

  it('always sends webhooks', () => {
    const night = at('2026-05-04T03:00:00-04:00');
    const nobody = who({ address: null, consent: [], suppressed: true, recentSends: Array.from({ length: 50 }, () => ({ channel: 'webhook', at: night })) });
    const s = settings({ caps: [{ channel: 'any', limit: 1, period: '1d' }], sendWindow: { start: '09:00', end: '10:00' } });
    expect(decideSend(night, req({ channel: 'webhook' }), nobody, s)).toEqual({ action: 'send' });
  });

  it('blocks a missing address first, then a suppressed one, then missing consent', () => {
    expect(decideSend(NOON, req(), who({ address: null, suppressed: true, consent: [] }), settings())).toMatchObject({ action: 'block', reason: 'invalid_address' });
    expect(decideSend(NOON, req(), who({ address: '', suppressed: true }), settings())).toMatchObject({ action: 'block', reason: 'invalid_address' });
    expect(decideSend(NOON, req(), who({ suppressed: true, consent: [] }), settings())).toEqual({ action: 'block', reason: 'suppressed' });
    expect(decideSend(NOON, req(), who({ consent: [] }), settings())).toMatchObject({ action: 'block', reason: 'no_consent' });
  });

  it('checks consent for the channel and topic', () => {
    expect(decideSend(NOON, req(), who({ consent: [consent('email')] }), settings())).toMatchObject({ action: 'block', reason: 'no_consent' });
    expect(decideSend(NOON, req(), who({ consent: [consent('sms', 'granted', 'marketing')] }), settings())).toEqual({ action: 'send' });
    expect(decideSend(NOON, req({ topic: 'news' }), who({ consent: [consent('sms', 'granted', 'marketing')] }), settings())).toMatchObject({ action: 'block', reason: 'no_consent' });
    // STOP on the channel overrides an earlier topic grant.
    const stopped = [consent('sms', 'granted', 'marketing', '2026-01-01T00:00:00Z'), consent('sms', 'revoked', 'all', '2026-02-01T00:00:00Z')];
    expect(decideSend(NOON, req(), who({ consent: stopped }), settings())).toMatchObject({ action: 'block', reason: 'no_consent', detail: expect.stringContaining('revoked') });
  });

  it('does not let transactional sends skip consent', () => {
    expect(decideSend(NOON, req({ transactional: true, ignoreQuietHours: true, topic: 'transactional' }), who({ consent: [] }), settings())).toMatchObject({ action: 'block', reason: 'no_consent' });
  });

  it('defers a marketing SMS at 22:30 in New York to 08:00–08:10 the next morning', () => {
    const d = deferred(decideSend(at('2026-05-04T22:30:00-04:00'), req(), who(), settings()));
    expect(d.reason).toBe('quiet_hours');
    const l = local(d.until);
    expect(l.toISODate()).toBe('2026-05-05');
    expect(l.hour * 60 + l.minute).toBeGreaterThanOrEqual(8 * 60);
    expect(l.hour * 60 + l.minute).toBeLessThan(8 * 60 + 10);
    // Stable per key; another key lands elsewhere in the ten minutes.
    expect(deferred(decideSend(at('2026-05-04T22:30:00-04:00'), req(), who(), settings())).until.getTime()).toBe(d.until.getTime());
    const others = new Set(Array.from({ length: 50 }, (_, i) => deferred(decideSend(at('2026-05-04T22:30:00-04:00'), req({ key: `c${i}:n` }), who(), settings())).until.getTime()));
    expect(others.size).toBeGreaterThan(40);
  });

  it('computes quiet hours in the recipient\'s zone', () => {
    // 22:30 in New York is 03:30 in London: a London recipient is deferred too, to London's morning.
    const d = deferred(decideSend(at('2026-05-04T22:30:00-04:00'), req(), who({ zone: 'Europe/London' }), settings()));
    expect(local(d.until, 'Europe/London').hour).toBe(8);
    // 07:30 in New York is 12:30 in London.
    expect(decideSend(at('2026-05-04T07:30:00-04:00'), req(), who({ zone: 'Europe/London' }), settings())).toEqual({ action: 'send' });
  });

  it('applies quiet hours per channel', () => {
    const late = at('2026-05-04T22:30:00-04:00');
    expect(decideSend(late, req({ channel: 'email' }), who({ address: 'a@example.com' }), settings())).toEqual({ action: 'send' });
    expect(deferred(decideSend(late, req({ channel: 'voice' }), who(), settings())).reason).toBe('quiet_hours');
  });

  it('sends a transactional message marked ignoreQuietHours at 03:00 local', () => {
    const night = at('2026-05-04T03:00:00-04:00');
    const s = settings({ sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' }, caps: [{ channel: 'sms', limit: 1, period: '1d' }] });
    const busy = who({ recentSends: [{ channel: 'sms', at: new Date(night.getTime() - HOUR) }] });
    expect(decideSend(night, req({ transactional: true, ignoreQuietHours: true }), busy, s)).toEqual({ action: 'send' });
    // Without ignoreQuietHours the quiet hours still hold; without transactional the flag does nothing.
    expect(deferred(decideSend(night, req({ transactional: true }), busy, s)).reason).toBe('quiet_hours');
    expect(deferred(decideSend(night, req({ ignoreQuietHours: true }), who(), s)).reason).toBe('quiet_hours');
  });

  it('defers outside the send window and lets transactional sends through it', () => {
    const s = settings({ sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' } });
    const early = at('2026-05-04T08:30:00-04:00');
    const d = deferred(decideSend(early, req(), who(), s));
    expect(d.reason).toBe('send_window');
    expect(local(d.until).toFormat('yyyy-MM-dd HH')).toBe('2026-05-04 09');
    expect(decideSend(early, req({ transactional: true }), who(), s)).toEqual({ action: 'send' });
    // Saturday → Monday 09:00.
    const sat = deferred(decideSend(at('2026-05-09T12:00:00-04:00'), req(), who(), s));
    expect(sat.reason).toBe('send_window');
    expect(local(sat.until).toFormat('yyyy-MM-dd HH')).toBe('2026-05-11 09');
  });

  it('names quiet hours when both exclude now, and waits for both', () => {
    const s = settings({ sendWindow: { start: '09:00', end: '17:00' } });
    const d = deferred(decideSend(at('2026-05-04T03:00:00-04:00'), req(), who(), s));
    expect(d.reason).toBe('quiet_hours');
    expect(local(d.until).toFormat('HH')).toBe('09');
  });

  it('evaluates a send window with its own zone in that zone', () => {
    const s = settings({ sendWindow: { start: '09:00', end: '17:00', zone: 'Europe/London' } });
    // 08:30 New York = 13:30 London.
    expect(decideSend(at('2026-05-04T08:30:00-04:00'), req(), who(), s)).toEqual({ action: 'send' });
    // 12:30 New York = 17:30 London; London opens at 04:00 New York, quiet hours at 08:00.
    const d = deferred(decideSend(at('2026-05-04T12:30:00-04:00'), req(), who(), s));
    expect(d.reason).toBe('send_window');
    const l = local(d.until);
    expect(l.toISODate()).toBe('2026-05-05');
    expect(l.hour * 60 + l.minute).toBeGreaterThanOrEqual(8 * 60);
    expect(l.hour * 60 + l.minute).toBeLessThan(8 * 60 + 10);
  });

  it('blocks when quiet hours and the send window never overlap', () => {
    const s = settings({ sendWindow: { start: '22:00', end: '23:00' } });
    expect(decideSend(NOON, req(), who(), s)).toMatchObject({ action: 'block', reason: 'no_allowed_time' });
  });

  describe('frequency caps', () => {
    const daily: FrequencyCap = { channel: 'sms', limit: 2, period: '1d' };
    const sent = (channel: string, hoursAgo: number, from = NOON) => ({ channel, at: new Date(from.getTime() - hoursAgo * HOUR) });

    it('counts sends on the channel within the rolling period', () => {
      const s = settings({ caps: [daily] });
      expect(decideSend(NOON, req(), who({ recentSends: [sent('sms', 20)] }), s)).toEqual({ action: 'send' });
      expect(decideSend(NOON, req(), who({ recentSends: [sent('sms', 20), sent('email', 1), sent('sms', 24)] }), s)).toEqual({ action: 'send' });
      // Until the oldest counted send leaves the window: 20 hours ago + 1 day = 4 hours from now.
      const d = deferred(decideSend(NOON, req(), who({ recentSends: [sent('sms', 2), sent('sms', 20)] }), s));
      expect(d).toEqual({ action: 'defer', reason: 'frequency_cap', until: new Date(NOON.getTime() + 4 * HOUR) });
    });

    it('waits for enough sends to leave when the count is over the limit', () => {
      const d = deferred(decideSend(NOON, req(), who({ recentSends: [sent('sms', 1), sent('sms', 23), sent('sms', 3), sent('sms', 2)] }), settings({ caps: [daily] })));
      // Four counted, limit two: once the three oldest (23, 3 and 2 hours ago) have left.
      expect(d.until.getTime()).toBe(NOON.getTime() + 22 * HOUR);
    });

    it('moves the release into the allowed hours', () => {
      const evening = at('2026-05-04T20:00:00-04:00');
      const d = deferred(decideSend(evening, req(), who({ recentSends: [sent('sms', 23, evening), sent('sms', 1, evening)] }), settings({ caps: [daily] })));
      // Released at 21:00, when quiet hours begin: next morning 08:00–08:10.
      expect(d.reason).toBe('frequency_cap');
      const l = local(d.until);
      expect(l.toISODate()).toBe('2026-05-05');
      expect(l.hour * 60 + l.minute).toBeGreaterThanOrEqual(8 * 60);
      expect(l.hour * 60 + l.minute).toBeLessThan(8 * 60 + 10);
    });

    it('blocks instead when the tenant says so', () => {
      expect(decideSend(NOON, req(), who({ recentSends: [sent('sms', 2), sent('sms', 20)] }), settings({ caps: [daily], capAction: 'block' }))).toMatchObject({
        action: 'block',
        reason: 'frequency_cap',
        detail: '2 per 1d on sms',
      });
    });

    it('counts every channel for an "any" cap, but not webhooks', () => {
      const s = settings({ caps: [{ channel: 'any', limit: 2, period: '7d' }] });
      expect(deferred(decideSend(NOON, req(), who({ recentSends: [sent('email', 30), sent('whatsapp', 100)] }), s)).until.getTime()).toBe(NOON.getTime() + (168 - 100) * HOUR);
      expect(decideSend(NOON, req(), who({ recentSends: [sent('email', 30), sent('webhook', 1), sent('webhook', 2)] }), s)).toEqual({ action: 'send' });
    });

    it('ignores caps on other channels and takes the latest release of several caps', () => {
      expect(decideSend(NOON, req(), who({ recentSends: [sent('email', 1), sent('email', 2)] }), settings({ caps: [{ channel: 'email', limit: 1, period: '1d' }] }))).toEqual({ action: 'send' });
      const s = settings({ caps: [daily, { channel: 'sms', limit: 3, period: '7d' }] });
      const d = deferred(decideSend(NOON, req(), who({ recentSends: [sent('sms', 2), sent('sms', 20), sent('sms', 50)] }), s));
      // The daily cap frees a slot in 4 hours, the weekly one in 7 days minus 50 hours.
      expect(d.until.getTime()).toBe(NOON.getTime() + (168 - 50) * HOUR);
    });

    it('lets transactional sends past caps', () => {
      expect(decideSend(NOON, req({ transactional: true }), who({ recentSends: [sent('sms', 2), sent('sms', 20)] }), settings({ caps: [daily] }))).toEqual({ action: 'send' });
    });

    it('counts sends approved earlier in the same batch', () => {
      expect(deferred(decideSend(NOON, req(), who({ recentSends: [sent('sms', 0), sent('sms', 0)] }), settings({ caps: [daily] }))).until.getTime()).toBe(NOON.getTime() + DAY);
    });
  });

  it('never defers to a moment at or before now, and defers on time into the allowed hours', () => {
    const zones = ['America/New_York', 'Europe/London', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Pacific/Chatham', 'America/Sao_Paulo', 'Pacific/Apia', 'UTC', 'Asia/Kathmandu'];
    const hhmm = fc.integer({ min: 0, max: 1439 }).map((m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
    const window: fc.Arbitrary<LocalWindow> = fc.record({ start: hhmm, end: hhmm });
    const days = fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 });
    const channel = fc.constantFrom<'sms' | 'email' | 'whatsapp' | 'voice'>('sms', 'email', 'whatsapp', 'voice');
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 11, 31) }),
        fc.constantFrom(...zones),
        channel,
        fc.boolean(),
        fc.boolean(),
        fc.record({ sms: fc.option(window, { nil: undefined }), email: fc.option(window, { nil: undefined }) }),
        fc.option(fc.record({ days, start: hhmm, end: hhmm, zone: fc.option(fc.constantFrom(...zones), { nil: undefined }) }), { nil: null }),
        fc.array(fc.record({ channel: fc.constantFrom('sms', 'email', 'whatsapp', 'voice', 'any'), limit: fc.integer({ min: 1, max: 4 }), period: fc.constantFrom('1h', '12h', '1d', '7d') }), { maxLength: 3 }),
        fc.array(fc.record({ channel, ago: fc.integer({ min: -2 * HOUR, max: 8 * DAY }) }), { maxLength: 8 }),
        fc.constantFrom<'defer' | 'block'>('defer', 'block'),
        fc.integer({ min: 0, max: 60 }),
        (t, zone, ch, transactional, ignoreQuietHours, quietHours, sendWindow, caps, history, capAction, spreadMinutes) => {
          const now = new Date(t);
          const s: PolicySettings = { quietHours: { sms: quietHours.sms, voice: quietHours.sms, email: quietHours.email }, sendWindow, caps: caps as FrequencyCap[], spreadMinutes, capAction };
          const r: SendRequest = { channel: ch, topic: 'marketing', transactional, ignoreQuietHours, key: `k${t}` };
          const facts = who({ zone, recentSends: history.map((h) => ({ channel: h.channel, at: new Date(t - h.ago) })) });
          const d = decideSend(now, r, facts, s);
          if (d.action !== 'defer') return;
          expect(d.until.getTime()).toBeGreaterThan(t);
          if (d.reason === 'frequency_cap') return;
          const sets = [];
          const quiet = transactional && ignoreQuietHours ? undefined : s.quietHours[ch];
          if (quiet) sets.push({ zone, windows: [quiet] });
          if (sendWindow && !transactional) sets.push({ zone: sendWindow.zone ?? zone, windows: [sendWindow] });
          expect(inWindowSets(now, sets)).toBe(false);
          expect(inWindowSets(d.until, sets)).toBe(true);
          expect(d.until.getTime() - t).toBeLessThan(371 * DAY);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('addressFor', () => {
  const contact = { phone: '+12125550123', email: 'ann@example.com', whatsapp: '+447911123456' };

  it('picks the address each channel sends to', () => {
    expect(addressFor('sms', contact)).toBe('+12125550123');
    expect(addressFor('voice', contact)).toBe('+12125550123');
    expect(addressFor('whatsapp', contact)).toBe('+447911123456');
    expect(addressFor('whatsapp', { phone: '+12125550123', whatsapp: null })).toBe('+12125550123');
    expect(addressFor('email', contact)).toBe('ann@example.com');
    expect(addressFor('webhook', contact)).toBeNull();
  });

  it('gives null for missing or malformed addresses', () => {
    expect(addressFor('sms', {})).toBeNull();
    expect(addressFor('sms', { phone: '2125550123' })).toBeNull();
    expect(addressFor('email', { email: 'not an address' })).toBeNull();
    expect(addressFor('email', { phone: '+12125550123' })).toBeNull();
  });
});
