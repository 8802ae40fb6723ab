import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { type QuarantineSidecar, quarantineKey, sidecarKey } from '../lambdas/health/quarantine';
import { parseExportName, rawKeyFor, sourceId } from '../lambdas/health/source';
import { isTransientFault } from '../lambdas/platform/faults';
import { HEALTH_CONSUMERS } from '../lib/topology/health';
import { deadLetterQueueName, localQueueUrl } from './resources';

/** Terminal outcomes of an uploaded export on the stage. */
export type ReplayOutcome = 'processed' | 'duplicate' | 'quarantined' | 'dead-lettered';

export interface FileReport {
  readonly file: string;
  readonly key: string;
  readonly recordType: string;
  readonly outcome: ReplayOutcome | 'pending';
  readonly latencyMs: number | null;
  /** Why a file was quarantined (from its sidecar). */
  readonly reasons?: string[];
}

export interface ReplayReport {
  readonly files: FileReport[];
  readonly counts: Record<ReplayOutcome | 'pending', number>;
  readonly byType: Record<string, Partial<Record<ReplayOutcome | 'pending', number>>>;
  readonly uploaded: number;
  /** uploaded = processed + quarantined + duplicate + dead-lettered */
  readonly identityHolds: boolean;
  readonly seconds: number;
  readonly filesPerSecond: number;
  readonly latencyMs: { p50: number; p95: number; p99: number };
  readonly sourceIds: string[];
}

export interface ReplayDependencies {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  /** The database the stage's runner writes the ETL record state to. */
  readonly pool: pg.Pool;
  readonly bucket: string;
  readonly deadLetterQueueUrl: string;
  readonly timeoutMs?: number;
  readonly say?: (line: string) => void;
}

/** The stage's bucket (DATA_BUCKET) and the health ETL's dead-letter queue, for `replay`. */
export async function replayDependencies(clients: {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly pool: pg.Pool;
}): Promise<ReplayDependencies> {
  const etl = HEALTH_CONSUMERS[0];
  if (!etl) throw new Error('no health ETL consumer in lib/topology/health.ts');
  return {
    ...clients,
    bucket: process.env.DATA_BUCKET as string,
    deadLetterQueueUrl: await localQueueUrl(clients.sqs, deadLetterQueueName(etl)),
  };
}

/** Export files under the given files/directories, in the exporter's fetch-time order. */
export async function exportFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      for (const name of await readdir(path)) if (name.endsWith('.avro')) files.push(join(path, name));
    } else {
      files.push(path);
    }
  }
  const fetchTime = (f: string) => parseExportName(basename(f))?.fetchTimeMillis ?? Number.MAX_SAFE_INTEGER;
  return files.sort((a, b) => fetchTime(a) - fetchTime(b) || a.localeCompare(b));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

interface Upload {
  readonly file: string;
  readonly key: string;
  readonly sourceId: string;
  readonly versionId?: string;
  readonly uploadedAt: number;
  outcome?: ReplayOutcome;
  doneAt?: number;
  reasons?: string[];
}

/**
 * Uploads the files to the stage's bucket under raw/, lets the S3 notification -> SQS -> runner ->
 * handler path do the work, and waits until every file has a terminal outcome: a completed ingest
 * (processed or duplicate) in the record store, a quarantine sidecar, or a message in the DLQ.
 */
