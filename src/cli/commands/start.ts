import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { startServer } from '../../server.js';
import type { CliContext } from '../context.js';

export function registerStart(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('run the Rapport server (embedded database unless DATABASE_URL is set)')
    .action(async () => {
      const config = loadConfig(ctx.env);
      const server = await startServer(config);
      const where = config.store.kind === 'pglite' ? `embedded PGlite in ${config.store.dataDir}` : 'PostgreSQL (DATABASE_URL)';
      const lines = [
        '',
        `  Rapport is running at ${server.url}`,
        `  API docs:  ${server.url}/docs`,
        `  Database:  ${where}`,
      ];
      if (server.firstTenant) {
        lines.push(
          '',
          `  Created your first tenant "${server.firstTenant.name}" (${server.firstTenant.id}).`,
          `  Its API key, shown this once:  ${server.firstTenant.apiKey}`,
          '',
          `  Try:  curl -H "Authorization: Bearer ${server.firstTenant.apiKey}" ${server.url}/v1/tenant`,
        );
      } else {
        lines.push('', '  Make an API key with:  npx rapport apikey create --tenant <id>');
      }
      ctx.stdout.write(lines.join('\n') + '\n\n');
      const stop = async () => {
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
