import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { startServer } from '../src/server.js';
import { openPglite } from '../src/store/pglite.js';
import { tempDirs, runCli } from './helpers/cli.js';
import { freshDatabaseUrl, TEST_DATABASE_URL } from './helpers/db.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/contacts.csv', import.meta.url));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const tempDir = tempDirs('rapport-cli-');

const rapport = runCli;

async function createTenant(env: Record<string, string>): Promise<{ tenant_id: string; api_key: string }> {
  const res = await rapport(env, 'tenant', 'create', '--name', 'Acme', '--json');
  expect(res).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(res.stdout);
}

/** The fixture in batches of two, so identity conflicts meet stored contacts, not only the batch. */
const importArgs = (tenant: string, ...more: string[]) => ['contacts', 'import', FIXTURE, '--tenant', tenant, '--map', 'phone=Mobile Number', '--batch-size', '2', ...more];

/** What every backend must report for the fixture. */
function expectFixtureSummary(stdout: string) {
  const summary = JSON.parse(stdout);
  expect(summary).toMatchObject({ rows_read: 7, created: 3, updated: 1, rejected: 3, dry_run: false });
  expect(summary.rejected_rows).toEqual([
    { line: 4, reason: 'phone: "12" is not in international format (+ and country code) and the tenant has no default country' },
    { line: 5, reason: 'email: "davi@example" is not an email address' },
    { line: 6, reason: 'email: ana@example.com already belongs to the contact with external_id "c-1"' },
  ]);
}

interface StoredContact {
  external_id: string;
  name: string;
  phone: string | null;
  email: string | null;
  tags: string[];
  attributes: Record<string, unknown>;
}

function expectFixtureContacts(rows: StoredContact[]) {
  const byId = Object.fromEntries(rows.map((r) => [r.external_id, r]));
  expect(Object.keys(byId).sort()).toEqual(['c-1', 'c-2', 'c-6']);
  expect(byId['c-1']).toMatchObject({ name: 'Ana Souza', phone: '+14155552671', email: 'ana@example.com', tags: ['vip', 'beta'], attributes: { Plan: 'gold' } });
  expect(byId['c-2']).toMatchObject({ name: 'Bruno L.', phone: '+14155550102', email: 'bruno@example.com', tags: ['vip', 'newsletter', 'extra'], attributes: { Plan: 'basic' } });
  expect(byId['c-6']).toMatchObject({ name: 'Filipe "Fil" Alves', email: null, tags: ['a', 'b'], attributes: { Plan: 'two\nlines' } });
}

const CONTACTS_SQL = 'select external_id, name, phone, email, tags, attributes from contacts where tenant_id = $1';

