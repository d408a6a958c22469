import { IANAZone } from 'luxon';

/**
 * Scheduling math in IANA zones: durations, local times of day, send windows.
 *
 * The journey scheduler calls these tens of thousands of times a second, so instead of building a
 * luxon DateTime per call, each zone's UTC offsets are read from luxon once per ~25-day bucket
 * (with the instants of any transition in it) and then looked up with plain arithmetic. Wall-clock
 * times are handled as "local ms": the epoch ms a wall-clock reading would have in UTC.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// Durations

export interface ParsedDuration {
  /** s, m and h: exact milliseconds. */
  ms: number;
  /** d and w: calendar days in the recipient's zone, so a wait keeps its wall-clock time across DST. */
  days: number;
}

const UNIT_MS: Record<string, number> = { s: SECOND, m: MINUTE, h: HOUR };
const DURATION = /^([0-9]{1,6}[smhdw])+$/;
const PART = /([0-9]{1,6})([smhdw])/g;
const durations = new Map<string, Readonly<ParsedDuration>>();

/** Parses "30s", "15m", "2h", "3d", "1w" or compounds like "1d12h" (the format of DURATION_PATTERN). */
export function parseDuration(s: string): Readonly<ParsedDuration> {
  const known = durations.get(s);
  if (known) return known;
  if (!DURATION.test(s)) throw new RangeError(`${JSON.stringify(s)} is not a duration (e.g. "30s", "2h", "3d", "1d12h")`);
  let ms = 0;
  let days = 0;
  for (const [, n, unit] of s.matchAll(PART)) {
    const v = Number(n);
    if (unit === 'd') days += v;
    else if (unit === 'w') days += 7 * v;
    else ms += v * UNIT_MS[unit!]!;
  }
  const d = Object.freeze({ ms, days });
  // Journey definitions use a handful of durations; the bound only guards against unbounded input.
  if (durations.size >= 10_000) durations.clear();
  durations.set(s, d);
  return d;
}

/** A duration with an optional leading sign, as in a date wait's offset ("-3d", "+2h"). */
export function parseOffset(s: string): { sign: 1 | -1; ms: number; days: number } {
  const c = s.charCodeAt(0);
  const sign = c === 45 /* - */ ? -1 : 1;
  const d = parseDuration(c === 45 || c === 43 /* + */ ? s.slice(1) : s);
  return { sign, ms: d.ms, days: d.days };
}

/** Exact milliseconds, a day counted as 24 hours: for rolling windows such as caps and "within". */
export function durationMs(s: string): number {
  const d = parseDuration(s);
  return d.ms + d.days * DAY;
}

// ---------------------------------------------------------------------------------------------
// Zones: offsets from luxon, cached per bucket of time

// 2^31 ms is about 24.9 days: shorter than any DST period in tzdb, so a bucket never holds a
// transition and its reversal unseen between probes.
const BUCKET = 2 ** 31;
const PROBES = 8;

interface Zone {
  name: string;
  luxon: IANAZone;
  /** bucket index → [offset at bucket start, then pairs of (transition instant, offset from it)], offsets in minutes */
  buckets: Map<number, number[]>;
  lastIndex: number;
  last: number[];
}

const zones = new Map<string, Zone>();

function zoneOf(name: string): Zone {
  let z = zones.get(name);
  if (z) return z;
  if (!IANAZone.isValidZone(name)) throw new RangeError(`${JSON.stringify(name)} is not an IANA time zone`);
  z = { name, luxon: IANAZone.create(name), buckets: new Map(), lastIndex: NaN, last: [] };
  zones.set(name, z);
  return z;
}

function bucket(z: Zone, index: number): number[] {
  if (index === z.lastIndex) return z.last;
  let b = z.buckets.get(index);
  if (!b) {
    b = fillBucket(z, index);
    if (z.buckets.size >= 4096) z.buckets.clear();
    z.buckets.set(index, b);
  }
  z.lastIndex = index;
  z.last = b;
  return b;
}

