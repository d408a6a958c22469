import { Type, type Static } from 'typebox';
import type { FieldProblem } from './errors.js';
import { normalizeKeyword, type KeywordTable } from './keywords.js';

const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'local time of day, HH:MM (24-hour)' });

export const SendWindow = Type.Object(
  {
    days: Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), { minItems: 1, maxItems: 7, uniqueItems: true, description: 'ISO weekdays, 1 = Monday' }),
    start: LocalTime,
    end: LocalTime,
  },
  { additionalProperties: false, description: 'when sends may go out, in the recipient\'s time zone' },
);
export type SendWindow = Static<typeof SendWindow>;

const AllowedHours = Type.Object({ start: LocalTime, end: LocalTime }, { additionalProperties: false });

export const QuietHours = Type.Object(
  {
    sms: Type.Optional(AllowedHours),
    voice: Type.Optional(AllowedHours),
    whatsapp: Type.Optional(AllowedHours),
    email: Type.Optional(AllowedHours),
  },
  { additionalProperties: false, description: 'per channel, the hours sends are allowed in the recipient\'s zone; outside them sends are held' },
);
export type QuietHours = Static<typeof QuietHours>;

export const FrequencyCap = Type.Object(
  {
    channel: Type.Union([Type.Literal('sms'), Type.Literal('email'), Type.Literal('whatsapp'), Type.Literal('voice'), Type.Literal('any')]),
    limit: Type.Integer({ minimum: 1, maximum: 100000 }),
    period: Type.String({ pattern: '^[1-9][0-9]*(h|d|w)$', description: 'rolling window, e.g. "1d", "7d", "12h"' }),
  },
  { additionalProperties: false },
);
export type FrequencyCap = Static<typeof FrequencyCap>;

export const BrandVoice = Type.Object(
  {
    tone: Type.Optional(Type.String({ maxLength: 200 })),
    signature: Type.Optional(Type.String({ maxLength: 200 })),
    guidelines: Type.Optional(Type.String({ maxLength: 4000 })),
  },
  { additionalProperties: false },
);
export type BrandVoice = Static<typeof BrandVoice>;

export const WhatsappKeepAlive = Type.Object(
  {
    enabled: Type.Boolean({ description: 'send the keep-alive message to contacts whose WhatsApp window is about to close' }),
    message: Type.String({ minLength: 1, maxLength: 1000, description: 'the text sent (Liquid: {{ contact.first_name }}…); short and useful, as WhatsApp\'s policy asks' }),
    expiring_within_hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 23, description: 'send when the window closes within this many hours (default 18)' })),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'consent topic the message needs (default keep_alive; consent to all WhatsApp topics covers it)' })),
  },
  { additionalProperties: false, description: 'WhatsApp session maintenance: keep the 24-hour window open for contacts who use it' },
);
export type WhatsappKeepAlive = Static<typeof WhatsappKeepAlive>;

/** The longest opt-out footer a tenant may set: one line that still leaves room for the message. */
export const MAX_OPT_OUT_FOOTER = 120;

export const OptOutFooters = Type.Record(
  Type.String({ pattern: '^[a-z]{2,3}$' }),
  // One line, nothing around it: the footer is matched at the very end of a message.
  Type.String({ minLength: 1, maxLength: MAX_OPT_OUT_FOOTER, pattern: '^\\S(.*\\S)?$' }),
  {
    additionalProperties: false,
    maxProperties: 50,
    description:
      'the opt-out line ending marketing SMS and WhatsApp messages, by language code (en, es, pt…; pt serves pt-BR), e.g. {"en": "Reply STOP to opt out."}; each names one of the tenant\'s opt-out keywords in capitals. Languages left out get the built-in line.',
  },
);
export type OptOutFooters = Static<typeof OptOutFooters>;

