/**
 * Micro-figures: the pure functions every send or reply passes through, in nanoseconds per call.
 *
 *   render           a compiled (cached) Liquid template reading three contact variables, one
 *                    through a filter: the e-mail body of the engine bench's journey
 *   scope + render   the same with the template scope built from the contact first, as the
 *                    dispatcher does per message
 *   decideSend       the contact policy for one recipient: five consent rows (one revoked
 *                    topic), quiet hours and a weekday send window in the recipient's zone, two
 *                    frequency caps over three recent sends; at an allowed time, so it walks
 *                    every check and answers `send`
 *   matchKeyword     the default keyword table against an ordinary reply (no keyword) and
 *                    against "STOP 🛑" (opt-out)
 *   decideWhatsapp   a send outside the 24-hour window with a template registered in two
 *                    approved languages, asked for in a third: picks the approved translation
 *
 * Each runs warm-up iterations first, then --rounds rounds (11; 5 with --quick) of a fixed count
 * chosen to last about --round-ms (250; 50 with --quick); the figure is the median round, with
 * the fastest and slowest beside it. Every function's answer is checked first, so a change that
 * sends it down a shorter path shows as a problem rather than as a speed-up. One process, one
 * core: on a busy machine the slowest rounds say how much the machine interfered.
 *
 *   npm run bench:micro -- [--quick] [--rounds 11] [--round-ms 250]
 *
 * Results go to bench/results/<date>-<host>-micro.json (-quick.json with --quick).
 */
import { parseArgs } from 'node:util';
import type { ConsentEntry } from '../src/core/consent.js';
import type { ContactFacts } from '../src/core/journey/engine.js';
import { templateScope } from '../src/core/journey/engine.js';
import { defaultKeywordTable, matchKeyword } from '../src/core/keywords.js';
import { decideSend, type PolicySettings, type RecipientFacts, type SendRequest } from '../src/core/policy.js';
import { render } from '../src/core/template.js';
import { decideWhatsapp, type WhatsappCandidate, type WhatsappFacts } from '../src/engine/whatsapp-plan.js';
import { THREE_STEPS } from './engine-workload.js';
import { commit, finish, hostBusyPercent, machine, markdownTable, round } from './lib.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'round-ms': { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds ?? (args.quick ? 5 : 11));
const ROUND_MS = Number(args['round-ms'] ?? (args.quick ? 50 : 250));
const WARMUP_MS = args.quick ? 200 : 1000;
for (const [name, v] of Object.entries({ rounds: ROUNDS, 'round-ms': ROUND_MS })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);

// ---------------------------------------------------------------------------------------------
// The inputs

const contact: ContactFacts = {
  id: '01937a1e-5a00-7000-8000-000000000001',
  name: 'Contact 42',
  email: 'contact.42@example.com',
  phone: '+447700000042',
  whatsapp: null,
  time_zone: 'Europe/Berlin',
  locale: 'en',
  external_id: 'bench-42',
  attributes: { first_name: 'Ada42', city: 'Leeds', plan: 'pro' },
  tags: ['newsletter', 'trial'],
};
const mail = THREE_STEPS.nodes.find((n) => n.id === 'mail');
if (mail?.type !== 'send' || !mail.content.body) throw new Error('THREE_STEPS has no e-mail body');
const TEMPLATE = mail.content.body;
const SCOPE = templateScope(contact, {}, THREE_STEPS.name ?? null);

// Tuesday 2026-11-24, 13:00 UTC: 14:00 in Berlin, inside quiet hours and the send window.
const NOW = new Date('2026-11-24T13:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000);
const CONSENT: ConsentEntry[] = [
  { channel: 'sms', topic: 'all', status: 'granted', type: 'express', recorded_at: daysAgo(400) },
  { channel: 'sms', topic: 'promotions', status: 'revoked', type: null, recorded_at: daysAgo(30) },
  { channel: 'email', topic: 'all', status: 'granted', type: 'express', recorded_at: daysAgo(400) },
  { channel: 'email', topic: 'marketing', status: 'granted', type: 'express_written', recorded_at: daysAgo(90) },
  { channel: 'whatsapp', topic: 'all', status: 'granted', type: 'implied', recorded_at: daysAgo(10) },
];
const REQUEST: SendRequest = { channel: 'sms', topic: 'marketing', transactional: false, ignoreQuietHours: false, key: `${contact.id}:sms` };
const RECIPIENT: RecipientFacts = {
  zone: 'Europe/Berlin',
  address: contact.phone,
  consent: CONSENT,
  suppressed: false,
  recentSends: [
    { channel: 'sms', at: daysAgo(6) },
    { channel: 'email', at: daysAgo(2) },
    { channel: 'sms', at: daysAgo(1) },
  ],
};
const SETTINGS: PolicySettings = {
  quietHours: { sms: { start: '08:00', end: '21:00' }, email: { start: '07:00', end: '22:00' } },
  sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '18:00' },
  caps: [
    { channel: 'sms', limit: 3, period: '7d' },
    { channel: 'any', limit: 5, period: '1d' },
  ],
};

const KEYWORDS = defaultKeywordTable();
const REPLY = 'Sounds good, see you Tuesday at 3!';
const STOP = 'STOP 🛑';

