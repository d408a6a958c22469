import { InvalidArgumentError } from 'commander';

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
