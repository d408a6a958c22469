import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/api/app.js';
import { loadConfig } from '../src/config.js';
import { systemClock } from '../src/engine/clock.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { startServer } from '../src/server.js';
import { createContact } from '../src/store/contacts.js';
import { readLock } from '../src/store/datadir-lock.js';
import type { Db } from '../src/store/db.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { tempDirs, runCli } from './helpers/cli.js';
import { freshDatabaseUrl, TEST_DATABASE_URL } from './helpers/db.js';
import { allowAnyTime, grantAll, publishJourney } from './helpers/journeys.js';

/**
 * `rapport campaigns` on each backend: the embedded database opened by the command, a running
 * server that holds it (over HTTP), and PostgreSQL. One scenario, the same answers from each.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CSV_HEADER = 'contact_id,external_id,name,phone,email,occurrence_key,state,detail,reason,message_id,enrollment_id,sent_at,delivered_at,replied_at';

const tempDir = tempDirs('rapport-cli-campaigns-');

const rapport = runCli;

interface Setup {
  env: Record<string, string>;
  /** Runs fn on the database, however this backend reaches it. */
  withDb<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Until the campaign's due sends have gone out (a worker loop, here or in the server). */
  drain(tenant: string, campaign: string): Promise<void>;
  /** The API's own CSV of the campaign's recipients. */
  apiCsv(tenant: string, campaign: string, state?: string): Promise<string>;
}

const ADMIN = 'cli-campaigns-admin-token-0123456789';

