import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultKeywordTable, normalizeKeyword, withTenantRules } from './keywords.js';
import { buildPrompt, charLength, checkAnswer, composeDeterministic, minimumLength, optOutFooter, personalProfile, withFooter, type SynthesisInput } from './synthesis.js';
import { footerKeywords, optOutFooterProblems } from './tenant.js';

const base = (over: Partial<SynthesisInput> = {}): SynthesisInput => ({
  contact: {
    name: 'Ana Souza',
    locale: 'en-GB',
    attributes: { interests: ['gardening', 'composting'], purchases: [{ name: 'seed kit' }], recent_topics: 'watering' },
    tags: ['vip'],
    email: 'ana@example.com',
    phone: '+447700900123',
  },
  items: [
    { id: 'i-news', kind: 'update', title: 'Store hours', text: 'We open at 9 on Sundays now. Come by.', topics: ['store'] },
    { id: 'i-garden', kind: 'tip', title: 'Mulch in spring', text: 'Mulch keeps roots cool. It also saves water.', topics: ['gardening'], url: 'https://shop.example/mulch' },
    { id: 'i-kit', kind: 'tip', title: 'Getting the most from your seed kit', text: 'Sow the seeds 2 cm deep.', topics: ['seeds'] },
  ],
  voice: { tone: 'warm', signature: 'The Greenhouse team' },
  channel: 'sms',
  max_length: 480,
  cta: { text: 'See the spring range:', url: 'https://shop.example/spring' },
  footer: 'Reply STOP to opt out.',
  language: 'en',
  ...over,
});