const CANDIDATE: WhatsappCandidate = {
  id: '01937a1e-5a00-7000-8000-000000000002',
  tenant_id: '01937a1e-5a00-7000-8000-000000000003',
  contact_id: contact.id,
  priority: 3,
  hasBody: true,
  template: { name: 'order_update', language: 'en' },
  intervalMinutes: 60,
};
const WHATSAPP: WhatsappFacts = {
  lastInbound: new Date(NOW.getTime() - 30 * 3_600_000),
  registry: [
    { language: 'pt_BR', status: 'approved' },
    { language: 'en_US', status: 'approved' },
    { language: 'es', status: 'pending' },
  ],
  lastTemplateSent: new Date(NOW.getTime() - 3 * 3_600_000),
};

interface Case {
  name: string;
  what: string;
  run: () => unknown;
  /** Why the answer is not the one the case means to measure, or null. */
  check: (answer: unknown) => string | null;
}

const CASES: Case[] = [
  {
    name: 'render',
    what: 'compiled Liquid, three contact variables (one filtered)',
    run: () => render(TEMPLATE, SCOPE),
    check: (a) => (a === 'Dear Ada42 of Leeds, the PRO plan starts today.' ? null : `rendered ${JSON.stringify(a)}`),
  },
  {
    name: 'templateScope + render',
    what: 'the same, with the scope built from the contact',
    run: () => render(TEMPLATE, templateScope(contact, {}, 'Engine bench')),
    check: (a) => (a === 'Dear Ada42 of Leeds, the PRO plan starts today.' ? null : `rendered ${JSON.stringify(a)}`),
  },
  {
    name: 'decideSend',
    what: '5 consent rows, quiet hours, send window, 2 caps over 3 sends',
    run: () => decideSend(NOW, REQUEST, RECIPIENT, SETTINGS),
    check: (a) => ((a as { action: string }).action === 'send' ? null : `decided ${JSON.stringify(a)}`),
  },
  {
    name: 'matchKeyword (ordinary reply)',
    what: JSON.stringify(REPLY),
    run: () => matchKeyword(REPLY, null, KEYWORDS),
    check: (a) => (a === null ? null : `matched ${JSON.stringify(a)}`),
  },
  {
    name: 'matchKeyword (opt-out)',
    what: JSON.stringify(STOP),
    run: () => matchKeyword(STOP, null, KEYWORDS),
    check: (a) => ((a as { action?: string } | null)?.action === 'opt_out' ? null : `matched ${JSON.stringify(a)}`),
  },
  {
    name: 'decideWhatsapp',
    what: 'window closed, template approved in another translation',
    run: () => decideWhatsapp(CANDIDATE, WHATSAPP, NOW),
    check: (a) => {
      const plan = a as { mode?: string; language?: string };
      return plan.mode === 'template' && plan.language === 'en_US' ? null : `planned ${JSON.stringify(a)}`;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Timing

/** Folded into by every call, and printed, so no call's result is dead code to the JIT. */
let sink = 0;
const fold = (x: unknown) => {
  sink = (sink + (typeof x === 'string' ? x.length : x === null ? 1 : 2)) | 0;
};

/** Nanoseconds taken by `n` calls. */
function timed(fn: () => unknown, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fold(fn());
  return Number(process.hrtime.bigint() - t0);
}

interface Figure {
  name: string;
  what: string;
  nsPerOp: number;
  minNs: number;
  maxNs: number;
  opsPerSecond: number;
  iterationsPerRound: number;
  rounds: number[];
  problem: string | null;
}

function measure(c: Case): Figure {
  const problem = c.check(c.run());
  // Warm up until the JIT has settled, learning the rate as it goes.
  let n = 100;
  let spent = 0;
  let calls = 0;
  while (spent < WARMUP_MS * 1e6) {
    spent += timed(c.run, n);
    calls += n;
    n = Math.min(n * 2, 1_000_000);
  }
  const perRound = Math.max(1, Math.round((ROUND_MS * 1e6) / (spent / calls)));
  const rounds = Array.from({ length: ROUNDS }, () => timed(c.run, perRound) / perRound);
  const sorted = [...rounds].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return {
    name: c.name,
    what: c.what,
    nsPerOp: round(median, median < 100 ? 1 : 0),
    minNs: round(sorted[0]!, 1),
    maxNs: round(sorted[sorted.length - 1]!, 1),
    opsPerSecond: Math.round(1e9 / median),
    iterationsPerRound: perRound,
    rounds: rounds.map((r) => round(r, 1)),
    problem,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const hostBusyBeforePercent = await hostBusyPercent(args.quick ? 500 : 1000);
  const figures = CASES.map((c) => {
    const f = measure(c);
    console.error(`  ${f.name}: ${f.nsPerOp.toLocaleString('en-US')} ns/op${f.problem ? `; PROBLEM: ${f.problem}` : ''}`);
    return f;
  });
  const problems = figures.flatMap((f) => (f.problem ? [`${f.name}: ${f.problem}`] : []));
  const summary = {
    bench: 'micro',
    date: new Date().toISOString(),
    ...machine(),
    commit: commit(),
    hostBusyBeforePercent,
    options: { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS },
    figures,
    problems,
    benchSeconds: round((performance.now() - started) / 1000, 1),
  };
  // Printed so that no result the cases computed is dead code the JIT could drop.
  console.error(`sink ${sink}`);
  finish(
    'micro',
    args.quick,
    summary,
    markdownTable(
      ['function', 'input', 'ns/op (median)', 'fastest–slowest round', 'ops/s'],
      figures.map((f) => [f.name, f.what, f.nsPerOp, `${f.minNs.toLocaleString('en-US')}–${f.maxNs.toLocaleString('en-US')}`, f.opsPerSecond]),
    ),
  );
}

await main();
