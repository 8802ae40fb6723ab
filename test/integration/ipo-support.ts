/**
 * Shared set-up of the IPO scan / backfill integration tests on the local stage: the local market
 * API in-process, a fresh PostgreSQL schema, an event-bus namespace, a uniquely named SQS queue
 * (+ DLQ) for backfill jobs and the REAL backfill handler module behind the local event-source runner.
 */
import { randomBytes } from 'node:crypto';
import { DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { PolygonProvider } from '../../lambdas/market/provider';
import { upsertBars } from '../../lambdas/market/sql/bars';
import type { SymbolRecord } from '../../lambdas/market/types';
import {
  ALL_CHANNELS,
  type Channel,
  type DeliveredEvent,
  EventBus,
  StreamConsumer,
} from '../../lambdas/platform/event-bus';
import type { OutboxTransport } from '../../lambdas/platform/outbox';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';
import { applyLocalDefaults } from '../../localstack/env';
import { type MarketApi, type MarketApiOptions, startMarketApi } from '../../localstack/market-api/server';
import { queueDepth as depthOf, ensureQueue, type LocalQueue } from '../../localstack/resources';
import { EventSourceRunner, type SqsHandler } from '../../localstack/runner';
import { upsertSymbols } from '../../localstack/scenarios/load';
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from '../support/db';

applyLocalDefaults();

export interface IpoStage {
  readonly api: MarketApi;
  readonly db: TestSchema;
  readonly redis: RedisClient;
  readonly bus: EventBus;
  readonly namespace: string;
  readonly sqs: SQSClient;
  readonly queue: LocalQueue;
  readonly transport: OutboxTransport;
  readonly provider: PolygonProvider;
  /** The app: its consumer group exists from the start, but it reads only when told to. */
  readonly app: StreamConsumer;
  readonly received: DeliveredEvent[];
  startBackfillRunner(): Promise<EventSourceRunner>;
  queueDepth(url?: string): Promise<number>;
  close(): Promise<void>;
}

export interface IpoStageOptions {
  readonly label: string;
  readonly market: MarketApiOptions;
  /** Provider retries (the handler reads MARKET_API_MAX_RETRIES). */
  readonly maxRetries?: number;
  readonly visibilityTimeoutSeconds?: number;
  readonly maxReceiveCount?: number;
}

export async function startIpoStage(options: IpoStageOptions): Promise<IpoStage> {
  const suffix = randomBytes(3).toString('hex');
  const api = await startMarketApi({ port: 0, ...options.market });
  const db = await createTestSchema(options.label);
  const redis = createRedisClient({ url: process.env.REDIS_URL as string });
  await redis.connect();
  const namespace = `test_${options.label}_${suffix}`;
  const bus = new EventBus({ client: redis, service: 'ipo_scan', namespace });
  const sqs = new SQSClient({});
  const queue = await ensureQueue(
    sqs,
    {
      id: `${options.label}-backfill-${suffix}`.replace(/_/g, '-'),
      maxReceiveCount: options.maxReceiveCount ?? 5,
      timeoutSeconds: 30,
    },
    options.visibilityTimeoutSeconds ?? 3,
  );
  const transport = outboxTransport({
    bus,
    redis,
    sqs,
    queueUrl: async (q) => {
      if (q !== 'Backfill') throw new Error(`unexpected queue ${q}`);
      return queue.url;
    },
  });
  const provider = new PolygonProvider({
    baseUrl: api.url,
    apiKey: async () => 'integration-test-key',
    baseBackoffMs: 50,
    maxBackoffMs: 200,
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
  });
  const appClient = createRedisClient({ url: process.env.REDIS_URL as string });
  await appClient.connect();
  const received: DeliveredEvent[] = [];
  const app = new StreamConsumer({
    client: appClient,
    group: 'app',
    consumer: 'app-1',
    namespace,
    channels: ALL_CHANNELS,
    blockMs: 200,
    handler: (e) => {
      received.push(e);
    },
  });
  // The group exists before anything is published (the app was deployed, then went offline).
  await app.ensureGroups();

  // The real handler module reads its environment at import (cold start), like Lambda.
  Object.assign(process.env, {
    DATABASE_URL: TEST_DATABASE_URL,
    PG_SCHEMA: db.schema,
    MARKET_API_BASE_URL: api.url,
    POLYGON_API_KEY: 'integration-test-key',
    MARKET_API_CALLS_PER_MINUTE: '60000',
    EVENT_BUS_NAMESPACE: namespace,
    LOG_LEVEL: 'WARN',
    ...(options.maxRetries === undefined ? {} : { MARKET_API_MAX_RETRIES: String(options.maxRetries) }),
  });
  const runners: EventSourceRunner[] = [];

  async function queueDepth(url: string = queue.url): Promise<number> {
    return depthOf(sqs, url);
  }

  return {
    api,
    db,
    redis,
    bus,
    namespace,
    sqs,
    queue,
    transport,
    provider,
    app,
    received,
    queueDepth,
    async startBackfillRunner() {
      const module = (await import('../../lambdas/backfill/handler')) as { handler: SqsHandler };
      const runner = new EventSourceRunner({
        sqs,
        queueUrl: queue.url,
        queueArn: queue.arn,
        functionName: 'Backfill',
        handler: module.handler,
        batchSize: 5,
        maxBatchingWindowSeconds: 0,
        timeoutSeconds: 30,
        waitTimeSeconds: 1,
        concurrency: 2,
      });
      runner.start();
      runners.push(runner);
      return runner;
    },
    async close() {
      await Promise.allSettled(runners.map((r) => r.stop()));
      const { closeShared } = await import('../../lambdas/platform/connections');
      await closeShared();
      const keys = await redis.keys(`${namespace}:*`);
      if (keys.length > 0) await redis.del(keys);
      await Promise.allSettled([redis.close(), appClient.close()]);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.url })).catch(() => undefined);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.deadLetterUrl })).catch(() => undefined);
      sqs.destroy();
      await api.close();
      await db.drop();
    },
  };
}

