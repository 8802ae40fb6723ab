/**
 * Minute bars from the live router to PostgreSQL on the local stage: the router's own provider feed,
 * the router service with its SQS bar sink, a LocalStack queue with the topology's redrive policy,
 * the local event-source runner invoking the real RouterBars handler, and the real PostgreSQL (the
 * handler connects as tickstock_router_login).
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MinuteBarMessage, minuteBarMessage } from '../../lambdas/market/realtime/minute-bar-message';
import { barQueueSink } from '../../lambdas/realtime-router/egress';
import { RouterService } from '../../lambdas/realtime-router/service';
import { REALTIME_CONSUMERS } from '../../lib/topology/realtime';
import { applyLocalDefaults } from '../../localstack/env';
import { startFeed } from '../../localstack/feed/server';
import { ensureQueue, type LocalQueue, queueDepth } from '../../localstack/resources';
import { EventSourceRunner, type SqsHandler } from '../../localstack/runner';

applyLocalDefaults();

const PROFILE = {
  ohlcvSymbols: 40,
  tickSymbols: 8,
  fmvSymbols: 4,
  eventsPerMinute: 600,
  frameSize: 10,
  barFrameSize: 7,
  seed: 12,
};

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('router minute bars: feed -> router -> SQS -> RouterBars handler -> PostgreSQL', () => {
  const sqs = new SQSClient({});
  const definition = REALTIME_CONSUMERS.find((c) => c.id === 'RouterBars');
  if (!definition) throw new Error('RouterBars is not in the topology');
  const consumer = { ...definition, id: `router-bars-${randomBytes(3).toString('hex')}` };
  const db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  let queue: LocalQueue;
  let runner: EventSourceRunner;

  beforeAll(async () => {
    // The topology's redrive policy (maxReceiveCount) with a 2 s visibility timeout for a short test.
    queue = await ensureQueue(sqs, consumer, 2);
    const { handler } = (await import('../../lambdas/router-bars/handler')) as { handler: SqsHandler };
    runner = new EventSourceRunner({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      functionName: consumer.id,
      handler,
      batchSize: consumer.batchSize,
      maxBatchingWindowSeconds: consumer.maxBatchingWindowSeconds,
      timeoutSeconds: consumer.timeoutSeconds,
      concurrency: 2,
      waitTimeSeconds: 1,
    });
    runner.start();
  });
  afterAll(async () => {
    await runner?.stop();
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.url })).catch(() => undefined);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.deadLetterUrl })).catch(() => undefined);
    sqs.destroy();
    await db.end();
  });

  it('stores every delivered bar once, applies a correction, and dead-letters poison messages without blocking the others', async () => {
    const now = Date.now();
    const startAt = now - (now % 60_000);
    await db.query(
      `DELETE FROM realtime_minute_bars WHERE symbol LIKE 'S%' AND bar_start >= to_timestamp($1 / 1000.0)`,
      [startAt],
    );
    const feed = await startFeed({ profile: PROFILE, speed: 60, startAt });
    const service = new RouterService({
      provider: {
        wsUrl: feed.wsUrl,
        restUrl: feed.restUrl,
        apiKey: 'local-key',
        subscriptions: 'T.*,Q.*,AM.*,FMV.*',
      },
      bars: barQueueSink(sqs, async () => queue.url),
    });
    const published: MinuteBarMessage[] = [];
    service.router.tap((m) => {
      const bar = minuteBarMessage(m, 0);
      if (bar) published.push(bar);
    });
    await service.start();
    try {
      // Poison between the bars: not JSON, and a bar that is impossible (high below the close).
      const poison = ['not a bar', JSON.stringify({ ...fakeBar(), h: 1, c: 5 })];
      await until('two minutes of bars', () => published.length >= PROFILE.ohlcvSymbols * 2);
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: poison.map((body, k) => ({ Id: String(k), MessageBody: body })),
        }),
      );
      // A correction of one delivered bar, through the router (same key, other close and high).
      const original = published[0] as MinuteBarMessage;
      service.router.ingest('rest', Date.now(), [
        {
          ev: 'AM',
          sym: original.sym,
          s: original.s,
          e: original.e,
          o: original.o,
          h: original.h + 1,
          l: original.l,
          c: original.h + 1,
          v: original.v + 10,
        },
      ]);
      await until('the correction published', () => published.some((b) => b.correction));
    } finally {
      const { drained } = await service.stop(10_000);
      expect(drained).toBe(true);
      await feed.close();
    }
    expect(service.health().egress.bars?.dropped).toBe(0);

    // Every published bar version reaches the table; the newest version of each key is what is stored.
    const newest = new Map<string, MinuteBarMessage>();
    for (const b of published) newest.set(`${b.sym}|${b.s}`, b);
    const rowsFor = async () =>
      (
        await db.query<{
          symbol: string;
          s: string;
          close: number;
          high: number;
          volume: number;
          correction: boolean;
          revisions: number;
        }>(
          `SELECT symbol, (extract(epoch FROM bar_start) * 1000)::bigint::text AS s, close, high, volume, correction, revisions
           FROM realtime_minute_bars WHERE router_epoch = $1`,
          [service.router.hub.epoch],
        )
      ).rows;
    await until(
      'every bar stored',
      async () => (await rowsFor()).length === newest.size && (await rowsFor()).some((r) => r.correction),
    );
    await until(
      'the poison dead-lettered and the queue empty',
      async () =>
        runner.stats.failed >= 2 * consumer.maxReceiveCount && (await queueDepth(sqs, queue.url)) === 0,
    );

    // A late redelivery of an original (older version) after its correction changes nothing.
    const corrected = [...newest.values()].find((b) => b.correction) as MinuteBarMessage;
    const deletedBefore = runner.stats.deleted;
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          {
            Id: 'stale',
            MessageBody: JSON.stringify({
              ...corrected,
              c: corrected.o,
              h: corrected.o + 1,
              correction: false,
              publishedAt: 1,
            }),
          },
        ],
      }),
    );
    await until('the stale version consumed', () => runner.stats.deleted > deletedBefore);

    const rows = await rowsFor();
    expect(rows).toHaveLength(newest.size);
    for (const r of rows) {
      const b = newest.get(`${r.symbol}|${r.s}`);
      expect(b, `${r.symbol} ${r.s}`).toBeDefined();
      expect([r.close, r.high, r.volume, r.correction]).toEqual([b?.c, b?.h, b?.v, b?.correction]);
      expect(r.revisions).toBe(b?.correction ? 1 : 0);
    }
    expect(rows.filter((r) => r.correction)).toHaveLength(1);
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.deadLetterUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
      }),
    );
    expect((Messages ?? []).map((m) => m.Body).sort()).toEqual(
      ['not a bar', JSON.stringify({ ...fakeBar(), h: 1, c: 5 })].sort(),
    );
    // The valid messages each went through once or were redelivered only with a failing poison batch.
    expect(runner.stats.handlerErrors).toBe(0);
  });
});

function fakeBar(): MinuteBarMessage {
  return {
    sym: 'ZZPOISON',
    s: 60_000,
    e: 120_000,
    o: 2,
    h: 3,
    l: 1,
    c: 2,
    v: 10,
    correction: false,
    epoch: 'x',
    offset: 1,
    publishedAt: 1,
  };
}