/** The API's CSV answer, from an app built on the database (for backends with no server running). */
async function injectedCsv(db: Db, tenant: string, campaign: string, state?: string): Promise<string> {
  const app = await buildApp({ db, clock: systemClock, adminToken: ADMIN });
  try {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/campaigns/${campaign}/recipients?format=csv${state ? `&state=${state}` : ''}`,
      headers: { authorization: `Bearer ${ADMIN}`, 'x-rapport-tenant': tenant },
    });
    expect(res.statusCode).toBe(200);
    return res.body;
  } finally {
    await app.close();
  }
}

async function workerDrain(db: Db): Promise<void> {
  await new Worker({ db, clock: systemClock, providers: sandboxRegistry() }).drain();
}

/** Everything the commands do, with what each must print; run once per backend. */
async function scenario(s: Setup): Promise<void> {
  const dir = tempDir();
  const run = (...args: string[]) => rapport(s.env, ...args);
  const created = await run('tenant', 'create', '--name', 'Shop', '--json');
  expect(created).toMatchObject({ code: 0, stderr: '' });
  const tenant: string = JSON.parse(created.stdout).tenant_id;
  const T = ['--tenant', tenant];

  const contacts = await s.withDb(async (db) => {
    const ids: string[] = [];
    for (const [i, name] of ['Ana', 'Bruno', 'Carla, "C"'].entries()) ids.push((await createContact(db, tenant, { phone: `+1415555020${i}`, name, email: `c${i}@example.com` }, {}, new Date())).id);
    await grantAll(db, tenant, ids, ['sms']);
    await allowAnyTime(db, tenant);
    return ids;
  });

  // No campaigns yet.
  expect((await run('campaigns', 'list', ...T)).stdout).toBe(`Tenant ${tenant} has no campaigns. Create one with  rapport campaigns create <file> --tenant ${tenant}\n`);

  // Create from YAML, as a draft.
  const yaml = join(dir, 'spring.yaml');
  writeFileSync(
    yaml,
    [
      'name: spring',
      'type: win_back',
      'audience:',
      `  contact_ids: [${contacts.join(', ')}]`,
      'action:',
      '  send:',
      '    channel: sms',
      '    content:',
      '      body: "Spring is here, {{ contact.name }}"',
      'throttle:',
      '  per_minute: 2',
      '',
    ].join('\n'),
  );
  const create = await run('campaigns', 'create', yaml, ...T);
  expect(create).toMatchObject({ code: 0, stderr: '' });
  const id = /\(([0-9a-f-]{36})\)/.exec(create.stdout)![1]!;
  expect(create.stdout).toBe(`Created campaign "spring" (${id}).\nIt is a draft. Start it with  rapport campaigns start ${id} --tenant ${tenant}\n`);

  const listed = JSON.parse((await run('campaigns', 'list', ...T, '--json')).stdout);
  expect(listed).toEqual([expect.objectContaining({ id, name: 'spring', type: 'win_back', status: 'draft', next_run_at: null, throttle: { per_minute: 2 } })]);
  const table = (await run('campaigns', 'list', ...T)).stdout.split('\n');
  expect(table[0]).toMatch(/^ID +NAME +TYPE +STATUS +NEXT RUN +CREATED$/);
  expect(table[1]).toMatch(new RegExp(`^${id} +spring +win_back +draft +- +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC$`));
  expect((await run('campaigns', 'list', ...T, '--status', 'running')).stdout).toBe(`Tenant ${tenant} has no running campaigns.\n`);

  const draft = await run('campaigns', 'show', 'spring', ...T);
  expect(draft.stdout).toContain(`Campaign "spring" (${id})\n`);
  expect(draft.stdout).toMatch(/\n {2}status +draft\n/);
  expect(draft.stdout).toMatch(/\n {2}schedule +\{\}\n/);
  expect(draft.stdout).toMatch(/\n {2}audience +3 listed contacts\n/);
  expect(draft.stdout).toMatch(/\n {2}throttle +2 a minute\n/);
  expect(draft.stdout).toContain('\nNo recipients yet.\n');

  // Start it by name; a second start is a 409 naming the status.
  const start = await run('campaigns', 'start', 'spring', ...T);
  expect(start).toMatchObject({ code: 0, stderr: '' });
  expect(start.stdout).toMatch(/^Started campaign "spring": it is scheduled, next run \d{4}-\d\d-\d\d \d\d:\d\d UTC; a running worker sends it\.\n$/);
  // (A server's worker may have fired it already.)
  const again = await run('campaigns', 'start', id, ...T);
  expect(again).toMatchObject({ code: 1, stdout: '' });
  expect(again.stderr).toMatch(/^error: status: campaign "spring" is (scheduled|running); it can be \w+ only when it is draft\n$/);

  // Two go out at once, the third a minute later by the throttle.
  await s.drain(tenant, id);
  const shown = JSON.parse((await run('campaigns', 'show', id, ...T, '--json')).stdout);
  expect(shown).toMatchObject({ id, status: 'running', totals: { recipients: 3, queued: 1 } });
  expect(shown.totals.sent + shown.totals.delivered).toBe(2);
  expect(shown.next_run_at).toBeNull();
  const human = (await run('campaigns', 'show', id, ...T)).stdout;
  expect(human).toMatch(/\n {2}status +running\n/);
  expect(human).toMatch(/\nSTATE +RECIPIENTS\n/);
  expect(human).toMatch(/\nqueued +1\n/);
  expect(human).toMatch(/\nall +3\n$/);

  // Pause holds the queued message; a second pause is refused with the status.
  const pause = await run('campaigns', 'pause', 'spring', ...T);
  expect(pause.stdout).toBe(
    `Paused campaign "spring": no further recipients are written and its queued messages are held. Resume it with  rapport campaigns resume ${id} --tenant ${tenant}\n`,
  );
  expect((await run('campaigns', 'pause', 'spring', ...T)).stderr).toBe('error: status: campaign "spring" is paused; it can be paused only when it is scheduled or running\n');

  // Recipients: a page, a state, the CSV to a file and to standard output, equal to the API's.
  const queued = JSON.parse((await run('campaigns', 'recipients', 'spring', ...T, '--state', 'queued', '--json')).stdout);
  expect(queued.data).toHaveLength(1);
  expect(queued.data[0]).toMatchObject({ state: 'queued', detail: 'queued', message_id: expect.stringMatching(UUID) });
  const page = await run('campaigns', 'recipients', 'spring', ...T, '--limit', '2');
  const rows = page.stdout.trimEnd().split('\n');
  expect(rows[0]).toMatch(/^CONTACT +NAME +STATE +DETAIL +SENT +REASON$/);
  expect(rows.slice(1, 3).map((r) => r.split(/ {2,}/)[0])).toEqual([...contacts].sort().slice(0, 2));
  expect(rows[3]).toBe('(the first 2; --limit lists up to 1000, --csv writes all of them)');

  const file = join(dir, 'out.csv');
  const toFile = await run('campaigns', 'recipients', id, ...T, '--csv', file);
  expect(toFile).toEqual({ code: 0, stdout: `Wrote 3 recipients to ${file}.\n`, stderr: '' });
  const api = await s.apiCsv(tenant, id);
  expect(readFileSync(file, 'utf8')).toBe(api);
  const lines = api.trimEnd().split('\r\n');
  expect(lines[0]).toBe(CSV_HEADER);
  expect(lines).toHaveLength(4);
  expect(api).toContain('"Carla, ""C"""');
  const toStdout = await run('campaigns', 'recipients', 'spring', ...T, '--csv', '--state', 'queued');
  expect(toStdout).toMatchObject({ code: 0, stderr: '' });
  expect(toStdout.stdout).toBe(await s.apiCsv(tenant, id, 'queued'));
  expect(toStdout.stdout.trimEnd().split('\r\n')).toHaveLength(2);
  expect((await run('campaigns', 'recipients', 'spring', ...T, '--csv', '--json')).stderr).toBe('error: --csv writes every recipient; leave out --json and --limit\n');

  // Stop cancels what was held; nothing is left to resume.
  const stop = await run('campaigns', 'stop', id, ...T, '--json');
  expect(JSON.parse(stop.stdout)).toMatchObject({ id, status: 'cancelled', cancelled_at: expect.any(String) });
  expect(JSON.parse((await run('campaigns', 'show', id, ...T, '--json')).stdout).totals).toMatchObject({ recipients: 3, queued: 0, cancelled: 1 });
  expect((await run('campaigns', 'resume', 'spring', ...T)).stderr).toBe('error: status: campaign "spring" is cancelled; it can be resumed only when it is paused\n');

  // A campaign paused before it fires resumes as scheduled.
  const later = join(dir, 'later.json');
  const at = new Date(Date.now() + 7 * 86_400_000).toISOString();
  writeFileSync(later, JSON.stringify({ name: 'in the file', type: 'promotional', audience: { contact_ids: [contacts[0]] }, action: { send: { channel: 'sms', content: { body: 'Soon' } } }, schedule: { at } }));
  const laterCreated = await run('campaigns', 'create', later, ...T, '--name', 'next week', '--start', '--json');
  expect(laterCreated).toMatchObject({ code: 0, stderr: '' });
  expect(JSON.parse(laterCreated.stdout)).toMatchObject({ name: 'next week', status: 'scheduled', schedule: { at }, next_run_at: at });
  expect((await run('campaigns', 'show', 'next week', ...T)).stdout).toContain(`  next run  ${at.slice(0, 16).replace('T', ' ')} UTC\n`);
  expect(JSON.parse((await run('campaigns', 'pause', 'next week', ...T, '--json')).stdout).status).toBe('paused');
  expect((await run('campaigns', 'resume', 'next week', ...T)).stdout).toBe(
    `Resumed campaign "next week": it is scheduled; held messages fall due again, spaced by its throttle from now (or at their recipients' local times).\n`,
  );
  expect(JSON.parse((await run('campaigns', 'list', ...T, '--status', 'scheduled', '--json')).stdout).map((c: { name: string }) => c.name)).toEqual(['next week']);

  // Refusals: the fields of a 400, the name of a 409, nothing created.
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'bad', type: 'win_back', audience: { contact_ids: [contacts[0]] }, action: { send: { channel: 'fax', content: { body: 'x' } } }, throttle: { per_minute: 0 }, extra: 1 }));
  const badRes = await run('campaigns', 'create', bad, ...T);
  expect(badRes.code).toBe(1);
  expect(badRes.stdout).toBe('');
  expect(badRes.stderr.split('\n')[0]).toBe(`error: ${bad} was refused; nothing was created:`);
  expect(badRes.stderr).toContain('\n  extra: is not a known field\n');
  expect(badRes.stderr).toContain('\n  throttle.per_minute: must be >= 1\n');
  expect(badRes.stderr).toMatch(/\n {2}action\.send\.channel: /);
  const both = join(dir, 'both.json');
  writeFileSync(both, JSON.stringify({ name: 'both', type: 'custom', audience: { contact_ids: [contacts[0]], segment_id: contacts[1] }, action: { send: { channel: 'sms', content: {} } } }));
  expect((await run('campaigns', 'create', both, ...T)).stderr).toBe(
    `error: ${both} was refused; nothing was created:\n` +
      '  audience: give exactly one of segment_id, definition, contact_ids (got segment_id, contact_ids)\n' +
      '  action.send.content: give a template, a body, html or a whatsapp_template\n',
  );
  expect((await run('campaigns', 'create', yaml, ...T)).stderr).toBe('error: name: a campaign named "spring" already exists; rename it in the file or pass another --name\n');
  expect((await run('campaigns', 'create', join(dir, 'none.yaml'), ...T)).stderr).toBe(`error: ${join(dir, 'none.yaml')} does not exist\n`);
  expect(JSON.parse((await run('campaigns', 'list', ...T, '--json')).stdout).map((c: { name: string }) => c.name).sort()).toEqual(['next week', 'spring']);

  // A journey campaign is created, but not started while its journey is paused.
  const journey = await s.withDb(async (db) => {
    const j = await publishJourney(db, tenant, { entry: { api: true }, nodes: [{ id: 'ask', type: 'send', channel: 'sms', content: { body: 'How did we do?' } }] } as never);
    await db.query(`update journeys set status = 'paused' where id = $1`, [j]);
    return j;
  });
  const intoJourney = join(dir, 'feedback.json');
  writeFileSync(intoJourney, JSON.stringify({ name: 'feedback', type: 'feedback', audience: { contact_ids: contacts }, action: { journey_id: journey } }));
  const refused = await run('campaigns', 'create', intoJourney, ...T, '--start');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(
    /^error: created campaign "feedback" \([0-9a-f-]{36}\) as a draft, but it was not started: action\.journey_id: the journey is paused; a campaign can only enrol into an active journey\n$/,
  );
  expect(JSON.parse((await run('campaigns', 'show', 'feedback', ...T, '--json')).stdout).status).toBe('draft');

  // Unknown names, ids and tenants.
  expect((await run('campaigns', 'show', 'nope', ...T)).stderr).toBe(`error: tenant ${tenant} has no campaign named "nope"; \`rapport campaigns list --tenant ${tenant}\` shows them\n`);
  const ghost = '00000000-0000-4000-8000-00000000beef';
  expect((await run('campaigns', 'stop', ghost, ...T)).stderr).toBe(`error: tenant ${tenant} has no campaign ${ghost}; \`rapport campaigns list --tenant ${tenant}\` shows them\n`);
  expect((await run('campaigns', 'recipients', ghost, ...T, '--csv')).stdout).toBe('');
  const stranger = '00000000-0000-4000-8000-000000000001';
  expect((await run('campaigns', 'list', '--tenant', stranger)).stderr).toMatch(new RegExp(`^error: tenant ${stranger} does not exist in .*; \`rapport tenant list\` shows the tenants\\n$`));
  expect((await run('campaigns', 'recipients', 'spring', ...T, '--state', 'lost')).stderr).toMatch(/option '--state <state>' argument 'lost' is invalid/);
}

