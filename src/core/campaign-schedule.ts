import { Cron } from 'croner';
import { DateTime } from 'luxon';
import { isValidTimeZone } from './contact.js';
import type { FieldProblem } from './errors.js';

/**
 * When a campaign fires. Four shapes, by the fields given:
 *
 *   {}                                   once, as soon as it is started
 *   {at: instant}                        once, at that instant
 *   {local_at: "2026-03-09T09:00"}       once, at that wall-clock time in each recipient's zone
 *   {cron: "0 9 * * 1", zone?}           every tick of the cron, read in `zone` (default the tenant's)
 *   {cron: "0 9 * * 1", recipient_local} every tick, read in each recipient's zone
 *
 * `until` ends a recurring schedule: no occurrence starts after it.
 *
 * A recipient-local occurrence is one wall-clock time W that reaches the world zone by zone: it
 * starts when the first zone (UTC+14) reaches W and each recipient is due at W in their own zone,
 * up to 26 hours later. Its key is `local:W`, the same in every process, so it fires once.
 */
export interface ScheduleSpec {
  at?: string;
  local_at?: string;
  cron?: string;
  zone?: string;
  recipient_local?: boolean;
  until?: string;
}

export interface Occurrence {
  /** Unique per campaign: the instant (ISO) for time-based schedules, `local:<wall time>` for recipient-local ones. */
  key: string;
  /** When the runner starts it. */
  start: Date;
  /** The wall-clock time (YYYY-MM-DDTHH:mm) each recipient is due at in their own zone; null when not recipient-local. */
  local: string | null;
}

/** The earliest and latest offsets any zone has: a wall time happens first at UTC+14, last at UTC−12. */
const EARLIEST_OFFSET_H = 14;
const LATEST_OFFSET_H = 12;
const HOUR = 3_600_000;
export const LOCAL_WALL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/;

export function isRecurring(s: ScheduleSpec): boolean {
  return s.cron !== undefined;
}

/** Problems with a schedule, each naming its field under `schedule`. */
export function scheduleProblems(s: ScheduleSpec, now: Date): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const p = (field: string, message: string) => problems.push({ field: `schedule.${field}`, message });
  const given = (['at', 'local_at', 'cron'] as const).filter((k) => s[k] !== undefined);
  if (given.length > 1) problems.push({ field: 'schedule', message: `give at most one of at, local_at, cron (got ${given.join(', ')})` });
  if (s.cron === undefined) {
    for (const k of ['zone', 'recipient_local', 'until'] as const) if (s[k] !== undefined) p(k, 'belongs to a recurring schedule: give cron too');
  }
  if (s.zone !== undefined && s.recipient_local) p('zone', 'a recipient-local schedule is read in each recipient\'s zone; leave zone out');
  if (s.zone !== undefined && !isValidTimeZone(s.zone)) p('zone', `${JSON.stringify(s.zone)} is not an IANA time zone (e.g. "Europe/Madrid")`);
  if (s.local_at !== undefined && !wallValid(s.local_at)) p('local_at', 'must be a local date and time, YYYY-MM-DDTHH:mm, with no offset (e.g. "2026-03-09T09:00")');
  if (s.cron !== undefined) {
    const problem = cronProblem(s.cron);
    if (problem) p('cron', problem);
    else if (s.until !== undefined && !problems.length && firstOccurrence(s, 'UTC', now) === null) p('until', 'is before the first tick of the cron');
  }
  return problems;
}

function wallValid(wall: string): boolean {
  return LOCAL_WALL.test(wall) && DateTime.fromISO(wall, { zone: 'UTC' }).isValid;
}

/** Five fields (minute hour day-of-month month day-of-week): seconds are not a campaign's grain. */
export function cronProblem(pattern: string): string | null {
  const fields = pattern.trim().split(/\s+/);
  if (fields.length !== 5) return `needs five fields, minute hour day-of-month month day-of-week (e.g. "0 9 * * 1" for Mondays at 09:00); got ${fields.length}`;
  try {
    const c = new Cron(pattern, { paused: true });
    const next = c.nextRun(new Date());
    c.stop();
    if (!next) return 'never fires';
  } catch (err) {
    return `is not a cron expression: ${err instanceof Error ? err.message.replace(/^CronPattern: /, '') : String(err)}`;
  }
  return null;
}

/** The first tick of `pattern` in `zone` strictly after `after`, or null when there is none. */
function nextTick(pattern: string, zone: string, after: Date): Date | null {
  const c = new Cron(pattern, { timezone: zone, paused: true });
  try {
    return c.nextRun(after);
  } finally {
    c.stop();
  }
}

/** The wall time of an instant read as UTC, the way recipient-local ticks are computed. */
function wallOf(at: Date): string {
  return at.toISOString().slice(0, 16);
}
function wallAsUtc(wall: string): Date {
  return new Date(`${wall}:00.000Z`);
}

/** The instant wall time `wall` happens in `zone`; a time skipped by clocks going forward moves on by the gap (02:30 becomes 03:30). */
export function wallInZone(wall: string, zone: string): Date {
  return DateTime.fromISO(wall, { zone }).toJSDate();
}

function localOccurrence(wall: string, notBefore: Date): Occurrence {
  const first = new Date(wallAsUtc(wall).getTime() - EARLIEST_OFFSET_H * HOUR);
  return { key: `local:${wall}`, start: first > notBefore ? first : notBefore, local: wall };
}

