import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { syntheticContact } from '../src/engine/simulate-crowd.js';
import { simulate, SimulationTemplate, type FunnelRow, type SimulationOptions, type SimulationReport, type TimelineEntry } from '../src/engine/simulate.js';
import { Worker } from '../src/engine/worker.js';
import { newId } from '../src/store/ids.js';
import { testApi, type TestApi, type TestTenant } from './helpers/api.js';

/**
 * The recipes in docs/recipes as shipped. Each journey file goes through the path the API gives
 * it (POST /v1/journeys as YAML, validate, publish) and then through the simulator, the real
 * engine on synthetic contacts, asserting that the funnel does what the recipe's page promises.
 * The win-back campaign runs end to end through the HTTP app: its segment and campaign files, the
 * campaign runner's throttle, the journey's calls through the sandbox, key presses as replies.
 *
 * Virtual time moves in steps of at least the resolution: work due inside a step is done at its
 * end. Runs that check when messages land use 30 minutes and allow one step of lateness; the
 * others use an hour, which keeps the file fast.
 */

const DIR = fileURLToPath(new URL('../docs/recipes/', import.meta.url));
const read = (file: string) => readFileSync(`${DIR}${file}`, 'utf8');
const recipe = (name: string) => parseYaml(read(`${name}.yaml`)) as JourneyDefinition;

/** The recipes this suite covers; progressive-escalation has its own (escalation.test.ts). */
const RECIPES = [
  'post-scan-nurture',
  'win-back-call-campaign',
  'proposal-follow-up',
  'policy-renewal',
  'daily-check-in',
  'weekly-drip',
  'appointment-reminders',
  'feedback-request',
] as const;

