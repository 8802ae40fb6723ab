/**
 * In-process benchmark of the health ETL: decode -> validate -> process -> serialize (the training
 * example) without a store, then the 1,000,000-reading export through `processExport` with the
 * PostgreSQL record store (the path the handler runs) and with the memory store (`etl run
 * --memory`), each against plain avsc decoding of the same bytes measured in the same run, with
 * the peak RSS of each path.
 *
 *   npm run bench -- health          (or: npx tsx test/bench/health.ts)
 *
 * Prints records/s and the ratio to avsc (target >= 0.25), plus the replaced system's floors
 * (500 glucose records < 5 s, 26 files < 60 s, > 1 file/s). Prints; never asserts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRaw } from 'node:zlib';
import avro from 'avsc';
import { openExport } from '../../lambdas/health/decode';
import { analyseExport, type ProcessExportResult, processExport } from '../../lambdas/health/pipeline';
import { PROCESSOR_VERSION } from '../../lambdas/health/processors';
import { MemoryRecordStore, PostgresRecordStore, type RecordStore } from '../../lambdas/health/record-store';
import { rawKeyFor, type SourceIdentity } from '../../lambdas/health/source';
import { buildTrainingExample, serializeTrainingExample } from '../../lambdas/health/training';
import type { HealthRecord } from '../../lambdas/health/types';
import { generateLargeGlucoseExport, SAMPLES_DIR } from '../fixtures/health/generator';
import { createTestSchema } from '../support/db';

const NOW = Date.UTC(2025, 10, 10, 12);
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const rate = (n: number, ms: number) => Math.round((n / ms) * 1000).toLocaleString('en-US');

/** avsc's own container reader (streams API), counting records: the baseline. */
function avscBlockDecoder(bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const decoder = new avro.streams.BlockDecoder({
      codecs: {
        null: (b: Buffer, cb: (e: Error | null, out?: Buffer) => void) => cb(null, b),
        deflate: inflateRaw,
      },
    } as never);
    decoder.on('data', () => {
      n++;
    });
    decoder.on('end', () => resolve(n));
    decoder.on('error', reject);
    decoder.end(bytes);
  });
}

/** Decode -> validate -> process -> serialize one export; returns records read. */
async function pipelineOnce(bytes: Buffer, key: string): Promise<number> {
  const file = await openExport<HealthRecord>(bytes, { key });
  const analysis = await analyseExport(file, { now: NOW });
  const { insights, narrative, input } = analysis.finishProcessing();
  const source: SourceIdentity = { bucket: 'bench', key, etag: 'bench' };
  const body = serializeTrainingExample(
    buildTrainingExample({
      recordType: analysis.recordType,
      source,
      userId: 'bench',
      correlationId: null,
      processedAt: new Date(NOW).toISOString(),
      qualityScore: analysis.validation.score,
      recordsProcessed: analysis.recordsRead,
      recordsNew: analysis.recordsRead,
      recordsUpdated: 0,
      warnings: analysis.validation.warnings,
      insights,
      narrative,
      dataInput: input,
      processorVersion: PROCESSOR_VERSION,
      readerSchemaVersion: analysis.readerVersion,
      subject: analysis.subject,
    }),
  );
  if (body.length === 0) throw new Error('empty training example');
  return analysis.recordsRead;
}

async function timeIt<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function samples(): Promise<void> {
  const files = readdirSync(SAMPLES_DIR)
    .filter((f) => f.endsWith('.avro'))
    .sort();
  const inputs = files.map((f) => ({ key: rawKeyFor(f), bytes: readFileSync(join(SAMPLES_DIR, f)) }));
  const rounds = 30;
  // Warm-up: JIT and schema resolvers.
  for (const x of inputs) await pipelineOnce(x.bytes, x.key);
  for (const x of inputs) await avscBlockDecoder(x.bytes);

  const base = await timeIt(async () => {
    let n = 0;
    for (let r = 0; r < rounds; r++) for (const x of inputs) n += await avscBlockDecoder(x.bytes);
    return n;
  });
  const ours = await timeIt(async () => {
    let n = 0;
    for (let r = 0; r < rounds; r++) for (const x of inputs) n += await pipelineOnce(x.bytes, x.key);
    return n;
  });
  const perRound = ours.ms / rounds;
  console.log(`26 samples x ${rounds} rounds (${ours.value / rounds} records per round)`);
  console.log(`  avsc BlockDecoder               ${rate(base.value, base.ms).padStart(12)} records/s`);
  console.log(`  decode+validate+process+JSONL   ${rate(ours.value, ours.ms).padStart(12)} records/s`);
  console.log(
    `  ratio to avsc                   ${(ours.value / ours.ms / (base.value / base.ms)).toFixed(2)} (target >= 0.25)`,
  );
  console.log(
    `  26 files in ${perRound.toFixed(1)} ms (${rate(26, perRound)} files/s; floors: 26 files < 60 s, > 1 file/s)`,
  );

  // The full processExport with the in-memory record store: what the CLI and the handler run.
  const store = new MemoryRecordStore();
  const full = await timeIt(async () => {
    for (const x of inputs) {
      const r = await processExport({
        bytes: x.bytes,
        source: { bucket: 'bench', key: x.key, etag: x.key },
        store,
        now: new Date(NOW),
      });
      if (r.status === 'processed') await store.completeIngest(r.sourceId);
    }
  });
  console.log(
    `  processExport + memory store    26 files in ${full.ms.toFixed(1)} ms (first pass: 23 processed, 3 duplicate)`,
  );

  const glucose = inputs.find((x) => x.key.includes('BloodGlucoseRecord_1762219812481'));
  if (glucose) {
    const g = await timeIt(async () => {
      let n = 0;
      for (let i = 0; i < 2; i++) n += await pipelineOnce(glucose.bytes, glucose.key);
      return n;
    });
    console.log(`  253-reading glucose file        ${(g.ms / 2).toFixed(2)} ms (floor: 500 records < 5 s)`);
  }
}

