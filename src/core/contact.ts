import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { IANAZone } from 'luxon';
import type { FieldProblem } from './errors.js';

/** Contact fields as a caller sends them. Absent or null fields are left as they are on upsert. */
export interface ContactInput {
  external_id?: string | null;
  name?: string | null;
  phone?: string | null;
  email?: string | null;
  whatsapp?: string | null;
  time_zone?: string | null;
  locale?: string | null;
  attributes?: Record<string, unknown> | null;
  tags?: string[] | null;
}

/** Contact fields after validation: phones in E.164, email lower-cased, zone and locale canonical. */
export interface ContactFields {
  external_id: string | null;
  name: string | null;
  phone: string | null;
  email: string | null;
  whatsapp: string | null;
  time_zone: string | null;
  locale: string | null;
  attributes: Record<string, unknown> | null;
  tags: string[] | null;
}

export interface NormalizeOptions {
  /** Country assumed for phone numbers written without a leading + (ISO 3166 alpha-2). */
  defaultCountry?: string;
}

// Deliberately loose: the mailbox is the authority on what it accepts; this catches typos
// such as a missing @ or domain, and whitespace.
export const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const MAX_ATTRIBUTES_BYTES = 32 * 1024;

/** Parses a phone number into E.164, or returns a sentence saying why it is not one. */
export function toE164(raw: string, defaultCountry?: string): { e164: string } | { problem: string } {
  const text = raw.trim();
  if (!text) return { problem: 'is empty' };
  const parsed = parsePhoneNumberFromString(text, defaultCountry as CountryCode | undefined);
  if (!parsed) {
    return { problem: text.startsWith('+') || defaultCountry ? 'is not a phone number' : 'is not in international format (+ and country code) and the tenant has no default country' };
  }
  if (!parsed.isValid()) return { problem: `is not a valid phone number for ${parsed.country ?? 'its country code'}` };
  return { e164: parsed.number };
}

/** The country (ISO 3166 alpha-2) an E.164 number belongs to, when the numbering plan says. */
export function phoneCountry(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.country;
}

/**
 * Remembers answers for a bounded set of keys. Zone and locale checks build Intl objects and cost
 * about 50 µs each (measured: half the CPU of a bulk import); a tenant's contacts use a handful.
 */
function memo<T>(fn: (key: string) => T, max = 2000): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    if (cache.has(key)) return cache.get(key)!;
    const value = fn(key);
    if (cache.size >= max) cache.clear();
    cache.set(key, value);
    return value;
  };
}

export const isValidTimeZone: (zone: string) => boolean = memo((zone) => IANAZone.isValidZone(zone));

const canonicalLocale = memo((locale: string): string | undefined => {
  try {
    return Intl.getCanonicalLocales(locale)[0];
  } catch {
    return undefined;
  }
});

function text(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const t = value.trim();
  return t === '' ? null : t;
}

/**
 * Validates and normalises one contact. Problems name fields under `prefix`
 * (e.g. `contacts[4].phone`), so a batch can report every bad row at once.
 */
export function normalizeContact(input: ContactInput, opts: NormalizeOptions = {}, prefix = ''): { fields: ContactFields; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);

  const phoneField = (name: 'phone' | 'whatsapp'): string | null => {
    const raw = text(input[name]);
    if (raw === null) return null;
    const r = toE164(raw, opts.defaultCountry);
    if ('problem' in r) {
      problems.push({ field: at(name), message: `${JSON.stringify(raw)} ${r.problem}` });
      return null;
    }
    return r.e164;
  };

  const phone = phoneField('phone');
  const whatsapp = phoneField('whatsapp');

  let email = text(input.email);
  if (email !== null) {
    email = email.toLowerCase();
    if (!EMAIL.test(email)) {
      problems.push({ field: at('email'), message: `${JSON.stringify(input.email)} is not an email address` });
      email = null;
    }
  }

  let time_zone = text(input.time_zone);
  if (time_zone !== null && !isValidTimeZone(time_zone)) {
    problems.push({ field: at('time_zone'), message: `${JSON.stringify(time_zone)} is not an IANA time zone (e.g. "Europe/Paris")` });
    time_zone = null;
  }

  let locale = text(input.locale);
  if (locale !== null) {
    const canonical = canonicalLocale(locale);
    if (!canonical) problems.push({ field: at('locale'), message: `${JSON.stringify(locale)} is not a BCP 47 language tag (e.g. "pt-BR")` });
    locale = canonical ?? null;
  }

  let tags: string[] | null = null;
  if (input.tags) {
    tags = [...new Set(input.tags.map((t) => t.trim()).filter((t) => t !== ''))];
  }

  const attributes = input.attributes ?? null;
  if (attributes && JSON.stringify(attributes).length > MAX_ATTRIBUTES_BYTES) {
    problems.push({ field: at('attributes'), message: `is larger than ${MAX_ATTRIBUTES_BYTES / 1024} KiB` });
  }

  return {
    fields: { external_id: text(input.external_id), name: text(input.name), phone, email, whatsapp, time_zone, locale, attributes, tags },
    problems,
  };
}
