import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callTwiml, choiceTwiml, escapeXml, say, sayVoice, thanksText, twilioLanguage, voicemailTwiml } from './twiml.js';

/**
 * A small XML reader for these tests: elements, double- or single-quoted attributes, text, the
 * five predefined entities and character references, with XML 1.0's line-end and attribute-value
 * normalisation, so a document that only survives a lenient reader fails here.
 */
interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}
type XmlNode = XmlElement | string;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, inAttribute: boolean): string {
  let s = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\r') {
      // Line ends become LF; in an attribute, whitespace characters become spaces.
      if (raw[i + 1] === '\n') i++;
      s += inAttribute ? ' ' : '\n';
    } else if (inAttribute && (c === '\n' || c === '\t')) s += ' ';
    else if (c === '<') throw new Error(`raw < at ${i}`);
    else if (c === '&') {
      const end = raw.indexOf(';', i);
      if (end < 0) throw new Error('unterminated reference');
      const ref = raw.slice(i + 1, end);
      if (ref.startsWith('#x')) s += String.fromCodePoint(parseInt(ref.slice(2), 16));
      else if (ref.startsWith('#')) s += String.fromCodePoint(parseInt(ref.slice(1), 10));
      else if (ENTITIES[ref] !== undefined) s += ENTITIES[ref];
      else throw new Error(`unknown entity &${ref};`);
      i = end;
    } else s += c;
  }
  return s;
}

function parseXml(xml: string): XmlElement {
  let i = 0;
  const isNameChar = (c: string | undefined) => c !== undefined && c !== ' ' && c !== '=' && c !== '>' && c !== '/' && c !== '\t' && c !== '\n';
  function element(): XmlElement {
    if (xml[i] !== '<') throw new Error(`expected < at ${i}`);
    i++;
    let name = '';
    while (isNameChar(xml[i])) name += xml[i++];
    const attrs: Record<string, string> = {};
    for (;;) {
      while (xml[i] === ' ') i++;
      if (xml[i] === '/' && xml[i + 1] === '>') {
        i += 2;
        return { name, attrs, children: [] };
      }
      if (xml[i] === '>') {
        i++;
        break;
      }
      let attr = '';
      while (isNameChar(xml[i])) attr += xml[i++];
      if (!attr || xml[i] !== '=') throw new Error(`bad attribute at ${i}`);
      const quote = xml[i + 1];
      if (quote !== '"' && quote !== "'") throw new Error(`unquoted attribute at ${i}`);
      const end = xml.indexOf(quote, i + 2);
      if (end < 0) throw new Error('unterminated attribute');
      if (attr in attrs) throw new Error(`duplicate attribute ${attr}`);
      attrs[attr] = decode(xml.slice(i + 2, end), true);
      i = end + 1;
    }
    const children: XmlNode[] = [];
    for (;;) {
      if (i >= xml.length) throw new Error(`unclosed <${name}>`);
      if (xml.startsWith('</', i)) {
        const close = `</${name}>`;
        if (!xml.startsWith(close, i)) throw new Error(`mismatched close at ${i}`);
        i += close.length;
        return { name, attrs, children };
      }
      if (xml[i] === '<') children.push(element());
      else {
        const end = xml.indexOf('<', i);
        children.push(decode(xml.slice(i, end < 0 ? xml.length : end), false));
        i = end < 0 ? xml.length : end;
      }
    }
  }
  const root = element();
  if (i !== xml.length) throw new Error('content after the root element');
  return root;
}

const text = (e: XmlElement): string => e.children.map((c) => (typeof c === 'string' ? c : text(c))).join('');
const child = (e: XmlElement, name: string, n = 0): XmlElement => e.children.filter((c): c is XmlElement => typeof c !== 'string' && c.name === name)[n]!;

/** What XML 1.0 can carry of a string (the Char production). */
function xmlRepresentable(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000) out += ch;
  }
  return out;
}

const anyText = fc.string({ unit: fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)), maxLength: 60 });

describe('escaping', () => {
  it('escapes markup and quotes in text and attributes', () => {
    expect(escapeXml(`Tom & Jerry <3 "quoted" 'single'`)).toBe('Tom &amp; Jerry &lt;3 &quot;quoted&quot; &apos;single&apos;');
    const xml = say('Hello O\'Brien & <Sons> "Ltd"', { language: 'en-GB', voice: 'Polly."Amy"&<x>' });
    expect(xml).toBe('<Say language="en-GB" voice="Polly.&quot;Amy&quot;&amp;&lt;x&gt;">Hello O&apos;Brien &amp; &lt;Sons&gt; &quot;Ltd&quot;</Say>');
    const parsed = parseXml(xml);
    expect(text(parsed)).toBe('Hello O\'Brien & <Sons> "Ltd"');
    expect(parsed.attrs.voice).toBe('Polly."Amy"&<x>');
  });

  it('drops what XML cannot carry and keeps line breaks and tabs as references', () => {
    expect(escapeXml('a\u0000b\u0007c\uFFFEd\uD800e')).toBe('abcde');
    expect(escapeXml('line\r\nnext\ttab')).toBe('line&#13;&#10;next&#9;tab');
    expect(escapeXml('emoji 🎉 ü 中')).toBe('emoji 🎉 ü 中');
  });

  it('round-trips any text through an XML reader, as text and as an attribute', () => {
    fc.assert(
      fc.property(anyText, anyText, (body, attr) => {
        const doc = parseXml(callTwiml({ language: 'en-US', voice: attr }, body));
        expect(doc.name).toBe('Response');
        const s = child(doc, 'Say');
        expect(text(s)).toBe(xmlRepresentable(body));
        expect(s.attrs.voice).toBe(xmlRepresentable(attr));
        expect(child(doc, 'Hangup')).toBeDefined();
      }),
    );
  });
});