// Monday 09:30 UTC: night in the Americas, working hours in Europe and Asia, evening in Sydney.
// Half past, so that no zone's 10:00 falls within the hour after it.
const START = new Date('2026-03-02T09:30:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const template = new SimulationTemplate();
let api: TestApi;
beforeAll(async () => {
  api = await testApi();
});
afterAll(async () => {
  await template.close();
  await api?.close();
});

const run = (def: JourneyDefinition, opts: Partial<SimulationOptions> & Pick<SimulationOptions, 'contacts' | 'days'>) =>
  simulate(def, { seed: 1, start: START, template, resolutionMs: HOUR, ...opts });

function row(r: SimulationReport, node: string): FunnelRow {
  const f = r.funnel.find((x) => x.node === node);
  if (!f) throw new Error(`no node ${node} in the funnel`);
  return f;
}
const out = (r: SimulationReport, node: string, outcome: string) => row(r, node).outcomes[outcome] ?? 0;
const entered = (r: SimulationReport, node: string) => row(r, node).entered;
const total = (counts: Record<string, number> | undefined) => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
const ended = (r: SimulationReport) => total(r.ended);

/** When the sample contact's message from `node` was queued (the engine's step), in ms. */
const queuedAt = (timeline: TimelineEntry[], node: string) => timeline.filter((t) => t.node === node && t.outcome === 'queued').map((t) => Date.parse(t.at));
const sentEntries = (timeline: TimelineEntry[]) => timeline.filter((t) => t.outcome === 'sent');

const localFormat = new Map<string, Intl.DateTimeFormat>();
/** The wall clock in `zone` at `t`: date, time, ISO weekday. */
function local(t: number, zone: string): { date: string; time: string; weekday: number } {
  let f = localFormat.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', weekday: 'short', hourCycle: 'h23' });
    localFormat.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`, weekday: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(p.weekday!) + 1 };
}

/** The instant of the wall-clock time `hm` on `date` (YYYY-MM-DD) in `zone`. */
function zoned(date: string, hm: string, zone: string): number {
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = hm.split(':').map(Number);
  const wall = Date.UTC(y!, m! - 1, d!, hh!, mm!);
  let t = wall;
  for (let i = 0; i < 3; i++) {
    const l = local(t, zone);
    const [ly, lm, ld] = l.date.split('-').map(Number);
    const [lh, lmin] = l.time.split(':').map(Number);
    t += wall - Date.UTC(ly!, lm! - 1, ld!, lh!, lmin!);
  }
  return t;
}

/** `date` moved by whole calendar days. */
function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y!, m! - 1, d! + days)).toISOString().slice(0, 10);
}

/** That `count` of `n` seeded draws is within `sds` standard deviations of the share `p`. */
function aboutShare(count: number, n: number, p: number, sds = 4): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(count, `${count} of ${n}, expected about ${(n * p).toFixed(1)}`).toBeGreaterThanOrEqual(Math.floor(n * p - sds * sd));
  expect(count, `${count} of ${n}, expected about ${(n * p).toFixed(1)}`).toBeLessThanOrEqual(Math.ceil(n * p + sds * sd));
}

// ---------------------------------------------------------------------------------------------

describe('every recipe', () => {
  let tenant: TestTenant;
  let validateSchema: ReturnType<Ajv2020['compile']>;
  beforeAll(async () => {
    tenant = await api.tenant('Recipes');
    const schema = (await api.app.inject({ method: 'GET', url: '/v1/journeys/schema.json' })).json();
    validateSchema = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
  });

  async function yamlCall(method: 'POST', url: string, body?: string) {
    const res = await api.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${tenant.key}`, ...(body !== undefined ? { 'content-type': 'application/yaml' } : {}) },
      payload: body,
    });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  }

  it.each(RECIPES)('%s is pushed as YAML, validates and publishes through the API with no problems', async (name) => {
    const text = read(`${name}.yaml`);
    expect(validateSchema(parseYaml(text)), JSON.stringify(validateSchema.errors)).toBe(true);
    const created = await yamlCall('POST', '/v1/journeys', text);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(await yamlCall('POST', `/v1/journeys/${created.body.id}/validate`)).toMatchObject({ status: 200, body: { valid: true, problems: [] } });
    const published = await yamlCall('POST', `/v1/journeys/${created.body.id}/publish`);
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    expect(published.body).toMatchObject({ version: 1, status: 'active' });
  });

  it.each(RECIPES)('%s has a page that links its file, and a row in the README table', (name) => {
    const page = read(`${name}.md`);
    expect(page).toContain(`(${name}.yaml)`);
    expect(read('README.md')).toContain(`(${name}.md) ([yaml](${name}.yaml))`);
  });

  it('registers every WhatsApp template the pages show, with as many parameters as the journeys fill', async () => {
    const used = new Map<string, number>();
    for (const name of RECIPES) {
      for (const n of recipe(name).nodes) {
        if (n.type === 'send' && n.content.whatsapp_template) used.set(n.content.whatsapp_template.name, n.content.whatsapp_template.parameters?.length ?? 0);
      }
    }
    const registered = new Map<string, number>();
    for (const name of RECIPES) {
      for (const m of read(`${name}.md`).matchAll(/```json template\n([\s\S]*?)```/g)) {
        const res = await api.call(tenant, 'POST', '/v1/whatsapp-templates', JSON.parse(m[1]!));
        expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(201);
        registered.set(res.body.name, res.body.parameter_count);
      }
    }
    expect(Object.fromEntries(registered)).toEqual(Object.fromEntries(used));
  });

  it('accepts every keyword row the pages show', async () => {
    let rows = 0;
    for (const name of RECIPES) {
      for (const m of read(`${name}.md`).matchAll(/```json keywords\n([\s\S]*?)```/g)) {
        for (const k of JSON.parse(m[1]!) as { phrase: string; intent: string }[]) {
          const res = await api.call(tenant, 'PUT', `/v1/keywords/${encodeURIComponent(k.phrase)}`, { action: 'intent', intent: k.intent });
          expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(201);
          rows++;
        }
      }
    }
    expect(rows).toBeGreaterThan(0);
  });

  it('covers every journey file in docs/recipes', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
    expect(files.sort()).toEqual([...RECIPES, 'progressive-escalation'].sort());
  });
});

// ---------------------------------------------------------------------------------------------

