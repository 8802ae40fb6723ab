/**
 * Issue 15, point 7: no message may be able only to die. On the handler path (LocalStack SQS ->
 * event-source runner -> the health ETL handler -> S3, PostgreSQL, Redis):
 * - an export deferred for lack of time goes back as a NEW message, so deferring never spends one
 *   of its receives: with maxReceiveCount 1 (any failed receive dead-letters at once) every export
 *   of a batch that only has time for one still completes, none reaches the DLQ;
 * - an export that runs out of time with a whole invocation to itself is quarantined at once as
 *   `too_large_for_budget` (a terminal, recorded outcome) instead of timing out on every attempt.
 * Every message ends as processed, duplicate, quarantined or dead-lettered: nothing is pending.
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worstCaseMillis } from '../../lambdas/health/budget';
import { quarantineKey, sidecarKey } from '../../lambdas/health/quarantine';
import { type SourceIdentity, sourceId } from '../../lambdas/health/source';
import { trainingKey } from '../../lambdas/health/training';
import { DEFERRALS_ATTRIBUTE, handler } from '../../lambdas/health-etl/handler';
import { createPool } from '../../lambdas/platform/postgres';
import { applyLocalDefaults } from '../../localstack/env';
import { ensureQueue, type LocalQueue, queueDepth } from '../../localstack/resources';
import { EventSourceRunner, type SqsHandler } from '../../localstack/runner';
import { dailyTotal, encodeExport, localMidnight, stampFetchTime } from '../fixtures/health/generator';

applyLocalDefaults();

const HOUR = 3_600_000;
const run = randomBytes(3).toString('hex');

interface Delivery {
  key: string;
  receiveCount: number;
  deferrals: number;
}

describe('health ETL time budget on the handler path (issue 15, point 7)', () => {
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 2 });
  const bucket = process.env.DATA_BUCKET as string;
  const queues: LocalQueue[] = [];

  const fetchTimes = new Map<string, number>();

  /** A unique one-day steps export (fresh record ids), uploaded outside raw/ (no S3 notification). */
  async function upload(day: number): Promise<SourceIdentity> {
    const fetch = localMidnight(day) + 30 * HOUR;
    const seed = Number.parseInt(randomBytes(3).toString('hex'), 16);
    const records = stampFetchTime([dailyTotal(seed, 'steps', 'fit', day, 4_000 + day * 731)], fetch);
    const key = `budget-test-${run}/StepsRecord/StepsRecord_${fetch}.avro`;
    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: encodeExport('StepsRecord', records) }),
    );
    fetchTimes.set(key, fetch);
    return { bucket, key, versionId: put.VersionId, etag: put.ETag };
  }

  /** A queue with the real redrive policy, the handler behind a runner, deliveries recorded. */
  async function consumer(
    name: string,
    maxReceiveCount: number,
    timeoutSeconds: number,
    context?: (c: Context) => Context,
  ) {
    const queue = await ensureQueue(
      sqs,
      { id: `health-budget-${name}-${run}`, maxReceiveCount, timeoutSeconds },
      timeoutSeconds + 1,
    );
    queues.push(queue);
    const deliveries: Delivery[] = [];
    const recording: SqsHandler = async (event: SQSEvent, ctx: Context) => {
      for (const r of event.Records) {
        deliveries.push({
          key: (JSON.parse(r.body) as { key: string }).key,
          receiveCount: Number(r.attributes.ApproximateReceiveCount),
          deferrals: Number(r.messageAttributes[DEFERRALS_ATTRIBUTE]?.stringValue ?? '0'),
        });
      }
      return handler(event, context ? context(ctx) : ctx);
    };
    const runner = new EventSourceRunner({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      functionName: `health-budget-${name}`,
      handler: recording,
      batchSize: 10,
      maxBatchingWindowSeconds: 1,
      timeoutSeconds,
      waitTimeSeconds: 1,
    });
    return { queue, runner, deliveries };
  }

  async function send(queue: LocalQueue, objects: { source: SourceIdentity; size: number }[]) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: objects.map(({ source, size }, i) => ({
          Id: String(i),
          MessageBody: JSON.stringify({
            bucket,
            key: source.key,
            versionId: source.versionId,
            etag: source.etag,
            size,
          }),
        })),
      }),
    );
  }

  async function completed(sources: SourceIdentity[]): Promise<Map<string, string>> {
    const { rows } = await pool.query<{ source_id: string; status: string }>(
      'SELECT source_id, status FROM health_ingests WHERE source_id = ANY($1) AND completed_at IS NOT NULL',
      [sources.map(sourceId)],
    );
    return new Map(rows.map((r) => [r.source_id, r.status]));
  }

  /**
   * The exports whose training object is written (processed). Read from S3, not from health_ingests:
   * another test file (the replay) may truncate the record state of the shared test database.
   */
  async function trained(sources: SourceIdentity[]): Promise<SourceIdentity[]> {
    const written = await Promise.all(
      sources.map((source) =>
        s3
          .send(
            new HeadObjectCommand({
              Bucket: bucket,
              Key: trainingKey('StepsRecord', source, fetchTimes.get(source.key) as number),
            }),
          )
          .then(
            () => true,
            () => false,
          ),
      ),
    );
    return sources.filter((_, i) => written[i]);
  }

  async function deadLettered(queue: LocalQueue): Promise<number> {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.deadLetterUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    return Messages?.length ?? 0;
  }

  async function sidecar(source: SourceIdentity): Promise<{ reasons: string[] } | null> {
    try {
      const o = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: sidecarKey(quarantineKey(source.key)) }),
      );
      return JSON.parse(await (o.Body as { transformToString(): Promise<string> }).transformToString());
    } catch {
      return null;
    }
  }

  beforeAll(async () => {
    // Migrations are applied to the test database by the test stage's global setup.
    await pool.query('SELECT 1 FROM health_ingests LIMIT 1');
  });

  afterAll(async () => {
    for (const q of queues) {
      await sqs.send(new DeleteQueueCommand({ QueueUrl: q.url }));
      await sqs.send(new DeleteQueueCommand({ QueueUrl: q.deadLetterUrl }));
    }
    await pool.end();
    s3.destroy();
    sqs.destroy();
  });

  it('deferred exports go back as new messages: with maxReceiveCount 1 all of them complete, none is dead-lettered', async () => {
    // Prepare: four exports announced at 10 MB each: a worst case of 25 s, more than the 10 s
    // invocation has left after its first object, so every invocation starts one and defers the rest.
    const size = 10_000_000;
    expect(worstCaseMillis({ bytes: size })).toBeGreaterThan(10_000);
    const sources = await Promise.all([0, 1, 2, 3].map((d) => upload(d)));
    const { queue, runner, deliveries } = await consumer('defer', 1, 10);
    await send(
      queue,
      sources.map((source) => ({ source, size })),
    );

    // Act: until every export has completed (or, as before the fix, the queue has emptied into the DLQ)
    runner.start();
    for (let i = 0; i < 120; i++) {
      if ((await trained(sources)).length === sources.length) break;
      if (deliveries.length > 0 && (await queueDepth(sqs, queue.url)) === 0) {
        await new Promise((r) => setTimeout(r, 1_000));
        if ((await queueDepth(sqs, queue.url)) === 0) break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await runner.stop();

    // Assess: every export was processed (its training object written); some were deferred (more deliveries than exports), yet
    // each delivery was a first receive, and nothing reached the dead-letter queue.
    const done = await trained(sources);
    expect(done).toHaveLength(sources.length);
    expect(deliveries.length).toBeGreaterThan(sources.length);
    expect(Math.max(...deliveries.map((d) => d.deferrals))).toBeGreaterThanOrEqual(1);
    expect(deliveries.every((d) => d.receiveCount === 1)).toBe(true);
    const dlq = await deadLettered(queue);
    expect(dlq).toBe(0);
    expect(await queueDepth(sqs, queue.url)).toBe(0);
    // The accounting identity: sent = processed + duplicate + quarantined + dead-lettered.
    expect(done.length + dlq).toBe(sources.length);
  }, 120_000);

  it('an export that runs out of time with a whole invocation to itself is quarantined at once as too_large_for_budget', async () => {
    // Prepare: the Lambda context's clock says the time is up as the invocation starts (what a file
    // too large for the function's timeout meets, without making one); the runner's own timeout is
    // the real 10 s, so the handler can end the object cleanly.
    const source = await upload(4);
    const { queue, runner, deliveries } = await consumer('terminal', 3, 10, (ctx) => ({
      ...ctx,
      getRemainingTimeInMillis: () => 1,
    }));
    await send(queue, [{ source, size: 200 }]);

    // Act
    runner.start();
    let found: { reasons: string[] } | null = null;
    for (let i = 0; i < 60 && !found; i++) {
      found = await sidecar(source);
      if (!found) await new Promise((r) => setTimeout(r, 500));
    }
    // One more visibility period, so a redelivery (there must be none) would be seen.
    await new Promise((r) => setTimeout(r, 2_000));
    await runner.stop();

    // Assess: one delivery, a terminal quarantine with its reason, nothing stored, nothing left.
    expect(found?.reasons[0]).toMatch(/^too_large_for_budget: processing ran out of its time budget/);
    expect(deliveries).toHaveLength(1);
    expect(runner.stats.deleted).toBe(1);
    expect((await completed([source])).size).toBe(0);
    expect(await deadLettered(queue)).toBe(0);
    expect(await queueDepth(sqs, queue.url)).toBe(0);
  }, 60_000);
});
