import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { DateTime } from 'luxon';
import { parse as parseYaml } from 'yaml';
import { isValidTimeZone } from '../../core/contact.js';
import { durationMs } from '../../core/time.js';
import { DEFAULT_RESOLUTION_MS, MAX_SIMULATED_CONTACTS, simulate, simulationProblems, type SimulatedEvent, type SimulationReport, type TimelineEntry } from '../../engine/simulate.js';
import { CliError, formatTable, writeJson, writeLines, type CliContext } from '../context.js';

interface SimulateOptions {
  contacts: number;
  days: number;
  seed: number;
  start?: Date;
  delivered?: number;
  opened?: number;
  clicked?: number;
  replied?: number;
  reply?: string[];
  event?: SimulatedEvent[];
  timeZone?: string;
  resolution?: number;
  json?: boolean;
}

const count = (n: number) => n.toLocaleString('en-US');

function wholeNumber(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} is a whole number from ${count(min)} to ${count(max)}`);
    return n;
  };
}

function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError('a probability is a number from 0 to 1, e.g. 0.25');
  return n;
}

function days(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 365)) throw new InvalidArgumentError('days is a number of days from 1 to 365 (fractions allowed, e.g. 0.5)');
  return n;
}

function instant(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('give the start as an ISO 8601 date-time, e.g. 2026-03-02T09:00:00Z');
  return d;
}

function duration(value: string): number {
  try {
    return durationMs(value);
  } catch {
    throw new InvalidArgumentError('a duration is digits and a unit (s, m, h, d, w), e.g. 1m or 15m');
  }
}

function timeZone(value: string): string {
  if (!isValidTimeZone(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not an IANA time zone; use one such as Europe/Paris`);
  return value;
}

const collect = (value: string, list: string[] = []) => [...list, value];

/** `purchase:0.1:14d`: the event's name (which may itself hold colons), its probability and the window it falls in. */
function simulatedEvent(value: string, list: SimulatedEvent[] = []): SimulatedEvent[] {
  const parts = value.split(':');
  const within = parts.pop();
  const p = parts.pop();
  const name = parts.join(':');
  const n = Number(p);
  if (!name || p === undefined || !(n >= 0 && n <= 1) || !within) {
    throw new InvalidArgumentError('an event is name:probability:within, e.g. purchase:0.1:14d (10% of contacts purchase within 14 days)');
  }
  try {
    durationMs(within);
  } catch {
    throw new InvalidArgumentError(`${JSON.stringify(within)} is not a duration such as 14d or 36h`);
  }
  return [...list, { name, probability: n, within }];
}

