import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { simulate, SimulationError, SimulationTemplate, type SimulationOptions, type SimulationReport } from '../src/engine/simulate.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';
import { runCli } from './helpers/cli.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/simulate-journey.yaml', import.meta.url));
const journey = parseYaml(readFileSync(FIXTURE, 'utf8')) as JourneyDefinition;

// Monday 09:00 UTC: mid-afternoon in Asia, night in the Americas, evening in Sydney.
const START = new Date('2026-03-02T09:00:00Z');
const template = new SimulationTemplate();
afterAll(() => template.close());

const run = (opts: Partial<SimulationOptions> = {}) => simulate(journey, { contacts: 200, days: 7, seed: 42, start: START, template, ...opts });
const row = (r: SimulationReport, node: string) => r.funnel.find((f) => f.node === node)!;

describe('simulate', () => {
  let report: SimulationReport;
  beforeAll(async () => {
    report = await run();
  }, 120_000);

  it('walks every contact through the real engine and reports a funnel per node in definition order', () => {
    expect(report).toMatchObject({ contacts: 200, days: 7, seed: 42, start: START.toISOString(), virtual_end: '2026-03-09T09:00:00.000Z' });
    expect(report.funnel.map((f) => [f.node, f.type])).toEqual([
      ['offer', 'send'],
      ['wait', 'wait'],
      ['thanks', 'send'],
    ]);
    expect(row(report, 'offer').entered).toBe(200);
    const wait = row(report, 'wait');
    expect(wait.entered).toBe(200);
    expect(wait.outcomes.reply! + wait.outcomes.timeout!).toBe(200);
    expect(row(report, 'thanks').entered).toBe(wait.outcomes.reply);
    // Two days without a reply end the journey well inside the week.
    expect(report.ended).toEqual({ completed: 200 });
    expect(report.blocked).toEqual({});
  });

  it('holds sends for the recipient\'s allowed hours instead of dropping them', () => {
    const offer = row(report, 'offer');
    // At 09:00 UTC it is night in the Americas: those SMS wait for the morning.
    expect(offer.outcomes.deferred).toBeGreaterThan(0);
    expect((report.deferred.quiet_hours ?? 0) + (report.deferred.send_window ?? 0)).toBe(report.funnel.reduce((n, f) => n + (f.outcomes.deferred ?? 0), 0));
    // ...and every one of them was eventually queued and sent.
    expect(offer.outcomes.queued).toBe(200);
    const sms = report.messages.sms!;
    expect(Object.values(sms).reduce((a, b) => a + b, 0)).toBe(200);
    expect(sms.suppressed).toBeUndefined();
  });

  it('tells the sample contact\'s story in time order', () => {
    const { contact, timeline } = report.sample;
    expect(contact).toMatchObject({ zone: expect.stringMatching(/^[A-Z][a-z]+\/[A-Za-z_]+$/), phone: expect.stringMatching(/^\+\d{8,15}$/) });
    expect(contact.attributes).toMatchObject({ first_name: expect.any(String), last_name: expect.any(String), city: expect.any(String), plan: expect.any(String) });
    expect(contact.attributes.renewal_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const times = timeline.map((t) => Date.parse(t.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(timeline.some((t) => t.node === 'offer' && t.outcome === 'queued')).toBe(true);
    expect(timeline.some((t) => t.node === 'offer' && t.outcome === 'sent')).toBe(true);
  });

  it('takes the timeout path for everyone when nobody replies, and the reply path when all do', async () => {
    const none = await run({ probabilities: { replied: 0 } });
    expect(row(none, 'wait').outcomes).toMatchObject({ timeout: 200 });
    expect(row(none, 'wait').outcomes.reply).toBeUndefined();
    expect(row(none, 'thanks').entered).toBe(0);

    const all = await run({ probabilities: { delivered: 1, replied: 1 } });
    expect(row(all, 'wait').outcomes).toMatchObject({ reply: 200 });
    expect(row(all, 'wait').outcomes.timeout).toBeUndefined();
    expect(row(all, 'thanks').entered).toBe(200);
    expect(all.messages.sms).toEqual({ replied: 200 });
    // The thank-you has buttons: WhatsApp replies to it are taps on one of them.
    const taps = all.sample.timeline.filter((t) => t.node === 'thanks' && t.outcome === 'replied');
    expect(taps.every((t) => ['call_morning', 'call_evening'].includes(t.detail?.payload as string))).toBe(true);
  }, 120_000);

  it('gives the same report for the same seed, and another for another seed', async () => {
    const again = await run();
    const { wall_ms: _a, ...first } = report;
    const { wall_ms: _b, ...second } = again;
    expect(second).toEqual(first);
    const other = await run({ seed: 43 });
    expect(other.sample).not.toEqual(report.sample);
  }, 120_000);

  it('lets events end enrollments as converted', async () => {
    const r = await simulate(
      { ...journey, goals: [{ event: 'callback_booked' }] },
      { contacts: 100, days: 3, seed: 1, start: START, template, probabilities: { replied: 0 }, events: [{ name: 'callback_booked', probability: 1, within: '1d' }] },
    );
    expect(r.ended).toEqual({ converted: 100 });
  }, 120_000);

  it('never calls a webhook: each answers at once with {}', async () => {
    const r = await simulate(
      {
        entry: { api: true },
        nodes: [
          { id: 'lookup', type: 'action', webhook: { url: 'http://127.0.0.1:9/never-called', save_as: 'quote' }, next: 'tell' },
          { id: 'tell', type: 'send', channel: 'email', content: { subject: 'Quote', body: 'price {{ vars.quote.price }}' } },
        ],
      },
      { contacts: 20, days: 1, start: START, template },
    );
    expect(r.funnel[0]).toMatchObject({ node: 'lookup', entered: 20, outcomes: { calling_webhook: 20, webhook_answered: 20 } });
    expect(r.funnel[1]!.outcomes.queued).toBe(20);
  }, 120_000);

  it('refuses a definition that could not be published, naming the node', async () => {
    const broken = { ...journey, nodes: [{ ...journey.nodes[0]!, next: 'nowhere' }, ...journey.nodes.slice(1)] } as JourneyDefinition;
    const err = await simulate(broken, { contacts: 10, days: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulationError);
    expect((err as SimulationError).problems).toEqual([expect.objectContaining({ field: 'nodes[0].next', node: 'offer' })]);
    await expect(simulate(journey, { contacts: 0, days: 1 })).rejects.toThrow(/contacts/);
  });
});

const rapport = (...args: string[]) => runCli({}, ...args);

describe('rapport simulate', () => {
  const args = ['--contacts', '60', '--days', '3', '--seed', '7', '--start', START.toISOString()];

  it('prints the funnel and the sample contact\'s timeline in UTC and local time', async () => {
    const res = await rapport('simulate', FIXTURE, ...args);
    expect(res.code).toBe(0);
    // stderr is not a terminal here: no progress bar.
    expect(res.stderr).toBe('');
    const out = res.stdout;
    expect(out).toContain('Simulated "Callback offer" for 60 contacts over 3 days');
    expect(out).toMatch(/^NODE\s+TYPE\s+ENTERED\s+OUTCOMES$/m);
    expect(out).toMatch(/^offer\s+send\s+60\s+100%\s+queued 60/m);
    expect(out).toMatch(/^wait\s+wait\s+60\s+100%/m);
    expect(out).toMatch(/^Sample contact: .+, [A-Z][a-z]+\/\w+$/m);
    expect(out).toMatch(/^ {2}UTC\s+LOCAL \([A-Za-z_/]+\)\s+NODE\s+WHAT$/m);
    expect(out).toMatch(/^ {2}2026-03-\d\d \d\d:\d\d:\d\d\s+(Mon|Tue|Wed|Thu) \d\d Mar \d\d:\d\d\s+offer\s+(queued|deferred)/m);
  }, 120_000);

  it('prints the report as JSON with --json', async () => {
    const res = await rapport('simulate', FIXTURE, ...args, '--replied', '0', '--json');
    expect(res).toMatchObject({ code: 0, stderr: '' });
    const r = JSON.parse(res.stdout) as SimulationReport;
    expect(r.funnel.map((f) => f.entered)).toEqual([60, 60, 0]);
    expect(r.funnel[1]!.outcomes.timeout).toBe(60);
    expect(r.probabilities).toEqual({ delivered: 0.95, opened: 0.4, clicked: 0.1, replied: 0 });
  }, 120_000);

  it('exits 1 listing every problem of a definition it cannot run', async () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const res = await rapport('simulate', `${dir}fixtures/contacts.csv`);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot be simulated/);

    const missing = await rapport('simulate', `${dir}fixtures/no-such-journey.yaml`);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toContain('no such file');

    const bad = await rapport('simulate', FIXTURE, '--replied', '1.5');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('a probability is a number from 0 to 1');
  });
});

describe('POST /v1/journeys/simulate', () => {
  let api: TestApi;
  let t: TestTenant;
  beforeAll(async () => {
    api = await testApi();
    t = await api.tenant('Sim');
  });
  afterAll(() => api.close());

  it('returns the report of a dry run under the tenant\'s own policy and writes nothing', async () => {
    await api.call(t, 'PATCH', '/v1/tenant', { time_zone: 'America/Chicago' });
    const res = await api.call(t, 'POST', '/v1/journeys/simulate', { definition: journey, contacts: 40, days: 3, seed: 9, start: START.toISOString() });
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    expect(res.body).toMatchObject({ contacts: 40, days: 3, seed: 9, tenant_time_zone: 'America/Chicago' });
    expect(res.body.funnel[0]).toMatchObject({ node: 'offer', type: 'send', entered: 40 });
    expect(res.body.sample.timeline.length).toBeGreaterThan(0);
    for (const table of ['contacts', 'journeys', 'enrollments', 'messages']) {
      const { rows } = await api.db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
      expect(rows[0]!.n, table).toBe(0);
    }
  }, 120_000);

  it('refuses a broken definition with 400 naming the field and the node', async () => {
    const broken = { ...journey, nodes: [journey.nodes[0], { ...journey.nodes[1], on_reply: 'nowhere' }, journey.nodes[2]] };
    const res = await api.call(t, 'POST', '/v1/journeys/simulate', { definition: broken, contacts: 10, days: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.fields).toEqual([expect.objectContaining({ field: 'definition.nodes[1].on_reply', message: expect.stringContaining('node "wait"') })]);

    const stored = { entry: { api: true }, nodes: [{ id: 'hello', type: 'send', channel: 'sms', content: { template: 'welcome' } }] };
    const tpl = await api.call(t, 'POST', '/v1/journeys/simulate', { definition: stored });
    expect(tpl.status).toBe(400);
    expect(tpl.body.error.fields[0]).toMatchObject({ field: 'definition.nodes[0].content.template', message: expect.stringContaining('inline') });

    const big = await api.call(t, 'POST', '/v1/journeys/simulate', { definition: journey, contacts: 10_001 });
    expect(big.status).toBe(400);
    expect(big.body.error.fields[0].field).toBe('contacts');
  });
});
