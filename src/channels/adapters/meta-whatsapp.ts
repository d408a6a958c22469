import { createHmac } from 'node:crypto';
import { accountIdFromPath, apiBase, bodyJson, callProvider, failure, failureFromStatus, isCallFailure, isHttpUrl, retryAfterMs, safeEqual, type CallFailure, type ProviderResponse } from '../http.js';
import type {
  AccountProblem,
  ChannelAdapter,
  InboundItem,
  InboundMessage,
  InboundRequest,
  InboundResponse,
  InboundStatus,
  OutgoingMessage,
  ProviderAccount,
  RouteKeys,
  SendContext,
  SendResult,
} from '../types.js';

/**
 * WhatsApp through Meta's Cloud API (Graph API).
 *
 * Sending: one POST to /<version>/<phone_number_id>/messages with the account's access token.
 * What goes out depends on the message: an approved template when `whatsapp_template` is set
 * (the dispatcher decides template versus session text, this adapter sends what it is given),
 * reply buttons when `options.buttons` is a list, a media message when `options.media` is set,
 * else session text. Shapes Meta would refuse (four buttons, a 21-character title) fail here,
 * permanently, before a request is spent on them.
 *
 * Webhooks: one callback URL per Meta app, shared by every number subscribed to it, so POSTs are
 * routed by the `metadata.phone_number_id` in the body; the GET verification handshake has no
 * body, so its URL must end in the account id (`/webhooks/meta_whatsapp/<account_id>`), and
 * POSTs to that URL are accepted too. POSTs carry X-Hub-Signature-256, an HMAC-SHA256 of the raw
 * body keyed with the app secret.
 */

const GRAPH_ROOT = 'https://graph.facebook.com';
const DEFAULT_API_VERSION = 'v23.0';
const KIND = 'meta_whatsapp';

// Meta's limits for the message parts this adapter builds.
const TEXT_MAX = 4096;
const INTERACTIVE_BODY_MAX = 1024;
const CAPTION_MAX = 1024;
const FOOTER_MAX = 60;
const BUTTONS_MAX = 3;
const BUTTON_TITLE_MAX = 20;
const BUTTON_ID_MAX = 256;
const CALLBACK_DATA_MAX = 512;

const MEDIA_TYPES = ['image', 'document', 'video', 'audio'] as const;
type MediaType = (typeof MEDIA_TYPES)[number];
/** Media types that can head an interactive or template message (audio cannot). */
const HEADER_MEDIA: ReadonlySet<string> = new Set(['image', 'document', 'video']);

/** The prefix of InboundMessage media urls: Meta sends a media id, fetched later with the token. */
export const META_MEDIA_PREFIX = 'meta-media:';

