import { InvalidArgumentError, type Command } from 'commander';
import { NotFoundError } from '../../core/errors.js';
import { withBackend, type Backend } from '../backend.js';
import { CliError, formatTable, parseId, parseTenantId, writeJson, writeLines, type CliContext } from '../context.js';

function parseKeyName(value: string): string {
  const name = value.trim();
  if (!name || name.length > 100) throw new InvalidArgumentError('a key name is 1 to 100 characters');
  return name;
}

const parseKeyId = parseId('key id', '`rapport apikey list --tenant <id>` shows them');

/** Runs fn, turning "not found" into a sentence that names the tenant or key and what to run. */
async function forTenant<T>(ctx: CliContext, tenantId: string, fn: (b: Backend) => Promise<T>): Promise<T> {
  return withBackend(ctx.env, async (b) => {
    try {
      return await fn(b);
    } catch (err) {
      if (err instanceof NotFoundError && err.resource === 'tenant') {
        throw new CliError(`tenant ${tenantId} does not exist in ${b.where}; \`rapport tenant list\` shows the tenants`);
      }
      if (err instanceof NotFoundError) throw new CliError(`tenant ${tenantId} has no such API key; \`rapport apikey list --tenant ${tenantId}\` shows its keys`);
      throw err;
    }
  });
}

export function registerApiKey(program: Command, ctx: CliContext): void {
  const apikey = program.command('apikey').description("create, list and revoke a tenant's API keys");

  apikey
    .command('create')
    .description('create an API key; its secret is shown once')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--name <name>', 'what the key is for, to tell keys apart', parseKeyName, 'cli')
    .option('--json', 'print {"id", "name", "api_key"} and nothing else')
    .action(async (opts: { tenant: string; name: string; json?: boolean }) => {
      const { key, secret } = await forTenant(ctx, opts.tenant, (b) => b.createApiKey(opts.tenant, opts.name));
      if (opts.json) return writeJson(ctx, { id: key.id, name: key.name, api_key: secret });
      writeLines(
        ctx,
        `Created API key "${key.name}" (${key.id}) for tenant ${opts.tenant}.`,
        `The key, shown this once:  ${secret}`,
        '',
        'Send it as  Authorization: Bearer <key>  on every /v1 request.',
      );
    });

  apikey
    .command('list')
    .description("list a tenant's API keys (never their secrets)")
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--json', 'print a JSON array')
    .action(async (opts: { tenant: string; json?: boolean }) => {
      const keys = await forTenant(ctx, opts.tenant, (b) => b.listApiKeys(opts.tenant));
      if (opts.json) return writeJson(ctx, keys);
      if (!keys.length) return writeLines(ctx, `Tenant ${opts.tenant} has no API keys. Create one with  npx rapport apikey create --tenant ${opts.tenant}`);
      const day = (s: string | null) => (s ? s.slice(0, 16).replace('T', ' ') : '-');
      writeLines(
        ctx,
        ...formatTable(
          ['ID', 'NAME', 'PREFIX', 'CREATED', 'LAST USED', 'REVOKED'],
          keys.map((k) => [k.id, k.name, `${k.prefix}…`, day(k.created_at), day(k.last_used_at), day(k.revoked_at)]),
        ),
      );
    });

  apikey
    .command('revoke')
    .description('revoke an API key; it stops working at once')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .argument('<key-id>', 'id of the key, from `rapport apikey list`', parseKeyId)
    .action(async (keyId: string, opts: { tenant: string }) => {
      const key = await forTenant(ctx, opts.tenant, (b) => b.revokeApiKey(opts.tenant, keyId));
      writeLines(ctx, `Revoked API key "${key.name}" (${key.prefix}…, ${key.id}). Requests with it are refused from now on.`);
    });
}
