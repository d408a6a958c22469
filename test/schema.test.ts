import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.js';
import { loadMigrations } from '../src/store/migrate.js';
import { dumpSchema, manifestMigrations, recordedMigrations, renderManifest } from '../src/store/schema-dump.js';
import { freshDb } from './helpers/db.js';

/**
 * The committed manifest (src/store/schema.snapshot.txt) is the schema a fresh database gets from
 * the migrations, plus the sha256 of each migration file. The same manifest must pass on PGlite
 * and on PostgreSQL. RAPPORT_SCHEMA_UPDATE=1 (`npm run schema:update`) rewrites it instead of
 * comparing, but never over an edited migration.
 */
const MANIFEST = fileURLToPath(new URL('../src/store/schema.snapshot.txt', import.meta.url));
const UPDATE = process.env.RAPPORT_SCHEMA_UPDATE === '1';

/** Sentences naming each recorded migration whose file is gone or no longer hashes to what was recorded. */
function editedMigrations(manifest: string): string[] {
  const files = new Map(loadMigrations().map((m) => [m.name, m.checksum]));
  return manifestMigrations(manifest).flatMap(({ name, checksum }) => {
    const now = files.get(name);
    if (now === undefined) return [`migration ${name} is recorded in the manifest but its file is gone`];
    if (now !== checksum) return [`migration ${name} was edited after it was recorded (sha256 ${checksum.slice(0, 12)}… in the manifest, ${now.slice(0, 12)}… on disk)`];
    return [];
  });
}

const EDITED_ADVICE =
  'an applied migration must never be edited, since databases that already ran it would never see the change: ' +
  'restore it and put the change in a new migration. (If the migration has never left your branch, ' +
  'delete its line from src/store/schema.snapshot.txt and run `npm run schema:update`.)';

/**
 * A line diff in hunks with a little context: `-` is the manifest, `+` the database. The common
 * head and tail are cut first, so the quadratic part only sees the region that changed.
 */
function lineDiff(expected: string, actual: string, context = 2): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  // lcs[i][j]: length of the longest common subsequence of x[i..] and y[j..]
  const lcs = Array.from({ length: x.length + 1 }, () => new Int32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  // every line of the manifest and the database, each with its manifest line number
  const ops: { mark: ' ' | '-' | '+'; text: string; line: number }[] = a.slice(0, head).map((text, n) => ({ mark: ' ', text, line: n + 1 }));
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      ops.push({ mark: ' ', text: x[i]!, line: head + i + 1 });
      i++;
      j++;
    } else if (i < x.length && (j >= y.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      ops.push({ mark: '-', text: x[i]!, line: head + i + 1 });
      i++;
    } else {
      ops.push({ mark: '+', text: y[j++]!, line: head + i + 1 });
    }
  }
  a.slice(a.length - tail).forEach((text, n) => ops.push({ mark: ' ', text, line: a.length - tail + n + 1 }));

  const shown = ops.map(() => false);
  ops.forEach((op, k) => {
    if (op.mark === ' ') return;
    for (let c = Math.max(0, k - context); c <= Math.min(ops.length - 1, k + context); c++) shown[c] = true;
  });
  const out: string[] = [];
  ops.forEach((op, k) => {
    if (!shown[k]) return;
    if (k === 0 || !shown[k - 1]) out.push(`@@ manifest line ${op.line}`);
    out.push(`${op.mark} ${op.text}`);
  });
  return out.join('\n');
}

describe('schema manifest', () => {
  let db: Db;
  let committed: string | undefined;

  beforeAll(async () => {
    db = await freshDb();
    committed = existsSync(MANIFEST) ? readFileSync(MANIFEST, 'utf8') : undefined;
  });
  afterAll(() => db?.close());

  it('records every migration file unchanged', () => {
    if (committed === undefined) {
      if (!UPDATE) expect.fail(`no manifest at ${MANIFEST}: run \`npm run schema:update\``);
      return;
    }
    const edited = editedMigrations(committed);
    if (edited.length) expect.fail(`${edited.join('\n')}\n${EDITED_ADVICE}`);
    const recorded = new Set(manifestMigrations(committed).map((m) => m.name));
    const unrecorded = loadMigrations().filter((m) => !recorded.has(m.name));
    if (unrecorded.length && !UPDATE) {
      expect.fail(`migration ${unrecorded.map((m) => m.name).join(', ')} is not in the manifest: run \`npm run schema:update\` after adding a migration`);
    }
  });

  it('matches the schema of a freshly migrated database', async () => {
    const actual = renderManifest(await recordedMigrations(db), await dumpSchema(db));
    if (UPDATE) {
      const edited = committed === undefined ? [] : editedMigrations(committed);
      if (edited.length) expect.fail(`not updating the manifest: ${edited.join('; ')}\n${EDITED_ADVICE}`);
      if (actual !== committed) writeFileSync(MANIFEST, actual);
      return;
    }
    if (committed === undefined) return expect.fail(`no manifest at ${MANIFEST}: run \`npm run schema:update\``);
    if (actual !== committed) {
      const edited = editedMigrations(committed);
      const headline = edited.length
        ? `${edited.join('; ')}: ${EDITED_ADVICE}`
        : 'the schema changed without updating the manifest: run `npm run schema:update` after adding a migration';
      expect.fail(`${headline}\n(- manifest, + a fresh ${db.kind} database)\n${lineDiff(committed, actual)}`);
    }
  });
});
