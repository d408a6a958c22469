import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildMapping, csvLine, describeMapping, detectDelimiter, MappingError, parseMapOption, splitTags, toContactInput, type Delimiter } from './csv-mapping.js';

const HEADER = ['External ID', 'Name', 'Mobile Number', 'E-mail', 'Email', 'Tags', 'Plan', 'time-zone'];
const ROW = ['c-1', ' Ana ', '+1 415 555 2671', '', 'ana@example.com', 'vip; beta,vip', 'gold', 'Europe/Paris'];

describe('buildMapping', () => {
  it('matches headers to fields ignoring case, spaces and hyphens, and keeps the rest as attributes', () => {
    const m = buildMapping(HEADER);
    expect(m.fields).toEqual({ external_id: 0, name: 1, email: 4, tags: 5, time_zone: 7 });
    expect(m.attributes).toEqual([
      { key: 'Mobile Number', column: 2 },
      { key: 'E-mail', column: 3 },
      { key: 'Plan', column: 6 },
    ]);
    expect(toContactInput(ROW, m)).toEqual({
      external_id: 'c-1',
      name: 'Ana',
      email: 'ana@example.com',
      time_zone: 'Europe/Paris',
      tags: ['vip', 'beta'],
      attributes: { 'Mobile Number': '+1 415 555 2671', Plan: 'gold' },
    });
  });

  it('lets --map pick a column for a field or an attribute, and a column feed two fields', () => {
    const maps = ['phone=Mobile Number', 'whatsapp=mobile number', 'attributes.plan=Plan'].map(parseMapOption);
    const m = buildMapping(HEADER, maps);
    expect(toContactInput(ROW, m)).toMatchObject({ phone: '+1 415 555 2671', whatsapp: '+1 415 555 2671', attributes: { plan: 'gold' } });
    expect(describeMapping(m)).toContain('"Mobile Number" → phone, whatsapp');
  });

  it('leaves unmapped columns out with extra attributes off', () => {
    const m = buildMapping(HEADER, [], false);
    expect(m.attributes).toEqual([]);
    expect(m.ignored).toEqual([2, 3, 6]);
    expect(toContactInput(ROW, m).attributes).toBeUndefined();
  });

  it('leaves empty cells out, so they never clear a stored value', () => {
    const m = buildMapping(['phone', 'email', 'tags', 'plan']);
    expect(toContactInput(['', '  ', ' ;, ', ''], m)).toEqual({});
    expect(toContactInput(['+14155550100'], m)).toEqual({ phone: '+14155550100' });
  });

  it('names the columns that exist when --map names one that does not', () => {
    expect(() => buildMapping(HEADER, [parseMapOption('phone=Mobile')])).toThrow(/no column "Mobile". Its columns are "External ID", "Name", "Mobile Number"/);
  });

  it('refuses a field mapped twice, a repeated header, an unknown field and a malformed --map', () => {
    expect(() => buildMapping(HEADER, ['phone=Name', 'phone=Plan'].map(parseMapOption))).toThrow(/phone is mapped twice/);
    expect(() => buildMapping(['a', 'b', 'a'])).toThrow(/"a" twice \(columns 1 and 3\)/);
    expect(() => parseMapOption('mobile=Phone')).toThrow(/"mobile" is not a contact field; use one of external_id, name, phone/);
    expect(() => parseMapOption('phone')).toThrow(MappingError);
    expect(() => parseMapOption('attributes.=Plan')).toThrow(/attribute key/);
  });
});

describe('splitTags', () => {
  it('splits on commas and semicolons, trims, drops blanks and repeats', () => {
    expect(splitTags(' vip ;beta,, vip;')).toEqual(['vip', 'beta']);
  });

  it('round-trips any list of distinct tags joined by either separator', () => {
    const tag = fc.string({ minLength: 1, maxLength: 12 }).filter((t) => !/[,;]/.test(t) && t.trim() === t && t !== '');
    fc.assert(
      fc.property(fc.uniqueArray(tag, { maxLength: 10 }), fc.array(fc.constantFrom(',', ';', ', ', ' ; '), { minLength: 10, maxLength: 10 }), (tags, seps) => {
        const cell = tags.map((t, i) => (i ? seps[i]! : '') + t).join('');
        expect(splitTags(cell)).toEqual(tags);
      }),
    );
  });
});

describe('mapping is independent of column order and header case', () => {
  const FIELDS = ['external_id', 'name', 'phone', 'email', 'whatsapp', 'time_zone', 'locale', 'tags', 'plan', 'city'];
  const cell = fc.string({ maxLength: 8 });

  it('maps a row to the same contact whatever the order and case of its columns', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(FIELDS, { minLength: 1 }),
        fc.array(fc.boolean(), { minLength: FIELDS.length, maxLength: FIELDS.length }),
        fc.array(cell, { minLength: FIELDS.length, maxLength: FIELDS.length }),
        (order, upper, values) => {
          const header = order.map((f, i) => (upper[i] ? f.toUpperCase() : f));
          const valueOf = (f: string) => values[FIELDS.indexOf(f)]!;
          const canonical = [...order].sort();
          const lower = (input: ReturnType<typeof toContactInput>) => ({
            ...input,
            attributes: input.attributes && Object.fromEntries(Object.entries(input.attributes).map(([k, v]) => [k.toLowerCase(), v])),
          });
          expect(lower(toContactInput(order.map(valueOf), buildMapping(header)))).toEqual(lower(toContactInput(canonical.map(valueOf), buildMapping(canonical))));
        },
      ),
    );
  });
});

describe('detectDelimiter', () => {
  it('picks the separator of the header line, ignoring quoted text', () => {
    expect(detectDelimiter('a;b;"c,d,e"\n1,2,3,4,5')).toBe(';');
    expect(detectDelimiter('a\tb\tc')).toBe('\t');
    expect(detectDelimiter('name')).toBe(',');
  });

  it('finds the delimiter of any header written with it', () => {
    const name = fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !/[,;\t"\r\n]/.test(s));
    fc.assert(
      fc.property(fc.array(name, { minLength: 2, maxLength: 8 }), fc.constantFrom<Delimiter>(',', ';', '\t'), (names, d) => {
        expect(detectDelimiter(names.join(d) + '\nx')).toBe(d);
      }),
    );
  });
});

describe('csvLine', () => {
  it('quotes only what needs it', () => {
    expect(csvLine(['a', 'b c', 'say "hi"', 'x,y', 'two\nlines'])).toBe('a,b c,"say ""hi""","x,y","two\nlines"\n');
  });

  it('writes cells that csv-parse reads back unchanged, with any delimiter', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { minLength: 2, maxLength: 6 }), fc.constantFrom<Delimiter>(',', ';', '\t'), (cells, d) => {
        expect(parse(csvLine(cells, d), { delimiter: d })).toEqual([cells]);
      }),
    );
  });
});
