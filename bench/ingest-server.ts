/**
 * The Rapport server of bench/ingest.ts, in a process of its own so the client's JSON work is not
 * charged to it and --cpu-prof profiles the server alone. Configured by the environment like
 * `rapport start`; reports its URL and first API key over IPC, answers `cpu` with its CPU time,
 * and stops on `stop`.
 */
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';

export type ServerMessage = { url: string; apiKey: string; database: string } | { cpuSeconds: number };
export type ClientMessage = 'cpu' | 'stop';

if (!process.send) throw new Error('bench/ingest-server.ts is started by bench/ingest.ts, with an IPC channel');

const config = loadConfig();
const server = await startServer(config, { logger: pino({ level: 'warn' }) });
if (!server.firstTenant) throw new Error('the bench database already had a tenant; it must start empty');
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

process.on('message', async (m: ClientMessage) => {
  if (m === 'cpu') process.send!({ cpuSeconds: cpuSeconds() } satisfies ServerMessage);
  if (m === 'stop') {
    await server.close();
    // Leaving the event loop empty, rather than process.exit, lets --cpu-prof write its profile.
    process.disconnect();
  }
});
process.send({ url: server.url, apiKey: server.firstTenant.apiKey, database: server.db.kind } satisfies ServerMessage);