export const metaWhatsappAdapter: ChannelAdapter = {
  kind: KIND,
  channels: ['whatsapp'],
  // Meta's default throughput per business phone number.
  defaultRatePerSecond: 80,
  check,
  send,
  inbound: {
    route,
    verify,
    parse,
    handshake,
  },
};

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (!nonEmpty(credentials.access_token)) problems.push({ field: 'credentials.access_token', message: 'required: a system-user access token with whatsapp_business_messaging permission' });
  if (!nonEmpty(credentials.app_secret)) problems.push({ field: 'credentials.app_secret', message: 'required: the Meta app secret that signs webhook notifications (X-Hub-Signature-256)' });
  if (credentials.verify_token !== undefined && !nonEmpty(credentials.verify_token)) problems.push({ field: 'credentials.verify_token', message: 'must be a non-empty string (the Verify Token entered in the Meta app dashboard)' });
  const id = config.phone_number_id;
  if (typeof id !== 'string' || !/^\d{5,20}$/.test(id)) problems.push({ field: 'config.phone_number_id', message: "required: the WhatsApp phone number ID as a string of digits (not the phone number itself)" });
  if (config.api_version !== undefined && (typeof config.api_version !== 'string' || !/^v?\d+\.\d+$/.test(config.api_version))) problems.push({ field: 'config.api_version', message: "must look like 'v23.0'" });
  if (config.base_url !== undefined && !isHttpUrl(config.base_url)) problems.push({ field: 'config.base_url', message: 'must be an http(s) URL' });
  if (config.rate_per_second !== undefined && !(typeof config.rate_per_second === 'number' && config.rate_per_second > 0)) problems.push({ field: 'config.rate_per_second', message: 'must be a positive number' });
  return problems;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { account } = ctx;
  const token = account.credentials.access_token;
  const phoneNumberId = account.config.phone_number_id;
  if (!nonEmpty(token)) return failure('auth', 'the account has no access_token');
  if (typeof phoneNumberId !== 'string' || !phoneNumberId) return failure('config', 'the account has no phone_number_id');
  const to = waDigits(msg.to);
  if (!to) return failure('invalid_recipient', `not a phone number: ${JSON.stringify(msg.to)}`);

  const content = buildContent(msg);
  if (typeof content === 'string') return failure('rejected', content);
  const body = {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to,
    // Echoed in every status webhook for this message: a way back to it that needs no lookup.
    biz_opaque_callback_data: msg.id.slice(0, CALLBACK_DATA_MAX),
    ...content,
  };

  const url = `${apiBase(account.config, GRAPH_ROOT)}/${apiVersion(account.config)}/${encodeURIComponent(phoneNumberId)}/messages`;
  const res = await callProvider(ctx, url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (isCallFailure(res)) return res;
  if (res.status >= 200 && res.status < 300) {
    const id = (res.json as { messages?: { id?: unknown }[] } | undefined)?.messages?.[0]?.id;
    if (typeof id === 'string' && id) return { ok: true, provider_message_id: id };
    // Accepted but unidentifiable: statuses could never be matched, so say so rather than pretend.
    return failure('server', `HTTP ${res.status} without a message id: ${res.text.slice(0, 200)}`);
  }
  return graphFailure(res);
}

function apiVersion(config: Record<string, unknown>): string {
  const v = typeof config.api_version === 'string' && config.api_version ? config.api_version : DEFAULT_API_VERSION;
  return v.startsWith('v') ? v : `v${v}`;
}

/** The type-specific part of the request body, or why Meta would refuse it. */
function buildContent(msg: OutgoingMessage): Record<string, unknown> | string {
  const options = msg.options ?? {};
  if (msg.whatsapp_template) return templateContent(msg.whatsapp_template, options.media);
  if (options.buttons !== undefined && options.buttons !== null) return buttonsContent(msg.body, options.buttons, options.media, options.footer);
  if (options.media !== undefined && options.media !== null) return mediaContent(options.media, msg.body);
  const text = msg.body ?? '';
  if (!text.trim()) return 'a WhatsApp session message needs a body';
  if (length(text) > TEXT_MAX) return `WhatsApp text is limited to ${TEXT_MAX} characters (this one has ${length(text)})`;
  // Meta renders no link preview unless asked; asking whenever there is a link is what people expect.
  const preview = typeof options.preview_url === 'boolean' ? options.preview_url : /https?:\/\//i.test(text);
  return { type: 'text', text: { body: text, preview_url: preview } };
}

function templateContent(t: NonNullable<OutgoingMessage['whatsapp_template']>, media: unknown): Record<string, unknown> | string {
  if (!nonEmpty(t.name)) return 'the WhatsApp template has no name';
  if (!nonEmpty(t.language)) return `the WhatsApp template ${t.name} has no language code`;
  const components: Record<string, unknown>[] = [];
  if (media !== undefined && media !== null) {
    const m = readMedia(media);
    if (typeof m === 'string') return m;
    if (!HEADER_MEDIA.has(m.type)) return `a template header cannot be ${m.type}; use image, video or document`;
    components.push({ type: 'header', parameters: [{ type: m.type, [m.type]: mediaObject(m, false) }] });
  }
  if (t.parameters.length) components.push({ type: 'body', parameters: t.parameters.map((text) => ({ type: 'text', text })) });
  for (const b of t.buttons ?? []) {
    components.push({
      type: 'button',
      sub_type: b.sub_type,
      index: String(b.index),
      parameters: [b.sub_type === 'quick_reply' ? { type: 'payload', payload: b.parameter } : { type: 'text', text: b.parameter }],
    });
  }
  return { type: 'template', template: { name: t.name, language: { code: t.language }, ...(components.length ? { components } : {}) } };
}

