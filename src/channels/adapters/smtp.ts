import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { SMTPPoolOptions, SMTPPoolSentMessageInfo, Transporter } from 'nodemailer';
import { failure } from '../http.js';
import { isEmailAddress, parseMailbox, safeHeaders } from '../email-compose.js';
import type { AccountProblem, ChannelAdapter, OutgoingMessage, SendContext, SendResult } from '../types.js';

/**
 * Plain SMTP through any relay (Postfix, Mailgun/SES/Postmark SMTP endpoints, a company server).
 *
 *   credentials  user?, pass?           AUTH PLAIN/LOGIN; both or neither
 *   config       host                   required
 *                port                   default 587 (465 when secure)
 *                secure                 implicit TLS from the first byte; default: port === 465.
 *                                       Otherwise STARTTLS is used whenever the server offers it.
 *                from                   `addr@host` or `Name <addr@host>`, required
 *                reply_to               optional
 *                max_connections        pooled connections per account, default 3
 *
 * One pooled transport per account, kept while its settings stay the same: a new SMTP
 * connection costs a TCP + TLS + EHLO + AUTH round trip per message otherwise. The pool is the
 * only thing this adapter keeps between calls; it holds connections, not message state.
 *
 * SMTP has no idempotency key: a connection lost after DATA was accepted but before the reply
 * arrived leaves the message delivered and reported as a timeout, so a retry may send it twice.
 * The Message-ID (`<message id@from domain>`) is the same on every attempt, which lets receivers
 * and threading see the duplicates for what they are.
 *
 * Failures: 5xx "no such user" (enhanced status 5.1.x, or 550/551/553 with user-unknown wording)
 * is invalid_recipient; any other 5xx is rejected, except a refused sender or relay (config);
 * 4xx is a temporary server failure; AUTH failures are auth; connection errors are network and
 * a silent server is timeout. There is no inbound side: bounces come back as mail to `from`.
 */

const DEFAULT_PORT = 587;
const DEFAULT_MAX_CONNECTIONS = 3;
/** Accounts whose pools are kept open; the least recently used one is closed beyond this. */
const MAX_POOLS = 64;

interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  user: string | null;
  pass: string | null;
  maxConnections: number;
  timeoutMs: number;
}

type Transport = Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>;

const pools = new Map<string, { key: string; transport: Transport }>();

function settingsOf(credentials: Record<string, string>, config: Record<string, unknown>, timeoutMs: number): SmtpSettings {
  const port = typeof config.port === 'number' ? config.port : DEFAULT_PORT;
  return {
    host: String(config.host ?? ''),
    port,
    secure: typeof config.secure === 'boolean' ? config.secure : port === 465,
    user: credentials.user || null,
    pass: credentials.pass || null,
    maxConnections: typeof config.max_connections === 'number' ? config.max_connections : DEFAULT_MAX_CONNECTIONS,
    timeoutMs,
  };
}

/** The pooled transport for an account, replaced (and the old one closed) when its settings change. */
function transportFor(accountId: string, s: SmtpSettings): Transport {
  // The password is part of the key (hashed, never kept in clear) so rotating it opens a new pool.
  const key = createHash('sha256').update(JSON.stringify(s)).digest('hex');
  const cached = pools.get(accountId);
  if (cached && cached.key === key) {
    pools.delete(accountId);
    pools.set(accountId, cached);
    return cached.transport;
  }
  if (cached) {
    cached.transport.close();
    pools.delete(accountId);
  }
  const transport = nodemailer.createTransport({
    pool: true,
    host: s.host,
    port: s.port,
    secure: s.secure,
    ...(s.user && s.pass ? { auth: { user: s.user, pass: s.pass } } : {}),
    maxConnections: s.maxConnections,
    connectionTimeout: s.timeoutMs,
    greetingTimeout: s.timeoutMs,
    // Each send is bounded by its own abort signal; this only closes connections that went quiet.
    socketTimeout: Math.max(s.timeoutMs, 60_000),
    idleTimeout: 30_000,
    // A message whose connection drops mid-send is failed back to the dispatcher, which owns retries.
    maxRequeues: 0,
  });
  pools.set(accountId, { key, transport });
  while (pools.size > MAX_POOLS) {
    const [oldest, entry] = pools.entries().next().value as [string, { transport: Transport }];
    entry.transport.close();
    pools.delete(oldest);
  }
  return transport;
}