/** A journey file holds a bare definition, or {name, definition} as the API takes it. */
export function parseJourneyFile(file: string, text: string): unknown {
  let doc: unknown;
  try {
    doc = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new CliError(`${file} is not valid ${extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && 'definition' in doc && !('nodes' in doc)) {
    const { name, definition } = doc as { name?: unknown; definition: unknown };
    return definition !== null && typeof definition === 'object' && !Array.isArray(definition) && name !== undefined ? { name, ...definition } : definition;
  }
  return doc;
}

export function registerSimulate(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description('run a journey file against synthetic contacts in virtual time, on a throwaway in-memory database; nothing is sent and no server or database is needed')
    .argument('<journey-file>', 'a journey definition in YAML or JSON')
    .option('--contacts <n>', 'synthetic contacts, spread over 12 time zones', wholeNumber('--contacts', 1, MAX_SIMULATED_CONTACTS), 1000)
    .option('--days <d>', 'virtual days to run', days, 30)
    .option('--seed <s>', 'the same seed, start and journey give the same result', wholeNumber('--seed', -(2 ** 31), 2 ** 31 - 1), 1)
    .option('--start <iso>', 'when contacts enrol (default: the start of the current hour)', instant)
    .option('--delivered <p>', 'share of sent messages delivered (default 0.95)', probability)
    .option('--opened <p>', 'share of delivered e-mails opened and WhatsApp messages read (default 0.4)', probability)
    .option('--clicked <p>', 'share of opened messages with a link that are clicked (default 0.1)', probability)
    .option('--replied <p>', 'share of delivered SMS, WhatsApp and e-mails answered (default 0.2)', probability)
    .option('--reply <text>', 'a reply text contacts send (repeat for several; default a few generic ones)', collect)
    .option('--event <name:p:within>', 'an event contacts do, e.g. purchase:0.1:14d (repeat for several)', simulatedEvent)
    .option('--time-zone <zone>', 'the tenant\'s time zone (default Europe/London)', timeZone)
    .option('--resolution <duration>', `shortest step of virtual time (default ${DEFAULT_RESOLUTION_MS / 60_000}m); smaller is more exact and slower`, duration)
    .option('--json', 'print the report as one JSON document')
    .action(async (file: string, opts: SimulateOptions) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      }
      const { definition, problems } = simulationProblems(parseJourneyFile(file, text));
      if (problems.length) {
        throw new CliError(
          [
            `${file} cannot be simulated (${problems.length} problem${problems.length === 1 ? '' : 's'}):`,
            ...problems.map((p) => `  ${p.field || '(definition)'}${p.node ? ` [node ${p.node}]` : ''}: ${p.message}`),
          ].join('\n'),
        );
      }
      if (opts.resolution !== undefined && (opts.resolution < 1000 || opts.resolution > 86_400_000)) throw new CliError('--resolution must be from 1s to 1d');

      const bar =
        ctx.stderr.isTTY && !opts.json
          ? new SingleBar({ stream: ctx.stderr, format: '  {bar} day {day}/{total} | {when}', clearOnComplete: true, hideCursor: true }, Presets.shades_classic)
          : undefined;
      bar?.start(opts.days, 0, { day: '0', when: '' });
      let report: SimulationReport;
      try {
        const probabilities = { delivered: opts.delivered, opened: opts.opened, clicked: opts.clicked, replied: opts.replied };
        report = await simulate(definition, {
          contacts: opts.contacts,
          days: opts.days,
          seed: opts.seed,
          ...(opts.start ? { start: opts.start } : {}),
          probabilities,
          ...(opts.reply ? { replyTexts: opts.reply } : {}),
          ...(opts.event ? { events: opts.event } : {}),
          ...(opts.timeZone ? { tenant: { time_zone: opts.timeZone } } : {}),
          ...(opts.resolution !== undefined ? { resolutionMs: opts.resolution } : {}),
          onProgress: bar ? (p) => bar.update(p.done, { day: Math.floor(p.done).toString(), when: `${p.virtualNow.toISOString().slice(0, 16).replace('T', ' ')} UTC` }) : undefined,
        });
      } finally {
        bar?.stop();
      }
      if (opts.json) return writeJson(ctx, report);
      writeLines(ctx, ...humanReport(report, definition.name));
    });
}

const joinCounts = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${count(v)}`)
    .join(' · ') || 'none';

function percent(n: number, of: number): string {
  if (!of) return '';
  const p = (100 * n) / of;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)}%`;
}

export function humanReport(r: SimulationReport, name: string | undefined): string[] {
  const when = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
  const lines = [
    `Simulated ${name ? `"${name}"` : 'the journey'} for ${count(r.contacts)} contacts over ${r.days} day${r.days === 1 ? '' : 's'}: ${when(r.start)} to ${when(r.virtual_end)}, seed ${r.seed}, in ${(r.wall_ms / 1000).toFixed(1)} s.`,
    `Tenant zone ${r.tenant_time_zone}; delivered ${r.probabilities.delivered}, opened ${r.probabilities.opened}, clicked ${r.probabilities.clicked}, replied ${r.probabilities.replied}.`,
    '',
    ...formatTable(
      ['NODE', 'TYPE', 'ENTERED', '', 'OUTCOMES'],
      r.funnel.map((f) => [f.name ? `${f.node} (${f.name})` : f.node, f.type, count(f.entered), percent(f.entered, r.contacts), joinCounts(f.outcomes)]),
    ),
    '',
    `Enrollments: ${joinCounts(r.ended)}`,
    'Messages by final status:',
    ...(Object.keys(r.messages).length ? Object.entries(r.messages).map(([ch, s]) => `  ${ch.padEnd(9)} ${joinCounts(s)}`) : ['  none']),
    `Blocked sends: ${joinCounts(r.blocked)}`,
    `Held sends: ${joinCounts(r.deferred)}`,
    '',
  ];
  const c = r.sample.contact;
  const city = typeof c.attributes.city === 'string' ? `${c.attributes.city}, ` : '';
  lines.push(`Sample contact: ${c.name} (${c.phone}, ${c.email}), ${city}${c.zone}`);
  lines.push(
    ...formatTable(
      ['UTC', `LOCAL (${c.zone})`, 'NODE', 'WHAT'],
      r.sample.timeline.map((t) => [t.at.slice(0, 19).replace('T', ' '), local(t.at, c.zone), t.node ?? '', describe(t, c.zone)]),
    ).map((l) => `  ${l}`),
  );
  return lines;
}

function local(iso: string, zone: string): string {
  return DateTime.fromISO(iso, { zone }).toFormat('ccc dd LLL HH:mm');
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$/;

function describe(t: TimelineEntry, zone: string): string {
  const parts = Object.entries(t.detail ?? {}).map(([k, v]) => {
    if (typeof v === 'string' && ISO_INSTANT.test(v)) return `${k} ${local(v, zone)}`;
    if (typeof v === 'string') return k === 'text' ? `"${v}"` : k === 'channel' || k === 'reason' || k === 'event' ? v : `${k} ${v}`;
    return `${k} ${JSON.stringify(v)}`;
  });
  return parts.length ? `${t.outcome}: ${parts.join(', ')}` : t.outcome;
}
