import type { Command } from 'commander';
import { journeyDocument } from '../../api/routes/journeys.js';
import { InputError, NotFoundError, type FieldProblem } from '../../core/errors.js';
import { checkDefinition, checkPublishable } from '../../core/journey/validate.js';
import { JourneyProblemsError } from '../../store/journeys.js';
import { withBackend, type Backend, type JourneyListItem } from '../backend.js';
import { CliError, formatTable, parseTenantId, readDocumentFile, writeJson, writeLines, type CliContext } from '../context.js';

interface Problem {
  field: string;
  node?: string;
  message: string;
}

/** A journey file: JSON or YAML by extension, either `{name, definition}` or a bare definition. */
export function readJourneyFile(file: string): { name?: string; definition: unknown } {
  const doc = readDocumentFile(file, 'a journey');
  const body = journeyDocument(doc);
  if (body === null || typeof body !== 'object' || !('definition' in body)) throw new CliError(`${file} holds no journey: expected a definition (entry, nodes…) or {name, definition}`);
  const { name, definition } = body as { name?: unknown; definition: unknown };
  return { ...(typeof name === 'string' ? { name } : {}), definition };
}

/** `node "welcome" nodes[2].content.body: is not a valid Liquid template…`, fields relative to the definition. */
function problemLine(p: Problem): string {
  const field = p.field.replace(/^definition\.?/, '') || '(journey)';
  // Problems that come back from the API carry the node at the head of the message only.
  const m = /^node "([^"]+)": (.*)$/s.exec(p.message);
  const node = p.node ?? m?.[1];
  const message = m ? m[2]! : p.message;
  return `${node ? `node "${node}" ` : ''}${field}: ${message}`;
}

function fail(ctx: CliContext, file: string, problems: Problem[], what: string, json: boolean | undefined): never {
  if (json) writeJson(ctx, { valid: false, problems: problems.map(({ field, node, message }) => ({ field: field.replace(/^definition\.?/, ''), ...(node ? { node } : {}), message })) });
  else writeLines(ctx, ...problems.map(problemLine));
  throw new CliError(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; ${what}`);
}

/** Runs fn with a backend, naming the tenant when it does not exist. */
async function forTenant<T>(ctx: CliContext, tenantId: string, fn: (b: Backend) => Promise<T>): Promise<T> {
  return withBackend(ctx.env, async (b) => {
    try {
      return await fn(b);
    } catch (err) {
      if (err instanceof NotFoundError && err.resource === 'tenant') throw new CliError(`tenant ${tenantId} does not exist in ${b.where}; \`rapport tenant list\` shows the tenants`);
      throw err;
    }
  });
}

export function registerJourneys(program: Command, ctx: CliContext): void {
  const journeys = program.command('journeys').description('check, push and list journeys kept as files (YAML or JSON)');

  journeys
    .command('validate')
    .description('check a journey file with the rules publishing applies; prints one problem per line and exits 1 when there are any')
    .argument('<file>', 'journey file: .yaml, .yml or .json')
    .option('--tenant <id>', "check stored templates against this tenant's (without it, templates named are assumed to exist)", parseTenantId)
    .option('--json', 'print {"valid", "problems"}')
    .action(async (file: string, opts: { tenant?: string; json?: boolean }) => {
      const { definition: input } = readJourneyFile(file);
      const { definition, problems } = checkDefinition(input);
      if (problems.length) fail(ctx, file, problems, 'the definition is not well-formed', opts.json);
      const templates = opts.tenant ? new Set(await forTenant(ctx, opts.tenant, (b) => b.templateNames(opts.tenant!))) : null;
      const graph = checkPublishable(definition, { templateExists: (name) => templates === null || templates.has(name) });
      if (graph.length) fail(ctx, file, graph, 'it cannot be published as it is', opts.json);
      if (opts.json) return writeJson(ctx, { valid: true, problems: [] });
      writeLines(ctx, `${file}: valid${templates === null ? ' (stored templates not checked: give --tenant to check them)' : ''}.`);
    });

  journeys
    .command('push')
    .description("create the journey, or replace its draft when one of that name exists, and optionally publish it")
    .argument('<file>', 'journey file: .yaml, .yml or .json')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--name <name>', 'journey name (default: the name in the file)')
    .option('--publish', 'publish the draft as the next version once pushed')
    .option('--json', 'print {"id", "name", "action", "status", "version"}')
    .action(async (file: string, opts: { tenant: string; name?: string; publish?: boolean; json?: boolean }) => {
      const doc = readJourneyFile(file);
      const name = (opts.name ?? doc.name)?.trim();
      if (!name) throw new CliError(`${file} has no name: add name: to the file or pass --name`);
      const outcome = await forTenant(ctx, opts.tenant, async (b) => {
        const existing = (await b.listJourneys(opts.tenant, name)).filter((j) => j.status !== 'archived');
        if (existing.length > 1) {
          throw new CliError(`tenant ${opts.tenant} has ${existing.length} journeys named "${name}" (${existing.map((j) => j.id).join(', ')}); rename one, or pass another --name`);
        }
        let journey: JourneyListItem;
        let action: 'created' | 'updated';
        try {
          if (existing[0]) {
            journey = await b.updateJourneyDraft(opts.tenant, existing[0].id, name, doc.definition);
            action = 'updated';
          } else {
            journey = await b.createJourney(opts.tenant, name, doc.definition);
            action = 'created';
          }
        } catch (err) {
          if (err instanceof InputError) fail(ctx, file, err.problems as FieldProblem[], 'nothing was pushed', opts.json);
          throw err;
        }
        if (!opts.publish) return { journey, action, version: null as number | null, status: journey.status };
        try {
          const published = await b.publishJourney(opts.tenant, journey.id);
          return { journey, action, ...published };
        } catch (err) {
          if (err instanceof JourneyProblemsError) fail(ctx, file, err.problems, `the draft was ${action} but not published`, opts.json);
          throw err;
        }
      });
      const { journey, action, version, status } = outcome;
      if (opts.json) return writeJson(ctx, { id: journey.id, name: journey.name, action, status, version });
      const lines = [action === 'created' ? `Created journey "${journey.name}" (${journey.id}) as a draft.` : `Replaced the draft of journey "${journey.name}" (${journey.id}).`];
      if (version !== null) lines.push(`Published version ${version}; the journey is ${status}.`);
      else lines.push(`Publish it with  rapport journeys push ${file} --tenant ${opts.tenant} --publish`);
      writeLines(ctx, ...lines);
    });

  journeys
    .command('list')
    .description("list a tenant's journeys")
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--json', 'print a JSON array')
    .action(async (opts: { tenant: string; json?: boolean }) => {
      const list = await forTenant(ctx, opts.tenant, (b) => b.listJourneys(opts.tenant));
      if (opts.json) return writeJson(ctx, list);
      if (!list.length) return writeLines(ctx, `Tenant ${opts.tenant} has no journeys. Push one with  rapport journeys push <file> --tenant ${opts.tenant}`);
      const day = (s: string | null) => (s ? s.slice(0, 16).replace('T', ' ') : '-');
      writeLines(
        ctx,
        ...formatTable(
          ['ID', 'NAME', 'STATUS', 'VERSION', 'OPEN', 'PUBLISHED'],
          list.map((j) => [j.id, j.name, j.status, j.version === null ? '-' : String(j.version), String(j.open_enrollments), day(j.published_at)]),
        ),
      );
    });
}
