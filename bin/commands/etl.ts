/**
 * `npm run pipeline -- etl run <file|dir>... --out <dir> [--memory] [--schema NAME] [--threshold N]`
 *
 * Runs the health ETL's domain code (the same `ingestExport` the Lambda handler calls) on local
 * export files, without AWS:
 * - record state: by default a fresh in-memory store of the run's own, so the outcome depends on
 *   the files given and never on what the stage (or an earlier run) recorded. With --schema NAME,
 *   PostgreSQL at DATABASE_URL in that schema (migrations applied first), kept across runs; the
 *   first line of the output says which, and how many exports the store already holds.
 * - writes what the handler would write to S3, under --out with the same key layout:
 *   training/<domain>/YYYY/MM/DD/<file>.<source id>.jsonl, quarantine/<key> + <key>.metadata.json,
 *   and summary.json (one entry per file, totals).
 * Files are processed sleep exports first (their sessions serve the heart-rate exports), then in
 * fetch-time order (the number in `<RecordType>_<millis>.avro`), so which of several overlapping
 * exports counts as the duplicate is deterministic. A bad file never stops the others; the exit
 * code is 0 unless the run itself could not happen.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type pg from 'pg';
import { ingestExport, type OutputSink } from '../../lambdas/health/ingest';
import { newCorrelationId, type ProcessExportResult } from '../../lambdas/health/pipeline';
import { MemoryRecordStore, PostgresRecordStore, type RecordStore } from '../../lambdas/health/record-store';
import { PostgresSleepSpans, type SleepSpanStore } from '../../lambdas/health/sleep-spans';
import { parseExportName, rawKeyFor, type SourceIdentity } from '../../lambdas/health/source';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { EXIT, oneOf, parseCommandArgs, parseSchema, UsageError } from '../../lib/cli/args';
import { emit, table } from '../../lib/cli/output';
import { startProgress } from '../../lib/cli/progress';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';

export const summary =
  'etl run <file|dir>... --out DIR [--memory|--schema NAME] [--threshold 0.7] [--json]: health ETL on local exports (no AWS; a fresh record store unless --schema)';

export interface EtlFileSummary {
  readonly file: string;
  readonly recordType: string | null;
  readonly status: ProcessExportResult['status'];
  readonly recordsRead: number;
  readonly qualityScore: number | null;
  readonly reasons: string[];
  readonly warnings: string[];
  readonly insights: Record<string, unknown> | null;
  readonly trainingKey?: string;
  /** Records of the file: new, updated, unchanged, conflicts (same id and version, other content). */
  readonly records?: {
    inserted: number;
    updated: number;
    unchanged: number;
    conflicts: number;
    unkeyed: number;
  };
  /** The example this file's example nearly duplicates: written, but left out of the training set. */
  readonly nearDuplicateOf?: string;
  readonly quarantineKey?: string;
}

export interface EtlSummary {
  readonly files: EtlFileSummary[];
  readonly totals: {
    files: number;
    processed: number;
    duplicate: number;
    quarantined: number;
    failed: number;
    recordsRead: number;
    trainingExamples: number;
    /** Current examples left out of the manifest's training set as near-duplicates (training.ts). */
    suppressedNearDuplicates: number;
    /** Same id and version with different content, decided by VERSION_RULE (record-store.ts). */
    recordConflicts: number;
  };
  readonly store: string;
  readonly startedAt: string;
  readonly durationMs: number;
}

export interface EtlOptions {
  readonly inputs: string[];
  readonly out: string;
  readonly store: RecordStore;
  /** Where sleep sessions are kept (PostgreSQL with --schema); default: in memory with the store. */
  readonly sleepSpans?: SleepSpanStore;
  readonly storeLabel: string;
  readonly bucket?: string;
  readonly threshold?: number;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
}

/** Every .avro file under the inputs (directories recursively): sleep exports first, then in fetch-time order. */
export async function collectFiles(inputs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const s = await stat(path);
    if (s.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await walk(join(path, entry));
    } else if (path.endsWith('.avro')) found.push(path);
  };
  for (const input of inputs) await walk(input);
  // Each name read once. Sleep exports first: their sessions tell the run's heart-rate exports when
  // the person slept.
  const keyed = [...new Set(found)].map((f) => ({
    f,
    sleep: /SleepSessionRecord/.test(basename(f)) ? 0 : 1,
    at: parseExportName(basename(f))?.fetchTimeMillis ?? Number.POSITIVE_INFINITY,
  }));
  keyed.sort((a, b) => a.sleep - b.sleep || a.at - b.at || (a.f < b.f ? -1 : a.f > b.f ? 1 : 0));
  return keyed.map((k) => k.f);
}

