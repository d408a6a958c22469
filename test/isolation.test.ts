import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../src/core/secrets.js';
import { createAccount } from '../src/store/provider-accounts.js';
import { createReviewTask } from '../src/store/reviews.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

/**
 * Tenant isolation across every route. The list of operations comes from the OpenAPI document,
 * so a new route without a case here fails this test until someone decides how it must behave
 * for a caller from another tenant.
 *
 * Tenant A owns data; tenant B's key calls every operation, aiming at A's ids and identifiers.
 * Afterwards, A's rows in every table must be byte-for-byte what they were.
 */

interface Fixture {
  contactId: string;
  contactEmail: string;
  contactPhone: string;
  externalId: string;
  keyId: string;
  suppressionId: string;
  eventSourceId: string;
  templateId: string;
  templateName: string;
  journeyId: string;
  enrollmentId: string;
  messageId: string;
  secrets: string[];
  providerId: string;
  keywordPhrase: string;
  whatsappTemplateId: string;
  knowledgeId: string;
  segmentId: string;
  campaignId: string;
  reviewId: string;
}

interface Case {
  url: string;
  body?: unknown;
  /** Statuses allowed for tenant B; anything else fails. */
  status: number[];
}

const TENANT_TABLES = [
  'contacts',
  'consent_records',
  'consent_state',
  'suppressions',
  'events',
  'api_keys',
  'audit_log',
  'templates',
  'journeys',
  'journey_versions',
  'enrollments',
  'messages',
  'provider_accounts',
  'provider_routes',
  'keywords',
  'whatsapp_templates',
  'knowledge_items',
  'knowledge_chunks',
  'knowledge_terms',
  'segments',
  'campaigns',
  'campaign_occurrences',
  'campaign_recipients',
  'review_tasks',
  'synthesized_messages',
];

/** Tables without a tenant_id column, reached through the rows they belong to. */
const CHILD_TABLES: Record<string, string> = {
  journey_entries: 'select x.* from journey_entries x join journeys j on j.id = x.journey_id where j.tenant_id = $1 order by x.journey_id, x.contact_id',
  enrollment_steps: 'select x.* from enrollment_steps x join enrollments e on e.id = x.enrollment_id where e.tenant_id = $1 order by x.enrollment_id, x.seq',
  message_status: 'select x.* from message_status x join messages m on m.id = x.message_id where m.tenant_id = $1 order by x.id',
};

const journeyDefinition = {
  entry: { api: true },
  nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { template: 'a-secret-template' } }],
};

