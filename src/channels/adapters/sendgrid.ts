import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { accountIdFromPath, apiBase, bodyJson, callProvider, failure, failureFromStatus, isCallFailure, type ProviderResponse } from '../http.js';
import { isEmailAddress, parseMailbox, safeHeaders } from '../email-compose.js';
import type { AccountProblem, ChannelAdapter, InboundAdapter, InboundItem, InboundRequest, InboundStatus, OutgoingMessage, ProviderAccount, SendContext, SendResult } from '../types.js';

/**
 * Twilio SendGrid, v3 Mail Send and the signed Event Webhook.
 *
 *   credentials  api_key              `SG.…`, needs the Mail Send permission
 *                webhook_public_key   the Signed Event Webhook verification key, as SendGrid shows it
 *                                     (base64 DER SubjectPublicKeyInfo of an ECDSA P-256 key)
 *   config       from                 `addr@host` or `Name <addr@host>`, a verified Sender Identity
 *                reply_to             optional
 *                provider_tracking    default false: SendGrid's own open and click tracking is
 *                                     switched off per message, because Rapport tracks (a second
 *                                     rewrite would also wrap the unsubscribe link)
 *                base_url             default https://api.sendgrid.com (https://api.eu.sendgrid.com for EU subusers)
 *
 * Sending: POST /v3/mail/send answers 202 with an empty body and the message's id in X-Message-Id;
 * that is the provider_message_id. Rapport's own id rides along in custom_args.rapport_message_id,
 * which SendGrid echoes as a top-level field of every event.
 *
 * Events: POST <public url>/webhooks/sendgrid/<account id>, a JSON array of events signed with
 * ECDSA-SHA256 over `timestamp + raw body` (X-Twilio-Email-Event-Webhook-Timestamp / -Signature,
 * the signature base64 DER). sg_message_id is `<X-Message-Id>.<filter suffix>`: the part before the
 * first '.' is the id send() returned.
 */

const API = 'https://api.sendgrid.com';
const SIGNATURE = 'x-twilio-email-event-webhook-signature';
const TIMESTAMP = 'x-twilio-email-event-webhook-timestamp';
/**
 * SendGrid documents no replay window and retries failed posts for up to 24 hours, and status
 * events are idempotent on Rapport's side; a signed request older than this is still refused.
 */
const MAX_EVENT_AGE_MS = 72 * 3600_000;
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

interface SendgridError {
  message?: string;
  field?: string | null;
  help?: string | null;
}

function errorsOf(res: ProviderResponse): SendgridError[] {
  const errors = (res.json as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) ? (errors as SendgridError[]) : [];
}

/** A SendGrid answer other than 202, classified. */
function sendgridFailure(res: ProviderResponse): Extract<SendResult, { ok: false }> {
  const errors = errorsOf(res);
  const text = errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; ') || res.text || 'no body';
  if (res.status === 429) {
    const f = failureFromStatus(res, text);
    // SendGrid gives the end of the window as a Unix time (X-RateLimit-Reset), not a Retry-After.
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    if (!res.headers.get('retry-after') && Number.isFinite(reset) && reset > 0) f.retry_after_ms = Math.min(Math.max(0, reset * 1000 - Date.now()), 3600_000);
    return f;
  }
  if (res.status === 400 && errors.some((e) => /^personalizations\.\d+\.(to|cc|bcc)\.\d+\.email$/.test(e.field ?? ''))) {
    return failure('invalid_recipient', `HTTP 400: ${text}`, { provider_code: '400' });
  }
  if ((res.status === 400 || res.status === 403) && errors.some((e) => e.field === 'from' || e.field === 'from.email')) {
    // An unverified or malformed sender is the account's problem; another provider may do.
    return failure('config', `HTTP ${res.status}: ${text}`, { provider_code: String(res.status) });
  }
  return failureFromStatus(res, text);
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (!credentials.api_key) problems.push({ field: 'credentials.api_key', message: 'required: a SendGrid API key with Mail Send access' });
  else if (!credentials.api_key.startsWith('SG.')) problems.push({ field: 'credentials.api_key', message: 'SendGrid API keys start with "SG."' });
  if (credentials.webhook_public_key && !publicKey(credentials.webhook_public_key)) {
    problems.push({ field: 'credentials.webhook_public_key', message: 'must be the base64 ECDSA verification key from Settings > Mail Settings > Signed Event Webhook' });
  }
  if (typeof config.from !== 'string' || !parseMailbox(config.from)) problems.push({ field: 'config.from', message: 'required: "addr@example.com" or "Name <addr@example.com>"' });
  if (config.reply_to !== undefined && (typeof config.reply_to !== 'string' || !parseMailbox(config.reply_to))) {
    problems.push({ field: 'config.reply_to', message: 'must be an e-mail address' });
  }
  if (config.provider_tracking !== undefined && typeof config.provider_tracking !== 'boolean') {
    problems.push({ field: 'config.provider_tracking', message: 'must be true or false' });
  }
  return problems;
}

