import { Command, CommanderError } from 'commander';
import { registerApiKey } from './commands/apikey.js';
import { registerCampaigns } from './commands/campaigns.js';
import { registerContacts } from './commands/contacts.js';
import { registerJourneys } from './commands/journeys.js';
import { registerMigrate } from './commands/migrate.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerSimulate } from './commands/simulate.js';
import { registerStart } from './commands/start.js';
import { registerTenant } from './commands/tenant.js';
import { registerWorker } from './commands/worker.js';
import { processContext, type CliContext } from './context.js';

/**
 * The `rapport` command line. Resolves to the exit code: 0 when the command completed, 1 when it
 * could not (the reason is on ctx.stderr). It does not throw for a failed command.
 */
export async function main(argv: string[], ctx: CliContext = processContext()): Promise<number> {
  const program = new Command('rapport')
    .description('Rapport: proactive customer engagement over WhatsApp, SMS, email and voice')
    .showHelpAfterError()
    // Set before the commands are added, which inherit both.
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });
  registerStart(program, ctx);
  registerMigrate(program, ctx);
  registerTenant(program, ctx);
  registerApiKey(program, ctx);
  registerContacts(program, ctx);
  registerJourneys(program, ctx);
  registerCampaigns(program, ctx);
  registerWorker(program, ctx);
  registerSimulate(program, ctx);
  registerSandbox(program, ctx);

  let code = 0;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Commander has already printed its own errors (unknown option, missing argument) and help.
    if (err instanceof CommanderError) code = err.exitCode;
    else {
      ctx.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      if (ctx.env.LOG_LEVEL === 'debug' && err instanceof Error && err.stack) ctx.stderr.write(err.stack + '\n');
      code = 1;
    }
  }
  ctx.setExitCode?.(code);
  return code;
}
