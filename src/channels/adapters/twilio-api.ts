import { accountIdFromPath, apiBase, basicAuth, callProvider, failure, failureFromStatus, isCallFailure, isHttpUrl, retryAfterMs, type CallFailure, type ProviderResponse } from '../http.js';
import type { AccountProblem, InboundAdapter, InboundItem, InboundRequest, InboundStatus, ProviderAccount, ProviderKind, RouteKeys, SendContext, SendResult } from '../types.js';
import { formPairs, verifyTwilioRequest } from './twilio-signature.js';

/**
 * What the Twilio adapters (SMS, WhatsApp, voice) share: the account's credentials, the REST call
 * that creates a Message or a Call (`POST /2010-04-01/Accounts/{AccountSid}/{Messages|Calls}.json`,
 * form-encoded, Basic auth with the Account SID and Auth Token) and what Twilio's error codes mean,
 * and the webhook plumbing: form bodies, per-account URLs, X-Twilio-Signature.
 *
 * SMS and WhatsApp are both the Messages API, so this module also holds what they share of it:
 * the sender (`From` or `MessagingServiceSid`), the StatusCallback URL, media, and the webhooks
 * for incoming messages and status callbacks.
 *
 * Twilio's Messages API takes no idempotency key: `I-Twilio-Idempotency-Token` is a header Twilio
 * puts on the webhooks it sends, so a retried webhook can be recognised, and nothing in the
 * Messages API documentation says it is honoured on a create. A send that timed out after
 * Twilio accepted it can therefore go out twice if retried; the dispatcher's outbox is the only
 * guard.
 */

const TWILIO_API = 'https://api.twilio.com';

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
export const E164 = /^\+[1-9]\d{6,14}$/;
/** An alphanumeric sender ID: up to 11 letters, digits and spaces, at least one letter. */
const ALPHANUMERIC_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;

// ---------------------------------------------------------------------------------------------
// Accounts

/** Problems with the credentials and config every Twilio account has. */
export function checkTwilioAccount(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (!nonEmpty(credentials.account_sid) || !/^AC[0-9a-f]{32}$/.test(credentials.account_sid)) {
    problems.push({ field: 'credentials.account_sid', message: "required: the Account SID, 'AC' followed by 32 hex digits (Twilio Console, Account Info)" });
  }
  if (!nonEmpty(credentials.auth_token) || !/^[0-9a-f]{32}$/.test(credentials.auth_token)) {
    problems.push({ field: 'credentials.auth_token', message: 'required: the Auth Token, 32 hex digits; it authenticates API calls and signs webhooks' });
  }
  if (config.base_url !== undefined && !isHttpUrl(config.base_url)) problems.push({ field: 'config.base_url', message: 'must be an http(s) URL' });
  if (config.rate_per_second !== undefined && !(typeof config.rate_per_second === 'number' && config.rate_per_second > 0)) {
    problems.push({ field: 'config.rate_per_second', message: 'must be a positive number' });
  }
  return problems;
}