async function md5(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function writeOut(out: string, key: string, body: string | Buffer): Promise<void> {
  const target = join(out, key);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, body);
}

/** The ETL's OutputSink on a directory, with the bucket's key layout; pathOf gives a source's file. */
export function fileOutputSink(out: string, pathOf: (source: SourceIdentity) => string): OutputSink {
  return {
    async writeTraining(_source, key, body) {
      await writeOut(out, key, body);
    },
    async writeManifest(_source, key, body) {
      await writeOut(out, key, body);
    },
    async quarantine(source, plan) {
      const target = join(out, plan.key);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(pathOf(source), target);
      await writeOut(out, plan.sidecarKey, plan.sidecarBody);
    },
  };
}

/** The run over already-open state: what `run` does after choosing the store. Used by the tests. */
export async function runEtl(options: EtlOptions): Promise<EtlSummary> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const files = await collectFiles(options.inputs);
  const entries: EtlFileSummary[] = [];
  let suppressedNearDuplicates = 0;
  for (const path of files) {
    const name = basename(path);
    const source = { bucket: options.bucket ?? 'local', key: rawKeyFor(name), etag: await md5(path) };
    const stream = createReadStream(path);
    // The outputs and the completion go through the domain's ingestExport, as in the handler.
    const result = await ingestExport(
      {
        stream,
        source,
        store: options.store,
        sleepSpans: options.sleepSpans,
        now: options.now ? options.now() : new Date(),
        correlationId: newCorrelationId(),
        config: options.threshold === undefined ? {} : { threshold: options.threshold },
      },
      fileOutputSink(options.out, () => path),
    ).finally(() => stream.destroy());
    const entry: EtlFileSummary = {
      file: relative(process.cwd(), resolve(path)) || path,
      recordType: result.recordType,
      status: result.status,
      recordsRead: result.recordsRead,
      qualityScore: result.qualityScore,
      reasons: result.reasons,
      warnings: result.warnings,
      insights: result.insights,
      ...(result.trainingKey ? { trainingKey: result.trainingKey } : {}),
      ...(result.records ? { records: result.records } : {}),
      ...(result.trainingSet?.nearDuplicateOf ? { nearDuplicateOf: result.trainingSet.nearDuplicateOf } : {}),
      ...(result.quarantine ? { quarantineKey: result.quarantine.key } : {}),
    };
    entries.push(entry);
    // The manifest after the last processed export speaks for the whole store.
    if (result.trainingSet) suppressedNearDuplicates = result.trainingSet.suppressedNearDuplicates;
    log(
      `${result.status.padEnd(11)} ${String(result.recordsRead).padStart(7)}  ${(result.qualityScore ?? '-').toString().padEnd(5)}  ${name}${result.status === 'processed' ? '' : `  (${result.reasons[0] ?? ''})`}`,
    );
  }
  const count = (s: ProcessExportResult['status']) => entries.filter((e) => e.status === s).length;
  const summaryDoc: EtlSummary = {
    files: entries,
    totals: {
      files: entries.length,
      processed: count('processed'),
      duplicate: count('duplicate'),
      quarantined: count('quarantined'),
      failed: count('failed'),
      recordsRead: entries.reduce((a, e) => a + e.recordsRead, 0),
      trainingExamples: entries.filter((e) => e.trainingKey).length,
      suppressedNearDuplicates,
      recordConflicts: entries.reduce((a, e) => a + (e.records?.conflicts ?? 0), 0),
    },
    store: options.storeLabel,
    startedAt,
    durationMs: Date.now() - started,
  };
  await mkdir(options.out, { recursive: true });
  await writeFile(join(options.out, 'summary.json'), `${JSON.stringify(summaryDoc, null, 2)}\n`);
  return summaryDoc;
}

const USAGE = `usage: npm run pipeline -- ${summary}

  --out DIR        where training/, quarantine/ and summary.json are written (required)
  --memory         record state in memory, fresh for this run (the default): the outcome depends on
                   the files given alone, never on what the stage or an earlier run recorded
  --schema NAME    record state in PostgreSQL at DATABASE_URL, schema NAME, kept across runs: a file
                   an earlier run there recorded comes out duplicate (leave it out for a fresh run)
  --threshold N    minimum quality score, 0-1 (default 0.7)
  --bucket NAME    bucket name recorded in outputs (default local)
  --json           the summary (as in summary.json) on stdout instead of the table`;

