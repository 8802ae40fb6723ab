import { SQSClient } from '@aws-sdk/client-sqs';
import { previousTradingDay, todayInNewYork } from '../../lambdas/market/calendar';
import { providerFromEnv } from '../../lambdas/market/provider';
import {
  QUALITY_SERVICE,
  type QualitySummary,
  resolveQualityConfig,
  runQualityCheck,
} from '../../lambdas/market/quality';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';
import { EXIT, marketSchema, parseCommandArgs, parseDate, UsageError } from '../../lib/cli/args';
import { emit, keyValues, table } from '../../lib/cli/output';

export const summary =
  'quality-check [--date YYYY-MM-DD] [--schema S] [--config JSON] [--namespace NS] [--json]: run the daily data-quality check for a session';

const USAGE = `usage: npm run pipeline -- ${summary}`;

function print(q: QualitySummary): void {
  if (q.status === 'skipped') {
    console.log(`quality ${q.tradeDate}: skipped, ${q.reason ?? ''}`);
    return;
  }
  console.log(
    keyValues([
      ['trade date', q.tradeDate],
      ['symbols checked', q.symbolsChecked],
      ['completeness', `${q.completenessPct} %`],
      ['quality score', q.qualityScore],
      [
        'alerts',
        `${q.totalAlerts} on ${q.symbolsWithAlerts} symbols (${q.inserted} new, ${q.updated} updated, ${q.unchanged} unchanged)`,
      ],
      ['resolved', `${q.resolved.stale} stale, ${q.resolved.completeness} completeness`],
      ['splits reported', q.splitsReported],
      ['messages published', q.published],
      ['took', `${q.seconds.toFixed(2)} s`],
    ]),
  );
  const kinds = Object.entries(q.kindCounts).sort(([a], [b]) => a.localeCompare(b));
  if (kinds.length > 0) console.log(`\n${table(['alert kind', 'alerts'], kinds, { indent: 2 })}`);
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    options: {
      date: { type: 'string' },
      schema: { type: 'string' },
      config: { type: 'string', default: process.env.QUALITY_CONFIG },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE },
    },
    usage: USAGE,
  });
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error('REDIS_URL is not set');
  const tradeDate =
    values.date === undefined ? previousTradingDay(todayInNewYork()) : parseDate('--date', values.date);
  let partial: unknown = {};
  try {
    partial = values.config ? JSON.parse(values.config) : {};
  } catch {
    throw new UsageError(
      `--config is not JSON: give a partial quality config, e.g. '{"staleDays":5}'`,
      USAGE,
    );
  }
  const config = resolveQualityConfig(partial as Parameters<typeof resolveQualityConfig>[0]);
  const { schema, line } = marketSchema(values.schema);
  if (!values.json) console.log(line);
  const pool = createPool({ connectionString: localComponentUrl(url, 'market'), schema, max: 3 });
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
    emit(values.json, { schema, ...result }, print);
    return EXIT.ok;
  } finally {
    await Promise.allSettled([pool.end(), redis.close()]);
  }
}
