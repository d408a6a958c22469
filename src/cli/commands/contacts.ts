import { Presets, SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { MAX_BATCH } from '../../api/schemas/contact.js';
import { withBackend } from '../backend.js';
import { importContacts, type ImportSummary } from '../contacts-import.js';
import { parseTenantId, writeJson, writeLines, type CliContext } from '../context.js';
import { describeMapping, type Delimiter } from '../csv-mapping.js';

interface ImportOptions {
  tenant: string;
  map: string[];
  extraAttributes: boolean;
  batchSize: number;
  dryRun?: boolean;
  delimiter?: Delimiter;
  rejects?: string;
  json?: boolean;
}

function parseBatchSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_BATCH) throw new InvalidArgumentError(`a batch is 1 to ${MAX_BATCH} rows`);
  return n;
}

function parseDelimiter(value: string): Delimiter {
  const d = value === 'tab' || value === '\\t' ? '\t' : value;
  if (d !== ',' && d !== ';' && d !== '\t') throw new InvalidArgumentError('use , or ; or tab');
  return d;
}

const count = (n: number) => n.toLocaleString('en-US');

function humanSummary(s: ImportSummary, opts: ImportOptions, seconds: number): string[] {
  // A rate over a handful of rows measures start-up, not import speed.
  const rate = s.rowsRead >= 1000 && seconds > 0 ? ` (${count(Math.round(s.rowsRead / seconds))} rows/s)` : '';
  const lines = opts.dryRun
    ? [
        `Dry run: read ${count(s.rowsRead)} rows in ${seconds.toFixed(1)} s; ${count(s.valid)} valid, ${count(s.rejected)} rejected. Nothing was written.`,
        'A phone or email that belongs to another stored contact is only found when writing.',
      ]
    : [`Read ${count(s.rowsRead)} rows in ${seconds.toFixed(1)} s${rate}: ${count(s.created)} created, ${count(s.updated)} updated, ${count(s.rejected)} rejected.`];
  if (s.rejected) {
    lines.push('', s.rejected > s.firstRejected.length ? `Rejected rows (the first ${s.firstRejected.length} of ${count(s.rejected)}):` : 'Rejected rows:');
    for (const r of s.firstRejected) lines.push(`  line ${r.line}: ${r.reason}`);
    lines.push(
      '',
      opts.rejects
        ? `All rejected rows are in ${opts.rejects}, each with an error column. Fix them there, delete that column, and import the file.`
        : 'Run again with --rejects rejected.csv to get every rejected row in a file to fix; rows already imported are updated, not duplicated.',
    );
  }
  return lines;
}

export function registerContacts(program: Command, ctx: CliContext): void {
  const contacts = program.command('contacts').description("import a tenant's contacts");

  contacts
    .command('import')
    .description('import contacts from a CSV file whose first line names the columns')
    .argument('<file>', 'CSV file (comma, semicolon or tab separated)')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--map <field=column>', 'read a field from a column, e.g. phone="Mobile Number" or attributes.plan=Plan (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--no-extra-attributes', 'ignore columns that are not mapped to a field, instead of keeping them as attributes')
    .option('--batch-size <rows>', 'rows written per transaction', parseBatchSize, 5000)
    .option('--delimiter <char>', 'column separator: , or ; or tab (detected from the header when left out)', parseDelimiter)
    .option('--dry-run', 'read and validate every row, write nothing')
    .option('--rejects <file>', 'write every rejected row to this CSV, with an error column')
    .option('--json', 'print the summary as one JSON object')
    .action(async (file: string, opts: ImportOptions) => {
      const bar = ctx.stderr.isTTY && !opts.json ? new SingleBar({ stream: ctx.stderr, format: '  {bar} {percentage}% | {rows} rows | {eta_formatted} left', clearOnComplete: true }, Presets.shades_classic) : undefined;
      const started = performance.now();
      try {
        const summary = await withBackend(ctx.env, (backend) =>
          importContacts(
            backend,
            { file, tenantId: opts.tenant, maps: opts.map, extraAttributes: opts.extraAttributes, batchSize: opts.batchSize, dryRun: !!opts.dryRun, delimiter: opts.delimiter, rejectsFile: opts.rejects },
            {
              onStart: (mapping, totalBytes) => {
                if (!opts.json) {
                  writeLines(
                    ctx,
                    `Importing ${file} into tenant ${opts.tenant} through ${backend.where}${opts.dryRun ? ' (dry run: nothing is written)' : ''}.`,
                    'Columns:',
                    ...describeMapping(mapping).map((l) => `  ${l}`),
                  );
                }
                bar?.start(totalBytes, 0, { rows: 0 });
              },
              onProgress: (p) => bar?.update(p.bytesRead, { rows: count(p.rowsRead) }),
            },
          ),
        );
        bar?.stop();
        const seconds = (performance.now() - started) / 1000;
        if (opts.json) {
          return writeJson(ctx, {
            rows_read: summary.rowsRead,
            created: summary.created,
            updated: summary.updated,
            rejected: summary.rejected,
            valid: summary.valid,
            dry_run: !!opts.dryRun,
            seconds: Math.round(seconds * 1000) / 1000,
            rejects_file: opts.rejects ?? null,
            rejected_rows: summary.firstRejected.map(({ line, reason }) => ({ line, reason })),
          });
        }
        writeLines(ctx, ...humanSummary(summary, opts, seconds));
      } finally {
        bar?.stop();
      }
    });
}
