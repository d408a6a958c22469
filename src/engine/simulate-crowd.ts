import { createHash } from 'node:crypto';
import type { JourneyNode, SendChannel } from '../core/journey/definition.js';
import { hash32 } from '../core/journey/split.js';
import type { StatusUpdate } from '../store/message-status.js';

/**
 * The simulator's crowd: synthetic contacts around the world and the draws of what they do with
 * each message. Every draw is keyed by what it is about, so the order in which the engine happens
 * to process contacts never changes an outcome.
 */

const DAY = 86_400_000;

// Seeded randomness: each draw is keyed by what it is about, so the order in which the engine
// happens to process contacts never changes an outcome.

/** mulberry32: small, fast, and good enough for drawing behaviour. */
export function rng(key: string): () => number {
  let a = hash32(key);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
/** Log-uniform between lo and hi: most values near the low end, a long tail, as response times go. */
export const logUniform = (r: () => number, lo: number, hi: number) => Math.round(Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo))));

/** A UUID that is a function of its name, so the same seed gives the same ids (split assignment hashes them). */
export function uuidOf(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Synthetic contacts

interface Region {
  zone: string;
  country: string;
  /** Country calling code, then the national number's fixed start and how many digits follow. */
  cc: string;
  prefix: string;
  digits: number;
  cities: string[];
  locale: string;
}

/** Twelve zones around the world, so a journey meets every offset from UTC-8 to UTC+11. */
export const SIMULATED_REGIONS: readonly Region[] = [
  { zone: 'America/Los_Angeles', country: 'US', cc: '1', prefix: '415', digits: 7, cities: ['San Francisco', 'Los Angeles', 'Seattle', 'Portland'], locale: 'en-US' },
  { zone: 'America/Chicago', country: 'US', cc: '1', prefix: '312', digits: 7, cities: ['Chicago', 'Dallas', 'Houston', 'Minneapolis'], locale: 'en-US' },
  { zone: 'America/New_York', country: 'US', cc: '1', prefix: '212', digits: 7, cities: ['New York', 'Boston', 'Miami', 'Atlanta'], locale: 'en-US' },
  { zone: 'America/Sao_Paulo', country: 'BR', cc: '55', prefix: '119', digits: 8, cities: ['São Paulo', 'Rio de Janeiro', 'Curitiba', 'Belo Horizonte'], locale: 'pt-BR' },
  { zone: 'Europe/London', country: 'GB', cc: '44', prefix: '77', digits: 8, cities: ['London', 'Manchester', 'Edinburgh', 'Bristol'], locale: 'en-GB' },
  { zone: 'Europe/Berlin', country: 'DE', cc: '49', prefix: '151', digits: 8, cities: ['Berlin', 'Munich', 'Hamburg', 'Cologne'], locale: 'de-DE' },
  { zone: 'Africa/Lagos', country: 'NG', cc: '234', prefix: '80', digits: 8, cities: ['Lagos', 'Abuja', 'Ibadan', 'Port Harcourt'], locale: 'en-NG' },
  { zone: 'Asia/Dubai', country: 'AE', cc: '971', prefix: '50', digits: 7, cities: ['Dubai', 'Abu Dhabi', 'Sharjah'], locale: 'en-AE' },
  { zone: 'Asia/Kolkata', country: 'IN', cc: '91', prefix: '98', digits: 8, cities: ['Mumbai', 'Bengaluru', 'Delhi', 'Chennai'], locale: 'en-IN' },
  { zone: 'Asia/Singapore', country: 'SG', cc: '65', prefix: '9', digits: 7, cities: ['Singapore'], locale: 'en-SG' },
  { zone: 'Asia/Tokyo', country: 'JP', cc: '81', prefix: '90', digits: 8, cities: ['Tokyo', 'Osaka', 'Yokohama', 'Nagoya'], locale: 'ja-JP' },
  { zone: 'Australia/Sydney', country: 'AU', cc: '61', prefix: '4', digits: 8, cities: ['Sydney', 'Melbourne', 'Brisbane', 'Perth'], locale: 'en-AU' },
];

const FIRST_NAMES = ['Ada', 'Amara', 'Ana', 'Aiko', 'Ben', 'Carlos', 'Chen', 'Chloe', 'David', 'Elena', 'Fatima', 'Grace', 'Hiro', 'Ines', 'Jack', 'Kwame', 'Lena', 'Lucas', 'Maya', 'Mohammed', 'Noah', 'Olivia', 'Priya', 'Rahul', 'Sofia', 'Tom', 'Yara', 'Zoe'];
const LAST_NAMES = ['Adeyemi', 'Brown', 'Costa', 'Fischer', 'Garcia', 'Haddad', 'Ito', 'Johnson', 'Kumar', 'Lee', 'Martin', 'Müller', 'Nakamura', 'Okafor', 'Patel', 'Rossi', 'Santos', 'Smith', 'Tan', 'Williams', 'Wong'];
const PLANS: readonly [string, number][] = [
  ['starter', 0.5],
  ['pro', 0.35],
  ['business', 0.15],
];

export interface SyntheticContact {
  id: string;
  external_id: string;
  name: string;
  phone: string;
  email: string;
  time_zone: string;
  locale: string;
  attributes: Record<string, unknown>;
}

function ascii(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[^A-Za-z]/g, '')
    .toLowerCase();
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();
function localDate(at: number, zone: string): string {
  let f = dateFormats.get(zone);
  // en-CA writes dates as YYYY-MM-DD.
  if (!f) dateFormats.set(zone, (f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(at);
}

export function syntheticContact(seed: number, i: number, start: Date): SyntheticContact {
  const r = rng(`${seed}:contact:${i}`);
  const region = pick(r, SIMULATED_REGIONS);
  const first = pick(r, FIRST_NAMES);
  const last = pick(r, LAST_NAMES);
  const roll = r();
  let acc = 0;
  const plan = PLANS.find(([, w]) => (acc += w) > roll)?.[0] ?? PLANS[0]![0];
  // Unique per index within a country code; starting at 2 keeps North American exchanges valid.
  const subscriber = String(2 * 10 ** (region.digits - 1) + i);
  const phone = `+${region.cc}${region.prefix}${subscriber}`;
  return {
    id: uuidOf(`rapport-simulation:${seed}:contact:${i}`),
    external_id: `sim-${i + 1}`,
    name: `${first} ${last}`,
    phone,
    email: `${ascii(first)}.${ascii(last)}.${i + 1}@example.com`,
    time_zone: region.zone,
    locale: region.locale,
    attributes: {
      first_name: first,
      last_name: last,
      city: pick(r, region.cities),
      country: region.country,
      plan,
      renewal_date: localDate(start.getTime() + (1 + Math.floor(r() * 60)) * DAY, region.zone),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What people do

export interface Receipt {
  at: number;
  update: StatusUpdate;
}

export interface Reaction {
  at: number;
  contact_id: string;
  name: string;
  properties: Record<string, unknown>;
}

/** A binary min-heap on `at`; ties keep insertion order, so the draw order is the apply order. */
export class Agenda<T extends { at: number }> {
  private items: { v: T; n: number }[] = [];
  private counter = 0;
  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0]?.v;
  }
  push(v: T): void {
    const items = this.items;
    items.push({ v, n: this.counter++ });
    let i = items.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(items[i]!, items[p]!)) break;
      [items[i], items[p]] = [items[p]!, items[i]!];
      i = p;
    }
  }
  /** Removes and returns everything at or before `t`, earliest first. */
  takeUntil(t: number): T[] {
    const out: T[] = [];
    while (this.items.length && this.items[0]!.v.at <= t) out.push(this.pop());
    return out;
  }
  /** Removes and returns up to `max` items before `t`, earliest first. */
  takeBefore(t: number, max: number): T[] {
    const out: T[] = [];
    while (out.length < max && this.items.length && this.items[0]!.v.at < t) out.push(this.pop());
    return out;
  }
  private pop(): T {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const rr = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l]!, items[m]!)) m = l;
        if (rr < items.length && this.less(items[rr]!, items[m]!)) m = rr;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top.v;
  }
  private less(a: { v: T; n: number }, b: { v: T; n: number }): boolean {
    return a.v.at < b.v.at || (a.v.at === b.v.at && a.n < b.n);
  }
}

export const OPEN_STATUS: Partial<Record<SendChannel, 'opened' | 'read'>> = { email: 'opened', whatsapp: 'read' };
export const REPLY_CHANNELS: ReadonlySet<SendChannel> = new Set(['sms', 'whatsapp', 'email']);
export const LINK = /https?:\/\//i;

export interface Button {
  text: string;
  payload: string;
}

/** WhatsApp buttons as a node's options give them: strings, or objects with an id/payload and a title. */
export function buttonsOf(node: JourneyNode | undefined): Button[] {
  if (node?.type !== 'send' || !Array.isArray(node.options?.buttons)) return [];
  return (node.options.buttons as unknown[]).flatMap((b): Button[] => {
    if (typeof b === 'string') return [{ text: b, payload: b }];
    if (b && typeof b === 'object') {
      const o = b as Record<string, unknown>;
      const text = [o.title, o.text, o.label, o.payload, o.id].find((v) => typeof v === 'string') as string | undefined;
      const payload = [o.payload, o.id, o.title, o.text].find((v) => typeof v === 'string') as string | undefined;
      return text && payload ? [{ text, payload }] : [];
    }
    return [];
  });
}
