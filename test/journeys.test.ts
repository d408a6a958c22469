import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { httpBackend } from '../src/cli/backend-http.js';
import { main } from '../src/cli/main.js';
import { checkDefinition, checkPublishable } from '../src/core/journey/validate.js';
import { enrollContacts } from '../src/store/enrollments.js';
import { newId } from '../src/store/ids.js';
import { JourneyProblemsError } from '../src/store/journeys.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

const DAY = 24 * 3600 * 1000;
const fieldsOf = (res: { body: any }) => res.body.error.fields.map((f: { field: string }) => f.field);

/** A small journey: a text, a day's wait, a second text. */
const simple = (extra: Record<string, unknown> = {}) => ({
  entry: { api: true },
  ...extra,
  nodes: [
    { id: 'hello', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.name }}' }, next: 'pause-1d' },
    { id: 'pause-1d', type: 'wait', duration: '1d', next: 'bye' },
    { id: 'bye', type: 'send', channel: 'sms', content: { body: 'Bye' } },
  ],
});

let contactSeq = 0;
async function contact(fields: Record<string, unknown> = {}, tenant = t): Promise<string> {
  const res = await api.call(tenant, 'POST', '/v1/contacts', { external_id: `j-${++contactSeq}`, ...fields });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function draft(definition: unknown = simple(), name = 'Journey'): Promise<any> {
  const res = await api.call(t, 'POST', '/v1/journeys', { name, definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function live(definition: unknown = simple(), name = 'Live journey'): Promise<string> {
  const j = await draft(definition, name);
  const res = await api.call(t, 'POST', `/v1/journeys/${j.id}/publish`);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return j.id;
}

async function enrol(journeyId: string, body: unknown, tenant = t) {
  return api.call(tenant, 'POST', `/v1/journeys/${journeyId}/enrollments`, body);
}

async function yamlCall(method: string, url: string, text: string, type = 'application/yaml') {
  const res = await api.app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${t.key}`, 'content-type': type }, payload: text });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

async function countRows(sql: string, params: unknown[] = [t.id]): Promise<number> {
  const { rows } = await api.db.query<{ n: number }>(`select count(*)::int as n from (${sql}) x`, params);
  return rows[0]!.n;
}

/** Everything a refused request must leave as it was. */
const writes = () =>
  Promise.all([
    countRows('select 1 from journeys where tenant_id = $1'),
    countRows('select 1 from journey_versions where tenant_id = $1'),
    countRows('select 1 from enrollments where tenant_id = $1'),
    countRows('select 1 from audit_log where tenant_id = $1'),
    api.db.query('select id, name, status, draft, version from journeys where tenant_id = $1 order by id', [t.id]).then((r) => JSON.stringify(r.rows)),
  ]);

async function queueMessage(enrollmentId: string, contactId: string, journeyId: string, opts: { status?: string; channel?: string; node?: string } = {}): Promise<string> {
  const id = newId();
  const now = api.clock.now();
  await api.db.query(
    `insert into messages (id, tenant_id, contact_id, enrollment_id, journey_id, node, channel, status, idempotency_key, due_at, content, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '{"body":"Hi"}', $11, $11)`,
    [id, t.id, contactId, enrollmentId, journeyId, opts.node ?? 'hello', opts.channel ?? 'sms', opts.status ?? 'queued', `test:${id}`, opts.status && opts.status !== 'queued' ? null : now, now],
  );
  await api.db.query('insert into message_status (message_id, status, at) values ($1, $2, $3)', [id, opts.status ?? 'queued', now]);
  return id;
}

// ---------------------------------------------------------------------------------------------

describe('the published JSON Schema and the examples of docs/journeys.md', () => {
  const doc = readFileSync(fileURLToPath(new URL('../docs/journeys.md', import.meta.url)), 'utf8');
  // Every ```yaml block of the page is a complete journey (fragments there use ```yml).
  const examples = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('is served without a key, documented in OpenAPI, and compiles', async () => {
    const res = await api.call(null, 'GET', '/v1/journeys/schema.json');
    expect(res.status).toBe(200);
    expect((await api.call(null, 'GET', '/v1/journeys')).status).toBe(401);
    expect(res.body).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://rapport.dev/schema/journey.json', $defs: { Condition: {} } });
    const openapi = api.app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    expect(openapi.paths['/v1/journeys/schema.json']?.get?.security).toEqual([]);
    expect(() => new Ajv2020({ strict: true, allErrors: true }).compile(res.body)).not.toThrow();
  });

  it('accepts every example on the page and rejects broken ones', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const schema = (await api.call(null, 'GET', '/v1/journeys/schema.json')).body;
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    for (const text of examples) {
      const def = parseYaml(text);
      expect(validate(def), `${def.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      const { definition, problems } = checkDefinition(def);
      expect(problems, def.name).toEqual([]);
      expect(checkPublishable(definition, { templateExists: (n) => n === 'form-follow-up' }), def.name).toEqual([]);
    }
    const broken = parseYaml(examples[0]!);
    broken.nodes[1].duration = 'two days';
    expect(validate(broken)).toBe(false);
    expect(validate.errors!.map((e) => e.instancePath)).toContain('/nodes/1/duration');
    const { entry: _, ...noEntry } = parseYaml(examples[0]!);
    expect(validate(noEntry)).toBe(false);
    expect(validate({ ...parseYaml(examples[0]!), nodes: [{ id: 'x', type: 'teleport' }] })).toBe(false);
  });

  it('creates, validates and publishes every example through the API as YAML', async () => {
    const tpl = await api.call(t, 'POST', '/v1/templates', {
      name: 'form-follow-up',
      channel: 'email',
      subject: 'Anything else, {{ contact.first_name }}?',
      body: 'Hi {{ contact.first_name }}, did you find what you needed?',
    });
    expect(tpl.status).toBe(201);
    for (const text of examples) {
      const created = await yamlCall('POST', '/v1/journeys', text);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.name).toBe(parseYaml(text).name);
      const check = await api.call(t, 'POST', `/v1/journeys/${created.body.id}/validate`);
      expect(check.body, created.body.name).toEqual({ valid: true, problems: [] });
      expect((await api.call(t, 'POST', `/v1/journeys/${created.body.id}/publish`)).status).toBe(201);
      await api.call(t, 'POST', `/v1/journeys/${created.body.id}/archive`);
    }
  });
});

describe('journey drafts', () => {
  it('creates a draft from JSON, reads it and lists it', async () => {
    const j = await draft(simple({ description: 'two texts' }), 'Welcome');
    expect(j).toMatchObject({ name: 'Welcome', status: 'draft', version: null, published_at: null, entry_event: null, open_enrollments: 0 });
    expect(j.draft).toMatchObject({ name: 'Welcome', description: 'two texts', entry: { api: true } });
    const got = await api.call(t, 'GET', `/v1/journeys/${j.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(j);
    const list = await api.call(t, 'GET', '/v1/journeys?name=Welcome');
    expect(list.body.data).toEqual([expect.objectContaining({ id: j.id, status: 'draft', version: null, open_enrollments: 0 })]);
    expect(list.body.data[0].draft).toBeUndefined();
    const { rows } = await api.db.query('select action, data from audit_log where entity_id = $1', [j.id]);
    expect(rows).toEqual([{ action: 'journey.created', data: { name: 'Welcome' } }]);
  });

  it('accepts YAML, as {name, definition} or as a bare definition carrying its name', async () => {
    const wrapped = await yamlCall('POST', '/v1/journeys', toYaml({ name: 'From YAML', definition: simple() }));
    expect(wrapped.status).toBe(201);
    expect(wrapped.body.name).toBe('From YAML');
    const bare = await yamlCall('POST', '/v1/journeys', toYaml({ name: 'Bare YAML', ...simple() }), 'text/yaml; charset=utf-8');
    expect(bare.status).toBe(201);
    expect(bare.body).toMatchObject({ name: 'Bare YAML', draft: { name: 'Bare YAML', entry: { api: true } } });
    const patched = await yamlCall('PATCH', `/v1/journeys/${bare.body.id}`, toYaml({ ...simple(), name: 'Renamed in YAML' }));
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Renamed in YAML');
  });

  it('refuses bad YAML and a nameless bare definition, naming the field, and writes nothing', async () => {
    const before = await writes();
    const bad = await yamlCall('POST', '/v1/journeys', 'name: x\nnodes: [unclosed');
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad)).toEqual(['body']);
    expect(bad.body.error.fields[0].message).toMatch(/^is not valid YAML/);
    const nameless = await yamlCall('POST', '/v1/journeys', toYaml(simple()));
    expect(nameless.status).toBe(400);
    expect(fieldsOf(nameless)).toEqual(['name']);
    const text = await api.app.inject({ method: 'POST', url: '/v1/journeys', headers: { authorization: `Bearer ${t.key}`, 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    const huge = await api.call(t, 'POST', '/v1/journeys', { name: 'Huge', definition: simple({ description: 'x'.repeat(4.5 * 1024 * 1024) }) });
    expect(huge.status).toBe(413);
    expect(await writes()).toEqual(before);
  });

  it('refuses a malformed definition with every problem named under definition and its node, and writes nothing', async () => {
    const before = await writes();
    const def = simple();
    (def.nodes[1] as Record<string, unknown>).duration = 'tomorrow';
    (def.nodes[2] as Record<string, unknown>).next = 'nowhere';
    (def.nodes[0] as Record<string, unknown>).colour = 'red';
    const res = await api.call(t, 'POST', '/v1/journeys', { name: 'Broken', definition: def });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    const byField = Object.fromEntries(res.body.error.fields.map((f: { field: string; message: string }) => [f.field, f.message]));
    expect(byField['definition.nodes[1].duration']).toMatch(/^node "pause-1d": must be a duration/);
    expect(byField['definition.nodes[2].next']).toBe('node "bye": "nowhere" names no node');
    expect(byField['definition.nodes[0].colour']).toMatch(/^node "hello": is not a known field/);

    const noNodes = await api.call(t, 'POST', '/v1/journeys', { name: 'Empty', definition: { entry: { api: true }, nodes: [] } });
    expect(fieldsOf(noNodes)).toEqual(['definition.nodes']);
    const notObject = await api.call(t, 'POST', '/v1/journeys', { name: 'Nope', definition: [1, 2] });
    expect(fieldsOf(notObject)).toEqual(['definition']);
    const noName = await api.call(t, 'POST', '/v1/journeys', { definition: simple() });
    expect(fieldsOf(noName)).toEqual(['name']);
    const extra = await api.call(t, 'POST', '/v1/journeys', { name: 'x', definition: simple(), version: 3 });
    expect(fieldsOf(extra)).toEqual(['version']);
    expect(await writes()).toEqual(before);
  });

  it('edits the draft in any status but archived; a bad edit changes nothing', async () => {
    const j = await draft(simple(), 'Editable');
    api.clock.advance(1000);
    const renamed = await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { name: 'Edited' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Edited', draft: { name: 'Edited' } });
    expect(renamed.body.updated_at).not.toBe(j.updated_at);

    const before = await writes();
    const bad = await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { definition: { entry: { api: true }, nodes: [{ id: '1st', type: 'exit' }] } });
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad)).toEqual(['definition.nodes[0].id']);
    expect(await writes()).toEqual(before);

    const replaced = await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { definition: { entry: { event: 'signup' }, nodes: [{ id: 'only', type: 'exit' }] } });
    expect(replaced.body.draft).toEqual({ name: 'Edited', entry: { event: 'signup' }, nodes: [{ id: 'only', type: 'exit' }] });

    expect((await api.call(t, 'POST', `/v1/journeys/${j.id}/publish`)).status).toBe(201);
    expect((await api.call(t, 'POST', `/v1/journeys/${j.id}/pause`)).status).toBe(200);
    expect((await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { name: 'Edited while paused' })).status).toBe(200);
    expect((await api.call(t, 'POST', `/v1/journeys/${j.id}/archive`)).status).toBe(200);
    const archived = await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { name: 'Too late' });
    expect(archived.status).toBe(409);
    expect(fieldsOf(archived)).toEqual(['status']);
  });

  it('lists a page at a time, filtered by status', async () => {
    const a = await draft(simple(), 'Page A');
    const b = await draft(simple(), 'Page B');
    const first = await api.call(t, 'GET', '/v1/journeys?status=draft&limit=1');
    expect(first.body.next_cursor).not.toBeNull();
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api.call(t, 'GET', `/v1/journeys?status=draft&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...page.body.data.map((j: { id: string }) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(all).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(new Set(all).size).toBe(all.length);
    expect((await api.call(t, 'GET', '/v1/journeys?status=finished')).status).toBe(400);
    expect((await api.call(t, 'GET', '/v1/journeys?cursor=nonsense')).status).toBe(400);
  });

  it('answers 404 for an unknown journey on every journey route', async () => {
    const id = '0190a000-0000-7000-8000-000000000001';
    for (const [method, path] of [
      ['GET', ''],
      ['PATCH', ''],
      ['POST', '/validate'],
      ['POST', '/publish'],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/archive'],
      ['GET', '/versions'],
      ['GET', '/versions/1'],
      ['GET', '/enrollments'],
    ] as const) {
      const res = await api.call(t, method, `/v1/journeys/${id}${path}`, method === 'PATCH' ? { name: 'x' } : undefined);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await enrol(id, { contact_id: await contact() })).status).toBe(404);
  });
});

describe('validate and publish', () => {
  const unfinished = () => ({
    entry: { event: 'signup' },
    nodes: [
      { id: 'welcome', type: 'send', channel: 'email', content: { template: 'no-such-template' }, next: 'loop-a' },
      { id: 'loop-a', type: 'branch', branches: [{ when: { tag: 'x' }, next: 'loop-b' }], default: 'loop-b' },
      { id: 'loop-b', type: 'action', update: { add_tags: ['y'] }, next: 'loop-a' },
      { id: 'orphan', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.name | nope }}' } },
    ],
  });

  it('validates without changing anything, naming the node of each problem', async () => {
    const j = await draft(unfinished(), 'Unfinished');
    const before = await writes();
    const res = await api.call(t, 'POST', `/v1/journeys/${j.id}/validate`);
    expect(res.status).toBe(200);
    expect(res.body.valid).toBe(false);
    const problems = res.body.problems as { field: string; node?: string; message: string }[];
    expect(problems).toContainEqual({ field: 'definition.nodes[0].content.template', node: 'welcome', message: 'node "welcome": "no-such-template" names no stored template' });
    expect(problems.find((p) => p.node === 'orphan' && p.field === 'definition.nodes[3]')?.message).toMatch(/not reachable/);
    expect(problems.find((p) => p.field === 'definition.nodes[3].content.body')?.message).toMatch(/^node "orphan": is not a valid Liquid template: .*nope/);
    expect(problems.some((p) => /loops back without a wait/.test(p.message))).toBe(true);
    expect(await writes()).toEqual(before);
  });

  it('refuses to publish with 422 naming each problem and its node, and writes nothing', async () => {
    const j = await draft(unfinished(), 'Unpublishable');
    const before = await writes();
    const res = await api.call(t, 'POST', `/v1/journeys/${j.id}/publish`);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('invalid_journey');
    expect(res.body.error.fields).toContainEqual({ field: 'definition.nodes[0].content.template', in: 'body', message: 'node "welcome": "no-such-template" names no stored template' });
    expect(await writes()).toEqual(before);
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}`)).body).toMatchObject({ status: 'draft', version: null });
  });

  it('finds stored templates of the tenant only', async () => {
    const other = await api.tenant('Template owner');
    await api.call(other, 'POST', '/v1/templates', { name: 'theirs', channel: 'sms', body: 'x' });
    const j = await draft({ entry: { api: true }, nodes: [{ id: 's', type: 'send', channel: 'sms', content: { template: 'theirs' } }] }, 'Borrower');
    expect((await api.call(t, 'POST', `/v1/journeys/${j.id}/validate`)).body.valid).toBe(false);
    await api.call(t, 'POST', '/v1/templates', { name: 'theirs', channel: 'sms', body: 'mine' });
    expect((await api.call(t, 'POST', `/v1/journeys/${j.id}/validate`)).body).toEqual({ valid: true, problems: [] });
  });

  it('publishes versions 1 and 2; running enrollments stay on the version they entered', async () => {
    const j = await draft(simple({ entry: { event: 'signup', api: true } }), 'Versioned');
    const v1 = await api.call(t, 'POST', `/v1/journeys/${j.id}/publish`);
    expect(v1.status).toBe(201);
    expect(v1.body).toEqual({
      journey_id: j.id,
      version: 1,
      channels: ['sms'],
      published_at: api.clock.now().toISOString(),
      published_by: expect.stringMatching(/^key:/),
      status: 'active',
    });
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}`)).body).toMatchObject({ status: 'active', version: 1, entry_event: 'signup', published_at: api.clock.now().toISOString() });

    // An enrollment written the way every entry path writes one.
    const early = await contact();
    await api.db.transaction((tx) => enrollContacts(tx, { journey_id: j.id, tenant_id: t.id, version: 1 }, [{ contact_id: early }], api.clock.now(), 'test'));

    api.clock.advance(60_000);
    const def2 = simple({ entry: { event: 'signed_up', api: true } });
    def2.nodes[2] = { id: 'bye', type: 'send', channel: 'email', content: { subject: 'Bye', body: 'Bye' } } as (typeof def2.nodes)[number];
    expect((await api.call(t, 'PATCH', `/v1/journeys/${j.id}`, { definition: def2 })).status).toBe(200);
    // Editing the draft changes nothing live.
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}`)).body).toMatchObject({ version: 1, entry_event: 'signup' });
    const v2 = await api.call(t, 'POST', `/v1/journeys/${j.id}/publish`);
    expect(v2.body).toMatchObject({ version: 2, channels: ['sms', 'email'], status: 'active' });
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}`)).body).toMatchObject({ version: 2, entry_event: 'signed_up', open_enrollments: 1 });

    const late = await contact();
    expect((await enrol(j.id, { contact_id: late })).status).toBe(200);
    const { rows } = await api.db.query<{ contact_id: string; version: number }>('select contact_id, version from enrollments where journey_id = $1', [j.id]);
    expect(Object.fromEntries(rows.map((r) => [r.contact_id, r.version]))).toEqual({ [early]: 1, [late]: 2 });

    const versions = await api.call(t, 'GET', `/v1/journeys/${j.id}/versions`);
    expect(versions.body.data.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(versions.body.data[0].definition).toBeUndefined();
    const one = await api.call(t, 'GET', `/v1/journeys/${j.id}/versions/1`);
    expect(one.body).toMatchObject({ version: 1, channels: ['sms'], definition: { name: 'Versioned', entry: { event: 'signup', api: true } } });
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}/versions/3`)).status).toBe(404);
    expect((await api.call(t, 'GET', `/v1/journeys/${j.id}/versions/0`)).status).toBe(400);
    expect((await api.call(t, 'GET', `/v1/journeys/${(await draft()).id}/versions`)).body).toEqual({ data: [] });

    const audit = await api.db.query('select action, data from audit_log where entity_id = $1 and action = $2 order by id', [j.id, 'journey.published']);
    expect(audit.rows.map((r: any) => [r.data.version, r.data.previous_version])).toEqual([
      [1, null],
      [2, 1],
    ]);
  });
});

describe('pause, resume, archive', () => {
  it('parks open enrollments on pause and gives their timers back on resume', async () => {
    const j = await live(simple(), 'Pausable');
    const [a, b, c] = [await contact(), await contact(), await contact()];
    const res = await enrol(j, { contacts: [{ contact_id: a }, { contact_id: b }, { contact_id: c }] });
    const ids = Object.fromEntries(res.body.enrolled.map((e: { contact_id: string; enrollment_id: string }) => [e.contact_id, e.enrollment_id]));
    const later = new Date(api.clock.now().getTime() + 2 * DAY);
    await api.db.query('update enrollments set due_at = $2 where id = $1', [ids[b], later]);
    await api.call(t, 'POST', `/v1/enrollments/${ids[c]}/cancel`);

    const paused = await api.call(t, 'POST', `/v1/journeys/${j}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ status: 'paused', open_enrollments: 2 });
    const state = async () =>
      Object.fromEntries(
        (await api.db.query<{ id: string; due_at: Date | null; paused_due_at: Date | null }>('select id, due_at, paused_due_at from enrollments where journey_id = $1', [j])).rows.map((r) => [
          r.id,
          [r.due_at?.toISOString() ?? null, r.paused_due_at?.toISOString() ?? null],
        ]),
      );
    const now = api.clock.now().toISOString();
    expect(await state()).toEqual({ [ids[a]]: [null, now], [ids[b]]: [null, later.toISOString()], [ids[c]]: [null, null] });

    expect((await enrol(j, { contact_id: await contact() })).status).toBe(409);
    const again = await api.call(t, 'POST', `/v1/journeys/${j}/pause`);
    expect(again.status).toBe(409);
    expect(fieldsOf(again)).toEqual(['status']);

    // Publishing while paused stores the version and keeps the journey paused.
    const v2 = await api.call(t, 'POST', `/v1/journeys/${j}/publish`);
    expect(v2.body).toMatchObject({ version: 2, status: 'paused' });

    const resumed = await api.call(t, 'POST', `/v1/journeys/${j}/resume`);
    expect(resumed.body.status).toBe('active');
    expect(await state()).toEqual({ [ids[a]]: [now, null], [ids[b]]: [later.toISOString(), null], [ids[c]]: [null, null] });
    const resumeActive = await api.call(t, 'POST', `/v1/journeys/${j}/resume`);
    expect(resumeActive.status).toBe(409);
    expect(fieldsOf(resumeActive)).toEqual(['status']);

    const { rows } = await api.db.query('select action, data from audit_log where entity_id = $1 and action in ($2, $3) order by id', [j, 'journey.paused', 'journey.resumed']);
    expect(rows).toEqual([
      { action: 'journey.paused', data: { from: 'active', enrollments_parked: 2 } },
      { action: 'journey.resumed', data: { from: 'paused', enrollments_resumed: 2 } },
    ]);
  });

  it('refuses to resume or pause a draft, naming status', async () => {
    const j = await draft();
    for (const action of ['resume', 'pause']) {
      const res = await api.call(t, 'POST', `/v1/journeys/${j.id}/${action}`);
      expect(res.status).toBe(409);
      expect(fieldsOf(res)).toEqual(['status']);
      expect(res.body.error.message).toContain('is draft');
    }
  });

  it('archives: cancels open enrollments and their queued messages, and freezes the journey', async () => {
    const j = await live(simple(), 'To archive');
    const [a, b] = [await contact(), await contact()];
    const res = await enrol(j, { contacts: [{ contact_id: a }, { contact_id: b }] });
    const [ea, eb] = res.body.enrolled.map((e: { enrollment_id: string }) => e.enrollment_id);
    const queued = await queueMessage(ea, a, j);
    const sent = await queueMessage(ea, a, j, { status: 'sent' });
    await api.call(t, 'POST', `/v1/enrollments/${eb}/cancel`);

    const archived = await api.call(t, 'POST', `/v1/journeys/${j}/archive`);
    expect(archived.status).toBe(200);
    expect(archived.body).toMatchObject({ status: 'archived', open_enrollments: 0 });
    const detail = (await api.call(t, 'GET', `/v1/enrollments/${ea}`)).body;
    expect(detail).toMatchObject({ status: 'cancelled', end_reason: 'journey archived', due_at: null, ended_at: api.clock.now().toISOString() });
    expect(detail.history.at(-1)).toMatchObject({ outcome: 'cancelled', detail: { reason: 'journey archived' } });
    expect(Object.fromEntries(detail.messages.map((m: { id: string; status: string }) => [m.id, m.status]))).toEqual({ [queued]: 'cancelled', [sent]: 'sent' });
    const timeline = (await api.call(t, 'GET', `/v1/messages/${queued}`)).body.timeline;
    expect(timeline.map((s: { status: string }) => s.status)).toEqual(['queued', 'cancelled']);
    // The one cancelled before keeps its own end.
    expect((await api.call(t, 'GET', `/v1/enrollments/${eb}`)).body.end_reason).toMatch(/^cancelled by key:/);

    for (const [method, path, body] of [
      ['POST', '/archive', undefined],
      ['POST', '/publish', undefined],
      ['POST', '/resume', undefined],
      ['POST', '/enrollments', { contact_id: a }],
      ['PATCH', '', { name: 'x' }],
    ] as const) {
      const r = await api.call(t, method, `/v1/journeys/${j}${path}`, body);
      expect(r.status, path).toBe(409);
      expect(fieldsOf(r)).toEqual(['status']);
    }
    const { rows } = await api.db.query('select data from audit_log where entity_id = $1 and action = $2', [j, 'journey.archived']);
    expect(rows).toEqual([{ data: { from: 'active', enrollments_cancelled: 1 } }]);
  });
});