const cases = (fx: Fixture): Record<string, Case> => ({
  'GET /v1/tenant': { url: '/v1/tenant', status: [200] },
  'PATCH /v1/tenant': { url: '/v1/tenant', body: { name: 'B renamed' }, status: [200] },
  'GET /v1/api-keys': { url: '/v1/api-keys', status: [200] },
  'POST /v1/api-keys': { url: '/v1/api-keys', body: { name: 'b-key' }, status: [201] },
  'DELETE /v1/api-keys/{id}': { url: `/v1/api-keys/${fx.keyId}`, status: [404] },
  'GET /v1/contacts': { url: `/v1/contacts?email=${encodeURIComponent(fx.contactEmail)}`, status: [200] },
  'POST /v1/contacts': { url: '/v1/contacts', body: { email: fx.contactEmail, external_id: fx.externalId }, status: [201] },
  'POST /v1/contacts/upsert': { url: '/v1/contacts/upsert', body: { external_id: fx.externalId, phone: fx.contactPhone, name: 'Hijack' }, status: [200, 409] },
  'POST /v1/contacts/bulk': { url: '/v1/contacts/bulk', body: { contacts: [{ email: fx.contactEmail, name: 'Hijack' }] }, status: [200] },
  'GET /v1/contacts/{id}': { url: `/v1/contacts/${fx.contactId}`, status: [404] },
  'PATCH /v1/contacts/{id}': { url: `/v1/contacts/${fx.contactId}`, body: { name: 'Hijack' }, status: [404] },
  'DELETE /v1/contacts/{id}': { url: `/v1/contacts/${fx.contactId}`, status: [404] },
  'GET /v1/contacts/{id}/export': { url: `/v1/contacts/${fx.contactId}/export`, status: [404] },
  'GET /v1/contacts/{id}/consent': { url: `/v1/contacts/${fx.contactId}/consent`, status: [404] },
  'POST /v1/contacts/{id}/consent': {
    url: `/v1/contacts/${fx.contactId}/consent`,
    body: { channel: 'sms', status: 'revoked', source: 'api' },
    status: [404],
  },
  'POST /v1/consent/batch': {
    url: '/v1/consent/batch',
    body: { records: [{ contact_id: fx.contactId, channel: 'sms', status: 'revoked', source: 'api' }] },
    status: [400, 404],
  },
  'GET /v1/suppressions': { url: '/v1/suppressions', status: [200] },
  'POST /v1/suppressions': { url: '/v1/suppressions', body: { channel: 'email', address: fx.contactEmail, reason: 'test' }, status: [201] },
  'DELETE /v1/suppressions/{id}': { url: `/v1/suppressions/${fx.suppressionId}`, status: [404] },
  'GET /v1/events': { url: `/v1/events?contact_id=${fx.contactId}`, status: [200] },
  'POST /v1/events': { url: '/v1/events', body: { id: fx.eventSourceId, name: 'purchase', contact: { external_id: fx.externalId } }, status: [202] },
  'POST /v1/events/batch': {
    url: '/v1/events/batch',
    body: { events: [{ id: fx.eventSourceId, name: 'purchase', contact_id: fx.contactId }] },
    status: [202, 400],
  },
  'GET /v1/audit-log': { url: `/v1/audit-log?entity_type=contact&entity_id=${fx.contactId}`, status: [200] },
  'GET /v1/templates': { url: `/v1/templates?name=${fx.templateName}`, status: [200] },
  'POST /v1/templates': { url: '/v1/templates', body: { name: fx.templateName, channel: 'sms', body: 'B' }, status: [201] },
  'GET /v1/templates/{id}': { url: `/v1/templates/${fx.templateId}`, status: [404] },
  'PATCH /v1/templates/{id}': { url: `/v1/templates/${fx.templateId}`, body: { body: 'Hijack' }, status: [404] },
  'DELETE /v1/templates/{id}': { url: `/v1/templates/${fx.templateId}`, status: [404] },
  'GET /v1/journeys/schema.json': { url: '/v1/journeys/schema.json', status: [200] },
  'GET /v1/journeys': { url: '/v1/journeys', status: [200] },
  'POST /v1/journeys': { url: '/v1/journeys', body: { name: 'B journey', definition: journeyDefinition }, status: [201] },
  'GET /v1/journeys/{id}': { url: `/v1/journeys/${fx.journeyId}`, status: [404] },
  'PATCH /v1/journeys/{id}': { url: `/v1/journeys/${fx.journeyId}`, body: { name: 'Hijack' }, status: [404] },
  'POST /v1/journeys/{id}/validate': { url: `/v1/journeys/${fx.journeyId}/validate`, status: [404] },
  'POST /v1/journeys/{id}/publish': { url: `/v1/journeys/${fx.journeyId}/publish`, status: [404] },
  'GET /v1/journeys/{id}/versions': { url: `/v1/journeys/${fx.journeyId}/versions`, status: [404] },
  'GET /v1/journeys/{id}/versions/{version}': { url: `/v1/journeys/${fx.journeyId}/versions/1`, status: [404] },
  'POST /v1/journeys/{id}/pause': { url: `/v1/journeys/${fx.journeyId}/pause`, status: [404] },
  'POST /v1/journeys/{id}/resume': { url: `/v1/journeys/${fx.journeyId}/resume`, status: [404] },
  'POST /v1/journeys/{id}/archive': { url: `/v1/journeys/${fx.journeyId}/archive`, status: [404] },
  // A dry run on its own throwaway database: it reads B's tenant policy and nothing of A's.
  'POST /v1/journeys/simulate': {
    url: '/v1/journeys/simulate',
    body: { definition: { entry: { api: true }, nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { body: 'hi' } }] }, contacts: 5, days: 1 },
    status: [200],
  },
  'POST /v1/journeys/{id}/enrollments': { url: `/v1/journeys/${fx.journeyId}/enrollments`, body: { contact_id: fx.contactId }, status: [404] },
  'GET /v1/journeys/{id}/enrollments': { url: `/v1/journeys/${fx.journeyId}/enrollments`, status: [404] },
  'GET /v1/enrollments/{id}': { url: `/v1/enrollments/${fx.enrollmentId}`, status: [404] },
  'POST /v1/enrollments/{id}/cancel': { url: `/v1/enrollments/${fx.enrollmentId}/cancel`, status: [404] },
  'GET /v1/messages': { url: `/v1/messages?contact_id=${fx.contactId}`, status: [200] },
  'GET /v1/messages/{id}': { url: `/v1/messages/${fx.messageId}`, status: [404] },
  // Operator routes: a tenant key never reaches them.
  'GET /v1/tenants': { url: '/v1/tenants', status: [401] },
  'POST /v1/tenants': { url: '/v1/tenants', body: { name: 'Sneaky' }, status: [401] },
  'GET /v1/providers': { url: '/v1/providers?kind=twilio', status: [200] },
  // This app has no secret key, so B cannot create one at all (409 secret_key_required).
  'POST /v1/providers': { url: '/v1/providers', body: { name: 'b-provider', kind: 'twilio', credentials: { token: 'b' }, config: { from: '+14155550123' } }, status: [400, 409] },
  'GET /v1/providers/{id}': { url: `/v1/providers/${fx.providerId}`, status: [404] },
  'PATCH /v1/providers/{id}': { url: `/v1/providers/${fx.providerId}`, body: { priority: 1 }, status: [404] },
  'DELETE /v1/providers/{id}': { url: `/v1/providers/${fx.providerId}`, status: [404] },
  'GET /v1/keywords': { url: '/v1/keywords', status: [200] },
  'PUT /v1/keywords/{phrase}': { url: '/v1/keywords/stop', body: { action: 'none' }, status: [201] },
  'DELETE /v1/keywords/{phrase}': { url: `/v1/keywords/${encodeURIComponent(fx.keywordPhrase)}`, status: [404] },
  'GET /v1/whatsapp-templates': { url: '/v1/whatsapp-templates?name=a_secret_wa_template', status: [200] },
  'POST /v1/whatsapp-templates': {
    url: '/v1/whatsapp-templates',
    body: { name: 'a_secret_wa_template', language: 'en_US', category: 'utility', components: [{ type: 'BODY', text: 'B {{1}}' }] },
    status: [201],
  },
  'GET /v1/whatsapp-templates/{id}': { url: `/v1/whatsapp-templates/${fx.whatsappTemplateId}`, status: [404] },
  'PATCH /v1/whatsapp-templates/{id}': { url: `/v1/whatsapp-templates/${fx.whatsappTemplateId}`, body: { status: 'paused' }, status: [404] },
  'GET /v1/enrollments/{id}/result': { url: `/v1/enrollments/${fx.enrollmentId}/result`, status: [404] },
  'POST /v1/sandbox/replies': { url: '/v1/sandbox/replies', body: { channel: 'sms', contact_id: fx.contactId, text: 'STOP', message_id: fx.messageId }, status: [404] },
  'DELETE /v1/whatsapp-templates/{id}': { url: `/v1/whatsapp-templates/${fx.whatsappTemplateId}`, status: [404] },
  'GET /v1/knowledge': { url: '/v1/knowledge?topics=a-secret-topic', status: [200] },
  'POST /v1/knowledge': { url: '/v1/knowledge', body: { kind: 'tip', title: 'B tip', body: 'zebra crocus', topics: ['a-secret-topic'] }, status: [201] },
  'GET /v1/knowledge/search': { url: '/v1/knowledge/search?q=zebra%20crocus%20wholesale', status: [200] },
  'POST /v1/knowledge/search': { url: '/v1/knowledge/search', body: { q: 'zebra crocus wholesale', topics: ['a-secret-topic'] }, status: [200] },
  'GET /v1/knowledge/{id}': { url: `/v1/knowledge/${fx.knowledgeId}`, status: [404] },
  'PATCH /v1/knowledge/{id}': { url: `/v1/knowledge/${fx.knowledgeId}`, body: { title: 'Hijack' }, status: [404] },
  'DELETE /v1/knowledge/{id}': { url: `/v1/knowledge/${fx.knowledgeId}`, status: [404] },
  'POST /v1/synthesis/preview': { url: '/v1/synthesis/preview', body: { contact_id: fx.contactId, channel: 'sms', cta: { text: 'Reply YES' } }, status: [404] },
  'POST /v1/synthesis/drafts': { url: '/v1/synthesis/drafts', body: { contact_id: fx.contactId, channel: 'sms', cta: { text: 'Reply YES' } }, status: [404] },
  'GET /v1/reviews': { url: '/v1/reviews?status=pending', status: [200] },
  'GET /v1/reviews/{id}': { url: `/v1/reviews/${fx.reviewId}`, status: [404] },
  'POST /v1/reviews/{id}/approve': { url: `/v1/reviews/${fx.reviewId}/approve`, status: [404] },
  'POST /v1/reviews/{id}/edit': { url: `/v1/reviews/${fx.reviewId}/edit`, body: { text: 'Reply YES' }, status: [404] },
  'POST /v1/reviews/{id}/reject': { url: `/v1/reviews/${fx.reviewId}/reject`, body: { reason: 'hijack' }, status: [404] },
  'GET /v1/segments': { url: '/v1/segments?name=a-secret-segment', status: [200] },
  // A's segment id names nothing in B.
  'POST /v1/segments': { url: '/v1/segments', body: { name: 'a-secret-segment', definition: { in_segment: fx.segmentId } }, status: [400] },
  'POST /v1/segments/preview': { url: '/v1/segments/preview', body: { definition: { tag: 'a-secret-tag' }, sample: 100 }, status: [200] },
  'GET /v1/segments/{id}': { url: `/v1/segments/${fx.segmentId}`, status: [404] },
  'PATCH /v1/segments/{id}': { url: `/v1/segments/${fx.segmentId}`, body: { name: 'Hijack' }, status: [404] },
  'DELETE /v1/segments/{id}': { url: `/v1/segments/${fx.segmentId}`, status: [404] },
  'GET /v1/segments/{id}/preview': { url: `/v1/segments/${fx.segmentId}/preview`, status: [404] },
  'GET /v1/segments/{id}/contacts': { url: `/v1/segments/${fx.segmentId}/contacts`, status: [404] },
  'GET /v1/campaigns': { url: '/v1/campaigns?status=draft', status: [200] },
  // A's segment and journey ids name nothing in B.
  'POST /v1/campaigns': {
    url: '/v1/campaigns',
    body: { name: 'a-secret-campaign', type: 'win_back', audience: { segment_id: fx.segmentId }, action: { journey_id: fx.journeyId } },
    status: [400],
  },
  'GET /v1/campaigns/{id}': { url: `/v1/campaigns/${fx.campaignId}`, status: [404] },
  'PATCH /v1/campaigns/{id}': { url: `/v1/campaigns/${fx.campaignId}`, body: { name: 'Hijack' }, status: [404] },
  'DELETE /v1/campaigns/{id}': { url: `/v1/campaigns/${fx.campaignId}`, status: [404] },
  'POST /v1/campaigns/{id}/start': { url: `/v1/campaigns/${fx.campaignId}/start`, status: [404] },
  'POST /v1/campaigns/{id}/pause': { url: `/v1/campaigns/${fx.campaignId}/pause`, status: [404] },
  'POST /v1/campaigns/{id}/resume': { url: `/v1/campaigns/${fx.campaignId}/resume`, status: [404] },
  'POST /v1/campaigns/{id}/stop': { url: `/v1/campaigns/${fx.campaignId}/stop`, status: [404] },
  'GET /v1/campaigns/{id}/recipients': { url: `/v1/campaigns/${fx.campaignId}/recipients?format=csv`, status: [404] },
  'GET /v1/campaigns/{id}/runs': { url: `/v1/campaigns/${fx.campaignId}/runs`, status: [404] },
});

