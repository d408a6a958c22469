import { decodeHTMLAttribute } from 'entities';
import { compile } from 'html-to-text';

/**
 * Builds the e-mail that leaves Rapport from the parts a template rendered. The order matters:
 *
 *   1. MJML (a body starting with `<mjml>`) becomes responsive HTML;
 *   2. the plain-text part is derived from that HTML when the template gave none, before any link
 *      is rewritten, so the text shows the real destinations and not tracker URLs;
 *   3. marketing mail gets its footer (postal address, unsubscribe link) in both parts;
 *   4. every http(s) link is pointed at Rapport's click tracker, except mailto:, the unsubscribe
 *      link and links marked `data-rapport-notrack`;
 *   5. the open pixel goes last, just before </body>;
 *   6. marketing mail gets List-Unsubscribe and, per RFC 8058, List-Unsubscribe-Post.
 *
 * No I/O: the MJML renderer reads no files (mj-include is ignored), tokens come from the injected
 * signer. It is async only because MJML 5's renderer is.
 */

export interface ComposeInput {
  subject: string;
  html?: string;
  text?: string;
  marketing: boolean;
  messageId: string;
  /** Rapport's public URL that serves /t/o and /t/c (no trailing slash); null turns tracking off. */
  trackBase: string | null;
  /** The one-click unsubscribe URL for this message (https in production). */
  unsubscribeUrl: string | null;
  /** An optional mailto: fallback for List-Unsubscribe, e.g. `mailto:unsub@example.com?subject=unsubscribe`. */
  unsubscribeMailto?: string;
  /** The sender's postal address, required in marketing mail by CAN-SPAM and its cousins. */
  postalAddress: string | null;
  /** A URL-safe token naming the message (open) or the message and link (click); HMAC lives elsewhere. */
  sign: (messageId: string, url?: string) => string;
  openTracking: boolean;
  clickTracking: boolean;
}

export interface ComposedEmail {
  subject: string;
  html?: string;
  text: string;
  headers: Record<string, string>;
  /** What the sender should know but that did not stop the mail: MJML validation errors, a missing unsubscribe URL. */
  warnings: string[];
}

/** Builds the final subject, HTML, text and headers. Rejects only if the MJML renderer itself fails (soft validation never does). */
export async function composeEmail(input: ComposeInput): Promise<ComposedEmail> {
  const warnings: string[] = [];
  let html = input.html && input.html.trim() ? input.html : undefined;
  if (html && isMjml(html)) {
    const rendered = await renderMjml(html);
    html = rendered.html;
    warnings.push(...rendered.errors.map((e) => `mjml: ${e}`));
  }

  let text = input.text && input.text.trim() ? input.text : html ? htmlToPlainText(html) : '';

  const headers: Record<string, string> = {};
  if (input.marketing) {
    if (!input.unsubscribeUrl) warnings.push('marketing mail without an unsubscribe URL: no List-Unsubscribe header and no unsubscribe link');
    if (!input.postalAddress) warnings.push('marketing mail without a postal address');
    if (html) html = insertBeforeBodyEnd(html, footerHtml(input.postalAddress, input.unsubscribeUrl));
    text = text.replace(/\s+$/, '') + footerText(input.postalAddress, input.unsubscribeUrl);
    Object.assign(headers, listUnsubscribeHeaders(input.unsubscribeUrl, input.unsubscribeMailto, warnings));
  }

  if (html && input.trackBase) {
    const base = input.trackBase.replace(/\/+$/, '');
    if (input.clickTracking) html = rewriteLinks(html, base, input.messageId, input.unsubscribeUrl, input.sign);
    if (input.openTracking) html = insertBeforeBodyEnd(html, openPixel(base, input.sign(input.messageId)));
  }

  return { subject: input.subject, ...(html ? { html } : {}), text, headers, warnings };
}

// ---------------------------------------------------------------------------------------------
// MJML

/** True when the body is an MJML document rather than HTML. */
export function isMjml(body: string): boolean {
  return /^\s*<mjml[\s>]/i.test(body);
}

