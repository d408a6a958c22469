/**
 * TwiML for Rapport's outbound calls (https://www.twilio.com/docs/voice/twiml): the script read
 * with <Say> in the contact's language, an optional keypad menu in a <Gather> whose action URL
 * carries what each key means, the voicemail read to an answering machine, and the answer to a
 * menu choice (thanks, or a <Dial> transfer). Documents are built as strings: every piece of text
 * and every attribute goes through escapeXml, and nothing else is ever concatenated in.
 */

/** The <Say> attributes: a Twilio language code and, when the default one will not do, a voice. */
export interface SayVoice {
  language: string;
  voice?: string;
}

/** One keypad choice: "Press 1 if you are moving now" → payload moving_now. */
export interface MenuItem {
  digit: string;
  say: string;
  payload: string;
  /** Pressing it connects the caller to the message's transfer_to number. */
  transfer?: boolean;
}

/**
 * Twilio's <Say> languages Rapport picks from, each with the voice that speaks it. en-US needs none
 * (it is the default voice's language); the others use Google standard voices, whose names follow
 * one pattern and which Twilio offers for each of these languages. An account's `voices` config
 * replaces any of them.
 */
const VOICES: Readonly<Record<string, string | undefined>> = {
  'en-US': undefined,
  'en-GB': 'Google.en-GB-Standard-A',
  'en-AU': 'Google.en-AU-Standard-A',
  'en-IN': 'Google.en-IN-Standard-A',
  'de-DE': 'Google.de-DE-Standard-A',
  'fr-FR': 'Google.fr-FR-Standard-A',
  'fr-CA': 'Google.fr-CA-Standard-A',
  'es-ES': 'Google.es-ES-Standard-A',
  'es-US': 'Google.es-US-Standard-A',
  'it-IT': 'Google.it-IT-Standard-A',
  'nl-NL': 'Google.nl-NL-Standard-A',
  'pt-BR': 'Google.pt-BR-Standard-A',
  'pt-PT': 'Google.pt-PT-Standard-A',
  'da-DK': 'Google.da-DK-Standard-A',
  'sv-SE': 'Google.sv-SE-Standard-A',
  'nb-NO': 'Google.nb-NO-Standard-A',
  'fi-FI': 'Google.fi-FI-Standard-A',
  'pl-PL': 'Google.pl-PL-Standard-A',
  'ru-RU': 'Google.ru-RU-Standard-A',
  'tr-TR': 'Google.tr-TR-Standard-A',
  'ja-JP': 'Google.ja-JP-Standard-A',
  'ko-KR': 'Google.ko-KR-Standard-A',
  'hi-IN': 'Google.hi-IN-Standard-A',
  'cmn-CN': 'Google.cmn-CN-Standard-A',
  'cmn-TW': 'Google.cmn-TW-Standard-A',
  'yue-HK': 'Google.yue-HK-Standard-A',
};

/** Where a language without a supported region of its own goes. */
const BY_LANGUAGE: Readonly<Record<string, string>> = {
  en: 'en-US', de: 'de-DE', fr: 'fr-FR', es: 'es-ES', it: 'it-IT', nl: 'nl-NL', pt: 'pt-BR',
  da: 'da-DK', sv: 'sv-SE', nb: 'nb-NO', no: 'nb-NO', nn: 'nb-NO', fi: 'fi-FI', pl: 'pl-PL',
  ru: 'ru-RU', tr: 'tr-TR', ja: 'ja-JP', ko: 'ko-KR', hi: 'hi-IN', zh: 'cmn-CN', cmn: 'cmn-CN', yue: 'yue-HK',
};

/** Regions whose Spanish is closer to US Spanish than to Spain's. */
const AMERICAS = new Set(['US', 'MX', '419', 'AR', 'BO', 'CL', 'CO', 'CR', 'CU', 'DO', 'EC', 'GT', 'HN', 'NI', 'PA', 'PE', 'PR', 'PY', 'SV', 'UY', 'VE']);

export const FALLBACK_LANGUAGE = 'en-US';

