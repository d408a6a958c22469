import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  addDuration,
  dateAttributeMoment,
  durationMs,
  inWindows,
  inWindowSets,
  nextAllowed,
  nextAllowedInSets,
  nextLocalTime,
  parseDuration,
  parseOffset,
  spreadWithin,
  type LocalWindow,
} from './time.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const ZONES = [
  'America/New_York',
  'Europe/London',
  'Europe/Berlin',
  'Australia/Lord_Howe', // 30-minute DST
  'Asia/Kolkata',
  'Pacific/Chatham', // +12:45 / +13:45
  'America/Sao_Paulo',
  'Pacific/Apia',
  'UTC',
  'Asia/Kathmandu',
  'America/Santiago', // transitions at midnight
  'Africa/Casablanca', // four transitions a year around Ramadan
  'America/St_Johns',
];

const FROM = Date.UTC(2025, 0, 1);
const TO = Date.UTC(2028, 0, 1);

/** Transition instants per zone in 2025–2027, found with luxon alone. */
const TRANSITIONS = new Map<string, number[]>();
for (const zone of ZONES) {
  const found: number[] = [];
  const off = (t: number) => DateTime.fromMillis(t, { zone }).offset;
  for (let t = FROM; t < TO; t += 6 * HOUR) {
    if (off(t) === off(t + 6 * HOUR)) continue;
    let lo = t;
    let hi = t + 6 * HOUR;
    while (hi - lo > MIN) {
      const mid = lo + Math.floor((hi - lo) / 2 / MIN) * MIN;
      if (off(mid) === off(lo)) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  TRANSITIONS.set(zone, found);
}

const local = (d: Date | null, zone: string) => (d ? DateTime.fromJSDate(d, { zone }).toISO() : null);
const at = (iso: string) => new Date(DateTime.fromISO(iso, { setZone: true }).toMillis());

const arbZone = fc.constantFrom(...ZONES);
/** An instant in 2025–2027, half of them within two days of one of the zone's transitions. */
const arbInstant = (zone: string) => {
  const near = TRANSITIONS.get(zone)!;
  const uniform = fc.integer({ min: FROM, max: TO });
  if (!near.length) return uniform;
  return fc.oneof(uniform, fc.tuple(fc.constantFrom(...near), fc.integer({ min: -2 * DAY, max: 2 * DAY })).map(([t, d]) => t + d));
};
const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
// Times around the usual transition hours come up often.
const arbMinute = fc.oneof(fc.integer({ min: 0, max: 1439 }), fc.constantFrom(0, 60, 90, 120, 135, 150, 165, 180, 1380, 1410));
const arbTime = arbMinute.map(hhmm);
const arbDays = fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }), { nil: undefined });
const arbWindow: fc.Arbitrary<LocalWindow> = fc.record({ start: arbTime, end: arbTime, days: arbDays }).map((w) => (w.days ? w : { start: w.start, end: w.end }));
const arbCase = arbZone.chain((zone) => fc.record({ zone: fc.constant(zone), t: arbInstant(zone) }));

/** Whether t lies in w, read with luxon's own conversion. */
function refInside(t: number, zone: string, w: LocalWindow): boolean {
  const d = DateTime.fromMillis(t, { zone });
  const m = d.hour * 60 + d.minute;
  const [sh, sm] = w.start.split(':').map(Number);
  const [eh, em] = w.end.split(':').map(Number);
  const s = sh! * 60 + sm!;
  const e = eh! * 60 + em!;
  const on = (wd: number) => !w.days || w.days.includes(wd);
  if (s === e) return on(d.weekday);
  if (s < e) return m >= s && m < e && on(d.weekday);
  if (m >= s) return on(d.weekday);
  return m < e && on(d.weekday === 1 ? 7 : d.weekday - 1);
}

