import { failure } from '../http.js';
import type { AccountProblem, ChannelAdapter, OutgoingMessage, SendContext, SendResult } from '../types.js';
import {
  checkMessagingSender,
  checkTwilioAccount,
  createTwilioResource,
  E164,
  mediaUrls,
  messageStatusCallback,
  messagingInbound,
  setSender,
} from './twilio-api.js';

/**
 * WhatsApp through Twilio (https://www.twilio.com/docs/whatsapp/api): the same Messages API as
 * SMS, with `whatsapp:`-prefixed To and From.
 *
 * - Inside the 24-hour customer service window a message is free text (`Body`, `MediaUrl`).
 * - Outside it only an approved template may be sent. On Twilio a template is a Content API item
 *   (`HX…` SID); the message carries `ContentSid` and `ContentVariables`, a JSON object of the
 *   numbered variables, {"1": "Ada", "2": "Tuesday"}. `whatsapp_template.name` is the SID itself
 *   when it starts with "HX", otherwise a key of `config.content_sids` ("name:language" first, then
 *   "name"). Quick-reply ids and URL suffixes of a Content template are ordinary numbered
 *   variables there, so they travel in `parameters`; `buttons` has no Twilio counterpart.
 * - A free-text message outside the window fails with 63016, synchronously or, more often, in
 *   the status callback: the message is refused for good, a template is needed.
 *
 * Webhooks are the SMS adapter's (messagingInbound in twilio-api.ts): incoming messages (with
 * ProfileName, ButtonPayload/ButtonText for quick replies, OriginalRepliedMessageSid for a reply
 * in context) and status callbacks, to `/webhooks/twilio_whatsapp`.
 */

const CONTENT_SID = /^HX[0-9a-f]{32}$/;

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems = [...checkTwilioAccount(credentials, config), ...checkMessagingSender(config, false)];
  const sids = config.content_sids;
  if (sids !== undefined) {
    const entries = sids && typeof sids === 'object' && !Array.isArray(sids) ? Object.entries(sids) : null;
    const bad = entries ? entries.filter(([, v]) => typeof v !== 'string' || !CONTENT_SID.test(v)).map(([k]) => k) : null;
    if (!entries || bad!.length) {
      problems.push({ field: 'config.content_sids', message: `must map template names to Content SIDs ('HX' followed by 32 hex digits)${bad?.length ? `; not one: ${bad.join(', ')}` : ''}` });
    }
  }
  return problems;
}

/** The Content SID for a template name, or null when the account does not know it. */
function contentSid(template: NonNullable<OutgoingMessage['whatsapp_template']>, config: Record<string, unknown>): string | null {
  if (template.name.startsWith('HX')) return template.name;
  const sids = (config.content_sids ?? {}) as Record<string, unknown>;
  const sid = sids[`${template.name}:${template.language}`] ?? sids[template.name];
  return typeof sid === 'string' ? sid : null;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  if (!msg.to || !E164.test(msg.to)) return failure('invalid_recipient', `not an E.164 phone number: ${msg.to ?? '(none)'}`);
  const form = new URLSearchParams();
  form.set('To', `whatsapp:${msg.to}`);
  setSender(form, ctx.account.config, 'whatsapp:');
  const template = msg.whatsapp_template;
  if (template) {
    const sid = contentSid(template, ctx.account.config);
    // Another provider of the channel (Meta's API) may know the template by name.
    if (!sid) return failure('config', `no Content SID for template '${template.name}' (${template.language}): add it to config.content_sids`);
    form.set('ContentSid', sid);
    if (template.parameters.length) form.set('ContentVariables', JSON.stringify(Object.fromEntries(template.parameters.map((p, i) => [String(i + 1), p]))));
  } else {
    const media = mediaUrls(msg.options);
    if (!msg.body && !media.length) return failure('rejected', 'a WhatsApp session message needs a body, media or a template');
    if (msg.body) form.set('Body', msg.body);
    for (const url of media) form.append('MediaUrl', url);
  }
  const callback = messageStatusCallback(ctx, 'twilio_whatsapp');
  if (callback) form.set('StatusCallback', callback);
  return createTwilioResource(ctx, 'Messages', form);
}

export const twilioWhatsappAdapter: ChannelAdapter = {
  kind: 'twilio_whatsapp',
  channels: ['whatsapp'],
  // Twilio's default throughput for a WhatsApp sender.
  defaultRatePerSecond: 80,
  check,
  send,
  inbound: messagingInbound('twilio_whatsapp'),
};
