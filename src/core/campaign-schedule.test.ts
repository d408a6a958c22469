import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { cronProblem, firstOccurrence, nextOccurrence, paceLocal, resumedOccurrence, scheduleProblems, wallInZone, type LocalPace, type Occurrence } from './campaign-schedule.js';

const ZONES = ['UTC', 'Europe/Madrid', 'America/New_York', 'America/Los_Angeles', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/Sao_Paulo'];
const HOUR = 3_600_000;

/** Minute, hour and ISO weekday (1 = Monday; cron's 0 = Sunday) of an instant in a zone. */
const local = (at: Date, zone: string) => {
  const d = DateTime.fromJSDate(at, { zone });
  return { minute: d.minute, hour: d.hour, weekday: d.weekday };
};

const cronArb = fc.record({ minute: fc.integer({ min: 0, max: 59 }), hour: fc.integer({ min: 0, max: 23 }), weekday: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }) });
const cronOf = (c: { minute: number; hour: number; weekday?: number }) => `${c.minute} ${c.hour} * * ${c.weekday ?? '*'}`;
// 2024–2028: several DST changes in every zone that has them.
const instantArb = fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2028, 0, 1) }).map((ms) => new Date(ms));

describe('recurring schedules in a zone', () => {
  it('fire at the cron\'s local time, never before now, each tick after the last, skipping none while the worker keeps up', () => {
    fc.assert(
      fc.property(cronArb, fc.constantFrom(...ZONES), instantArb, (c, zone, now) => {
        const s = { cron: cronOf(c), zone };
        const first = firstOccurrence(s, 'UTC', now)!;
        expect(first.start.getTime()).toBeGreaterThanOrEqual(now.getTime());
        expect(first.local).toBeNull();
        expect(first.key).toBe(first.start.toISOString());
        let prev: Occurrence = first;
        for (let i = 0; i < 3; i++) {
          const l = local(prev.start, zone);
          // A time skipped by a spring-forward is run at the first instant after the gap: the
          // moment the offset changed, that day's wall time not existing.
          const exact = l.minute === c.minute && l.hour === c.hour;
          const day = DateTime.fromJSDate(prev.start, { zone });
          const wanted = day.set({ hour: c.hour, minute: c.minute });
          const gap = DateTime.fromMillis(prev.start.getTime() - 1, { zone }).offset !== day.offset && (wanted.hour !== c.hour || wanted.minute !== c.minute);
          expect(exact || gap, `${zone} ${cronOf(c)} ran at ${day.toISO()}`).toBe(true);
          if (c.weekday !== undefined && exact) expect(l.weekday % 7).toBe(c.weekday);
          // The worker sweeps at the tick: the next is the one after it.
          const next = nextOccurrence(s, 'UTC', prev, prev.start)!;
          expect(next.start.getTime()).toBeGreaterThan(prev.start.getTime());
          expect(next.start.getTime() - prev.start.getTime()).toBeLessThanOrEqual((c.weekday === undefined ? 1 : 7) * 24 * HOUR + 2 * HOUR);
          prev = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('makes up no missed ticks: after downtime the next tick is the first one after now', () => {
    fc.assert(
      fc.property(cronArb, fc.constantFrom(...ZONES), instantArb, fc.integer({ min: 1, max: 40 }), (c, zone, at, days) => {
        const s = { cron: cronOf(c), zone };
        const first = firstOccurrence(s, 'UTC', at)!;
        const now = new Date(first.start.getTime() + days * 24 * HOUR + 1);
        const next = nextOccurrence(s, 'UTC', first, now)!;
        expect(next.start.getTime()).toBeGreaterThanOrEqual(now.getTime());
        expect(next.start.getTime()).toBe(firstOccurrence(s, 'UTC', now)!.start.getTime());
      }),
      { numRuns: 200 },
    );
  });

  it('reads the cron in the tenant\'s zone when the schedule names none', () => {
    const now = new Date('2026-03-02T00:00:00Z'); // a Monday
    expect(firstOccurrence({ cron: '0 9 * * 1' }, 'America/New_York', now)!.start.toISOString()).toBe('2026-03-02T14:00:00.000Z');
    expect(firstOccurrence({ cron: '0 9 * * 1' }, 'Europe/Madrid', now)!.start.toISOString()).toBe('2026-03-02T08:00:00.000Z');
    // DST in New York begins 2026-03-08: the Monday after, 09:00 is 13:00 UTC.
    const first = firstOccurrence({ cron: '0 9 * * 1' }, 'America/New_York', now)!;
    expect(nextOccurrence({ cron: '0 9 * * 1' }, 'America/New_York', first, first.start)!.start.toISOString()).toBe('2026-03-09T13:00:00.000Z');
  });

  it('stops at until', () => {
    const s = { cron: '0 9 * * *', until: '2026-03-03T12:00:00Z' };
    const first = firstOccurrence(s, 'UTC', new Date('2026-03-02T00:00:00Z'))!;
    const second = nextOccurrence(s, 'UTC', first, first.start)!;
    expect(second.start.toISOString()).toBe('2026-03-03T09:00:00.000Z');
    expect(nextOccurrence(s, 'UTC', second, second.start)).toBeNull();
  });
});

describe('recipient-local schedules', () => {
  it('start where the wall time comes first, reach every zone at its own wall time, and are keyed by the wall time', () => {
    fc.assert(
      fc.property(cronArb, instantArb, fc.constantFrom(...ZONES), (c, now, zone) => {
        const s = { cron: cronOf(c), recipient_local: true };
        const first = firstOccurrence(s, 'UTC', now)!;
        expect(first.key).toBe(`local:${first.local}`);
        const wall = DateTime.fromISO(first.local!, { zone: 'UTC' });
        expect([wall.minute, wall.hour]).toEqual([c.minute, c.hour]);
        if (c.weekday !== undefined) expect(wall.weekday % 7).toBe(c.weekday);
        // Still ahead somewhere (UTC−12) when it is chosen, and started no later than UTC+14 reaches it.
        expect(wall.toMillis() + 12 * HOUR).toBeGreaterThan(now.getTime());
        expect(first.start.getTime()).toBe(Math.max(wall.toMillis() - 14 * HOUR, now.getTime()));
        // Every zone's due time is within the occurrence's 26-hour sweep.
        const due = wallInZone(first.local!, zone).getTime();
        expect(due).toBeGreaterThanOrEqual(wall.toMillis() - 14 * HOUR - HOUR);
        expect(due).toBeLessThanOrEqual(wall.toMillis() + 12 * HOUR + HOUR);
        const next = nextOccurrence(s, 'UTC', first, first.start)!;
        expect(next.local! > first.local!).toBe(true);
        expect(next.key).not.toBe(first.key);
      }),
      { numRuns: 300 },
    );
  });

  it('Monday 09:00 wherever they are', () => {
    const s = { cron: '0 9 * * 1', recipient_local: true };
    const first = firstOccurrence(s, 'UTC', new Date('2026-03-01T12:00:00Z'))!;
    expect(first).toEqual({ key: 'local:2026-03-02T09:00', start: new Date('2026-03-01T19:00:00Z'), local: '2026-03-02T09:00' });
    expect(wallInZone(first.local!, 'Asia/Tokyo').toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(wallInZone(first.local!, 'America/Los_Angeles').toISOString()).toBe('2026-03-02T17:00:00.000Z');
    expect(nextOccurrence(s, 'UTC', first, first.start)!.key).toBe('local:2026-03-09T09:00');
  });

  it('a one-off local_at starts where it comes first', () => {
    expect(firstOccurrence({ local_at: '2026-03-09T09:00' }, 'UTC', new Date('2026-03-01T00:00:00Z'))).toEqual({
      key: 'local:2026-03-09T09:00',
      start: new Date('2026-03-08T19:00:00Z'),
      local: '2026-03-09T09:00',
    });
  });

  it('a wall time skipped by DST is the first instant after the gap', () => {
    expect(wallInZone('2026-03-29T02:30', 'Europe/Madrid').toISOString()).toBe('2026-03-29T01:30:00.000Z');
    expect(wallInZone('2026-03-08T02:30', 'America/New_York').toISOString()).toBe('2026-03-08T07:30:00.000Z');
  });
});

describe('resuming a paused schedule', () => {
  it('keeps a recipient-local tick still ahead somewhere, starting now, and otherwise takes the next one; never an earlier one', () => {
    fc.assert(
      fc.property(cronArb, instantArb, fc.integer({ min: 0, max: 40 * 24 * 60 }), (c, at, minutes) => {
        const s = { cron: cronOf(c), recipient_local: true };
        const pending = firstOccurrence(s, 'UTC', at)!;
        const now = new Date(Math.max(pending.start.getTime(), at.getTime()) + minutes * 60_000 + 1);
        const resumed = resumedOccurrence(s, 'UTC', pending, now)!;
        // At UTC−12 the wall time comes last: until then someone is still before it.
        const aheadSomewhere = DateTime.fromISO(pending.local!, { zone: 'UTC' }).toMillis() + 12 * HOUR > now.getTime();
        if (aheadSomewhere) expect(resumed).toEqual({ ...pending, start: now });
        else {
          expect(resumed.local! > pending.local!).toBe(true);
          expect(resumed).toEqual(firstOccurrence(s, 'UTC', now));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('Monday 09:00 wherever they are, resumed on Monday: still on while it is 09:00 or earlier at UTC−12', () => {
    const s = { cron: '0 9 * * 1', recipient_local: true };
    const pending: Occurrence = { key: 'local:2026-03-02T09:00', start: new Date('2026-03-01T19:00:00Z'), local: '2026-03-02T09:00' };
    const at = (iso: string) => resumedOccurrence(s, 'UTC', pending, new Date(iso));
    expect(at('2026-03-02T10:00:00Z')).toEqual({ ...pending, start: new Date('2026-03-02T10:00:00Z') });
    expect(at('2026-03-02T20:59:00Z')).toEqual({ ...pending, start: new Date('2026-03-02T20:59:00Z') });
    expect(at('2026-03-02T21:00:00Z')).toEqual({ key: 'local:2026-03-09T09:00', start: new Date('2026-03-08T19:00:00Z'), local: '2026-03-09T09:00' });
    // Past its until: nothing is left.
    expect(resumedOccurrence({ ...s, until: '2026-03-05T00:00:00Z' }, 'UTC', pending, new Date('2026-03-03T00:00:00Z'))).toBeNull();
  });

  it('makes up no time-based tick, and fires a one-off whose time went by', () => {
    fc.assert(
      fc.property(cronArb, fc.constantFrom(...ZONES), instantArb, fc.integer({ min: 1, max: 40 * 24 * 60 }), (c, zone, at, minutes) => {
        const s = { cron: cronOf(c), zone };
        const pending = firstOccurrence(s, 'UTC', at)!;
        const now = new Date(pending.start.getTime() + minutes * 60_000);
        expect(resumedOccurrence(s, 'UTC', pending, now)).toEqual(firstOccurrence(s, 'UTC', now));
      }),
      { numRuns: 200 },
    );
    const pending = firstOccurrence({ at: '2026-03-02T09:00:00Z' }, 'UTC', new Date('2026-03-01T00:00:00Z'))!;
    expect(resumedOccurrence({ at: '2026-03-02T09:00:00Z' }, 'UTC', pending, new Date('2026-03-05T00:00:00Z'))).toEqual(pending);
    const local = firstOccurrence({ local_at: '2026-03-02T09:00' }, 'UTC', new Date('2026-03-01T00:00:00Z'))!;
    expect(resumedOccurrence({ local_at: '2026-03-02T09:00' }, 'UTC', local, new Date('2026-03-02T12:00:00Z'))).toEqual(local);
  });
});

describe('recipient-local pacing', () => {
  const MIN = 60_000;
  const t0 = Date.UTC(2026, 2, 2, 8);
  /** Local instants one to three hours apart, as zones' offsets are. */
  const instantArb2 = fc.integer({ min: 0, max: 3 }).map((h) => new Date(t0 + h * HOUR));

  it('written ahead of time, gives the nth recipient of an instant floor(n / per_minute) minutes after it, however batches interleave', () => {
    fc.assert(
      fc.property(fc.array(instantArb2, { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (instants, perMinute) => {
        const pace: LocalPace = {};
        const seen = new Map<number, number>();
        for (const instant of instants) {
          const n = seen.get(instant.getTime()) ?? 0;
          seen.set(instant.getTime(), n + 1);
          // Through a JSON round trip, as it is stored between batches.
          Object.assign(pace, JSON.parse(JSON.stringify(pace)));
          expect(paceLocal(pace, instant, new Date(t0 - HOUR), perMinute).getTime()).toBe(instant.getTime() + Math.floor(n / perMinute) * MIN);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('written late or resumed, is never due before now or its instant, and never lets more than a minute\'s worth of one instant out in a minute', () => {
    fc.assert(
      fc.property(
        // Batches written a while apart, each at one instant of the clock.
        fc.array(fc.record({ wait: fc.integer({ min: 0, max: 20 * MIN }), instants: fc.array(instantArb2, { maxLength: 40 }) }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 10 }),
        (batches, perMinute) => {
          const pace: LocalPace = {};
          let now = t0 - 30 * MIN;
          const due = new Map<number, number[]>();
          for (const { wait, instants } of batches) {
            now += wait;
            for (const instant of instants) {
              const at = paceLocal(pace, instant, new Date(now), perMinute).getTime();
              expect(at).toBeGreaterThanOrEqual(Math.max(now, instant.getTime()));
              due.set(instant.getTime(), [...(due.get(instant.getTime()) ?? []), at]);
            }
          }
          // Minutes are counted from the pace's start, so a window of a minute can take the end
          // of one minute's share and the start of the next: two minutes' worth at most.
          for (const times of due.values()) {
            times.sort((a, b) => a - b);
            for (let i = 0; i + 2 * perMinute < times.length; i++) expect(times[i + 2 * perMinute]! - times[i]!).toBeGreaterThanOrEqual(MIN);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('paces Madrid and Paris together (one offset, one instant), Tokyo apart; without a throttle, each at its instant', () => {
    const madrid = wallInZone('2026-03-02T09:00', 'Europe/Madrid');
    const paris = wallInZone('2026-03-02T09:00', 'Europe/Paris');
    const tokyo = wallInZone('2026-03-02T09:00', 'Asia/Tokyo');
    const now = new Date('2026-03-01T19:00:00Z');
    const pace: LocalPace = {};
    const got = [madrid, tokyo, paris, madrid, tokyo, paris, madrid].map((i) => paceLocal(pace, i, now, 2).toISOString().slice(11, 16));
    expect(got).toEqual(['08:00', '00:00', '08:00', '08:01', '00:00', '08:01', '08:02']);
    expect(paceLocal({}, madrid, new Date('2026-03-02T08:05:00Z'), undefined).toISOString()).toBe('2026-03-02T08:05:00.000Z');
    expect(paceLocal({}, madrid, now, undefined)).toEqual(madrid);
  });
});

describe('schedule problems', () => {
  const now = new Date('2026-03-02T00:00:00Z');
  const fields = (s: Parameters<typeof scheduleProblems>[0]) => scheduleProblems(s, now).map((p) => p.field);

  it('names the field', () => {
    expect(fields({})).toEqual([]);
    expect(fields({ at: '2026-03-03T00:00:00Z', cron: '0 9 * * 1' })).toEqual(['schedule']);
    expect(fields({ zone: 'Europe/Madrid' })).toEqual(['schedule.zone']);
    expect(fields({ cron: '0 9 * * 1', zone: 'Mars/Olympus' })).toEqual(['schedule.zone']);
    expect(fields({ cron: '0 9 * * 1', zone: 'UTC', recipient_local: true })).toEqual(['schedule.zone']);
    expect(fields({ cron: '0 9 * * 1', until: '2026-03-01T00:00:00Z' })).toEqual(['schedule.until']);
    expect(fields({ local_at: '2026-03-09 9am' })).toEqual(['schedule.local_at']);
    expect(fields({ local_at: '2026-02-30T09:00' })).toEqual(['schedule.local_at']);
    expect(fields({ cron: '0 0 9 * * 1' })).toEqual(['schedule.cron']);
    expect(fields({ cron: '61 9 * * 1' })).toEqual(['schedule.cron']);
  });

  it('explains a bad cron', () => {
    expect(cronProblem('0 9 * *')).toMatch(/five fields/);
    expect(cronProblem('0 25 * * *')).toMatch(/not a cron expression/);
    expect(cronProblem('0 9 30 2 *')).toMatch(/never fires|not a cron/);
    expect(cronProblem('0 9 * * MON')).toBeNull();
  });
});
