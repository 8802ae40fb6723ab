import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { previousTradingDay, todayInNewYork } from '../../lambdas/market/calendar';
import { providerFromEnv } from '../../lambdas/market/provider';
import { QUALITY_SERVICE, resolveQualityConfig, runQualityCheck } from '../../lambdas/market/quality';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';

export const summary =
  'quality-check [--date YYYY-MM-DD] [--schema S] [--config JSON] [--namespace NS]: run the daily data-quality check for a session';

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      date: { type: 'string' },
      schema: { type: 'string', default: process.env.PG_SCHEMA },
      config: { type: 'string', default: process.env.QUALITY_CONFIG },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE },
    },
  });
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error('REDIS_URL is not set');
  const tradeDate = values.date ?? previousTradingDay(todayInNewYork());
  const config = resolveQualityConfig(values.config ? JSON.parse(values.config) : {});
  const pool = createPool({
    connectionString: localComponentUrl(url, 'market'),
    schema: values.schema,
    max: 3,
  });
  const redis = createRedisClient({ url: redisUrl });
  try {
    await redis.connect();
    const bus = new EventBus({
      client: redis,
      service: QUALITY_SERVICE,
      ...(values.namespace ? { namespace: values.namespace } : {}),
    });
    const sqs = new SQSClient({});
    const transport = outboxTransport({ bus, redis, sqs, queueUrl: (q) => queueUrl(sqs, q) });
    const result = await runQualityCheck({ pool, transport, provider: providerFromEnv(), config }, tradeDate);
    console.log(JSON.stringify(result, null, 2));
    return 0;
  } finally {
    await Promise.allSettled([pool.end(), redis.close()]);
  }
}