function fillBucket(z: Zone, index: number): number[] {
  const start = index * BUCKET;
  const step = BUCKET / PROBES;
  const probe = (t: number) => z.luxon.offset(t);
  const out = [probe(start)];
  let prevT = start;
  let prevO = out[0]!;
  for (let i = 1; i <= PROBES; i++) {
    const t = start + i * step;
    const o = i === PROBES ? probe(t - SECOND) : probe(t);
    if (o !== prevO) {
      // Offsets change on whole seconds (luxon reads them at second precision): bisect to the second.
      let lo = Math.floor(prevT / SECOND);
      let hi = Math.floor((i === PROBES ? t - SECOND : t) / SECOND);
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (probe(mid * SECOND) === prevO) lo = mid;
        else hi = mid;
      }
      out.push(hi * SECOND, o);
    }
    prevT = t;
    prevO = o;
  }
  return out;
}

/** UTC offset of `zone` at instant `ts`, in minutes. */
function offsetAt(z: Zone, ts: number): number {
  const b = bucket(z, Math.floor(ts / BUCKET));
  let o = b[0]!;
  for (let i = 1; i < b.length && ts >= b[i]!; i += 2) o = b[i + 1]!;
  return o;
}

const NONE: number[] = [];

/** Transition instants t with from < t <= to (NONE, shared, when there are none). */
function transitionsIn(z: Zone, from: number, to: number): number[] {
  let found = NONE;
  for (let index = Math.floor(from / BUCKET); index * BUCKET <= to; index++) {
    const b = bucket(z, index);
    for (let i = 1; i < b.length; i += 2) {
      const t = b[i]!;
      if (t > from && t <= to) found = found === NONE ? [t] : (found.push(t), found);
    }
  }
  return found;
}

function localMs(z: Zone, ts: number): number {
  return ts + offsetAt(z, ts) * MINUTE;
}

// Offsets stay within ±15 h, so every instant with wall-clock time L lies within 16 h of L.
const REACH = 16 * HOUR;

/**
 * The instants whose wall-clock time in z is `local`: one, two where clocks fall back (earlier
 * first), or, where the time is skipped by clocks going forward, the transition instant: the
 * first moment the clock reads a later time.
 */
function instantsAt(z: Zone, local: number): number[] {
  const o1 = offsetAt(z, local - REACH);
  const o2 = offsetAt(z, local + REACH);
  const a = local - o1 * MINUTE;
  const okA = offsetAt(z, a) === o1;
  if (o1 === o2) {
    if (okA) return [a];
  } else {
    const b = local - o2 * MINUTE;
    const okB = offsetAt(z, b) === o2;
    if (okA && okB) return a < b ? [a, b] : [b, a];
    if (okA) return [a];
    if (okB) return [b];
  }
  // In a gap: the transition between the two offsets.
  const lo = local - Math.max(o1, o2) * MINUTE;
  const hi = local - Math.min(o1, o2) * MINUTE;
  const t = transitionsIn(z, lo - 1, hi);
  return [t.length ? t[0]! : hi];
}