describe('post-scan nurture', () => {
  const N = 100;
  let r: SimulationReport;
  beforeAll(async () => {
    r = await run(recipe('post-scan-nurture'), { contacts: N, days: 8 });
  }, 120_000);

  it('texts everyone, emails those who did not answer a day later, and branches on the open', () => {
    expect(entered(r, 'thanks')).toBe(N);
    expect(out(r, 'wait-day', 'reply') + out(r, 'wait-day', 'timeout')).toBe(N);
    expect(entered(r, 'offer-email')).toBe(out(r, 'wait-day', 'timeout'));
    expect(out(r, 'wait-open', 'reply') + out(r, 'wait-open', 'timeout')).toBe(entered(r, 'offer-email'));
    const opened = out(r, 'opened', 'taken:opened');
    const notOpened = out(r, 'opened', 'taken:default');
    expect(opened + notOpened).toBe(out(r, 'wait-open', 'timeout'));
    // Delivered (0.95), not answered (0.8), opened (0.4), among those who reach the branch.
    aboutShare(opened, opened + notOpened, (0.95 * 0.8 * 0.4) / (0.05 + 0.95 * 0.8));
    expect(entered(r, 'engaged')).toBe(opened);
    expect(entered(r, 'whatsapp-reminder')).toBe(notOpened);
  });

  it('calls those who did not answer the WhatsApp reminder, and hands every answer to a person', () => {
    expect(out(r, 'wait-whatsapp', 'reply') + out(r, 'wait-whatsapp', 'timeout')).toBe(entered(r, 'whatsapp-reminder'));
    expect(entered(r, 'call')).toBe(out(r, 'wait-whatsapp', 'timeout'));
    expect(entered(r, 'call')).toBeGreaterThan(0);
    // Simulated calls get a delivery receipt, never a key.
    expect(out(r, 'wait-call', 'timeout')).toBe(entered(r, 'call'));
    expect(entered(r, 'unreached')).toBe(entered(r, 'call'));
    const answers = out(r, 'wait-day', 'reply') + out(r, 'wait-open', 'reply');
    expect(entered(r, 'hand-off')).toBe(answers + out(r, 'answer', 'taken:default'));
    expect(out(r, 'answer', 'taken:default') + out(r, 'answer', 'taken:not now')).toBe(out(r, 'wait-whatsapp', 'reply'));
    expect(r.ended).toEqual({ completed: N });
    expect(r.blocked).toEqual({});
    // Night-time scans wait for the morning rather than being dropped.
    expect(total(r.deferred)).toBeGreaterThan(0);
  });

  it("walks a contact who never answers through all four steps, on weekdays between 09:00 and 21:00 in its zone", async () => {
    const silent = await run(recipe('post-scan-nurture'), { contacts: 12, days: 8, probabilities: { delivered: 1, opened: 0, clicked: 0, replied: 0 } });
    expect(silent.messages).toEqual({ email: { delivered: 12 }, sms: { delivered: 12 }, voice: { delivered: 12 }, whatsapp: { delivered: 12 } });
    const { contact, timeline } = silent.sample;
    const [sms, email, whatsapp, call] = ['thanks', 'offer-email', 'whatsapp-reminder', 'call'].map((n) => queuedAt(timeline, n)[0]!);
    expect(email! - sms!).toBeGreaterThanOrEqual(DAY);
    expect(whatsapp! - email!).toBeGreaterThanOrEqual(2 * DAY);
    expect(call! - whatsapp!).toBeGreaterThanOrEqual(DAY);
    const sent = sentEntries(timeline);
    expect(sent.map((s) => s.node)).toEqual(['thanks', 'offer-email', 'whatsapp-reminder', 'call']);
    for (const s of sent) {
      const l = local(Date.parse(s.at), contact.zone);
      expect(l.weekday, `${s.node} at ${s.at}`).toBeLessThanOrEqual(5);
      expect(l.time >= '09:00' && l.time < '21:00', `${s.node} at ${s.at} (${l.time} in ${contact.zone})`).toBe(true);
    }
  }, 120_000);
});

describe('proposal follow-up', () => {
  let r: SimulationReport;
  const N = 60;
  beforeAll(async () => {
    r = await run(recipe('proposal-follow-up'), { contacts: N, days: 21 });
  }, 120_000);

  it('nudges on day 2, 5 and 10, each only those who have not answered', () => {
    // The proposal went from your own system: nothing to answer in the first two days.
    expect(out(r, 'wait-day-2', 'timeout')).toBe(N);
    const waits = ['wait-day-5', 'wait-day-10', 'wait-last'];
    const nudges = ['nudge-1', 'nudge-2', 'nudge-3'];
    expect(entered(r, 'nudge-1')).toBe(N);
    for (const [i, w] of waits.entries()) {
      expect(out(r, w, 'reply') + out(r, w, 'timeout'), w).toBe(entered(r, nudges[i]!));
      expect(out(r, w, 'reply'), w).toBeGreaterThan(0);
      // Whoever answered at this wait went to `answered`; only the others reach the next nudge.
      if (i < 2) expect(entered(r, nudges[i + 1]!)).toBe(out(r, w, 'timeout'));
    }
    const replies = waits.reduce((n, w) => n + out(r, w, 'reply'), 0);
    expect(entered(r, 'answered')).toBe(replies);
    expect(out(r, 'hand-to-broker', 'emitted')).toBe(replies);
    expect(entered(r, 'no-answer')).toBe(out(r, 'wait-last', 'timeout'));
    expect(total(r.messages.whatsapp)).toBe(nudges.reduce((n, x) => n + out(r, x, 'queued'), 0));
    expect(r.ended).toEqual({ completed: N });
  });

  it('gives a client who never answers exactly three nudges, days 2, 5 and 10, in business hours', async () => {
    const silent = await run(recipe('proposal-follow-up'), { contacts: 12, days: 21, probabilities: { replied: 0 } });
    expect(total(silent.messages.whatsapp)).toBe(36);
    expect(entered(silent, 'no-answer')).toBe(12);
    const { contact, timeline } = silent.sample;
    const at = ['nudge-1', 'nudge-2', 'nudge-3'].map((n) => queuedAt(timeline, n));
    expect(at.map((a) => a.length)).toEqual([1, 1, 1]);
    const [d2, d5, d10] = at.map((a) => a[0]!);
    expect(d2! - START.getTime()).toBeGreaterThanOrEqual(2 * DAY);
    expect(d5! - d2!).toBeGreaterThanOrEqual(3 * DAY);
    expect(d10! - d5!).toBeGreaterThanOrEqual(5 * DAY);
    for (const t of [d2!, d5!, d10!]) {
      const l = local(t, contact.zone);
      expect(l.weekday).toBeLessThanOrEqual(5);
      expect(l.time >= '09:00' && l.time < '18:00', `${l.time} in ${contact.zone}`).toBe(true);
    }
  }, 120_000);

  it('stops at the first nudge for a client who answers it', async () => {
    const keen = await run(recipe('proposal-follow-up'), { contacts: 12, days: 8, probabilities: { delivered: 1, replied: 1 } });
    expect(total(keen.messages.whatsapp)).toBe(12);
    expect(entered(keen, 'nudge-2')).toBe(0);
    expect(entered(keen, 'answered')).toBe(12);
  }, 120_000);
});

