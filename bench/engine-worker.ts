/**
 * A worker process for bench/engine.ts that runs only the scheduler: `rapport worker` always
 * dispatches too, and the scheduler-only figure is what shows how the time of a send splits
 * between walking journeys and delivering. Otherwise the same as `rapport worker --concurrency 1`:
 * configured by the environment (DATABASE_URL, DATABASE_POOL_SIZE, RAPPORT_POLL_MS), prints the
 * same two lines, stops on SIGTERM. Run with `node --import tsx`.
 */
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { systemClock } from '../src/engine/clock.js';
import { sandboxRegistry } from '../src/engine/providers.js';
import { Worker } from '../src/engine/worker.js';
import { openStore } from '../src/server.js';

const config = loadConfig();
if (config.store.kind !== 'postgres') throw new Error('bench/engine-worker.ts needs DATABASE_URL');
const logger = pino({ level: config.logLevel });
const { db } = await openStore(config, logger);
const worker = new Worker({ db, clock: systemClock, providers: sandboxRegistry(), logger, pollMs: config.pollMs, dispatch: false });
await worker.start();
process.stdout.write(`engine-worker: scheduler only, running (pid ${process.pid})\n`);
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await worker.stop();
await db.close();
process.stdout.write(`engine-worker: stopped after ${worker.stats.steps} steps\n`);
