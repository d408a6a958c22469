import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeContact, toE164 } from './contact.js';

describe('toE164', () => {
  it.each([
    ['+1 (415) 555-2671', undefined, '+14155552671'],
    ['+44 20 7946 0958', undefined, '+442079460958'],
    ['06 12 34 56 78', 'FR', '+33612345678'],
    ['0049 30 901820', 'DE', '+4930901820'],
  ])('parses %s', (raw, country, e164) => {
    expect(toE164(raw, country)).toEqual({ e164 });
  });

  it('explains what is wrong', () => {
    expect(toE164('0612345678')).toEqual({ problem: expect.stringContaining('international format') });
    expect(toE164('+1 555')).toEqual({ problem: expect.stringMatching(/not a (valid )?phone number/) });
  });

  it('gives the same E.164 however the number is punctuated', () => {
    const digits = '4155552671';
    fc.assert(
      fc.property(fc.array(fc.constantFrom(' ', '-', '.', ''), { minLength: digits.length, maxLength: digits.length }), (seps) => {
        const written = '+1' + [...digits].map((d, i) => seps[i] + d).join('');
        expect(toE164(written)).toEqual({ e164: '+14155552671' });
      }),
    );
  });
});

describe('normalizeContact', () => {
  it('names each bad field under the prefix', () => {
    const { problems } = normalizeContact({ email: 'x', time_zone: 'Nowhere/City', locale: 'not a locale!' }, {}, 'contacts[2]');
    expect(problems.map((p) => p.field)).toEqual(['contacts[2].email', 'contacts[2].time_zone', 'contacts[2].locale']);
  });

  it('canonicalises locale and trims text', () => {
    const { fields, problems } = normalizeContact({ name: '  Ana ', locale: 'pt-br', time_zone: 'America/Sao_Paulo', tags: [' a ', 'a', ''] });
    expect(problems).toEqual([]);
    expect(fields).toMatchObject({ name: 'Ana', locale: 'pt-BR', time_zone: 'America/Sao_Paulo', tags: ['a'] });
  });
});
