import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig } from '../../config.js';
import { systemClock } from '../../engine/clock.js';
import { deliveryFor } from '../../channels/delivery.js';
import { llmFromEnv } from '../../engine/llm-client.js';
import { Worker } from '../../engine/worker.js';
import { openStore } from '../../server.js';
import { secretBox } from '../../store/secret-key.js';
import type { CliContext } from '../context.js';

export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run journey and delivery workers against PostgreSQL (DATABASE_URL); run as many processes as the load needs')
    .option('--concurrency <n>', 'workers in this process', '1')
    .action(async (opts: { concurrency: string }) => {
      const config = loadConfig(ctx.env);
      if (config.store.kind !== 'postgres') {
        throw new Error('rapport worker needs DATABASE_URL: the embedded database belongs to `rapport start`, which runs its own worker');
      }
      const n = Number(opts.concurrency);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`--concurrency must be a whole number from 1 to 64, got ${JSON.stringify(opts.concurrency)}`);
      const logger = pino({ level: config.logLevel });
      const { db } = await openStore(config, logger);
      const delivery = deliveryFor(db, { secrets: secretBox({ secretKey: config.secretKey }), publicUrl: config.publicUrl ?? null, webhookAllowPrivate: config.webhookAllowPrivate });
      const llm = llmFromEnv(ctx.env);
      const workers = Array.from({ length: n }, () => new Worker({ db, clock: systemClock, providers: delivery.router, logger, pollMs: config.pollMs, email: delivery.email, actionWebhooks: delivery.actionWebhooks, llm }));
      await Promise.all(workers.map((w) => w.start()));
      ctx.stdout.write(`rapport worker: ${n} worker${n === 1 ? '' : 's'} running (pid ${process.pid}); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await Promise.all(workers.map((w) => w.stop()));
      await db.close();
      const steps = workers.reduce((s, w) => s + w.stats.steps, 0);
      ctx.stdout.write(`rapport worker: stopped after ${steps} steps\n`);
    });
}
