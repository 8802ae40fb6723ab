import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { checkPipeline } from '../../lambdas/platform/status-checks';
import { localQueueUrls } from '../../localstack/resources';

export const summary =
  'status: the pipeline health report (same checks as the status Lambda) for the local stage';

export async function run(_args: string[] = []): Promise<number> {
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 1 });
  const redis = createRedisClient({ url: process.env.REDIS_URL as string });
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  try {
    // Unreachable queues leave the map empty; the S3 and SQS checks then report the outage.
    const queues = await localQueueUrls(sqs).catch(() => ({}));
    const report = await checkPipeline({
      stage: process.env.STAGE ?? 'local',
      pool: async () => pool,
      redis: async () => {
        if (!redis.isOpen) await redis.connect();
        return redis;
      },
      s3,
      bucket: process.env.DATA_BUCKET as string,
      sqs,
      queues,
    });
    console.log(JSON.stringify(report, null, 2));
    return report.healthy ? 0 : 1;
  } finally {
    await pool.end();
    if (redis.isOpen) await redis.close();
    s3.destroy();
    sqs.destroy();
  }
}