/** Runs fn while sampling RSS every 20 ms; returns its time and the peak RSS seen. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T; peakRss: number }> {
  global.gc?.();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  try {
    const { ms, value } = await timeIt(fn);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    return { ms, value, peakRss };
  } finally {
    clearInterval(sampler);
  }
}

/** processExport end to end, as the handler runs it: decode, validate, process, record store, training. */
async function processOnce(bytes: Buffer, key: string, store: RecordStore): Promise<ProcessExportResult> {
  const r = await processExport({
    bytes,
    source: { bucket: 'bench', key, etag: `bench-${Date.now()}-${Math.random()}` },
    store,
    now: new Date(NOW),
  });
  if (r.status !== 'processed')
    throw new Error(`expected processed, got ${r.status}: ${r.reasons.join('; ')}`);
  await store.completeIngest(r.sourceId);
  return r;
}

export async function million(): Promise<void> {
  const readings = 1_000_000;
  const rssBefore = process.memoryUsage().rss;
  const gen = await timeIt(async () => generateLargeGlucoseExport(readings));
  const bytes = gen.value;
  const key = 'raw/BloodGlucoseRecord/2025/06/01/BloodGlucoseRecord_1748743200000.avro';
  console.log(
    `\nsynthetic glucose export: ${readings.toLocaleString('en-US')} readings, ${mb(bytes.length)} (generated in ${(gen.ms / 1000).toFixed(1)} s; RSS before generation ${mb(rssBefore)})`,
  );

  // Warm-up of the decoder and the row encoder on the small export (JIT), then the baseline.
  const base = await timeIt(() => avscBlockDecoder(bytes));
  if (base.value !== readings) throw new Error(`avsc read ${base.value} records`);
  const line = (label: string, r: { ms: number; peakRss: number }) =>
    console.log(
      `  ${label.padEnd(38)} ${rate(readings, r.ms).padStart(10)} records/s (${(r.ms / 1000).toFixed(2)} s)  ratio to avsc ${(base.ms / r.ms).toFixed(2)}  peak RSS ${mb(r.peakRss)}`,
    );
  console.log(
    `  ${'avsc BlockDecoder (baseline)'.padEnd(38)} ${rate(base.value, base.ms).padStart(10)} records/s (${(base.ms / 1000).toFixed(2)} s)`,
  );

  const analysis = await withPeakRss(() => pipelineOnce(bytes, key));
  line('decode+validate+process+JSONL', analysis);

  // The production path: processExport with the PostgreSQL record store (binary COPY + merge).
  const db = await createTestSchema('bench_health');
  try {
    const pg = await withPeakRss(() => processOnce(bytes, key, new PostgresRecordStore(db.pool)));
    if (pg.value.records?.inserted !== readings) throw new Error(`inserted ${pg.value.records?.inserted}`);
    line('processExport + PostgreSQL store', pg);
    // The same export again: every record known, nothing inserted (the re-sync case).
    const again = await withPeakRss(async () => {
      const r = await processExport({
        bytes,
        source: { bucket: 'bench', key, etag: 'bench-again' },
        store: new PostgresRecordStore(db.pool),
        now: new Date(NOW),
      });
      if (r.status !== 'duplicate') throw new Error(`expected duplicate, got ${r.status}`);
      return r;
    });
    line('  same export again (all duplicate)', again);
  } finally {
    await db.drop();
  }

  const memory = await withPeakRss(() => processOnce(bytes, key, new MemoryRecordStore()));
  line('processExport + memory store (--memory)', memory);
  console.log('  targets: ratio >= 0.25 on the PostgreSQL path, peak RSS <= 512 MB');
}

export async function bench(): Promise<void> {
  await samples();
  await million();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bench();
}