let api: TestApi;
let a: TestTenant;
let b: TestTenant;
let fx: Fixture;

async function snapshot(tenantId: string): Promise<string> {
  const parts: unknown[] = [];
  for (const table of TENANT_TABLES) {
    const { rows } = await api.db.query(`select * from ${table} where tenant_id = $1 order by 1`, [tenantId]);
    parts.push({ table, rows });
  }
  for (const [table, sql] of Object.entries(CHILD_TABLES)) parts.push({ table, rows: (await api.db.query(sql, [tenantId])).rows });
  const { rows } = await api.db.query('select * from tenants where id = $1', [tenantId]);
  parts.push({ table: 'tenants', rows });
  return JSON.stringify(parts);
}

beforeAll(async () => {
  api = await testApi();
  a = await api.tenant('A');
  b = await api.tenant('B');
  const contact = await api.call(a, 'POST', '/v1/contacts', { external_id: 'shared-ext-1', email: 'owner@a.example', phone: '+14155552671', name: 'Owner' });
  expect(contact.status).toBe(201);
  const key = await api.call(a, 'POST', '/v1/api-keys', { name: 'a-key' });
  const consent = await api.call(a, 'POST', `/v1/contacts/${contact.body.id}/consent`, { channel: 'sms', status: 'granted', type: 'express', source: 'web_form' });
  expect(consent.status).toBe(201);
  const supp = await api.call(a, 'POST', '/v1/suppressions', { channel: 'email', address: 'blocked@a.example', reason: 'bounced' });
  expect(supp.status).toBe(201);
  const ev = await api.call(a, 'POST', '/v1/events', { id: 'evt-a-1', name: 'signup', contact_id: contact.body.id, properties: { plan: 'secret-plan-a' } });
  expect(ev.status).toBe(202);
  const template = await api.call(a, 'POST', '/v1/templates', { name: 'a-secret-template', channel: 'sms', body: 'secret-body-a' });
  expect(template.status).toBe(201);
  const journey = await api.call(a, 'POST', '/v1/journeys', { name: 'secret-journey-a', definition: journeyDefinition });
  expect((await api.call(a, 'POST', `/v1/journeys/${journey.body.id}/publish`)).status).toBe(201);
  const enrolled = await api.call(a, 'POST', `/v1/journeys/${journey.body.id}/enrollments`, { contact_id: contact.body.id, vars: { code: 'secret-var-a' } });
  const enrollmentId = enrolled.body.enrolled[0].enrollment_id;
  const messageId = '01900000-0000-7000-8000-00000000a001';
  await api.db.query(
    `insert into messages (id, tenant_id, contact_id, enrollment_id, journey_id, node, channel, status, idempotency_key, due_at, content, created_at, updated_at)
     values ($1, $2, $3, $4, $5, 'hello', 'sms', 'queued', 'iso-1', now(), '{"body":"secret-body-a"}', now(), now())`,
    [messageId, a.id, contact.body.id, enrollmentId, journey.body.id],
  );
  await api.db.query(`insert into message_status (message_id, status, at) values ($1, 'queued', now())`, [messageId]);
  // The test app has no secret key; A's account is written through the store with one.
  const provider = await createAccount(
    api.db,
    {
      secrets: new SecretBox('isolation-test-secret-key-0123456789abcdef'),
      adapters: new Map([['twilio', { kind: 'twilio', channels: ['sms'], check: () => [], send: () => Promise.resolve({ ok: false, permanent: true, error: 'unused' }) }]]),
    },
    a.id,
    { name: 'a-secret-provider', kind: 'twilio', credentials: { token: 'a-secret-provider-token' }, config: { from: '+14155550123' } },
    'test',
    new Date(),
  );
  const keyword = await api.call(a, 'PUT', `/v1/keywords/${encodeURIComponent('a secret phrase')}`, { action: 'intent', intent: 'a_secret_intent' });
  expect(keyword.status).toBe(201);
  const waTemplate = await api.call(a, 'POST', '/v1/whatsapp-templates', {
    name: 'a_secret_wa_template',
    language: 'en_US',
    category: 'utility',
    components: [{ type: 'BODY', text: 'secret-wa-body-a {{1}}' }],
  });
  expect(waTemplate.status).toBe(201);
  const knowledge = await api.call(a, 'POST', '/v1/knowledge', { kind: 'faq', title: 'Wholesale', body: 'a-secret-knowledge-body: zebra crocus wholesale', topics: ['a-secret-topic'] });
  expect(knowledge.status).toBe(201);
  const segment = await api.call(a, 'POST', '/v1/segments', { name: 'a-secret-segment', definition: { tag: 'a-secret-tag' } });
  expect(segment.status).toBe(201);
  const campaign = await api.call(a, 'POST', '/v1/campaigns', {
    name: 'a-secret-campaign',
    type: 'win_back',
    audience: { segment_id: segment.body.id },
    action: { send: { channel: 'sms', content: { body: 'a-secret-campaign-body' } } },
  });
  expect(campaign.status).toBe(201);
  const review = await createReviewTask(
    api.db,
    a.id,
    {
      contact_id: contact.body.id,
      channel: 'sms',
      draft: 'a-secret-review-draft Reply YES',
      sources: { source: 'composer', items_used: [{ id: knowledge.body.id, title: 'Wholesale' }], elements: [], personalization_score: 0, fallback_reason: null },
      rules: { max_length: 480, cta: { text: 'Reply YES' }, footer: null },
    },
    'test',
    new Date(),
  );
  await api.db.query(
    `insert into synthesized_messages (message_id, tenant_id, campaign_id, contact_id, source, items, elements, personalization_score, pulse_week, created_at)
     values ($1, $2, $3, $4, 'composer', $5, '{first_name}', 0.5, '2026-W10', now())`,
    [messageId, a.id, campaign.body.id, contact.body.id, JSON.stringify([{ id: knowledge.body.id, title: 'Wholesale' }])],
  );
  fx = {
    contactId: contact.body.id,
    contactEmail: 'owner@a.example',
    contactPhone: '+14155552671',
    externalId: 'shared-ext-1',
    keyId: key.body.id,
    suppressionId: supp.body.id,
    eventSourceId: 'evt-a-1',
    templateId: template.body.id,
    templateName: 'a-secret-template',
    journeyId: journey.body.id,
    enrollmentId,
    messageId,
    providerId: provider.id,
    keywordPhrase: 'a secret phrase',
    whatsappTemplateId: waTemplate.body.id,
    knowledgeId: knowledge.body.id,
    segmentId: segment.body.id,
    campaignId: campaign.body.id,
    reviewId: review.id,
    secrets: [
      contact.body.id,
      key.body.id,
      key.body.prefix,
      supp.body.id,
      'blocked@a.example',
      'secret-plan-a',
      a.id,
      template.body.id,
      'secret-body-a',
      journey.body.id,
      'secret-journey-a',
      enrollmentId,
      'secret-var-a',
      messageId,
      provider.id,
      'a-secret-provider',
      'a-secret-provider-token',
      'a secret phrase',
      'a_secret_intent',
      waTemplate.body.id,
      'secret-wa-body-a',
      knowledge.body.id,
      'a-secret-knowledge-body',
      segment.body.id,
      campaign.body.id,
      'a-secret-campaign',
      review.id,
      'a-secret-review-draft',
    ],
  };
});
afterAll(() => api.close());

