import { readFileSync } from 'node:fs';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTestReport } from '../../bin/reports/load';
import { rawKeyFor, sourceId } from '../../lambdas/health/source';
import { RECORD_TYPES } from '../../lambdas/health/types';
import { createPool } from '../../lambdas/platform/postgres';
import { startProgress } from '../../lib/cli/progress';
import { writeReport } from '../../lib/cli/report';
import { HEALTH_CONSUMERS } from '../../lib/topology/health';
import { applyLocalDefaults } from '../../localstack/env';
import { memoryFile, runningPid } from '../../localstack/processes';
import { deadLetterQueueName, localQueueUrl, queueDepth, queueName } from '../../localstack/resources';
import { generateVariant, type RecordTypeName } from '../fixtures/health/generator';

applyLocalDefaults();

const FILES = 1_000;
const REDELIVERIES = 3;
const UPLOAD_CONCURRENCY = 50;
const TYPES: readonly RecordTypeName[] = RECORD_TYPES;

/** Resident memory of a process, from /proc (the runner is a separate process, like a Lambda). */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

/** The runner's heap after a full GC (it answers SIGUSR2 by writing it to a file). */
async function heapAfterGcMb(pid: number): Promise<number> {
  const asked = Date.now();
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      const probe = JSON.parse(readFileSync(memoryFile('load'), 'utf8')) as { at: number; heapUsed: number };
      if (probe.at >= asked) return probe.heapUsed / 2 ** 20;
    } catch {
      // not written yet
    }
  }
  throw new Error('the runner did not report its memory');
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('health ETL under load on the local stage', () => {
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const db = createPool({ connectionString: process.env.DATABASE_URL as string, max: 2 });
  const bucket = process.env.DATA_BUCKET as string;
  afterAll(async () => {
    await db.end();
    s3.destroy();
    sqs.destroy();
  });

  async function completed(ids: string[]): Promise<Map<string, string>> {
    const { rows } = await db.query<{ source_id: string; status: string }>(
      'SELECT source_id, status FROM health_ingests WHERE source_id = ANY($1) AND completed_at IS NOT NULL',
      [ids],
    );
    return new Map(rows.map((r) => [r.source_id, r.status]));
  }

  /** When each ingest completed (ms since epoch), for the report's latency and throughput. */
  async function completionTimes(ids: string[]): Promise<Map<string, number>> {
    const { rows } = await db.query<{ source_id: string; ms: string }>(
      `SELECT source_id, (extract(epoch FROM completed_at) * 1000)::bigint::text AS ms
         FROM health_ingests WHERE source_id = ANY($1) AND completed_at IS NOT NULL`,
      [ids],
    );
    return new Map(rows.map((r) => [r.source_id, Number(r.ms)]));
  }

  it('loses nothing, writes one training object per processed file, and keeps worker memory flat', async () => {
    // Prepare
    const etl = HEALTH_CONSUMERS[0];
    if (!etl) throw new Error('no health ETL consumer');
    const queueUrl = await localQueueUrl(sqs, queueName(etl));
    const dlqUrl = await localQueueUrl(sqs, deadLetterQueueName(etl));
    const runner = runningPid('runner-load');
    if (runner === undefined) throw new Error('the load stage runner is not running');
    const files = Array.from({ length: FILES }, (_, i) =>
      generateVariant(TYPES[i % TYPES.length] as RecordTypeName, i + 1),
    );
    const uploads: { key: string; versionId: string; etag: string; id: string; at: number }[] = [];
    const memory: { atMs: number; rssMb: number }[] = [];
    const progress = startProgress('load test', { total: FILES });

    // Act 1: 1,000 concurrent uploads; S3 notifications drive the queue.
    const started = Date.now();
    await pool(files, UPLOAD_CONCURRENCY, async (file) => {
      const key = rawKeyFor(file.name);
      const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: file.bytes }));
      const versionId = put.VersionId as string;
      uploads.push({
        key,
        versionId,
        etag: put.ETag as string,
        id: sourceId({ bucket, key, versionId }),
        at: Date.now(),
      });
      progress.step(0, `uploaded ${uploads.length}`);
    });
    const ids = uploads.map((u) => u.id);
    let baselineMb = Number.NaN;
    let baselineRssMb = Number.NaN;
    let peakMb = 0;
    let done = new Map<string, string>();
    for (let i = 0; i < 1_200 && done.size < FILES; i++) {
      await new Promise((r) => setTimeout(r, 500));
      done = await completed(ids);
      const rss = rssMb(runner);
      peakMb = Math.max(peakMb, rss);
      memory.push({ atMs: Date.now() - started, rssMb: rss });
      progress.step(done.size, 'first pass: waiting for completed ingests');
      // Baseline once the worker is warm (code loaded, pools and caches filled).
      if (Number.isNaN(baselineMb) && done.size >= FILES / 10) {
        baselineMb = await heapAfterGcMb(runner);
        baselineRssMb = rss;
      }
    }
    const firstPassSeconds = (Date.now() - started) / 1_000;

    // Act 2: every message delivered three more times, as an at-least-once queue may.
    const notifications = uploads.map((u) =>
      JSON.stringify({
        Records: [
          {
            eventSource: 'aws:s3',
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: bucket }, object: { key: u.key, versionId: u.versionId, eTag: u.etag } },
          },
        ],
      }),
    );
    const copies = Array.from({ length: REDELIVERIES }, () => notifications).flat();
    const batches = Array.from({ length: Math.ceil(copies.length / 10) }, (_, b) =>
      copies.slice(b * 10, b * 10 + 10),
    );
    await pool(batches, 10, async (batch) => {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((body, n) => ({ Id: String(n), MessageBody: body })),
        }),
      );
    });
    for (let i = 0, depth = await queueDepth(sqs, queueUrl); i < 1_200 && depth > 0; i++) {
      progress.update(`redeliveries: ${depth} messages left in the queue`);
      await new Promise((r) => setTimeout(r, 500));
      const rss = rssMb(runner);
      peakMb = Math.max(peakMb, rss);
      memory.push({ atMs: Date.now() - started, rssMb: rss });
      depth = await queueDepth(sqs, queueUrl);
    }
    progress.succeed('first pass and redeliveries drained');
    const finalMb = await heapAfterGcMb(runner);
    const finalRssMb = rssMb(runner);

    // Assess
    done = await completed(ids);
    const processed = ids.filter((id) => done.get(id) === 'processed');
    const training = new Map<string, number>();
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'training/', ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        const id = /\.([0-9a-f]{24})\.jsonl$/.exec(o.Key ?? '')?.[1];
        if (id) training.set(id, (training.get(id) ?? 0) + 1);
      }
      token = page.NextContinuationToken;
    } while (token);
    const growthMb = finalMb - baselineMb;
    const times = await completionTimes(ids);
    const measured = {
      files: FILES,
      redeliveries: FILES * REDELIVERIES,
      firstPassSeconds,
      filesPerSecond: FILES / firstPassSeconds,
      outcomes: { processed: processed.length, duplicate: FILES - processed.length },
      trainingObjects: processed.reduce((n, id) => n + (training.get(id) ?? 0), 0),
      runnerHeapAfterGcMb: { baseline: baselineMb, final: finalMb, growth: growthMb },
      runnerRssMb: { baseline: baselineRssMb, peak: peakMb, final: finalRssMb },
    };
    console.log(
      `load: ${FILES} files + ${FILES * REDELIVERIES} redeliveries; first pass ${firstPassSeconds.toFixed(1)} s ` +
        `(${measured.filesPerSecond.toFixed(1)} files/s); processed ${processed.length}, duplicate ${FILES - processed.length}; ` +
        `runner heap after GC ${baselineMb.toFixed(1)} -> ${finalMb.toFixed(1)} MiB, RSS peak ${peakMb.toFixed(0)} MiB`,
    );
    if (process.env.LOAD_REPORT) {
      await writeReport(
        process.env.LOAD_REPORT,
        loadTestReport({
          files: FILES,
          redeliveries: FILES * REDELIVERIES,
          firstPassSeconds,
          filesPerSecond: measured.filesPerSecond,
          outcomes: measured.outcomes,
          trainingObjects: measured.trainingObjects,
          latenciesMs: uploads.flatMap((u) => {
            const t = times.get(u.id);
            return t === undefined ? [] : [Math.max(0, t - u.at)];
          }),
          completedAtMs: [...times.values()].map((t) => Math.max(0, t - started)),
          memory,
          runnerHeapAfterGcMb: measured.runnerHeapAfterGcMb,
        }),
      );
    }
    expect(done.size).toBe(FILES);
    expect(await queueDepth(sqs, queueUrl)).toBe(0);
    expect(await queueDepth(sqs, dlqUrl)).toBe(0);
    expect(processed.length).toBeGreaterThan(0);
    for (const id of processed) expect(training.get(id)).toBe(1);
    for (const id of ids.filter((x) => done.get(x) !== 'processed')) expect(training.get(id)).toBeUndefined();
    expect(growthMb).toBeLessThan(50);
  });
});
