import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { openStore } from '../../server.js';
import { writeLines, type CliContext } from '../context.js';

export function registerMigrate(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(async () => {
      const { db, lock } = await openStore(loadConfig(ctx.env));
      try {
        const { rows } = await db.query<{ name: string }>('select name from rapport_migrations order by version');
        writeLines(ctx, `database is at ${rows[rows.length - 1]?.name ?? 'no migration'} (${rows.length} applied)`);
      } finally {
        await db.close();
        lock?.release();
      }
    });
}
