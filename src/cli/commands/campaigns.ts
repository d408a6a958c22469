import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CAMPAIGN_STATUSES, type CampaignStatus } from '../../core/campaign.js';
import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../../core/errors.js';
import { RECIPIENT_STATES, type RecipientState } from '../../store/campaigns.js';
import { withBackend, type Backend, type CampaignDetail, type CampaignItem, type CampaignLifecycleAction } from '../backend.js';
import { CliError, formatTable, parseTenantId, readDocumentFile, writeJson, writeLines, type CliContext } from '../context.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A campaign file: JSON or YAML by extension, holding the body of POST /v1/campaigns. */
export function readCampaignFile(file: string): Record<string, unknown> {
  const doc = readDocumentFile(file, 'a campaign');
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file} holds no campaign: expected an object with name, type, audience and action`);
  return doc as Record<string, unknown>;
}

function problemLines(problems: readonly FieldProblem[]): string {
  return problems.map((p) => `  ${p.field}: ${p.message}`).join('\n');
}

/** What a refusal means to the person at the terminal; other errors pass as they are. */
function explain(err: unknown, tenantId: string, where: string, ref = 'of that id'): unknown {
  if (err instanceof NotFoundError) {
    if (err.resource === 'tenant') return new CliError(`tenant ${tenantId} does not exist in ${where}; \`rapport tenant list\` shows the tenants`);
    if (err.resource === 'campaign') return new CliError(`tenant ${tenantId} has no campaign ${ref}; \`rapport campaigns list --tenant ${tenantId}\` shows them`);
  }
  if (err instanceof InputError) return new CliError(`the request was refused:\n${problemLines(err.problems)}`);
  if (err instanceof ConflictError) return new CliError(err.field ? `${err.field}: ${err.message}` : err.message);
  return err;
}

/** Runs fn with a backend, turning its refusals into messages that say what to do. */
async function forTenant<T>(ctx: CliContext, tenantId: string, fn: (b: Backend) => Promise<T>, ref?: string): Promise<T> {
  return withBackend(ctx.env, async (b) => {
    try {
      return await fn(b);
    } catch (err) {
      throw explain(err, tenantId, b.where, ref);
    }
  });
}

/** A campaign named by id, or by its name (unique in the tenant). */
async function resolve(b: Backend, tenantId: string, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref.toLowerCase();
  const found = (await b.listCampaigns(tenantId)).find((c) => c.name === ref);
  if (!found) throw new CliError(`tenant ${tenantId} has no campaign named ${JSON.stringify(ref)}; \`rapport campaigns list --tenant ${tenantId}\` shows them`);
  return found.id;
}

/** `2026-03-09 09:00 UTC`, or `-`. */
const at = (s: string | null | undefined): string => (s ? `${s.slice(0, 16).replace('T', ' ')} UTC` : '-');

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('a whole number from 1 to 1000');
  return n;
}

function parseName(value: string): string {
  const name = value.trim();
  if (!name || name.length > 200) throw new InvalidArgumentError('a campaign name is 1 to 200 characters');
  return name;
}

function audienceText(a: Record<string, unknown>): string {
  if (typeof a.segment_id === 'string') return `segment ${a.segment_id}`;
  if (a.definition) return `segment definition ${JSON.stringify(a.definition)}`;
  if (Array.isArray(a.contact_ids)) return `${a.contact_ids.length} listed contact${a.contact_ids.length === 1 ? '' : 's'}`;
  return JSON.stringify(a);
}

function actionText(a: Record<string, unknown>): string {
  if (typeof a.journey_id === 'string') return `enrol into journey ${a.journey_id}`;
  const send = a.send as { channel?: string; content?: { template?: string } } | undefined;
  if (send) return `send on ${send.channel}${send.content?.template ? ` (template ${send.content.template})` : ''}`;
  return JSON.stringify(a);
}

/** The campaign's page: what it is, when it runs, and its recipients by state. */
function showLines(c: CampaignDetail): string[] {
  const throttle = typeof c.throttle.per_minute === 'number' ? `${c.throttle.per_minute} a minute` : 'none';
  const lines = [
    `Campaign ${JSON.stringify(c.name)} (${c.id})`,
    ...formatTable(
      ['', ''],
      [
        ['type', c.type],
        ['status', c.status],
        ['audience', audienceText(c.audience)],
        ['action', actionText(c.action)],
        ['schedule', JSON.stringify(c.schedule)],
        ['next run', at(c.next_run_at)],
        ['throttle', throttle],
        ['started', at(c.started_at)],
        ...(c.paused_at ? [['paused', at(c.paused_at)]] : []),
        ...(c.completed_at ? [['completed', at(c.completed_at)]] : []),
        ...(c.cancelled_at ? [['cancelled', at(c.cancelled_at)]] : []),
      ],
    )
      .slice(1)
      .map((l) => `  ${l}`),
    '',
  ];
  const states = RECIPIENT_STATES.filter((s) => (c.totals[s] ?? 0) > 0);
  if (!c.totals.recipients) return [...lines, 'No recipients yet.'];
  return [...lines, ...formatTable(['STATE', 'RECIPIENTS'], [...states.map((s) => [s, String(c.totals[s])]), ['all', String(c.totals.recipients)]])];
}