type Mjml2Html = typeof import('mjml');
let mjmlLoader: Promise<Mjml2Html> | null = null;

/**
 * MJML pulls in juice, cheerio, cssnano and friends: about 1.5 s to import on a cold process, then
 * 4 to 14 ms per small layout. It is loaded on the first MJML body, not at start-up.
 */
async function renderMjml(source: string): Promise<{ html: string; errors: string[] }> {
  mjmlLoader ??= import('mjml').then((m) => m.default);
  const mjml2html = await mjmlLoader;
  // soft: render what can be rendered and report the rest; ignoreIncludes: a template must not read the server's files.
  const result = await mjml2html(source, { validationLevel: 'soft', ignoreIncludes: true, keepComments: false });
  // formattedMessage names the process's working directory; the line and tag are what an author needs.
  return { html: result.html, errors: result.errors.map((e) => `line ${e.line} (${e.tagName}): ${e.message}`) };
}

// ---------------------------------------------------------------------------------------------
// Plain text

/**
 * html-to-text rather than a home-made converter: it is what nodemailer's and mailparser's own
 * text fallbacks use, it has a real HTML parser behind it (entities, whitespace collapsing, lists,
 * nested tables), and e-mail HTML is exactly the messy input a regex converter gets wrong.
 */
const toText = compile({
  wordwrap: 78,
  selectors: [
    { selector: 'a', options: { linkBrackets: ['(', ')'] as [string, string], hideLinkHrefIfSameAsText: true, noAnchorUrl: true } },
    { selector: 'img', format: 'skip' },
    // The preheader (MJML's mj-preview) is hidden text for the inbox list, not part of the message.
    { selector: '[style*="display:none"]', format: 'skip' },
    { selector: '[style*="display: none"]', format: 'skip' },
    // E-mail HTML lays out with tables; cells are blocks of text, not data.
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
    { selector: 'th', format: 'block' },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => ({ selector: h, options: { uppercase: false } })),
  ],
});

/** The plain-text rendering of an HTML body: links as "text (url)", blocks on their own lines. */
export function htmlToPlainText(html: string): string {
  return toText(html).replace(/\n{3,}/g, '\n\n').trim();
}

// ---------------------------------------------------------------------------------------------
// Footer and List-Unsubscribe

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function footerHtml(postalAddress: string | null, unsubscribeUrl: string | null): string {
  const parts: string[] = [];
  if (postalAddress) parts.push(`<p style="margin:0 0 8px 0">${escapeHtml(postalAddress.trim()).replace(/\r?\n/g, '<br>')}</p>`);
  if (unsubscribeUrl) parts.push(`<p style="margin:0"><a href="${escapeHtml(unsubscribeUrl)}" style="color:#666666">Unsubscribe</a></p>`);
  if (!parts.length) return '';
  return `<div style="padding:24px 16px;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:18px;color:#666666;text-align:center">${parts.join('')}</div>`;
}

function footerText(postalAddress: string | null, unsubscribeUrl: string | null): string {
  const lines: string[] = [];
  if (postalAddress) lines.push(postalAddress.trim());
  if (unsubscribeUrl) lines.push(`Unsubscribe: ${unsubscribeUrl}`);
  return lines.length ? `\n\n--\n${lines.join('\n')}\n` : '';
}

/**
 * RFC 2369 List-Unsubscribe with RFC 8058 one-click: the header must hold an HTTPS URI for
 * List-Unsubscribe-Post to be valid, so a plain-http URL (a local set-up) gets the first header
 * only. The mailto: alternative goes after the URL, for clients that cannot POST.
 */