export const TenantSettings = Type.Object(
  {
    default_country: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO country assumed for phone numbers without a + prefix' })),
    opt_out_action: Type.Optional(
      Type.Union([Type.Literal('exit'), Type.Literal('skip')], {
        description: 'when a contact opts out of a channel: "exit" (default) ends their enrollments in journeys that send on it; "skip" lets them go on with sends on that channel skipped',
      }),
    ),
    spread_minutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 240, description: 'sends held for quiet hours or a send window go out spread over this many minutes (default 10)' })),
    frequency_cap_action: Type.Optional(
      Type.Union([Type.Literal('defer'), Type.Literal('block')], { description: 'a send over a frequency cap waits until the cap allows it ("defer", default) or is skipped ("block")' }),
    ),
    whatsapp_keep_alive: Type.Optional(WhatsappKeepAlive),
    whatsapp_template_interval_minutes: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1440,
        description: 'a contact gets at most one WhatsApp template message per this many minutes (default 60; 0 for no limit); urgent sends (priority 4 and 5) pass',
      }),
    ),
    postal_address: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, description: 'the sender\'s physical postal address, printed in the footer of marketing e-mail (CAN-SPAM); line breaks are kept' }),
    ),
    email_open_tracking: Type.Optional(Type.Boolean({ description: 'add the open-tracking pixel to e-mail (default true)' })),
    email_click_tracking: Type.Optional(Type.Boolean({ description: 'send e-mail links through Rapport\'s click tracker (default true)' })),
    synthesis_review: Type.Optional(
      Type.Boolean({ description: 'synthesized messages wait for a person to approve, edit or reject them before they are sent (default false; docs/synthesis.md)' }),
    ),
    opt_out_footer: Type.Optional(OptOutFooters),
    pulse_min_engagement: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: "the Relational Pulse targets contacts whose engagement score is at least this, unless a pulse sets its own min_engagement (default 0; docs/campaigns.md)" }),
    ),
    unsubscribe_mailto: Type.Optional(
      Type.String({
        maxLength: 320,
        pattern: '^(mailto:)?[^\\s@<>(),;:"]+@[^\\s@<>(),;:"]+\\.[^\\s@<>(),;:".?]{2,}(\\?[^\\s<>]*)?$',
        description: 'an address offered in List-Unsubscribe beside the one-click URL, e.g. "mailto:unsub@acme.example?subject=unsubscribe" ("mailto:" may be left out)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type TenantSettings = Static<typeof TenantSettings>;

export const DEFAULT_SEND_WINDOW: SendWindow = { days: [1, 2, 3, 4, 5, 6, 7], start: '09:00', end: '20:00' };
export const DEFAULT_QUIET_HOURS: QuietHours = { sms: { start: '08:00', end: '21:00' }, voice: { start: '08:00', end: '21:00' } };

export interface Tenant {
  id: string;
  name: string;
  time_zone: string;
  send_window: SendWindow;
  quiet_hours: QuietHours;
  frequency_caps: FrequencyCap[];
  brand_voice: BrandVoice;
  settings: TenantSettings;
  created_at: Date;
  updated_at: Date;
}

const APOSTROPHE = "'\u2018\u2019\u02bc`\u00b4";
const WORDS = new RegExp(`[^\\p{L}\\p{M}\\p{N}${APOSTROPHE}]+`, 'u');

/** A word written as a keyword is shown to be typed: in capitals, or in a script without case. */
function written(word: string): boolean {
  return /\p{L}/u.test(word) && word === word.toUpperCase();
}

/**
 * The opt-out keywords a footer tells the contact to send: runs of words in capitals (or in a
 * script without case) that the tenant's keyword table treats as opt-out, e.g. STOP in "Reply STOP
 * to opt out." Lower-case words do not count: "Click to opt out" or "offers end soon" hold opt-out
 * words but tell no one what to send.
 */
export function footerKeywords(footer: string, keywords: KeywordTable): string[] {
  const words = footer.split(WORDS).filter(Boolean);
  const found: string[] = [];
  for (let i = 0; i < words.length; i++) {
    for (let j = i; j < words.length && written(words[j]!); j++) {
      const phrase = normalizeKeyword(words.slice(i, j + 1).join(' '));
      if (keywords.rules.get(phrase)?.action === 'opt_out' && !found.includes(phrase)) found.push(phrase);
    }
  }
  return found;
}

/** Footers that name none of the tenant's opt-out keywords, each a problem naming `settings.opt_out_footer.<lang>`. */
export function optOutFooterProblems(footers: OptOutFooters | undefined, keywords: KeywordTable): FieldProblem[] {
  if (!footers) return [];
  const example = keywords.rules.get('stop')?.action === 'opt_out' ? 'stop' : [...keywords.rules.values()].find((r) => r.action === 'opt_out')?.phrase;
  return Object.entries(footers)
    .filter(([, text]) => !footerKeywords(text, keywords).length)
    .map(([language]) => ({
      field: `settings.opt_out_footer.${language}`,
      message: `must name one of the tenant's opt-out keywords in capitals, as a contact would send it${example ? ` (e.g. "Reply ${example.toUpperCase()} to opt out.")` : ''}`,
    }));
}
