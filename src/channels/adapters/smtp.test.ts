import { createServer, type Server, type Socket } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { welcomeEmail } from '../../../test/helpers/adapters.js';
import type { OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { closeSmtpTransports, smtpAdapter, smtpFailure, type SmtpError } from './smtp.js';

/** A real SMTP server on 127.0.0.1 with AUTH; every accepted message is parsed with mailparser. */
interface TestServer {
  port: number;
  mails: { parsed: ParsedMail; user: unknown; envelope: { from: string; to: string[] } }[];
  connections: number;
  close(): Promise<void>;
}

const USER = 'mailer';
const PASS = 's3cret';

function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

async function startServer(hooks: Partial<Pick<SMTPServerOptions, 'onRcptTo' | 'onMailFrom'>> & { onDataError?: Error } = {}): Promise<TestServer> {
  const state: TestServer = { port: 0, mails: [], connections: 0, close: async () => {} };
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    // No TLS in the test: AUTH over the plain socket, and no STARTTLS offer for the client to take.
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onConnect(_session, cb) {
      state.connections++;
      cb();
    },
    onAuth(auth, _session, cb) {
      if (auth.username === USER && auth.password === PASS) return cb(null, { user: USER });
      cb(smtpError(535, '5.7.8 Authentication credentials invalid'));
    },
    ...hooks,
    onData(stream, session, cb) {
      if (hooks.onDataError) {
        stream.on('end', () => cb(hooks.onDataError));
        stream.resume();
        return;
      }
      simpleParser(stream).then(
        (parsed) => {
          state.mails.push({
            parsed,
            user: session.user,
            envelope: { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) },
          });
          cb();
        },
        (err: Error) => cb(err),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.server.address() as { port: number }).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

let accountSeq = 0;
function account(port: number, over: Partial<ProviderAccount> = {}): ProviderAccount {
  return {
    id: `acc-smtp-${++accountSeq}`,
    tenant_id: 't1',
    name: 'SMTP relay',
    kind: 'smtp',
    channel: 'email',
    priority: 1,
    credentials: { user: USER, pass: PASS },
    config: { host: '127.0.0.1', port, secure: false, from: 'Acme News <news@acme.example>', reply_to: 'help@acme.example' },
    ...over,
  };
}

function ctx(acc: ProviderAccount, timeoutMs = 5000): SendContext {
  return { account: acc, fetch, publicUrl: 'https://rapport.example', timeoutMs };
}

function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return welcomeEmail({
    subject: 'Welcome, Ada — ünïcode ✓',
    body: 'Hello Ada,\nwelcome aboard.',
    html: '<html><body><p>Hello <b>Ada</b>, welcome aboard.</p></body></html>',
    headers: {
      'List-Unsubscribe': '<https://rapport.example/u/tok123>, <mailto:unsub@acme.example>',
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
    ...over,
  });
}

function headerLine(mail: ParsedMail, name: string): string | undefined {
  const line = mail.headerLines.find((h) => h.key === name.toLowerCase())?.line;
  return line?.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

const servers: TestServer[] = [];
async function server(hooks?: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(hooks);
  servers.push(s);
  return s;
}

afterEach(() => closeSmtpTransports());
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('smtp adapter: sending', () => {
  it('delivers subject, text, HTML, List-Unsubscribe and a stable Message-ID, authenticated', async () => {
    const s = await server();
    const acc = account(s.port);
    const res = await smtpAdapter.send(message(), ctx(acc));
    expect(res).toEqual({ ok: true, provider_message_id: '<0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e@acme.example>' });

    expect(s.mails).toHaveLength(1);
    const { parsed, user, envelope } = s.mails[0]!;
    expect(user).toBe(USER);
    expect(envelope).toEqual({ from: 'news@acme.example', to: ['ada@example.org'] });
    expect(parsed.subject).toBe('Welcome, Ada — ünïcode ✓');
    expect(parsed.text?.trim()).toBe('Hello Ada,\nwelcome aboard.');
    expect(parsed.html).toContain('<p>Hello <b>Ada</b>, welcome aboard.</p>');
    expect(parsed.from?.value).toEqual([{ address: 'news@acme.example', name: 'Acme News' }]);
    expect(parsed.replyTo?.value[0]?.address).toBe('help@acme.example');
    expect(parsed.messageId).toBe('<0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e@acme.example>');
    expect(headerLine(parsed, 'List-Unsubscribe')).toBe('<https://rapport.example/u/tok123>, <mailto:unsub@acme.example>');
    expect(headerLine(parsed, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    expect(headerLine(parsed, 'X-Rapport-Message-Id')).toBe('0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e');
  });

  it('sends text-only mail when there is no HTML part', async () => {
    const s = await server();
    const res = await smtpAdapter.send(message({ html: undefined, headers: undefined }), ctx(account(s.port)));
    expect(res.ok).toBe(true);
    expect(s.mails[0]!.parsed.html).toBe(false);
    expect(s.mails[0]!.parsed.text?.trim()).toBe('Hello Ada,\nwelcome aboard.');
  });

  it('drops headers that would inject lines or override the envelope', async () => {
    const s = await server();
    const res = await smtpAdapter.send(
      message({ headers: { 'X-Campaign': 'spring', From: 'evil@attacker.example', 'X-Evil': 'a\r\nBcc: victim@example.org', 'Bad Name': 'x' } }),
      ctx(account(s.port)),
    );
    expect(res.ok).toBe(true);
    const { parsed, envelope } = s.mails[0]!;
    expect(headerLine(parsed, 'X-Campaign')).toBe('spring');
    expect(parsed.from?.value[0]?.address).toBe('news@acme.example');
    expect(headerLine(parsed, 'X-Evil')).toBeUndefined();
    expect(parsed.bcc).toBeUndefined();
    expect(envelope.to).toEqual(['ada@example.org']);
  });

  it('reuses one pooled connection per account, and opens a new pool when the settings change', async () => {
    const s = await server();
    const acc = account(s.port);
    for (let i = 0; i < 3; i++) expect((await smtpAdapter.send(message({ id: `m-${i}` }), ctx(acc))).ok).toBe(true);
    expect(s.connections).toBe(1);
    // The sender is per message, not per connection: the pool stays.
    const newSender = { ...acc, config: { ...acc.config, from: 'news@other.example' } };
    expect((await smtpAdapter.send(message({ id: 'm-3' }), ctx(newSender))).ok).toBe(true);
    expect(s.connections).toBe(1);
    const rotated = { ...newSender, config: { ...newSender.config, max_connections: 2 } };
    expect((await smtpAdapter.send(message({ id: 'm-4' }), ctx(rotated))).ok).toBe(true);
    expect(s.connections).toBe(2);
    expect(s.mails.map((m) => m.parsed.messageId)).toEqual([
      '<m-0@acme.example>',
      '<m-1@acme.example>',
      '<m-2@acme.example>',
      '<m-3@other.example>',
      '<m-4@other.example>',
    ]);
  });

  it('refuses an address that is not one before touching the network', async () => {
    const res = await smtpAdapter.send(message({ to: 'not an address' }), ctx(account(1)));
    expect(res).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
  });
});

describe('smtp adapter: failures', () => {
  it('550 user unknown on RCPT TO is an invalid recipient, for good', async () => {
    const s = await server({
      onRcptTo(address, _session, cb) {
        if (address.address.startsWith('nobody')) return cb(smtpError(550, '5.1.1 <nobody@example.org>: Recipient address rejected: User unknown'));
        cb();
      },
    });
    const res = await smtpAdapter.send(message({ to: 'nobody@example.org' }), ctx(account(s.port)));
    expect(res).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient', provider_code: '550' });
    // The pooled connection survives a refused recipient.
    expect((await smtpAdapter.send(message({ to: 'ada@example.org' }), ctx(account(s.port)))).ok).toBe(true);
  });

  it('451 on RCPT TO is temporary', async () => {
    const s = await server({ onRcptTo: (_a, _s, cb) => cb(smtpError(451, '4.7.1 Greylisted, please try again later')) });
    const res = await smtpAdapter.send(message(), ctx(account(s.port)));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'server', provider_code: '451' });
  });

  it('554 content rejection after DATA is rejected, for good', async () => {
    const s = await server({ onDataError: smtpError(554, '5.7.1 Message rejected as spam') });
    const res = await smtpAdapter.send(message(), ctx(account(s.port)));
    expect(res).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '554' });
  });

  it('a refused sender is our configuration, not the message', async () => {
    const s = await server({ onMailFrom: (_a, _s, cb) => cb(smtpError(553, '5.7.1 Sender address rejected: not owned by user')) });
    const res = await smtpAdapter.send(message(), ctx(account(s.port)));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'config' });
  });

  it('wrong credentials are an auth failure', async () => {
    const s = await server();
    const res = await smtpAdapter.send(message(), ctx(account(s.port, { credentials: { user: USER, pass: 'wrong' } })));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'auth' });
    expect(s.mails).toHaveLength(0);
  });

  it('a closed port is a network failure', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const res = await smtpAdapter.send(message(), ctx(account(port)));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'network' });
  });

  it('a server that never greets is a timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const res = await smtpAdapter.send(message(), ctx(account(port), 300));
    expect(res).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(3000);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('classifies SMTP replies', () => {
    const err = (responseCode: number, response: string, command = 'RCPT TO', code = 'EENVELOPE'): SmtpError =>
      Object.assign(new Error(response), { code, response, responseCode, command });
    const cases: [SmtpError, string, boolean][] = [
      [err(550, '550 5.1.1 The email account that you tried to reach does not exist'), 'invalid_recipient', true],
      [err(550, '550 No such user here'), 'invalid_recipient', true],
      [err(553, '553 sorry, mailbox name not allowed: invalid address'), 'invalid_recipient', true],
      [err(551, '551 User not local; please try <forward@example.org>'), 'rejected', true],
      [err(550, '550 5.7.1 Relaying denied'), 'config', false],
      [err(552, '552 5.2.2 Mailbox full'), 'rejected', true],
      [err(550, '550 5.7.26 Unauthenticated email is not accepted'), 'rejected', true],
      [err(554, '554 5.7.1 Spam detected', 'DATA', 'EMESSAGE'), 'rejected', true],
      [err(421, '421 4.7.0 Try again later', 'DATA', 'EMESSAGE'), 'server', false],
      [err(452, '452 4.2.2 Mailbox full'), 'server', false],
      [err(535, '535 5.7.8 Bad credentials', 'AUTH PLAIN', 'EAUTH'), 'auth', false],
      [Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' }), 'timeout', false],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET' }), 'network', false],
      [Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }), 'network', false],
    ];
    for (const [e, code, permanent] of cases) expect(smtpFailure(e, 1000), e.message).toMatchObject({ code, permanent });
  });
});

describe('smtp adapter: check()', () => {
  it('accepts a complete account', () => {
    expect(smtpAdapter.check({ user: 'u', pass: 'p' }, { host: 'smtp.example.com', port: 587, from: 'News <news@example.com>' })).toEqual([]);
    expect(smtpAdapter.check({}, { host: 'localhost', from: 'news@example.com' })).toEqual([]);
  });

  it('names each bad field', () => {
    const problems = smtpAdapter.check({ user: 'u' }, { port: 70000, secure: 'yes', from: 'not-an-address', reply_to: 'nope', max_connections: 0 });
    expect(problems.map((p) => p.field).sort()).toEqual(
      ['config.from', 'config.host', 'config.max_connections', 'config.port', 'config.reply_to', 'config.secure', 'credentials.pass'].sort(),
    );
  });
});
