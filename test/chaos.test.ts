import { createHash } from 'node:crypto';
import { Agent, createServer, request, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { seedContacts } from '../bench/engine-workload.js';
import { builtInAdapters } from '../src/channels/adapters/index.js';
import { ProviderRouter } from '../src/channels/router.js';
import type { JourneyDefinition } from '../src/core/journey/definition.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { RETRY_DELAYS_MS } from '../src/engine/dispatcher.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import type { Db } from '../src/store/db.js';
import { enrollContacts } from '../src/store/enrollments.js';
import { createAccount, loadAccounts } from '../src/store/provider-accounts.js';
import { createTenant } from '../src/store/tenants.js';
import { FakeTwilio } from './fakes/twilio.js';
import { VonageFake, vonageProblem } from './fakes/vonage.js';
import { freshDb, TEST_DATABASE_URL } from './helpers/db.js';
import { allowAnyTime, publishJourney } from './helpers/journeys.js';

/**
 * Chaos: a journey texts N contacts through the real ProviderRouter, a Twilio account first and
 * a Vonage account second, each pointed at its protocol fake through a proxy that answers at
 * random: accepted, accepted slowly, 500/503, connection reset, no answer until the client gives
 * up, 429 with Retry-After, and (second case) taken but answered only after the client gave up.
 * The worker runs on a ManualClock moved to the next due message until nothing is due; the
 * fakes record what each provider accepted, and the outbox is held to that record.
 *
 * Outcomes come from a hash of (seed, provider, message, attempt), not from one random stream:
 * requests arrive in a different order each run, and a stream would deal every message another
 * fate each time. With the hash a seed replays the same story per message (the circuits, which
 * depend on timing, aside). RAPPORT_CHAOS_SEED picks another seed.
 */

const SEED = Number(process.env.RAPPORT_CHAOS_SEED ?? 20261122);
const CONTACTS = TEST_DATABASE_URL ? 400 : 300;
/** Twilio's magic test numbers, refused for good by Twilio, and barred at Vonage too: these must end failed. */
const UNREACHABLE = ['+15005550001', '+15005550002', '+15005550004', '+15005550009'];
/** The router's provider timeout. Planned slow answers stay far below it; only 'late' ones cross it. */
const TIMEOUT_MS = 400;
const SLOW_MS = [20, 80] as const;
/**
 * Each sender's throughput. It is what keeps a batch from firing hundreds of requests at once;
 * with the provider, the proxy and the fake all in this one thread, a burst of 300 queued
 * requests long enough for their timeouts to run out before the proxy even read them.
 */
const RATE_PER_SECOND = 100;

type Outcome = 'accepted' | 'slow' | 'server' | 'reset' | 'hang' | 'throttled' | 'late';
type Mix = Record<Outcome, number>;

/** Every way a provider call can go wrong that leaves no doubt whether the message was taken. */
const CLEAR: Mix = { accepted: 45, slow: 10, server: 13, reset: 8, hang: 8, throttled: 16, late: 0 };
/** The same, and now and then the provider takes the message but its answer comes too late. */
const AMBIGUOUS: Mix = { ...CLEAR, accepted: 39, late: 6 };

type ProviderName = 'twilio' | 'vonage';

interface Attempt {
  provider: ProviderName;
  /** Twilio's To (one message per contact), Vonage's client_ref (the message id). */
  key: string;
  n: number;
  outcome: Outcome;
  /** The client had hung up before the request was read: the provider never saw it. */
  gone?: true;
  /** For 'accepted' and 'slow': whether the answer reached a client still waiting for it. */
  answered?: boolean;
}

/** Two numbers in [0, 1), fixed by the seed and what is being decided. */
function draw(...parts: (string | number)[]): [number, number] {
  const h = createHash('sha256').update(parts.join('|')).digest();
  return [h.readUInt32BE(0) / 2 ** 32, h.readUInt32BE(4) / 2 ** 32];
}

function pick(mix: Mix, x: number): Outcome {
  const entries = Object.entries(mix) as [Outcome, number][];
  let at = x * entries.reduce((sum, [, w]) => sum + w, 0);
  for (const [outcome, weight] of entries) {
    if (at < weight) return outcome;
    at -= weight;
  }
  return 'accepted';
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** How each provider fails and throttles, in its own error format, and how its requests name their message. */
const PROVIDERS: Record<ProviderName, { server(status: 500 | 503): Answer; throttled(retryAfter: number): Answer; key(body: string): string }> = {
  twilio: {
    server: (status) => twilioError(status, status === 500 ? 20500 : 20503, status === 500 ? 'Internal Server Error' : 'Service Unavailable'),
    throttled: (s) => withRetryAfter(twilioError(429, 20429, 'Too Many Requests'), s),
    key: (body) => new URLSearchParams(body).get('To') ?? '',
  },
  vonage: {
    server: (status) => problem(status, vonageProblem('https://developer.vonage.com/api-errors#internal-error', 'Internal Error', 'An error has occurred in the platform while processing this request')),
    throttled: (s) => withRetryAfter(problem(429, vonageProblem('https://developer.vonage.com/api-errors#throttled', 'Rate Limit Hit', 'Please wait, then retry your request')), s),
    key: (body) => String((JSON.parse(body) as { client_ref?: string }).client_ref ?? ''),
  },
};

function twilioError(status: number, code: number, message: string): Answer {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }) };
}

