/**
 * The Relational Pulse for a large tenant, from trigger to the last provider call:
 *
 *   seed     N contacts (100,000; 10,000 with --quick) in one tenant, written by generate_series:
 *            a name, a phone, `pulse.enabled` (95%), one or two pulse topics and interests out of
 *            20, a recent topic and, for 30%, a purchase; WhatsApp consent for the pulse (90%);
 *            an open WhatsApp window (an inbound message in the last 24 hours) for 30%. --items
 *            knowledge items (200), each with two of the 20 topics and a tag.
 *   run      one pulse campaign (10 of the 20 topics, minimum engagement 0.3, three items, a
 *            tone test 50/50, the deterministic composer) started at once, with one worker in
 *            this process sending to the sandbox provider. The clock is the system's.
 *
 * Figures: time from the start to the last provider call, recipients per second over it, the
 * CPU it took (this process: runner, composer, dispatcher, and on PGlite the database; on
 * PostgreSQL also its backends), and this process's resident memory sampled every 250 ms, so
 * a flat line shows the audience is streamed rather than held.
 *
 *   npx tsx bench/pulse.ts [--quick] [--contacts 100000] [--items 200] [--db postgres|pglite]
 *                          [--llm-latency <ms> [--llm-concurrency 32]]
 *
 * With --llm-latency the worker refines every message with a chat model (docs/campaigns.md,
 * "With a model"): an OpenAI-compatible fake in this process answers each request after that
 * many milliseconds with a message built from the prompt's context, so the figures show what
 * the refinement costs around the model (leases, checks, the writes, the release) and how near
 * the rate comes to its ceiling, concurrency ÷ latency. Results then go to …-pulse-llm.json.
 *
 * PostgreSQL is DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the bench creates
 * a database rapport_bench_<random>_pulse there and drops it. PGlite is in memory. Results go to
 * bench/results/<date>-<host>-pulse.json (-quick.json with --quick); the last line of stdout is
 * the summary as JSON.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { pulseTargeting, type PulseSpec } from '../src/core/pulse.js';
import { systemClock } from '../src/engine/clock.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { httpLlm } from '../src/engine/llm-client.js';
import { Worker } from '../src/engine/worker.js';
import { changeCampaignStatus, createCampaign } from '../src/store/campaigns.js';
import type { Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { countSegment } from '../src/store/segments.js';
import { backendCpu, backendDelta, BenchDatabases, commit, finish, machine, markdownTable, MiB, ownCpu, round, sleep } from './lib.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contacts: { type: 'string' },
    items: { type: 'string', default: '200' },
    db: { type: 'string', default: 'postgres' },
    'llm-latency': { type: 'string' },
    'llm-concurrency': { type: 'string', default: '32' },
  },
});
const LLM_LATENCY = args['llm-latency'] === undefined ? null : Number(args['llm-latency']);
const LLM_CONCURRENCY = Number(args['llm-concurrency']);
if (LLM_LATENCY !== null && (!Number.isInteger(LLM_LATENCY) || LLM_LATENCY < 0)) throw new Error('--llm-latency must be a whole number of milliseconds');
if (!Number.isInteger(LLM_CONCURRENCY) || LLM_CONCURRENCY < 1) throw new Error('--llm-concurrency must be a positive integer');
const N = Number(args.contacts ?? (args.quick ? 10_000 : 100_000));
const ITEMS = Number(args.items);
const BACKEND = args.db;
for (const [name, v] of Object.entries({ contacts: N, items: ITEMS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}
if (BACKEND !== 'postgres' && BACKEND !== 'pglite') throw new Error('--db is postgres or pglite');
const TIMEOUT_MS = (args.quick ? 5 : 30) * 60_000;
const TENANT = '01900000-0000-7000-8000-00000000c001';
const TOPICS = Array.from({ length: 20 }, (_, i) => `topic_${i}`);

/** UUIDv7-shaped ids in row order, as the application writes them: id order is insertion order. */
const V7 = (i: string, base: string) => `(lpad(to_hex(${base} + ${i}), 12, '0') || '7' || substr(md5(${i}::text), 1, 3) || '8' || substr(md5(${i}::text), 4, 15))::uuid`;
/** A stable pseudo-random 0..n-1 from i and a salt. */
const pick = (i: string, salt: number, n: number) => `((hashint4((${i} + ${salt})::int)::bigint & 2147483647) % ${n})`;
const topic = (i: string, salt: number) => `'topic_' || ${pick(i, salt, 20)}`;