function buttonsContent(body: string | undefined, buttons: unknown, media: unknown, footer: unknown): Record<string, unknown> | string {
  if (!Array.isArray(buttons)) return 'options.buttons must be a list';
  if (buttons.length < 1 || buttons.length > BUTTONS_MAX) return `WhatsApp reply buttons: 1 to ${BUTTONS_MAX} allowed, ${buttons.length} given`;
  const text = body ?? '';
  if (!text.trim()) return 'a WhatsApp message with reply buttons needs a body';
  if (length(text) > INTERACTIVE_BODY_MAX) return `the body of a WhatsApp message with buttons is limited to ${INTERACTIVE_BODY_MAX} characters (this one has ${length(text)})`;
  const replies: { type: 'reply'; reply: { id: string; title: string } }[] = [];
  for (const [i, b] of buttons.entries()) {
    const read = readButton(b);
    if (!read) return `button ${i + 1} must be a string or {id or payload, title}`;
    const { id, title } = read;
    if (!title.trim()) return `button ${i + 1} has an empty title`;
    if (length(title) > BUTTON_TITLE_MAX) return `button title ${JSON.stringify(title)} is ${length(title)} characters; WhatsApp allows ${BUTTON_TITLE_MAX}`;
    if (!id || length(id) > BUTTON_ID_MAX) return `button ${i + 1} id must be 1 to ${BUTTON_ID_MAX} characters`;
    if (replies.some((r) => r.reply.id === id)) return `button id ${JSON.stringify(id)} is used twice; ids must be unique`;
    if (replies.some((r) => r.reply.title === title)) return `button title ${JSON.stringify(title)} is used twice; titles must be unique`;
    replies.push({ type: 'reply', reply: { id, title } });
  }
  const interactive: Record<string, unknown> = { type: 'button', body: { text }, action: { buttons: replies } };
  if (media !== undefined && media !== null) {
    const m = readMedia(media);
    if (typeof m === 'string') return m;
    if (!HEADER_MEDIA.has(m.type)) return `a message with buttons cannot be headed by ${m.type}; use image, video or document`;
    interactive.header = { type: m.type, [m.type]: mediaObject(m, false) };
  }
  if (footer !== undefined && footer !== null) {
    if (typeof footer !== 'string' || length(footer) > FOOTER_MAX) return `options.footer must be text of at most ${FOOTER_MAX} characters`;
    interactive.footer = { text: footer };
  }
  return { type: 'interactive', interactive };
}

function readButton(b: unknown): { id: string; title: string } | null {
  if (typeof b === 'string') return { id: b, title: b };
  if (!b || typeof b !== 'object') return null;
  const o = b as Record<string, unknown>;
  if (typeof o.title !== 'string') return null;
  const id = typeof o.id === 'string' ? o.id : typeof o.payload === 'string' ? o.payload : o.title;
  return { id, title: o.title };
}

interface Media {
  type: MediaType;
  url: string;
  caption?: string;
  filename?: string;
}

function readMedia(media: unknown): Media | string {
  if (!media || typeof media !== 'object') return 'options.media must be {type, url, caption?, filename?}';
  const m = media as Record<string, unknown>;
  if (typeof m.type !== 'string' || !(MEDIA_TYPES as readonly string[]).includes(m.type)) return `options.media.type must be one of ${MEDIA_TYPES.join(', ')}`;
  if (!isHttpUrl(m.url)) return 'options.media.url must be an http(s) URL Meta can download';
  if (m.caption !== undefined && typeof m.caption !== 'string') return 'options.media.caption must be text';
  if (m.filename !== undefined && typeof m.filename !== 'string') return 'options.media.filename must be text';
  return { type: m.type as MediaType, url: m.url as string, caption: m.caption as string | undefined, filename: m.filename as string | undefined };
}

function mediaObject(m: Media, withCaption: boolean, caption?: string): Record<string, unknown> {
  return {
    link: m.url,
    ...(withCaption && caption ? { caption } : {}),
    ...(m.type === 'document' && m.filename ? { filename: m.filename } : {}),
  };
}