describe('rapport CLI on the embedded database', () => {
  it('creates a tenant, prints only {"tenant_id","api_key"} with --json, and manages its API keys', async () => {
    const env = { RAPPORT_DATA_DIR: tempDir() };
    const t = await createTenant(env);
    expect(t.tenant_id).toMatch(UUID);
    expect(t.api_key).toMatch(/^rpk_/);
    expect(Object.keys(t)).toEqual(['tenant_id', 'api_key']);

    const list = await rapport(env, 'tenant', 'list', '--json');
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: t.tenant_id, name: 'Acme', time_zone: 'UTC', default_country: null })]);

    const created = await rapport(env, 'apikey', 'create', '--tenant', t.tenant_id, '--name', 'zapier', '--json');
    const key = JSON.parse(created.stdout);
    expect(key).toEqual({ id: expect.stringMatching(UUID), name: 'zapier', api_key: expect.stringMatching(/^rpk_/) });

    const revoked = await rapport(env, 'apikey', 'revoke', '--tenant', t.tenant_id, key.id);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('Revoked API key "zapier"');
    const keys = JSON.parse((await rapport(env, 'apikey', 'list', '--tenant', t.tenant_id, '--json')).stdout);
    expect(keys.map((k: { name: string; revoked_at: string | null }) => [k.name, k.revoked_at !== null])).toEqual([
      ['default', false],
      ['zapier', true],
    ]);
  }, 60_000);

  it('imports a CSV: counts, reasons with line numbers, a rejects file, and the rows in the database', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const t = await createTenant(env);
    const rejects = join(dir, 'rejected.csv');

    const res = await rapport(env, ...importArgs(t.tenant_id, '--rejects', rejects, '--json'));
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expectFixtureSummary(res.stdout);
    expect(readFileSync(rejects, 'utf8')).toBe(
      [
        'External ID,Name,Mobile Number,Email,Tags,Plan,error',
        'c-3,Carla Dias,12,carla@example.com,,basic,"phone: ""12"" is not in international format (+ and country code) and the tenant has no default country"',
        'c-4,Davi Rocha,+1 415 555 0104,davi@example,,,"email: ""davi@example"" is not an email address"',
        'c-5,Eva Melo,,ana@example.com,,gold,"email: ana@example.com already belongs to the contact with external_id ""c-1"""',
        '',
      ].join('\n'),
    );

    const db = await openPglite(dir);
    try {
      expectFixtureContacts((await db.query<StoredContact>(CONTACTS_SQL, [t.tenant_id])).rows);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('reads a semicolon-separated Windows file (BOM, CRLF, line breaks in cells) and reports true line numbers', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const t = await createTenant(env);
    const file = join(dir, 'export.csv');
    writeFileSync(
      file,
      '\ufeffExternal ID;Name;Phone;Tags\r\n' +
        'w-1;"Ana\r\nSouza";+14155550111;a,b\r\n' + // lines 2-3
        '\r\n' + // line 4, blank
        'w-2;Bo;not a phone;\r\n' + // line 5
        'w-3;Cy;+14155550113;x;surplus\r\n' + // line 6
        `w-4;${'n'.repeat(300)};;\r\n`, // line 7: longer than the API accepts
    );
    const rejects = join(dir, 'rejects.csv');
    const res = await rapport(env, 'contacts', 'import', file, '--tenant', t.tenant_id, '--rejects', rejects, '--json');
    expect(JSON.parse(res.stdout)).toMatchObject({
      rows_read: 4,
      created: 1,
      rejected_rows: [
        { line: 5, reason: expect.stringMatching(/^phone: "not a phone"/) },
        { line: 6, reason: 'row: has 5 cells but the header has 4 columns' },
        { line: 7, reason: 'name: must not have more than 255 characters' },
      ],
    });
    expect(readFileSync(rejects, 'utf8').split('\n')[2]).toBe('w-3;Cy;+14155550113;x;row: has 5 cells but the header has 4 columns;surplus');
  }, 60_000);

  it('explains what to do for a missing file, an unknown tenant and an unknown --map column, and writes nothing', async () => {
    const env = { RAPPORT_DATA_DIR: tempDir() };
    const t = await createTenant(env);
    const missing = await rapport(env, 'contacts', 'import', 'no-such.csv', '--tenant', t.tenant_id);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(/no-such.csv does not exist/);

    const stranger = await rapport(env, 'contacts', 'import', FIXTURE, '--tenant', '00000000-0000-4000-8000-000000000000');
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/tenant 00000000-0000-4000-8000-000000000000 does not exist .*`rapport tenant list`/);

    const badMap = await rapport(env, 'contacts', 'import', FIXTURE, '--tenant', t.tenant_id, '--map', 'phone=Mobile');
    expect(badMap.code).toBe(1);
    expect(badMap.stderr).toContain('the file has no column "Mobile". Its columns are "External ID", "Name", "Mobile Number", "Email", "Tags", "Plan"');

    const dry = await rapport(env, ...importArgs(t.tenant_id, '--dry-run', '--json'));
    expect(JSON.parse(dry.stdout)).toMatchObject({ rows_read: 7, valid: 5, rejected: 2, created: 0, dry_run: true });
    const after = await rapport(env, 'contacts', 'import', FIXTURE, '--tenant', t.tenant_id, '--map', 'phone=Mobile Number', '--json');
    expect(JSON.parse(after.stdout)).toMatchObject({ updated: 0 });
  }, 60_000);

  it('simulates replies: a STOP from a new number, a button press answering a message, a repeat by id, and refusals in option terms', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const t = await createTenant(env);
    const reply = (...args: string[]) => rapport(env, 'sandbox', 'reply', '--tenant', t.tenant_id, ...args);

    const stop = await reply('--from', '+1 415 555 0123', '--text', 'STOP');
    expect(stop).toMatchObject({ code: 0, stderr: '' });
    const lines = stop.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Recorded a simulated sms reply from \+1 415 555 0123 \(inbound message [0-9a-f-]{36}\)\.$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}\+1 415 555 0123 was no contact's: created contact [0-9a-f-]{36}\.$/));
    expect(lines).toContain('  Keyword: opt-out. Consent on sms is revoked; sends queued to the contact on it are cancelled.');
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}Confirmation [0-9a-f-]{36} is queued; a running worker sends it\.$/));
    expect(lines).toContain('  Answers no message: none was sent to the contact on sms in the last 7 days.');

    const help = JSON.parse((await reply('--from', '+14155550123', '--text', 'HELP', '--json')).stdout);
    expect(help).toMatchObject({ duplicate: false, keyword: 'help', confirmation_id: expect.stringMatching(UUID) });
    const contactId: string = help.contact_id;

    const messageId = '0195f4a3-1a2b-7c3d-8e4f-5a6b7c8d9e0f';
    const db = await openPglite(dir);
    try {
      await db.query(
        `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, to_address, provider, provider_message_id, sent_at, created_at, updated_at)
         values ($1, $2, $3, 'whatsapp', 'sent', 'k-1', '{}', '+14155550123', 'sandbox', 'sbx_1', now(), now(), now())`,
        [messageId, t.tenant_id, contactId],
      );
    } finally {
      await db.close();
    }
    const pressArgs = ['--contact', contactId, '--channel', 'whatsapp', '--payload', 'moving_now', '--text', 'Moving now', '--to-message', messageId, '--id', 'press-1'];
    const press = await reply(...pressArgs, '--json');
    expect(press).toMatchObject({ code: 0, stderr: '' });
    const pressed = JSON.parse(press.stdout);
    expect(pressed).toEqual({ id: expect.stringMatching(UUID), contact_id: contactId, duplicate: false, keyword: 'intent', intent: 'moving_now', replied_to: messageId });
    const again = await reply(...pressArgs);
    expect(again.stdout).toBe(`Reply id "press-1" was recorded before (inbound message ${pressed.id}, contact ${contactId}); nothing new was recorded.\n`);

    const check = await openPglite(dir);
    try {
      expect((await check.query<{ status: string }>('select status from messages where id = $1', [messageId])).rows).toEqual([{ status: 'replied' }]);
      expect((await check.query<{ n: number }>('select count(*)::int as n from inbound_messages where tenant_id = $1', [t.tenant_id])).rows[0]!.n).toBe(3);
    } finally {
      await check.close();
    }

    const refusals: [string[], RegExp][] = [
      [['--text', 'hi'], /say who replies: --contact <id> or --from <address>/],
      [['--from', '+14155550123'], /say what the reply is/],
      [['--contact', contactId, '--from', '+14155550123', '--text', 'hi'], /--contact or --from, not both/],
      [['--contact', contactId, '--channel', 'email', '--text', 'hi'], /error: --contact: the contact has no email, needed for a reply on email/],
      [['--contact', contactId, '--text', 'hi', '--to-message', messageId], /error: --to-message: was sent on whatsapp/],
      [['--contact', '00000000-0000-4000-8000-000000000000', '--text', 'hi'], new RegExp(`tenant ${t.tenant_id} has no contact 00000000-0000-4000-8000-000000000000`)],
      [['--from', 'someone@example.com', '--text', 'hi'], /error: --from: is an e-mail address/],
      [['--from', '+14155550123', '--channel', 'fax', '--text', 'hi'], /option '--channel <channel>' argument 'fax' is invalid/],
      [['--contact', 'nope', '--text', 'hi'], /a contact id is a UUID/],
    ];
    for (const [args, message] of refusals) {
      const res = await reply(...args);
      expect({ args, code: res.code, stdout: res.stdout }).toEqual({ args, code: 1, stdout: '' });
      expect(res.stderr).toMatch(message);
    }
  }, 60_000);

  it('refuses a data folder held by another live process that serves nothing, and leaves it untouched', async () => {
    const dir = tempDir();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const lock = JSON.stringify({ pid: holder.pid, startedAt: new Date().toISOString() });
      writeFileSync(join(dir, 'rapport.lock'), lock);
      const res = await rapport({ RAPPORT_DATA_DIR: dir }, 'tenant', 'create', '--name', 'Acme', '--json');
      expect(res).toMatchObject({ code: 1, stdout: '' });
      expect(res.stderr).toContain(`is in use by another Rapport process (pid ${holder.pid})`);
      expect(readdirSync(dir)).toEqual(['rapport.lock']);
      expect(readFileSync(join(dir, 'rapport.lock'), 'utf8')).toBe(lock);
    } finally {
      holder.kill();
    }
  });
});

