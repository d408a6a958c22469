import { Type } from 'typebox';
import { KEYWORD_ACTIONS } from '../../core/keywords.js';

const Action = Type.Enum(KEYWORD_ACTIONS, {
  description: "opt_out, opt_in and help act on consent and answer; intent tags the message with a named intent; none switches a default phrase off",
});

export const KeywordParams = Type.Object(
  { phrase: Type.String({ minLength: 1, maxLength: 100, description: 'the phrase, URL-encoded, at most 100 characters; stored lower case without accents, apostrophes or surrounding punctuation' }) },
  { additionalProperties: false },
);

// Null first: with coerceTypes, ajv would turn null into "" when the string branch comes first.
const nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Optional(Type.Union([Type.Null(), s]));

export const KeywordInput = Type.Object(
  {
    action: Action,
    intent: nullable(Type.String({ minLength: 1, maxLength: 64, description: "for action 'intent': its name, e.g. moving_now" })),
    reply: nullable(Type.String({ minLength: 1, maxLength: 640, description: 'what to answer; {{tenant}} is your tenant name. Absent: the default for the action and language' })),
    language: nullable(Type.String({ minLength: 2, maxLength: 12, description: 'en, es, pt_BR…: picks the default reply' })),
  },
  { additionalProperties: false },
);

export const Keyword = Type.Object({
  phrase: Type.String(),
  action: Action,
  intent: Type.Union([Type.String(), Type.Null()]),
  reply: Type.Union([Type.String(), Type.Null()], { description: 'what is sent back, with {{tenant}} for your tenant name; null for an intent without one' }),
  language: Type.Union([Type.String(), Type.Null()]),
  after_opt_out: Type.Boolean({ description: 'true for YES: an opt-in only from a contact who opted out, an ordinary reply from anyone else' }),
  source: Type.Union([Type.Literal('default'), Type.Literal('tenant')]),
});