describe('languages and voices', () => {
  it.each([
    [null, 'en-US'],
    ['', 'en-US'],
    ['en', 'en-US'],
    ['en-GB', 'en-GB'],
    ['en_IE', 'en-US'],
    ['de', 'de-DE'],
    ['de-AT', 'de-DE'],
    ['de_CH', 'de-DE'],
    ['fr-CA', 'fr-CA'],
    ['fr-BE', 'fr-FR'],
    ['es', 'es-ES'],
    ['es-MX', 'es-US'],
    ['es-419', 'es-US'],
    ['pt', 'pt-BR'],
    ['pt_PT', 'pt-PT'],
    ['pt-AO', 'pt-PT'],
    ['nb', 'nb-NO'],
    ['no-NO', 'nb-NO'],
    ['zh', 'cmn-CN'],
    ['zh-Hant-TW', 'cmn-TW'],
    ['zh-HK', 'yue-HK'],
    ['ja-JP', 'ja-JP'],
    ['xx-YY', 'en-US'],
    ['klingon', 'en-US'],
  ])('%s → %s', (locale, language) => {
    expect(twilioLanguage(locale)).toBe(language);
  });

  it('picks a voice that speaks the language unless the account or the message chose one', () => {
    expect(sayVoice('en-US')).toEqual({ language: 'en-US' });
    expect(sayVoice('de-DE')).toEqual({ language: 'de-DE', voice: 'Google.de-DE-Standard-A' });
    expect(sayVoice('de-DE', { 'de-DE': 'Polly.Marlene' })).toEqual({ language: 'de-DE', voice: 'Polly.Marlene' });
    expect(sayVoice('de-DE', { 'de-DE': 'Polly.Marlene' }, 'Polly.Vicki')).toEqual({ language: 'de-DE', voice: 'Polly.Vicki' });
    expect(thanksText('de-DE')).toBe('Vielen Dank. Auf Wiederhören.');
    expect(thanksText('ja-JP')).toBe('Thank you. Goodbye.');
  });
});

describe('call documents', () => {
  const voice = { language: 'de-DE', voice: 'Google.de-DE-Standard-A' };

  it('reads the script and hangs up when there is no menu', () => {
    expect(callTwiml(voice, 'Ihr Umzug steht an.')).toBe(
      '<Response><Say language="de-DE" voice="Google.de-DE-Standard-A">Ihr Umzug steht an.</Say><Hangup/></Response>',
    );
  });

  it('puts the script and the prompts in a one-key <Gather> that posts to the action URL', () => {
    const action = 'https://rapport.example/webhooks/twilio_voice?e=gather&l=de-DE&p1=moving_now&p2=later';
    const doc = parseXml(
      callTwiml(voice, 'Ihr Umzug <bald> & sicher', {
        items: [
          { digit: '1', say: 'Drücken Sie 1, wenn Sie jetzt umziehen.', payload: 'moving_now' },
          { digit: '2', say: 'Drücken Sie 2 für später.', payload: 'later' },
        ],
        action,
      }),
    );
    const gather = child(doc, 'Gather');
    expect(gather.attrs).toEqual({ input: 'dtmf', numDigits: '1', timeout: '6', action, method: 'POST' });
    expect(gather.children.map((c) => text(c as XmlElement))).toEqual(['Ihr Umzug <bald> & sicher', 'Drücken Sie 1, wenn Sie jetzt umziehen.', 'Drücken Sie 2 für später.']);
    expect(child(gather, 'Say', 1).attrs).toEqual({ language: 'de-DE', voice: 'Google.de-DE-Standard-A' });
    expect(child(doc, 'Hangup')).toBeDefined();

    const speech = parseXml(callTwiml(voice, 'x', { items: [{ digit: '1', say: 'y', payload: 'p' }], action, speech: true }));
    expect(child(speech, 'Gather').attrs).toMatchObject({ input: 'dtmf speech', language: 'de-DE', speechTimeout: 'auto' });
  });

  it('answers a choice with thanks, or with a <Dial> to the transfer number', () => {
    expect(voicemailTwiml({ language: 'en-US' }, 'Call us back at 555 & ask for "Sam".')).toBe(
      '<Response><Say language="en-US">Call us back at 555 &amp; ask for &quot;Sam&quot;.</Say><Hangup/></Response>',
    );
    expect(choiceTwiml(voice, {})).toBe('<Response><Say language="de-DE" voice="Google.de-DE-Standard-A">Vielen Dank. Auf Wiederhören.</Say><Hangup/></Response>');
    expect(choiceTwiml(voice, { thanks: 'Danke!' })).toContain('>Danke!</Say>');
    expect(choiceTwiml(voice, { transferTo: '+4930123456', callerId: '+14155550100' })).toBe('<Response><Dial callerId="+14155550100">+4930123456</Dial></Response>');
  });
});