describe('policy renewal', () => {
  const N = 40;
  const days = [30, 7, 1] as const;
  // A seed whose first contact (the report's sample) renews more than 30 days out, so its
  // timeline shows all three reminders.
  const renewsLate = (seed: number) => {
    const c = syntheticContact(seed, 0, START);
    return (c.attributes.renewal_date as string) > addDays(local(START.getTime(), c.time_zone).date, 31);
  };
  const seed = Array.from({ length: 50 }, (_, i) => i + 1).find(renewsLate)!;
  const people = Array.from({ length: N }, (_, i) => syntheticContact(seed, i, START));
  /** When the reminder `d` days before falls for a contact: 10:00 in its zone, d calendar days before. */
  const moment = (c: (typeof people)[number], d: number) => zoned(addDays(c.attributes.renewal_date as string, -d), '10:00', c.time_zone);
  // A moment before entry has passed: the wait takes on_past.
  const ahead = (d: number) => people.filter((c) => moment(c, d) >= START.getTime()).length;
  let r: SimulationReport;
  beforeAll(async () => {
    r = await run(recipe('policy-renewal'), { contacts: N, days: 61, seed, resolutionMs: 30 * MINUTE });
  }, 120_000);

  it('sends each reminder only to contacts whose moment was still ahead, and skips the rest', () => {
    // Synthetic contacts renew 1 to 60 days out: some are past every reminder but the last.
    expect(ahead(30)).toBeGreaterThan(0);
    expect(ahead(30)).toBeLessThan(N);
    for (const d of days) {
      expect(entered(r, `remind-${d}`), `remind-${d}`).toBe(ahead(d));
      expect(out(r, `wait-${d}`, 'past'), `wait-${d}`).toBe(N - ahead(d));
    }
    expect(entered(r, 'too-late')).toBe(N - ahead(1));
    expect(out(r, 'not-renewed', 'emitted')).toBe(ahead(1));
    expect(total(r.messages.whatsapp)).toBe(ahead(30) + ahead(7) + ahead(1));
    expect(r.blocked).toEqual({});
    expect(r.ended).toEqual({ completed: N });
  });

  it("lands each reminder at 10:00 in the contact's zone, 30, 7 and 1 days before the date", () => {
    const { contact, timeline } = r.sample;
    const renewal = contact.attributes.renewal_date as string;
    for (const d of days) {
      const at = queuedAt(timeline, `remind-${d}`);
      expect(at, `remind-${d}`).toHaveLength(1);
      const due = zoned(addDays(renewal, -d), '10:00', contact.zone);
      // On time, give or take the simulation's step.
      expect(at[0]! - due, `remind-${d}`).toBeGreaterThanOrEqual(0);
      expect(at[0]! - due, `remind-${d}`).toBeLessThan(30 * MINUTE);
      expect(local(at[0]!, contact.zone).date).toBe(addDays(renewal, -d));
    }
  });
});

