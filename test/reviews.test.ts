import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeForSend } from '../src/engine/synthesize.js';
import { listAudit } from '../src/store/audit.js';
import { getTenant } from '../src/store/tenants.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

/**
 * Human review of synthesized messages: with settings.synthesis_review on, a draft becomes a
 * pending review task that one decision (approve, edit, reject) settles for good.
 */

const FOOTER = 'Reply STOP to opt out.';
const CTA = { text: 'See the spring range:', url: 'https://shop.example/spring' };
const SECRET_WORD = 'Mulch';

let api: TestApi;
let a: TestTenant;
let b: TestTenant;
let ana: string;
let mulch: string;

beforeAll(async () => {
  api = await testApi();
  a = await api.tenant('Greenhouse');
  b = await api.tenant('Other');
  const contact = await api.call(a, 'POST', '/v1/contacts', { name: 'Ana Souza', phone: '+14155550142', locale: 'en-GB', attributes: { interests: ['gardening'] } });
  expect(contact.status).toBe(201);
  ana = contact.body.id;
  const item = await api.call(a, 'POST', '/v1/knowledge', { kind: 'tip', title: 'Mulch for gardening in spring', body: 'Mulch keeps roots cool. It also saves water.', topics: ['gardening'] });
  expect(item.status).toBe(201);
  mulch = item.body.id;
});
afterAll(() => api?.close());

const setReview = async (t: TestTenant, on: boolean) => {
  const r = await api.call(t, 'PATCH', '/v1/tenant', { settings: { synthesis_review: on } });
  expect(r.status).toBe(200);
  expect(r.body.settings.synthesis_review).toBe(on);
};

const draft = (t: TestTenant = a, extra: object = {}) => api.call(t, 'POST', '/v1/synthesis/drafts', { contact_id: ana, channel: 'sms', cta: CTA, ...extra });

async function pendingTask(extra: object = {}): Promise<any> {
  const r = await draft(a, extra);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.review_task;
}

