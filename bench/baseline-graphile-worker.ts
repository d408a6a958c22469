/**
 * The graphile-worker process of bench/baseline-graphile.ts: the journey of bench/engine.ts
 * (SMS → wait 0 → email) as a team would build it on graphile-worker, one job per step, with the
 * local queue and batched completion on (https://worker.graphile.org/docs/performance#batching).
 *
 *   noop   a task that does nothing: what the queue itself costs.
 *   steps  task `sms`, then task `email`, each for one contact: read the contact, its consent,
 *          the tenant's policy and the suppression list with Rapport's own store functions,
 *          decide with Rapport's contact policy, render the node's Liquid with Rapport's
 *          renderer, send through Rapport's Twilio adapter (or the in-process sandbox), record
 *          the message and its status row as the dispatcher does. `sms` then adds the `email`
 *          job due at once: the wait of 0 is the next job's run_at, as a team would write it.
 *
 * The tasks read and write through the same pg pool graphile-worker runs on, as an application
 * sharing its pool with the queue would. Run with `node --import tsx` and an IPC channel, the
 * configuration as the one argument (JSON, BaselineWorkerConfig). It sends `{ running }` once the
 * worker pool is looking for jobs, `{ handled, at }` when `expect` jobs have finished, and on
 * 'stop' stops the pool and answers `{ stopped }` with its counts.
 */
import { Logger, run, type JobHelpers, type Runner, type Task } from 'graphile-worker';
import pg from 'pg';
import { twilioSmsAdapter } from '../src/channels/adapters/twilio-sms.js';
import type { OutgoingMessage, ProviderAccount, SendContext, SendResult } from '../src/channels/types.js';
import type { SendChannel, SendContent } from '../src/core/journey/definition.js';
import { DEFAULT_TOPIC, templateScope } from '../src/core/journey/engine.js';
import { addressFor, decideSend } from '../src/core/policy.js';
import { render } from '../src/core/template.js';
import { resolveZone } from '../src/core/zone.js';
import { SandboxProvider } from '../src/engine/providers.js';
import type { Queryable } from '../src/store/db.js';
import { newId } from '../src/store/ids.js';
import { isSuppressedIn, loadConsent, loadContacts, loadRecentSends, loadSuppressed, longestCap, tenantPolicies } from '../src/store/step-batch.js';
import { THREE_STEPS } from './engine-workload.js';

export interface BaselineWorkerConfig {
  connectionString: string;
  mode: 'noop' | 'steps';
  /** preset.worker.concurrentJobs */
  concurrency: number;
  /** preset.worker.localQueue.size */
  localQueueSize: number;
  /** The pg pool shared by graphile-worker and the tasks. */
  poolSize: number;
  /** Jobs the run will finish; `{ handled }` is sent when that many have. */
  expect: number;
  /** Where the steps send: the Twilio fake, or an in-process sandbox. */
  provider?: { kind: 'http'; url: string; account_sid: string; auth_token: string; from: string } | { kind: 'sandbox' };
}

export type WorkerReport = { running: true } | { handled: number; at: number } | { stopped: { handled: number; errors: number; firstError: string | null } };
export type WorkerCommand = 'stop';

interface StepPayload {
  tenant: string;
  contact: string;
}

const config = JSON.parse(process.argv[2] ?? '') as BaselineWorkerConfig;

let handled = 0;
let errors = 0;
let firstError: string | null = null;

/** Counts finished jobs and says so when the run's last one is done. */
function counted(task: Task): Task {
  return async (payload, helpers) => {
    try {
      await task(payload, helpers);
    } catch (err) {
      errors++;
      firstError ??= (err as Error).message;
      throw err;
    }
    if (++handled === config.expect) process.send!({ handled, at: performance.timeOrigin + performance.now() } satisfies WorkerReport);
  };
}

const pool = new pg.Pool({ connectionString: config.connectionString, max: config.poolSize, application_name: 'baseline-graphile' });
// An idle client that loses its connection must not crash the process (graphile-worker checks for both handlers).
pool.on('error', () => {});
pool.on('connect', (client) => client.on('error', () => {}));
const db: Queryable = {
  query: async (text, params) => {
    const r = await pool.query(text, params as unknown[] | undefined);
    return { rows: r.rows, rowCount: r.rowCount ?? 0 };
  },
};

// ---------------------------------------------------------------------------------------------
// The steps

const sendNode = (id: string) => {
  const node = THREE_STEPS.nodes.find((n) => n.id === id);
  if (node?.type !== 'send') throw new Error(`THREE_STEPS has no send node ${id}`);
  return node;
};
const SMS = sendNode('sms');
const MAIL = sendNode('mail');

const account = (): ProviderAccount | null => {
  const p = config.provider;
  if (p?.kind !== 'http') return null;
  return {
    id: 'baseline',
    tenant_id: '',
    name: 'Bench Twilio',
    kind: 'twilio',
    channel: 'sms',
    priority: 1,
    credentials: { account_sid: p.account_sid, auth_token: p.auth_token },
    config: { from: p.from, base_url: p.url },
  };
};
const twilio = account();
// The same context Rapport's router builds: global fetch, its default timeout.
const sendContext: SendContext | null = twilio ? { account: twilio, fetch, publicUrl: null, timeoutMs: 15_000 } : null;
const sandbox = new SandboxProvider({ keep: 0 });

/**
 * Both steps go to the one Twilio fake, the e-mail as a text to the contact's phone (subject
 * and body), so each HTTP request costs the same as Rapport's; the policy still checks the
 * e-mail address and e-mail consent.
 */