export async function replay(paths: string[], deps: ReplayDependencies): Promise<ReplayReport> {
  const files = await exportFiles(paths);
  const started = Date.now();
  const uploads: Upload[] = [];
  for (const file of files) {
    const key = rawKeyFor(basename(file));
    const put = await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: await readFile(file),
        ContentType: 'avro/binary',
      }),
    );
    const id = sourceId({ bucket: deps.bucket, key, versionId: put.VersionId, etag: put.ETag });
    uploads.push({ file, key, sourceId: id, versionId: put.VersionId, uploadedAt: Date.now() });
  }
  deps.say?.(`uploaded ${uploads.length} files to s3://${deps.bucket}/raw/`);

  const deadline = Date.now() + (deps.timeoutMs ?? 120_000);
  while (uploads.some((u) => !u.outcome) && Date.now() < deadline) {
    // The stage's database or LocalStack restarting mid-replay delays the verdict, never ends it.
    await settle(
      uploads.filter((u) => !u.outcome),
      deps,
    ).catch((error: unknown) => {
      if (!isTransientFault(error)) throw error;
    });
    if (uploads.some((u) => !u.outcome)) await new Promise((r) => setTimeout(r, 100));
  }
  const finished = Math.max(...uploads.map((u) => u.doneAt ?? Date.now()));

  const reports: FileReport[] = uploads.map((u) => ({
    file: basename(u.file),
    key: u.key,
    recordType: u.key.split('/')[1] ?? 'unknown',
    outcome: u.outcome ?? 'pending',
    latencyMs: u.doneAt ? u.doneAt - u.uploadedAt : null,
    ...(u.reasons ? { reasons: u.reasons } : {}),
  }));
  const counts = { processed: 0, duplicate: 0, quarantined: 0, 'dead-lettered': 0, pending: 0 };
  const byType: ReplayReport['byType'] = {};
  for (const r of reports) {
    counts[r.outcome] += 1;
    const type = byType[r.recordType] ?? {};
    type[r.outcome] = (type[r.outcome] ?? 0) + 1;
    byType[r.recordType] = type;
  }
  const latencies = reports.flatMap((r) => (r.latencyMs === null ? [] : [r.latencyMs])).sort((a, b) => a - b);
  const seconds = (finished - started) / 1_000;
  return {
    files: reports,
    counts,
    byType,
    uploaded: uploads.length,
    identityHolds:
      counts.pending === 0 &&
      uploads.length === counts.processed + counts.quarantined + counts.duplicate + counts['dead-lettered'],
    seconds,
    filesPerSecond: seconds > 0 ? uploads.length / seconds : 0,
    latencyMs: {
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
    },
    sourceIds: uploads.map((u) => u.sourceId),
  };
}

async function settle(pending: Upload[], deps: ReplayDependencies): Promise<void> {
  const { rows } = await deps.pool.query<{ source_id: string; status: ReplayOutcome; completed_ms: string }>(
    `SELECT source_id, status, (extract(epoch FROM completed_at) * 1000)::bigint::text AS completed_ms
       FROM health_ingests WHERE source_id = ANY($1) AND completed_at IS NOT NULL`,
    [pending.map((u) => u.sourceId)],
  );
  const done = new Map(rows.map((r) => [r.source_id, r]));
  const now = Date.now();
  for (const upload of pending) {
    const row = done.get(upload.sourceId);
    if (row) {
      upload.outcome = row.status;
      upload.doneAt = Math.max(upload.uploadedAt, Number(row.completed_ms));
    }
  }
  // Quarantine leaves no row (it is decided from the file alone): its sidecar, which names the
  // exact source version, is the record.
  await Promise.all(
    pending
      .filter((u) => !u.outcome)
      .map(async (upload) => {
        const sidecar = await deps.s3
          .send(new GetObjectCommand({ Bucket: deps.bucket, Key: sidecarKey(quarantineKey(upload.key)) }))
          .then(
            async (object) =>
              JSON.parse(await (object.Body?.transformToString() ?? '{}')) as QuarantineSidecar,
          )
          .catch(() => undefined);
        if (sidecar?.source && sourceId(sidecar.source) === upload.sourceId) {
          upload.outcome = 'quarantined';
          upload.doneAt = Math.max(upload.uploadedAt, Date.parse(sidecar.quarantinedAt) || now);
          upload.reasons = sidecar.reasons;
        }
      }),
  );
  const left = pending.filter((u) => !u.outcome);
  if (left.length === 0) return;
  // Looking at the DLQ without taking messages: a zero visibility timeout leaves them visible.
  const { Messages } = await deps.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: deps.deadLetterQueueUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
    }),
  );
  for (const message of Messages ?? []) {
    for (const upload of left) {
      // The key and this upload's version: a dead letter of an earlier upload of the file is not this one.
      const body = message.Body ?? '';
      if (
        !upload.outcome &&
        body.includes(upload.key) &&
        (!upload.versionId || body.includes(upload.versionId))
      ) {
        upload.outcome = 'dead-lettered';
        upload.doneAt = now;
      }
    }
  }
}
