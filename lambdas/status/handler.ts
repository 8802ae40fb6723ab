import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { z } from 'zod';
import { s3, sqs } from '../platform/aws';
import { databaseEnv, readConfig, redisEnv } from '../platform/config';
import { sharedPool, sharedRedis } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { checkPipeline, type StatusReport } from '../platform/status-checks';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({
  ...databaseEnv,
  ...redisEnv,
  STAGE: z.string(),
  DATA_BUCKET: z.string(),
  QUEUE_URLS: z.string().transform((s, ctx) => {
    try {
      return z.record(z.string(), z.string()).parse(JSON.parse(s));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'QUEUE_URLS must be a JSON object of name -> queue URL' });
      return z.NEVER;
    }
  }),
  REDIS_REPLICATION_GROUP_ID: z.string().optional(),
});
const elastiCache = config.REDIS_REPLICATION_GROUP_ID
  ? { client: new ElastiCacheClient({}), replicationGroupId: config.REDIS_REPLICATION_GROUP_ID }
  : undefined;

/** Invoked on a schedule (compute stack StatusSchedule) and on demand: one JSON report of every dependency's health. */
async function run(): Promise<StatusReport> {
  const report = await checkPipeline({
    stage: config.STAGE,
    pool: () => sharedPool(config, 'app'),
    redis: () => sharedRedis(config),
    s3,
    bucket: config.DATA_BUCKET,
    sqs,
    queues: config.QUEUE_URLS,
    elastiCache,
  });
  // Read by the compute stack's StatusUnhealthyAlarm (the check runs on a schedule).
  metrics.addMetric(
    'UnhealthyComponents',
    MetricUnit.Count,
    report.components.filter((c) => !c.healthy).length,
  );
  if (report.healthy) logger.info('pipeline healthy');
  else logger.error('pipeline unhealthy', { unhealthy: report.components.filter((c) => !c.healthy) });
  return report;
}

export const handler = withTelemetry('status', run);