function withinUntil(s: ScheduleSpec, o: Occurrence | null): Occurrence | null {
  if (!o || s.until === undefined) return o;
  // A recipient-local tick counts from when it first starts anywhere.
  const at = o.local ? wallAsUtc(o.local).getTime() - EARLIEST_OFFSET_H * HOUR : o.start.getTime();
  return at <= Date.parse(s.until) ? o : null;
}

/**
 * The occurrence a schedule starts with when the campaign is started at `now`. A recipient-local
 * tick still ahead somewhere is taken, starting now if its first zones are already past it; the
 * runner skips recipients whose local time has gone (they are not sent a Monday 09:00 message at
 * 15:00).
 */
export function firstOccurrence(s: ScheduleSpec, tenantZone: string, now: Date): Occurrence | null {
  if (s.cron !== undefined) {
    if (s.recipient_local) {
      const tick = nextTick(s.cron, 'UTC', new Date(now.getTime() - LATEST_OFFSET_H * HOUR));
      return withinUntil(s, tick && localOccurrence(wallOf(tick), now));
    }
    const tick = nextTick(s.cron, s.zone ?? tenantZone, new Date(now.getTime() - 1));
    return withinUntil(s, tick && { key: tick.toISOString(), start: tick, local: null });
  }
  if (s.local_at !== undefined) return localOccurrence(s.local_at, now);
  const at = s.at !== undefined ? new Date(s.at) : now;
  return { key: at.toISOString(), start: at, local: null };
}

/**
 * The occurrence after `previous`, or null when the schedule has no more. Ticks missed while no
 * worker ran (or the campaign was paused) are not made up: the next one is the first after both
 * the previous tick and `now`, so a worker back after a weekend sends one Monday pulse, not three.
 */
export function nextOccurrence(s: ScheduleSpec, tenantZone: string, previous: Occurrence, now: Date): Occurrence | null {
  if (s.cron === undefined) return null;
  if (s.recipient_local) {
    const after = Math.max(wallAsUtc(previous.local!).getTime(), now.getTime() - LATEST_OFFSET_H * HOUR);
    const tick = nextTick(s.cron, 'UTC', new Date(after));
    return withinUntil(s, tick && localOccurrence(wallOf(tick), now));
  }
  const tick = nextTick(s.cron, s.zone ?? tenantZone, new Date(Math.max(previous.start.getTime(), now.getTime() - 1)));
  return withinUntil(s, tick && { key: tick.toISOString(), start: tick, local: null });
}

/**
 * The occurrence a campaign paused while waiting for `pending` waits for once resumed at `now`: the
 * choice a first start would make, never earlier than `pending` (so never one that already fired).
 * A recurring tick that went by during the pause is not made up; a recipient-local tick still ahead
 * in some zone is kept, starting now (its recipients whose time went by are skipped by the runner);
 * a one-off whose time went by fires at once. Null when the schedule has nothing left.
 */
export function resumedOccurrence(s: ScheduleSpec, tenantZone: string, pending: Occurrence, now: Date): Occurrence | null {
  if (pending.start >= now || s.cron === undefined) return pending;
  const first = firstOccurrence(s, tenantZone, now);
  if (first?.local && first.local < pending.local!) return { ...pending, start: now };
  return first;
}

/** The occurrence a stored next_run_at stands for, rebuilt from the schedule (next_run_at is its start). */
export function occurrenceAt(s: ScheduleSpec, start: Date, local: string | null): Occurrence {
  if (local) return { key: `local:${local}`, start, local };
  return { key: start.toISOString(), start, local: null };
}

/** How late a recipient-local send may still go: a few minutes of batch writing, not hours. */
export const LOCAL_GRACE_MS = 15 * 60_000;

const MINUTE = 60_000;

/**
 * A recipient-local occurrence's throttle, per local instant (ISO): the pace for the recipients
 * due at that instant started at `from`, and `n` of them have had a slot since. Every zone at one
 * offset reaches Monday 09:00 at the same instant, so that is what is paced.
 */
export type LocalPace = Record<string, { from: string; n: number }>;

/**
 * The due time of the next recipient whose local time is `instant`, counted in `pace` (which it
 * updates): the nth recipient of an instant is due floor(n / perMinute) minutes after it, so a
 * zone's recipients go out from their 09:00 at the throttle's rate, not all at 09:00. Never
 * before `now`. A pace whose current minute has gone by (written late, or resumed) starts again
 * from now, so it does not catch up in a burst. Without a throttle, the instant itself.
 */
export function paceLocal(pace: LocalPace, instant: Date, now: Date, perMinute: number | undefined): Date {
  const start = Math.max(instant.getTime(), now.getTime());
  if (!perMinute) return new Date(start);
  const key = instant.toISOString();
  let p = pace[key];
  if (!p || Date.parse(p.from) + (Math.floor(p.n / perMinute) + 1) * MINUTE <= now.getTime()) p = pace[key] = { from: new Date(start).toISOString(), n: 0 };
  const at = Math.max(Date.parse(p.from) + Math.floor(p.n / perMinute) * MINUTE, now.getTime());
  p.n++;
  return new Date(at);
}

/** The default schedule of a Relational Pulse: Mondays at 09:00 in the tenant's zone. */
export const PULSE_DEFAULT_SCHEDULE: ScheduleSpec = { cron: '0 9 * * 1' };
