/**
 * The equity-types processing queue on the local stage: the local market API in-process, a fresh
 * PostgreSQL schema, a uniquely named SQS queue (+ DLQ), the real dispatcher sending with
 * DelaySeconds and the REAL EquityProcessing handler module behind the local event-source runner.
 */
import { randomBytes } from 'node:crypto';
import { DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tradingDays } from '../../lambdas/market/calendar';
import { dispatchEquityBatches } from '../../lambdas/market/equity-processing/dispatch';
import { refreshWindow } from '../../lambdas/market/equity-processing/message';
import { equityQueueStatus } from '../../lambdas/market/equity-processing/status';
import {
  getEquityProcessingConfig,
  queueSymbolsForProcessing,
} from '../../lambdas/market/sql/processing-queue';
import { sqsBatchSender } from '../../lambdas/platform/sqs-batch-sender';
import { applyLocalDefaults } from '../../localstack/env';
import { type MarketApi, startMarketApi } from '../../localstack/market-api/server';
import { ensureQueue, type LocalQueue } from '../../localstack/resources';
import { EventSourceRunner, type SqsHandler } from '../../localstack/runner';
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from '../support/db';
import { waitUntil } from './ipo-support';

applyLocalDefaults();

const D = '2025-06-16';

let api: MarketApi;
let db: TestSchema;
let sqs: SQSClient;
let queue: LocalQueue;
const runners: EventSourceRunner[] = [];

async function queueDepth(url: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible) +
    Number(Attributes?.ApproximateNumberOfMessagesDelayed)
  );
}

async function startRunner(): Promise<EventSourceRunner> {
  const module = (await import('../../lambdas/equity-processing/handler')) as { handler: SqsHandler };
  const runner = new EventSourceRunner({
    sqs,
    queueUrl: queue.url,
    queueArn: queue.arn,
    functionName: 'EquityProcessing',
    handler: module.handler,
    batchSize: 1,
    maxBatchingWindowSeconds: 0,
    timeoutSeconds: 30,
    waitTimeSeconds: 1,
    concurrency: 2,
  });
  runner.start();
  runners.push(runner);
  return runner;
}

async function statuses(type: string): Promise<Map<string, { status: string; attempts: number }>> {
  const { rows } = await db.pool.query<{ symbol: string; status: string; attempts: number }>(
    'SELECT symbol, status, attempts FROM equity_processing_queue WHERE type = $1',
    [type],
  );
  return new Map(rows.map((r) => [r.symbol, { status: r.status, attempts: r.attempts }]));
}

async function barCounts(symbols: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.pool.query<{ symbol: string; n: number; distinct_dates: number }>(
    `SELECT symbol, count(*)::integer AS n, count(DISTINCT date)::integer AS distinct_dates
     FROM ohlcv_daily WHERE symbol = ANY ($1::text[]) GROUP BY symbol`,
    [symbols],
  );
  for (const r of rows) expect(r.n).toBe(r.distinct_dates);
  return new Map(rows.map((r) => [r.symbol, r.n]));
}

const sender = () => sqsBatchSender(sqs, async () => queue.url);

beforeAll(async () => {
  const suffix = randomBytes(3).toString('hex');
  api = await startMarketApi({ port: 0, seed: 'equity-queue-it', size: 600 });
  db = await createTestSchema('equity_queue');
  sqs = new SQSClient({});
  queue = await ensureQueue(
    sqs,
    { id: `equity-processing-${suffix}`, maxReceiveCount: 10, timeoutSeconds: 30 },
    2,
  );
  // Small batches and 1-2 s rate limits so a few symbols make several spaced batches in seconds.
  await db.pool.query(
    `UPDATE equity_types SET batch_size = v.batch, rate_limit_ms = v.rate
     FROM (VALUES ('ETF', 4, 1000), ('STOCK_EOD', 5, 1500), ('STOCK_REALTIME', 3, 1000), ('ETN', 4, 1000)) AS v (name, batch, rate)
     WHERE type_name = v.name`,
  );
  // The real handler module reads its environment at import (cold start), like Lambda. One provider
  // retry only, so a stretch of 5xx outlasts the adapter and SQS redelivery has to finish the work.
  Object.assign(process.env, {
    DATABASE_URL: TEST_DATABASE_URL,
    PG_SCHEMA: db.schema,
    MARKET_API_BASE_URL: api.url,
    POLYGON_API_KEY: 'integration-test-key',
    MARKET_API_CALLS_PER_MINUTE: '60000',
    MARKET_API_MAX_RETRIES: '1',
    LOG_LEVEL: 'WARN',
  });
});