describe('durations', () => {
  it('parses units and compounds into exact ms and calendar days', () => {
    expect(parseDuration('30s')).toEqual({ ms: 30_000, days: 0 });
    expect(parseDuration('15m')).toEqual({ ms: 15 * MIN, days: 0 });
    expect(parseDuration('2h')).toEqual({ ms: 2 * HOUR, days: 0 });
    expect(parseDuration('3d')).toEqual({ ms: 0, days: 3 });
    expect(parseDuration('1w')).toEqual({ ms: 0, days: 7 });
    expect(parseDuration('1d12h')).toEqual({ ms: 12 * HOUR, days: 1 });
    expect(parseDuration('1w2d3h4m5s')).toEqual({ ms: 3 * HOUR + 4 * MIN + 5000, days: 9 });
    expect(parseDuration('0s')).toEqual({ ms: 0, days: 0 });
  });

  it('takes a sign in offsets', () => {
    expect(parseOffset('-3d')).toEqual({ sign: -1, ms: 0, days: 3 });
    expect(parseOffset('+2h')).toEqual({ sign: 1, ms: 2 * HOUR, days: 0 });
    expect(parseOffset('1d')).toEqual({ sign: 1, ms: 0, days: 1 });
  });

  it('counts a day as 24 hours for rolling windows', () => {
    expect(durationMs('7d')).toBe(7 * DAY);
    expect(durationMs('1d12h')).toBe(36 * HOUR);
  });

  it('throws on malformed input', () => {
    for (const bad of ['', '3', 'd', '1y', '-3d', '1.5h', ' 1h', '1h ', '1234567s']) expect(() => parseDuration(bad)).toThrow(RangeError);
    expect(() => parseOffset('--1d')).toThrow(RangeError);
  });
});

