import { createHmac, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, jsonWebhookToInbound, sendJson, type FakeRequest, type ScriptedAnswer } from './http-fake.js';

export type { ScriptedAnswer } from './http-fake.js';

/**
 * A stand-in for Meta's Graph API (WhatsApp Cloud API) on 127.0.0.1, speaking its protocol:
 * `POST /<version>/<phone_number_id>/messages` with a Bearer token, validated the way Meta
 * validates (a fourth reply button or a 21-character title is an error, as is an unknown
 * template), answered with Meta's success and error bodies. Tests script failures per request.
 *
 * Beside it, builders for what Meta sends to Rapport: signed webhook notifications (inbound text,
 * button, interactive, media, statuses) and the GET verification handshake.
 */

export interface MetaFakeOptions {
  accessToken: string;
  /** The WhatsApp phone number ids this token may send from. */
  phoneNumberIds: string[];
  /** Approved templates by name: their languages and how many body parameters they take. */
  templates?: Record<string, { languages: string[]; bodyParams: number }>;
  /** Recipients (digits) Meta will not deliver to: answered with error 131026. */
  notOnWhatsApp?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  version: string;
  phoneNumberId: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** The id the fake answered with. */
  messageId: string;
}

/** The Graph API's error body. */
export function graphError(code: number, message: string, extra: { subcode?: number; details?: string; type?: string } = {}): { error: Record<string, unknown> } {
  return {
    error: {
      // Meta prefixes the code to the message, except for token and path errors.
      message: code === 190 || code === 2500 ? message : `(#${code}) ${message}`,
      type: extra.type ?? 'OAuthException',
      code,
      ...(extra.subcode ? { error_subcode: extra.subcode } : {}),
      ...(extra.details ? { error_data: { messaging_product: 'whatsapp', details: extra.details } } : {}),
      fbtrace_id: `A${randomBytes(9).toString('base64url')}`,
    },
  };
}

