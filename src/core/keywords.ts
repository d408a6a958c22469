/**
 * Keywords in inbound messages: opt-out (STOP), opt-in (START), help (HELP) and named intents
 * (a parking-alert reply "moving now"), as carriers and Twilio treat them: the WHOLE message is
 * the keyword or it is not one. "Stop!" and "  stop 🛑" opt out; "don't stop the music" and
 * "stop please" do not (they are ordinary replies a person should read). Comparison ignores case,
 * accents, surrounding punctuation and emoji, and apostrophes (so "can't move" is "cant move").
 *
 * The default table below is what every tenant starts from; a tenant's rows (src/store/keywords.ts)
 * replace a default phrase, add new ones, or switch one off with action 'none'.
 */

export const KEYWORD_ACTIONS = ['opt_out', 'opt_in', 'help', 'intent', 'none'] as const;
export type KeywordAction = (typeof KEYWORD_ACTIONS)[number];

/** The languages the default table and its confirmation replies cover. */
export const KEYWORD_LANGUAGES = ['en', 'es', 'pt', 'fr', 'de', 'it', 'nl', 'hi'] as const;

export interface KeywordRule {
  /** Normalised with normalizeKeyword(). */
  phrase: string;
  action: KeywordAction;
  /** For action 'intent': the intent's name (moving_now). */
  intent?: string;
  /** The confirmation to send back; absent means the default for the action and language. */
  reply?: string;
  language?: string;
  /**
   * YES opts in only a contact who has opted out on that channel; from anyone else it is an
   * ordinary answer ("Can you move your car?" "Yes"). The inbound pipeline makes that call.
   */
  after_opt_out?: boolean;
  source: 'default' | 'tenant';
}

export interface KeywordTable {
  /** By normalised phrase. Rules with action 'none' are kept, so they mask a default. */
  readonly rules: ReadonlyMap<string, KeywordRule>;
  /** Intent names that a quick-reply payload may carry as such (payload "moving_now"). */
  readonly intents: ReadonlySet<string>;
}

export interface KeywordMatch {
  action: Exclude<KeywordAction, 'none'>;
  /** The table phrase that matched (normalised). */
  phrase: string;
  intent?: string;
  /** The confirmation to send, with `{{tenant}}` still in it (see renderKeywordReply). */
  reply?: string;
  language?: string;
  after_opt_out?: boolean;
  /** Whether the button payload or the typed text matched. */
  via: 'payload' | 'text';
}

// Longer messages are never keywords; this only bounds the work done on a pasted essay.
const MAX_KEYWORD_MESSAGE = 2000;

