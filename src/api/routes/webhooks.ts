import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChannelAdapter, InboundItem, InboundRequest, ProviderAccount, ProviderKind } from '../../channels/types.js';
import type { Clock } from '../../engine/clock.js';
import { recordInbound } from '../../engine/inbound.js';
import type { SecretBox } from '../../core/secrets.js';
import type { Db } from '../../store/db.js';
import { findAccountByRoute, providerAnswersKeywords } from '../../store/provider-accounts.js';
import { sendError } from '../errors.js';

/**
 * Providers' webhooks: `/webhooks/<kind>` (the account found by the number or id in the request)
 * and `/webhooks/<kind>/<account_id>` (the account named in the URL). No API key: a request is
 * trusted only once the account's adapter has checked its signature against the exact bytes
 * received, so bodies are kept raw here and parsed only for the adapter's convenience.
 *
 *   404  no such provider, or no account the request belongs to (nothing to verify it against)
 *   401  the signature is missing or wrong; nothing changed
 *   200  recorded (or recognised as a repeat); the body is what the provider expects
 */

export interface WebhookDeps {
  db: Db;
  clock: Clock;
  secrets?: SecretBox | null;
  adapters?: ReadonlyMap<ProviderKind, ChannelAdapter>;
  publicUrl?: string;
}

/**
 * Kinds whose accounts may receive on another kind's URL: a Twilio number that sends SMS and
 * WhatsApp is configured with one webhook for both.
 */
const SHARED_URLS: Partial<Record<ProviderKind, ProviderKind[]>> = {
  twilio: ['twilio', 'twilio_whatsapp'],
  twilio_whatsapp: ['twilio_whatsapp', 'twilio'],
};

export async function webhookRoutes(app: FastifyInstance, deps: WebhookDeps): Promise<void> {
  // Signatures cover the bytes as sent: every body stays a Buffer in this scope.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const handler = async (req: FastifyRequest<{ Params: { kind: string; account?: string } }>, reply: FastifyReply) => {
    const kind = req.params.kind as ProviderKind;
    const adapter = deps.adapters?.get(kind);
    if (!adapter?.inbound) return sendError(reply, 404, 'not_found', `no webhook for provider ${JSON.stringify(req.params.kind)}`);
    const inbound = toInboundRequest(req, deps.publicUrl, deps.clock.now());

    let keys: ReturnType<typeof adapter.inbound.route>;
    try {
      keys = adapter.inbound.route(inbound);
    } catch (err) {
      // Nothing in the request is trusted yet: one that cannot even be routed belongs to no account.
      req.log.warn({ err, kind }, 'webhook could not be routed');
      keys = null;
    }
    const account = keys ? await findAccountByRoute(deps.db, deps.secrets ?? null, SHARED_URLS[kind] ?? [kind], keys) : null;
    if (!account) {
      req.log.warn({ kind, keys }, 'webhook for no known account');
      return sendError(reply, 404, 'unknown_account', 'no provider account of this Rapport matches this request (receiving number, phone_number_id or account id in the URL)');
    }
    const own = deps.adapters?.get(account.kind)?.inbound ?? adapter.inbound;

    if (inbound.method === 'GET') {
      const answer = own.handshake?.(inbound, account) ?? null;
      if (!answer) return sendError(reply, 405, 'method_not_allowed', 'this webhook takes POST');
      return answer.status === 401 ? unauthorized(reply, account, req) : sendAnswer(reply, answer);
    }
    if (!own.verify(inbound, account)) return unauthorized(reply, account, req);

    let items: InboundItem[];
    try {
      items = own.parse(inbound, account);
    } catch (err) {
      req.log.warn({ err, account_id: account.id }, 'webhook body could not be parsed');
      return sendError(reply, 400, 'invalid_request', `the ${account.kind} webhook body could not be read: ${(err as Error).message}`);
    }
    if (items.length) {
      const outcome = await recordInbound(
        deps.db,
        { tenant_id: account.tenant_id, provider: account.kind, account_id: account.id, provider_answers_keywords: providerAnswersKeywords(account) },
        items,
        deps.clock.now(),
      );
      req.log.info(
        { account_id: account.id, tenant_id: account.tenant_id, receipts: outcome.receipts, pending: outcome.pending, messages: outcome.messages.length, duplicates: outcome.messages.filter((m) => m.duplicate).length },
        'webhook recorded',
      );
    }
    return sendAnswer(reply, own.respond?.(inbound, account, items) ?? { status: 200 });
  };

  for (const url of ['/webhooks/:kind', '/webhooks/:kind/:account']) {
    app.route({ method: ['GET', 'POST'], url, schema: { hide: true }, handler });
  }
}

function unauthorized(reply: FastifyReply, account: ProviderAccount, req: FastifyRequest): FastifyReply {
  req.log.warn({ account_id: account.id, kind: account.kind }, 'webhook signature did not verify');
  return sendError(reply, 401, 'invalid_signature', `the request is not signed by ${account.kind} for this account`);
}

function sendAnswer(reply: FastifyReply, answer: { status: number; contentType?: string; body?: string }): FastifyReply {
  reply.status(answer.status);
  if (answer.contentType) reply.type(answer.contentType);
  return reply.send(answer.body ?? '');
}

/**
 * The request as the provider made it. The URL is the one the provider signed: Rapport's public
 * URL when configured (behind a proxy the Host header is the proxy's idea), else rebuilt from the
 * forwarded or direct scheme and host.
 */
function toInboundRequest(req: FastifyRequest, publicUrl: string | undefined, now: Date): InboundRequest {
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  const contentType = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const query: Record<string, string> = {};
  const search = new URL(req.url, 'http://localhost').searchParams;
  for (const [k, v] of search) query[k] = v;
  const out: InboundRequest = { method: req.method === 'GET' ? 'GET' : 'POST', url: publicUrlOf(req, publicUrl), headers, rawBody: raw, query, receivedAt: now };
  if (contentType === 'application/x-www-form-urlencoded') {
    const form: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) form[k] = v;
    out.form = form;
  } else if (contentType === 'application/json' || contentType.endsWith('+json')) {
    try {
      out.json = JSON.parse(raw.toString('utf8'));
    } catch {
      // Left to the adapter, which reads rawBody after verifying and reports what it cannot parse.
    }
  }
  return out;
}

function publicUrlOf(req: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl) return `${publicUrl.replace(/\/+$/, '')}${req.url}`;
  const proto = String(req.headers['x-forwarded-proto'] ?? req.protocol).split(',')[0]!.trim();
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost').split(',')[0]!.trim();
  return `${proto}://${host}${req.url}`;
}