function mediaContent(media: unknown, body: string | undefined): Record<string, unknown> | string {
  const m = readMedia(media);
  if (typeof m === 'string') return m;
  // The message body is the caption unless the media names its own.
  const caption = m.caption ?? (body?.trim() ? body : undefined);
  if (m.type === 'audio') {
    if (caption) return 'WhatsApp audio messages carry no text; send the text as a separate message';
    return { type: 'audio', audio: mediaObject(m, false) };
  }
  if (caption && length(caption) > CAPTION_MAX) return `a WhatsApp ${m.type} caption is limited to ${CAPTION_MAX} characters (this one has ${length(caption)})`;
  return { type: m.type, [m.type]: mediaObject(m, true, caption) };
}

/** Graph API error body: `{ error: { message, type, code, error_subcode, error_data: { details }, fbtrace_id } }`. */
interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  error_data?: { details?: string };
  fbtrace_id?: string;
}

/**
 * What a Graph API error means for the message. Meta answers most errors with HTTP 400, throttling
 * included, so the error code decides, not the status. Codes from Meta's Cloud API error-code
 * reference; anything unlisted falls back to the HTTP status.
 */
function graphFailure(res: ProviderResponse): CallFailure {
  const err = (res.json as { error?: GraphError } | undefined)?.error;
  if (!err || typeof err.code !== 'number') return failureFromStatus(res, res.text.slice(0, 300) || 'no body');
  const code = err.code;
  const details = err.error_data?.details;
  const text = `${err.message ?? 'Graph API error'}${details && !err.message?.includes(details) ? ` (${details})` : ''} [#${code}${err.error_subcode ? `/${err.error_subcode}` : ''}${err.fbtrace_id ? `, fbtrace_id ${err.fbtrace_id}` : ''}]`;
  const provider_code = String(code);
  const wait = (ms: number) => retryAfterMs(res.headers) ?? ms;
  switch (code) {
    case 130429: // Cloud API throughput for this number reached
      return failure('rate_limited', text, { provider_code, retry_after_ms: wait(1000) });
    case 131056: // pair rate limit: about one message every 6 s to the same user
      return failure('rate_limited', text, { provider_code, retry_after_ms: wait(6000) });
    case 4: // app-level API call limit
    case 80007: // WhatsApp Business Account rate limit
      return failure('rate_limited', text, { provider_code, retry_after_ms: wait(60_000) });
    case 131048: // spam rate limit: this number's quality; other numbers and later may do
      return failure('rate_limited', text, { provider_code, retry_after_ms: wait(600_000) });
    case 131026: // undeliverable: not on WhatsApp, old app, terms not accepted
    case 131021: // recipient is the sender
      return failure('invalid_recipient', text, { provider_code });
    case 131047:
      return failure('rejected', `outside the 24-hour customer service window: only an approved template can start the conversation. ${text}`, { provider_code });
    case 131050: // the user stopped marketing messages from this business
      return failure('unsubscribed', text, { provider_code });
    case 190: // access token expired or revoked
    case 0:
    case 3:
    case 10:
    case 131005:
      return failure('auth', text, { provider_code });
    case 33: // the business phone number is deleted
    case 368: // temporarily blocked for policy violations
    case 131031: // business account locked
    case 131042: // payment method problem
    case 133010: // phone number not registered with Cloud API
      return failure('config', text, { provider_code });
    case 1:
    case 2:
    case 131000:
    case 131016:
    case 131057: // account in maintenance mode
    case 133004:
      return failure('server', text, { provider_code });
  }
  if (code >= 200 && code <= 299) return failure('auth', text, { provider_code });
  if (code === 100 && err.error_subcode === 33) return failure('config', `unknown phone_number_id or no permission on it: ${text}`, { provider_code });
  if (res.status === 401 || res.status === 403 || res.status === 429 || res.status >= 500) return failureFromStatus(res, text, provider_code);
  // Template errors (132000-132069), bad parameters (100, 131008, 131009), unsupported types and
  // media (131051-131053), marketing limits (131049, 130472): this message, as it is, will not go.
  return failure('rejected', text, { provider_code });
}

// ---- Inbound ----

interface WebhookBody {
  object?: string;
  entry?: { id?: string; changes?: { field?: string; value?: WebhookValue }[] }[];
}

interface WebhookValue {
  messaging_product?: string;
  metadata?: { display_phone_number?: string; phone_number_id?: string };
  contacts?: { wa_id?: string; profile?: { name?: string } }[];
  messages?: WaMessage[];
  statuses?: WaStatus[];
}