function firstInstantAt(z: Zone, local: number): number {
  return instantsAt(z, local)[0]!;
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic on local ms

/** ISO weekday (1 = Monday) of local day number d (days since 1970-01-01, a Thursday). */
function isoWeekday(day: number): number {
  return ((((day + 3) % 7) + 7) % 7) + 1;
}

const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;
const localTimes = new Map<string, number>();

/** Minutes since midnight of "HH:MM". */
function minuteOfDay(hhmm: string): number {
  const known = localTimes.get(hhmm);
  if (known !== undefined) return known;
  const m = HHMM.exec(hhmm);
  if (!m) throw new RangeError(`${JSON.stringify(hhmm)} is not a local time (HH:MM)`);
  const v = Number(m[1]) * 60 + Number(m[2]);
  if (localTimes.size >= 10_000) localTimes.clear();
  localTimes.set(hhmm, v);
  return v;
}

const ALL_DAYS = 0b11111110;

function dayMask(days: readonly number[] | undefined): number {
  if (!days) return ALL_DAYS;
  let mask = 0;
  for (const d of days) if (d >= 1 && d <= 7) mask |= 1 << d;
  return mask;
}

// ---------------------------------------------------------------------------------------------
// Waits

/** `at` plus a duration; days and weeks are calendar days in `zone`, the rest exact. */
export function addDuration(at: Date, d: string, zone: string, sign: 1 | -1 = 1): Date {
  const { ms, days } = parseDuration(d);
  const t = at.getTime();
  if (days === 0) return new Date(t + sign * ms);
  return new Date(addDays(zoneOf(zone), t, sign * days) + sign * ms);
}

/**
 * Moves `ts` by whole calendar days keeping its wall-clock time, the way luxon's plus({ days })
 * does: where that time falls twice the original offset is kept, and a time that does not exist
 * moves forward by the length of the gap (02:30 on a spring-forward night becomes 03:30).
 */
function addDays(z: Zone, ts: number, days: number): number {
  const o = offsetAt(z, ts);
  const local = ts + o * MINUTE + days * DAY;
  let guess = local - o * MINUTE;
  const o2 = offsetAt(z, guess);
  if (o2 === o) return guess;
  guess = local - o2 * MINUTE;
  const o3 = offsetAt(z, guess);
  if (o3 === o2) return guess;
  return local - Math.min(o2, o3) * MINUTE;
}

/**
 * The first moment strictly after `after` at which the local time in `zone` is `time` on one of
 * `days` (ISO weekdays, 1 = Monday; every day if omitted). Each local date counts once: where the
 * clocks fall back and the time happens twice, the first one is that day's; where it is skipped
 * by clocks going forward, that day's moment is the transition, the first instant after the gap.
 */
export function nextLocalTime(after: Date, zone: string, time: string, days?: number[]): Date {
  const z = zoneOf(zone);
  const minute = minuteOfDay(time);
  const mask = dayMask(days);
  if (!mask) throw new RangeError('nextLocalTime needs at least one weekday');
  const t = after.getTime();
  const first = Math.floor(localMs(z, t) / DAY) - 1;
  for (let day = first; day <= first + 9; day++) {
    if (!(mask & (1 << isoWeekday(day)))) continue;
    const at = firstInstantAt(z, day * DAY + minute * MINUTE);
    if (at > t) return new Date(at);
  }
  // Unreachable: some weekday of the mask falls within any nine consecutive days.
  throw new Error('nextLocalTime found no moment');
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Local ms of a calendar date and time, or NaN when the date does not exist (2026-02-30). */
function localOf(y: number, mo: number, d: number, h: number, mi: number, s = 0, ms = 0): number {
  const v = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const check = new Date(v);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return NaN;
  return h > 23 || mi > 59 || s > 59 ? NaN : v;
}

/**
 * The moment a date attribute stands for, moved by `offset` ("-3d", "+2h"; days are calendar days
 * in `zone`). 'YYYY-MM-DD' is that day at `time` (default 09:00) in `zone`; a date-time with Z or
 * an offset is that instant (`time` ignored); one without is a wall-clock time in `zone`; a
 * number is epoch ms. Anything else, or a date that does not exist, gives null.
 */
export function dateAttributeMoment(value: unknown, offset: string | undefined, time: string | undefined, zone: string): Date | null {
  let t: number;
  if (typeof value === 'number') {
    t = value;
  } else if (value instanceof Date) {
    t = value.getTime();
  } else if (typeof value === 'string') {
    const s = value.trim();
    let m = DATE_ONLY.exec(s);
    if (m) {
      const minute = minuteOfDay(time ?? '09:00');
      const local = localOf(Number(m[1]), Number(m[2]), Number(m[3]), Math.floor(minute / 60), minute % 60);
      if (Number.isNaN(local)) return null;
      t = firstInstantAt(zoneOf(zone), local);
    } else if ((m = DATE_TIME.exec(s))) {
      const frac = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
      const local = localOf(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), frac);
      if (Number.isNaN(local)) return null;
      const tz = m[8];
      if (!tz) t = firstInstantAt(zoneOf(zone), local);
      else if (tz === 'Z' || tz === 'z') t = local;
      else {
        const digits = tz.replace(':', '');
        const mins = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || '0');
        t = local - (tz[0] === '-' ? -mins : mins) * MINUTE;
      }
    } else {
      return null;
    }
  } else {
    return null;
  }
  if (!Number.isFinite(t) || Math.abs(t) > 8.64e15) return null;
  if (!offset) return new Date(t);
  const o = parseOffset(offset);
  let r = t;
  if (o.days) r = addDays(zoneOf(zone), r, o.sign * o.days);
  return new Date(r + o.sign * o.ms);
}

