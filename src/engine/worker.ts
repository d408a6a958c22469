import type { Logger } from 'pino';
import type { EmailPreparer } from '../channels/email-prepare.js';
import type { Db } from '../store/db.js';
import { WORK_CHANNEL } from '../store/enrollments.js';
import type { Clock } from './clock.js';
import { DEFAULT_DISPATCH_BATCH, runDispatchBatch, type ActionWebhooks } from './dispatcher.js';
import type { ProviderRegistry } from './providers.js';
import { KEEP_ALIVE_SWEEP_MS, runKeepAlive } from './keep-alive.js';
import { runCampaigns } from './campaign-runner.js';
import type { LlmClient } from './llm-client.js';
import { runRefinements } from './pulse-refine.js';
import { DEFAULT_BATCH_SIZE, runSchedulerBatch } from './scheduler.js';

export interface WorkerOptions {
  db: Db;
  clock: Clock;
  providers: ProviderRegistry;
  logger?: Logger;
  batchSize?: number;
  dispatchBatchSize?: number;
  /** Longest sleep when nothing is due and no notification comes; the fallback to LISTEN/NOTIFY. */
  pollMs?: number;
  /** Run the dispatcher too (default); a process may run only the scheduler. */
  dispatch?: boolean;
  /** Composes e-mail before it is sent (see channels/email-prepare.ts); without it e-mail goes as rendered. */
  email?: EmailPreparer;
  /** How action webhooks leave (guard, signing secrets); without it, guarded with no private range allowed, unsigned. */
  actionWebhooks?: ActionWebhooks;
  /** The chat model pulses are refined with (engine/pulse-refine.ts); without it the composer's text is sent. */
  llm?: LlmClient | null;
}

export interface WorkerStats {
  batches: number;
  steps: number;
  enrollments: number;
  messagesQueued: number;
  sent: number;
  failed: number;
  /** Pulse messages the model's answer was used for, and those that kept the composer's text. */
  refined: number;
  refineFellBack: number;
}

/**
 * One worker: loops scheduler and dispatcher batches while there is work, then sleeps until a
 * notification (new work committed anywhere), the next timer, or the poll interval. Any number
 * may run against one database; SKIP LOCKED keeps their batches apart.
 */
export class Worker {
  readonly stats: WorkerStats = { batches: 0, steps: 0, enrollments: 0, messagesQueued: 0, sent: 0, failed: 0, refined: 0, refineFellBack: 0 };
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private notified = false;
  private unlisten: (() => Promise<void>) | null = null;
  private nextKeepAlive = 0;
  /** Model calls take seconds: a started worker makes them in a loop of their own, beside the batches. */
  private refineLoop: Promise<void> | null = null;
  private refineWake: (() => void) | null = null;

