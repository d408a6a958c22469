import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultKeywordReply, defaultKeywordTable, matchKeyword, normalizeKeyword, renderKeywordReply, withTenantRules, type KeywordRule } from './keywords.js';

const table = defaultKeywordTable();
const rules = [...table.rules.values()];
const phrases = rules.map((r) => r.phrase);

describe('matchKeyword, examples', () => {
  it('matches a keyword that is the whole message, whatever its case and surroundings', () => {
    for (const text of ['stop', 'STOP', 'Stop!', '  stop  ', 'Stop.', '"STOP"', 'stop 🛑', '🛑️ Stop!!!', '¡PARAR!', 'Arrêt', 'ARRET', 'No más mensajes.', 'no mas mensajes', 'STOPP']) {
      expect(matchKeyword(text, null, table), text).toMatchObject({ action: 'opt_out', via: 'text' });
    }
    expect(matchKeyword('Stop texting me!!', null, table)).toMatchObject({ action: 'opt_out', phrase: 'stop texting me', language: 'en' });
    expect(matchKeyword('Não quero mais mensagens', null, table)).toMatchObject({ action: 'opt_out', language: 'pt' });
    expect(matchKeyword('Keine Nachrichten mehr!', null, table)).toMatchObject({ action: 'opt_out', language: 'de' });
    expect(matchKeyword('बंद करो', null, table)).toMatchObject({ action: 'opt_out', language: 'hi' });
    expect(matchKeyword('Band karo', null, table)).toMatchObject({ action: 'opt_out', language: 'hi' });
  });

  it('does not match a keyword inside a longer message', () => {
    for (const text of ["don't stop the music", 'stop please', 'please stop', 'I want to stop', 'can you help me find parking', 'Yes, I will', 'the end', 'basta', 'alto', 'band']) {
      expect(matchKeyword(text, null, table), text).toBeNull();
    }
  });

  it('answers help and opt-in, marking YES as an opt-in only after an opt-out', () => {
    expect(matchKeyword('HELP', null, table)).toMatchObject({ action: 'help', language: 'en' });
    expect(matchKeyword('info', null, table)).toMatchObject({ action: 'help' });
    expect(matchKeyword('Aide', null, table)).toMatchObject({ action: 'help', language: 'fr' });
    expect(matchKeyword('Hilfe!', null, table)).toMatchObject({ action: 'help', language: 'de' });
    expect(matchKeyword('START', null, table)).toEqual(expect.objectContaining({ action: 'opt_in' }));
    expect(matchKeyword('START', null, table)!.after_opt_out).toBeUndefined();
    expect(matchKeyword('unstop', null, table)).toMatchObject({ action: 'opt_in' });
    expect(matchKeyword('Yes!', null, table)).toMatchObject({ action: 'opt_in', after_opt_out: true });
    expect(matchKeyword('subscribe', null, table)).toBeNull();
  });

  it('gives the default confirmation in the language of the keyword, English otherwise', () => {
    expect(matchKeyword('stop', null, table)!.reply).toBe(DEFAULT_EN_OPT_OUT);
    expect(matchKeyword('baja', null, table)!.reply).toContain('Se ha dado de baja');
    expect(matchKeyword('désabonner', null, table)!.reply).toContain('désabonné');
    expect(matchKeyword('ayuda', null, table)!.reply).toContain('Responda STOP');
    expect(defaultKeywordReply('opt_in', 'fr')).toContain('resubscribed');
    expect(defaultKeywordReply('help', 'pt_BR')).toContain('Responda STOP');
    expect(defaultKeywordReply('intent', 'en')).toBeUndefined();
    expect(renderKeywordReply(matchKeyword('stop', null, table)!.reply!, { tenant: 'Acme Parking' })).toBe(
      'Acme Parking: You have been unsubscribed and will receive no more messages. Reply START to resubscribe.',
    );
    // Short, as CTIA asks: at most 160 characters with a tenant name of 20.
    for (const r of rules.filter((x) => x.action !== 'intent')) {
      const reply = matchKeyword(r.phrase, null, table)!.reply!;
      expect(renderKeywordReply(reply, { tenant: 'x'.repeat(20) }).length, reply).toBeLessThanOrEqual(160);
    }
  });

  it('maps parking-alert phrases and payloads to intents', () => {
    expect(matchKeyword('Moving now!', null, table)).toMatchObject({ action: 'intent', intent: 'moving_now', via: 'text' });
    expect(matchKeyword('5 minutes', null, table)).toMatchObject({ action: 'intent', intent: 'short_delay' });
    expect(matchKeyword('More info?', null, table)).toMatchObject({ action: 'intent', intent: 'want_info' });
    expect(matchKeyword("Can't move", null, table)).toMatchObject({ action: 'intent', intent: 'unable_comply' });
    expect(matchKeyword('cant move', null, table)).toMatchObject({ intent: 'unable_comply' });
    expect(matchKeyword('Moving now', null, table)!.reply).toBeUndefined();
    for (const intent of ['moving_now', 'short_delay', 'want_info', 'unable_comply']) {
      expect(matchKeyword('OK', intent, table), intent).toMatchObject({ action: 'intent', intent, via: 'payload' });
      expect(matchKeyword(null, intent.toUpperCase(), table), intent).toMatchObject({ intent });
    }
  });

  it('reads the payload before the text, and a payload can carry a keyword', () => {
    expect(matchKeyword('Moving now', 'STOP', table)).toMatchObject({ action: 'opt_out', via: 'payload' });
    expect(matchKeyword('Stop promotions', 'stop', table)).toMatchObject({ action: 'opt_out', via: 'payload' });
    expect(matchKeyword('stop', 'btn_17', table)).toMatchObject({ action: 'opt_out', via: 'text' });
    expect(matchKeyword('hello', 'btn_17', table)).toBeNull();
    expect(matchKeyword(null, null, table)).toBeNull();
    expect(matchKeyword('', '', table)).toBeNull();
  });

  it('lets tenant rules replace, add and switch off phrases', () => {
    const tenant: KeywordRule[] = [
      { phrase: normalizeKeyword('END'), action: 'none', source: 'tenant' },
      { phrase: normalizeKeyword('Stop'), action: 'opt_out', reply: 'Acme: unsubscribed. Call 555-0100 for help.', language: 'en', source: 'tenant' },
      { phrase: normalizeKeyword('Parked legally'), action: 'intent', intent: 'dispute', source: 'tenant' },
      { phrase: normalizeKeyword('Moving now'), action: 'intent', intent: 'on_the_way', source: 'tenant' },
    ];
    const t = withTenantRules(table, tenant);
    expect(matchKeyword('end', null, t)).toBeNull();
    expect(matchKeyword('stop', null, t)).toMatchObject({ action: 'opt_out', reply: 'Acme: unsubscribed. Call 555-0100 for help.' });
    expect(matchKeyword('Parked legally!', null, t)).toMatchObject({ action: 'intent', intent: 'dispute' });
    expect(matchKeyword(null, 'dispute', t)).toMatchObject({ action: 'intent', intent: 'dispute', via: 'payload' });
    expect(matchKeyword('moving now', null, t)).toMatchObject({ intent: 'on_the_way' });
    // The defaults themselves are untouched.
    expect(matchKeyword('end', null, table)).toMatchObject({ action: 'opt_out' });
  });

  it('has no two default phrases that normalise alike with different meanings', () => {
    expect(new Set(phrases).size).toBe(phrases.length);
    for (const p of phrases) expect(normalizeKeyword(p), p).toBe(p);
    expect(phrases).not.toContain('');
  });
});

