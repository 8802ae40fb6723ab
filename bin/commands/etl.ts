/**
 * `npm run pipeline -- etl run <file|dir>... --out <dir> [--memory] [--schema NAME] [--threshold N]`
 *
 * Runs the health ETL's domain code (the same `ingestExport` the Lambda handler calls) on local
 * export files, without AWS:
 * - record state in PostgreSQL at DATABASE_URL (migrations applied first), in schema --schema
 *   (default PG_SCHEMA or public). The CLI always sets a default DATABASE_URL (the local server),
 *   so pass --memory to use the in-memory store instead (state then lasts for this run only).
 * - writes what the handler would write to S3, under --out with the same key layout:
 *   training/<domain>/YYYY/MM/DD/<file>.<source id>.jsonl, quarantine/<key> + <key>.metadata.json,
 *   and summary.json (one entry per file, totals).
 * Files are processed in fetch-time order (the number in `<RecordType>_<millis>.avro`), so which
 * of several overlapping exports counts as the duplicate is deterministic. A bad file never stops
 * the others; the exit code is 0 unless the run itself could not happen.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { ingestExport, type OutputSink } from '../../lambdas/health/ingest';
import { newCorrelationId, type ProcessExportResult } from '../../lambdas/health/pipeline';
import { MemoryRecordStore, PostgresRecordStore, type RecordStore } from '../../lambdas/health/record-store';
import { parseExportName, rawKeyFor, type SourceIdentity } from '../../lambdas/health/source';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';

export const summary =
  'etl run <file|dir>... --out DIR [--memory] [--schema NAME] [--threshold 0.7]: health ETL on local exports (no AWS)';

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
  };
  readonly store: string;
  readonly startedAt: string;
  readonly durationMs: number;
}

export interface EtlOptions {
  readonly inputs: string[];
  readonly out: string;
  readonly store: RecordStore;
  readonly storeLabel: string;
  readonly bucket?: string;
  readonly threshold?: number;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
}

/** Every .avro file under the inputs (directories recursively), in fetch-time order. */
export async function collectFiles(inputs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const s = await stat(path);
    if (s.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) await walk(join(path, entry));
    } else if (path.endsWith('.avro')) found.push(path);
  };
  for (const input of inputs) await walk(input);
  const order = (f: string) => parseExportName(basename(f))?.fetchTimeMillis ?? Number.POSITIVE_INFINITY;
  return [...new Set(found)].sort((a, b) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0));
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
      ...(result.quarantine ? { quarantineKey: result.quarantine.key } : {}),
    };
    entries.push(entry);
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
  --memory         in-memory record state for this run only (default: PostgreSQL at DATABASE_URL,
                   which the CLI always sets to the local server unless you set it)
  --schema NAME    PostgreSQL schema for the record state (default PG_SCHEMA or public)
  --threshold N    minimum quality score (default 0.7)
  --bucket NAME    bucket name recorded in outputs (default local)`;

export async function run(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseEtlArgs>;
  try {
    parsed = parseEtlArgs(args);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  if (positionals[0] !== 'run' || positionals.length < 2 || !values.out) {
    console.error(USAGE);
    return 2;
  }
  const inputs = positionals.slice(1);
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) {
    console.error(`--threshold must be between 0 and 1, got ${values.threshold}`);
    return 2;
  }
  let files: string[];
  try {
    files = await collectFiles(inputs);
  } catch (error) {
    console.error(`cannot read inputs: ${(error as Error).message}`);
    return 1;
  }
  if (files.length === 0) {
    console.error(`no .avro files under ${inputs.join(', ')}`);
    return 1;
  }

  let store: RecordStore;
  let storeLabel: string;
  let pool: pg.Pool | undefined;
  if (values.memory) {
    store = new MemoryRecordStore();
    storeLabel = 'memory';
  } else {
    const url = process.env.DATABASE_URL;
    if (!url) {
      console.error('DATABASE_URL is not set (or pass --memory)');
      return 1;
    }
    const schema = values.schema ?? process.env.PG_SCHEMA ?? 'public';
    try {
      await ensureDatabase(url);
      pool = createPool({ connectionString: url, schema });
      await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
    } catch (error) {
      await pool?.end().catch(() => undefined);
      console.error(
        `cannot use PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//***@')}: ${(error as Error).message} (pass --memory to run without it)`,
      );
      return 1;
    }
    store = new PostgresRecordStore(pool);
    storeLabel = `postgresql (schema ${schema})`;
  }
  try {
    const result = await runEtl({
      inputs,
      out: values.out,
      store,
      storeLabel,
      bucket: values.bucket,
      threshold,
      log: (line) => console.log(line),
    });
    const t = result.totals;
    console.log(
      `\n${t.files} files: ${t.processed} processed, ${t.duplicate} duplicate, ${t.quarantined} quarantined, ${t.failed} failed; ${t.recordsRead} records read; ${t.trainingExamples} training examples; store ${storeLabel}; ${result.durationMs} ms`,
    );
    console.log(`summary: ${join(values.out, 'summary.json')}`);
    return 0;
  } finally {
    await store.close();
    await pool?.end();
  }
}

function parseEtlArgs(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      memory: { type: 'boolean', default: false },
      schema: { type: 'string' },
      threshold: { type: 'string' },
      bucket: { type: 'string' },
    },
  });
}
