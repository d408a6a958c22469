import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findApprovedTemplate, templateButtonParameters, templateParameterCount } from '../src/store/whatsapp-templates.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

let api: TestApi;
let t: TestTenant;

beforeAll(async () => {
  api = await testApi();
  t = await api.tenant();
});
afterAll(() => api.close());

const fieldsOf = (res: { body: any }) => [...new Set(res.body.error.fields.map((f: { field: string }) => f.field))];

const parkingAlert = {
  name: 'parking_alert',
  language: 'en_US',
  category: 'utility',
  components: [
    { type: 'header', format: 'text', text: 'Your car {{1}}' },
    { type: 'body', text: 'Hi {{1}}, your car {{2}} is blocking {{3}}. Can you move it, {{1}}?', example: { body_text: [['Ana', 'AB-12-CD', 'the gate']] } },
    { type: 'footer', text: 'Reply STOP to opt out' },
    {
      type: 'buttons',
      buttons: [
        { type: 'quick_reply', text: 'Moving now' },
        { type: 'quick_reply', text: '5 minutes' },
        { type: 'url', text: 'See map', url: 'https://maps.example.com/spot/{{1}}' },
        { type: 'phone_number', text: 'Call us', phone_number: '+14155550100' },
      ],
    },
  ],
};

async function create(body: Record<string, unknown>, as = t): Promise<any> {
  const res = await api.call(as, 'POST', '/v1/whatsapp-templates', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** The parking alert with one component replaced. */
function withComponent(index: number, component: Record<string, unknown>) {
  const components = [...parkingAlert.components] as Record<string, unknown>[];
  components[index] = component;
  return { ...parkingAlert, name: `variant_${index}`, components };
}

describe('WhatsApp templates', () => {
  it('registers a template, stores component types as Meta returns them, and counts its parameters', async () => {
    const created = await create(parkingAlert);
    expect(created).toMatchObject({ name: 'parking_alert', language: 'en_US', category: 'utility', status: 'approved', provider_template_id: null, parameter_count: 3 });
    expect(created.components.map((c: { type: string }) => c.type)).toEqual(['HEADER', 'BODY', 'FOOTER', 'BUTTONS']);
    expect(created.components[0].format).toBe('TEXT');
    expect(created.components[1].example).toEqual({ body_text: [['Ana', 'AB-12-CD', 'the gate']] });
    expect(created.components[3].buttons.map((b: { type: string }) => b.type)).toEqual(['QUICK_REPLY', 'QUICK_REPLY', 'URL', 'PHONE_NUMBER']);

    const got = await api.call(t, 'GET', `/v1/whatsapp-templates/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created);
    const { rows } = await api.db.query("select action, data from audit_log where tenant_id = $1 and entity_type = 'whatsapp_template'", [t.id]);
    expect(rows).toEqual([{ action: 'whatsapp_template.created', data: { name: 'parking_alert', language: 'en_US', status: 'approved' } }]);
  });

  it("refuses what Meta would refuse, naming the field", async () => {
    const bad = async (body: unknown) => {
      const res = await api.call(t, 'POST', '/v1/whatsapp-templates', body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      return res;
    };
    expect(fieldsOf(await bad({ ...parkingAlert, name: 'Parking-Alert' }))).toEqual(['name']);
    expect(fieldsOf(await bad({ ...parkingAlert, name: 'a'.repeat(513) }))).toEqual(['name']);
    expect(fieldsOf(await bad({ ...parkingAlert, language: 'english' }))).toEqual(['language']);
    expect(fieldsOf(await bad({ ...parkingAlert, category: 'promo' }))).toEqual(['category']);
    expect(fieldsOf(await bad({ ...parkingAlert, status: 'live' }))).toEqual(['status']);
    expect(fieldsOf(await bad({ ...parkingAlert, components: [{ type: 'footer', text: 'only a footer' }] }))).toEqual(['components']);
    expect(fieldsOf(await bad({ ...parkingAlert, components: [{ type: 'body' }] }))).toEqual(['components[0].text']);
    expect(fieldsOf(await bad({ ...parkingAlert, components: [{ type: 'body', text: 'x'.repeat(1025) }] }))).toEqual(['components[0].text']);
    expect(fieldsOf(await bad({ ...parkingAlert, components: [{ type: 'body', text: 'a' }, { type: 'BODY', text: 'b' }] }))).toEqual(['components[1].type']);
    expect(fieldsOf(await bad({ ...parkingAlert, components: [{ type: 'carousel', text: 'a' }, { type: 'body', text: 'b' }] }))).toEqual(['components[0].type']);

    const gap = await bad(withComponent(1, { type: 'body', text: 'Hi {{1}}, see {{3}}' }));
    expect(gap.body.error.fields).toEqual([{ field: 'components[1].text', in: 'body', message: 'placeholders must run {{1}} to {{3}} without gaps; missing {{2}}' }]);
    expect(fieldsOf(await bad(withComponent(1, { type: 'body', text: 'Hi {{2}}' })))).toEqual(['components[1].text']);
    expect((await bad(withComponent(1, { type: 'body', text: 'Hi {{first_name}}' }))).body.error.fields[0].message).toContain('named parameters are not supported');
    expect(fieldsOf(await bad(withComponent(0, { type: 'header', format: 'text', text: '{{1}} and {{2}}' })))).toEqual(['components[0].text']);
    expect(fieldsOf(await bad(withComponent(0, { type: 'header', format: 'text', text: 'x'.repeat(61) })))).toEqual(['components[0].text']);
    expect(fieldsOf(await bad(withComponent(0, { type: 'header', format: 'gif' })))).toEqual(['components[0].format']);
    expect(fieldsOf(await bad(withComponent(2, { type: 'footer', text: 'Bye {{1}}' })))).toEqual(['components[2].text']);

    const buttons = (list: Record<string, unknown>[]) => withComponent(3, { type: 'buttons', buttons: list });
    const qr = (text: string) => ({ type: 'quick_reply', text });
    expect(fieldsOf(await bad(buttons(Array.from({ length: 11 }, (_, i) => qr(`Option ${i}`)))))).toEqual(['components[3].buttons']);
    expect(fieldsOf(await bad(buttons([]))).sort()).toEqual(['components[3].buttons']);
    expect(fieldsOf(await bad(buttons([qr('x'.repeat(26))])))).toEqual(['components[3].buttons[0].text']);
    expect(fieldsOf(await bad(buttons([{ type: 'quick_reply' }])))).toEqual(['components[3].buttons[0].text']);
    expect(fieldsOf(await bad(buttons([{ type: 'url', text: 'Go', url: 'https://x.example/{{1}}/more' }])))).toEqual(['components[3].buttons[0].url']);
    expect(fieldsOf(await bad(buttons([{ type: 'url', text: 'Go', url: 'https://x.example/{{2}}' }])))).toEqual(['components[3].buttons[0].url']);
    expect(fieldsOf(await bad(buttons([{ type: 'url', text: 'Go', url: 'https://x.example/{{1}}{{1}}' }])))).toEqual(['components[3].buttons[0].url']);
    expect(fieldsOf(await bad(buttons([{ type: 'url', text: 'Go', url: 'ftp://x.example/' }])))).toEqual(['components[3].buttons[0].url']);
    expect(fieldsOf(await bad(buttons([{ type: 'phone_number', text: 'Call', phone_number: '4155550100' }])))).toEqual(['components[3].buttons[0].phone_number']);
    expect(fieldsOf(await bad(buttons([{ type: 'phone_number', text: 'Call', phone_number: '+1 415 555 0100' }])))).toEqual(['components[3].buttons[0].phone_number']);
    const url = (i: number) => ({ type: 'url', text: `Go ${i}`, url: `https://x.example/${i}` });
    expect(fieldsOf(await bad(buttons([url(1), url(2), url(3)])))).toEqual(['components[3].buttons']);
    expect(fieldsOf(await bad(buttons([qr('a'), url(1), qr('b')])))).toEqual(['components[3].buttons']);
    expect(fieldsOf(await bad(buttons([{ type: 'teleport', text: 'x' }])))).toEqual(['components[3].buttons[0].type']);

    const { rows } = await api.db.query('select count(*)::int as n from whatsapp_templates where tenant_id = $1', [t.id]);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('keeps name and language unique together', async () => {
    const dup = await api.call(t, 'POST', '/v1/whatsapp-templates', parkingAlert);
    expect(dup.status).toBe(409);
    expect(fieldsOf(dup)).toEqual(['name']);
    await create({ ...parkingAlert, language: 'pt_BR' });
    const other = await api.tenant('Other');
    await create(parkingAlert, other);
  });

  it('patches fields, checks the result, and deletes', async () => {
    const tpl = await create({ ...parkingAlert, name: 'patch_me', status: 'pending' });
    api.clock.advance(60_000);
    const approved = await api.call(t, 'PATCH', `/v1/whatsapp-templates/${tpl.id}`, { status: 'approved', provider_template_id: 'HX0123456789abcdef0123456789abcdef' });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', provider_template_id: 'HX0123456789abcdef0123456789abcdef', updated_at: '2026-03-02T10:01:00.000Z' });

    const broken = await api.call(t, 'PATCH', `/v1/whatsapp-templates/${tpl.id}`, { components: [{ type: 'body', text: '{{2}}' }] });
    expect(broken.status).toBe(400);
    expect(fieldsOf(broken)).toEqual(['components[0].text']);
    const simpler = await api.call(t, 'PATCH', `/v1/whatsapp-templates/${tpl.id}`, { components: [{ type: 'body', text: 'Move your car, {{1}}' }] });
    expect(simpler.body).toMatchObject({ parameter_count: 1, components: [{ type: 'BODY', text: 'Move your car, {{1}}' }] });
    const clash = await api.call(t, 'PATCH', `/v1/whatsapp-templates/${tpl.id}`, { name: 'parking_alert' });
    expect(clash.status).toBe(409);
    expect(fieldsOf(clash)).toEqual(['name']);
    const cleared = await api.call(t, 'PATCH', `/v1/whatsapp-templates/${tpl.id}`, { provider_template_id: null });
    expect(cleared.body.provider_template_id).toBeNull();

    const deleted = await api.call(t, 'DELETE', `/v1/whatsapp-templates/${tpl.id}`);
    expect(deleted.status).toBe(200);
    for (const [method, body] of [['GET'], ['PATCH', { status: 'paused' }], ['DELETE']] as const) {
      expect((await api.call(t, method, `/v1/whatsapp-templates/${tpl.id}`, body)).status, method).toBe(404);
    }
    const { rows } = await api.db.query("select action from audit_log where entity_type = 'whatsapp_template' and entity_id = $1 order by id", [tpl.id]);
    expect(rows.map((r: any) => r.action)).toEqual(['whatsapp_template.created', 'whatsapp_template.updated', 'whatsapp_template.updated', 'whatsapp_template.updated', 'whatsapp_template.deleted']);
  });

  it('lists a page at a time, filtered by name, language and status', async () => {
    const me = await api.tenant('Lister');
    for (const [language, status] of [['en_US', 'approved'], ['es', 'pending'], ['fr', 'rejected']] as const) await create({ ...parkingAlert, language, status }, me);
    const page1 = await api.call(me, 'GET', '/v1/whatsapp-templates?limit=2');
    expect(page1.body.data.map((x: { language: string }) => x.language)).toEqual(['en_US', 'es']);
    const page2 = await api.call(me, 'GET', `/v1/whatsapp-templates?limit=2&cursor=${page1.body.next_cursor}`);
    expect(page2.body).toMatchObject({ data: [{ language: 'fr' }], next_cursor: null });
    expect((await api.call(me, 'GET', '/v1/whatsapp-templates?status=pending')).body.data.map((x: { language: string }) => x.language)).toEqual(['es']);
    expect((await api.call(me, 'GET', '/v1/whatsapp-templates?language=fr')).body.data).toHaveLength(1);
    expect((await api.call(me, 'GET', '/v1/whatsapp-templates?name=nope')).body.data).toEqual([]);
  });

  it('finds the approved template for the dispatcher: exact language, then the same base language, then any', async () => {
    const me = await api.tenant('Finder');
    const ids: Record<string, string> = {};
    for (const [language, status] of [['en_US', 'approved'], ['en_GB', 'approved'], ['pt_BR', 'approved'], ['es', 'pending'], ['de', 'paused']] as const) {
      ids[language] = (await create({ ...parkingAlert, language, status }, me)).id;
    }
    const find = async (language?: string | null) => (await findApprovedTemplate(api.db, me.id, 'parking_alert', language))?.language;
    expect(await find('en_US')).toBe('en_US');
    expect(await find('en-US')).toBe('en_US');
    expect(await find('EN_us')).toBe('en_US');
    expect(await find('en_AU')).toBe('en_GB');
    expect(await find('en')).toBe('en_GB');
    expect(await find('pt_PT')).toBe('pt_BR');
    expect(await find('pt')).toBe('pt_BR');
    // Not approved: es and de fall back to any approved language.
    expect(await find('es')).toBe('en_GB');
    expect(await find('de')).toBe('en_GB');
    expect(await find(null)).toBe('en_GB');
    expect(await find()).toBe('en_GB');
    const row = await findApprovedTemplate(api.db, me.id, 'parking_alert', 'en_US');
    expect(row).toMatchObject({ id: ids.en_US, status: 'approved', category: 'utility' });
    expect(await findApprovedTemplate(api.db, me.id, 'no_such_template', 'en_US')).toBeNull();
    const stranger = await api.tenant('Stranger');
    expect(await findApprovedTemplate(api.db, stranger.id, 'parking_alert', 'en_US')).toBeNull();
  });

  it('counts body parameters and the buttons that take one', () => {
    expect(templateParameterCount(parkingAlert.components)).toBe(3);
    expect(templateParameterCount([{ type: 'BODY', text: 'no parameters' }])).toBe(0);
    expect(templateParameterCount([{ type: 'HEADER', text: '{{1}}' }])).toBe(0);
    expect(templateButtonParameters(parkingAlert.components)).toEqual([
      { index: 0, sub_type: 'quick_reply' },
      { index: 1, sub_type: 'quick_reply' },
      { index: 2, sub_type: 'url' },
    ]);
    expect(templateButtonParameters([{ type: 'BUTTONS', buttons: [{ type: 'URL', text: 'Static', url: 'https://x.example' }] }])).toEqual([]);
  });
});