function mailbox(value: string): { email: string; name?: string } {
  const m = parseMailbox(value)!;
  return m.name ? { email: m.email, name: m.name } : { email: m.email };
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { config, credentials } = ctx.account;
  if (!msg.to || !isEmailAddress(msg.to)) return failure('invalid_recipient', `not an e-mail address: ${JSON.stringify(msg.to)}`);
  if (typeof config.from !== 'string' || !parseMailbox(config.from)) return failure('config', 'account has no valid config.from');
  const content: { type: string; value: string }[] = [];
  // SendGrid requires text/plain first, then text/html, and refuses empty values.
  if (msg.body) content.push({ type: 'text/plain', value: msg.body });
  if (msg.html) content.push({ type: 'text/html', value: msg.html });
  if (!content.length) return failure('rejected', 'the e-mail has neither a text nor an HTML part');
  const body = {
    personalizations: [{ to: [{ email: msg.to }] }],
    from: mailbox(config.from),
    ...(typeof config.reply_to === 'string' && parseMailbox(config.reply_to) ? { reply_to: mailbox(config.reply_to) } : {}),
    subject: msg.subject ?? '',
    content,
    headers: { ...safeHeaders(msg.headers), 'X-Rapport-Message-Id': msg.id },
    custom_args: { rapport_message_id: msg.id },
    ...(config.provider_tracking === true ? {} : { tracking_settings: { click_tracking: { enable: false, enable_text: false }, open_tracking: { enable: false } } }),
  };
  const res = await callProvider(ctx, `${apiBase(config, API)}/v3/mail/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credentials.api_key ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (isCallFailure(res)) return res;
  if (res.status !== 202 && res.status !== 200) return sendgridFailure(res);
  // Without the header (never seen, but not promised) Rapport's id still names the message in every event.
  return { ok: true, provider_message_id: res.headers.get('x-message-id') ?? msg.id };
}

// ---------------------------------------------------------------------------------------------
// Event Webhook

/** The account's verification key; accepts SendGrid's bare base64 DER and a PEM block. */
function publicKey(value: string): KeyObject | null {
  try {
    const key = value.includes('-----BEGIN')
      ? createPublicKey(value)
      : createPublicKey({ key: Buffer.from(value.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ec' ? key : null;
  } catch {
    return null;
  }
}

function route(req: InboundRequest): { account_id: string } | null {
  const id = accountIdFromPath(req.url, 'sendgrid');
  return id ? { account_id: id } : null;
}

function verify(req: InboundRequest, account: ProviderAccount): boolean {
  const signature = req.headers[SIGNATURE];
  const timestamp = req.headers[TIMESTAMP];
  const keyText = account.credentials.webhook_public_key;
  if (req.method !== 'POST' || !signature || !timestamp || !keyText || !/^\d{1,12}$/.test(timestamp)) return false;
  const age = req.receivedAt.getTime() - Number(timestamp) * 1000;
  if (age > MAX_EVENT_AGE_MS || age < -MAX_CLOCK_SKEW_MS) return false;
  const key = publicKey(keyText);
  if (!key) return false;
  try {
    return verifySignature('sha256', Buffer.concat([Buffer.from(timestamp), req.rawBody]), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

type SendgridEvent = Record<string, unknown> & { event?: unknown; sg_message_id?: unknown; timestamp?: unknown };

const DROPPED_SUPPRESS: Record<string, InboundStatus['suppress']> = {
  'bounced address': 'bounce',
  'spam reporting address': 'complaint',
  'unsubscribed address': 'unsubscribe',
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined;
}

/** One SendGrid event as a status, or null for the ones Rapport has no use for. */
function statusOf(e: SendgridEvent): InboundStatus | null {
  const sgId = str(e.sg_message_id);
  const event = str(e.event);
  if (!sgId || !event) return null;
  const ts = Number(e.timestamp);
  const base = {
    type: 'status' as const,
    provider_message_id: sgId.split('.')[0]!,
    at: Number.isFinite(ts) && ts > 0 ? new Date(ts * 1000) : new Date(),
  };
  const detail: Record<string, unknown> = { event, sg_event_id: str(e.sg_event_id) ?? null };
  const rapportId = str(e.rapport_message_id);
  if (rapportId) detail.rapport_message_id = rapportId;
  const reason = str(e.reason) ?? str(e.response);
  const code = str(e.status);
  const failed = (status: InboundStatus['status'], suppress?: InboundStatus['suppress']): InboundStatus => ({
    ...base,
    status,
    ...(reason ? { error: reason } : {}),
    ...(code ? { provider_code: code } : {}),
    ...(suppress ? { suppress } : {}),
    detail: { ...detail, ...(str(e.type) ? { type: e.type } : {}), ...(str(e.bounce_classification) ? { bounce_classification: e.bounce_classification } : {}) },
  });
  switch (event) {
    case 'processed':
      return { ...base, status: 'sent', detail };
    case 'delivered':
      return { ...base, status: 'delivered', detail };
    case 'open':
      return { ...base, status: 'opened', detail: { ...detail, ...(e.sg_machine_open === true ? { machine_open: true } : {}) } };
    case 'click':
      return { ...base, status: 'clicked', detail: { ...detail, url: str(e.url) ?? null } };
    case 'bounce':
      // "blocked" is the receiving server refusing for now (reputation, content, a full mailbox): not a dead address.
      return e.type === 'blocked' ? failed('failed') : failed('bounced', 'bounce');
    case 'dropped':
      return failed('failed', DROPPED_SUPPRESS[(reason ?? '').toLowerCase()]);
    case 'spamreport':
      return { ...failed('failed', 'complaint'), error: 'marked as spam by the recipient' };
    case 'unsubscribe':
    case 'group_unsubscribe':
      // Only a delivered message can be unsubscribed from; the status itself does not regress.
      return { ...base, status: 'delivered', suppress: 'unsubscribe', detail: { ...detail, ...(e.asm_group_id !== undefined ? { asm_group_id: e.asm_group_id } : {}) } };
    default:
      // deferred (SendGrid keeps retrying), group_resubscribe and account events change nothing here.
      return null;
  }
}

function parse(req: InboundRequest): InboundItem[] {
  const events = bodyJson(req);
  if (!Array.isArray(events)) return [];
  const items: InboundItem[] = [];
  for (const e of events) {
    if (e && typeof e === 'object') {
      const s = statusOf(e as SendgridEvent);
      if (s) items.push(s);
    }
  }
  return items;
}

const inbound: InboundAdapter = { route, verify, parse };

export const sendgridAdapter: ChannelAdapter = {
  kind: 'sendgrid',
  channels: ['email'],
  defaultRatePerSecond: 100,
  check,
  send,
  inbound,
};