// ---------------------------------------------------------------------------------------------
// Windows

/** Local hours [start, end) on `days` (ISO weekdays, every day if omitted). end <= start crosses midnight, with `days` naming the day it starts; start == end is all day. */
export interface LocalWindow {
  days?: readonly number[];
  start: string;
  end: string;
}

/** Windows that hold in one zone; sets in different zones combine by intersection. */
export interface WindowSet {
  zone: string;
  windows: readonly LocalWindow[];
}

interface Win {
  start: number;
  end: number;
  mask: number;
}

const compiled = new WeakMap<LocalWindow, Win>();

function compile(w: LocalWindow): Win {
  let c = compiled.get(w);
  if (!c) {
    c = { start: minuteOfDay(w.start), end: minuteOfDay(w.end), mask: dayMask(w.days) };
    compiled.set(w, c);
  }
  return c;
}

function insideLocal(w: Win, local: number): boolean {
  const day = Math.floor(local / DAY);
  const minute = Math.floor((local - day * DAY) / MINUTE);
  const wd = isoWeekday(day);
  if (w.start === w.end) return (w.mask & (1 << wd)) !== 0;
  if (w.start < w.end) return minute >= w.start && minute < w.end && (w.mask & (1 << wd)) !== 0;
  if (minute >= w.start) return (w.mask & (1 << wd)) !== 0;
  return minute < w.end && (w.mask & (1 << (wd === 1 ? 7 : wd - 1))) !== 0;
}

function inside(z: Zone, w: Win, ts: number): boolean {
  return insideLocal(w, localMs(z, ts));
}

// A weekly pattern repeats within 8 days; the margin covers a window swallowed by a DST gap.
const SCAN_DAYS = 16;

/** Earliest instant > ts inside w, or null when w never holds (no weekdays). */
function nextEntry(z: Zone, w: Win, ts: number): number | null {
  if (!(w.mask & ALL_DAYS)) return null;
  // Entries happen where the clock reaches the start (midnight for all-day windows) or jumps.
  const boundary = (w.start === w.end ? 0 : w.start) * MINUTE;
  const first = Math.floor(localMs(z, ts) / DAY);
  let best = Infinity;
  for (let day = first; day <= first + SCAN_DAYS; day++) {
    const local = day * DAY;
    for (const c of instantsAt(z, local + boundary)) if (c > ts && c < best && inside(z, w, c)) best = c;
    const jumps = transitionsIn(z, local - REACH, local + DAY + REACH);
    for (const c of jumps) if (c > ts && c < best && inside(z, w, c)) best = c;
    // A day found an entry; the next can only beat it around a transition near midnight.
    if (best !== Infinity && (jumps.length === 0 || day > first + 1)) return best;
  }
  return best === Infinity ? null : best;
}

/** First instant > ts that is outside w, looking no further than `limit`; Infinity if none. */
function nextExit(z: Zone, w: Win, ts: number, limit: number): number {
  if (w.start === w.end && (w.mask & ALL_DAYS) === ALL_DAYS) return Infinity;
  const boundary = (w.start === w.end ? 0 : w.end) * MINUTE;
  const last = Math.floor(localMs(z, limit) / DAY);
  let candidates = transitionsIn(z, ts, limit);
  for (let day = Math.floor(localMs(z, ts) / DAY); day <= last; day++) {
    for (const c of instantsAt(z, day * DAY + boundary)) {
      if (c > ts && c <= limit) candidates = candidates === NONE ? [c] : (candidates.push(c), candidates);
    }
  }
  if (candidates.length > 1) candidates.sort((a, b) => a - b);
  for (const c of candidates) if (!inside(z, w, c)) return c;
  return Infinity;
}

function insideSets(sets: readonly WindowSet[], ts: number): boolean {
  for (const s of sets) {
    if (!s.windows.length) continue;
    const local = localMs(zoneOf(s.zone), ts);
    for (const w of s.windows) if (!insideLocal(compile(w), local)) return false;
  }
  return true;
}

