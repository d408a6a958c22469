import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { readClickToken, readOpenToken, readUnsubscribeToken } from '../../channels/email-links.js';
import { effectiveConsent } from '../../core/consent.js';
import { NotFoundError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import { recordConsent } from '../../store/consent.js';
import { recordStatuses } from '../../store/message-status.js';
import { loadConsent } from '../../store/step-batch.js';
import type { RouteDeps } from '../app.js';

/**
 * The links inside e-mail, served outside /v1 and without an API key: whoever holds the mail holds
 * the link, and the signed token in it is the only credential (see channels/email-links.ts). The
 * token names a message, and the message row names its tenant, so every action lands in the
 * message's own tenant.
 *
 *   GET  /t/o/:token         open pixel: always the GIF, records 'opened' when the token is good
 *   GET  /t/c/:token?u=url   click: records 'clicked' and redirects, only if the token signs u
 *   GET  /u/:token           unsubscribe page; changes nothing (mail scanners fetch every link)
 *   POST /u/:token           unsubscribes: the page's button, or RFC 8058 one-click from the mailbox
 */

/** 1×1 transparent GIF89a: one-entry palette, transparency on, one LZW-coded pixel. */
const PIXEL = Buffer.from('47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b', 'hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The consent topic a message went out under when it named none, as the dispatcher assumes. */
const DEFAULT_TOPIC = 'marketing';
const FORM_BODY_LIMIT = 16 * 1024;

interface LinkedMessage {
  id: string;
  tenant_id: string;
  contact_id: string;
  topic: string | null;
  to_address: string | null;
  tenant_name: string;
}

async function linkedMessage(db: Db, id: string | null): Promise<LinkedMessage | null> {
  if (!id || !UUID.test(id)) return null;
  const { rows } = await db.query<LinkedMessage>(
    `select m.id, m.tenant_id, m.contact_id, m.topic, m.to_address, t.name as tenant_name
       from messages m join tenants t on t.id = m.tenant_id where m.id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

export const emailLinkRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db, clock, secrets }) => {
  // A one-click POST comes form-encoded or multipart; the body only tells which kind of POST it
  // was, so any type is taken as bytes, here and not in the JSON API.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.get<{ Params: { token: string } }>('/t/o/:token', { schema: { hide: true } }, async (req, reply) => {
    const id = secrets ? readOpenToken(secrets, req.params.token) : null;
    if (id && UUID.test(id)) {
      try {
        await db.transaction((tx) => recordStatuses(tx, [{ message_id: id, status: 'opened', at: clock.now() }]));
      } catch (err) {
        // The reader sees an image either way; a lost open is not worth a broken one.
        req.log.error({ err, message_id: id }, 'recording an e-mail open failed');
      }
    }
    return reply
      .header('content-type', 'image/gif')
      .header('cache-control', 'no-store, no-cache, must-revalidate, max-age=0')
      .header('pragma', 'no-cache')
      .header('expires', '0')
      .send(PIXEL);
  });

  app.get<{ Params: { token: string }; Querystring: { u?: unknown } }>('/t/c/:token', { schema: { hide: true } }, async (req, reply) => {
    const url = typeof req.query.u === 'string' ? req.query.u : null;
    const id = secrets && url !== null && isWebUrl(url) ? readClickToken(secrets, req.params.token, url) : null;
    if (!id || url === null) return page(reply, 400, 'Broken link', '<p>This link is not valid. Copy the address from the e-mail again, or open the sender’s website directly.</p>');
    if (UUID.test(id)) {
      try {
        await db.transaction((tx) => recordStatuses(tx, [{ message_id: id, status: 'clicked', at: clock.now(), detail: { url } }]));
      } catch (err) {
        // The reader still gets where the link said; only the statistic is lost.
        req.log.error({ err, message_id: id }, 'recording an e-mail click failed');
      }
    }
    // The destination was signed with the message; redirecting there is what the e-mail promised.
    return reply.header('cache-control', 'no-store').redirect(new URL(url).href, 302);
  });

  app.get<{ Params: { token: string } }>('/u/:token', { schema: { hide: true } }, async (req, reply) => {
    const found = await unsubscribeTarget(req.params.token);
    if ('status' in found) return page(reply, found.status, found.title, found.html);
    const { message: m, topic } = found;
    return page(
      reply,
      200,
      'Unsubscribe',
      `<p>Unsubscribe <strong>${escapeHtml(maskAddress(m.to_address))}</strong> from ${escapeHtml(m.tenant_name)}’s emails${topicNote(topic)}?</p>
<form method="post"><input type="hidden" name="confirm" value="1"><button type="submit">Unsubscribe</button></form>`,
    );
  });

  app.post<{ Params: { token: string } }>('/u/:token', { schema: { hide: true } }, async (req, reply) => {
    const found = await unsubscribeTarget(req.params.token);
    if ('status' in found) return page(reply, found.status, found.title, found.html);
    const { message: m, topic } = found;
    const [held] = (await loadConsent(db, [{ tenant_id: m.tenant_id, contact_id: m.contact_id }])).values();
    // A second POST (a mailbox retrying, a double click) finds the revocation standing and adds nothing.
    if (effectiveConsent(held ?? [], 'email', topic).decidedBy?.status !== 'revoked') {
      try {
        await recordConsent(
          db,
          m.tenant_id,
          m.contact_id,
          { channel: 'email', topic, status: 'revoked', source: 'unsubscribe_link', proof: { message_id: m.id, method: isOneClick(req.body) ? 'one_click' : 'page' } },
          'unsubscribe_link',
          clock.now(),
        );
      } catch (err) {
        if (err instanceof NotFoundError) return page(reply, 404, 'Link expired', '<p>There is nothing left to unsubscribe from this link.</p>');
        throw err;
      }
    }
    // RFC 8058: a mailbox POSTing one-click expects a 2xx here and follows no redirect.
    return page(
      reply,
      200,
      'Unsubscribed',
      `<p><strong>${escapeHtml(maskAddress(m.to_address))}</strong> will no longer receive ${escapeHtml(m.tenant_name)}’s emails${topicNote(topic)}.</p>`,
    );
  });

  /**
   * The message and the consent topic an unsubscribe token stands for. The topic is the one the
   * message was sent under, whose consent let it out: revoking it stops that list. A channel-wide
   * revocation would also stop receipts and password resets, which a marketing opt-out must not.
   */
  async function unsubscribeTarget(token: string): Promise<{ message: LinkedMessage; topic: string } | { status: number; title: string; html: string }> {
    const id = secrets ? readUnsubscribeToken(secrets, token) : null;
    if (!id) return { status: 400, title: 'Broken link', html: '<p>This unsubscribe link is not valid. Use the link from the most recent e-mail you received.</p>' };
    const m = await linkedMessage(db, id);
    if (!m) return { status: 404, title: 'Link expired', html: '<p>There is nothing left to unsubscribe from this link.</p>' };
    return { message: m, topic: m.topic ?? DEFAULT_TOPIC };
  }
};

function isWebUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** True when the body is RFC 8058's `List-Unsubscribe=One-Click`, form-encoded or multipart. */
function isOneClick(body: unknown): boolean {
  if (!Buffer.isBuffer(body)) return false;
  const text = body.toString('utf8');
  if (new URLSearchParams(text).get('List-Unsubscribe') === 'One-Click') return true;
  return /name="?List-Unsubscribe"?\r?\n(?:[^\r\n]+\r?\n)*\r?\n\s*One-Click\s*(?:\r?\n|$)/i.test(text);
}

/** `ada@example.org` → `a***@example.org`: enough for its owner to recognise, little for anyone else. */
export function maskAddress(address: string | null): string {
  if (!address) return 'this address';
  const at = address.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${address[0]}***${address.slice(at)}`;
}

function topicNote(topic: string): string {
  return topic === DEFAULT_TOPIC ? '' : ` (${escapeHtml(topic)})`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A small self-contained page: no scripts, no outside resources, nothing cached or indexed. */
function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#222;background:#f6f6f6;margin:0;padding:48px 16px}main{max-width:480px;margin:0 auto;background:#fff;border-radius:8px;padding:32px;box-shadow:0 1px 3px rgba(0,0,0,.1)}h1{font-size:22px;margin:0 0 16px}button{font:inherit;padding:10px 20px;border:0;border-radius:6px;background:#222;color:#fff;cursor:pointer}</style>
</head><body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>
`;
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-robots-tag', 'noindex')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    .send(html);
}