function problem(status: number, body: unknown): Answer {
  return { status, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify(body) };
}

function withRetryAfter(a: Answer, seconds: number): Answer {
  return { ...a, headers: { ...a.headers, 'retry-after': String(seconds) } };
}

/**
 * Sits between Rapport and a provider fake and decides each request's fate. The failures it
 * makes itself never reach the fake, so the fake's record of accepted messages is exactly what
 * the provider took.
 */
class ChaosProxy {
  readonly attempts: Attempt[] = [];
  private readonly seen = new Map<string, number>();
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(
    private readonly server: Server,
    private readonly provider: ProviderName,
    private readonly target: URL,
    private readonly mix: Mix,
    readonly url: string,
  ) {}

  static async start(provider: ProviderName, target: string, mix: Mix): Promise<ChaosProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new ChaosProxy(server, provider, new URL(target), mix, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void proxy.handle(req.method ?? 'POST', req.url ?? '/', req.headers, Buffer.concat(chunks), res));
    });
    return proxy;
  }

  count(outcome: Outcome): number {
    return this.attempts.filter((a) => a.outcome === outcome && !a.gone).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer, res: ServerResponse): Promise<void> {
    const p = PROVIDERS[this.provider];
    const key = p.key(body.toString('utf8'));
    const n = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, n);
    const [x, y] = draw(SEED, this.provider, key, n);
    const attempt: Attempt = { provider: this.provider, key, n, outcome: pick(this.mix, x) };
    this.attempts.push(attempt);
    switch (attempt.outcome) {
      case 'server':
        answer(res, p.server(y < 0.5 ? 500 : 503));
        return;
      case 'throttled':
        answer(res, p.throttled(1 + Math.floor(y * 2)));
        return;
      case 'reset':
        res.socket?.destroy();
        return;
      case 'hang':
        return untilClosed(res);
      case 'late':
        // The provider takes the message; its answer would come after the client stopped waiting.
        await this.forward(method, path, headers, body);
        return untilClosed(res);
      case 'accepted':
      case 'slow': {
        if (!live(res)) {
          // Read after its client timed out: as if the connection had dropped on the way.
          attempt.gone = true;
          return;
        }
        const a = await this.forward(method, path, headers, body);
        if (attempt.outcome === 'slow') await new Promise((r) => setTimeout(r, SLOW_MS[0] + y * (SLOW_MS[1] - SLOW_MS[0])));
        attempt.answered = answer(res, a);
        return;
      }
    }
  }

  private forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ host: this.target.hostname, port: this.target.port, method, path, headers: { ...headers, host: this.target.host }, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: { 'content-type': String(res.headers['content-type'] ?? 'application/json') }, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

const live = (res: ServerResponse) => !res.destroyed && res.socket !== null && !res.socket.destroyed;

/** Writes the answer when the client is still there; false when it had already hung up. */
function answer(res: ServerResponse, a: Answer): boolean {
  if (!live(res)) return false;
  res.writeHead(a.status, a.headers);
  res.end(a.body);
  return true;
}

function untilClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.once('close', () => resolve());
  });
}

// ---------------------------------------------------------------------------------------------

const TWILIO = { account_sid: `AC${'c'.repeat(32)}`, auth_token: 'f'.repeat(32) };
const VONAGE = { api_key: 'chaoskey', api_secret: 'chaos-secret', signature_secret: 'chaos-signature-secret' };

