/**
 * In-process benchmark of the health ETL: decode -> validate -> process -> serialize (the training
 * example) without a store, then the 1,000,000-reading export through `ingestExport` (what the
 * Lambda handler calls, with the body as a stream) with the PostgreSQL record store and with the
 * memory store (`etl run --memory`). Each path runs in a process of its own, right after plain avsc
 * decoding of the same bytes in a process of its own, and prints its ratio to that avsc run and its
 * peak RSS; the two store paths run twice, and a last line per figure compares the faster run of
 * each side (the avsc child itself keeps the faster of two runs). The PostgreSQL path is what the
 * handler runs: records staged while the export streams in, merged into record blocks
 * (record-blocks.ts) in one transaction.
 *
 *   npm run bench -- health          (or: npx tsx test/bench/health.ts)
 *
 * Prints records/s and the ratio to avsc (target >= 0.25), the CPU seconds of the process and, for
 * the PostgreSQL path when the server runs on this machine, of its backends (read from /proc: on a
 * shared machine wall time moves with the load, CPU seconds say where the work is), plus the
 * replaced system's floors
 * (500 glucose records < 5 s, 26 files < 60 s, > 1 file/s). Prints; never asserts.
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRaw } from 'node:zlib';
import avro from 'avsc';
import { openExport } from '../../lambdas/health/decode';
import { ingestExport, type OutputSink } from '../../lambdas/health/ingest';
import { analyseExport, type ProcessExportResult, processExport } from '../../lambdas/health/pipeline';
import { PROCESSOR_VERSION } from '../../lambdas/health/processors';
import { MemoryRecordStore, PostgresRecordStore, type RecordStore } from '../../lambdas/health/record-store';
import { rawKeyFor, type SourceIdentity } from '../../lambdas/health/source';
import { buildTrainingExample, serializeTrainingExample } from '../../lambdas/health/training';
import type { HealthRecord } from '../../lambdas/health/types';
import { createPool } from '../../lambdas/platform/postgres';
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

/**
 * CPU milliseconds the PostgreSQL backends of these pids have used (utime + stime of
 * /proc/<pid>/stat, 100 ticks a second), or undefined when the server is not on this machine.
 * Wall time on a shared 2-core machine moves by 2x with the load; CPU seconds say where the work is.
 */
function backendCpuMs(pids: ReadonlySet<number>): number | undefined {
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    // Fields after "pid (comm) ": state is the first; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!stat.includes('postgres')) return undefined;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10;
}

interface Measured<T> {
  ms: number;
  value: T;
  peakRss: number;
  startRss: number;
  /** This process's CPU (all its threads: GC and libuv too). */
  cpuMs: number;
  /** The server backends' CPU, when they run on this machine. */
  serverCpuMs?: number;
}

/** Runs fn while sampling RSS every 10 ms; returns its time, CPU and the peak RSS seen. */
async function withPeakRss<T>(fn: () => Promise<T>, backends?: ReadonlySet<number>): Promise<Measured<T>> {
  global.gc?.();
  const server0 = backends ? backendCpuMs(backends) : undefined;
  const cpu0 = process.cpuUsage();
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 10);
  try {
    const { ms, value } = await timeIt(fn);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const cpu = process.cpuUsage(cpu0);
    const server1 = backends ? backendCpuMs(backends) : undefined;
    const serverCpuMs = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
    return { ms, value, peakRss, startRss, cpuMs: (cpu.user + cpu.system) / 1000, serverCpuMs };
  } finally {
    clearInterval(sampler);
  }
}

/** Where the handler's outputs would go: counted, not kept (the bench measures the pipeline). */
function countingSink(): OutputSink & { writes: number; bytes: number } {
  const sink = {
    writes: 0,
    bytes: 0,
    async writeTraining(_s: SourceIdentity, _k: string, body: string) {
      sink.writes++;
      sink.bytes += body.length;
    },
    async writeManifest(_s: SourceIdentity, _k: string, body: string) {
      sink.writes++;
      sink.bytes += body.length;
    },
    async quarantine() {
      throw new Error('the benchmark export was quarantined');
    },
  };
  return sink;
}

const MILLION_KEY = 'raw/BloodGlucoseRecord/2025/06/01/BloodGlucoseRecord_1748743200000.avro';

/**
 * The path production runs: `ingestExport` (what the Lambda handler calls) over the object's body
 * as a stream (read from a file in 64 KiB chunks, as S3 hands a GetObject body), with a record
 * store, writing the training example and the manifest to a sink.
 */
async function ingestOnce(file: string, store: RecordStore, etag: string): Promise<ProcessExportResult> {
  const r = await ingestExport(
    {
      stream: createReadStream(file, { highWaterMark: 64 * 1024 }),
      source: { bucket: 'bench', key: MILLION_KEY, etag },
      store,
      now: new Date(NOW),
    },
    countingSink(),
  );
  if (r.status === 'failed' || r.status === 'quarantined')
    throw new Error(`expected processed, got ${r.status}: ${r.reasons.join('; ')}`);
  return r;
}

type PathName = 'avsc' | 'analysis' | 'postgres' | 'memory';
interface PathFigures {
  readonly path: PathName;
  readonly runs: {
    label: string;
    ms: number;
    peakRss: number;
    startRss: number;
    cpuMs: number;
    serverCpuMs?: number;
  }[];
}

/**
 * One measurement in a process of its own, so that a path's peak RSS is its own (not what the
 * baseline or an earlier path left on the heap). The parent runs plain avsc right before each path.
 */