const DIACRITICS = /[\u0300-\u036f]/g;
// Zero-width characters, variation selectors (the U+FE0F of "🛑️") and the keycap mark.
const INVISIBLE = /[\u200b-\u200d\u2060\ufeff]|\p{Variation_Selector}|\u20e3/gu;
const APOSTROPHES = /['\u2018\u2019\u02bc`\u00b4]/g;
// Combining marks belong to the letter before them (Devanagari vowel signs); stray ones are noise.
const LOOSE_MARKS = /(?<![\p{L}\p{M}])\p{M}+/gu;
const SEPARATORS = /[^\p{L}\p{M}\p{N}]+/gu;

/**
 * The form phrases are compared in: lower case, no accents on Latin letters, no apostrophes,
 * every run of punctuation, emoji and space turned into one space, trimmed.
 */
export function normalizeKeyword(text: string): string {
  return text
    .normalize('NFKD')
    .replace(DIACRITICS, '')
    .replace(INVISIBLE, '')
    .toLowerCase()
    .replace(/ß/g, 'ss')
    .replace(APOSTROPHES, '')
    .replace(LOOSE_MARKS, '')
    .replace(SEPARATORS, ' ')
    .trim()
    .normalize('NFC');
}

type Entry = [phrase: string, language: string];
const words = (language: string, ...phrases: string[]): Entry[] => phrases.map((p) => [p, language]);

/**
 * Opt-out words. English: the CTIA/carrier set Twilio honours (STOP, STOPALL, UNSUBSCRIBE, CANCEL,
 * END, QUIT) plus REVOKE and OPTOUT, and the phrases people actually type. Other languages: only
 * words that mean nothing else as a whole message (no Italian BASTA, Spanish ALTO or Hindi BAND:
 * each has an everyday meaning). A word shared by two languages answers in the first one here.
 */
const OPT_OUT: Entry[] = [
  ...words('en', 'stop', 'stopall', 'stop all', 'unsubscribe', 'cancel', 'end', 'quit', 'revoke', 'optout', 'opt out'),
  ...words(
    'en',
    'stop texting me',
    'stop messaging me',
    'stop sending me messages',
    'stop sending messages',
    'remove me',
    'remove me from your list',
    'unsubscribe me',
    'leave me alone',
    'take me off your list',
    'no more messages',
    "don't text me",
    'do not text me',
    "don't message me",
    'do not message me',
    'do not contact me',
  ),
  ...words('es', 'parar', 'baja', 'detener', 'no más mensajes', 'dar de baja', 'darme de baja', 'no quiero más mensajes', 'no me envíen más mensajes', 'desuscribir', 'desuscribirme'),
  ...words('pt', 'pare', 'sair', 'cancelar', 'descadastrar', 'me descadastre', 'não quero mais mensagens', 'não quero mais receber', 'parar de receber'),
  ...words('fr', 'arrêt', 'arrete', 'arrett', 'désabonner', 'me désabonner', 'désinscrire', 'me désinscrire', 'désinscription', 'ne plus recevoir', 'plus de messages'),
  ...words('de', 'stopp', 'abmelden', 'abbestellen', 'austragen', 'keine nachrichten mehr', 'keine sms mehr'),
  ...words('it', 'disiscrivimi', 'cancellami', 'cancella iscrizione', 'annulla iscrizione', 'non voglio più messaggi', 'basta messaggi'),
  ...words('nl', 'stoppen', 'afmelden', 'uitschrijven', 'meld me af', 'schrijf me uit', 'geen berichten meer'),
  ...words('hi', 'band karo', 'bandh karo', 'mat bhejo', 'message mat bhejo', 'बंद करो', 'मत भेजो'),
];

const HELP: Entry[] = [
  ...words('en', 'help', 'info'),
  ...words('es', 'ayuda'),
  ...words('pt', 'ajuda'),
  ...words('fr', 'aide'),
  ...words('de', 'hilfe'),
  ...words('it', 'aiuto'),
  ...words('nl', 'hulp'),
  ...words('hi', 'madad', 'मदद'),
];

/**
 * Opt-in: START and UNSTOP as carriers use them. SUBSCRIBE is left out on purpose: it reads as a
 * request for marketing, and consent to marketing needs more than a one-word text; a tenant that
 * wants it adds it. YES only lifts an earlier opt-out (see KeywordRule.after_opt_out).
 */
const OPT_IN: Entry[] = words('en', 'start', 'unstop', 'yes');

/**
 * The intents of the parking-alert recipe, matched from typed phrases and from quick-reply
 * payloads equal to the intent name. A tenant extends this with its own phrases and intents.
 */
export const DEFAULT_INTENTS: Record<string, Entry[]> = {
  moving_now: [
    ...words('en', 'moving now', 'moving', 'moving it', 'moving it now', 'moving my car', 'on my way', 'coming', 'coming now', 'omw'),
    ...words('es', 'ya voy', 'voy ahora'),
    ...words('pt', 'já vou', 'estou indo'),
  ],
  short_delay: [
    ...words('en', '1 minute', 'one minute', '2 minutes', '5 minutes', '5 mins', '5 min', 'five minutes', '10 minutes', '10 min', 'ten minutes', 'in 5 minutes', 'give me 5 minutes', 'few minutes', 'a few minutes'),
    ...words('es', '5 minutos', 'cinco minutos'),
    ...words('pt', '5 minutos', 'cinco minutos'),
  ],
  want_info: [...words('en', 'more info', 'more information', 'tell me more', 'details'), ...words('es', 'más información'), ...words('pt', 'mais informações')],
  unable_comply: [
    ...words('en', "can't move", 'cannot move', "can't move it", 'cannot move it', 'unable to move', "i can't", 'i cannot', "i can't move it"),
    ...words('es', 'no puedo', 'no puedo moverlo'),
    ...words('pt', 'não posso', 'não consigo'),
  ],
};

type ReplyAction = 'opt_out' | 'opt_in' | 'help';

/**
 * Confirmations, short as CTIA asks: who is writing, what happened, how to undo it. `{{tenant}}`
 * is the tenant's name. The help text names no contact, which Rapport does not know; a tenant
 * sets its own help reply with its support address or number (CTIA requires one).
 */
export const DEFAULT_REPLIES: Record<ReplyAction, Record<string, string>> = {
  opt_out: {
    en: '{{tenant}}: You have been unsubscribed and will receive no more messages. Reply START to resubscribe.',
    es: '{{tenant}}: Se ha dado de baja y no recibirá más mensajes. Responda START para volver a suscribirse.',
    pt: '{{tenant}}: Sua inscrição foi cancelada e você não receberá mais mensagens. Responda START para voltar a receber.',
    fr: '{{tenant}} : Vous êtes désabonné et ne recevrez plus de messages. Répondez START pour vous réabonner.',
    de: '{{tenant}}: Sie wurden abgemeldet und erhalten keine Nachrichten mehr. Antworten Sie START, um sich wieder anzumelden.',
    it: "{{tenant}}: L'iscrizione è stata annullata e non riceverai più messaggi. Rispondi START per iscriverti di nuovo.",
    nl: '{{tenant}}: U bent afgemeld en ontvangt geen berichten meer. Antwoord START om u opnieuw aan te melden.',
    hi: '{{tenant}}: आपकी सदस्यता रद्द कर दी गई है, अब आपको कोई संदेश नहीं मिलेगा। फिर से शुरू करने के लिए START भेजें।',
  },
  opt_in: {
    en: '{{tenant}}: You have been resubscribed and will receive messages again. Reply STOP to unsubscribe.',
  },
  help: {
    en: '{{tenant}}: Msg&data rates may apply. Reply STOP to unsubscribe, START to resubscribe.',
    es: '{{tenant}}: Pueden aplicarse tarifas de mensajes y datos. Responda STOP para darse de baja y START para volver a suscribirse.',
    pt: '{{tenant}}: Podem ser cobradas tarifas de mensagens e dados. Responda STOP para cancelar e START para voltar a receber.',
    fr: "{{tenant}} : Des frais de messagerie peuvent s'appliquer. Répondez STOP pour vous désabonner, START pour vous réabonner.",
    de: '{{tenant}}: Es können Gebühren für Nachrichten und Daten anfallen. Antworten Sie STOP zum Abmelden, START zum erneuten Anmelden.',
    it: "{{tenant}}: Potrebbero essere applicati costi per messaggi e dati. Rispondi STOP per annullare l'iscrizione, START per iscriverti di nuovo.",
    nl: '{{tenant}}: Er kunnen kosten voor berichten en data gelden. Antwoord STOP om af te melden, START om opnieuw aan te melden.',
    hi: '{{tenant}}: संदेश और डेटा शुल्क लग सकते हैं। सदस्यता रद्द करने के लिए STOP, फिर से शुरू करने के लिए START भेजें।',
  },
};

/** The default confirmation for an action in a language, English when the language has none. */
export function defaultKeywordReply(action: KeywordAction, language?: string): string | undefined {
  if (action !== 'opt_out' && action !== 'opt_in' && action !== 'help') return undefined;
  const byLanguage = DEFAULT_REPLIES[action];
  const base = language?.toLowerCase().split(/[-_]/)[0];
  return (base && byLanguage[base]) || byLanguage.en;
}

/** A reply with the tenant's name in place of `{{tenant}}`. */
export function renderKeywordReply(reply: string, vars: { tenant: string }): string {
  return reply.replace(/\{\{\s*tenant\s*\}\}/g, vars.tenant);
}

/** Builds a table from rules; a later rule for the same phrase replaces an earlier one. */
export function keywordTable(rules: Iterable<KeywordRule>): KeywordTable {
  const byPhrase = new Map<string, KeywordRule>();
  for (const rule of rules) byPhrase.set(rule.phrase, rule);
  const intents = new Set<string>();
  for (const rule of byPhrase.values()) if (rule.action === 'intent' && rule.intent) intents.add(rule.intent);
  return { rules: byPhrase, intents };
}

function defaultRules(): KeywordRule[] {
  const rules: KeywordRule[] = [];
  const add = (entries: Entry[], action: KeywordAction, extra: Partial<KeywordRule> = {}) => {
    for (const [phrase, language] of entries) {
      const normal = normalizeKeyword(phrase);
      // First listing wins: a word shared by two languages keeps the first one's replies.
      if (!rules.some((r) => r.phrase === normal)) rules.push({ phrase: normal, action, language, source: 'default', ...extra });
    }
  };
  add(OPT_OUT, 'opt_out');
  add(HELP, 'help');
  add(OPT_IN.filter(([p]) => p !== 'yes'), 'opt_in');
  add(OPT_IN.filter(([p]) => p === 'yes'), 'opt_in', { after_opt_out: true });
  for (const [intent, entries] of Object.entries(DEFAULT_INTENTS)) add(entries, 'intent', { intent });
  return rules;
}

let defaults: KeywordTable | undefined;

/** The table every tenant starts from. Shared and never mutated. */
export function defaultKeywordTable(): KeywordTable {
  defaults ??= keywordTable(defaultRules());
  return defaults;
}

/** The defaults with a tenant's rules laid over them, phrase by phrase. */
export function withTenantRules(base: KeywordTable, tenantRules: Iterable<KeywordRule>): KeywordTable {
  return keywordTable([...base.rules.values(), ...tenantRules]);
}

function toMatch(rule: KeywordRule | undefined, via: KeywordMatch['via']): KeywordMatch | null {
  if (!rule || rule.action === 'none') return null;
  const reply = rule.reply ?? defaultKeywordReply(rule.action, rule.language);
  return {
    action: rule.action,
    phrase: rule.phrase,
    via,
    ...(rule.intent ? { intent: rule.intent } : {}),
    ...(reply ? { reply } : {}),
    ...(rule.language ? { language: rule.language } : {}),
    ...(rule.after_opt_out ? { after_opt_out: true } : {}),
  };
}

const lookup = (text: string, table: KeywordTable) => (text.length > MAX_KEYWORD_MESSAGE ? undefined : table.rules.get(normalizeKeyword(text)));

/**
 * What an inbound message means as a keyword, or null when it is an ordinary message. A button
 * payload is read first (an intent name, or a phrase), then the text. Never throws.
 */
export function matchKeyword(text: string | null, payload: string | null, table: KeywordTable): KeywordMatch | null {
  if (payload) {
    const name = payload.trim().toLowerCase();
    if (table.intents.has(name)) return { action: 'intent', phrase: normalizeKeyword(name), intent: name, via: 'payload' };
    const match = toMatch(lookup(payload, table), 'payload');
    if (match) return match;
  }
  if (text) return toMatch(lookup(text, table), 'text');
  return null;
}
