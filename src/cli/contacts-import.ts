import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse, type Info } from 'csv-parse';
import { Compile } from 'typebox/compile';
import { jsonPointerToField } from '../api/errors.js';
import { ContactInput as ContactInputSchema } from '../api/schemas/contact.js';
import type { ContactFields, ContactInput, NormalizeOptions } from '../core/contact.js';
import { InputError, NotFoundError } from '../core/errors.js';
import { normalizeBatch } from '../store/contacts.js';
import type { Backend } from './backend.js';
import { CliError } from './context.js';
import { buildMapping, csvLine, detectDelimiter, parseMapOption, toContactInput, type ColumnMapping, type Delimiter } from './csv-mapping.js';

/**
 * Imports a contacts CSV as a stream: each row is mapped and validated here, and the valid rows go
 * to the backend a batch at a time (one transaction per batch). Memory stays at one batch, so a
 * file of millions of rows is fine. A bad row is rejected with its line and reason; the run goes
 * on. A file that cannot be parsed past some line stops the run after writing the rows before it.
 */

export interface ImportRequest {
  file: string;
  tenantId: string;
  /** --map options as written */
  maps: string[];
  extraAttributes: boolean;
  batchSize: number;
  dryRun: boolean;
  /** detected from the header line when absent */
  delimiter?: Delimiter;
  rejectsFile?: string;
}

export interface ImportProgress {
  bytesRead: number;
  totalBytes: number;
  rowsRead: number;
}

export interface ImportHooks {
  /** Once the header is read, before any row. */
  onStart?(mapping: ColumnMapping, totalBytes: number): void;
  onProgress?(progress: ImportProgress): void;
}

export interface RejectedRow {
  /** line of the file where the row starts (the header is line 1) */
  line: number;
  reason: string;
  cells: string[];
}

export interface ImportSummary {
  rowsRead: number;
  created: number;
  updated: number;
  /** rows that passed validation; in a dry run, nothing more is known of them */
  valid: number;
  rejected: number;
  /** the first REJECTS_KEPT rejected rows, in file order */
  firstRejected: RejectedRow[];
  mapping: ColumnMapping;
  delimiter: Delimiter;
}

const REJECTS_KEPT = 20;
/** Rows between progress reports: often enough for a smooth bar, rare enough to cost nothing. */
const PROGRESS_EVERY = 1000;

// The API's own schema, so a row accepted here is never refused by a server's bulk route.
const contactShape = Compile(ContactInputSchema);

/** Validates one mapped row as the API would; the reason names each bad field. */
function checkRow(input: ContactInput, opts: NormalizeOptions): { fields: ContactFields } | { reason: string } {
  if (!contactShape.Check(input)) {
    const all = contactShape.Errors(input);
    // Every field is "value or null", and a mapped row never holds null: the null branch's
    // complaint and the union's summary only repeat the real problem.
    const specific = all.filter((e) => e.keyword !== 'anyOf' && !(e.keyword === 'type' && (e.params as { type?: unknown }).type === 'null'));
    return { reason: (specific.length ? specific : all).map((e) => `${jsonPointerToField(e.instancePath) || 'row'}: ${e.message}`).join('; ') };
  }
  try {
    return { fields: normalizeBatch([input], opts, '', true)[0]! };
  } catch (err) {
    if (err instanceof InputError) return { reason: err.problems.map((p) => `${p.field}: ${p.message}`).join('; ') };
    throw err;
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new CliError(`${file} is not a file; give the path of a CSV file`);
    return s.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`${file} does not exist; check the path (relative paths start at ${process.cwd()})`);
    throw err;
  }
}

async function readHead(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function tenantOptions(backend: Backend, tenantId: string): Promise<NormalizeOptions> {
  try {
    return { defaultCountry: (await backend.tenantSettings(tenantId)).default_country };
  } catch (err) {
    if (err instanceof NotFoundError) throw new CliError(`tenant ${tenantId} does not exist in ${backend.where}; \`rapport tenant list\` shows the tenants`);
    throw err;
  }
}

/** The rejects file: the original columns plus `error`, in the input's delimiter. */
async function openRejects(path: string, delimiter: Delimiter) {
  let handle: FileHandle;
  try {
    handle = await open(path, 'w');
  } catch (err) {
    throw new CliError(`cannot write the rejects file ${path}: ${(err as Error).message}`);
  }
  let width = 0;
  return {
    async header(header: string[]) {
      width = header.length;
      await handle.write(csvLine([...header, 'error'], delimiter));
    },
    async rows(rows: RejectedRow[]) {
      if (!rows.length) return;
      // error stays under its header; the cells of a row longer than the header follow it.
      const line = ({ cells, reason }: RejectedRow) =>
        csvLine([...cells.slice(0, width), ...Array<string>(Math.max(0, width - cells.length)).fill(''), reason, ...cells.slice(width)], delimiter);
      await handle.write(rows.map(line).join(''));
    },
    close: () => handle.close(),
  };
}

const newlines = (record: string[]) => record.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0);

/**
 * Line numbers of byte offsets in a file read as a stream. csv-parse's own count is off after a
 * quoted cell holding a CRLF (it counts two lines), so lines are counted here from the bytes.
 * Chunks are dropped once scanned, so memory stays at what the parser has not consumed yet.
 */