/** `From` or `MessagingServiceSid`: at least one, each well-formed. */
export function checkMessagingSender(config: Record<string, unknown>, allowAlphanumeric: boolean): AccountProblem[] {
  const problems: AccountProblem[] = [];
  const { from, messaging_service_sid: service } = config;
  if (from === undefined && service === undefined) {
    problems.push({ field: 'config.from', message: "required unless config.messaging_service_sid is set: the sending number in E.164, e.g. '+14155550100'" });
  }
  if (from !== undefined && !(typeof from === 'string' && (E164.test(from) || (allowAlphanumeric && ALPHANUMERIC_SENDER.test(from))))) {
    problems.push({ field: 'config.from', message: allowAlphanumeric ? 'must be an E.164 number or an alphanumeric sender ID of up to 11 characters' : "must be an E.164 number, e.g. '+14155550100'" });
  }
  if (service !== undefined && !(typeof service === 'string' && /^MG[0-9a-f]{32}$/.test(service))) {
    problems.push({ field: 'config.messaging_service_sid', message: "must be a Messaging Service SID, 'MG' followed by 32 hex digits" });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The REST call and what Twilio's answers mean

/**
 * Twilio error codes (https://www.twilio.com/docs/api/errors) by what they mean for the message.
 * Codes not listed fall back to the HTTP status.
 */
const INVALID_RECIPIENT = new Set([
  21211, // Invalid 'To' phone number
  21217, // Phone number does not appear to be valid (calls)
  21401, // Invalid phone number
  21407, // This phone number type does not support SMS or MMS
  21612, // The 'To' phone number is not currently reachable via SMS
  21614, // 'To' number is not a valid mobile number
  63003, // Channel could not find the To address (not a WhatsApp user)
  63024, // Invalid message recipient
]);
const CONFIG = new Set([
  20404, // The account (or resource) does not exist
  21210, // 'From' phone number not verified
  21212, // Invalid 'From' phone number
  21215, // Geographic permission not enabled for this call
  21219, // 'To' phone number not verified (trial account)
  21408, // Permission to send an SMS has not been enabled for the region
  21603, // A 'From' phone number is required
  21606, // The 'From' phone number is not a valid, message-capable Twilio number for this destination
  21608, // The number is unverified: trial accounts can only send to verified numbers
  21609, // Invalid StatusCallback URL
  21659, // 'From' is not a Twilio phone number or short code country mismatch
  21701, // The Messaging Service does not exist
  21703, // The Messaging Service has no phone numbers in its sender pool
  21910, // Invalid From and To pair: not the same channel
  63007, // Twilio could not find a Channel with the From address (WhatsApp sender)
]);
const REJECTED = new Set([
  21602, // Message body is required
  21617, // The concatenated message body exceeds the 1600 character limit
  21620, // Invalid media URL(s)
  21655, // The ContentSid is invalid
  21656, // The ContentVariables parameter is invalid
  32018, // TwiML size exceeded the maximum of 4000 characters
  63016, // WhatsApp: freeform message outside the 24-hour window; use a template
  63027, // Template does not exist for this language and locale
  63049, // Meta chose not to deliver this WhatsApp marketing message
]);
const RATE_LIMITED = new Set([
  20429, // Too Many Requests
  21611, // This 'From' number has exceeded its queue of outgoing messages
  63017, // The account's combined rate exceeded 2000 messages per second
  63018, // Rate limit exceeded for the WhatsApp sender
]);

interface TwilioErrorBody {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

/** What a non-2xx answer means: Twilio's JSON error `{code, message, more_info, status}` first. */
export function twilioFailure(res: ProviderResponse): CallFailure {
  const body = (res.json && typeof res.json === 'object' ? res.json : {}) as TwilioErrorBody;
  const code = typeof body.code === 'number' ? body.code : undefined;
  const message = `${body.message ?? (res.text.slice(0, 200) || 'no error message')}${code ? ` (Twilio ${code})` : ''}`;
  const providerCode = code !== undefined ? String(code) : String(res.status);
  const opts = { provider_code: providerCode };
  if (res.status === 429 || (code !== undefined && RATE_LIMITED.has(code))) {
    return failure('rate_limited', message, { ...opts, retry_after_ms: retryAfterMs(res.headers) ?? 1000 });
  }
  if (res.status >= 500) return failure('server', `HTTP ${res.status}: ${message}`, opts);
  if (code === 20003 || res.status === 401) return failure('auth', message, opts);
  if (code === 21610) return failure('unsubscribed', message, opts);
  // The recipient blocked the sender on the channel (WhatsApp).
  if (code === 63014) return failure('blocked', message, opts);
  if (code !== undefined && INVALID_RECIPIENT.has(code)) return failure('invalid_recipient', message, opts);
  if (code !== undefined && CONFIG.has(code)) return failure('config', message, opts);
  if (code !== undefined && REJECTED.has(code)) return failure('rejected', message, opts);
  return failureFromStatus(res, message, providerCode);
}

/**
 * Creates a Message or a Call. A 2xx answer carries the new resource; its `sid` is the provider
 * id, and `price` (negative, Twilio's charge, when already known) is the cost.
 */
export async function createTwilioResource(ctx: SendContext, resource: 'Messages' | 'Calls', form: URLSearchParams): Promise<SendResult> {
  const { account_sid: sid, auth_token: token } = ctx.account.credentials;
  if (!sid || !token) return failure('config', 'the account has no account_sid or auth_token');
  const url = `${apiBase(ctx.account.config, TWILIO_API)}/2010-04-01/Accounts/${encodeURIComponent(sid)}/${resource}.json`;
  const res = await callProvider(ctx, url, {
    method: 'POST',
    headers: { authorization: basicAuth(sid, token), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
  });
  if (isCallFailure(res)) return res;
  if (res.status < 200 || res.status >= 300) return twilioFailure(res);
  const created = (res.json && typeof res.json === 'object' ? res.json : {}) as { sid?: unknown; price?: unknown; price_unit?: unknown };
  if (typeof created.sid !== 'string' || !created.sid) return failure('server', `HTTP ${res.status} without a resource sid`);
  const result: SendResult = { ok: true, provider_message_id: created.sid };
  const price = typeof created.price === 'string' || typeof created.price === 'number' ? Number(created.price) : NaN;
  if (Number.isFinite(price)) {
    result.cost = Math.abs(price);
    if (typeof created.price_unit === 'string') result.currency = created.price_unit;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// What a message carries (SMS and WhatsApp)

/**
 * The StatusCallback for a message: the shared `/webhooks/<kind>` URL, routed by the sending
 * number. A Messaging Service picks the number from its pool, so its callbacks go to the
 * account's own URL instead.
 */
export function messageStatusCallback(ctx: SendContext, kind: ProviderKind): string | undefined {
  if (!ctx.publicUrl) return undefined;
  const base = `${ctx.publicUrl}/webhooks/${kind}`;
  return typeof ctx.account.config.from === 'string' ? base : `${base}/${encodeURIComponent(ctx.account.id)}`;
}

/** `From`, else `MessagingServiceSid`, with the channel prefix ("whatsapp:") on a number. */
export function setSender(form: URLSearchParams, config: Record<string, unknown>, prefix = ''): void {
  if (typeof config.from === 'string' && config.from) form.set('From', prefix + config.from.replace(/^whatsapp:/, ''));
  else if (typeof config.messaging_service_sid === 'string') form.set('MessagingServiceSid', config.messaging_service_sid);
}

/** `options.media`: one URL or a list of them. */
export function mediaUrls(options: Record<string, unknown> | undefined): string[] {
  const media = options?.media;
  if (typeof media === 'string') return [media];
  if (Array.isArray(media)) return media.filter((m): m is string => typeof m === 'string' && m !== '');
  return [];
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/** The form fields of a request, the last value of a repeated name winning. */
export function formOf(req: InboundRequest): Record<string, string> {
  if (req.form) return req.form;
  return Object.fromEntries(formPairs(req.rawBody));
}


/** Twilio signs every webhook with the account's Auth Token (twilio-signature.ts). */
export function verifyTwilioWebhook(req: InboundRequest, account: ProviderAccount): boolean {
  return verifyTwilioRequest(req, account.credentials.auth_token);
}

// ---------------------------------------------------------------------------------------------
// Messaging webhooks: incoming messages and status callbacks (SMS and WhatsApp)

/** A `whatsapp:` (or other channel) address as the bare number. */
function stripChannel(address: string | undefined): string {
  return (address ?? '').replace(/^[a-z]+:/, '');
}

function isIncoming(form: Record<string, string>): boolean {
  return (form.SmsStatus ?? form.MessageStatus) === 'received';
}

/** Error codes in a failed/undelivered callback that say the address is dead or refuses. */
const DEAD_ADDRESS = new Set(['21211', '21614', '30005', '30006', '63003', '63024']);

const STATUSES: Readonly<Record<string, InboundStatus['status'] | undefined>> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  undelivered: 'undeliverable',
  failed: 'failed',
};

function statusItem(form: Record<string, string>, at: Date): InboundStatus | null {
  const id = form.MessageSid ?? form.SmsSid;
  const raw = form.MessageStatus ?? form.SmsStatus;
  const status = raw ? STATUSES[raw] : undefined;
  // queued, accepted, scheduled, sending, canceled: nothing a journey waits for.
  if (!id || !status) return null;
  const item: InboundStatus = { type: 'status', provider_message_id: id, status, at };
  const code = form.ErrorCode;
  if ((status === 'failed' || status === 'undeliverable') && code) {
    item.provider_code = code;
    item.error = form.ErrorMessage ?? `Twilio error ${code}`;
    // Opted out (STOP), or blocked the sender on WhatsApp.
    if (code === '21610' || code === '63014') item.suppress = 'unsubscribe';
    else if (DEAD_ADDRESS.has(code)) {
      // However Twilio labelled it, the number cannot receive: the message is undeliverable.
      item.status = 'undeliverable';
      item.suppress = 'bounce';
    }
  }
  return item;
}

function incomingItem(form: Record<string, string>, at: Date): InboundItem | null {
  const id = form.MessageSid ?? form.SmsMessageSid ?? form.SmsSid;
  if (!id || !form.From) return null;
  const media: { url: string; content_type?: string }[] = [];
  const count = Math.min(Number(form.NumMedia ?? 0) || 0, 10);
  for (let i = 0; i < count; i++) {
    const url = form[`MediaUrl${i}`];
    if (url) media.push(form[`MediaContentType${i}`] ? { url, content_type: form[`MediaContentType${i}`] } : { url });
  }
  return {
    type: 'message',
    channel: form.From.startsWith('whatsapp:') ? 'whatsapp' : 'sms',
    from: stripChannel(form.From),
    to: stripChannel(form.To),
    text: form.Body ? form.Body : null,
    // A WhatsApp quick reply: the button's id, as the template defined it.
    payload: form.ButtonPayload || null,
    provider_message_id: id,
    at,
    ...(form.ProfileName ? { profile_name: form.ProfileName } : {}),
    ...(media.length ? { media } : {}),
    ...(form.OriginalRepliedMessageSid ? { in_reply_to: form.OriginalRepliedMessageSid } : {}),
  };
}

/**
 * The webhook side of a Twilio Messaging account (SMS and WhatsApp alike). Incoming messages and
 * status callbacks arrive at the same URL, `/webhooks/<kind>`: the number's "A message comes in"
 * webhook and the StatusCallback Rapport sets. They are told apart by `SmsStatus=received`, which
 * only an incoming message carries.
 */
export function messagingInbound(kind: ProviderKind): InboundAdapter {
  return {
    route(req: InboundRequest): RouteKeys | null {
      const accountId = accountIdFromPath(req.url, kind);
      if (accountId) return { account_id: accountId };
      const form = formOf(req);
      // An incoming message is addressed to our number; a status callback comes from it.
      const address = stripChannel(isIncoming(form) ? form.To : form.From);
      return address ? { address } : null;
    },
    verify: verifyTwilioWebhook,
    parse(req: InboundRequest): InboundItem[] {
      const form = formOf(req);
      const item = isIncoming(form) ? incomingItem(form, req.receivedAt) : statusItem(form, req.receivedAt);
      return item ? [item] : [];
    },
    // An empty <Response/>: no automatic reply; status callbacks ignore the body anyway.
    respond: () => ({ status: 200, contentType: 'text/xml', body: '<Response/>' }),
  };
}