describe('daily check-in', () => {
  const N = 30;
  let r: SimulationReport;
  beforeAll(async () => {
    r = await run(recipe('daily-check-in'), { contacts: N, days: 4 });
  }, 120_000);

  it("asks every morning at 09:00 in the contact's zone, once a day", () => {
    // Four days from a Monday at 09:30 UTC hold four 09:00s in every zone.
    expect(out(r, 'ask', 'queued')).toBe(4 * N);
    expect(total(r.messages.whatsapp)).toBe(4 * N);
    const { contact, timeline } = r.sample;
    const at = queuedAt(timeline, 'ask').map((t) => local(t, contact.zone));
    expect(at.map((l) => l.time)).toEqual(['09:00', '09:00', '09:00', '09:00']);
    expect(new Set(at.map((l) => l.date)).size).toBe(4);
    expect(r.ended).toEqual({ active: N });
  });

  it('keeps each answer on the contact and records it as an event; a day without one as check_in.missed', () => {
    const replies = out(r, 'wait-answer', 'reply');
    expect(replies).toBeGreaterThan(0);
    expect(out(r, 'keep-answer', 'updated')).toBe(replies);
    expect(out(r, 'record-answer', 'emitted')).toBe(replies);
    expect(out(r, 'note-missed', 'emitted')).toBe(out(r, 'wait-answer', 'timeout'));
    // The buttons' ids are what is kept: the sample's events say which it tapped.
    const { timeline } = r.sample;
    const taps = timeline.filter((t) => t.node === 'ask' && t.outcome === 'replied').map((t) => t.detail?.payload);
    const answers = timeline.filter((t) => t.outcome === 'event' && t.detail?.event === 'check_in.answered').map((t) => (t.detail?.properties as { answer: string }).answer);
    expect(answers).toEqual(taps.slice(0, answers.length));
    expect(answers.every((a) => ['done', 'partly', 'missed'].includes(a))).toBe(true);
    const days = timeline.filter((t) => t.outcome === 'event' && /^check_in\.(answered|missed)$/.test(t.detail?.event as string)).map((t) => (t.detail?.properties as { day: string }).day);
    expect(days).toEqual(['1', '2', '3', '4'].slice(0, days.length));
  });

  it('ends after the number of days the programme lasts', async () => {
    const short = parseYaml(read('daily-check-in.yaml').replace('trigger.days | default: 30', 'trigger.days | default: 2')) as JourneyDefinition;
    const two = await run(short, { contacts: 10, days: 3 });
    expect(out(two, 'ask', 'queued')).toBe(20);
    expect(entered(two, 'wrap-up')).toBe(10);
    expect(two.ended).toEqual({ completed: 10 });
  }, 120_000);
});

describe('weekly drip', () => {
  const N = 50;
  let r: SimulationReport;
  const lessons = ['lesson-1', 'lesson-2', 'lesson-3', 'lesson-4'];
  beforeAll(async () => {
    // Some contacts text STOP at some point in the first three weeks; their opt-out is recorded
    // as Rapport records a STOP keyword (message.keyword). Others just answer: that stops nothing.
    r = await run(recipe('weekly-drip'), {
      contacts: N,
      days: 22,
      events: [{ name: 'message.keyword', probability: 0.3, within: '21d', properties: { keyword: 'opt_out', channel: 'whatsapp', text: 'STOP' } }],
    });
  }, 120_000);

  it('sends the four lessons to everyone who does not say STOP, and nothing after a STOP', () => {
    const stopped = r.ended.exited ?? 0;
    expect(stopped).toBeGreaterThan(0);
    expect(r.ended).toEqual({ completed: N - stopped, exited: stopped });
    expect(entered(r, 'lesson-1')).toBe(N);
    // Each week, those who said STOP during it leave before the next lesson.
    for (let k = 1; k <= 3; k++) {
      const exitedDuring = out(r, `week-${k}`, 'exited') + out(r, `lesson-${k + 1}`, 'exited');
      expect(out(r, `lesson-${k + 1}`, 'queued'), `lesson-${k + 1}`).toBe(out(r, `lesson-${k}`, 'queued') - exitedDuring);
    }
    expect(out(r, 'lesson-4', 'queued')).toBe(N - stopped);
    expect(entered(r, 'finished')).toBe(N - stopped);
    // Answers came (they are not STOP) and changed nothing.
    expect(r.messages.whatsapp?.replied).toBeGreaterThan(0);
    expect(total(r.messages.whatsapp)).toBe(lessons.reduce((n, l) => n + out(r, l, 'queued'), 0));
  });

  it("sends the lessons a week apart, at the same time of day in the contact's zone", () => {
    const { contact, timeline } = r.sample;
    const at = lessons.flatMap((l) => queuedAt(timeline, l)).map((t) => local(t, contact.zone));
    expect(at.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < at.length; i++) expect(at[i]).toMatchObject({ date: addDays(at[i - 1]!.date, 7), time: at[i - 1]!.time });
  });
});

