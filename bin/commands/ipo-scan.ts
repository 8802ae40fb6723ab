import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { latestSession } from '../../lambdas/market/calendar';
import { runIpoScan } from '../../lambdas/market/ipo/scan';
import { providerFromEnv } from '../../lambdas/market/provider';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { DEFAULT_NAMESPACE, EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';

export const summary =
  'ipo-scan [--date YYYY-MM-DD] [--max-new N]: find new listings and delistings for a date, enqueue backfills, publish to the app';

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      date: { type: 'string' },
      'max-new': { type: 'string' },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
    },
  });
  const date = values.date ?? latestSession();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    console.error(`--date must be YYYY-MM-DD, got ${date}`);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!url || !redisUrl) throw new Error('DATABASE_URL and REDIS_URL must be set');
  const pool = createPool({
    connectionString: localComponentUrl(url, 'market'),
    schema: process.env.PG_SCHEMA,
  });
  const redis = createRedisClient({ url: redisUrl });
  await redis.connect();
  const sqs = new SQSClient({});
  try {
    const bus = new EventBus({ client: redis, service: 'ipo_scan', namespace: values.namespace });
    const transport = outboxTransport({ bus, redis, sqs, queueUrl: (q) => queueUrl(sqs, q) });
    const result = await runIpoScan(
      { pool, provider: providerFromEnv(), transport },
      { date, ...(values['max-new'] ? { maxNew: Number(values['max-new']) } : {}) },
    );
    console.log(JSON.stringify(result, null, 2));
    return result.relay.failed > 0 ? 1 : 0;
  } finally {
    sqs.destroy();
    await redis.close();
    await pool.end();
  }
}
