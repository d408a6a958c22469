import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parse as parseYaml } from 'yaml';

/**
 * What a command may touch of the outside world. Commands read the environment and write output
 * only through this, so tests run the real CLI in-process with their own env and writers.
 */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** Results: what a script reads (one JSON document with --json). */
  stdout: NodeJS.WritableStream;
  /** Progress, warnings and errors. A progress bar is drawn only when this has `isTTY` set. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Set by the process entry point: bin/rapport.js only treats a rejected promise as failure. */
  setExitCode?(code: number): void;
}

export function processContext(): CliContext {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}

/** A failure the user can act on; its message says what went wrong and what to do next. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export function writeJson(ctx: CliContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value) + '\n');
}

export function writeLines(ctx: CliContext, ...lines: string[]): void {
  ctx.stdout.write(lines.join('\n') + '\n');
}

/** Left-aligned columns with a header row, for listings a person reads. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A commander argument parser for ids, so a typo is refused before any database is opened. */
export function parseId(what: string, hint: string) {
  return (value: string): string => {
    if (!UUID.test(value.trim())) throw new InvalidArgumentError(`a ${what} is a UUID such as 0b6f7c3e-…; ${hint}`);
    return value.trim().toLowerCase();
  };
}

export const parseTenantId = parseId('tenant id', '`rapport tenant list` shows them');

/**
 * A JSON or YAML file (by extension) holding one object, for the commands that push a file;
 * `what` names it in the errors ("a campaign", "a journey").
 */
export function readDocumentFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${(err as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    if (ext === '.yaml' || ext === '.yml') return parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new CliError(`${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  throw new CliError(`${file}: ${what} file ends in .yaml, .yml or .json`);
}
