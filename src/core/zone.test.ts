import { getCountries, getExampleNumber, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/examples.mobile.json' with { type: 'json' };
import { IANAZone } from 'luxon';
import { describe, expect, it } from 'vitest';
import { resolveZone, zoneForPhone } from './zone.js';

describe('zoneForPhone', () => {
  it('places US and Canadian numbers by area code', () => {
    expect(zoneForPhone('+12125550123')).toBe('America/New_York');
    expect(zoneForPhone('+13055550123')).toBe('America/New_York');
    expect(zoneForPhone('+13125550123')).toBe('America/Chicago');
    expect(zoneForPhone('+17135550123')).toBe('America/Chicago');
    expect(zoneForPhone('+13035550123')).toBe('America/Denver');
    expect(zoneForPhone('+16025550123')).toBe('America/Phoenix');
    expect(zoneForPhone('+14155550123')).toBe('America/Los_Angeles');
    expect(zoneForPhone('+13105550123')).toBe('America/Los_Angeles');
    expect(zoneForPhone('+19075550123')).toBe('America/Anchorage');
    expect(zoneForPhone('+18085550123')).toBe('Pacific/Honolulu');
    expect(zoneForPhone('+14165550123')).toBe('America/Toronto');
    expect(zoneForPhone('+16045550123')).toBe('America/Vancouver');
    expect(zoneForPhone('+13065550123')).toBe('America/Regina');
    expect(zoneForPhone('+17095550123')).toBe('America/St_Johns');
    expect(zoneForPhone('+18765550123')).toBe('America/Jamaica');
    expect(zoneForPhone('+17875550123')).toBe('America/Puerto_Rico');
  });

  it('places single-zone countries by calling code', () => {
    expect(zoneForPhone('+447911123456')).toBe('Europe/London');
    expect(zoneForPhone('+33612345678')).toBe('Europe/Paris');
    expect(zoneForPhone('+4915112345678')).toBe('Europe/Berlin');
    expect(zoneForPhone('+919876543210')).toBe('Asia/Kolkata');
    expect(zoneForPhone('+9779801234567')).toBe('Asia/Kathmandu');
    expect(zoneForPhone('+819012345678')).toBe('Asia/Tokyo');
    expect(zoneForPhone('+2348031234567')).toBe('Africa/Lagos');
    expect(zoneForPhone('+213551234567')).toBe('Africa/Algiers');
    expect(zoneForPhone('+50588887777')).toBe('America/Managua');
    expect(zoneForPhone('+68572012345')).toBe('Pacific/Apia');
  });

  it('places multi-zone countries by area code', () => {
    expect(zoneForPhone('+61298765432')).toBe('Australia/Sydney');
    expect(zoneForPhone('+61731234567')).toBe('Australia/Brisbane');
    expect(zoneForPhone('+61882345678')).toBe('Australia/Adelaide');
    expect(zoneForPhone('+61889512345')).toBe('Australia/Darwin');
    expect(zoneForPhone('+61892345678')).toBe('Australia/Perth');
    expect(zoneForPhone('+5511987654321')).toBe('America/Sao_Paulo');
    expect(zoneForPhone('+5592987654321')).toBe('America/Manaus');
    expect(zoneForPhone('+5568987654321')).toBe('America/Rio_Branco');
    expect(zoneForPhone('+525512345678')).toBe('America/Mexico_City');
    expect(zoneForPhone('+526641234567')).toBe('America/Tijuana');
    expect(zoneForPhone('+529981234567')).toBe('America/Cancun');
    expect(zoneForPhone('+73832123456')).toBe('Asia/Novosibirsk');
    expect(zoneForPhone('+74012123456')).toBe('Europe/Kaliningrad');
    expect(zoneForPhone('+77012345678')).toBe('Asia/Almaty');
    expect(zoneForPhone('+34922123456')).toBe('Atlantic/Canary');
    expect(zoneForPhone('+34912345678')).toBe('Europe/Madrid');
    expect(zoneForPhone('+351296123456')).toBe('Atlantic/Azores');
    expect(zoneForPhone('+6433051234')).toBe('Pacific/Chatham');
    expect(zoneForPhone('+6493031234')).toBe('Pacific/Auckland');
    expect(zoneForPhone('+262269612345')).toBe('Indian/Mayotte');
    expect(zoneForPhone('+262262123456')).toBe('Indian/Reunion');
  });

  it('takes the main zone for numbers that carry no region, unless the tenant is in one of the country\'s zones', () => {
    expect(zoneForPhone('+61412345678')).toBe('Australia/Sydney');
    expect(zoneForPhone('+61412345678', 'Australia/Perth')).toBe('Australia/Perth');
    expect(zoneForPhone('+61412345678', 'Europe/Paris')).toBe('Australia/Sydney');
    expect(zoneForPhone('+79161234567')).toBe('Europe/Moscow');
    expect(zoneForPhone('+79161234567', 'Asia/Novosibirsk')).toBe('Asia/Novosibirsk');
    expect(zoneForPhone('+18005550123')).toBe('America/New_York');
    expect(zoneForPhone('+18005550123', 'America/Chicago')).toBe('America/Chicago');
    // A number that names its region is not moved to the tenant's zone.
    expect(zoneForPhone('+12125550123', 'America/Chicago')).toBe('America/New_York');
  });

  it('gives null for non-geographic codes and malformed numbers', () => {
    for (const n of ['+80012345678', '+8816123456789', '+12345', '12125550123', '+0123456789', 'abc', '', '+1212555012x']) expect(zoneForPhone(n)).toBeNull();
  });

  it('gives every region an example number a zone with that region\'s DST rules', () => {
    const zonesOf = (region: string): string[] | undefined => {
      const l = new Intl.Locale(`und-${region}`) as Intl.Locale & { timeZones?: string[]; getTimeZones?: () => string[] };
      return l.getTimeZones?.() ?? l.timeZones;
    };
    if (!zonesOf('US')) return; // this runtime's Intl cannot list a region's zones
    const probes = [Date.UTC(2026, 0, 15, 12), Date.UTC(2026, 6, 15, 12)];
    const rules = (zone: string) => probes.map((t) => IANAZone.create(zone).offset(t)).join('/');
    const wrong: string[] = [];
    for (const region of getCountries()) {
      const number = getExampleNumber(region as CountryCode, examples)?.number;
      const own = zonesOf(region);
      // Cocos and Christmas Islands' example mobiles are Australia's: the number cannot tell.
      if (!number || !own?.length || parsePhoneNumberFromString(number)?.country !== region) continue;
      const zone = zoneForPhone(number);
      if (!zone) {
        wrong.push(`${region} ${number}: none`);
        continue;
      }
      expect(IANAZone.isValidZone(zone)).toBe(true);
      if (!own.some((z) => rules(z) === rules(zone))) wrong.push(`${region} ${number}: ${zone}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('resolveZone', () => {
  it('prefers the contact\'s own zone, then the phone, then WhatsApp, then the tenant', () => {
    expect(resolveZone({ time_zone: 'Europe/Paris', phone: '+12125550123' }, 'UTC')).toEqual({ zone: 'Europe/Paris', source: 'contact' });
    expect(resolveZone({ time_zone: 'Mars/Olympus_Mons', phone: '+12125550123' }, 'UTC')).toEqual({ zone: 'America/New_York', source: 'phone' });
    expect(resolveZone({ time_zone: null, phone: '+14155550123', whatsapp: '+447911123456' }, 'UTC')).toEqual({ zone: 'America/Los_Angeles', source: 'phone' });
    expect(resolveZone({ phone: null, whatsapp: '+447911123456' }, 'UTC')).toEqual({ zone: 'Europe/London', source: 'phone' });
    expect(resolveZone({ phone: '+80012345678', whatsapp: '+33612345678' }, 'UTC')).toEqual({ zone: 'Europe/Paris', source: 'phone' });
    expect(resolveZone({ phone: '+80012345678' }, 'Asia/Tokyo')).toEqual({ zone: 'Asia/Tokyo', source: 'tenant' });
    expect(resolveZone({}, 'Asia/Tokyo')).toEqual({ zone: 'Asia/Tokyo', source: 'tenant' });
  });

  it('uses the tenant\'s zone to place an unplaced mobile number in its own country', () => {
    expect(resolveZone({ phone: '+61412345678' }, 'Australia/Perth')).toEqual({ zone: 'Australia/Perth', source: 'phone' });
  });
});