describe('composeDeterministic', () => {
  it('greets by first name, puts items that match the contact first, ends with the CTA, signature and footer', () => {
    const m = composeDeterministic(base());
    const parts = m.text.split('\n\n');
    expect(parts[0]).toBe('Hi Ana!');
    // The purchase and the interest beat the store-hours update, which comes first in search order.
    expect(parts[1]).toBe('For your seed kit: Getting the most from your seed kit. Sow the seeds 2 cm deep.');
    expect(parts[2]).toBe("Since you're into gardening: Mulch in spring. Mulch keeps roots cool.");
    expect(parts.slice(-3)).toEqual(['See the spring range: https://shop.example/spring', 'The Greenhouse team', 'Reply STOP to opt out.']);
    expect(m.used.items).toEqual(['i-kit', 'i-garden', 'i-news']);
    expect(m.used.elements).toEqual(['first_name', 'purchase:seed kit', 'interest:gardening']);
    // Five available: first_name, two interests, one topic, one purchase.
    expect(m.personalization_score).toBe(0.6);
  });

  it('drops whole sentences and items to fit, keeping the CTA and the footer', () => {
    const full = composeDeterministic(base());
    const short = composeDeterministic(base({ max_length: 150 }));
    expect(charLength(short.text)).toBeLessThanOrEqual(150);
    expect(short.used.items.length).toBeLessThan(full.used.items.length);
    expect(short.text).toContain('See the spring range: https://shop.example/spring');
    expect(short.text.endsWith('Reply STOP to opt out.')).toBe(true);
    for (const line of short.text.split('\n\n')) expect(full.text.split('\n\n').some((f) => f.startsWith(line.replace(/\.$/, '')))).toBe(true);
  });

  it('refuses a max_length that cannot hold the CTA and footer, naming the field', () => {
    const input = base();
    expect(() => composeDeterministic({ ...input, max_length: minimumLength(input) - 1 })).toThrow(/max_length/);
    expect(composeDeterministic({ ...input, max_length: minimumLength(input) }).text).toBe('See the spring range: https://shop.example/spring\n\nReply STOP to opt out.');
  });

  it('speaks the contact language and leaves the footer out when none is required', () => {
    const m = composeDeterministic(base({ language: 'es', footer: optOutFooter('email', true, 'es') }));
    expect(m.text.startsWith('¡Hola, Ana!')).toBe(true);
    expect(m.text).not.toContain('STOP');
    expect(optOutFooter('whatsapp', true, 'es-MX')).toBe('Responde STOP para darte de baja.');
    expect(optOutFooter('sms', false, 'en')).toBeNull();
  });

  it("uses the tenant's footer for the language, else the built-in one, else the tenant's English one", () => {
    const mine = { en: 'Text STOP to quit Acme texts.', pt: 'Envie SAIR para sair.' };
    expect(optOutFooter('sms', true, 'pt-BR', mine)).toBe('Envie SAIR para sair.');
    expect(optOutFooter('whatsapp', true, 'en-GB', mine)).toBe('Text STOP to quit Acme texts.');
    expect(optOutFooter('sms', true, 'es', mine)).toBe('Responde STOP para darte de baja.');
    expect(optOutFooter('sms', true, 'ja', mine)).toBe('Text STOP to quit Acme texts.');
    expect(optOutFooter('sms', true, 'ja', { es: 'Envía BAJA para salir.' })).toBe('Reply STOP to opt out.');
    expect(optOutFooter('sms', true, 'es', null)).toBe('Responde STOP para darte de baja.');
    expect(optOutFooter('email', true, 'en', mine)).toBeNull();
    expect(optOutFooter('sms', false, 'pt', mine)).toBeNull();
  });

  it("accepts a footer only when it names one of the tenant's opt-out keywords in capitals", () => {
    const table = defaultKeywordTable();
    expect(footerKeywords('Reply STOP to opt out.', table)).toEqual(['stop']);
    expect(footerKeywords('Responda SAIR ou PARE para sair.', table)).toEqual(['sair', 'pare']);
    expect(footerKeywords('Antworte mit „STOPP“.', table)).toEqual(['stopp']);
    expect(footerKeywords('Text STOP ALL to leave every list.', table)).toEqual(['stop', 'stop all']);
    expect(footerKeywords('Reply DON\u2019T TEXT ME and we stop.', table)).toEqual(['dont text me']);
    expect(footerKeywords('संदेश रोकने के लिए मत भेजो लिखें', table)).toEqual(['मत भेजो'].map(normalizeKeyword));
    // Opt-out words that tell no one what to send.
    for (const text of ['Reply stop to opt out.', 'Click the link to opt out.', 'Offers end Friday; cancel any time.', 'Reply Stop to opt out.', 'Reply HELP for help.']) {
      expect(footerKeywords(text, table), text).toEqual([]);
    }

    expect(optOutFooterProblems({ en: 'Reply STOP to opt out.', es: 'Envía BAJA para salir.' }, table)).toEqual([]);
    expect(optOutFooterProblems({ en: 'Tap the link to opt out.', de: 'Antworte STOPP.' }, table)).toEqual([
      { field: 'settings.opt_out_footer.en', message: 'must name one of the tenant\'s opt-out keywords in capitals, as a contact would send it (e.g. "Reply STOP to opt out.")' },
    ]);
    // A tenant that switched STOP off, and added SALIR, is held to its own table.
    const own = withTenantRules(table, [
      { phrase: 'stop', action: 'none', source: 'tenant' },
      { phrase: 'salir', action: 'opt_out', source: 'tenant' },
    ]);
    expect(optOutFooterProblems({ en: 'Reply STOP to opt out.', es: 'Responde SALIR para salir.' }, own).map((p) => p.field)).toEqual(['settings.opt_out_footer.en']);
    expect(optOutFooterProblems({ en: 'Reply STOP to opt out.' }, own)[0]!.message).toContain('(e.g. "Reply STOPALL to opt out.")');
    expect(optOutFooterProblems(undefined, table)).toEqual([]);
  });

  it('reads interests from `topics` and purchases from `purchase_history` when the main names are absent', () => {
    const p = personalProfile({ name: null, locale: null, attributes: { topics: 'a, b', purchase_history: ['x', 'x'] }, tags: [] });
    expect(p).toEqual({ first_name: null, interests: ['a', 'b'], recent_topics: [], purchases: ['x'] });
  });
});

describe('checkAnswer', () => {
  const input = base();
  const good = withFooter('Hi Ana! Mulch keeps roots cool. See the spring range: https://shop.example/spring', input.footer);

  it('passes an answer built from the context', () => {
    expect(checkAnswer(good, input)).toEqual([]);
  });

  it.each([
    ['too_long', withFooter(`Hi Ana! ${'Mulch keeps roots cool. '.repeat(30)}See the spring range: https://shop.example/spring`, input.footer)],
    ['missing_footer', 'Hi Ana! See the spring range: https://shop.example/spring'],
    ['missing_cta', withFooter('Hi Ana! Mulch keeps roots cool.', input.footer)],
    ['unknown_url', withFooter('Hi Ana! See https://evil.example/deal and the spring range: https://shop.example/spring', input.footer)],
    ['unknown_number', withFooter('Hi Ana! 30% off mulch today. See the spring range: https://shop.example/spring', input.footer)],
    ['unknown_contact_point', withFooter('Hi Ana! Write to deals@elsewhere.example. See the spring range: https://shop.example/spring', input.footer)],
    ['unknown_contact_point', withFooter('Hi Ana! Call +1 415 555 0199. See the spring range: https://shop.example/spring', input.footer)],
  ])('reports %s', (code, text) => {
    expect(checkAnswer(text, input).map((p) => p.code)).toContain(code);
  });

  it("accepts the contact's own details and numbers in the items, and refuses another contact by name", () => {
    expect(checkAnswer(withFooter('Hi Ana (ana@example.com, +44 7700 900123)! Sow 2 cm deep. See the spring range: https://shop.example/spring', input.footer), input)).toEqual([]);
    const problems = checkAnswer(withFooter('Hi Ana, Bruno loved the mulch. See the spring range: https://shop.example/spring', input.footer), input, [{ name: 'Bruno' }]);
    expect(problems.map((p) => p.code)).toEqual(['other_contact']);
  });
});

