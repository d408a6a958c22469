import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { InputError } from '../../core/errors.js';
import { durationMs } from '../../core/time.js';
import { simulate, simulationProblems, SimulationTemplate } from '../../engine/simulate.js';
import { apiProblems } from '../../store/journeys.js';
import { getTenant } from '../../store/tenants.js';
import type { RouteDeps } from '../app.js';
import { sendError } from '../errors.js';
import { errors } from '../schemas/common.js';
import { SimulationInput, SimulationReport } from '../schemas/simulate.js';

/** A definition of 500 nodes with e-mail HTML inline is larger than the API's default body limit. */
const DEFINITION_BODY_LIMIT = 4 * 1024 * 1024;

/**
 * Each simulation holds its own in-memory database and keeps a core busy for up to tens of
 * seconds; more at once would only slow every request on this process down.
 */
export const MAX_CONCURRENT_SIMULATIONS = 2;
/** A run that takes longer is stopped: the CLI has no such limit. */
export const SIMULATION_DEADLINE_MS = 5 * 60_000;

class DeadlineError extends Error {}

/**
 * Dry runs of a journey: the real engine on a throwaway database with synthetic contacts, under
 * the caller's tenant policy (zone, send window, quiet hours, caps). Nothing of the tenant's data
 * is read beyond those settings, and nothing is written.
 */
export const simulateRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, { db }) => {
  const template = new SimulationTemplate();
  app.addHook('onClose', () => template.close());
  let running = 0;

  app.post(
    '/journeys/simulate',
    {
      bodyLimit: DEFINITION_BODY_LIMIT,
      schema: {
        tags: ['journeys'],
        summary: 'Simulate a journey definition on synthetic contacts (a dry run)',
        description:
          'Runs the definition through the real engine on a throwaway in-memory database: synthetic contacts in 12 time zones with consent on every channel, a sandbox provider, and simulated deliveries, opens, clicks and replies drawn from `probabilities` with `seed`. Your tenant\'s time zone, send window, quiet hours and frequency caps apply; none of your contacts or journeys are read or changed. A definition that could not be published is refused (400 naming the field, the node first in the message); stored templates cannot be used. At most two simulations run at once per server (429 otherwise), each for at most five minutes (503 otherwise). docs/simulation.md describes the report.',
        body: SimulationInput,
        response: { 200: SimulationReport, ...errors(400, 401, 413, 429, 503) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const { definition, problems } = simulationProblems(body.definition);
      if (problems.length) throw new InputError(apiProblems(problems));
      let resolutionMs: number | undefined;
      if (body.resolution !== undefined) {
        resolutionMs = durationMs(body.resolution);
        if (resolutionMs < 1000 || resolutionMs > 86_400_000) throw InputError.field('resolution', 'must be from 1s to 1d');
      }
      if (running >= MAX_CONCURRENT_SIMULATIONS) {
        reply.header('retry-after', '10');
        return sendError(reply, 429, 'too_many_requests', `${MAX_CONCURRENT_SIMULATIONS} simulations are already running on this server; try again in a few seconds`);
      }
      running++;
      // A caller that hung up no longer needs the result; stop the run and free the core.
      const stop = new AbortController();
      const gone = () => stop.abort(new Error('the client closed the connection'));
      reply.raw.once('close', gone);
      const deadline = setTimeout(() => stop.abort(new DeadlineError()), SIMULATION_DEADLINE_MS);
      try {
        const t = await getTenant(db, req.auth.tenantId);
        return await simulate(definition, {
          contacts: body.contacts ?? 1000,
          days: body.days ?? 30,
          ...(body.seed !== undefined ? { seed: body.seed } : {}),
          ...(body.start !== undefined ? { start: new Date(body.start) } : {}),
          ...(body.probabilities ? { probabilities: body.probabilities } : {}),
          ...(body.reply_texts ? { replyTexts: body.reply_texts } : {}),
          ...(body.events ? { events: body.events } : {}),
          ...(resolutionMs !== undefined ? { resolutionMs } : {}),
          tenant: { time_zone: t.time_zone, send_window: t.send_window, quiet_hours: t.quiet_hours, frequency_caps: t.frequency_caps, settings: t.settings },
          template,
          signal: stop.signal,
        });
      } catch (err) {
        if (err instanceof DeadlineError) {
          return sendError(reply, 503, 'timeout', `the simulation ran longer than ${SIMULATION_DEADLINE_MS / 60_000} minutes and was stopped; simulate fewer contacts or days, or use \`rapport simulate\`, which has no limit`);
        }
        throw err;
      } finally {
        clearTimeout(deadline);
        reply.raw.off('close', gone);
        running--;
      }
    },
  );
};