async function runPath(path: PathName, file: string): Promise<PathFigures> {
  const runs: PathFigures['runs'] = [];
  if (path === 'avsc') {
    const bytes = readFileSync(file);
    await avscBlockDecoder(bytes);
    // The faster of two runs: the ratio is never flattered by a slow baseline.
    const b1 = await withPeakRss(() => avscBlockDecoder(bytes));
    const b2 = await withPeakRss(() => avscBlockDecoder(bytes));
    runs.push({ label: 'avsc BlockDecoder (baseline)', ...(b1.ms < b2.ms ? b1 : b2) });
    return { path, runs };
  }
  if (path === 'analysis') {
    const bytes = readFileSync(file);
    const r = await withPeakRss(() => pipelineOnce(bytes, MILLION_KEY));
    runs.push({ label: 'decode+validate+process+JSONL (no store)', ...r });
    return { path, runs };
  }
  if (path === 'memory') {
    const store = new MemoryRecordStore();
    const r = await withPeakRss(() => ingestOnce(file, store, 'bench-1'));
    if (r.value.records?.inserted !== MILLION) throw new Error(`inserted ${r.value.records?.inserted}`);
    runs.push({ label: 'ingestExport + memory store (--memory)', ...r });
    return { path, runs };
  }
  const db = await createTestSchema('bench_health');
  // A pool of its own whose backends are known (their pids), to read the server's CPU.
  const pool = createPool({ connectionString: db.url, schema: db.schema, max: 4 });
  const backends = new Set<number>();
  pool.on('connect', (client) => {
    const pid = (client as unknown as { processID?: number }).processID;
    if (pid) backends.add(pid);
  });
  try {
    const store = new PostgresRecordStore(pool);
    const r = await withPeakRss(() => ingestOnce(file, store, 'bench-1'), backends);
    if (r.value.records?.inserted !== MILLION) throw new Error(`inserted ${r.value.records?.inserted}`);
    runs.push({ label: 'ingestExport + PostgreSQL store', ...r });
    // The same export again (a re-sync): every record known, nothing written.
    const again = await withPeakRss(() => ingestOnce(file, store, 'bench-2'), backends);
    if (again.value.status !== 'duplicate') throw new Error(`expected duplicate, got ${again.value.status}`);
    runs.push({ label: '  same export again (all duplicate)', ...again });
  } finally {
    await pool.end();
    await db.drop();
  }
  return { path, runs };
}

function runChild(path: PathName, file: string): Promise<PathFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--path', path, file],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`bench path ${path} exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as PathFigures);
    });
  });
}

const MILLION = 1_000_000;

export async function million(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-health-'));
  // Every path shares the 2 cores with whatever else runs: the ratios are only comparable at a
  // similar load, so the bench says what it was.
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ');
  const startLoad = load();
  try {
    const file = join(dir, 'BloodGlucoseRecord_1748743200000.avro');
    const gen = await timeIt(async () => generateLargeGlucoseExport(MILLION));
    writeFileSync(file, gen.value);
    console.log(
      `\nsynthetic glucose export: ${MILLION.toLocaleString('en-US')} readings, ${mb(gen.value.length)} (generated in ${(gen.ms / 1000).toFixed(1)} s)`,
    );

    for (const path of ['analysis', 'postgres', 'memory'] as const) {
      // The store paths twice, each right after its own avsc run: a run on this shared machine
      // can take 30-40 % more CPU than the next one for the same work, on either side. The
      // summary compares the faster of each side (as the avsc child already keeps the faster of
      // its two runs); every run is printed.
      const rounds = path === 'analysis' ? 1 : 2;
      const best = new Map<string, { ms: number; peakRss: number }>();
      let bestBase = Number.POSITIVE_INFINITY;
      for (let round = 0; round < rounds; round++) {
        const base = (await runChild('avsc', file)).runs[0] as PathFigures['runs'][number];
        const f = await runChild(path, file);
        bestBase = Math.min(bestBase, base.ms);
        console.log(
          `  ${base.label.padEnd(40)} ${rate(MILLION, base.ms).padStart(10)} records/s (${(base.ms / 1000).toFixed(2)} s)  CPU ${(base.cpuMs / 1000).toFixed(2)} s`,
        );
        for (const r of f.runs) {
          console.log(
            `  ${r.label.padEnd(40)} ${rate(MILLION, r.ms).padStart(10)} records/s (${(r.ms / 1000).toFixed(2)} s)  ratio to avsc ${(base.ms / r.ms).toFixed(2)}  peak RSS ${mb(r.peakRss)} (${mb(r.startRss)} at start)  CPU ${(r.cpuMs / 1000).toFixed(2)} s${r.serverCpuMs === undefined ? '' : ` + server ${(r.serverCpuMs / 1000).toFixed(2)} s`}`,
          );
          const b = best.get(r.label);
          best.set(r.label, {
            ms: Math.min(b?.ms ?? Number.POSITIVE_INFINITY, r.ms),
            peakRss: Math.max(b?.peakRss ?? 0, r.peakRss),
          });
        }
      }
      if (rounds > 1)
        for (const [label, b] of best)
          console.log(
            `  faster of two: ${label.trim().padEnd(34)} ${(b.ms / 1000).toFixed(2)} s against avsc ${(bestBase / 1000).toFixed(2)} s: ratio ${(bestBase / b.ms).toFixed(2)}  peak RSS (higher of two) ${mb(b.peakRss)}`,
          );
    }
    console.log('  targets: ratio >= 0.25 on the PostgreSQL path, peak RSS <= 512 MB');
    console.log(`  machine load (1/5/15 min) at the end: ${load()} (at the start: ${startLoad})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  await samples();
  await million();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--path');
  if (i > 0) {
    const figures = await runPath(process.argv[i + 1] as PathName, process.argv[i + 2] as string);
    console.log(JSON.stringify(figures));
    process.exit(0);
  }
  await bench();
}