class LineIndex {
  private chunks: Buffer[] = [];
  private chunkStart = 0;
  private scanned = 0;
  private newlines = 0;

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  /** The 1-based line holding the byte at offset. */
  lineAt(offset: number): number {
    while (this.scanned < offset && this.chunks.length) {
      const chunk = this.chunks[0]!;
      const end = Math.min(chunk.length, offset - this.chunkStart);
      for (let i = chunk.indexOf(10, this.scanned - this.chunkStart); i !== -1 && i < end; i = chunk.indexOf(10, i + 1)) this.newlines++;
      this.scanned = this.chunkStart + end;
      if (end === chunk.length) {
        this.chunks.shift();
        this.chunkStart += chunk.length;
      }
    }
    return this.newlines + 1;
  }
}

/** Runs the import. Throws CliError (or MappingError) for what stops it; rejected rows do not. */
export async function importContacts(backend: Backend, req: ImportRequest, hooks: ImportHooks = {}): Promise<ImportSummary> {
  const totalBytes = await fileSize(req.file);
  const overrides = req.maps.map(parseMapOption);
  if (req.rejectsFile && resolve(req.rejectsFile) === resolve(req.file)) throw new CliError('--rejects names the file being imported; choose another path');
  const opts = await tenantOptions(backend, req.tenantId);
  const delimiter = req.delimiter ?? detectDelimiter(await readHead(req.file));
  const rejects = req.rejectsFile ? await openRejects(req.rejectsFile, delimiter) : undefined;

  const source = createReadStream(req.file);
  const parser = parse({
    delimiter,
    bom: true,
    info: true,
    // Short rows are common in hand-made files (trailing empty cells left out); long ones are rejected below.
    relax_column_count: true,
    // A quote inside an unquoted cell (5" screen) is text, as spreadsheets write it.
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
  });
  const lines = new LineIndex();
  source.on('data', (chunk) => lines.add(chunk as Buffer));
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);

  let mapping: ColumnMapping | undefined;
  const summary = { rowsRead: 0, created: 0, updated: 0, valid: 0, rejected: 0, firstRejected: [] as RejectedRow[] };
  let batch = { valid: [] as { line: number; cells: string[]; fields: ContactFields }[], rejected: [] as RejectedRow[] };
  const progress = () => hooks.onProgress?.({ bytesRead: source.bytesRead, totalBytes, rowsRead: summary.rowsRead });

  const write = async ({ valid, rejected }: typeof batch) => {
    if (req.dryRun) {
      summary.valid += valid.length;
    } else if (valid.length) {
      const outcomes = await backend.upsertContacts(req.tenantId, valid.map((v) => v.fields));
      summary.valid += valid.length;
      for (const o of outcomes) {
        if (o.status === 'rejected') rejected.push({ line: valid[o.index]!.line, cells: valid[o.index]!.cells, reason: `${o.field}: ${o.message}` });
        else summary[o.status]++;
      }
    }
    rejected.sort((a, b) => a.line - b.line);
    summary.rejected += rejected.length;
    summary.firstRejected.push(...rejected.slice(0, REJECTS_KEPT - summary.firstRejected.length));
    await rejects?.rows(rejected);
    progress();
  };

  // One batch is written while the next is read and validated, so this process's CPU work overlaps
  // the server's or PostgreSQL's (through a server, 100,000 rows took 33 s one after the other).
  // Writes still happen one at a time, in file order.
  let writing: Promise<void> = Promise.resolve();
  const flush = async () => {
    const pending = batch;
    batch = { valid: [], rejected: [] };
    await writing;
    writing = write(pending);
    // Awaited at the next flush or at the end; the handler only keeps a failure from crashing the process before then.
    writing.catch(() => {});
  };
  const finish = async () => {
    await flush();
    await writing;
  };

  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      if (!mapping) {
        mapping = buildMapping(record, overrides, req.extraAttributes);
        await rejects?.header(record);
        hooks.onStart?.(mapping, totalBytes);
        continue;
      }
      summary.rowsRead++;
      // info.bytes is the offset just past the record and its line break.
      const line = lines.lineAt(info.bytes - 1) - newlines(record);
      if (record.length > mapping.header.length) {
        batch.rejected.push({ line, cells: record, reason: `row: has ${record.length} cells but the header has ${mapping.header.length} columns` });
      } else {
        const checked = checkRow(toContactInput(record, mapping), opts);
        if ('reason' in checked) batch.rejected.push({ line, cells: record, reason: checked.reason });
        else batch.valid.push({ line, cells: record, fields: checked.fields });
      }
      if (batch.valid.length >= req.batchSize) await flush();
      else if (summary.rowsRead % PROGRESS_EVERY === 0) progress();
    }
    if (!mapping) throw new CliError(`${req.file} is empty; its first line must be a header naming the columns (e.g. external_id,name,phone,email)`);
    await finish();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('CSV_')) {
      await finish();
      throw new CliError(
        `${req.file} cannot be read past line ${(err as { lines?: number }).lines ?? '?'}: ${(err as Error).message}. ` +
          `The ${summary.rowsRead} rows before it were processed (${summary.created} created, ${summary.updated} updated, ${summary.rejected} rejected). ` +
          'Fix that line and import the file again: rows already imported are matched and updated, not duplicated.',
      );
    }
    throw err;
  } finally {
    source.destroy();
    await writing.catch(() => {});
    await rejects?.close();
  }
  return { ...summary, mapping, delimiter };
}
