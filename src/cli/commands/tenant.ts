import { InvalidArgumentError, type Command } from 'commander';
import { isValidTimeZone } from '../../core/contact.js';
import { withBackend } from '../backend.js';
import { formatTable, writeJson, writeLines, type CliContext } from '../context.js';

function parseName(value: string): string {
  const name = value.trim();
  if (!name || name.length > 200) throw new InvalidArgumentError('a tenant name is 1 to 200 characters');
  return name;
}

function parseTimeZone(value: string): string {
  if (!isValidTimeZone(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not an IANA time zone; use one such as Europe/Paris or America/Chicago`);
  return value;
}

function parseCountry(value: string): string {
  const code = value.trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(code)) throw new InvalidArgumentError('a country is a two-letter ISO 3166 code such as US, GB or BR');
  return code;
}

export function registerTenant(program: Command, ctx: CliContext): void {
  const tenant = program.command('tenant').description('create and list tenants (the businesses Rapport serves)');

  tenant
    .command('create')
    .description('create a tenant and its first API key')
    .requiredOption('--name <name>', 'the business name', parseName)
    .option('--time-zone <zone>', 'IANA time zone of the business (default UTC)', parseTimeZone)
    .option('--default-country <code>', 'ISO country assumed for phone numbers written without +, e.g. US', parseCountry)
    .option('--json', 'print {"tenant_id", "api_key"} and nothing else')
    .action(async (opts: { name: string; timeZone?: string; defaultCountry?: string; json?: boolean }) => {
      const { tenant: t, apiKey } = await withBackend(ctx.env, (b) =>
        b.createTenant({ name: opts.name, time_zone: opts.timeZone, settings: opts.defaultCountry ? { default_country: opts.defaultCountry } : undefined }),
      );
      if (opts.json) return writeJson(ctx, { tenant_id: t.id, api_key: apiKey });
      writeLines(
        ctx,
        `Created tenant "${t.name}" (${t.id}), time zone ${t.time_zone}.`,
        `Its API key, shown this once:  ${apiKey}`,
        '',
        `Next: import its contacts with  npx rapport contacts import people.csv --tenant ${t.id}`,
      );
    });

  tenant
    .command('list')
    .description('list tenants')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }) => {
      const tenants = await withBackend(ctx.env, (b) => b.listTenants());
      if (opts.json) return writeJson(ctx, tenants);
      if (!tenants.length) return writeLines(ctx, 'No tenants yet. Create one with  npx rapport tenant create --name "My business"');
      writeLines(
        ctx,
        ...formatTable(
          ['ID', 'NAME', 'TIME ZONE', 'COUNTRY', 'CREATED'],
          tenants.map((t) => [t.id, t.name, t.time_zone, t.default_country ?? '-', t.created_at.slice(0, 10)]),
        ),
      );
    });
}
