import { createHmac } from 'node:crypto';
import { accountIdFromPath, apiBase, bodyJson, callProvider, failure, failureFromStatus, isCallFailure, safeEqual, type ProviderResponse } from '../http.js';
import { isEmailAddress, parseMailbox, safeHeaders } from '../email-compose.js';
import type { AccountProblem, ChannelAdapter, InboundAdapter, InboundItem, InboundRequest, InboundStatus, OutgoingMessage, ProviderAccount, SendContext, SendResult } from '../types.js';

/**
 * Resend: POST /emails and its Svix-signed webhooks.
 *
 *   credentials  api_key          `re_…`, sending access is enough
 *                webhook_secret   `whsec_…`, the signing secret of the webhook endpoint
 *   config       from             `addr@host` or `Name <addr@host>` on a verified domain
 *                reply_to         optional
 *                base_url         default https://api.resend.com
 *
 * Sending: the body is {from, to, subject, html, text, headers, reply_to, tags}, with
 * `Idempotency-Key: <enrollment:node:step>` so a retried request inside Resend's 24 h window
 * returns the first answer instead of sending twice. The answer is {id}: the provider_message_id.
 * Rapport's message id rides along as the tag rapport_message_id, echoed in every webhook.
 *
 * Webhooks: POST <public url>/webhooks/resend/<account id>, signed the Svix way: svix-id,
 * svix-timestamp, svix-signature (`v1,<base64>`, space-separated during a secret rotation) over
 * `${id}.${timestamp}.${raw body}`, HMAC-SHA256 keyed by the base64 after `whsec_`. A timestamp
 * more than 5 minutes from the time of receipt is refused (Svix signs every retry afresh).
 */

const API = 'https://api.resend.com';
const TOLERANCE_MS = 5 * 60_000;

interface ResendError {
  name?: string;
  message?: string;
  statusCode?: number;
}

