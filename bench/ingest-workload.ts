/**
 * The workload of bench/ingest.ts, deterministic so that two runs (or two machines) ingest the
 * same bytes: contacts spread over twelve countries and their time zones, each with a valid
 * mobile number, an email, a locale, three attributes and tags; the same contacts changed; and
 * events naming them by external_id.
 */
import { getExampleNumber, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';

/** Countries the contacts live in, with the zones and locale their people use. */
const COUNTRIES: { country: CountryCode; zones: string[]; locale: string }[] = [
  { country: 'US', zones: ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles'], locale: 'en-US' },
  { country: 'GB', zones: ['Europe/London'], locale: 'en-GB' },
  { country: 'DE', zones: ['Europe/Berlin'], locale: 'de-DE' },
  { country: 'FR', zones: ['Europe/Paris'], locale: 'fr-FR' },
  { country: 'ES', zones: ['Europe/Madrid', 'Atlantic/Canary'], locale: 'es-ES' },
  { country: 'BR', zones: ['America/Sao_Paulo', 'America/Manaus'], locale: 'pt-BR' },
  { country: 'MX', zones: ['America/Mexico_City', 'America/Tijuana'], locale: 'es-MX' },
  { country: 'IN', zones: ['Asia/Kolkata'], locale: 'en-IN' },
  { country: 'AU', zones: ['Australia/Sydney', 'Australia/Perth'], locale: 'en-AU' },
  { country: 'JP', zones: ['Asia/Tokyo'], locale: 'ja-JP' },
  { country: 'ZA', zones: ['Africa/Johannesburg'], locale: 'en-ZA' },
  { country: 'NG', zones: ['Africa/Lagos'], locale: 'en-NG' },
];
const PLANS = ['free', 'basic', 'pro', 'enterprise'];
const TAGS = ['vip', 'newsletter', 'trial', 'churn-risk', 'beta', 'wholesale', 'event-2026', 'referral'];
const EVENT_NAMES = ['page_viewed', 'form_submitted', 'qr_scanned', 'purchase', 'cart_abandoned'];

/**
 * Valid mobile numbers: each country's example mobile number with its last five digits replaced,
 * walked in a scattered order (7919 is prime to 100,000) so index inserts are not sequential.
 * Each is checked with the same metadata the server validates with.
 */
function phoneNumbers(country: CountryCode, count: number): string[] {
  const example = getExampleNumber(country, examples);
  if (!example) throw new Error(`libphonenumber-js has no example mobile number for ${country}`);
  const stem = `+${example.countryCallingCode}${example.nationalNumber.slice(0, -5)}`;
  const out: string[] = [];
  for (let k = 0; out.length < count; k++) {
    if (k >= 100_000) throw new Error(`fewer than ${count} valid numbers under ${stem}`);
    const candidate = stem + String((k * 7919) % 100_000).padStart(5, '0');
    if (parsePhoneNumberFromString(candidate)?.isValid()) out.push(candidate);
  }
  return out;
}

export interface ContactBody {
  external_id: string;
  name: string;
  phone: string;
  email: string;
  time_zone: string;
  locale: string;
  attributes: { plan: string; score: number; signed_up_on: string };
  tags: string[];
}

export function contacts(n: number): ContactBody[] {
  const perCountry = Math.ceil(n / COUNTRIES.length);
  const phones = COUNTRIES.map((c) => phoneNumbers(c.country, perCountry));
  return Array.from({ length: n }, (_, i) => {
    const c = i % COUNTRIES.length;
    const { zones, locale } = COUNTRIES[c]!;
    const k = Math.floor(i / COUNTRIES.length);
    return {
      external_id: `bench-${i}`,
      name: `Contact ${i}`,
      phone: phones[c]![k]!,
      email: `contact.${i}@example${i % 97}.com`,
      time_zone: zones[k % zones.length]!,
      locale,
      attributes: { plan: PLANS[i % PLANS.length]!, score: (i * 37) % 100, signed_up_on: new Date(Date.UTC(2024, 0, 1) + (i % 700) * 86_400_000).toISOString().slice(0, 10) },
      tags: [TAGS[i % TAGS.length]!, ...(i % 3 === 0 ? [TAGS[(i + 3) % TAGS.length]!] : [])],
    };
  });
}

/** The second pass: the same people, identified the same way, with changed attributes and one more tag. */
export function updates(rows: ContactBody[]): ContactBody[] {
  return rows.map((r, i) => ({ ...r, attributes: { ...r.attributes, score: (r.attributes.score + 1) % 100, plan: PLANS[(i + 1) % PLANS.length]! }, tags: [...r.tags, 'updated'] }));
}

export function events(n: number, contactCount: number) {
  const start = Date.UTC(2026, 2, 1);
  return Array.from({ length: n }, (_, i) => ({
    name: EVENT_NAMES[i % EVENT_NAMES.length]!,
    id: `bench-event-${i}`,
    contact: { external_id: `bench-${(i * 7) % contactCount}` },
    properties: { source: i % 2 ? 'web' : 'qr', amount: (i % 50) * 3.5, sku: `SKU-${i % 1000}` },
    occurred_at: new Date(start + i * 25_000).toISOString(),
  }));
}