/** Seeds the symbol master as it stood before the scanned date (the scenario's base universe). */
export async function seedSymbols(
  pool: pg.Pool,
  records: readonly SymbolRecord[],
  firstSeen: string,
): Promise<void> {
  await pool.query(
    `INSERT INTO symbols (symbol, name, type, primary_exchange, market_cap, list_date, sector, sic_code,
                          issuer, underlying_index, first_seen, initial_load_date)
     SELECT r.symbol, r.name, r.type, r.primary_exchange, r.market_cap, r.list_date, r.sector, r.sic_code,
            r.issuer, r.underlying_index, $2::date, $2::date
     FROM jsonb_to_recordset($1::jsonb) AS r (symbol text, name text, type text, primary_exchange text,
       market_cap numeric, list_date date, sector text, sic_code text, issuer text, underlying_index text)`,
    [
      JSON.stringify(
        records.map((r) => ({
          symbol: r.symbol,
          name: r.name,
          type: r.type,
          primary_exchange: r.primaryExchange,
          market_cap: r.marketCap,
          list_date: r.listDate,
          sector: r.sector,
          sic_code: r.sicCode,
          issuer: r.issuer,
          underlying_index: r.underlyingIndex,
        })),
      ),
      firstSeen,
    ],
  );
}

/** Polls `check` until it returns true or the bounded number of rounds is used up. */
export async function waitUntil(
  check: () => Promise<boolean>,
  rounds = 120,
  intervalMs = 500,
): Promise<boolean> {
  for (let i = 0; i < rounds; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/** Every entry of every stream of the namespace, by channel. */
export async function streamEntries(redis: RedisClient, bus: EventBus): Promise<Map<Channel, string[]>> {
  const out = new Map<Channel, string[]>();
  for (const channel of ALL_CHANNELS) {
    const reply = (await redis.sendCommand(['XRANGE', bus.streamKey(channel), '-', '+'])) as unknown[];
    const ids = reply.map((entry) => {
      const fields = (entry as [string, string[]])[1];
      const envelope = fields[fields.indexOf('envelope') + 1] ?? '{}';
      return (JSON.parse(envelope) as { message_id: string }).message_id;
    });
    if (ids.length > 0) out.set(channel, ids);
  }
  return out;
}

/**
 * The EOD chain's `transportFor` on this stage: each service publishes under its own name on the
 * stage's namespace, through the outbox transport to the stage's queue.
 */
export function stageTransportFor(
  stage: IpoStage,
): (service: string) => { bus: EventBus; transport: OutboxTransport } {
  return (service) => {
    const bus = new EventBus({ client: stage.redis, service, namespace: stage.namespace });
    return {
      bus,
      transport: outboxTransport({
        bus,
        redis: stage.redis,
        sqs: stage.sqs,
        queueUrl: async () => stage.queue.url,
      }),
    };
  };
}

/** The market as the stage's database knows it on the evening of `eve`: the symbol master and the bars since `from`. */
export async function loadMarketUntil(stage: IpoStage, from: string, eve: string): Promise<void> {
  await upsertSymbols(stage.db.pool, stage.api.market.activeOn(eve), { start: '2025-01-02', end: eve });
  await upsertBars(stage.db.pool, [...stage.api.market.groupedBarsRange(from, eve).values()].flat());
}