const DEFAULT_EN_OPT_OUT = '{{tenant}}: You have been unsubscribed and will receive no more messages. Reply START to resubscribe.';

// Punctuation, emoji (with skin tones, variation selectors and joiners), spaces, zero-width characters
// and a combining mark with no letter to sit on.
const NOISE = [' ', '  ', '\t', '\n', '!', '?', '.', ',', ';', ':', '¡', '¿', '"', "'", '(', ')', '[', '…', '-', '*', '~', '«', '»', '“', '”', '🛑', '👋', '🙏🏽', '❤️', '👍', '😡', '👨‍👩‍👧', '\u200b', '\u00a0', ' \u20e0'];
const noise = fc.array(fc.constantFrom(...NOISE), { maxLength: 4 }).map((xs) => xs.join(''));
const COMBINING = fc.integer({ min: 0x300, max: 0x36f }).map((c) => String.fromCharCode(c));

/** A phrase as a person might type it: any case, stray accents on Latin letters, loose spacing. */
const typed = (phrase: string) =>
  fc
    .tuple(
      fc.array(fc.boolean(), { minLength: phrase.length, maxLength: phrase.length }),
      fc.array(fc.option(COMBINING, { freq: 3 }), { minLength: phrase.length, maxLength: phrase.length }),
      fc.array(fc.constantFrom(' ', '  ', '\t', ' \n'), { minLength: 8, maxLength: 8 }),
      fc.boolean(),
      noise,
      noise,
    )
    .map(([upper, accents, gaps, compose, before, after]) => {
      let i = 0;
      let gap = 0;
      const body = [...phrase]
        .map((ch) => {
          const k = i++;
          if (ch === ' ') return gaps[gap++ % gaps.length]!;
          const cased = upper[k] ? ch.toUpperCase() : ch;
          return /[a-z]/i.test(ch) && accents[k] ? cased + accents[k] : cased;
        })
        .join('');
      return before + (compose ? body.normalize('NFC') : body) + after;
    });

