import { failure } from '../http.js';
import type { ChannelAdapter, OutgoingMessage, SendContext, SendResult } from '../types.js';
import { checkMessagingSender, checkTwilioAccount, createTwilioResource, E164, mediaUrls, messageStatusCallback, messagingInbound, setSender } from './twilio-api.js';

/**
 * Twilio Programmable Messaging, SMS and MMS
 * (https://www.twilio.com/docs/messaging/api/message-resource): one form-encoded
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` per message, Basic auth with the
 * Account SID and Auth Token, sent from the account's number (`From`) or its Messaging Service
 * (`MessagingServiceSid`). Twilio answers 201 with the Message resource, status `queued` (or
 * `accepted` through a Messaging Service), and reports progress to `StatusCallback`.
 *
 * Incoming messages and status callbacks both arrive at `/webhooks/twilio`. What SMS shares with
 * WhatsApp and voice (the REST call, error codes, credentials, webhooks) is in twilio-api.ts.
 */

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  if (!msg.to || !E164.test(msg.to)) return failure('invalid_recipient', `not an E.164 phone number: ${msg.to ?? '(none)'}`);
  const media = mediaUrls(msg.options);
  if (!msg.body && !media.length) return failure('rejected', 'an SMS needs a body or media');
  const form = new URLSearchParams();
  form.set('To', msg.to);
  setSender(form, ctx.account.config);
  if (msg.body) form.set('Body', msg.body);
  for (const url of media) form.append('MediaUrl', url);
  const callback = messageStatusCallback(ctx, 'twilio');
  if (callback) form.set('StatusCallback', callback);
  return createTwilioResource(ctx, 'Messages', form);
}

export const twilioSmsAdapter: ChannelAdapter = {
  kind: 'twilio',
  channels: ['sms'],
  // A US long code's throughput; short codes, toll-free numbers and Messaging Services set config.rate_per_second.
  defaultRatePerSecond: 1,
  check: (credentials, config) => [...checkTwilioAccount(credentials, config), ...checkMessagingSender(config, true)],
  send,
  inbound: messagingInbound('twilio'),
};
