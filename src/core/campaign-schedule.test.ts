import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { cronProblem, firstOccurrence, nextOccurrence, scheduleProblems, wallInZone, type Occurrence } from './campaign-schedule.js';

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