describe('addDuration', () => {
  const ny = 'America/New_York';

  it('keeps the wall-clock time across the spring-forward night (2026-03-08, New York)', () => {
    expect(local(addDuration(at('2026-03-07T09:00:00-05:00'), '1d', ny), ny)).toBe('2026-03-08T09:00:00.000-04:00');
    // 23 hours later, while 24h is exact:
    expect(local(addDuration(at('2026-03-07T09:00:00-05:00'), '24h', ny), ny)).toBe('2026-03-08T10:00:00.000-04:00');
  });

  it('moves a skipped wall-clock time forward as luxon does', () => {
    expect(local(addDuration(at('2026-03-07T02:30:00-05:00'), '1d', ny), ny)).toBe('2026-03-08T03:30:00.000-04:00');
  });

  it('keeps the wall-clock time across the fall-back night (2026-11-01, New York)', () => {
    expect(local(addDuration(at('2026-10-31T09:00:00-04:00'), '1d', ny), ny)).toBe('2026-11-01T09:00:00.000-05:00');
    expect(local(addDuration(at('2026-11-02T09:00:00-05:00'), '1d', ny, -1), ny)).toBe('2026-11-01T09:00:00.000-05:00');
    expect(local(addDuration(at('2026-10-25T09:00:00-04:00'), '1w', ny), ny)).toBe('2026-11-01T09:00:00.000-05:00');
  });

  it('adds calendar days first, then exact time (Europe/Berlin, 2026-03-29)', () => {
    const berlin = 'Europe/Berlin';
    expect(local(addDuration(at('2026-03-28T12:00:00+01:00'), '1d12h', berlin), berlin)).toBe('2026-03-30T00:00:00.000+02:00');
    expect(local(addDuration(at('2026-03-30T00:00:00+02:00'), '1d12h', berlin, -1), berlin)).toBe('2026-03-28T12:00:00.000+01:00');
  });

  it('agrees with luxon plus/minus in every zone', () => {
    fc.assert(
      fc.property(arbCase, fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 59 }), fc.constantFrom<1 | -1>(1, -1), ({ zone, t }, days, hours, minutes, sign) => {
        const d = `${days}d${hours}h${minutes}m`;
        const expected = DateTime.fromMillis(t, { zone }).plus({ days: sign * days, milliseconds: sign * (hours * HOUR + minutes * MIN) });
        expect(addDuration(new Date(t), d, zone, sign).getTime()).toBe(expected.toMillis());
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the wall-clock time for whole days unless it does not exist on the target day', () => {
    fc.assert(
      fc.property(arbCase, fc.integer({ min: 1, max: 30 }), ({ zone, t }, days) => {
        const before = DateTime.fromMillis(t, { zone });
        const after = DateTime.fromJSDate(addDuration(new Date(t), `${days}d`, zone), { zone });
        const wall = (x: DateTime) => x.toFormat('HH:mm:ss.SSS');
        if (wall(after) === wall(before)) return;
        // Only in a gap: that wall-clock time on the target date does not exist.
        const target = before.plus({ days });
        const asked = DateTime.fromObject({ year: target.year, month: target.month, day: target.day, hour: before.hour, minute: before.minute, second: before.second, millisecond: before.millisecond }, { zone });
        expect(wall(asked)).not.toBe(wall(before));
      }),
      { numRuns: 300 },
    );
  });
});

describe('nextLocalTime', () => {
  const ny = 'America/New_York';

  it('finds the next occurrence strictly after the moment', () => {
    expect(local(nextLocalTime(at('2026-05-04T08:00:00-04:00'), ny, '09:00'), ny)).toBe('2026-05-04T09:00:00.000-04:00');
    expect(local(nextLocalTime(at('2026-05-04T09:00:00-04:00'), ny, '09:00'), ny)).toBe('2026-05-05T09:00:00.000-04:00');
    // 2026-05-04 is a Monday; Wednesday and Friday only:
    expect(local(nextLocalTime(at('2026-05-04T10:00:00-04:00'), ny, '09:00', [3, 5]), ny)).toBe('2026-05-06T09:00:00.000-04:00');
    expect(local(nextLocalTime(at('2026-05-08T10:00:00-04:00'), ny, '09:00', [3, 5]), ny)).toBe('2026-05-13T09:00:00.000-04:00');
  });

  it('uses the end of the gap for a time skipped by spring forward (2026-03-08, New York)', () => {
    expect(local(nextLocalTime(at('2026-03-07T12:00:00-05:00'), ny, '02:30'), ny)).toBe('2026-03-08T03:00:00.000-04:00');
    expect(local(nextLocalTime(at('2026-03-08T03:00:00-04:00'), ny, '02:30'), ny)).toBe('2026-03-09T02:30:00.000-04:00');
  });

  it('counts a repeated time once on the fall-back day (2026-11-01, New York)', () => {
    expect(local(nextLocalTime(at('2026-11-01T00:00:00-04:00'), ny, '01:30'), ny)).toBe('2026-11-01T01:30:00.000-04:00');
    expect(local(nextLocalTime(at('2026-11-01T01:45:00-04:00'), ny, '01:30'), ny)).toBe('2026-11-02T01:30:00.000-05:00');
  });

  it('handles the 30-minute shift on Lord Howe Island and Chatham\'s quarter-hour offsets', () => {
    const lh = 'Australia/Lord_Howe';
    // 2026-10-04 02:00 becomes 02:30 (+10:30 → +11:00).
    expect(local(nextLocalTime(at('2026-10-04T00:00:00+10:30'), lh, '02:15'), lh)).toBe('2026-10-04T02:30:00.000+11:00');
    const chatham = 'Pacific/Chatham';
    // 2026-09-27 02:45 becomes 03:45 (+12:45 → +13:45).
    expect(local(nextLocalTime(at('2026-09-27T00:00:00+12:45'), chatham, '03:00'), chatham)).toBe('2026-09-27T03:45:00.000+13:45');
    expect(local(nextLocalTime(at('2026-05-01T00:00:00+05:45'), 'Asia/Kathmandu', '09:00'), 'Asia/Kathmandu')).toBe('2026-05-01T09:00:00.000+05:45');
  });

  it('returns the first later moment at that local time on an allowed day, in every zone', () => {
    fc.assert(
      fc.property(arbCase, arbMinute, arbDays, ({ zone, t }, minute, days) => {
        const time = hhmm(minute);
        const r = nextLocalTime(new Date(t), zone, time, days).getTime();
        expect(r).toBeGreaterThan(t);
        const lr = DateTime.fromMillis(r, { zone });
        if (days) expect(days).toContain(lr.weekday);

        /** The instants of date `d` whose local time is `time`, found with luxon. */
        const occurrences = (d: DateTime) => {
          const guess = DateTime.fromObject({ year: d.year, month: d.month, day: d.day, hour: Math.floor(minute / 60), minute: minute % 60 }, { zone }).toMillis();
          const all = [-HOUR, -30 * MIN, 0, 30 * MIN, HOUR].map((s) => guess + s).filter((x) => {
            const l = DateTime.fromMillis(x, { zone });
            return l.hasSame(d, 'day') && l.hour * 60 + l.minute === minute && l.second === 0;
          });
          return [...new Set(all)].sort((a, b) => a - b);
        };

        const own = occurrences(lr);
        if (own.length) {
          expect(r).toBe(own[0]);
        } else {
          // Skipped by a transition: r is the instant the clock jumped over the time.
          const before = DateTime.fromMillis(r - 1000, { zone });
          const wall = (x: DateTime) => x.toMillis() + x.offset * MIN;
          const wanted = Date.UTC(lr.year, lr.month - 1, lr.day, Math.floor(minute / 60), minute % 60);
          expect(before.offset).not.toBe(lr.offset);
          expect(wall(before)).toBeLessThan(wanted);
          expect(wall(lr)).toBeGreaterThan(wanted);
        }
        // No earlier date between t and r has its occurrence after t.
        for (let d = DateTime.fromMillis(t, { zone }).startOf('day'); d < lr.startOf('day'); d = d.plus({ days: 1 })) {
          if (days && !days.includes(d.weekday)) continue;
          const first = occurrences(d)[0];
          if (first !== undefined) expect(first).toBeLessThanOrEqual(t);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('dateAttributeMoment', () => {
  const ny = 'America/New_York';

  it('reads a date as that day at a local time, 09:00 by default', () => {
    expect(local(dateAttributeMoment('2026-05-01', undefined, undefined, ny), ny)).toBe('2026-05-01T09:00:00.000-04:00');
    expect(local(dateAttributeMoment('2026-05-01', undefined, '18:30', ny), ny)).toBe('2026-05-01T18:30:00.000-04:00');
    expect(local(dateAttributeMoment('2026-03-08', undefined, '02:30', ny), ny)).toBe('2026-03-08T03:00:00.000-04:00');
  });

  it('reads a date-time with an offset as an instant and ignores the time', () => {
    expect(dateAttributeMoment('2026-05-01T10:00:00Z', undefined, '18:30', ny)?.toISOString()).toBe('2026-05-01T10:00:00.000Z');
    expect(dateAttributeMoment('2026-05-01T10:00:00.250+02:00', undefined, undefined, ny)?.toISOString()).toBe('2026-05-01T08:00:00.250Z');
    expect(dateAttributeMoment('2026-05-01T10:00-0530', undefined, undefined, ny)?.toISOString()).toBe('2026-05-01T15:30:00.000Z');
  });

  it('reads a date-time without an offset as local time in the zone', () => {
    expect(local(dateAttributeMoment('2026-05-01T10:00:00', undefined, undefined, ny), ny)).toBe('2026-05-01T10:00:00.000-04:00');
  });

  it('reads a number as epoch milliseconds', () => {
    expect(dateAttributeMoment(Date.UTC(2026, 4, 1), undefined, undefined, ny)?.toISOString()).toBe('2026-05-01T00:00:00.000Z');
  });

  it('applies the offset with calendar days in the zone', () => {
    // Three days before 2026-03-10 09:00 EDT is 2026-03-07 09:00 EST: 71 hours, not 72.
    expect(local(dateAttributeMoment('2026-03-10', '-3d', undefined, ny), ny)).toBe('2026-03-07T09:00:00.000-05:00');
    expect(local(dateAttributeMoment('2026-03-10', '+2h', undefined, ny), ny)).toBe('2026-03-10T11:00:00.000-04:00');
    expect(local(dateAttributeMoment('2026-03-10', '1d', undefined, ny), ny)).toBe('2026-03-11T09:00:00.000-04:00');
    expect(dateAttributeMoment('2026-05-01T10:00:00Z', '-1d2h', undefined, 'UTC')?.toISOString()).toBe('2026-04-30T08:00:00.000Z');
  });

  it('gives null for anything else', () => {
    for (const v of ['', 'soon', '2026-02-30', '2026-13-01', '2026-5-1', '2026-05-01T25:00:00Z', '1714550400000', null, undefined, true, {}, [], NaN, Infinity]) {
      expect(dateAttributeMoment(v, undefined, undefined, ny)).toBeNull();
    }
  });
});

describe('windows', () => {
  const ny = 'America/New_York';
  const quiet: LocalWindow = { start: '08:00', end: '21:00' };
  const weekdays: LocalWindow = { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' };

  it('reads half-open local hours', () => {
    expect(inWindows(at('2026-05-04T08:00:00-04:00'), ny, [quiet])).toBe(true);
    expect(inWindows(at('2026-05-04T20:59:59-04:00'), ny, [quiet])).toBe(true);
    expect(inWindows(at('2026-05-04T21:00:00-04:00'), ny, [quiet])).toBe(false);
    expect(inWindows(at('2026-05-04T07:59:59-04:00'), ny, [quiet])).toBe(false);
    expect(inWindows(at('2026-05-04T12:00:00-04:00'), ny, [])).toBe(true);
    expect(inWindows(at('2026-05-04T03:00:00-04:00'), ny, [{ start: '00:00', end: '00:00' }])).toBe(true);
    expect(inWindows(at('2026-05-04T03:00:00-04:00'), ny, [{ days: [2], start: '00:00', end: '00:00' }])).toBe(false);
  });

  it('gives a window crossing midnight to the day it starts', () => {
    const fridayNight: LocalWindow = { days: [5], start: '22:00', end: '06:00' };
    expect(inWindows(at('2026-05-08T23:00:00-04:00'), ny, [fridayNight])).toBe(true); // Friday
    expect(inWindows(at('2026-05-09T03:00:00-04:00'), ny, [fridayNight])).toBe(true); // Saturday morning
    expect(inWindows(at('2026-05-08T03:00:00-04:00'), ny, [fridayNight])).toBe(false); // Friday morning
    expect(inWindows(at('2026-05-09T06:00:00-04:00'), ny, [fridayNight])).toBe(false);
  });

  it('intersects windows', () => {
    expect(inWindows(at('2026-05-04T08:30:00-04:00'), ny, [quiet, weekdays])).toBe(false);
    expect(inWindows(at('2026-05-04T09:30:00-04:00'), ny, [quiet, weekdays])).toBe(true);
    expect(inWindows(at('2026-05-09T09:30:00-04:00'), ny, [quiet, weekdays])).toBe(false);
  });

  it('finds the next allowed moment of an intersection', () => {
    // Saturday 10:00 → Monday 09:00.
    expect(local(nextAllowed(at('2026-05-09T10:00:00-04:00'), ny, [quiet, weekdays]), ny)).toBe('2026-05-11T09:00:00.000-04:00');
    expect(local(nextAllowed(at('2026-05-04T22:30:00-04:00'), ny, [quiet]), ny)).toBe('2026-05-05T08:00:00.000-04:00');
    const inside = at('2026-05-04T12:00:00-04:00');
    expect(nextAllowed(inside, ny, [quiet, weekdays])).toBe(inside);
  });

  it('returns null when the windows never meet', () => {
    expect(nextAllowed(at('2026-05-04T12:00:00-04:00'), ny, [{ start: '08:00', end: '09:00' }, { start: '10:00', end: '11:00' }])).toBeNull();
    expect(nextAllowed(at('2026-05-04T12:00:00-04:00'), ny, [{ days: [1], start: '08:00', end: '09:00' }, { days: [2], start: '08:00', end: '09:00' }])).toBeNull();
    expect(nextAllowed(at('2026-05-04T12:00:00-04:00'), ny, [{ days: [], start: '08:00', end: '09:00' }])).toBeNull();
  });

  it('skips a window swallowed by the spring-forward gap (2026-03-29, Europe/Berlin)', () => {
    const berlin = 'Europe/Berlin';
    const sundayNight: LocalWindow = { days: [7], start: '02:00', end: '02:30' };
    expect(local(nextAllowed(at('2026-03-29T00:00:00+01:00'), berlin, [sundayNight]), berlin)).toBe('2026-04-05T02:00:00.000+02:00');
    // A window that starts in the gap opens when the clocks jump.
    expect(local(nextAllowed(at('2026-03-29T00:00:00+01:00'), berlin, [{ start: '02:30', end: '04:00' }]), berlin)).toBe('2026-03-29T03:00:00.000+02:00');
  });

  it('re-enters a window when the clocks fall back into it (2026-11-01, New York)', () => {
    const w: LocalWindow = { start: '01:00', end: '01:30' };
    expect(local(nextAllowed(at('2026-11-01T01:45:00-04:00'), ny, [w]), ny)).toBe('2026-11-01T01:00:00.000-05:00');
    // The jump lands in the middle of the window...
    expect(local(nextAllowed(at('2026-11-01T01:45:00-04:00'), ny, [{ start: '00:30', end: '01:30' }]), ny)).toBe('2026-11-01T01:00:00.000-05:00');
    // ...or before it, which then opens at its second 01:15.
    expect(local(nextAllowed(at('2026-11-01T01:05:00-05:00'), ny, [{ start: '01:15', end: '01:45' }]), ny)).toBe('2026-11-01T01:15:00.000-05:00');
  });

  it('intersects windows kept in different zones', () => {
    // 09:00–17:00 London and 08:00–21:00 New York: 13:00 London at the earliest in May.
    const sets = [
      { zone: 'Europe/London', windows: [{ start: '09:00', end: '17:00' }] },
      { zone: ny, windows: [quiet] },
    ];
    expect(nextAllowedInSets(at('2026-05-04T09:00:00+01:00'), sets)?.toISOString()).toBe('2026-05-04T12:00:00.000Z');
    expect(inWindowSets(at('2026-05-04T12:30:00Z'), sets)).toBe(true);
  });

  it('agrees with luxon on whether an instant is inside', () => {
    fc.assert(
      fc.property(arbCase, arbWindow, ({ zone, t }, w) => {
        expect(inWindows(new Date(t), zone, [w])).toBe(refInside(t, zone, w));
      }),
      { numRuns: 2000 },
    );
  });

  it('nextAllowed gives the earliest allowed moment at or after the instant, or null when none comes', () => {
    fc.assert(
      fc.property(arbCase, fc.array(arbWindow, { minLength: 1, maxLength: 3 }), ({ zone, t }, windows) => {
        const r = nextAllowed(new Date(t), zone, windows);
        // Windows change only on whole local minutes, so minute-aligned instants see every change.
        const firstMinute = Math.ceil(t / MIN) * MIN;
        const allowed = (x: number) => windows.every((w) => refInside(x, zone, w));
        if (r === null) {
          for (let x = firstMinute; x < t + 16 * DAY; x += MIN) if (inWindows(new Date(x), zone, windows)) expect.unreachable(new Date(x).toISOString());
          return;
        }
        expect(r.getTime()).toBeGreaterThanOrEqual(t);
        expect(allowed(r.getTime())).toBe(true);
        if (r.getTime() === t) return;
        expect(allowed(t)).toBe(false);
        const end = Math.min(r.getTime(), t + 8 * DAY);
        for (let x = firstMinute; x < end; x += MIN) if (inWindows(new Date(x), zone, windows)) expect.unreachable(new Date(x).toISOString());
      }),
      { numRuns: 300 },
    );
  });

  it('spreadWithin adds a stable delay below the bound and stays inside the windows', () => {
    fc.assert(
      fc.property(arbCase, fc.array(arbWindow, { minLength: 0, maxLength: 2 }), fc.string(), fc.integer({ min: 1, max: 120 }), ({ zone, t }, windows, key, minutes) => {
        const start = nextAllowed(new Date(t), zone, windows);
        if (!start) return;
        const r = spreadWithin(start, key, minutes, zone, windows);
        expect(r.getTime()).toBeGreaterThanOrEqual(start.getTime());
        expect(r.getTime()).toBeLessThan(start.getTime() + minutes * MIN);
        expect(inWindows(r, zone, windows)).toBe(true);
        expect(spreadWithin(start, key, minutes, zone, windows).getTime()).toBe(r.getTime());
        for (let x = Math.ceil(start.getTime() / MIN) * MIN; x < r.getTime(); x += MIN) expect(inWindows(new Date(x), zone, windows)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('spreads keys over the whole interval and shrinks the delay near the end of a window', () => {
    const start = at('2026-05-05T08:00:00-04:00');
    const delays = Array.from({ length: 1000 }, (_, i) => spreadWithin(start, `contact-${i}:node`, 10, ny, [quiet]).getTime() - start.getTime());
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(10 * MIN);
    expect(new Set(delays.map((d) => Math.floor(d / MIN))).size).toBe(10);

    const late = at('2026-05-05T20:58:00-04:00');
    for (let i = 0; i < 100; i++) {
      const r = spreadWithin(late, `k${i}`, 10, ny, [quiet]);
      expect(r.getTime() - late.getTime()).toBeLessThan(2 * MIN);
    }
    const outside = at('2026-05-05T22:00:00-04:00');
    expect(spreadWithin(outside, 'k', 10, ny, [quiet])).toBe(outside);
    expect(spreadWithin(start, 'k', 0, ny, [quiet])).toBe(start);
  });
});