describe('buildPrompt', () => {
  it('states the rules in the system message and the context as JSON in the user message', () => {
    const [system, user] = buildPrompt(base());
    expect(system!.content).toMatch(/only facts found in the context/);
    expect(system!.content).toContain('See the spring range: https://shop.example/spring');
    expect(system!.content).toContain(`under ${480 - 2 - 'Reply STOP to opt out.'.length} characters`);
    expect(system!.content).toMatch(/Do not add an opt-out/);
    const ctx = JSON.parse(user!.content.replace(/^Context \(JSON\):\n/, ''));
    expect(ctx.customer.first_name).toBe('Ana');
    expect(ctx.knowledge).toHaveLength(3);
    // Only what personalization needs: no address or number of the contact goes to the model.
    expect(user!.content).not.toContain('ana@example.com');
  });
});

describe('composeDeterministic properties', () => {
  const word = fc.stringMatching(/^[a-z]{3,8}$/);
  const sentence = fc.array(word, { minLength: 1, maxLength: 8 }).map((w) => `${w.join(' ')}.`);
  const item = fc.record({
    id: fc.uuid(),
    kind: fc.constant('tip'),
    title: fc.array(word, { minLength: 1, maxLength: 5 }).map((w) => w.join(' ')),
    text: fc.array(sentence, { minLength: 0, maxLength: 4 }).map((s) => s.join(' ')),
    topics: fc.array(word, { maxLength: 3 }),
  });
  const inputs = fc
    .record({
      name: fc.option(fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => w.join(' ')), { nil: null }),
      interests: fc.array(word, { maxLength: 4 }),
      purchases: fc.array(word, { maxLength: 3 }),
      items: fc.array(item, { maxLength: 5 }),
      channel: fc.constantFrom('sms' as const, 'whatsapp' as const, 'email' as const),
      marketing: fc.boolean(),
      signature: fc.option(word, { nil: undefined }),
      ctaUrl: fc.option(fc.constant('https://t.example/x'), { nil: null }),
      slack: fc.integer({ min: 0, max: 600 }),
    })
    .map((r): SynthesisInput => {
      const footer = optOutFooter(r.channel, r.marketing, 'en');
      const cta = { text: 'Reply to book', url: r.ctaUrl };
      return {
        contact: { name: r.name, locale: null, attributes: { interests: r.interests, purchases: r.purchases }, tags: [] },
        items: r.items,
        voice: { signature: r.signature },
        channel: r.channel,
        cta,
        footer,
        language: 'en',
        max_length: minimumLength({ cta, footer }) + r.slack,
      };
    });
  // Digits and capitals never occur in the generated words, so a distractor made of them cannot appear by chance.
  const distractor = fc.record({ name: fc.stringMatching(/^Q[A-Z]{4}$/), email: fc.stringMatching(/^Z[a-z]{2}@other[0-9]\.example$/), phone: fc.stringMatching(/^\+1999[0-9]{7}$/) });

  it('never exceeds max_length, always carries the required footer and CTA, and is deterministic', () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const m = composeDeterministic(input);
        expect(charLength(m.text)).toBeLessThanOrEqual(input.max_length);
        if (input.footer) expect(m.text.endsWith(`\n\n${input.footer}`)).toBe(true);
        expect(m.text).toContain(input.cta.url ? `${input.cta.text} ${input.cta.url}` : input.cta.text);
        expect(composeDeterministic(structuredClone(input))).toEqual(m);
        expect(m.personalization_score).toBeGreaterThanOrEqual(0);
        expect(m.personalization_score).toBeLessThanOrEqual(1);
        expect(checkAnswer(m.text, input)).toEqual([]);
      }),
    );
  });

  it("never includes another contact's name, e-mail or phone", () => {
    fc.assert(
      fc.property(inputs, distractor, (input, other) => {
        const m = composeDeterministic(input);
        expect(m.text).not.toContain(other.name);
        expect(m.text).not.toContain(other.email);
        expect(m.text).not.toContain(other.phone);
        expect(checkAnswer(m.text, input, [other]).map((p) => p.code)).not.toContain('other_contact');
      }),
    );
  });
});