describe('appointment reminders', () => {
  const N = 60;
  // Synthetic contacts have one date, renewal_date (1 to 60 days out); the appointment is that day
  // at 15:00 in the contact's zone. The recipe's waits read appointment_at, a date-time its first
  // node copies from the booking event; here they read renewal_date at 15:00 instead.
  const def = parseYaml(read('appointment-reminders.yaml').replaceAll('attribute: appointment_at', 'attribute: renewal_date\n      time: "15:00"')) as JourneyDefinition;
  const people = Array.from({ length: N }, (_, i) => syntheticContact(1, i, START));
  const appointment = (c: (typeof people)[number]) => zoned(c.attributes.renewal_date as string, '15:00', c.time_zone);
  const ahead24 = people.filter((c) => appointment(c) - DAY >= START.getTime()).length;
  let r: SimulationReport;
  beforeAll(async () => {
    r = await run(def, {
      contacts: N,
      days: 61,
      resolutionMs: 30 * MINUTE,
      probabilities: { delivered: 1, replied: 0.6 },
      replyTexts: ['C', 'R', 'c', 'r.', 'Running late, is that ok?'],
    });
  }, 120_000);

  it('asks 24 hours before, unless booked later than that, and takes the confirm and reschedule buttons each about half the time', () => {
    expect(def.nodes.filter((n) => n.type === 'wait' && n.until_date).length).toBe(2);
    expect(entered(r, 'remind-24h')).toBe(ahead24);
    expect(out(r, 'wait-24h', 'past')).toBe(N - ahead24);
    const answers = out(r, 'wait-answer-24h', 'reply');
    aboutShare(answers, ahead24, 0.6);
    const confirmed = out(r, 'answer-24h', 'taken:confirmed');
    const reschedule = out(r, 'answer-24h', 'taken:reschedule');
    // WhatsApp buttons: every answer is one of the two.
    expect(confirmed + reschedule).toBe(answers);
    expect(confirmed).toBeGreaterThan(0);
    expect(reschedule).toBeGreaterThan(0);
    aboutShare(confirmed, answers, 0.5);
    expect(out(r, 'tell-confirmed-24h', 'emitted')).toBe(confirmed);
  });

  it('2 hours before: "see you" to those who confirmed, the question again (C or R by text) to the others', () => {
    const confirmed24 = out(r, 'answer-24h', 'taken:confirmed');
    const rescheduled24 = out(r, 'answer-24h', 'taken:reschedule');
    expect(out(r, 'ahead-2h', 'taken:confirmed')).toBe(confirmed24);
    expect(entered(r, 'see-you')).toBe(confirmed24);
    expect(entered(r, 'remind-2h')).toBe(N - confirmed24 - rescheduled24);
    const answers = out(r, 'wait-answer-2h', 'reply');
    expect(answers + out(r, 'wait-answer-2h', 'timeout')).toBe(entered(r, 'remind-2h'));
    // Typed answers: C and c confirm, R and r. reschedule, the fifth text goes to a person.
    const c = out(r, 'answer-2h', 'taken:confirmed');
    const rr = out(r, 'answer-2h', 'taken:reschedule');
    const other = out(r, 'answer-2h', 'taken:default');
    expect(c + rr + other).toBe(answers);
    for (const n of [c, rr, other]) expect(n).toBeGreaterThan(0);
    aboutShare(c, answers, 0.4);
    aboutShare(rr, answers, 0.4);
    expect(entered(r, 'unclear-2h')).toBe(other);
    expect(entered(r, 'no-answer')).toBe(out(r, 'wait-answer-2h', 'timeout'));
    expect(out(r, 'rebook-link', 'queued')).toBe(rescheduled24 + rr);
    expect(out(r, 'tell-reschedule', 'emitted')).toBe(rescheduled24 + rr);
    expect(r.ended).toEqual({ completed: N });
  });

  it("lands the reminders 24 and 2 hours before the appointment, in the contact's zone", () => {
    const { contact, timeline } = r.sample;
    const at = zoned(contact.attributes.renewal_date as string, '15:00', contact.zone);
    const onTime = (t: number, due: number) => {
      expect(t - due).toBeGreaterThanOrEqual(0);
      expect(t - due).toBeLessThan(30 * MINUTE);
    };
    for (const t of queuedAt(timeline, 'remind-24h')) onTime(t, at - DAY);
    const second = [...queuedAt(timeline, 'see-you'), ...queuedAt(timeline, 'remind-2h')];
    expect(second.length).toBeLessThanOrEqual(1);
    for (const t of second) onTime(t, at - 2 * HOUR);
  });
});

