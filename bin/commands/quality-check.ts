import { parseArgs } from 'node:util';
import { previousTradingDay, todayInNewYork } from '../../lambdas/market/calendar';
import { providerFromEnv } from '../../lambdas/market/provider';
import { resolveQualityConfig, runQualityCheck } from '../../lambdas/market/quality';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { EventBus } from '../../lambdas/platform/event-bus';
import { createPool } from '../../lambdas/platform/postgres';
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
      service: 'data-quality-monitor',
      ...(values.namespace ? { namespace: values.namespace } : {}),
    });
    const result = await runQualityCheck({ pool, bus, provider: providerFromEnv(), config }, tradeDate);
    console.log(JSON.stringify(result, null, 2));
    return 0;
  } finally {
    await Promise.allSettled([pool.end(), redis.close()]);
  }
}