async function seed(db: Db, now: Date): Promise<void> {
  await db.query(`insert into tenants (id, name, time_zone, send_window, quiet_hours) values ($1, 'pulse bench', 'UTC', $2, '{}')`, [
    TENANT,
    JSON.stringify({ days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00' }),
  ]);
  await db.query(
    `insert into contacts (id, tenant_id, name, phone, attributes, created_at, updated_at)
     select ${V7('i', '1750000000000')}, $1, (array['Ana','Ben','Cy','Dee','Eve','Finn','Gus','Hal'])[1 + ${pick('i', 1, 8)}] || ' Contact' || i,
            '+1415' || lpad(i::text, 7, '0'),
            jsonb_build_object(
              'pulse', jsonb_build_object('enabled', ${pick('i', 2, 100)} < 95,
                                          'topics', case when ${pick('i', 3, 2)} = 0 then jsonb_build_array(${topic('i', 4)}) else jsonb_build_array(${topic('i', 4)}, ${topic('i', 5)}) end),
              'interests', jsonb_build_array(${topic('i', 6)}),
              'recent_topics', jsonb_build_array(${topic('i', 7)}))
            || case when ${pick('i', 8, 10)} < 3 then jsonb_build_object('purchases', jsonb_build_array('product_' || ${pick('i', 9, 3)})) else '{}' end,
            $2, $2
       from generate_series(1, $3::int) as i`,
    [TENANT, now, N],
  );
  const contacts = `(select c.id, row_number() over (order by c.id)::int as i from contacts c where c.tenant_id = $1)`;
  await db.query(
    `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
     select $1, k.id, 'whatsapp', 'pulse', 'granted', 'express', gen_random_uuid(), $2::timestamptz - interval '30 days'
       from ${contacts} k where ${pick('k.i', 10, 10)} < 9`,
    [TENANT, now],
  );
  await db.query(
    `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at)
     select gen_random_uuid(), $1, k.id, 'whatsapp', $2::timestamptz - ${pick('k.i', 11, 20)} * interval '1 hour', $2, $2
       from ${contacts} k where ${pick('k.i', 12, 10)} < 3`,
    [TENANT, now],
  );
  await db.query(
    `insert into knowledge_items (id, tenant_id, kind, title, body, topics, tags, created_at, updated_at)
     select gen_random_uuid(), $1, (array['tip','update','reminder','insight'])[1 + ${pick('i', 13, 4)}],
            'Item ' || i || ' about ' || replace(${topic('i', 14)}, '_', ' '),
            'A short lesson number ' || i || ' for the week. It explains one thing well, with an example. Then a second sentence.',
            array[${topic('i', 14)}, ${topic('i', 15)}], array['tag_' || ${pick('i', 16, 5)}],
            $2::timestamptz - ${pick('i', 17, 60)} * interval '1 day', $2::timestamptz - ${pick('i', 17, 60)} * interval '1 day'
       from generate_series(1, $3::int) as i`,
    [TENANT, now, ITEMS],
  );
  if (BACKEND === 'postgres') await db.query('vacuum analyze');
}

const SPEC: PulseSpec = {
  topics: TOPICS.slice(0, 10),
  min_engagement: 0.3,
  max_items: 3,
  max_length: 700,
  cta: { text: 'Any questions? Just reply.', url: 'https://shop.example/week' },
  whatsapp_template: { name: 'weekly_pulse', language: 'en', parameters: ['{{ vars.synthesis.first_name | default: "there" }}', '{{ vars.synthesis.teaser }}'] },
  tone_test: { variants: [{ name: 'personal', tone: 'highly personal' }, { name: 'professional', tone: 'professional and friendly' }], split: [50, 50] },
};

/**
 * An OpenAI-compatible chat endpoint on loopback that answers after `latencyMs` with what a
 * well-behaved model writes: the first name, the first item's title and the call to action.
 */
async function fakeModel(latencyMs: number): Promise<{ url: string; requests: number; close(): Promise<void> }> {
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests++;
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { messages: { content: string }[] };
      const ctx = JSON.parse(body.messages[1]!.content.replace(/^Context \(JSON\):\n/, '')) as {
        customer: { first_name: string | null };
        knowledge: { title: string }[];
        call_to_action: string;
      };
      const content = `Hi ${ctx.customer.first_name ?? 'there'}! ${ctx.knowledge[0]?.title ?? 'A note'}: worth a look this week. ${ctx.call_to_action}`;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'bench', object: 'chat.completion', model: 'bench-chat', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
      }, latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Sample {
  ms: number;
  rssMiB: number;
  heapMiB: number;
  sent: number;
}

let dbs: BenchDatabases | undefined;
let db: Db;
let dbName = '';
if (BACKEND === 'postgres') {
  dbs = await BenchDatabases.open();
  dbName = await dbs.create('pulse');
  db = openPostgres({ connectionString: dbs.url(dbName), max: 4 });
} else {
  db = await openPglite();
}
try {
  await migrate(db);
  const seedStart = performance.now();
  console.error(`seeding ${N.toLocaleString('en-US')} contacts and ${ITEMS} knowledge items on ${BACKEND}…`);
  await seed(db, new Date());
  const targeted = await countSegment(db, TENANT, pulseTargeting(SPEC), new Date());
  console.error(`seeded in ${round((performance.now() - seedStart) / 1000, 1)} s; the pulse targets ${targeted.toLocaleString('en-US')}`);

  let sent = 0;
  let session = 0;
  let lastCall = 0;
  const samples: Sample[] = [];
  let started = 0;
  const sample = () => {
    const m = process.memoryUsage();
    samples.push({ ms: performance.now() - started, rssMiB: m.rss / MiB, heapMiB: m.heapUsed / MiB, sent });
  };
  // Also every 1% of the sends: on PGlite the database shares this thread, and a busy worker
  // can keep timers from firing for seconds.
  const every = Math.max(1, Math.floor(targeted / 100));
  const sandbox = new SandboxProvider({
    keep: 0,
    onSend: (s) => {
      sent++;
      if (s.message.body !== undefined) session++;
      lastCall = performance.now();
      if (sent % every === 0) sample();
    },
  });
  const model = LLM_LATENCY === null ? null : await fakeModel(LLM_LATENCY);
  const llm = model ? httpLlm({ baseUrl: model.url, model: 'bench-chat', concurrency: LLM_CONCURRENCY, timeoutMs: LLM_LATENCY! + 10_000 }) : null;
  const worker = new Worker({ db, clock: systemClock, providers: sandboxRegistry(sandbox), pollMs: 200, llm });
  await worker.start();
  const campaign = await createCampaign(db, TENANT, { name: 'weekly pulse', type: 'pulse', action: { pulse: SPEC }, schedule: { at: new Date().toISOString() } }, 'bench', new Date());

  const cpuBefore = process.cpuUsage();
  const backendsBefore = dbs ? await backendCpu(dbs.admin, dbName) : undefined;
  started = performance.now();
  const sampler = setInterval(sample, 250);
  await changeCampaignStatus(db, TENANT, campaign.id, 'start', 'bench', new Date());
  let timedOut = false;
  while (sent < targeted) {
    if (performance.now() - started > TIMEOUT_MS) {
      timedOut = true;
      break;
    }
    await sleep(50);
  }
  sample();
  clearInterval(sampler);
  const cpu = ownCpu(cpuBefore);
  const backends = dbs ? backendDelta(backendsBefore, await backendCpu(dbs.admin, dbName)) : undefined;
  await worker.stop();
  await model?.close();

  const { rows: outcome } = await db.query<{ queued: string; llm: string; skipped: string; synthesized: string; items: string; score: string }>(
    `select (select count(*) from campaign_recipients where campaign_id = $1 and outcome = 'queued') as queued,
            (select count(*) from synthesized_messages where campaign_id = $1 and source = 'llm') as llm,
            (select count(*) from campaign_recipients where campaign_id = $1 and outcome = 'skipped') as skipped,
            (select count(*) from synthesized_messages where campaign_id = $1) as synthesized,
            (select avg(jsonb_array_length(items)) from synthesized_messages where campaign_id = $1) as items,
            (select avg(personalization_score) from synthesized_messages where campaign_id = $1) as score`,
    [campaign.id],
  );
  const o = outcome[0]!;
  const seconds = ((lastCall || performance.now()) - started) / 1000;
  const during = samples.filter((s) => s.sent > 0).sort((a, b) => a.ms - b.ms);
  const rss = during.map((s) => s.rssMiB);
  const at = (share: number) => during.find((s) => s.sent >= share * targeted) ?? during[during.length - 1];
  const problems: string[] = [];
  if (timedOut) problems.push(`timed out after ${TIMEOUT_MS / 60_000} min with ${sent} of ${targeted} sent`);
  if (Number(o.queued) !== targeted) problems.push(`${o.queued} recipients queued, but the segment counts ${targeted}`);

  const summary = {
    bench: 'pulse',
    backend: BACKEND,
    quick: args.quick,
    contacts: N,
    knowledge_items: ITEMS,
    targeted,
    recipients_queued: Number(o.queued),
    recipients_skipped: Number(o.skipped),
    sent,
    sent_as_text: session,
    sent_as_template: sent - session,
    seconds_to_last_provider_call: round(seconds, 2),
    recipients_per_second: round(sent / seconds),
    cpu_seconds: round(cpu, 2),
    postgres_cpu_seconds: backends === undefined ? null : round(backends, 2),
    cpu_ms_per_recipient: round((1000 * (cpu + (backends ?? 0))) / Math.max(1, sent), 3),
    mean_items: round(Number(o.items ?? 0), 2),
    mean_personalization_score: round(Number(o.score ?? 0), 3),
    llm:
      LLM_LATENCY === null
        ? null
        : {
            latency_ms: LLM_LATENCY,
            concurrency: LLM_CONCURRENCY,
            requests: model!.requests,
            written_by_model: Number(o.llm),
            ceiling_per_second: round((1000 * LLM_CONCURRENCY) / Math.max(1, LLM_LATENCY)),
          },
    rss_mib: { start: round(rss[0] ?? NaN, 1), p50: round(at(0.5)?.rssMiB ?? NaN, 1), max: round(Math.max(...rss), 1), end: round(rss[rss.length - 1] ?? NaN, 1) },
    heap_mib_max: round(Math.max(...during.map((s) => s.heapMiB)), 1),
    machine: machine(),
    commit: commit(),
    problems,
  };

  const timeline = [0.1, 0.25, 0.5, 0.75, 1].map((share) => {
    const s = at(share);
    return [`${Math.round(share * 100)}% sent`, s ? round(s.ms / 1000, 1) : '–', s ? round(s.rssMiB, 1) : '–', s ? round(s.heapMiB, 1) : '–'];
  });
  const tables = [
    `Relational Pulse, ${N.toLocaleString('en-US')} contacts on ${BACKEND === 'postgres' ? 'PostgreSQL' : 'PGlite'}, ${
      LLM_LATENCY === null
        ? 'deterministic composer'
        : `a chat model answering in ${LLM_LATENCY} ms, ${LLM_CONCURRENCY} calls at once (ceiling ${summary.llm!.ceiling_per_second}/s; ${summary.llm!.written_by_model} written by the model)`
    }, sandbox provider`,
    '',
    markdownTable(
      ['targeted', 'sent (text / template)', 'start → last provider call', 'recipients/s', 'CPU s (process / postgres)', 'items per message', 'personalization'],
      [
        [
          targeted,
          `${sent.toLocaleString('en-US')} (${session.toLocaleString('en-US')} / ${(sent - session).toLocaleString('en-US')})`,
          `${round(seconds, 1)} s`,
          summary.recipients_per_second,
          `${round(cpu, 1)} / ${backends === undefined ? '–' : round(backends, 1)}`,
          summary.mean_items,
          summary.mean_personalization_score,
        ],
      ],
    ),
    '',
    markdownTable(['memory of this process', 'at s', 'RSS MiB', 'heap MiB'], [...timeline, ['max during the run', '', summary.rss_mib.max, summary.heap_mib_max]]),
  ].join('\n');
  finish(LLM_LATENCY === null ? 'pulse' : 'pulse-llm', args.quick, summary, tables);
} finally {
  await db.close();
  await dbs?.close();
}