/** The store line printed at the top of every run: where the record state lives and what follows. */
export function storeLine(label: string, recorded: number | null): string {
  if (recorded === null) {
    return `record store: ${label}, fresh for this run (a file is duplicate only of another file of this run; --schema NAME keeps state in PostgreSQL across runs)`;
  }
  return `record store: ${label}, kept across runs: ${recorded} export(s) already recorded there count as duplicate${recorded > 0 ? ' (leave out --schema, or use a new schema, for a fresh run)' : ''}`;
}

function printSummary(result: EtlSummary, out: string): void {
  console.log(
    table(
      ['status', 'records', 'score', 'file', 'reason'],
      result.files.map((f) => [
        f.status,
        f.recordsRead,
        f.qualityScore ?? '-',
        basename(f.file),
        f.status === 'processed' ? '' : f.reasons.join('; '),
      ]),
      { right: [2] },
    ),
  );
  const t = result.totals;
  console.log(
    `\n${t.files} files: ${t.processed} processed, ${t.duplicate} duplicate, ${t.quarantined} quarantined, ${t.failed} failed; ${t.recordsRead} records read; ${t.trainingExamples} training examples (${t.suppressedNearDuplicates} suppressed as near-duplicates); ${t.recordConflicts} record conflicts; store ${result.store}; ${result.durationMs} ms`,
  );
  console.log(`summary: ${join(out, 'summary.json')}`);
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      memory: { type: 'boolean', default: false },
      schema: { type: 'string' },
      threshold: { type: 'string' },
      bucket: { type: 'string' },
    },
    usage: USAGE,
  });
  oneOf('etl action', positionals[0], ['run'] as const);
  if (positionals.length < 2)
    throw new UsageError('run needs at least one file or directory of .avro exports', USAGE);
  if (!values.out)
    throw new UsageError('--out DIR is required (where training/, quarantine/ and summary.json go)', USAGE);
  if (values.memory && values.schema !== undefined) {
    throw new UsageError('--memory and --schema exclude each other: one record store per run', USAGE);
  }
  const schema = values.schema === undefined ? undefined : parseSchema('--schema', values.schema);
  const inputs = positionals.slice(1);
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
  if (threshold !== undefined && !(values.threshold?.trim() !== '' && threshold >= 0 && threshold <= 1)) {
    throw new UsageError(
      `--threshold ${values.threshold} is not valid: expected a quality score from 0 to 1, e.g. 0.7`,
      USAGE,
    );
  }
  const missing = inputs.filter((i) => !existsSync(i));
  if (missing.length > 0) throw new UsageError(`no such file or directory: ${missing.join(', ')}`, USAGE);
  const files = await collectFiles(inputs);
  if (files.length === 0) {
    console.error(
      `error: no .avro files under ${inputs.join(', ')} (exports are named <RecordType>_<millis>.avro)`,
    );
    return EXIT.failure;
  }

  let store: RecordStore;
  let sleepSpans: SleepSpanStore | undefined;
  let storeLabel: string;
  let pool: pg.Pool | undefined;
  let recorded: number | null = null;
  if (schema === undefined) {
    // An offline run never depends on the stage's record store: its own, fresh, every time.
    store = new MemoryRecordStore();
    storeLabel = 'memory';
  } else {
    const url = process.env.DATABASE_URL;
    if (!url) {
      console.error('error: DATABASE_URL is not set (leave out --schema to run on a fresh in-memory store)');
      return EXIT.failure;
    }
    try {
      await ensureDatabase(url);
      pool = createPool({ connectionString: url, schema });
      await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::integer AS n FROM health_ingests');
      recorded = rows[0]?.n ?? 0;
    } catch (error) {
      await pool?.end().catch(() => undefined);
      console.error(
        `error: cannot use PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//***@')}: ${(error as Error).message} (leave out --schema to run without it)`,
      );
      return EXIT.failure;
    }
    store = new PostgresRecordStore(pool);
    sleepSpans = new PostgresSleepSpans(pool);
    storeLabel = `postgresql (schema ${schema})`;
  }
  // Said first, on stderr with --json: whether earlier runs can make these files duplicates.
  (values.json ? console.error : console.log)(storeLine(storeLabel, recorded));
  const progress = startProgress('etl run', { total: files.length });
  let done = 0;
  try {
    const result = await runEtl({
      inputs,
      out: values.out,
      store,
      sleepSpans,
      storeLabel,
      bucket: values.bucket,
      threshold,
      log: () => progress.step(++done),
    }).catch((error: unknown) => {
      progress.fail();
      throw error;
    });
    progress.succeed(`${files.length} files`);
    emit(values.json, result, (r) => printSummary(r, values.out as string));
    return EXIT.ok;
  } finally {
    await store.close();
    await pool?.end();
  }
}