/** Closes every pooled SMTP connection: at shutdown, and after tests. */
export function closeSmtpTransports(): void {
  for (const { transport } of pools.values()) transport.close();
  pools.clear();
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  if (typeof config.host !== 'string' || !config.host.trim()) problems.push({ field: 'config.host', message: 'required: the SMTP server host name' });
  if (config.port !== undefined && !(Number.isInteger(config.port) && (config.port as number) >= 1 && (config.port as number) <= 65535)) {
    problems.push({ field: 'config.port', message: 'must be an integer port number (587, 465, 25...)' });
  }
  if (config.secure !== undefined && typeof config.secure !== 'boolean') problems.push({ field: 'config.secure', message: 'must be true or false' });
  if (typeof config.from !== 'string' || !parseMailbox(config.from)) problems.push({ field: 'config.from', message: 'required: "addr@example.com" or "Name <addr@example.com>"' });
  if (config.reply_to !== undefined && (typeof config.reply_to !== 'string' || !parseMailbox(config.reply_to))) {
    problems.push({ field: 'config.reply_to', message: 'must be an e-mail address' });
  }
  if (config.max_connections !== undefined && !(Number.isInteger(config.max_connections) && (config.max_connections as number) >= 1 && (config.max_connections as number) <= 50)) {
    problems.push({ field: 'config.max_connections', message: 'must be an integer from 1 to 50' });
  }
  if (Boolean(credentials.user) !== Boolean(credentials.pass)) {
    problems.push({ field: credentials.user ? 'credentials.pass' : 'credentials.user', message: 'user and pass go together: give both or neither' });
  }
  return problems;
}

/** The Message-ID Rapport gives a message: stable across retries, in the sender's own domain. */
export function smtpMessageId(messageId: string, from: string): string {
  const domain = parseMailbox(from)?.email.split('@')[1] ?? 'rapport.invalid';
  return `<${messageId}@${domain}>`;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { config, credentials } = ctx.account;
  if (!msg.to || !isEmailAddress(msg.to)) return failure('invalid_recipient', `not an e-mail address: ${JSON.stringify(msg.to)}`);
  if (typeof config.from !== 'string' || typeof config.host !== 'string') return failure('config', 'account has no config.host or config.from');
  const transport = transportFor(ctx.account.id, settingsOf(credentials, config, ctx.timeoutMs));
  const messageId = smtpMessageId(msg.id, config.from);
  try {
    const info = await transport.sendMail({
      from: config.from,
      to: msg.to,
      ...(typeof config.reply_to === 'string' ? { replyTo: config.reply_to } : {}),
      subject: msg.subject ?? '',
      ...(msg.body || !msg.html ? { text: msg.body ?? '' } : {}),
      ...(msg.html ? { html: msg.html } : {}),
      messageId,
      headers: { ...safeHeaders(msg.headers), 'X-Rapport-Message-Id': msg.id },
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
    if (info.rejected.length) return failure('invalid_recipient', `recipient refused: ${info.rejected.join(', ')}`, { permanent: true });
    return { ok: true, provider_message_id: info.messageId || messageId };
  } catch (err) {
    return smtpFailure(err as SmtpError, ctx.timeoutMs);
  }
}

/** What nodemailer attaches to its errors. */
export interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

const UNKNOWN_USER = /(no such|unknown|invalid|does ?n[o']t exist|not exist|not found|unavailable|disabled|inactive|unrouteable|undeliverable).{0,40}(user|mailbox|recipient|address|account)|(user|mailbox|recipient|address|account).{0,40}(unknown|not found|does ?n[o']t exist|not exist|no such|invalid|unavailable|disabled|inactive|rejected)/i;

/** Maps an SMTP exchange's error to the dispatcher's failure classes. */
export function smtpFailure(err: SmtpError, timeoutMs: number): Extract<SendResult, { ok: false }> {
  const reply = err.response ?? err.message;
  const code = err.responseCode;
  const provider = code ? { provider_code: String(code) } : {};
  if (err.code === 'EAUTH' || err.code === 'ENOAUTH') return failure('auth', `SMTP authentication failed: ${reply}`, provider);
  if (err.code === 'EABORT' || err.code === 'ETIMEDOUT') return failure('timeout', `SMTP server did not answer within ${timeoutMs} ms`);
  if (code && code >= 500) {
    const enhanced = /\b5\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
    if (err.command === 'MAIL FROM' || /relay/i.test(reply)) return failure('config', `SMTP server refused the sender: ${reply}`, provider);
    const badMailbox = enhanced
      ? enhanced[1] === '1' && ['0', '1', '2', '3', '6', '10'].includes(enhanced[2]!)
      : [550, 551, 553].includes(code) && UNKNOWN_USER.test(reply);
    if (badMailbox) return failure('invalid_recipient', reply, provider);
    return failure('rejected', reply, provider);
  }
  if (code && code >= 400) return failure('server', reply, provider);
  if (err.code === 'EENVELOPE' && /recipient/i.test(err.message)) return failure('invalid_recipient', err.message);
  if (err.code === 'ECONFIG' || (err.code === 'EENVELOPE' && /sender/i.test(err.message))) return failure('config', err.message);
  return failure('network', `SMTP ${err.code ?? 'error'}: ${err.message}`);
}

export const smtpAdapter: ChannelAdapter = {
  kind: 'smtp',
  channels: ['email'],
  defaultRatePerSecond: 10,
  check,
  send,
};