describe('feedback request', () => {
  const N = 100;
  // Every contact visits again within five days: the re-entry rule must keep them out.
  const again = [{ name: 'visit.completed', probability: 1, within: '5d' }];
  const texts = ['5', '4', '3', '2', '1', 'The coffee was cold'];
  let r: SimulationReport;
  beforeAll(async () => {
    r = await run(recipe('feedback-request'), { contacts: N, days: 6, probabilities: { delivered: 1, replied: 0.7 }, replyTexts: texts, events: again });
  }, 120_000);

  it('asks once, after the first visit only', () => {
    expect(entered(r, 'ask')).toBe(N);
    expect(out(r, 'ask', 'queued')).toBe(N);
    expect(ended(r)).toBe(N);
    expect(r.ended).toEqual({ completed: N });
  });

  it('branches on the score: 4 and 5 get the review link, 1 to 3 an apology and the manager, anything else a person', () => {
    const answers = out(r, 'wait-score', 'reply');
    aboutShare(answers, N, 0.7);
    const high = out(r, 'score', 'taken:high');
    const low = out(r, 'score', 'taken:low');
    const other = out(r, 'score', 'taken:default');
    expect(high + low + other).toBe(answers);
    aboutShare(high, answers, 2 / 6);
    aboutShare(low, answers, 3 / 6);
    aboutShare(other, answers, 1 / 6);
    expect(out(r, 'ask-review', 'queued')).toBe(high);
    expect(out(r, 'tell-manager', 'emitted')).toBe(low);
    expect(out(r, 'apologise', 'queued')).toBe(low);
    expect(out(r, 'hand-off', 'emitted')).toBe(other);
    expect(entered(r, 'no-score')).toBe(out(r, 'wait-score', 'timeout'));
  });

  it('would ask again on the second visit without the re-entry rule', async () => {
    const always = { ...recipe('feedback-request'), reentry: { mode: 'always' as const } };
    const twice = await run(always, { contacts: 20, days: 6, probabilities: { replied: 0 }, events: again });
    expect(ended(twice)).toBeGreaterThan(20);
  }, 120_000);
});