describe('enrollments', () => {
  it('enrols by id and by identifiers, keeps vars, and audits each enrollment', async () => {
    const j = await live(simple(), 'Enrol me');
    const byId = await contact();
    const byPhone = await contact({ phone: '+14155550161' });
    const one = await enrol(j, { contact_id: byId, vars: { coupon: 'SPRING' } });
    expect(one.status).toBe(200);
    expect(one.body).toEqual({ enrolled: [{ contact_id: byId, enrollment_id: expect.any(String) }], skipped: [] });
    const viaPhone = await enrol(j, { contact: { phone: '(415) 555-0161' } });
    expect(viaPhone.status).toBe(400); // no default country: the number is not international
    const viaPhone2 = await enrol(j, { contact: { phone: '+1 415 555 0161' } });
    expect(viaPhone2.body.enrolled).toEqual([{ contact_id: byPhone, enrollment_id: expect.any(String) }]);

    const detail = await api.call(t, 'GET', `/v1/enrollments/${one.body.enrolled[0].enrollment_id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({
      journey_id: j,
      version: 1,
      contact_id: byId,
      status: 'active',
      node: null,
      due_at: api.clock.now().toISOString(),
      wait: null,
      vars: { coupon: 'SPRING' },
      splits: {},
      source: 'api',
      history: [],
      messages: [],
      entered_at: api.clock.now().toISOString(),
      ended_at: null,
      end_reason: null,
    });
    const { rows } = await api.db.query('select actor, data from audit_log where action = $1 and entity_id = $2', ['enrollment.created', one.body.enrolled[0].enrollment_id]);
    expect(rows).toEqual([{ actor: expect.stringMatching(/^key:/), data: { journey_id: j, version: 1, contact_id: byId, source: 'api' } }]);
  });

  it('enrols a list in one call, top-level vars under each own vars, and reports the skipped', async () => {
    const j = await live(simple(), 'Batch');
    const [a, b] = [await contact({ email: 'batch-a@example.com' }), await contact()];
    const res = await enrol(j, {
      vars: { event_name: 'Open day', seat: 'none' },
      contacts: [{ contact: { email: 'BATCH-A@example.com' }, vars: { seat: '12A' } }, { contact_id: b }, { contact_id: a }],
    });
    expect(res.status).toBe(200);
    expect(res.body.enrolled.map((e: { contact_id: string }) => e.contact_id)).toEqual([a, b]);
    expect(res.body.skipped).toEqual([{ contact_id: a, reason: 'already_enrolled' }]);
    const { rows } = await api.db.query<{ contact_id: string; vars: unknown }>('select contact_id, vars from enrollments where journey_id = $1', [j]);
    expect(Object.fromEntries(rows.map((r) => [r.contact_id, r.vars]))).toEqual({ [a]: { event_name: 'Open day', seat: '12A' }, [b]: { event_name: 'Open day', seat: 'none' } });
  });

  it('refuses unknown contacts, naming the field, and enrols nobody', async () => {
    const j = await live(simple(), 'Strict');
    const known = await contact({ email: 'known@example.com' });
    await contact({ external_id: 'someone-else' });
    const stranger = await contact({ email: 'stranger@example.com' }, await api.tenant('Stranger'));
    const before = await writes();

    const byId = await enrol(j, { contact_id: stranger });
    expect(byId.status).toBe(404);
    expect(fieldsOf(byId)).toEqual(['contact_id']);
    const byEmail = await enrol(j, { contact: { email: 'stranger@example.com' } });
    expect(byEmail.status).toBe(404);
    expect(fieldsOf(byEmail)).toEqual(['contact']);
    const batch = await enrol(j, { contacts: [{ contact_id: known }, { contact_id: stranger }, { contact: { external_id: 'nobody' } }] });
    expect(batch.status).toBe(400);
    expect(fieldsOf(batch)).toEqual(['contacts[1].contact_id', 'contacts[2].contact']);
    const ambiguous = await enrol(j, { contact: { email: 'known@example.com', external_id: 'someone-else' } });
    expect(ambiguous.status).toBe(409);
    expect(fieldsOf(ambiguous)).toEqual(['contact']);
    expect(ambiguous.body.error.message).toContain('different contacts');

    const neither = await enrol(j, {});
    expect(neither.status).toBe(400);
    expect(fieldsOf(neither)).toEqual(['contact_id']);
    const both = await enrol(j, { contact_id: known, contact: { email: 'known@example.com' } });
    expect(fieldsOf(both)).toEqual(['contact_id']);
    const mixed = await enrol(j, { contact_id: known, contacts: [{ contact_id: known }] });
    expect(fieldsOf(mixed)).toEqual(['contacts']);
    const badPhone = await enrol(j, { contacts: [{ contact: { phone: 'call me' } }] });
    expect(fieldsOf(badPhone)).toEqual(['contacts[0].contact.phone']);
    const tooMany = await enrol(j, { contacts: Array.from({ length: 1001 }, () => ({ contact_id: known })) });
    expect(tooMany.status).toBe(400);
    expect(fieldsOf(tooMany)).toEqual(['contacts']);
    const bigVars = await enrol(j, { contact_id: known, vars: { blob: 'x'.repeat(40_000) } });
    expect(fieldsOf(bigVars)).toEqual(['vars']);
    expect(await writes()).toEqual(before);
  });

  it('refuses a journey that is not live', async () => {
    const j = await draft();
    const res = await enrol(j.id, { contact_id: await contact() });
    expect(res.status).toBe(409);
    expect(fieldsOf(res)).toEqual(['status']);
    expect(res.body.error.message).toContain('never been published');
  });

  it('applies re-entry "never" by default: one entry, ever', async () => {
    const j = await live(simple(), 'Once');
    const c = await contact();
    const first = await enrol(j, { contact_id: c });
    await api.call(t, 'POST', `/v1/enrollments/${first.body.enrolled[0].enrollment_id}/cancel`);
    const second = await enrol(j, { contact_id: c });
    expect(second.body).toEqual({ enrolled: [], skipped: [{ contact_id: c, reason: 'reentry_not_allowed' }] });
  });

  it('applies a cooldown measured on the clock', async () => {
    const j = await live(simple({ reentry: { mode: 'cooldown', cooldown: '1d' } }), 'Cooldown');
    const c = await contact();
    const first = await enrol(j, { contact_id: c });
    await api.call(t, 'POST', `/v1/enrollments/${first.body.enrolled[0].enrollment_id}/cancel`);
    api.clock.advance(DAY - 1000);
    expect((await enrol(j, { contact_id: c })).body.skipped).toEqual([{ contact_id: c, reason: 'reentry_not_allowed' }]);
    api.clock.advance(1000);
    expect((await enrol(j, { contact_id: c })).body.enrolled).toHaveLength(1);
  });

  it('lets "always" re-enter up to max_entries, and never twice at once', async () => {
    const j = await live(simple({ reentry: { mode: 'always', max_entries: 2 } }), 'Always');
    const c = await contact();
    const first = await enrol(j, { contact_id: c });
    expect(first.body.enrolled).toHaveLength(1);
    const whileOpen = await enrol(j, { contact_id: c });
    expect(whileOpen.body).toEqual({ enrolled: [], skipped: [{ contact_id: c, reason: 'already_enrolled' }] });
    expect(await countRows('select 1 from enrollments where journey_id = $1 and ended_at is null', [j])).toBe(1);

    await api.call(t, 'POST', `/v1/enrollments/${first.body.enrolled[0].enrollment_id}/cancel`);
    const second = await enrol(j, { contact_id: c });
    expect(second.body.enrolled).toHaveLength(1);
    await api.call(t, 'POST', `/v1/enrollments/${second.body.enrolled[0].enrollment_id}/cancel`);
    expect((await enrol(j, { contact_id: c })).body.skipped).toEqual([{ contact_id: c, reason: 'reentry_not_allowed' }]);
  });

  it('lists enrollments by status and contact, a page at a time', async () => {
    const j = await live(simple(), 'Listed');
    const cs = [await contact(), await contact(), await contact()];
    const res = await enrol(j, { contacts: cs.map((contact_id) => ({ contact_id })) });
    const ids = res.body.enrolled.map((e: { enrollment_id: string }) => e.enrollment_id);
    await api.call(t, 'POST', `/v1/enrollments/${ids[1]}/cancel`);

    const page1 = await api.call(t, 'GET', `/v1/journeys/${j}/enrollments?limit=2`);
    expect(page1.body.data.map((e: { id: string }) => e.id)).toEqual(ids.slice(0, 2));
    const page2 = await api.call(t, 'GET', `/v1/journeys/${j}/enrollments?limit=2&cursor=${page1.body.next_cursor}`);
    expect(page2.body).toEqual({ data: [expect.objectContaining({ id: ids[2], contact_id: cs[2], version: 1, status: 'active' })], next_cursor: null });
    const active = await api.call(t, 'GET', `/v1/journeys/${j}/enrollments?status=active`);
    expect(active.body.data.map((e: { id: string }) => e.id)).toEqual([ids[0], ids[2]]);
    const cancelled = await api.call(t, 'GET', `/v1/journeys/${j}/enrollments?status=cancelled&contact_id=${cs[1]}`);
    expect(cancelled.body.data).toEqual([expect.objectContaining({ id: ids[1], status: 'cancelled', end_reason: expect.stringMatching(/^cancelled by key:/) })]);
    expect((await api.call(t, 'GET', `/v1/journeys/${j}/enrollments?status=gone`)).status).toBe(400);
    expect((await api.call(t, 'GET', '/v1/journeys')).body.data.find((x: { id: string }) => x.id === j).open_enrollments).toBe(2);
  });

  it('shows history, splits and messages, and cancels once', async () => {
    const j = await live(simple(), 'Inspect');
    const c = await contact();
    const e = (await enrol(j, { contact_id: c })).body.enrolled[0].enrollment_id;
    await api.db.query(`update enrollments set memo = '{"splits":{"offer":"b"},"last_send":"hello"}', node = 'hello' where id = $1`, [e]);
    await api.db.query(`insert into enrollment_steps (enrollment_id, seq, at, node, outcome, detail) values ($1, 1, $2, 'hello', 'queued', '{"channel":"sms"}')`, [e, api.clock.now()]);
    await api.db.query('update enrollments set steps = 1 where id = $1', [e]);
    const m = await queueMessage(e, c, j);

    api.clock.advance(5000);
    const cancelled = await api.call(t, 'POST', `/v1/enrollments/${e}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      status: 'cancelled',
      node: 'hello',
      splits: { offer: 'b' },
      due_at: null,
      end_reason: expect.stringMatching(/^cancelled by key:[0-9a-f-]{36}$/),
      ended_at: api.clock.now().toISOString(),
    });
    expect(cancelled.body.history).toEqual([
      { seq: 1, at: expect.any(String), node: 'hello', outcome: 'queued', detail: { channel: 'sms' } },
      { seq: 2, at: api.clock.now().toISOString(), node: 'hello', outcome: 'cancelled', detail: { reason: cancelled.body.end_reason } },
    ]);
    expect(cancelled.body.messages).toEqual([expect.objectContaining({ id: m, node: 'hello', channel: 'sms', kind: 'send', status: 'cancelled', reason: expect.stringContaining('cancelled') })]);

    const again = await api.call(t, 'POST', `/v1/enrollments/${e}/cancel`);
    expect(again.status).toBe(409);
    expect(fieldsOf(again)).toEqual(['status']);
    const { rows } = await api.db.query('select action from audit_log where entity_id = $1', [e]);
    expect(rows.map((r: any) => r.action)).toEqual(['enrollment.created', 'enrollment.cancelled']);
    const missing = '0190a000-0000-7000-8000-000000000002';
    expect((await api.call(t, 'GET', `/v1/enrollments/${missing}`)).status).toBe(404);
    expect((await api.call(t, 'POST', `/v1/enrollments/${missing}/cancel`)).status).toBe(404);
  });
});