  constructor(private readonly opts: WorkerOptions) {}

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unlisten = await this.opts.db.listen(WORK_CHANNEL, () => this.poke());
    this.loop = this.run();
    if (this.opts.llm) this.refineLoop = this.runRefine(this.opts.llm);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.poke();
    await Promise.all([this.loop, this.refineLoop]);
    this.loop = null;
    this.refineLoop = null;
    await this.unlisten?.();
    this.unlisten = null;
  }

  /** Runs batches until nothing is due at the clock's current time. For tests and the simulator. */
  async drain(): Promise<WorkerStats> {
    while (await this.once()) {
      // keep going
    }
    return this.stats;
  }

  /** One scheduler batch and one dispatcher batch; true when either found a full batch or any work. */
  async once(): Promise<boolean> {
    const { db, clock, providers } = this.opts;
    const size = this.opts.batchSize ?? DEFAULT_BATCH_SIZE;
    if (clock.now().getTime() >= this.nextKeepAlive) {
      // Every worker sweeps; the idempotency key makes a second sweep of the same window a no-op.
      this.nextKeepAlive = clock.now().getTime() + KEEP_ALIVE_SWEEP_MS;
      await runKeepAlive(db, clock.now());
    }
    // Every loop: a campaign due now should not wait for a timer, and with none due or running this is one query.
    const campaigns = await runCampaigns(db, clock.now(), { refine: !!this.opts.llm });
    // Without the loop of its own (drain, once): the model's work is part of the round. Without a
    // model, pulse messages left waiting for one (it was removed, or other workers have it) are
    // released as composed once they have waited long enough.
    let refined = 0;
    if (this.opts.llm && !this.refineLoop) refined = await this.refineOnce(this.opts.llm);
    else if (!this.opts.llm && campaigns.active) await this.releaseUnrefined();
    const s = await runSchedulerBatch(db, clock.now(), size);
    this.stats.batches++;
    this.stats.enrollments += s.claimed;
    this.stats.steps += s.steps;
    this.stats.messagesQueued += s.messages;
    let dispatched = 0;
    if (this.opts.dispatch !== false) {
      const d = await runDispatchBatch(db, () => clock.now(), providers, this.opts.dispatchBatchSize ?? DEFAULT_DISPATCH_BATCH, { email: this.opts.email, actionWebhooks: this.opts.actionWebhooks });
      this.stats.sent += d.sent;
      this.stats.failed += d.failed;
      dispatched = d.claimed;
    }
    return s.claimed > 0 || dispatched > 0 || campaigns.batches > 0 || refined > 0;
  }

  private poke(): void {
    this.notified = true;
    this.wake?.();
    this.refineWake?.();
  }

  private async releaseUnrefined(): Promise<void> {
    const r = await runRefinements(this.opts.db, () => this.opts.clock.now(), null);
    if (r.fell_back) this.opts.logger?.warn({ released: r.fell_back }, 'pulse messages waited for a chat model and were sent as composed; configure RAPPORT_LLM_URL on every worker');
    this.stats.refineFellBack += r.fell_back;
  }

  private async refineOnce(llm: LlmClient): Promise<number> {
    const r = await runRefinements(this.opts.db, () => this.opts.clock.now(), llm, { concurrency: llm.concurrency });
    this.stats.refined += r.refined;
    this.stats.refineFellBack += r.fell_back;
    return r.claimed;
  }

  private async runRefine(llm: LlmClient): Promise<void> {
    const poll = this.opts.pollMs ?? 1000;
    while (this.running) {
      let claimed = 0;
      try {
        claimed = await this.refineOnce(llm);
      } catch (err) {
        this.opts.logger?.error({ err }, 'pulse refinement failed; retrying');
      }
      if (claimed || !this.running) continue;
      // New rows come with a batch's notification; the poll covers leases that ran out.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.refineWake = null;
          resolve();
        };
        const t = setTimeout(done, poll);
        this.refineWake = done;
      });
    }
  }

  private async run(): Promise<void> {
    const poll = this.opts.pollMs ?? 1000;
    while (this.running) {
      let busy: boolean;
      try {
        this.notified = false;
        busy = await this.once();
      } catch (err) {
        this.opts.logger?.error({ err }, 'worker batch failed; retrying');
        await this.sleep(poll);
        continue;
      }
      if (busy || this.notified || !this.running) continue;
      await this.sleep(Math.min(poll, await this.untilNextDue(poll)));
    }
  }

  /** How long until the earliest timer or queued message is due, capped at `max`. */
  private async untilNextDue(max: number): Promise<number> {
    try {
      const { rows } = await this.opts.db.query<{ at: Date | null }>(
        `select least((select min(due_at) from enrollments where due_at is not null), (select min(due_at) from messages where due_at is not null),
                      (select min(next_run_at) from campaigns where next_run_at is not null and status in ('scheduled', 'running'))) as at`,
      );
      const at = rows[0]?.at;
      if (!at) return max;
      return Math.max(0, Math.min(max, at.getTime() - this.opts.clock.now().getTime()));
    } catch {
      return max;
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.notified) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
