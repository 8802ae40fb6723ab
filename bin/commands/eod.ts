import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { isTradingDay, latestSession } from '../../lambdas/market/calendar';
import { type EodChainDeps, runEodChain } from '../../lambdas/market/eod/chain';
import { notTradingReason } from '../../lambdas/market/eod/load';
import { providerFromEnv } from '../../lambdas/market/provider';
import { resolveQualityConfig } from '../../lambdas/market/quality';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { DEFAULT_NAMESPACE, EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';

export const summary =
  'eod run [--date YYYY-MM-DD] [--schema S] [--force] [--threshold 0.95] [--namespace NS]: the EOD chain for a session (load -> IPO scan -> quality -> EOD signal -> universe sync)';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      date: { type: 'string' },
      schema: { type: 'string', default: process.env.PG_SCHEMA },
      force: { type: 'boolean', default: false },
      threshold: { type: 'string', default: process.env.EOD_COVERAGE_THRESHOLD },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'run' || positionals.length > 1) {
    console.error(`usage: ${summary}`);
    return 2;
  }
  const tradeDate = values.date ?? latestSession();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(tradeDate)) {
    console.error(`--date must be YYYY-MM-DD, got ${tradeDate}`);
    return 2;
  }
  if (!isTradingDay(tradeDate)) {
    // Weekends and market holidays have no session: nothing to load, signal or sync.
    console.log(`eod ${tradeDate}: skipped, ${notTradingReason(tradeDate)}`);
    return 0;
  }
  const threshold = values.threshold ? Number(values.threshold) : undefined;
  const url = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!url || !redisUrl) throw new Error('DATABASE_URL and REDIS_URL must be set');
  const pool = createPool({
    connectionString: localComponentUrl(url, 'market'),
    schema: values.schema,
    max: 4,
  });
  const redis = createRedisClient({ url: redisUrl });
  const sqs = new SQSClient({});
  try {
    await redis.connect();
    const transportFor = (service: string) => {
      const bus = new EventBus({ client: redis, service, namespace: values.namespace });
      return { bus, transport: outboxTransport({ bus, redis, sqs, queueUrl: (q) => queueUrl(sqs, q) }) };
    };
    const deps: EodChainDeps = {
      pool,
      provider: providerFromEnv(),
      transportFor,
      qualityConfig: resolveQualityConfig(
        process.env.QUALITY_CONFIG ? JSON.parse(process.env.QUALITY_CONFIG) : {},
      ),
      log: (line) => console.log(line),
    };
    const result = await runEodChain(deps, {
      tradeDate,
      force: values.force,
      ...(threshold !== undefined ? { threshold } : {}),
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
    return result.ok ? 0 : 1;
  } finally {
    sqs.destroy();
    await Promise.allSettled([pool.end(), redis.close()]);
  }
}