describe('human review of synthesized messages', () => {
  it('refuses a setting that is not a boolean, naming it', async () => {
    const r = await api.call(a, 'PATCH', '/v1/tenant', { settings: { synthesis_review: 'yes' } });
    expect(r.status).toBe(400);
    expect(r.body.error.fields.map((f: { field: string }) => f.field)).toContain('settings.synthesis_review');
  });

  it('returns the message directly while review is off, and stores nothing', async () => {
    await setReview(a, false);
    const r = await draft();
    expect(r.status).toBe(200);
    expect(r.body.review_task).toBeUndefined();
    expect(r.body.source).toBe('composer');
    expect(r.body.text.endsWith(FOOTER)).toBe(true);
    expect(r.body.items_used).toEqual([{ id: mulch, title: 'Mulch for gardening in spring' }]);
    const { rows } = await api.db.query('select count(*)::int as n from review_tasks where tenant_id = $1', [a.id]);
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('turns a draft into a pending task with its sources, rules and subject while review is on', async () => {
    await setReview(a, true);
    const preview = await api.call(a, 'POST', '/v1/synthesis/preview', { contact_id: ana, channel: 'sms', cta: CTA });
    const campaign = '01900000-0000-7000-8000-0000000c0001';
    const task = await pendingTask({ subject: { campaign_id: campaign, occurrence: '2026-03-03T09:00:00Z' } });
    expect(task).toMatchObject({
      contact_id: ana,
      channel: 'sms',
      status: 'pending',
      draft: preview.body.text,
      final: null,
      decided_by: null,
      decided_at: null,
      subject: { campaign_id: campaign, occurrence: '2026-03-03T09:00:00Z' },
      rules: { max_length: 480, cta: CTA, footer: FOOTER },
      sources: { source: 'composer', items_used: [{ id: mulch, title: 'Mulch for gardening in spring' }], fallback_reason: null },
    });
    expect(task.sources.elements).toEqual(preview.body.elements);
    expect(task.sources.personalization_score).toBe(preview.body.personalization_score);

    const got = await api.call(a, 'GET', `/v1/reviews/${task.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(task);
    const pending = await api.call(a, 'GET', '/v1/reviews?status=pending');
    expect(pending.body.data.map((t: { id: string }) => t.id)).toContain(task.id);
  });

  it('approves: the final text is the draft, and the task leaves the pending list', async () => {
    const task = await pendingTask();
    const r = await api.call(a, 'POST', `/v1/reviews/${task.id}/approve`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'approved', final: task.draft, reason: null });
    expect(r.body.decided_by).toMatch(/^key:/);
    expect(new Date(r.body.decided_at).toISOString()).toBe(api.clock.now().toISOString());
    const pending = await api.call(a, 'GET', '/v1/reviews?status=pending&limit=1000');
    expect(pending.body.data.map((t: { id: string }) => t.id)).not.toContain(task.id);
    const approved = await api.call(a, 'GET', '/v1/reviews?status=approved');
    expect(approved.body.data.map((t: { id: string }) => t.id)).toContain(task.id);
  });

  it('edits: the final text is the reviewer’s, which must keep the call to action and the footer', async () => {
    const task = await pendingTask();
    const mine = `Hi Ana, the spring range is in. ${CTA.text} ${CTA.url}\n\n${FOOTER}`;

    const noFooter = await api.call(a, 'POST', `/v1/reviews/${task.id}/edit`, { text: `Hi Ana, the spring range is in. ${CTA.text} ${CTA.url}` });
    expect(noFooter.status).toBe(400);
    expect(noFooter.body.error.fields.map((f: { field: string }) => f.field)).toEqual(['text']);
    expect(noFooter.body.error.message).toMatch(/footer/);

    const noCta = await api.call(a, 'POST', `/v1/reviews/${task.id}/edit`, { text: `Hi Ana, the spring range is in.\n\n${FOOTER}` });
    expect(noCta.status).toBe(400);
    expect(noCta.body.error.fields[0].field).toBe('text');
    expect(noCta.body.error.message).toMatch(/call-to-action/);

    const tooLong = await api.call(a, 'POST', `/v1/reviews/${task.id}/edit`, { text: `${'Spring is here. '.repeat(40)}${CTA.text} ${CTA.url}\n\n${FOOTER}` });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toMatch(/over the maximum of 480/);

    // Refused edits decide nothing.
    expect((await api.call(a, 'GET', `/v1/reviews/${task.id}`)).body.status).toBe('pending');

    const ok = await api.call(a, 'POST', `/v1/reviews/${task.id}/edit`, { text: mine });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'edited', final: mine, draft: task.draft });
  });

  it('rejects with a reason: nothing to send', async () => {
    const task = await pendingTask();
    const r = await api.call(a, 'POST', `/v1/reviews/${task.id}/reject`, { reason: 'off-brand' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'rejected', final: null, reason: 'off-brand' });
  });

  it('refuses a second decision with 409 naming status, whatever the first was', async () => {
    const task = await pendingTask();
    expect((await api.call(a, 'POST', `/v1/reviews/${task.id}/reject`, { reason: 'no' })).status).toBe(200);
    const valid = `${CTA.text} ${CTA.url}\n\n${FOOTER}`;
    for (const [path, body] of [
      ['approve', undefined],
      ['edit', { text: valid }],
      ['reject', { reason: 'again' }],
    ] as const) {
      const r = await api.call(a, 'POST', `/v1/reviews/${task.id}/${path}`, body);
      expect(r.status, path).toBe(409);
      expect(r.body.error.fields).toEqual([expect.objectContaining({ field: 'status' })]);
    }
    const after = await api.call(a, 'GET', `/v1/reviews/${task.id}`);
    expect(after.body).toMatchObject({ status: 'rejected', reason: 'no', final: null });
  });

  it('lets exactly one of two simultaneous decisions through', async () => {
    const task = await pendingTask();
    const results = await Promise.all([api.call(a, 'POST', `/v1/reviews/${task.id}/approve`), api.call(a, 'POST', `/v1/reviews/${task.id}/reject`, { reason: 'race' })]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const entries = await listAudit(api.db, a.id, { limit: 100, entityType: 'review_task', entityId: task.id });
    expect(entries.filter((e) => e.action !== 'review.created')).toHaveLength(1);
  });

  it('writes an audit entry for every creation and decision, without the message text', async () => {
    const task = await pendingTask();
    const edited = `Ana, one for your garden. ${CTA.text} ${CTA.url}\n\n${FOOTER}`;
    expect((await api.call(a, 'POST', `/v1/reviews/${task.id}/edit`, { text: edited })).status).toBe(200);
    const entries = await listAudit(api.db, a.id, { limit: 100, entityType: 'review_task', entityId: task.id });
    expect(entries.map((e) => e.action).sort()).toEqual(['review.created', 'review.edited']);
    const decided = entries.find((e) => e.action === 'review.edited')!;
    expect(decided.actor).toMatch(/^key:/);
    expect(decided.data).toMatchObject({ contact_id: ana, channel: 'sms', changed: true });

    const all = await listAudit(api.db, a.id, { limit: 1000, entityType: 'review_task' });
    expect(all.length).toBeGreaterThan(2);
    const text = JSON.stringify(all);
    for (const fragment of [SECRET_WORD, 'garden', FOOTER, 'off-brand', 'Ana']) expect(text.includes(fragment), fragment).toBe(false);
  });

  it('pages through the list with a cursor, oldest first', async () => {
    const first = await api.call(a, 'GET', '/v1/reviews?limit=2');
    expect(first.body.data).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await api.call(a, 'GET', `/v1/reviews?limit=2&cursor=${first.body.next_cursor}`);
    const ids = [...first.body.data, ...second.body.data].map((t: { id: string }) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it("keeps tasks to their tenant: another tenant can neither see nor decide them, nor draft for A's contact", async () => {
    const task = await pendingTask();
    await setReview(b, true);
    expect((await api.call(b, 'GET', `/v1/reviews/${task.id}`)).status).toBe(404);
    expect((await api.call(b, 'POST', `/v1/reviews/${task.id}/approve`)).status).toBe(404);
    expect((await api.call(b, 'POST', `/v1/reviews/${task.id}/edit`, { text: `${CTA.text} ${CTA.url}\n\n${FOOTER}` })).status).toBe(404);
    expect((await api.call(b, 'POST', `/v1/reviews/${task.id}/reject`, { reason: 'x' })).status).toBe(404);
    expect((await api.call(b, 'GET', '/v1/reviews')).body.data).toEqual([]);
    expect((await draft(b)).status).toBe(404);
    expect((await api.call(a, 'GET', `/v1/reviews/${task.id}`)).body.status).toBe('pending');
  });

  it("synthesizeForSend records a model's draft and its fallback reason in the task's sources", async () => {
    const tenant = await getTenant(api.db, a.id);
    const longAnswer = `${'Mulch keeps roots cool. '.repeat(30)}${CTA.text} ${CTA.url}`;
    const answers = [`Hi Ana! Mulch keeps roots cool. ${CTA.text} ${CTA.url}`, longAnswer];
    const llm = { model: 'stub', complete: async () => answers.shift()! };
    const deps = { llm, now: api.clock.now() };

    const good = await synthesizeForSend(api.db, tenant, ana, { channel: 'sms', cta: CTA }, deps, { enrollment_id: '01900000-0000-7000-8000-0000000e0001' }, 'worker');
    expect(good.status).toBe('pending_review');
    if (good.status !== 'pending_review') return;
    expect(good.review_task).toMatchObject({ id: good.review_task_id, sources: { source: 'llm', fallback_reason: null }, subject: { enrollment_id: '01900000-0000-7000-8000-0000000e0001' } });
    expect(good.review_task.draft).toBe(`Hi Ana! Mulch keeps roots cool. ${CTA.text} ${CTA.url}\n\n${FOOTER}`);
    const created = await listAudit(api.db, a.id, { limit: 5, entityType: 'review_task', entityId: good.review_task_id });
    expect(created.map((e) => [e.action, e.actor])).toEqual([['review.created', 'worker']]);

    const fallback = await synthesizeForSend(api.db, tenant, ana, { channel: 'sms', cta: CTA }, deps);
    if (fallback.status !== 'pending_review') throw new Error('expected a review task');
    expect(fallback.review_task.sources.source).toBe('composer');
    expect(fallback.review_task.sources.fallback_reason).toMatch(/^too_long/);

    const off = await synthesizeForSend(api.db, { ...tenant, settings: { ...tenant.settings, synthesis_review: false } }, ana, { channel: 'sms', cta: CTA }, { llm: null, now: api.clock.now() });
    expect(off.status).toBe('ready');
    if (off.status === 'ready') expect(off.text.endsWith(FOOTER)).toBe(true);
  });
});