/** The Twilio language for a contact's locale ("de", "pt_BR", "zh-Hant-TW"...); en-US when unknown. */
export function twilioLanguage(locale: string | null | undefined): string {
  if (!locale) return FALLBACK_LANGUAGE;
  const parts = locale.trim().replace(/_/g, '-').split('-').filter(Boolean);
  const lang = (parts[0] ?? '').toLowerCase();
  // The region is the first 2-letter or 3-digit subtag; a script subtag ("Hant") comes before it.
  const region = parts.slice(1).find((p) => /^([A-Za-z]{2}|\d{3})$/.test(p))?.toUpperCase();
  if (lang === 'zh') {
    if (region === 'HK' || region === 'MO') return 'yue-HK';
    if (region === 'TW' || parts.some((p) => p.toLowerCase() === 'hant')) return 'cmn-TW';
    return 'cmn-CN';
  }
  if (region && `${lang}-${region}` in VOICES) return `${lang}-${region}`;
  if (lang === 'es' && region && AMERICAS.has(region)) return 'es-US';
  if (lang === 'pt' && region && region !== 'BR') return 'pt-PT';
  return BY_LANGUAGE[lang] ?? FALLBACK_LANGUAGE;
}

/** The voice for a language: the account's choice for it, else Rapport's default, else Twilio's. */
export function sayVoice(language: string, voices: Record<string, unknown> = {}, override?: string): SayVoice {
  const configured = override ?? (typeof voices[language] === 'string' ? (voices[language] as string) : undefined) ?? VOICES[language];
  return configured ? { language, voice: configured } : { language };
}

/** What is said after a menu choice when the message sets no `thanks` text. */
const THANKS: Readonly<Record<string, string>> = {
  en: 'Thank you. Goodbye.',
  de: 'Vielen Dank. Auf Wiederhören.',
  fr: 'Merci. Au revoir.',
  es: 'Gracias. Adiós.',
  it: 'Grazie. Arrivederci.',
  nl: 'Dank u wel. Tot ziens.',
  pt: 'Obrigado. Até logo.',
};

export function thanksText(language: string): string {
  return THANKS[language.split('-')[0] ?? ''] ?? THANKS.en!;
}

/** True for the characters XML 1.0 allows at all; the others cannot be written even as references. */
function xmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * Text or an attribute value made safe for XML: markup characters and quotes as entities; tab, CR
 * and LF as character references so a parser's attribute and line-end normalisation leave them
 * as they were; characters XML cannot carry (NUL, most C0 controls, lone surrogates) dropped.
 */
export function escapeXml(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (!xmlChar(cp)) continue;
    switch (ch) {
      case '&': out += '&amp;'; break;
      case '<': out += '&lt;'; break;
      case '>': out += '&gt;'; break;
      case '"': out += '&quot;'; break;
      case "'": out += '&apos;'; break;
      case '\t': out += '&#9;'; break;
      case '\n': out += '&#10;'; break;
      case '\r': out += '&#13;'; break;
      default: out += ch;
    }
  }
  return out;
}

function element(name: string, attrs: Record<string, string | number | undefined>, children?: string): string {
  let open = `<${name}`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) open += ` ${k}="${escapeXml(String(v))}"`;
  return children === undefined || children === '' ? `${open}/>` : `${open}>${children}</${name}>`;
}

export function response(verbs: string[]): string {
  return element('Response', {}, verbs.join(''));
}

export function say(text: string, voice: SayVoice): string {
  return element('Say', { language: voice.language, voice: voice.voice }, escapeXml(text));
}

export const HANGUP = '<Hangup/>';
export const EMPTY_TWIML = '<Response/>';

/** The call itself: the script, and the menu when there is one, which the callee can answer mid-script. */
export function callTwiml(voice: SayVoice, body: string, menu?: { items: MenuItem[]; action: string; speech?: boolean }): string {
  if (!menu || !menu.items.length) return response([say(body, voice), HANGUP]);
  const gather = element(
    'Gather',
    {
      input: menu.speech ? 'dtmf speech' : 'dtmf',
      numDigits: 1,
      // Seconds of silence after the last prompt before the <Gather> gives up.
      timeout: 6,
      action: menu.action,
      method: 'POST',
      // Speech is recognised in the script's language; keypad input needs none.
      language: menu.speech ? voice.language : undefined,
      speechTimeout: menu.speech ? 'auto' : undefined,
    },
    [say(body, voice), ...menu.items.map((i) => say(i.say, voice))].join(''),
  );
  // Without an answer the <Gather> falls through: the call ends.
  return response([gather, HANGUP]);
}

/** What an answering machine records once its greeting has ended. */
export function voicemailTwiml(voice: SayVoice, text: string): string {
  return response([say(text, voice), HANGUP]);
}

/** The answer to a menu choice: connect to `transferTo`, or thank and hang up. */
export function choiceTwiml(voice: SayVoice, choice: { transferTo?: string; callerId?: string; thanks?: string }): string {
  if (choice.transferTo) return response([element('Dial', { callerId: choice.callerId }, escapeXml(choice.transferTo))]);
  return response([say(choice.thanks ?? thanksText(voice.language), voice), HANGUP]);
}