function send(msg: OutgoingMessage, phone: string | null): Promise<SendResult> {
  if (!sendContext) return sandbox.send(msg);
  const text = msg.subject ? `${msg.subject}\n\n${msg.body ?? ''}` : (msg.body ?? '');
  return twilioSmsAdapter.send({ ...msg, channel: 'sms', to: phone, body: text }, sendContext);
}

/** One send step for one contact; the `sms` step enqueues the `email` step when it is done. */
async function step(channel: SendChannel, nodeId: string, content: SendContent, payload: StepPayload, helpers: JobHelpers, next: string | null): Promise<void> {
  const pair = { tenant_id: payload.tenant, contact_id: payload.contact };
  const contact = (await loadContacts(db, [payload.contact])).get(payload.contact);
  const consent = (await loadConsent(db, [pair])).get(payload.contact) ?? [];
  const tenant = (await tenantPolicies(db, [payload.tenant])).get(payload.tenant);
  if (!contact || !tenant) throw new Error(`contact ${payload.contact} or its tenant is gone`);
  const address = addressFor(channel, contact);
  const suppressed = address ? await loadSuppressed(db, [{ tenant_id: payload.tenant, address }]) : new Set<string>();
  const longest = longestCap(tenant.frequency_caps);
  const recent = longest ? ((await loadRecentSends(db, [pair], new Date(Date.now() - longest))).get(payload.contact) ?? []) : [];
  const key = `${payload.contact}:${nodeId}`;
  const decision = decideSend(
    new Date(),
    { channel, topic: DEFAULT_TOPIC, transactional: false, ignoreQuietHours: false, key },
    {
      zone: resolveZone(contact, tenant.time_zone).zone,
      address,
      consent,
      suppressed: address !== null && isSuppressedIn(suppressed, payload.tenant, channel, address),
      recentSends: recent,
    },
    { quietHours: tenant.quiet_hours, sendWindow: tenant.send_window, caps: tenant.frequency_caps },
  );
  if (decision.action === 'defer') {
    await helpers.addJob(channel, payload, { runAt: decision.until });
    return;
  }

  const id = newId();
  let status: 'sent' | 'failed' | 'suppressed';
  let reason: string | null;
  let result: SendResult | null = null;
  let rendered: Record<string, unknown> | null = null;
  if (decision.action === 'block') {
    status = 'suppressed';
    reason = decision.reason;
  } else {
    const scope = templateScope(contact, {}, THREE_STEPS.name ?? null);
    const subject = content.subject !== undefined ? render(content.subject, scope) : undefined;
    // The ref lets the fake check that every message arrived exactly once.
    const body = `${render(content.body ?? '', scope)} (ref ${id})`;
    rendered = { to: address, body, ...(subject !== undefined ? { subject } : {}) };
    result = await send({ id, tenant_id: payload.tenant, channel, to: address, idempotency_key: key, body, ...(subject !== undefined ? { subject } : {}) }, contact.phone ?? null);
    // Temporary failures are thrown, so graphile-worker retries the job with its backoff.
    if (!result.ok && !result.permanent) throw new Error(`send: ${result.error}`);
    status = result.ok ? 'sent' : 'failed';
    reason = result.ok ? null : result.error;
  }
  const at = new Date();
  await db.query(
    `with m as (
       insert into messages (id, tenant_id, contact_id, node, kind, channel, topic, status, reason, idempotency_key, content, rendered, to_address,
                             provider, provider_message_id, attempts, created_at, updated_at, sent_at, failed_at)
       values ($1, $2, $3, $4, 'send', $5, $6, $7, $8, $9, '{}', $10, $11, $12, $13, 1, $14, $14,
               case when $7 = 'sent' then $14::timestamptz end, case when $7 = 'failed' then $14::timestamptz end)
       on conflict (tenant_id, idempotency_key) do nothing
       returning id, status, reason)
     insert into message_status (message_id, status, at, detail)
     select id, status, $14, case when reason is null then null else jsonb_build_object('reason', reason) end from m`,
    [
      id,
      payload.tenant,
      payload.contact,
      nodeId,
      channel,
      DEFAULT_TOPIC,
      status,
      reason,
      key,
      rendered,
      address,
      result ? (sendContext ? 'twilio' : 'sandbox') : null,
      result?.ok ? result.provider_message_id : null,
      at,
    ],
  );
  if (next) await helpers.addJob(next, payload);
}

const noop: Task = () => {};
const tasks: Record<string, Task> =
  config.mode === 'noop'
    ? { noop: counted(noop) }
    : {
        sms: counted((p, h) => step('sms', SMS.id, SMS.content, p as StepPayload, h, 'email')),
        email: counted((p, h) => step('email', MAIL.id, MAIL.content, p as StepPayload, h, null)),
      };

// graphile-worker logs every job at info; only warnings and errors are worth a bench's output.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

const runner: Runner = await run({
  pgPool: pool,
  taskList: tasks,
  logger,
  noHandleSignals: true,
  preset: {
    worker: {
      concurrentJobs: config.concurrency,
      localQueue: { size: config.localQueueSize },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  },
});
process.send!({ running: true } satisfies WorkerReport);

process.on('message', (cmd: WorkerCommand) => {
  if (cmd !== 'stop') return;
  void (async () => {
    await runner.stop();
    await pool.end();
    process.send!({ stopped: { handled, errors, firstError } } satisfies WorkerReport, () => process.exit(0));
  })();
});
process.on('disconnect', () => process.exit(0));