/** A Resend answer other than 200, classified by the error's `name`. */
function resendFailure(res: ProviderResponse): Extract<SendResult, { ok: false }> {
  const e = (res.json && typeof res.json === 'object' ? res.json : {}) as ResendError;
  const name = e.name ?? '';
  const text = e.message ? `${name}: ${e.message}` : res.text || 'no body';
  const opts = name ? { provider_code: name } : {};
  switch (name) {
    case 'missing_api_key':
    case 'invalid_api_key':
    case 'restricted_api_key':
      return failure('auth', `HTTP ${res.status}: ${text}`, opts);
    case 'invalid_from_address':
      return failure('config', `HTTP ${res.status}: ${text}`, opts);
    case 'daily_quota_exceeded':
    case 'monthly_quota_exceeded':
      // The account is out of sends for the day or month: the next provider can carry the message.
      return failure('config', `HTTP ${res.status}: ${text}`, opts);
    case 'concurrent_idempotent_requests':
      // Our first attempt is still in flight at Resend; asking again shortly gets its answer.
      return failure('server', `HTTP ${res.status}: ${text}`, { ...opts, retry_after_ms: 1000 });
    case 'validation_error':
      // 403 is the account (unverified domain, testing-only key); 422 names the field at fault.
      if (res.status === 403) return failure('config', `HTTP ${res.status}: ${text}`, opts);
      if (/`to`|recipient/i.test(e.message ?? '')) return failure('invalid_recipient', `HTTP ${res.status}: ${text}`, opts);
      return failure('rejected', `HTTP ${res.status}: ${text}`, opts);
    default:
      return failureFromStatus(res, text, name || undefined);
  }
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (!credentials.api_key) problems.push({ field: 'credentials.api_key', message: 'required: a Resend API key (re_...)' });
  else if (!credentials.api_key.startsWith('re_')) problems.push({ field: 'credentials.api_key', message: 'Resend API keys start with "re_"' });
  if (credentials.webhook_secret && !secretKey(credentials.webhook_secret)) {
    problems.push({ field: 'credentials.webhook_secret', message: 'must be the webhook signing secret, "whsec_" followed by base64' });
  }
  if (typeof config.from !== 'string' || !parseMailbox(config.from)) problems.push({ field: 'config.from', message: 'required: "addr@example.com" or "Name <addr@example.com>"' });
  if (config.reply_to !== undefined && (typeof config.reply_to !== 'string' || !parseMailbox(config.reply_to))) {
    problems.push({ field: 'config.reply_to', message: 'must be an e-mail address' });
  }
  return problems;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { config, credentials } = ctx.account;
  if (!msg.to || !isEmailAddress(msg.to)) return failure('invalid_recipient', `not an e-mail address: ${JSON.stringify(msg.to)}`);
  if (typeof config.from !== 'string' || !parseMailbox(config.from)) return failure('config', 'account has no valid config.from');
  if (!msg.body && !msg.html) return failure('rejected', 'the e-mail has neither a text nor an HTML part');
  const body = {
    from: config.from,
    to: [msg.to],
    subject: msg.subject ?? '',
    ...(msg.html ? { html: msg.html } : {}),
    ...(msg.body ? { text: msg.body } : {}),
    ...(typeof config.reply_to === 'string' ? { reply_to: config.reply_to } : {}),
    headers: { ...safeHeaders(msg.headers), 'X-Rapport-Message-Id': msg.id },
    tags: [{ name: 'rapport_message_id', value: msg.id }],
  };
  const res = await callProvider(ctx, `${apiBase(config, API)}/emails`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${credentials.api_key ?? ''}`,
      'content-type': 'application/json',
      'idempotency-key': msg.idempotency_key,
    },
    body: JSON.stringify(body),
  });
  if (isCallFailure(res)) return res;
  const id = (res.json as { id?: unknown } | undefined)?.id;
  if (res.status >= 200 && res.status < 300 && typeof id === 'string' && id) return { ok: true, provider_message_id: id };
  if (res.status >= 200 && res.status < 300) return failure('server', `HTTP ${res.status} without an email id: ${res.text.slice(0, 200)}`);
  return resendFailure(res);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

function secretKey(secret: string): Buffer | null {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : '';
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const key = Buffer.from(b64, 'base64');
  return key.length ? key : null;
}

function route(req: InboundRequest): { account_id: string } | null {
  const id = accountIdFromPath(req.url, 'resend');
  return id ? { account_id: id } : null;
}

function header(req: InboundRequest, name: string): string | undefined {
  // Svix white-labels its headers as webhook-* for some senders; both carry the same values.
  return req.headers[`svix-${name}`] ?? req.headers[`webhook-${name}`];
}

function verify(req: InboundRequest, account: ProviderAccount): boolean {
  const id = header(req, 'id');
  const timestamp = header(req, 'timestamp');
  const signatures = header(req, 'signature');
  const key = account.credentials.webhook_secret ? secretKey(account.credentials.webhook_secret) : null;
  if (req.method !== 'POST' || !id || !timestamp || !signatures || !key || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(req.receivedAt.getTime() - Number(timestamp) * 1000) > TOLERANCE_MS) return false;
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(req.rawBody).digest('base64');
  // Every candidate is compared, so the time taken does not tell which one matched.
  let ok = false;
  for (const candidate of signatures.split(' ')) {
    const [version, sig] = candidate.split(',', 2);
    if (version === 'v1' && sig && safeEqual(sig, expected)) ok = true;
  }
  return ok;
}

interface ResendEvent {
  type?: string;
  created_at?: string;
  data?: {
    email_id?: string;
    created_at?: string;
    tags?: Record<string, string> | { name: string; value: string }[];
    bounce?: { message?: string; type?: string; subType?: string };
    click?: { link?: string };
    failed?: { reason?: string };
    suppressed?: { message?: string; type?: string };
  };
}

function rapportId(tags: NonNullable<ResendEvent['data']>['tags']): string | undefined {
  if (Array.isArray(tags)) return tags.find((t) => t.name === 'rapport_message_id')?.value;
  return tags?.rapport_message_id;
}

function parse(req: InboundRequest): InboundItem[] {
  const event = bodyJson(req) as ResendEvent | undefined;
  const data = event?.data;
  if (!event || typeof event !== 'object' || !data?.email_id || typeof event.type !== 'string') return [];
  const at = new Date(event.created_at ?? data.created_at ?? Date.now());
  const detail: Record<string, unknown> = { event: event.type };
  const rid = rapportId(data.tags);
  if (rid) detail.rapport_message_id = rid;
  const base = { type: 'status' as const, provider_message_id: data.email_id, at: Number.isNaN(at.getTime()) ? new Date() : at };
  const status = (s: InboundStatus['status'], extra: Partial<InboundStatus> = {}): InboundItem[] => [{ ...base, status: s, detail, ...extra }];
  switch (event.type) {
    case 'email.sent':
      return status('sent');
    case 'email.delivered':
      return status('delivered');
    case 'email.opened':
      return status('opened');
    case 'email.clicked':
      return status('clicked', { detail: { ...detail, url: data.click?.link ?? null } });
    case 'email.bounced': {
      // Resend sends email.bounced for permanent rejections only.
      const b = data.bounce ?? {};
      return status('bounced', {
        suppress: 'bounce',
        ...(b.message ? { error: b.message } : {}),
        ...(b.type ? { provider_code: [b.type, b.subType].filter(Boolean).join('/') } : {}),
      });
    }
    case 'email.complained':
      return status('failed', { suppress: 'complaint', error: 'marked as spam by the recipient' });
    case 'email.failed':
      return status('failed', data.failed?.reason ? { error: data.failed.reason } : {});
    case 'email.suppressed': {
      // Resend refused to send to an address on its suppression list; say why when it says so.
      const kind = (data.suppressed?.type ?? '').toLowerCase();
      const suppress = kind.includes('bounce') ? 'bounce' : kind.includes('complain') ? 'complaint' : undefined;
      return status('failed', { ...(suppress ? { suppress } : {}), ...(data.suppressed?.message ? { error: data.suppressed.message } : {}) });
    }
    default:
      // email.delivery_delayed (Resend keeps trying), email.scheduled, email.received, contact and domain events.
      return [];
  }
}

const inbound: InboundAdapter = { route, verify, parse };

export const resendAdapter: ChannelAdapter = {
  kind: 'resend',
  channels: ['email'],
  // Resend's default API limit is 2 requests per second per team.
  defaultRatePerSecond: 2,
  check,
  send,
  inbound,
};