describe('rapport campaigns on the embedded database', () => {
  it('creates, lists, shows, starts, pauses, resumes, stops and exports', async () => {
    const dir = tempDir();
    const withDb = async <T,>(fn: (db: Db) => Promise<T>): Promise<T> => {
      const db = await openPglite(dir);
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    };
    await scenario({
      env: { RAPPORT_DATA_DIR: dir },
      withDb,
      drain: () => withDb(workerDrain),
      apiCsv: (tenant, campaign, state) => withDb((db) => injectedCsv(db, tenant, campaign, state)),
    });
  }, 120_000);
});

describe('rapport campaigns while a server holds the embedded database', () => {
  it('goes through the server over HTTP with the same answers', async () => {
    const dir = tempDir();
    const server = await startServer(loadConfig({ PORT: '0', RAPPORT_DATA_DIR: dir }), { logger: pino({ enabled: false }), providers: sandboxRegistry() });
    try {
      const status = async (tenant: string, campaign: string) => {
        const res = await rapport({ RAPPORT_DATA_DIR: dir }, 'campaigns', 'show', campaign, '--tenant', tenant, '--json');
        const c = JSON.parse(res.stdout);
        return { recipients: c.totals.recipients, queued: c.totals.queued };
      };
      await scenario({
        env: { RAPPORT_DATA_DIR: dir },
        withDb: (fn) => fn(server.db),
        drain: (tenant, campaign) => expect.poll(() => status(tenant, campaign), { timeout: 20_000, interval: 200 }).toEqual({ recipients: 3, queued: 1 }),
        apiCsv: async (tenant, campaign, state) => {
          const res = await fetch(`${server.url}/v1/campaigns/${campaign}/recipients?format=csv${state ? `&state=${state}` : ''}`, {
            headers: { authorization: `Bearer ${readLock(dir)!.adminToken}`, 'x-rapport-tenant': tenant },
          });
          expect(res.status).toBe(200);
          return res.text();
        },
      });
    } finally {
      await server.close();
    }
  }, 120_000);
});

describe.runIf(TEST_DATABASE_URL)('rapport campaigns on PostgreSQL (DATABASE_URL)', () => {
  it('gives the same answers', async () => {
    const database = await freshDatabaseUrl();
    const db = openPostgres({ connectionString: database.url, max: 4 });
    try {
      await scenario({
        env: { DATABASE_URL: database.url },
        withDb: (fn) => fn(db),
        drain: () => workerDrain(db),
        apiCsv: (tenant, campaign, state) => injectedCsv(db, tenant, campaign, state),
      });
    } finally {
      await db.close();
      await database.drop();
    }
  }, 120_000);
});