function listUnsubscribeHeaders(url: string | null, mailto: string | undefined, warnings: string[]): Record<string, string> {
  const uris: string[] = [];
  if (url) uris.push(`<${url}>`);
  if (mailto) uris.push(`<${mailto.startsWith('mailto:') ? mailto : `mailto:${mailto}`}>`);
  if (!uris.length) return {};
  const headers: Record<string, string> = { 'List-Unsubscribe': uris.join(', ') };
  if (url && /^https:\/\//i.test(url)) headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
  else if (url) warnings.push('unsubscribe URL is not https: List-Unsubscribe-Post (RFC 8058 one-click) left out');
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Tracking

function insertBeforeBodyEnd(html: string, fragment: string): string {
  if (!fragment) return html;
  const at = html.search(/<\/body\s*>(?![\s\S]*<\/body\s*>)/i);
  return at < 0 ? html + fragment : html.slice(0, at) + fragment + html.slice(at);
}

function openPixel(base: string, token: string): string {
  const src = escapeHtml(`${base}/t/o/${encodeURIComponent(token)}`);
  return `<img src="${src}" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" />`;
}

/** The click-tracker URL for one link; the original travels in `u`. */
export function clickUrl(base: string, token: string, url: string): string {
  return `${base}/t/c/${encodeURIComponent(token)}?u=${encodeURIComponent(url)}`;
}

/**
 * An <a> or <area> start tag. Quoted attribute values may contain ">", so the tag body is matched
 * as a run of unquoted characters and whole quoted strings.
 */
const LINK_TAG = /<(a|area)(\s(?:[^>"']|"[^"]*"|'[^']*')*)?>/gi;
const ATTRIBUTE = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

interface Attribute {
  name: string;
  value: string | null;
  start: number;
  end: number;
}

function attributes(tagBody: string): Attribute[] {
  const out: Attribute[] = [];
  for (const m of tagBody.matchAll(ATTRIBUTE)) {
    const raw = m[2] ?? m[3] ?? m[4];
    out.push({ name: m[1]!.toLowerCase(), value: raw === undefined ? null : decodeHTMLAttribute(raw), start: m.index!, end: m.index! + m[0].length });
  }
  return out;
}

function rewriteLinks(html: string, base: string, messageId: string, unsubscribeUrl: string | null, sign: ComposeInput['sign']): string {
  return html.replace(LINK_TAG, (tag: string, name: string, body: string | undefined) => {
    if (!body) return tag;
    const attrs = attributes(body);
    if (attrs.some((a) => a.name === 'data-rapport-notrack')) return tag;
    const href = attrs.find((a) => a.name === 'href');
    if (!href || href.value === null) return tag;
    const url = href.value.trim();
    if (!/^https?:\/\//i.test(url) || url === unsubscribeUrl) return tag;
    const tracked = `href="${escapeHtml(clickUrl(base, sign(messageId, url), url))}"`;
    return `<${name}${body.slice(0, href.start)}${tracked}${body.slice(href.end)}>`;
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers the e-mail adapters share

/**
 * Headers a caller may not set: the adapters set them from the message, and providers refuse them
 * (SendGrid answers 400 on a reserved header) or would let them forge the envelope.
 */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'reply-to', 'sender', 'date', 'message-id', 'return-path', 'mime-version',
  'content-type', 'content-transfer-encoding', 'received', 'dkim-signature', 'x-sg-id', 'x-sg-eid',
]);

/** The caller's extra headers minus reserved names, non-token names and values that could inject a line. */
export function safeHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) continue;
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) continue;
    out[name] = value;
  }
  return out;
}

/** `Name <addr@host>` or `addr@host`, split; null when there is no plausible address in it. */
export function parseMailbox(value: string): { name: string | null; email: string } | null {
  const m = /^\s*(?:"?([^"<]*?)"?\s*<([^<>\s]+)>|([^<>\s]+))\s*$/.exec(value);
  const email = m?.[2] ?? m?.[3];
  if (!email || !isEmailAddress(email)) return null;
  const name = m?.[1]?.trim();
  return { name: name ? name : null, email };
}

/** A pragmatic check (one @, a dotted domain, no spaces); the receiving server is the real judge. */
export function isEmailAddress(value: string): boolean {
  return /^[^\s@<>()[\],;:"]+@[^\s@<>()[\],;:"]+\.[^\s@<>()[\],;:".]{2,}$/.test(value) && value.length <= 254;
}