/** Whether `at` lies inside every window, each in its set's zone. */
export function inWindowSets(at: Date, sets: readonly WindowSet[]): boolean {
  return insideSets(sets, at.getTime());
}

/** Whether `at` lies inside all of `windows` (their intersection) in `zone`. */
export function inWindows(at: Date, zone: string, windows: readonly LocalWindow[]): boolean {
  if (!windows.length) return true;
  const local = localMs(zoneOf(zone), at.getTime());
  for (const w of windows) if (!insideLocal(compile(w), local)) return false;
  return true;
}

function searchAllowed(sets: readonly WindowSet[], from: number, horizon: number): number | null {
  // Each step moves to the next entry into a window that excludes the candidate; none of them can
  // pass the earliest moment inside all windows, so the first candidate all accept is that moment.
  let t = from;
  for (let steps = 0; steps < 10_000; steps++) {
    let moved = false;
    for (const s of sets) {
      const z = zoneOf(s.zone);
      for (const w of s.windows) {
        const c = compile(w);
        if (inside(z, c, t)) continue;
        const next = nextEntry(z, c, t);
        if (next === null || next > horizon) return null;
        t = next;
        moved = true;
      }
    }
    if (!moved) return t;
  }
  return null;
}

// Sets in different zones found never to overlap within a year; a search costs milliseconds.
const neverAcross = new Set<string>();

function nextAllowedTs(sets: readonly WindowSet[], from: number): number | null {
  // Windows in one zone repeat weekly. Across zones with different DST dates an overlap can come
  // and go with the seasons, so those are searched for a year before the answer is "never".
  const found = searchAllowed(sets, from, from + SCAN_DAYS * DAY);
  if (found !== null || sets.every((s) => s.zone === sets[0]!.zone)) return found;
  const key = sets.map((s) => `${s.zone} ${s.windows.map((w) => `${w.start}-${w.end}/${w.days?.join('') ?? ''}`).join(' ')}`).join(';');
  if (neverAcross.has(key)) return null;
  const later = searchAllowed(sets, from, from + 370 * DAY);
  if (later === null) {
    if (neverAcross.size >= 1000) neverAcross.clear();
    neverAcross.add(key);
  }
  return later;
}

/** `at` when it lies inside every window of every set, else the earliest later moment that does; null when none ever does. */
export function nextAllowedInSets(at: Date, sets: readonly WindowSet[]): Date | null {
  const t = nextAllowedTs(sets, at.getTime());
  return t === null ? null : t === at.getTime() ? at : new Date(t);
}

/** `at` when it lies inside all of `windows` in `zone`, else the earliest later moment that does; null when no moment ever does. */
export function nextAllowed(at: Date, zone: string, windows: readonly LocalWindow[]): Date | null {
  return nextAllowedInSets(at, [{ zone, windows }]);
}

/** FNV-1a, 32 bits: fast, stable across processes, good enough to spread keys. */
function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * `at` plus a delay in [0, minutes) derived from `key`, so deferred sends that become allowed at
 * the same moment do not all fire at once. When the window would close before the delay ends,
 * the delay is scaled down to fit, so the moment stays inside every window. `at` is returned
 * unchanged when it is not inside them to begin with.
 */
export function spreadWithinSets(at: Date, key: string, minutes: number, sets: readonly WindowSet[]): Date {
  const span = Math.floor(minutes * MINUTE);
  if (!(span > 0)) return at;
  const t = at.getTime();
  if (!insideSets(sets, t)) return at;
  let delay = fnv1a(key) % span;
  if (delay === 0) return at;
  let room = Infinity;
  for (const s of sets) {
    const z = zoneOf(s.zone);
    for (const w of s.windows) room = Math.min(room, nextExit(z, compile(w), t, t + span) - t);
  }
  if (delay >= room) delay = Math.floor((delay * room) / span);
  return new Date(t + delay);
}

/** spreadWithinSets for windows in one zone. */
export function spreadWithin(at: Date, key: string, minutes: number, zone: string, windows: readonly LocalWindow[]): Date {
  return spreadWithinSets(at, key, minutes, [{ zone, windows }]);
}
