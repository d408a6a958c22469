import { Command } from 'commander';
import { registerMigrate } from './commands/migrate.js';
import { registerStart } from './commands/start.js';

/** The `rapport` command line. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('rapport').description('Rapport: proactive customer engagement over WhatsApp, SMS, email and voice').showHelpAfterError();
  registerStart(program);
  registerMigrate(program);
  await program.parseAsync(argv);
}