export class MetaGraphFake {
  /** Requests the fake accepted (answered 200), in order. */
  readonly requests: RecordedRequest[] = [];
  /** Every request that reached the fake, accepted or not. */
  readonly received: { path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  private readonly scripted: ScriptedAnswer[] = [];
  private http!: HttpFake;

  private constructor(private readonly opts: MetaFakeOptions) {}

  static async start(opts: MetaFakeOptions): Promise<MetaGraphFake> {
    const fake = new MetaGraphFake(opts);
    fake.http = await HttpFake.listen((req, res) => fake.handle(req, res));
    return fake;
  }

  /** The fake's root URL: an account's `base_url`. */
  get url(): string {
    return this.http.url;
  }

  /** Answers the next requests with these, in order, before validating anything. */
  script(...answers: ScriptedAnswer[]): void {
    this.scripted.push(...answers);
  }

  /** The next request fails with this Graph error (HTTP 400 unless told). */
  failNext(code: number, message: string, opts: { status?: number; subcode?: number; details?: string; headers?: Record<string, string> } = {}): void {
    this.script({ status: opts.status ?? 400, body: graphError(code, message, opts), headers: opts.headers });
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async handle(req: FakeRequest, res: ServerResponse): Promise<void> {
    const { path, body: raw } = req;
    this.received.push({ path, headers: req.headers, body: raw });

    const next = this.scripted.shift();
    if (next) return this.http.answer(res, next);

    const m = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/.exec(path);
    if (req.method !== 'POST' || !m) return sendJson(res, 400, graphError(2500, `Unknown path components: ${path}`));
    const [, version, phoneNumberId] = m as unknown as [string, string, string];
    const auth = req.headers.authorization;
    if (!auth?.startsWith('Bearer ')) return sendJson(res, 400, graphError(2500, 'An active access token must be used to query information about the current user.'));
    if (auth.slice(7) !== this.opts.accessToken) return sendJson(res, 401, graphError(190, 'Invalid OAuth access token - Cannot parse access token'));
    if (!this.opts.phoneNumberIds.includes(phoneNumberId)) {
      return sendJson(res, 400, graphError(100, `Unsupported post request. Object with ID '${phoneNumberId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, { subcode: 33, type: 'GraphMethodException' }));
    }
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendJson(res, 400, graphError(100, 'Invalid parameter'));
    }
    const problem = validate(body, this.opts);
    if (problem) return sendJson(res, problem.status, problem.body);

    const messageId = `wamid.${randomBytes(24).toString('base64')}`;
    this.requests.push({ method: req.method, path, version, phoneNumberId, headers: req.headers, body, messageId });
    sendJson(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: body.to, wa_id: String(body.to).replace(/\D/g, '') }],
      messages: [{ id: messageId, ...(body.type === 'template' ? { message_status: 'accepted' } : {}) }],
    });
  }
}

type Problem = { status: number; body: unknown };

const invalid = (details: string): Problem => ({ status: 400, body: graphError(131009, 'Parameter value is not valid', { details }) });
const missing = (param: string): Problem => ({ status: 400, body: graphError(100, `The parameter ${param} is required.`) });
const MEDIA = ['image', 'document', 'video', 'audio', 'sticker'];

/** Meta's checks on a messages request, as far as the adapter can get them wrong. */
function validate(b: any, opts: MetaFakeOptions): Problem | null {
  if (b?.messaging_product !== 'whatsapp') return missing('messaging_product');
  if (b.recipient_type !== undefined && b.recipient_type !== 'individual') return invalid('recipient_type must be individual');
  if (typeof b.to !== 'string' || !b.to) return missing('to');
  if (!/^\+?\d{7,15}$/.test(b.to)) return invalid('to is not a valid phone number');
  if (b.biz_opaque_callback_data !== undefined && (typeof b.biz_opaque_callback_data !== 'string' || b.biz_opaque_callback_data.length > 512)) return invalid('biz_opaque_callback_data must be at most 512 characters');
  if (opts.notOnWhatsApp?.includes(b.to.replace(/\D/g, ''))) {
    return { status: 400, body: graphError(131026, 'Message Undeliverable.', { details: 'Message Undeliverable.' }) };
  }
  switch (b.type ?? 'text') {
    case 'text':
      if (typeof b.text?.body !== 'string' || !b.text.body) return missing("text['body']");
      if ([...b.text.body].length > 4096) return invalid("Param text['body'] must be at most 4096 characters long.");
      return null;
    case 'interactive':
      return validateInteractive(b.interactive);
    case 'template':
      return validateTemplate(b.template, opts);
    default:
      if (MEDIA.includes(b.type)) {
        const m = b[b.type];
        if (!m || (typeof m.link !== 'string' && typeof m.id !== 'string')) return missing(`${b.type}['link'] or ${b.type}['id']`);
        if (m.caption !== undefined && (b.type === 'audio' || b.type === 'sticker')) return invalid(`${b.type} does not take a caption`);
        if (m.filename !== undefined && b.type !== 'document') return invalid(`filename is only valid for documents`);
        return null;
      }
      return { status: 400, body: graphError(131051, 'Unsupported message type', { details: `Message type ${b.type} is not supported.` }) };
  }
}

function validateInteractive(i: any): Problem | null {
  if (!i || i.type !== 'button') return invalid('interactive.type must be button, list, cta_url, product, product_list or flow');
  if (typeof i.body?.text !== 'string' || !i.body.text) return missing("interactive['body']['text']");
  if ([...i.body.text].length > 1024) return invalid('Body text length invalid. Min length: 1, Max length: 1024');
  const buttons = i.action?.buttons;
  if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return invalid('Buttons count invalid. Min count: 1, Max count: 3');
  const ids = new Set<string>();
  const titles = new Set<string>();
  for (const btn of buttons) {
    if (btn?.type !== 'reply') return invalid('Button type must be reply');
    const { id, title } = btn.reply ?? {};
    if (typeof title !== 'string' || [...title].length < 1 || [...title].length > 20) return invalid('Button title length invalid. Min length: 1, Max length: 20');
    if (typeof id !== 'string' || id.length < 1 || id.length > 256) return invalid('Button id length invalid. Min length: 1, Max length: 256');
    if (ids.has(id)) return invalid('Button ids must be unique');
    if (titles.has(title)) return invalid('Button titles must be unique');
    ids.add(id);
    titles.add(title);
  }
  if (i.header !== undefined) {
    const h = i.header;
    if (!['text', 'image', 'video', 'document'].includes(h?.type)) return invalid('header type must be text, image, video or document');
    if (h.type !== 'text' && typeof h[h.type]?.link !== 'string' && typeof h[h.type]?.id !== 'string') return missing(`header['${h.type}']`);
  }
  if (i.footer !== undefined && (typeof i.footer.text !== 'string' || [...i.footer.text].length > 60)) return invalid('Footer text length invalid. Max length: 60');
  return null;
}

function validateTemplate(t: any, opts: MetaFakeOptions): Problem | null {
  if (typeof t?.name !== 'string' || !t.name) return missing("template['name']");
  if (typeof t.language?.code !== 'string' || !t.language.code) return missing("template['language']['code']");
  const known = opts.templates?.[t.name];
  if (opts.templates && (!known || !known.languages.includes(t.language.code))) {
    return { status: 404, body: graphError(132001, 'Template name does not exist in the translation', { details: `template name (${t.name}) does not exist in ${t.language.code}` }) };
  }
  const components: any[] = t.components ?? [];
  for (const c of components) {
    if (!['header', 'body', 'button'].includes(c?.type)) return invalid(`unknown component type ${c?.type}`);
    if (!Array.isArray(c.parameters)) return missing('components.parameters');
    if (c.type === 'button') {
      if (!['quick_reply', 'url'].includes(c.sub_type)) return invalid('button sub_type must be quick_reply or url');
      if (typeof c.index !== 'string' || !/^\d$/.test(c.index)) return invalid('button index must be a string 0-9');
      const p = c.parameters[0];
      if (c.sub_type === 'quick_reply' ? p?.type !== 'payload' || typeof p.payload !== 'string' : p?.type !== 'text' || typeof p.text !== 'string') return invalid('button parameter does not match its sub_type');
    }
  }
  if (known) {
    const given = components.find((c) => c.type === 'body')?.parameters.length ?? 0;
    if (given !== known.bodyParams) {
      return { status: 400, body: graphError(132000, 'Number of parameters does not match the expected number of params', { details: `body: number of localizable_params (${given}) does not match the expected number of params (${known.bodyParams})` }) };
    }
  }
  return null;
}

// ---- Webhooks Meta sends to Rapport ----

/** An HTTP request as the provider makes it: what Rapport's routes, or an adapter, receive. */
export interface WebhookRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface MetaWebhookAccount {
  appSecret: string;
  phoneNumberId: string;
  /** The business number as Meta shows it (digits, no +). */
  displayPhoneNumber: string;
  wabaId?: string;
  /** Where the app's webhook points; defaults to Rapport's shared Meta URL. */
  url?: string;
}

export const DEFAULT_META_WEBHOOK_URL = 'https://rapport.example.com/webhooks/meta_whatsapp';

/** `sha256=` + hex HMAC-SHA256 of the body with the app secret, as Meta signs. */
export function metaSignature(body: string | Buffer, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/** A signed `messages` notification carrying the given value fields (messages, statuses, contacts). */
export function metaNotification(account: MetaWebhookAccount, value: Record<string, unknown>, opts: { field?: string } = {}): WebhookRequest {
  const payload = {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: account.wabaId ?? '102290129340398',
        changes: [
          {
            value: { messaging_product: 'whatsapp', metadata: { display_phone_number: account.displayPhoneNumber, phone_number_id: account.phoneNumberId }, ...value },
            field: opts.field ?? 'messages',
          },
        ],
      },
    ],
  };
  return signedPost(account, JSON.stringify(payload));
}

/** Signs a body exactly as given (for batched or hand-made notifications). */
export function signedPost(account: Pick<MetaWebhookAccount, 'appSecret' | 'url'>, body: string): WebhookRequest {
  return {
    method: 'POST',
    url: account.url ?? DEFAULT_META_WEBHOOK_URL,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'facebookexternalua',
      'x-hub-signature': `sha1=${createHmac('sha1', account.appSecret).update(body).digest('hex')}`,
      'x-hub-signature-256': metaSignature(body, account.appSecret),
    },
    body,
  };
}

interface Sender {
  /** The user's number, digits only. */
  from: string;
  name?: string;
  id?: string;
  /** Unix seconds. */
  timestamp?: number;
  /** The wamid of the business message this one answers. */
  context?: string;
}

function inbound(s: Sender, type: string, part: Record<string, unknown>, contextFrom?: string): Record<string, unknown> {
  return {
    contacts: [{ profile: { name: s.name ?? 'Kerry Fisher' }, wa_id: s.from }],
    messages: [
      {
        ...(s.context ? { context: { from: contextFrom ?? '15550783881', id: s.context } } : {}),
        from: s.from,
        id: s.id ?? `wamid.${randomBytes(18).toString('base64')}`,
        timestamp: String(s.timestamp ?? Math.floor(Date.now() / 1000)),
        type,
        ...part,
      },
    ],
  };
}

/** Value fields of the inbound message kinds, for metaNotification(). */
export const metaInbound = {
  text: (s: Sender, body: string) => inbound(s, 'text', { text: { body } }),
  /** A template's quick-reply button. */
  button: (s: Sender & { context: string }, text: string, payload: string) => inbound(s, 'button', { button: { text, payload } }),
  buttonReply: (s: Sender & { context: string }, id: string, title: string) => inbound(s, 'interactive', { interactive: { type: 'button_reply', button_reply: { id, title } } }),
  listReply: (s: Sender & { context: string }, id: string, title: string, description?: string) =>
    inbound(s, 'interactive', { interactive: { type: 'list_reply', list_reply: { id, title, ...(description ? { description } : {}) } } }),
  media: (s: Sender, type: 'image' | 'document' | 'audio' | 'video' | 'sticker', media: { id: string; mime_type: string; caption?: string; filename?: string }) =>
    inbound(s, type, { [type]: { ...media, sha256: randomBytes(32).toString('base64') } }),
  reaction: (s: Sender, messageId: string, emoji: string) => inbound(s, 'reaction', { reaction: { message_id: messageId, emoji } }),
};

export interface StatusFields {
  id: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  recipient: string;
  timestamp?: number;
  error?: { code: number; title: string; message?: string; details?: string };
  category?: 'marketing' | 'utility' | 'authentication' | 'service';
  callbackData?: string;
}

/** The value field of a status notification, for metaNotification(). */
export function metaStatus(s: StatusFields): Record<string, unknown> {
  const billable = s.status !== 'failed';
  return {
    statuses: [
      {
        id: s.id,
        status: s.status,
        timestamp: String(s.timestamp ?? Math.floor(Date.now() / 1000)),
        recipient_id: s.recipient,
        ...(s.callbackData ? { biz_opaque_callback_data: s.callbackData } : {}),
        ...(billable
          ? {
              conversation: { id: randomBytes(16).toString('hex'), ...(s.status === 'sent' ? { expiration_timestamp: String(Math.floor(Date.now() / 1000) + 86_400) } : {}), origin: { type: s.category ?? 'utility' } },
              pricing: { billable: true, pricing_model: 'PMP', category: s.category ?? 'utility', type: 'regular' },
            }
          : {}),
        ...(s.error
          ? {
              errors: [
                {
                  code: s.error.code,
                  title: s.error.title,
                  message: s.error.message ?? s.error.title,
                  error_data: { details: s.error.details ?? s.error.title },
                  href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
                },
              ],
            }
          : {}),
      },
    ],
  };
}

/** Meta's GET subscription check against the per-account URL. */
export function metaVerification(opts: { url: string; verifyToken: string; challenge: string; mode?: string }): WebhookRequest {
  const u = new URL(opts.url);
  u.searchParams.set('hub.mode', opts.mode ?? 'subscribe');
  u.searchParams.set('hub.challenge', opts.challenge);
  u.searchParams.set('hub.verify_token', opts.verifyToken);
  return { method: 'GET', url: u.toString(), headers: { 'user-agent': 'facebookplatform/1.0' }, body: '' };
}

/** The request as Rapport's inbound route hands it to an adapter. */
export const toInboundRequest: (w: WebhookRequest, receivedAt?: Date) => InboundRequest = jsonWebhookToInbound;