describe('rapport CLI while a server holds the embedded database', () => {
  it('goes through the server over HTTP, with the same results, and the rows show in the API', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const server = await startServer(loadConfig({ PORT: '0', RAPPORT_DATA_DIR: dir }), { logger: pino({ enabled: false }) });
    try {
      const t = await createTenant(env);
      const human = await rapport(env, ...importArgs(t.tenant_id, '--dry-run'));
      expect(human.stdout).toContain(`through the Rapport server at ${server.url}`);

      const res = await rapport(env, ...importArgs(t.tenant_id, '--json'));
      expect(res.code).toBe(0);
      expectFixtureSummary(res.stdout);

      const api = await fetch(`${server.url}/v1/contacts?limit=100`, { headers: { authorization: `Bearer ${t.api_key}` } });
      expectFixtureContacts(((await api.json()) as { data: StoredContact[] }).data);

      const keys = await rapport(env, 'apikey', 'list', '--tenant', t.tenant_id);
      expect(keys.stdout).toMatch(/default +rpk_/);
      expect(JSON.parse(readFileSync(join(dir, 'rapport.lock'), 'utf8'))).toMatchObject({ pid: process.pid, url: server.url });
    } finally {
      await server.close();
    }
  }, 60_000);
  it('simulates a reply through the server, whose worker sends the confirmation', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const sandbox = new SandboxProvider();
    const server = await startServer(loadConfig({ PORT: '0', RAPPORT_DATA_DIR: dir }), { logger: pino({ enabled: false }), providers: sandboxRegistry(sandbox) });
    try {
      const t = await createTenant(env);
      const reply = (...args: string[]) => rapport(env, 'sandbox', 'reply', '--tenant', t.tenant_id, ...args);
      const res = await reply('--from', '+14155550124', '--text', 'STOP', '--id', 'stop-1', '--json');
      expect(res).toMatchObject({ code: 0, stderr: '' });
      const stop = JSON.parse(res.stdout);
      expect(stop).toMatchObject({ duplicate: false, created_contact: true, keyword: 'opt_out', confirmation_id: expect.stringMatching(UUID) });
      await expect.poll(() => sandbox.sent.map((s) => [s.message.to, s.message.body]), { timeout: 10_000 }).toEqual([['+14155550124', expect.stringContaining('You have been unsubscribed')]]);

      const consent = await fetch(`${server.url}/v1/contacts/${stop.contact_id}/consent`, { headers: { authorization: `Bearer ${t.api_key}` } });
      expect(((await consent.json()) as { current: { channel: string; status: string }[] }).current).toEqual([expect.objectContaining({ channel: 'sms', status: 'revoked' })]);

      const again = await reply('--from', '+14155550124', '--text', 'STOP', '--id', 'stop-1');
      expect(again.stdout).toContain('Reply id "stop-1" was recorded before');
      // The server's refusals come back in the same words as the database's.
      const noEmail = await reply('--contact', stop.contact_id, '--channel', 'email', '--text', 'hi');
      expect(noEmail).toMatchObject({ code: 1, stderr: 'error: --contact: the contact has no email, needed for a reply on email\n' });
      const stranger = await reply('--contact', '00000000-0000-4000-8000-000000000000', '--text', 'hi');
      expect(stranger.stderr).toContain(`tenant ${t.tenant_id} has no contact 00000000-0000-4000-8000-000000000000`);
      const unknownTenant = await rapport(env, 'sandbox', 'reply', '--tenant', '00000000-0000-4000-8000-000000000001', '--from', '+14155550124', '--text', 'hi');
      expect(unknownTenant.stderr).toMatch(/tenant 00000000-0000-4000-8000-000000000001 does not exist in the Rapport server at/);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe.runIf(TEST_DATABASE_URL)('rapport CLI on PostgreSQL (DATABASE_URL)', () => {
  it('simulates a reply', async () => {
    const database = await freshDatabaseUrl();
    try {
      const env = { DATABASE_URL: database.url };
      const t = await createTenant(env);
      const res = await rapport(env, 'sandbox', 'reply', '--tenant', t.tenant_id, '--from', '+14155550125', '--payload', 'moving_now', '--text', 'Moving now', '--json');
      expect(res).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(res.stdout)).toMatchObject({ duplicate: false, created_contact: true, keyword: 'intent', intent: 'moving_now' });
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query('select provider, from_address, payload, intent from inbound_messages where tenant_id = $1', [t.tenant_id]);
        expect(rows).toEqual([{ provider: 'sandbox', from_address: '+14155550125', payload: 'moving_now', intent: 'moving_now' }]);
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  }, 60_000);

  it('imports the same CSV with the same results', async () => {
    const database = await freshDatabaseUrl();
    try {
      const env = { DATABASE_URL: database.url };
      const t = await createTenant(env);
      const res = await rapport(env, ...importArgs(t.tenant_id, '--json'));
      expect(res.code).toBe(0);
      expectFixtureSummary(res.stdout);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        expectFixtureContacts((await client.query<StoredContact>(CONTACTS_SQL, [t.tenant_id])).rows);
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  }, 60_000);
});