afterAll(async () => {
  await Promise.allSettled(runners.map((r) => r.stop()));
  const { closeShared } = await import('../../lambdas/platform/connections');
  await closeShared();
  await sqs?.send(new DeleteQueueCommand({ QueueUrl: queue.url })).catch(() => undefined);
  await sqs?.send(new DeleteQueueCommand({ QueueUrl: queue.deadLetterUrl })).catch(() => undefined);
  sqs?.destroy();
  await api?.close();
  await db?.drop();
});

describe('equity-types processing queue on the local stage', () => {
  it('dispatches two types in priority order, batch size and rate limit; the worker refreshes every symbol once and updates the stats', async () => {
    // Prepare
    const active = api.market.activeOn(D).filter((r) => r.listDate === null || r.listDate < '2025-06-01');
    const etfs = active
      .filter((r) => r.type === 'ETF')
      .slice(0, 10)
      .map((r) => r.symbol);
    const stocks = active
      .filter((r) => r.type === 'CS')
      .slice(0, 12)
      .map((r) => r.symbol);
    expect(etfs).toHaveLength(10);
    expect(stocks).toHaveLength(12);
    const sessions = tradingDays(refreshWindow(D).from, D).length;

    // Act: queue (lower priority first, so priority order is the dispatcher's doing), re-queue, dispatch
    const queuedStocks = await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', stocks);
    const queuedEtfs = await queueSymbolsForProcessing(db.pool, 'ETF', etfs);
    const requeuedPending = await queueSymbolsForProcessing(db.pool, 'ETF', etfs.slice(0, 3));
    const summary = await dispatchEquityBatches(
      { pool: db.pool, sender: sender() },
      { types: ['STOCK_EOD', 'ETF'], asOf: D },
    );
    const requeuedProcessing = await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', stocks);
    const runner = await startRunner();
    const drained = await waitUntil(async () => {
      const all = [...(await statuses('ETF')).values(), ...(await statuses('STOCK_EOD')).values()];
      return (
        all.length === 22 && all.every((s) => s.status === 'completed') && (await queueDepth(queue.url)) === 0
      );
    });
    await runner.stop();

    // Assess: queueing
    expect([queuedStocks, queuedEtfs, requeuedPending, requeuedProcessing]).toEqual([12, 10, 0, 0]);

    // Assess: the plan that was sent
    expect(summary.types.map((t) => t.type)).toEqual(['ETF', 'STOCK_EOD']);
    expect(summary.types.map((t) => t.batches)).toEqual([
      [
        { delaySeconds: 0, symbols: 4 },
        { delaySeconds: 1, symbols: 4 },
        { delaySeconds: 2, symbols: 2 },
      ],
      [
        { delaySeconds: 0, symbols: 5 },
        { delaySeconds: 2, symbols: 5 },
        { delaySeconds: 4, symbols: 2 },
      ],
    ]);
    expect(summary).toMatchObject({ messages: 6, claimed: 22, asOf: D, to: D });

    // Assess: every symbol completed on its one claim, with exactly the window's sessions of bars
    expect(drained).toBe(true);
    for (const type of ['ETF', 'STOCK_EOD']) {
      expect([...(await statuses(type)).values()].every((s) => s.attempts === 1)).toBe(true);
    }
    expect(await barCounts([...etfs, ...stocks])).toEqual(
      new Map([...etfs, ...stocks].map((s) => [s, sessions])),
    );
    expect(runner.stats).toMatchObject({ received: 6, deleted: 6, failed: 0 });

    // Assess: statistics, one run per batch
    const etf = await getEquityProcessingConfig(db.pool, 'ETF');
    const eod = await getEquityProcessingConfig(db.pool, 'STOCK_EOD');
    expect(etf?.stats).toMatchObject({ total_runs: 3, total_processed: 10, total_failed: 0 });
    expect(eod?.stats).toMatchObject({ total_runs: 3, total_processed: 12, total_failed: 0 });
    const status = await equityQueueStatus(db.pool);
    expect(status.find((s) => s.type === 'ETF')?.queue).toEqual({
      pending: 0,
      processing: 0,
      completed: 10,
      failed: 0,
    });

    // Assess: once completed, a symbol can be queued again (tomorrow's run)
    expect(await queueSymbolsForProcessing(db.pool, 'ETF', etfs.slice(0, 2))).toBe(2);
    await db.pool.query(`DELETE FROM equity_processing_queue WHERE type = 'ETF' AND status = 'pending'`);
  });

  it('gets through a stretch of provider 5xx by SQS redelivery, without losing or duplicating a symbol', async () => {
    // Prepare
    const active = api.market.activeOn(D).filter((r) => r.listDate === null || r.listDate < '2025-06-01');
    const stocks = active
      .filter((r) => r.type === 'CS')
      .slice(20, 29)
      .map((r) => r.symbol);
    expect(stocks).toHaveLength(9);
    const sessions = tradingDays(refreshWindow(D).from, D).length;
    expect(await queueSymbolsForProcessing(db.pool, 'STOCK_REALTIME', stocks)).toBe(9);
    const before = api.control({}).faults as { served: { serverErrors: number } };
    api.control({ serverErrors: { next: 10, status: 503 } });

    // Act
    const summary = await dispatchEquityBatches(
      { pool: db.pool, sender: sender() },
      { types: ['STOCK_REALTIME'], asOf: D },
    );
    const runner = await startRunner();
    const drained = await waitUntil(async () => {
      const all = [...(await statuses('STOCK_REALTIME')).values()];
      return all.every((s) => s.status === 'completed') && (await queueDepth(queue.url)) === 0;
    }, 240);
    await runner.stop();

    // Assess: the stretch was served and got in the way
    const after = api.control({}).faults as { served: { serverErrors: number } };
    expect(after.served.serverErrors - before.served.serverErrors).toBe(10);
    expect(runner.stats.failed).toBeGreaterThan(0);
    expect(summary.types[0]?.batches.map((b) => b.symbols)).toEqual([3, 3, 3]);

    // Assess: every symbol completed on its first claim, bars once per session, nothing in the DLQ
    expect(drained).toBe(true);
    const rows = await statuses('STOCK_REALTIME');
    expect([...rows.keys()].sort()).toEqual([...stocks].sort());
    expect([...rows.values()].every((s) => s.status === 'completed' && s.attempts === 1)).toBe(true);
    expect(await barCounts(stocks)).toEqual(new Map(stocks.map((s) => [s, sessions])));
    expect(await queueDepth(queue.deadLetterUrl)).toBe(0);
    const stats = (await getEquityProcessingConfig(db.pool, 'STOCK_REALTIME'))?.stats;
    // Retried symbols are counted once, when they complete; the throttled attempts are not failures.
    expect(stats).toMatchObject({ total_processed: 9, total_failed: 0 });
  });
  it('after a lost dispatch (lease expired), the symbols are claimed again and the old messages cannot complete the new claims', async () => {
    // Prepare: a dispatch whose messages are still on the queue when its leases expire (the
    // dispatcher crashed, or the consumer was down for longer than the lease)
    const active = api.market.activeOn(D).filter((r) => r.listDate === null || r.listDate < '2025-06-01');
    const stocks = active
      .filter((r) => r.type === 'CS')
      .slice(40, 46)
      .map((r) => r.symbol);
    expect(await queueSymbolsForProcessing(db.pool, 'ETN', stocks)).toBe(6);
    const first = await dispatchEquityBatches(
      { pool: db.pool, sender: sender() },
      { types: ['ETN'], asOf: D },
    );
    await db.pool.query(
      `UPDATE equity_processing_queue SET last_attempt = now() - interval '2 hours'
       WHERE type = 'ETN' AND status = 'processing'`,
    );
    const statsBefore = (await getEquityProcessingConfig(db.pool, 'ETN'))?.stats;

    // Act: the next run reclaims the expired leases, then the consumer drains old and new messages
    const second = await dispatchEquityBatches(
      { pool: db.pool, sender: sender() },
      { types: ['ETN'], asOf: D },
    );
    const runner = await startRunner();
    const drained = await waitUntil(async () => {
      const all = [...(await statuses('ETN')).values()];
      return all.every((s) => s.status === 'completed') && (await queueDepth(queue.url)) === 0;
    });
    await runner.stop();

    // Assess: both runs claimed all six; each symbol completed once, on its second claim
    expect([first.claimed, second.claimed]).toEqual([6, 6]);
    expect(drained).toBe(true);
    expect(runner.stats).toMatchObject({ received: 4, deleted: 4, failed: 0 });
    const rows = await statuses('ETN');
    expect([...rows.keys()].sort()).toEqual([...stocks].sort());
    expect([...rows.values()].every((s) => s.status === 'completed' && s.attempts === 2)).toBe(true);
    const stats = (await getEquityProcessingConfig(db.pool, 'ETN'))?.stats;
    expect(statsBefore?.total_processed).toBe(0);
    expect(stats).toMatchObject({ total_processed: 6, total_failed: 0 });
    expect(await barCounts(stocks)).toEqual(
      new Map(stocks.map((s) => [s, tradingDays(refreshWindow(D).from, D).length])),
    );
  });
});