const FILLER = ['please', 'the', 'music', 'now', 'really', 'ok', 'thanks', 'hello', 'car', 'street', 'today', 'again', 'why', 'lol'];
const nonsense = fc.string({ unit: fc.constantFrom(...'qxzjkvw'), minLength: 4, maxLength: 9 });

describe('matchKeyword, properties', () => {
  it('matches any default phrase typed with random case, accents, spacing and surrounding punctuation or emoji', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...rules).chain((rule) => fc.tuple(fc.constant(rule), typed(rule.phrase))),
        ([rule, text]) => {
          const m = matchKeyword(text, null, table);
          if (rule.action === 'none') return m === null;
          return m !== null && m.phrase === rule.phrase && m.action === rule.action;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('does not match a default phrase embedded among other words, unless the whole sentence is itself a listed phrase', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...phrases),
        fc.array(fc.oneof(fc.constantFrom(...FILLER), nonsense), { maxLength: 3 }),
        fc.array(fc.oneof(fc.constantFrom(...FILLER), nonsense), { maxLength: 3 }),
        noise,
        (phrase, before, after, punct) => {
          fc.pre(before.length + after.length > 0);
          const sentence = [...before, phrase, ...after].join(' ') + punct;
          const m = matchKeyword(sentence, null, table);
          return table.rules.has(normalizeKeyword(sentence)) ? m !== null : m === null;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never matches a phrase with a word of nonsense next to it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...phrases), nonsense, fc.boolean(), (phrase, word, first) => {
        return matchKeyword(first ? `${word} ${phrase}` : `${phrase} ${word}`, null, table) === null;
      }),
    );
  });

  it('is total: any text and payload, lone surrogates included, give a match or null without throwing', () => {
    const anyUnit = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom(...NOISE),
    );
    const anyText = fc.option(fc.oneof(fc.string({ unit: anyUnit, maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ maxLength: 3000 })));
    fc.assert(
      fc.property(anyText, anyText, (text, payload) => {
        const m = matchKeyword(text, payload, table);
        return m === null || ['opt_out', 'opt_in', 'help', 'intent'].includes(m.action);
      }),
      { numRuns: 3000 },
    );
  });

  it('normalises idempotently', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => normalizeKeyword(normalizeKeyword(s)) === normalizeKeyword(s)),
      { numRuns: 2000 },
    );
  });
});