describe('messages', () => {
  it('lists with filters, newest first, and shows one with its timeline', async () => {
    const j = await live(simple(), 'Messaging');
    const [a, b] = [await contact(), await contact()];
    const res = await enrol(j, { contacts: [{ contact_id: a }, { contact_id: b }] });
    const [ea, eb] = res.body.enrolled.map((e: { enrollment_id: string }) => e.enrollment_id);
    const m1 = await queueMessage(ea, a, j);
    const m2 = await queueMessage(ea, a, j, { status: 'sent', channel: 'email', node: 'bye' });
    const m3 = await queueMessage(eb, b, j, { status: 'suppressed' });
    await api.db.query(`update messages set reason = 'no consent', cost = 0.0075, currency = 'USD' where id = $1`, [m3]);
    api.clock.advance(1000);
    await api.db.query('insert into message_status (message_id, status, at, detail) values ($1, $2, $3, $4)', [m2, 'delivered', api.clock.now(), JSON.stringify({ provider: 'sandbox' })]);

    const mine = await api.call(t, 'GET', `/v1/messages?journey_id=${j}`);
    expect(mine.body.data.map((m: { id: string }) => m.id)).toEqual([m3, m2, m1]);
    const ofA = await api.call(t, 'GET', `/v1/messages?contact_id=${a}&limit=1`);
    expect(ofA.body.data.map((m: { id: string }) => m.id)).toEqual([m2]);
    const next = await api.call(t, 'GET', `/v1/messages?contact_id=${a}&limit=1&cursor=${ofA.body.next_cursor}`);
    expect(next.body).toEqual({ data: [expect.objectContaining({ id: m1 })], next_cursor: null });
    expect((await api.call(t, 'GET', `/v1/messages?enrollment_id=${eb}`)).body.data.map((m: { id: string }) => m.id)).toEqual([m3]);
    expect((await api.call(t, 'GET', `/v1/messages?journey_id=${j}&status=suppressed`)).body.data).toEqual([
      expect.objectContaining({ id: m3, reason: 'no consent', cost: 0.0075, currency: 'USD', to_address: null }),
    ]);
    expect((await api.call(t, 'GET', `/v1/messages?journey_id=${j}&channel=email`)).body.data.map((m: { id: string }) => m.id)).toEqual([m2]);
    expect((await api.call(t, 'GET', '/v1/messages?status=lost')).status).toBe(400);

    const one = await api.call(t, 'GET', `/v1/messages/${m2}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: m2, enrollment_id: ea, journey_id: j, node: 'bye', channel: 'email', status: 'sent', content: { body: 'Hi' }, rendered: null });
    expect(one.body.timeline).toEqual([
      { status: 'sent', at: expect.any(String), detail: null },
      { status: 'delivered', at: api.clock.now().toISOString(), detail: { provider: 'sandbox' } },
    ]);
    expect((await api.call(t, 'GET', '/v1/messages/0190a000-0000-7000-8000-000000000003')).status).toBe(404);
  });
});

// ---------------------------------------------------------------------------------------------
// CLI

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rapport-journeys-'));
  dirs.push(d);
  return d;
};

async function rapport(env: Record<string, string>, ...args: string[]) {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk, _enc, done) {
        add(String(chunk));
        done();
      },
    });
  const code = await main(['node', 'rapport', ...args], { env, stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) });
  return { code, stdout: out, stderr: err };
}

describe('rapport journeys', () => {
  it('validates a file locally, one problem per line, exit 1 on problems', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.yaml');
    writeFileSync(good, toYaml({ name: 'Good', ...simple() }));
    const ok = await rapport({ RAPPORT_DATA_DIR: dir }, 'journeys', 'validate', good);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toContain('valid');

    const def = simple();
    (def.nodes[1] as Record<string, unknown>).duration = 'soon';
    const badShape = join(dir, 'bad.json');
    writeFileSync(badShape, JSON.stringify(def));
    const shape = await rapport({ RAPPORT_DATA_DIR: dir }, 'journeys', 'validate', badShape);
    expect(shape.code).toBe(1);
    expect(shape.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^node "pause-1d" nodes\[1\]\.duration: must be a duration/)]);
    expect(shape.stderr).toContain('1 problem');

    const graph = join(dir, 'graph.yml');
    writeFileSync(
      graph,
      toYaml({
        entry: { api: true },
        nodes: [
          { id: 'a', type: 'send', channel: 'sms', content: { template: 'anything' } },
          { id: 'b', type: 'send', channel: 'sms', content: { body: '{{ x | nope }}' } },
        ],
      }),
    );
    const lines = (await rapport({ RAPPORT_DATA_DIR: dir }, 'journeys', 'validate', graph)).stdout.trim().split('\n');
    expect(lines).toContain('node "b" nodes[1]: is not reachable from the start node "a"');
    expect(lines.some((l) => l.startsWith('node "b" nodes[1].content.body: is not a valid Liquid template'))).toBe(true);
    // Templates are assumed to exist without --tenant.
    expect(lines.some((l) => l.includes('anything'))).toBe(false);

    const missing = await rapport({ RAPPORT_DATA_DIR: dir }, 'journeys', 'validate', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
  }, 60_000);

  it('pushes a file as a draft, replaces the draft by name, publishes, and lists', async () => {
    const dir = tempDir();
    const env = { RAPPORT_DATA_DIR: dir };
    const tenant = JSON.parse((await rapport(env, 'tenant', 'create', '--name', 'Acme', '--json')).stdout).tenant_id;
    const file = join(dir, 'welcome.yaml');
    writeFileSync(file, toYaml({ name: 'Welcome', ...simple() }));

    const created = await rapport(env, 'journeys', 'push', file, '--tenant', tenant, '--json');
    expect(created.code).toBe(0);
    const first = JSON.parse(created.stdout);
    expect(first).toMatchObject({ name: 'Welcome', action: 'created', status: 'draft', version: null });

    const published = await rapport(env, 'journeys', 'push', file, '--tenant', tenant, '--publish');
    expect(published.code).toBe(0);
    expect(published.stdout).toContain(`Replaced the draft of journey "Welcome" (${first.id})`);
    expect(published.stdout).toContain('Published version 1; the journey is active.');

    writeFileSync(file, toYaml({ name: 'Welcome', entry: { api: true }, nodes: [{ id: 'a', type: 'send', channel: 'sms', content: { template: 'missing' } }] }));
    const refused = await rapport(env, 'journeys', 'push', file, '--tenant', tenant, '--publish');
    expect(refused.code).toBe(1);
    expect(refused.stdout.trim()).toBe('node "a" nodes[0].content.template: "missing" names no stored template');
    expect(refused.stderr).toContain('the draft was updated but not published');

    const check = await rapport(env, 'journeys', 'validate', file, '--tenant', tenant);
    expect(check.code).toBe(1);

    const list = JSON.parse((await rapport(env, 'journeys', 'list', '--tenant', tenant, '--json')).stdout);
    expect(list).toEqual([expect.objectContaining({ id: first.id, name: 'Welcome', status: 'active', version: 1, open_enrollments: 0 })]);
    const table = await rapport(env, 'journeys', 'list', '--tenant', tenant);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+VERSION\s+OPEN\s+PUBLISHED\n/);

    const nameless = join(dir, 'nameless.json');
    writeFileSync(nameless, JSON.stringify(simple()));
    const noName = await rapport(env, 'journeys', 'push', nameless, '--tenant', tenant);
    expect(noName.code).toBe(1);
    expect(noName.stderr).toContain('--name');
    expect((await rapport(env, 'journeys', 'push', nameless, '--tenant', tenant, '--name', 'Named')).code).toBe(0);
  }, 60_000);

  it('goes through a running server with the HTTP backend', async () => {
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = api.app.server.address() as { port: number };
    const backend = httpBackend({ url: `http://127.0.0.1:${addr.port}`, adminToken: api.adminToken, pid: process.pid });
    const tenant = (await api.tenant('Over HTTP')).id;

    const j = await backend.createJourney(tenant, 'Remote', simple());
    expect(j).toMatchObject({ name: 'Remote', status: 'draft', version: null });
    expect(await backend.listJourneys(tenant, 'Remote')).toEqual([j]);
    await backend.updateJourneyDraft(tenant, j.id, 'Remote', { entry: { api: true }, nodes: [{ id: 's', type: 'send', channel: 'sms', content: { template: 'remote-tpl' } }] });
    const err = await backend.publishJourney(tenant, j.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JourneyProblemsError);
    expect((err as JourneyProblemsError).problems).toEqual([{ field: 'definition.nodes[0].content.template', node: 's', message: 'node "s": "remote-tpl" names no stored template' }]);
    expect(await backend.templateNames(tenant)).toEqual([]);
    await api.app.inject({
      method: 'POST',
      url: '/v1/templates',
      headers: { authorization: `Bearer ${api.adminToken}`, 'x-rapport-tenant': tenant, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'remote-tpl', channel: 'sms', body: 'hi' }),
    });
    expect(await backend.templateNames(tenant)).toEqual(['remote-tpl']);
    expect(await backend.publishJourney(tenant, j.id)).toEqual({ version: 1, status: 'active' });
  });
});
