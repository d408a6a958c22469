import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

const fieldsOf = (res: { body: any }) => res.body.error.fields.map((f: { field: string }) => f.field);

async function count(table: string): Promise<number> {
  const { rows } = await api.db.query<{ n: number }>(`select count(*)::int as n from ${table} where tenant_id = $1`, [t.id]);
  return rows[0]!.n;
}

async function template(body: Record<string, unknown>): Promise<any> {
  const res = await api.call(t, 'POST', '/v1/templates', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** A draft journey whose one send node names the template. */
function usingTemplate(name: string) {
  return {
    name: `uses ${name}`,
    definition: { entry: { api: true }, nodes: [{ id: 'send', type: 'send', channel: 'sms', content: { template: name } }] },
  };
}

describe('templates', () => {
  it('creates, reads, lists and audits a template', async () => {
    const created = await template({ name: 'welcome-sms', channel: 'sms', body: 'Hi {{ contact.first_name | default: "there" }}!' });
    expect(created).toMatchObject({ name: 'welcome-sms', channel: 'sms', subject: null, html: null, whatsapp_template: null, created_at: '2026-03-02T10:00:00.000Z' });
    const got = await api.call(t, 'GET', `/v1/templates/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created);

    await template({
      name: 'welcome-email',
      channel: 'email',
      subject: 'Welcome, {{ contact.name }}',
      body: 'Plain text',
      html: '<p>Hello {{ contact.name }}</p>',
    });
    await template({ name: 'welcome-wa', channel: 'whatsapp', whatsapp_template: { name: 'welcome', language: 'en_US', parameters: ['{{ contact.name }}'] } });

    const page1 = await api.call(t, 'GET', '/v1/templates?limit=2');
    expect(page1.body.data.map((x: { name: string }) => x.name)).toEqual(['welcome-sms', 'welcome-email']);
    const page2 = await api.call(t, 'GET', `/v1/templates?limit=2&cursor=${page1.body.next_cursor}`);
    expect(page2.body.data.map((x: { name: string }) => x.name)).toEqual(['welcome-wa']);
    expect(page2.body.next_cursor).toBeNull();
    const emails = await api.call(t, 'GET', '/v1/templates?channel=email');
    expect(emails.body.data.map((x: { name: string }) => x.name)).toEqual(['welcome-email']);
    const byName = await api.call(t, 'GET', '/v1/templates?name=welcome-wa');
    expect(byName.body.data).toHaveLength(1);

    const { rows } = await api.db.query('select action, entity_id, data from audit_log where tenant_id = $1 and entity_type = $2 order by id', [t.id, 'template']);
    expect(rows[0]).toMatchObject({ action: 'template.created', entity_id: created.id, data: { name: 'welcome-sms', channel: 'sms' } });
  });

  it('refuses a name already used in the tenant with 409 naming name, and writes nothing', async () => {
    await template({ name: 'dup', channel: 'sms', body: 'one' });
    const before = await count('templates');
    const res = await api.call(t, 'POST', '/v1/templates', { name: 'dup', channel: 'voice', body: 'two' });
    expect(res.status).toBe(409);
    expect(fieldsOf(res)).toEqual(['name']);
    expect(res.body.error.message).toContain('"dup"');
    expect(await count('templates')).toBe(before);
  });

  it('lets another tenant use the same name', async () => {
    const other = await api.tenant('Other');
    await template({ name: 'shared-name', channel: 'sms', body: 'a' });
    const res = await api.call(other, 'POST', '/v1/templates', { name: 'shared-name', channel: 'sms', body: 'b' });
    expect(res.status).toBe(201);
  });

  it('parses every Liquid field and names the one that does not parse, quoting the error', async () => {
    const before = await count('templates');
    const body = await api.call(t, 'POST', '/v1/templates', { name: 'bad-body', channel: 'sms', body: 'Hi {{ contact.name ' });
    expect(body.status).toBe(400);
    expect(fieldsOf(body)).toEqual(['body']);
    expect(body.body.error.fields[0].message).toMatch(/^is not a valid Liquid template: .*line:1/);

    const filter = await api.call(t, 'POST', '/v1/templates', { name: 'bad-filter', channel: 'sms', body: '{{ contact.name | shout }}' });
    expect(filter.status).toBe(400);
    expect(filter.body.error.fields[0].message).toContain('shout');

    const email = await api.call(t, 'POST', '/v1/templates', { name: 'bad-email', channel: 'email', subject: '{% if %}', html: '<p>{{ x | nope }}</p>' });
    expect(email.status).toBe(400);
    expect(fieldsOf(email).sort()).toEqual(['html', 'subject']);

    const wa = await api.call(t, 'POST', '/v1/templates', {
      name: 'bad-wa',
      channel: 'whatsapp',
      whatsapp_template: { name: 'x', language: 'en', parameters: ['{{ ok }}', '{{ broken'] },
    });
    expect(wa.status).toBe(400);
    expect(fieldsOf(wa)).toEqual(['whatsapp_template.parameters[1]']);
    expect(await count('templates')).toBe(before);
  });

  it('refuses content its channel cannot send, naming the field', async () => {
    const noSubject = await api.call(t, 'POST', '/v1/templates', { name: 'e1', channel: 'email', body: 'text' });
    expect(noSubject.status).toBe(400);
    expect(fieldsOf(noSubject)).toEqual(['subject']);
    const htmlOnSms = await api.call(t, 'POST', '/v1/templates', { name: 's1', channel: 'sms', body: 'x', html: '<b>x</b>' });
    expect(fieldsOf(htmlOnSms)).toEqual(['html']);
    const emptySms = await api.call(t, 'POST', '/v1/templates', { name: 's2', channel: 'sms' });
    expect(fieldsOf(emptySms)).toEqual(['body']);
    const waNothing = await api.call(t, 'POST', '/v1/templates', { name: 'w1', channel: 'whatsapp' });
    expect(fieldsOf(waNothing)).toEqual(['body']);
    const unknownField = await api.call(t, 'POST', '/v1/templates', { name: 's3', channel: 'sms', body: 'x', url: 'https://x' });
    expect(unknownField.status).toBe(400);
    expect(fieldsOf(unknownField)).toEqual(['url']);
    const badChannel = await api.call(t, 'POST', '/v1/templates', { name: 's4', channel: 'fax', body: 'x' });
    expect(fieldsOf(badChannel)).toEqual(['channel']);
  });

  it('patches fields, null clearing one, and checks the result', async () => {
    const tpl = await template({ name: 'patch-me', channel: 'email', subject: 'S', body: 'B', html: '<p>H</p>' });
    api.clock.advance(60_000);
    const res = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { html: null, body: 'New {{ contact.name }}' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'patch-me', subject: 'S', body: 'New {{ contact.name }}', html: null, updated_at: '2026-03-02T10:01:00.000Z' });

    const broken = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { subject: '{{ unclosed' });
    expect(broken.status).toBe(400);
    expect(fieldsOf(broken)).toEqual(['subject']);
    const emptied = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { body: null });
    expect(emptied.status).toBe(400);
    expect(fieldsOf(emptied)).toEqual(['body']);
    const toSms = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { channel: 'sms' });
    expect(fieldsOf(toSms)).toEqual(['subject']);
    expect((await api.call(t, 'GET', `/v1/templates/${tpl.id}`)).body.subject).toBe('S');

    await template({ name: 'taken', channel: 'sms', body: 'x' });
    const clash = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { name: 'taken' });
    expect(clash.status).toBe(409);
    expect(fieldsOf(clash)).toEqual(['name']);

    const renamed = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { name: 'patched' });
    expect(renamed.body.name).toBe('patched');
  });

  it('answers 404 for an unknown template on every route', async () => {
    const id = '0190a000-0000-7000-8000-000000000000';
    expect((await api.call(t, 'GET', `/v1/templates/${id}`)).status).toBe(404);
    expect((await api.call(t, 'PATCH', `/v1/templates/${id}`, { body: 'x' })).status).toBe(404);
    expect((await api.call(t, 'DELETE', `/v1/templates/${id}`)).status).toBe(404);
    expect((await api.call(t, 'GET', '/v1/templates/not-a-uuid')).status).toBe(400);
  });

  it('refuses to delete or rename a template a draft or live journey names, until the journey lets go of it', async () => {
    const tpl = await template({ name: 'in-use', channel: 'sms', body: 'Hello' });
    const journey = await api.call(t, 'POST', '/v1/journeys', usingTemplate('in-use'));
    expect(journey.status).toBe(201);

    const del = await api.call(t, 'DELETE', `/v1/templates/${tpl.id}`);
    expect(del.status).toBe(409);
    expect(fieldsOf(del)).toEqual(['name']);
    expect(del.body.error.message).toContain(journey.body.id);
    const rename = await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { name: 'in-use-2' });
    expect(rename.status).toBe(409);
    // Content can change: live journeys pick it up at send time.
    expect((await api.call(t, 'PATCH', `/v1/templates/${tpl.id}`, { body: 'Hello again' })).status).toBe(200);

    // Published, then the draft moves on: the live version still names it.
    expect((await api.call(t, 'POST', `/v1/journeys/${journey.body.id}/publish`)).status).toBe(201);
    const edited = await api.call(t, 'PATCH', `/v1/journeys/${journey.body.id}`, {
      definition: { entry: { api: true }, nodes: [{ id: 'send', type: 'send', channel: 'sms', content: { body: 'inline' } }] },
    });
    expect(edited.status).toBe(200);
    expect((await api.call(t, 'DELETE', `/v1/templates/${tpl.id}`)).status).toBe(409);

    expect((await api.call(t, 'POST', `/v1/journeys/${journey.body.id}/archive`)).status).toBe(200);
    const ok = await api.call(t, 'DELETE', `/v1/templates/${tpl.id}`);
    expect(ok.status).toBe(200);
    expect(ok.body.name).toBe('in-use');
    expect((await api.call(t, 'GET', `/v1/templates/${tpl.id}`)).status).toBe(404);
    const { rows } = await api.db.query('select action from audit_log where tenant_id = $1 and entity_id = $2 order by id', [t.id, tpl.id]);
    expect(rows.map((r: any) => r.action)).toEqual(['template.created', 'template.updated', 'template.deleted']);
  });
});