describe('tenant isolation', () => {
  it('has a case for every operation in the OpenAPI document', () => {
    const doc = api.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const known = Object.keys(cases(fx));
    expect(operations.filter((op) => !known.includes(op)), 'operations without an isolation case').toEqual([]);
    expect(known.filter((op) => !operations.includes(op)), 'cases for operations that no longer exist').toEqual([]);
  });

  it("never lets tenant B read or change tenant A's data, on any route", async () => {
    const before = await snapshot(a.id);
    for (const [op, c] of Object.entries(cases(fx))) {
      const method = op.split(' ')[0]!;
      const res = await api.call(b, method, c.url, c.body);
      expect(c.status, `${op} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`).toContain(res.status);
      const text = JSON.stringify(res.body);
      for (const secret of fx.secrets) expect(text.includes(secret), `${op} leaked ${secret}`).toBe(false);
    }
    expect(await snapshot(a.id)).toBe(before);
  });

  it("gives B's writes that named A's identifiers to B's own records", async () => {
    const mine = await api.call(b, 'GET', `/v1/contacts?external_id=shared-ext-1`);
    expect(mine.body.data).toHaveLength(1);
    expect(mine.body.data[0].id).not.toBe(fx.contactId);
    const theirs = await api.call(a, 'GET', `/v1/contacts/${fx.contactId}`);
    expect(theirs.body.name).toBe('Owner');
  });
});