describe('win-back call campaign', () => {
  let t: TestTenant;
  let worker: Worker;
  let providers: ReturnType<typeof sandboxRegistry>;
  let journeyId: string;
  const dormant: { id: string; phone: string }[] = [];

  const ok = async (method: string, url: string, body?: unknown) => {
    const res = await api.call(t, method, url, body);
    expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
    return res.body;
  };
  const sent = () => providers.sandbox.sent.filter((s) => s.message.tenant_id === t.id).map((s) => s.message);
  const later = async (ms: number) => {
    api.clock.advance(ms);
    await worker.drain();
  };
  const enrollmentOf = async (contactId: string) => (await ok('GET', `/v1/journeys/${journeyId}/enrollments?contact_id=${contactId}`)).data[0];

  let seq = 0;
  /** A customer on a UK number (10:00 in London when the test starts) with consent to offers by call and text. */
  async function customer(opts: { voice?: boolean; tags?: string[] } = {}): Promise<{ id: string; phone: string }> {
    const phone = `+44791112${String(1000 + seq++).padStart(4, '0')}`;
    const c = await ok('POST', '/v1/contacts', { phone, name: `Customer ${seq}`, attributes: { first_name: `Cust${seq}` }, tags: opts.tags ?? [] });
    for (const channel of opts.voice === false ? ['sms'] : ['voice', 'sms']) {
      await ok('POST', `/v1/contacts/${c.id}/consent`, { channel, topic: 'marketing', status: 'granted', type: 'express', source: 'booking_form', recorded_at: '2025-01-10T10:00:00Z' });
    }
    return { id: c.id, phone };
  }

  beforeAll(async () => {
    api.clock.set('2026-03-02T10:00:00Z');
    t = await api.tenant('Bright Smile');
    providers = sandboxRegistry();
    worker = new Worker({ db: api.db, clock: api.clock, providers });
    for (let i = 0; i < 25; i++) dormant.push(await customer());
    // Not in the segment: a customer written to last week, one who cannot be called, one who said no before.
    const active = await customer();
    await api.db.query(
      `insert into messages (id, tenant_id, contact_id, kind, channel, status, idempotency_key, content, created_at, updated_at, sent_at)
       values ($1, $2, $3, 'send', 'sms', 'sent', $4, '{}', $5, $5, $5)`,
      [newId(), t.id, active.id, `earlier-${active.id}`, new Date(api.clock.now().getTime() - 7 * DAY)],
    );
    await customer({ voice: false });
    await customer({ tags: ['win_back_declined'] });

    const journey = await api.app.inject({
      method: 'POST',
      url: '/v1/journeys',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/yaml' },
      payload: read('win-back-call-campaign.yaml'),
    });
    expect(journey.statusCode, journey.body).toBe(201);
    journeyId = journey.json().id;
    await ok('POST', `/v1/journeys/${journeyId}/publish`);
  });

  it('calls the segment ten a minute, through the sandbox, with the menu', async () => {
    const segment = await ok('POST', '/v1/segments', JSON.parse(read('win-back-call-campaign.segment.json')));
    expect((await ok('GET', `/v1/segments/${segment.id}/preview?sample=0`)).count).toBe(25);

    const file = JSON.parse(read('win-back-call-campaign.campaign.json'));
    expect(file).toMatchObject({ type: 'win_back', throttle: { per_minute: 10 }, audience: { segment_id: '<segment id>' }, action: { journey_id: '<journey id>' } });
    const campaign = await ok('POST', '/v1/campaigns', { ...file, audience: { segment_id: segment.id }, action: { journey_id: journeyId } });
    expect((await ok('POST', `/v1/campaigns/${campaign.id}/start`)).status).toBe('scheduled');

    await worker.drain();
    expect(sent()).toHaveLength(10);
    await later(MINUTE);
    expect(sent()).toHaveLength(20);
    await later(MINUTE);
    expect(sent()).toHaveLength(25);
    await later(MINUTE);
    expect(sent()).toHaveLength(25);

    const calls = sent();
    expect(calls.every((m) => m.channel === 'voice')).toBe(true);
    expect(calls.map((m) => m.to).sort()).toEqual(dormant.map((d) => d.phone).sort());
    expect(calls[0]!.body).toMatch(/^Hi Cust\d+, this is Bright Smile Dental\. We noticed you haven't visited us in a while/);
    expect((calls[0]!.options as { menu: { digit: string; payload: string }[] }).menu.map((m) => [m.digit, m.payload])).toEqual([
      ['1', 'interested'],
      ['2', 'not_interested'],
      ['9', 'STOP'],
    ]);
    expect((await ok('GET', `/v1/campaigns/${campaign.id}`)).totals.recipients).toBe(25);
  });

  it('acts on the key pressed: 1 a booking link and a person, 2 a tag, 9 no more calls', async () => {
    const [keen, no, stop] = dormant;
    const press = (c: { id: string }, payload: string) => ok('POST', '/v1/sandbox/replies', { channel: 'voice', contact_id: c.id, payload });
    await press(keen!, 'interested');
    await press(no!, 'not_interested');
    const stopped = await press(stop!, 'STOP');
    expect(stopped.keyword).toBe('opt_out');
    await worker.drain();

    expect(sent().filter((m) => m.to === keen!.phone).map((m) => m.channel)).toEqual(['voice', 'sms']);
    expect(sent().find((m) => m.to === keen!.phone && m.channel === 'sms')!.body).toMatch(/^Great to hear from you, Cust\d+! Book your visit here: https:\/\/book\.example\.com/);
    const keenContact = await ok('GET', `/v1/contacts/${keen!.id}`);
    expect(keenContact.tags).toContain('win_back_interested');
    const handoffs = await ok('GET', `/v1/events?contact_id=${keen!.id}&name=handoff_requested`);
    expect(handoffs.data).toEqual([expect.objectContaining({ properties: expect.objectContaining({ reason: 'win-back call answer', answer: 'interested', channel: 'voice' }) })]);
    expect(await enrollmentOf(keen!.id)).toMatchObject({ status: 'completed' });

    expect((await ok('GET', `/v1/contacts/${no!.id}`)).tags).toContain('win_back_declined');
    expect(await enrollmentOf(no!.id)).toMatchObject({ status: 'completed' });

    const consent = await ok('GET', `/v1/contacts/${stop!.id}/consent`);
    expect(JSON.stringify(consent)).toMatch(/"channel":"voice"[^}]*"status":"revoked"|"status":"revoked"[^}]*"channel":"voice"/);
    expect(await enrollmentOf(stop!.id)).toMatchObject({ status: 'exited' });
  });

  it('texts the offer to everyone who pressed nothing, and a YES to it books like key 1', async () => {
    await later(10 * MINUTE);
    const texts = sent().filter((m) => m.channel === 'sms' && /^Hi Cust\d+, we tried to call you/.test(m.body ?? ''));
    expect(texts.map((m) => m.to).sort()).toEqual(dormant.slice(3).map((d) => d.phone).sort());

    const yes = dormant[3]!;
    await ok('POST', '/v1/sandbox/replies', { channel: 'sms', contact_id: yes.id, text: 'Yes' });
    await worker.drain();
    expect(sent().filter((m) => m.to === yes.phone).map((m) => m.body?.slice(0, 20))).toEqual([expect.any(String), 'Hi Cust4, we tried t', 'Great to hear from y']);
    expect((await ok('GET', `/v1/contacts/${yes.id}`)).tags).toContain('win_back_interested');

    // Three days without an answer: tagged unreached, and the enrollments end.
    await later(3 * DAY);
    const quiet = dormant[10]!;
    expect((await ok('GET', `/v1/contacts/${quiet.id}`)).tags).toContain('win_back_unreached');
    expect(await enrollmentOf(quiet.id)).toMatchObject({ status: 'completed' });
  });
});