const JOURNEY: JourneyDefinition = {
  name: 'Chaos',
  entry: { api: true },
  nodes: [{ id: 'text', type: 'send', channel: 'sms', content: { body: 'Hi {{ contact.first_name }}, your {{ contact.plan }} plan is ready' } }],
};

interface Run {
  db: Db;
  clock: ManualClock;
  twilio: FakeTwilio;
  vonage: VonageFake;
  proxies: Record<ProviderName, ChaosProxy>;
  sandbox: SandboxProvider;
  worker: Worker;
  close(): Promise<void>;
}

async function setUp(mix: Mix): Promise<Run> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    while (closers.length) await closers.pop()!();
  };
  try {
    const db = await freshDb();
    closers.push(() => db.close());
    const twilio = await FakeTwilio.start({ [TWILIO.account_sid]: TWILIO.auth_token });
    closers.push(() => twilio.close());
    const vonage = await VonageFake.start({ apiKey: VONAGE.api_key, apiSecret: VONAGE.api_secret, barred: UNREACHABLE.map((n) => n.slice(1)) });
    closers.push(() => vonage.close());
    const proxies = { twilio: await ChaosProxy.start('twilio', twilio.url, mix), vonage: await ChaosProxy.start('vonage', vonage.url, mix) };
    closers.push(() => proxies.twilio.close(), () => proxies.vonage.close());

    const clock = new ManualClock('2026-03-02T15:00:00Z');
    const tenant = (await createTenant(db, { name: 'Chaos', time_zone: 'UTC' })).id;
    await allowAnyTime(db, tenant);
    const box = new SecretBox('chaos-test-secret-key-0123456789abcdef');
    const sandbox = new SandboxProvider();
    const adapters = builtInAdapters(sandbox);
    const accounts = [
      { name: 'Twilio', kind: 'twilio', priority: 1, credentials: TWILIO, config: { from: '+14155550100', base_url: proxies.twilio.url, rate_per_second: RATE_PER_SECOND } },
      { name: 'Vonage', kind: 'vonage', priority: 2, credentials: VONAGE, config: { from: '+447700900001', base_url: proxies.vonage.url, rate_per_second: RATE_PER_SECOND } },
    ];
    for (const a of accounts) await createAccount(db, { secrets: box, adapters }, tenant, a, 'test', clock.now());
    // What deliveryFor() builds, with a short timeout and the test's clock for circuits and slots.
    const router = new ProviderRouter({
      adapters,
      accounts: async (tenantId, channel) => [...(await loadAccounts(db, box, tenantId, channel))],
      fallback: sandboxRegistry(sandbox),
      timeoutMs: TIMEOUT_MS,
      now: () => clock.now().getTime(),
    });
    const worker = new Worker({ db, clock, providers: router });

    const contacts = await seedContacts(db, tenant, CONTACTS);
    await db.query(`update contacts set phone = x.phone from unnest($1::uuid[], $2::text[]) as x(id, phone) where contacts.id = x.id`, [contacts.slice(0, UNREACHABLE.length), UNREACHABLE]);
    const journey = await publishJourney(db, tenant, JOURNEY);
    await db.transaction((tx) => enrollContacts(tx, { journey_id: journey, tenant_id: tenant, version: 1 }, contacts.map((contact_id) => ({ contact_id })), clock.now(), 'test'));
    return { db, clock, twilio, vonage, proxies, sandbox, worker, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Drains the worker, moves the clock to the next due message or timer, and again, until nothing is due. */
async function runUntilEmpty(r: Run): Promise<number> {
  for (let round = 1; round <= 1000; round++) {
    await r.worker.drain();
    const { rows } = await r.db.query<{ at: Date | null }>(
      `select least((select min(due_at) from enrollments where due_at is not null), (select min(due_at) from messages where due_at is not null)) as at`,
    );
    const at = rows[0]?.at;
    if (!at) return round;
    if (at.getTime() > r.clock.now().getTime()) r.clock.set(at);
  }
  throw new Error(`chaos seed ${SEED}: something was still due after 1000 rounds`);
}

interface Row {
  id: string;
  status: string;
  reason: string | null;
  attempts: number;
  provider: string | null;
  provider_message_id: string | null;
  to_address: string;
  due_at: Date | null;
  timeline: string[];
  ats: Date[];
  details: string[];
}

interface Acceptance {
  provider: ProviderName;
  id: string;
}

interface Outcomes {
  rows: Row[];
  /** What the fakes accepted, by message id. */
  accepted: Map<string, Acceptance[]>;
  /** What the proxies decided, by message id. */
  attempts: Map<string, Attempt[]>;
  /** What every run must be free of, one line per message. */
  problems: string[];
}

async function collect(r: Run): Promise<Outcomes> {
  const { rows } = await r.db.query<Row>(
    `select m.id, m.status, m.reason, m.attempts, m.provider, m.provider_message_id, m.to_address, m.due_at,
            array_agg(s.status order by s.id) as timeline, array_agg(s.at order by s.id) as ats,
            array_agg(coalesce(s.detail->>'retry', s.detail->>'reason', '') order by s.id) as details
       from messages m join message_status s on s.message_id = m.id
      group by m.id`,
  );
  const byAddress = new Map(rows.map((m) => [m.to_address, m.id]));
  const accepted = new Map<string, Acceptance[]>();
  const add = (id: string | undefined, a: Acceptance) => {
    const key = id ?? `unknown ${a.provider} ${a.id}`;
    accepted.set(key, [...(accepted.get(key) ?? []), a]);
  };
  for (const req of r.twilio.accepted) add(byAddress.get(String(req.params.To)), { provider: 'twilio', id: req.sid! });
  for (const req of r.vonage.requests) add(String(req.body.client_ref), { provider: 'vonage', id: req.messageUuid });
  const attempts = new Map<string, Attempt[]>();
  for (const a of [...r.proxies.twilio.attempts, ...r.proxies.vonage.attempts]) {
    const id = a.provider === 'twilio' ? (byAddress.get(a.key) ?? a.key) : a.key;
    attempts.set(id, [...(attempts.get(id) ?? []), a]);
  }

  const problems: string[] = [];
  for (const m of rows) {
    const say = (p: string) => problems.push(`${m.id} to ${m.to_address} (${m.status}, ${m.attempts} attempts, timeline ${m.timeline.join(' → ')}): ${p}`);
    if (m.status !== 'sent' && m.status !== 'failed') say('not in a final status');
    if (m.due_at !== null) say('still in the outbox');
    if (m.status === 'failed' && !m.reason?.trim()) say('failed without a reason');
    if (!/^queued(,queued)*,(sent|failed)$/.test(m.timeline.join(','))) say('the timeline is not queued, retries, then one final status');
    if (m.ats.some((at, i) => i > 0 && at.getTime() < m.ats[i - 1]!.getTime())) say('the timeline goes back in time');
    if (m.timeline.some((s, i) => i > 0 && s !== 'sent' && !m.details[i])) say('a retry or failure on the timeline without its reason');
    if (m.attempts < 1 || m.attempts > RETRY_DELAYS_MS.length + 1) say('attempts out of range');
    const got = accepted.get(m.id) ?? [];
    if (m.status === 'sent' && !got.some((a) => a.provider === m.provider && a.id === m.provider_message_id)) {
      say(`recorded as sent by ${m.provider} ${m.provider_message_id}, which that provider never accepted (accepted: ${JSON.stringify(got)})`);
    }
    if (UNREACHABLE.includes(m.to_address) && m.status !== 'failed') say('an unreachable number did not end failed');
  }
  for (const id of accepted.keys()) if (id.startsWith('unknown')) problems.push(`a provider accepted a message the outbox does not have: ${id}`);
  if (r.sandbox.sent.length) problems.push(`${r.sandbox.sent.length} messages went to the sandbox`);
  return { rows, accepted, attempts, problems };
}

/** The sends of a message whose client gave up waiting, as the dispatcher recorded them. */
const timeoutsOf = (m: Row) => m.details.filter((d) => /no answer within/.test(d)).length;

/** How many more times the providers took a message than its record says it went. */
const extraSends = (o: Pick<Outcomes, 'accepted'>, m: Row) => (o.accepted.get(m.id)?.length ?? 0) - (m.status === 'sent' ? 1 : 0);

/**
 * Messages not taken exactly as their record says: a sent one once, a failed one never, but for
 * answers lost. Under load an event-loop stall can let the client give up on an answer the proxy
 * had already written (the attempt says `answered`): the provider took the message, and the
 * dispatcher, having recorded a timeout, sent it again, maybe through the other provider. A
 * timeout on the record that no unanswered attempt accounts for (a hang, a request read after its
 * client left) may stand for one such take; a take beyond those is a message sent twice.
 */
function wrongSends(o: Pick<Outcomes, 'rows' | 'accepted' | 'attempts'>): string[] {
  return o.rows.flatMap((m) => {
    const unanswered = (o.attempts.get(m.id) ?? []).filter((a) => a.outcome === 'hang' || a.gone).length;
    const lost = Math.max(0, timeoutsOf(m) - unanswered);
    const extra = extraSends(o, m);
    if (extra >= 0 && extra <= lost) return [];
    return [`${m.id} ${m.status}: accepted ${JSON.stringify(o.accepted.get(m.id) ?? [])} after ${JSON.stringify(o.attempts.get(m.id))}, ${timeoutsOf(m)} timeouts on record`];
  });
}

function summary(r: Run, o: Outcomes, rounds: number, started: number): string {
  const count = (status: string) => o.rows.filter((m) => m.status === status).length;
  const answers = Object.fromEntries((Object.keys(CLEAR) as Outcome[]).map((k) => [k, r.proxies.twilio.count(k) + r.proxies.vonage.count(k)]));
  const reasons: Record<string, number> = {};
  for (const m of o.rows) {
    if (m.status !== 'failed') continue;
    const reason = m.reason!.replace(/\d+/g, 'N').slice(0, 50);
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  }
  return `chaos seed ${SEED}: ${o.rows.length} messages, ${count('sent')} sent, ${count('failed')} failed, in ${rounds} rounds and ${((performance.now() - started) / 1000).toFixed(1)} s; answers ${JSON.stringify(answers)}; failures ${JSON.stringify(reasons)}`;
}

const printSeed = () => onTestFailed(() => console.error(`chaos seed ${SEED}: RAPPORT_CHAOS_SEED=${SEED} replays it`));

describe('chaos: two flaky SMS providers behind the router', () => {
  let run: Run | undefined;
  afterEach(async () => {
    await run?.close();
    run = undefined;
  });

  it('fails, resets, times out and throttles at random: every message ends sent exactly once or failed with a reason', async () => {
    printSeed();
    const started = performance.now();
    const r = (run = await setUp(CLEAR));
    const rounds = await runUntilEmpty(r);
    const o = await collect(r);
    console.log(summary(r, o, rounds, started));

    // A planned success read after its client had hung up would be a 'late' answer in disguise.
    const missed = [...r.proxies.twilio.attempts, ...r.proxies.vonage.attempts].filter((a) => a.answered === false);
    expect(missed, `successes answered after the ${TIMEOUT_MS} ms timeout: the machine was too busy for this test`).toEqual([]);

    expect(o.problems).toEqual([]);
    expect(o.rows).toHaveLength(CONTACTS);
    const sent = o.rows.filter((m) => m.status === 'sent').length;
    const failed = o.rows.filter((m) => m.status === 'failed').length;
    expect(sent + failed).toBe(CONTACTS);
    expect(failed).toBeGreaterThanOrEqual(UNREACHABLE.length);
    // None lost, none twice: a message sent was accepted exactly once, a failed one never, but
    // for answers a stall kept from their client, each on the message's record as a timeout.
    expect(wrongSends(o)).toEqual([]);
    const stalled = o.rows.reduce((n, m) => n + Math.max(0, extraSends(o, m)), 0);
    if (stalled) console.log(`chaos seed ${SEED}: ${stalled} answers written after their client had timed out (the machine was busy); those messages went again`);
    expect(r.twilio.accepted.length + r.vonage.requests.length).toBe(sent + stalled);

    // The chaos happened: every kind of answer was given, and both providers took a share.
    for (const k of ['accepted', 'slow', 'server', 'reset', 'hang', 'throttled'] as const) expect(r.proxies.twilio.count(k) + r.proxies.vonage.count(k), k).toBeGreaterThan(0);
    expect(r.twilio.accepted.length).toBeGreaterThan(0);
    expect(r.vonage.requests.length).toBeGreaterThan(0);
  }, 60_000);

  it('tells an answer lost to a stall from a message sent twice', () => {
    const timeout = `no answer within ${TIMEOUT_MS} ms`;
    const row = (id: string, status: string, details: string[]) => ({ id, status, details }) as Row;
    const attempt = (provider: ProviderName, key: string, n: number, outcome: Outcome, answered?: boolean): Attempt =>
      answered === undefined ? { provider, key, n, outcome } : { provider, key, n, outcome, answered };
    const took = (...providers: ProviderName[]) => providers.map((provider, i) => ({ provider, id: `p${i}` }));
    const o = {
      rows: [
        row('stalled', 'sent', ['', timeout, '']),
        row('stalled-failed', 'failed', ['', `timeout: ${timeout} (a provider did not answer an attempt and may have delivered it)`]),
        row('twice', 'sent', ['', 'server: HTTP 500', '']),
        row('hung', 'sent', ['', timeout, '']),
        row('never', 'sent', ['', '']),
      ],
      accepted: new Map([
        ['stalled', took('twilio', 'vonage')],
        ['stalled-failed', took('twilio')],
        ['twice', took('twilio', 'twilio')],
        ['hung', took('twilio', 'vonage')],
      ]),
      attempts: new Map([
        ['stalled', [attempt('twilio', 'a', 1, 'accepted', true), attempt('vonage', 'stalled', 1, 'slow', true)]],
        ['stalled-failed', [attempt('twilio', 'b', 1, 'accepted', true)]],
        ['twice', [attempt('twilio', 'c', 1, 'accepted', true), attempt('twilio', 'c', 2, 'accepted', true)]],
        ['hung', [attempt('twilio', 'd', 1, 'accepted', true), attempt('twilio', 'd', 2, 'hang'), attempt('vonage', 'hung', 1, 'accepted', true)]],
      ]),
    };
    expect(wrongSends(o).map((line) => line.split(' ')[0])).toEqual(['twice', 'hung', 'never']);
  });

  /**
   * Neither provider takes an idempotency key (Twilio's Messages API has none; Vonage does not
   * deduplicate on client_ref), so a send whose answer is lost cannot be told from one that never
   * arrived. What Rapport does with it today: the router counts the timeout against the account
   * and fails the message over to the next provider at once, or the dispatcher retries it later.
   * Either way the message goes out again.
   */
  describe('a provider that takes a message but answers after the timeout', () => {
    let r: Run;
    let o: Outcomes;
    const extra = (m: Row) => extraSends(o, m);
    // 'late' by design, or a planned success read just after its client gave up (the first case rules those out).
    const lostAnswers = (m: Row) => (o.attempts.get(m.id) ?? []).filter((a) => a.outcome === 'late' || a.answered === false).length;
    const timedOut = timeoutsOf;

    beforeAll(async () => {
      const started = performance.now();
      r = await setUp(AMBIGUOUS);
      const rounds = await runUntilEmpty(r);
      o = await collect(r);
      const twice = o.rows.filter((m) => extra(m) > 0);
      console.log(
        `${summary(r, o, rounds, started)}; ${o.rows.filter((m) => lostAnswers(m) > 0).length} messages had an answer lost; ` +
          `${twice.length} went out more often than recorded (${twice.filter((m) => m.status === 'failed').length} of them recorded as failed), ` +
          `${twice.filter((m) => extra(m) > timedOut(m)).length} with no timed-out attempt on their timeline`,
      );
    }, 60_000);
    afterAll(() => r?.close());

    it('still ends every message, and a message goes out twice only after an answer was lost', () => {
      printSeed();
      expect(o.problems).toEqual([]);
      expect(o.rows.filter((m) => m.status === 'sent' || m.status === 'failed')).toHaveLength(CONTACTS);
      expect(o.rows.filter((m) => extra(m) > lostAnswers(m)).map((m) => `${m.id}: accepted ${JSON.stringify(o.accepted.get(m.id))} after ${JSON.stringify(o.attempts.get(m.id))}`)).toEqual([]);
      // The duplicates this case exists to show do happen: if none did, the case tested nothing.
      expect(o.rows.some((m) => extra(m) > 0)).toBe(true);
    });

    /**
     * What must hold: every extra send is on the record, as a timed-out attempt on the message's
     * timeline (the router does not fail a timed-out send over to another provider inside one
     * call; the dispatcher retries it, and its 'queued' row says "no answer within ... ms"), and
     * a message that then fails says it may have been delivered all the same.
     */
    it('records every send whose outcome was unknown, so a duplicate is never silent', () => {
      expect(o.rows.filter((m) => extra(m) > timedOut(m)).map((m) => `${m.id} ${m.status} via ${m.provider}: timeline ${m.timeline.join(' → ')}`)).toEqual([]);
      const failedButTaken = o.rows.filter((m) => m.status === 'failed' && (o.accepted.get(m.id)?.length ?? 0) > 0);
      expect(failedButTaken.filter((m) => !/may have delivered it/.test(m.reason ?? '')).map((m) => `${m.id}: ${m.reason}`)).toEqual([]);
    });
  });
});