interface WaMediaPart {
  id?: string;
  mime_type?: string;
  caption?: string;
  filename?: string;
}

interface WaMessage {
  from?: string;
  id?: string;
  timestamp?: string;
  type?: string;
  context?: { id?: string; from?: string };
  text?: { body?: string };
  button?: { text?: string; payload?: string };
  interactive?: {
    type?: string;
    button_reply?: { id?: string; title?: string };
    list_reply?: { id?: string; title?: string };
    nfm_reply?: { body?: string; response_json?: string };
  };
  image?: WaMediaPart;
  video?: WaMediaPart;
  audio?: WaMediaPart;
  document?: WaMediaPart;
  sticker?: WaMediaPart;
}

interface WaStatus {
  id?: string;
  status?: string;
  timestamp?: string;
  recipient_id?: string;
  biz_opaque_callback_data?: string;
  conversation?: unknown;
  pricing?: unknown;
  errors?: { code?: number; title?: string; message?: string; error_data?: { details?: string } }[];
}

function route(req: InboundRequest): RouteKeys | null {
  if (req.method === 'POST') {
    for (const change of changes(body(req))) {
      const id = change.metadata?.phone_number_id;
      if (typeof id === 'string' && id) return { external_id: id };
    }
  }
  const accountId = accountIdFromPath(req.url, KIND);
  return accountId ? { account_id: accountId } : null;
}


/**
 * POST: the X-Hub-Signature-256 header is `sha256=` + the hex HMAC-SHA256 of the raw body with
 * the app secret. GET (the subscription handshake) carries no signature; it is proven by the
 * verify token instead.
 */