/** Writes a chunk, waiting when the stream asks to, so a long export does not pile up in memory. */
async function writeChunk(out: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** Counts CSV records (line ends outside quotes) as they stream past, the header included. */
function recordCounter() {
  let quoted = false;
  let records = 0;
  return {
    feed(chunk: string) {
      for (const ch of chunk) {
        if (ch === '"') quoted = !quoted;
        else if (ch === '\n' && !quoted) records++;
      }
    },
    get records() {
      return records;
    },
  };
}

const AFTER: Record<CampaignLifecycleAction, (c: CampaignItem, tenantId: string) => string> = {
  start: (c) => `Started campaign ${JSON.stringify(c.name)}: it is ${c.status}, next run ${at(c.next_run_at)}; a running worker sends it.`,
  pause: (c, t) => `Paused campaign ${JSON.stringify(c.name)}: no further recipients are written and its queued messages are held. Resume it with  rapport campaigns resume ${c.id} --tenant ${t}`,
  resume: (c) => `Resumed campaign ${JSON.stringify(c.name)}: it is ${c.status}; held messages fall due again, spaced by its throttle from now (or at their recipients' local times).`,
  stop: (c) => `Stopped campaign ${JSON.stringify(c.name)}: it is ${c.status}; its messages still queued were cancelled.`,
};

export function registerCampaigns(program: Command, ctx: CliContext): void {
  const campaigns = program.command('campaigns').description('create, start, pause, resume, stop and follow campaigns (docs/campaigns.md)');

  campaigns
    .command('list')
    .description("list a tenant's campaigns")
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .addOption(new Option('--status <status>', 'only campaigns in this status').choices(CAMPAIGN_STATUSES))
    .option('--json', 'print a JSON array')
    .action(async (opts: { tenant: string; status?: CampaignStatus; json?: boolean }) => {
      const list = await forTenant(ctx, opts.tenant, (b) => b.listCampaigns(opts.tenant, opts.status));
      if (opts.json) return writeJson(ctx, list);
      if (!list.length) {
        return writeLines(ctx, opts.status ? `Tenant ${opts.tenant} has no ${opts.status} campaigns.` : `Tenant ${opts.tenant} has no campaigns. Create one with  rapport campaigns create <file> --tenant ${opts.tenant}`);
      }
      writeLines(ctx, ...formatTable(['ID', 'NAME', 'TYPE', 'STATUS', 'NEXT RUN', 'CREATED'], list.map((c) => [c.id, c.name, c.type, c.status, at(c.next_run_at), at(c.created_at)])));
    });

  campaigns
    .command('create')
    .description('create a campaign as a draft from a file holding the body of POST /v1/campaigns, and optionally start it')
    .argument('<file>', 'campaign file: .json, .yaml or .yml')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--name <name>', 'campaign name (default: the name in the file)', parseName)
    .option('--start', 'start it once created')
    .option('--json', 'print the campaign as the API returns it')
    .action(async (file: string, opts: { tenant: string; name?: string; start?: boolean; json?: boolean }) => {
      const body = readCampaignFile(file);
      if (opts.name) body.name = opts.name;
      if (body.name === undefined) throw new CliError(`${file} has no name: add name to the file or pass --name`);
      const campaign = await withBackend(ctx.env, async (b) => {
        let created: CampaignItem;
        try {
          created = await b.createCampaign(opts.tenant, body);
        } catch (err) {
          if (err instanceof InputError) throw new CliError(`${file} was refused; nothing was created:\n${problemLines(err.problems)}`);
          if (err instanceof ConflictError && err.field === 'name') throw new CliError(`name: ${err.message}; rename it in the file or pass another --name`);
          throw explain(err, opts.tenant, b.where);
        }
        if (!opts.start) return created;
        try {
          return await b.changeCampaign(opts.tenant, created.id, 'start');
        } catch (err) {
          const why = explain(err, opts.tenant, b.where, created.id);
          if (!(why instanceof CliError)) throw why;
          throw new CliError(`created campaign ${JSON.stringify(created.name)} (${created.id}) as a draft, but it was not started: ${why.message}`);
        }
      });
      if (opts.json) return writeJson(ctx, campaign);
      writeLines(
        ctx,
        `Created campaign ${JSON.stringify(campaign.name)} (${campaign.id}).`,
        opts.start ? AFTER.start(campaign, opts.tenant) : `It is a draft. Start it with  rapport campaigns start ${campaign.id} --tenant ${opts.tenant}`,
      );
    });

  campaigns
    .command('show')
    .description('a campaign: status, schedule, next run and its recipients by state')
    .argument('<campaign>', 'campaign id or name')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--json', 'print the campaign with its totals as the API returns it')
    .action(async (ref: string, opts: { tenant: string; json?: boolean }) => {
      const c = await forTenant(ctx, opts.tenant, async (b) => b.getCampaign(opts.tenant, await resolve(b, opts.tenant, ref)), ref);
      if (opts.json) return writeJson(ctx, c);
      writeLines(ctx, ...showLines(c));
    });

  const lifecycle: [CampaignLifecycleAction, string][] = [
    ['start', 'start a draft: it becomes scheduled and fires at its schedule, or at once'],
    ['pause', 'pause a scheduled or running campaign: no further recipients, queued messages held'],
    ['resume', 'resume a paused campaign: held messages fall due again, spaced by its throttle'],
    ['stop', 'stop a campaign for good: it is cancelled with its queued messages'],
  ];
  for (const [action, description] of lifecycle) {
    campaigns
      .command(action)
      .description(description)
      .argument('<campaign>', 'campaign id or name')
      .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
      .option('--json', 'print the campaign as the API returns it')
      .action(async (ref: string, opts: { tenant: string; json?: boolean }) => {
        const c = await forTenant(ctx, opts.tenant, async (b) => b.changeCampaign(opts.tenant, await resolve(b, opts.tenant, ref), action), ref);
        if (opts.json) return writeJson(ctx, c);
        writeLines(ctx, AFTER[action](c, opts.tenant));
      });
  }

  campaigns
    .command('recipients')
    .description('who a campaign reached and where each stands; --csv writes all of them in the API\'s CSV columns')
    .argument('<campaign>', 'campaign id or name')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .addOption(new Option('--state <state>', 'only recipients in this state').choices(RECIPIENT_STATES))
    .option('--csv [file]', 'every recipient as CSV, to the file or to standard output')
    .option('--limit <n>', 'without --csv: how many to list (default 50, at most 1000)', parseLimit)
    .option('--json', 'without --csv: print {"data", "next_cursor"} as the API pages them')
    .action(async (ref: string, opts: { tenant: string; state?: RecipientState; csv?: string | true; limit?: number; json?: boolean }) => {
      if (opts.csv !== undefined && (opts.json || opts.limit)) throw new CliError('--csv writes every recipient; leave out --json and --limit');
      if (opts.csv !== undefined) {
        const file = opts.csv === true ? null : opts.csv;
        const count = recordCounter();
        await forTenant(
          ctx,
          opts.tenant,
          async (b) => {
            const id = await resolve(b, opts.tenant, ref);
            const chunks = b.campaignRecipientsCsv(opts.tenant, id, opts.state)[Symbol.asyncIterator]();
            // The first chunk (the header) comes after the campaign is found: nothing is written for an unknown one.
            let next = await chunks.next();
            const out = file ? createWriteStream(file) : ctx.stdout;
            if (file) {
              try {
                await once(out, 'open');
              } catch (err) {
                throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
              }
            }
            try {
              for (; !next.done; next = await chunks.next()) {
                count.feed(next.value);
                await writeChunk(out, next.value);
              }
            } finally {
              if (file) await new Promise<void>((r) => (out as NodeJS.WritableStream).end(r));
            }
          },
          ref,
        );
        if (file) writeLines(ctx, `Wrote ${Math.max(count.records - 1, 0)} recipient${count.records === 2 ? '' : 's'} to ${file}.`);
        return;
      }
      const limit = opts.limit ?? 50;
      const page = await forTenant(ctx, opts.tenant, async (b) => b.campaignRecipients(opts.tenant, await resolve(b, opts.tenant, ref), { state: opts.state, limit }), ref);
      if (opts.json) return writeJson(ctx, page);
      if (!page.data.length) return writeLines(ctx, opts.state ? `No recipients are ${opts.state}.` : 'No recipients yet.');
      writeLines(
        ctx,
        ...formatTable(
          ['CONTACT', 'NAME', 'STATE', 'DETAIL', 'SENT', 'REASON'],
          page.data.map((r) => [r.contact_id, r.name ?? '-', r.state, r.detail ?? '-', at(r.sent_at), r.reason ?? '']),
        ),
        ...(page.next_cursor ? [`(the first ${page.data.length}; --limit lists up to 1000, --csv writes all of them)`] : []),
      );
    });
}