function verify(req: InboundRequest, account: ProviderAccount): boolean {
  if (req.method === 'GET') return handshake(req, account) !== null;
  const secret = account.credentials.app_secret;
  const header = req.headers['x-hub-signature-256'];
  if (!nonEmpty(secret) || !header) return false;
  const given = header.trim();
  if (!given.toLowerCase().startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(req.rawBody).digest('hex');
  return safeEqual(given.slice('sha256='.length).toLowerCase(), expected);
}

/** Meta's GET `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: echo the challenge. */
function handshake(req: InboundRequest, account: ProviderAccount): InboundResponse | null {
  if (req.method !== 'GET') return null;
  const token = account.credentials.verify_token;
  const q = req.query;
  if (q['hub.mode'] !== 'subscribe' || !nonEmpty(token) || !q['hub.verify_token'] || !q['hub.challenge']) return null;
  if (!safeEqual(q['hub.verify_token'], token)) return null;
  return { status: 200, contentType: 'text/plain', body: q['hub.challenge'] };
}

function parse(req: InboundRequest, account: ProviderAccount): InboundItem[] {
  const items: InboundItem[] = [];
  const own = typeof account.config.phone_number_id === 'string' ? account.config.phone_number_id : null;
  for (const value of changes(body(req))) {
    // A notification may batch several numbers of the same app; only this account's are its own.
    if (own && value.metadata?.phone_number_id && value.metadata.phone_number_id !== own) continue;
    const to = e164(value.metadata?.display_phone_number) ?? '';
    for (const m of value.messages ?? []) {
      const item = parseMessage(m, to, value.contacts ?? []);
      if (item) items.push(item);
    }
    for (const s of value.statuses ?? []) {
      const item = parseStatus(s);
      if (item) items.push(item);
    }
  }
  return items;
}

function body(req: InboundRequest): WebhookBody | undefined {
  const json = bodyJson(req);
  return json && typeof json === 'object' ? (json as WebhookBody) : undefined;
}

/** The `messages`-field change values of a WhatsApp Business Account notification. */
function changes(b: WebhookBody | undefined): WebhookValue[] {
  if (!b || b.object !== 'whatsapp_business_account' || !Array.isArray(b.entry)) return [];
  const values: WebhookValue[] = [];
  for (const entry of b.entry) {
    for (const change of Array.isArray(entry?.changes) ? entry.changes : []) {
      if (change?.field === 'messages' && change.value && typeof change.value === 'object') values.push(change.value);
    }
  }
  return values;
}

// Types that are not something the person wrote: a reaction to one of our messages, a system
// notice (number changed), the first-open of a chat.
const NOT_MESSAGES: ReadonlySet<string> = new Set(['reaction', 'system', 'request_welcome', 'ephemeral']);

function parseMessage(m: WaMessage, to: string, contacts: NonNullable<WebhookValue['contacts']>): InboundMessage | null {
  const from = e164(m.from);
  const at = unixSeconds(m.timestamp);
  if (!from || !m.id || !at || !m.type || NOT_MESSAGES.has(m.type)) return null;
  let text: string | null = null;
  let payload: string | null = null;
  let media: InboundMessage['media'];
  switch (m.type) {
    case 'text':
      text = m.text?.body ?? null;
      break;
    case 'button': // a template's quick-reply button
      text = m.button?.text ?? null;
      payload = m.button?.payload ?? m.button?.text ?? null;
      break;
    case 'interactive': {
      const i = m.interactive;
      const reply = i?.button_reply ?? i?.list_reply;
      if (reply) {
        text = reply.title ?? null;
        payload = reply.id ?? null;
      } else if (i?.nfm_reply) {
        text = i.nfm_reply.body ?? null;
        payload = i.nfm_reply.response_json ?? null;
      }
      break;
    }
    case 'image':
    case 'video':
    case 'audio':
    case 'document':
    case 'sticker': {
      const part = m[m.type];
      text = part?.caption ?? null;
      if (part?.id) media = [{ url: `${META_MEDIA_PREFIX}${part.id}`, ...(part.mime_type ? { content_type: part.mime_type } : {}) }];
      break;
    }
  }
  const contact = contacts.find((c) => c.wa_id === m.from) ?? (contacts.length === 1 ? contacts[0] : undefined);
  return {
    type: 'message',
    channel: 'whatsapp',
    from,
    to,
    text,
    payload,
    provider_message_id: m.id,
    at,
    ...(contact?.profile?.name ? { profile_name: contact.profile.name } : {}),
    ...(media ? { media } : {}),
    ...(m.context?.id ? { in_reply_to: m.context.id } : {}),
  };
}

const STATUSES: Record<string, InboundStatus['status']> = { sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed' };

function parseStatus(s: WaStatus): InboundStatus | null {
  const mapped = s.status ? STATUSES[s.status] : undefined;
  const at = unixSeconds(s.timestamp);
  if (!mapped || !s.id || !at) return null;
  const detail: Record<string, unknown> = {};
  if (s.recipient_id) detail.recipient_id = s.recipient_id;
  if (s.pricing) detail.pricing = s.pricing;
  if (s.conversation) detail.conversation = s.conversation;
  if (s.biz_opaque_callback_data) detail.callback_data = s.biz_opaque_callback_data;
  const item: InboundStatus = { type: 'status', provider_message_id: s.id, status: mapped, at };
  const e = s.errors?.[0];
  if (mapped === 'failed' && e) {
    item.error = [e.title, e.message !== e.title ? e.message : undefined, e.error_data?.details].filter(Boolean).join(': ') || `error ${e.code}`;
    if (e.code !== undefined) item.provider_code = String(e.code);
    // Not on WhatsApp (or cannot receive): the address is dead for this channel, not the message.
    if (e.code === 131026) item.status = 'undeliverable';
    if (e.code === 131050) item.suppress = 'unsubscribe';
  }
  if (Object.keys(detail).length) item.detail = detail;
  return item;
}

// ---- helpers ----

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.trim().length > 0;
}

/** Characters as a person counts them (code points), which is how Meta counts limits. */
function length(s: string): number {
  return [...s].length;
}

/** E.164 to the digits-only form the Cloud API takes, or null when it is not a phone number. */
function waDigits(to: string | null): string | null {
  if (!to) return null;
  const digits = to.replace(/^whatsapp:/, '').replace(/[\s().-]/g, '').replace(/^\+/, '');
  return /^\d{7,15}$/.test(digits) ? digits : null;
}

function e164(n: string | undefined): string | null {
  const digits = n?.replace(/\D/g, '');
  return digits ? `+${digits}` : null;
}

function unixSeconds(ts: string | undefined): Date | null {
  const n = Number(ts);
  return ts && Number.isFinite(n) && n > 0 ? new Date(n * 1000) : null;
}
