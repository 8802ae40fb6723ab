import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { checkPipeline } from '../../lambdas/platform/status-checks';
import { applyLocalDefaults } from '../../localstack/env';
import { localQueueUrls } from '../../localstack/resources';

applyLocalDefaults();

describe('pipeline status on the local stage', () => {
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 1 });
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const redis = createRedisClient({ url: process.env.REDIS_URL as string });
  // Nothing listens on port 1: a Redis that is down.
  const deadRedis = createRedisClient({ url: 'redis://127.0.0.1:1', maxReconnectDelayMs: 100 });

  afterAll(async () => {
    await pool.end();
    if (redis.isOpen) await redis.close();
    deadRedis.destroy();
    s3.destroy();
    sqs.destroy();
  });

  it('reports PostgreSQL, Redis, S3 and every queue healthy, and ElastiCache as not applicable', async () => {
    // Prepare
    const deps = {
      stage: 'test',
      pool: async () => pool,
      redis: async () => {
        if (!redis.isOpen) await redis.connect();
        return redis;
      },
      s3,
      bucket: process.env.DATA_BUCKET as string,
      sqs,
      queues: await localQueueUrls(sqs),
    };

    // Act
    const report = await checkPipeline(deps);

    // Assess
    expect(report.healthy).toBe(true);
    const byName = Object.fromEntries(report.components.map((c) => [c.component, c]));
    for (const name of ['postgres', 'redis', 's3', 'sqs'] as const) expect(byName[name]?.healthy).toBe(true);
    expect(byName.elasticache?.skipped).toBe(true);
    expect(byName.postgres?.detail.migrationsApplied).toBeGreaterThan(0);
    expect(Object.keys(byName.sqs?.detail.queues as object).sort()).toEqual(Object.keys(deps.queues).sort());
  });

  it('reports a dependency that is down as unhealthy with its error, without failing the others', async () => {
    const report = await checkPipeline({
      stage: 'test',
      pool: async () => pool,
      redis: async () => {
        await deadRedis.connect();
        return deadRedis;
      },
      s3,
      bucket: process.env.DATA_BUCKET as string,
      sqs,
      queues: await localQueueUrls(sqs),
      timeoutMs: 2_000,
    });

    expect(report.healthy).toBe(false);
    const redisStatus = report.components.find((c) => c.component === 'redis');
    expect(redisStatus?.healthy).toBe(false);
    expect(redisStatus?.error).toMatch(/ECONNREFUSED|no answer within/);
    expect(report.components.filter((c) => c.component !== 'redis').every((c) => c.healthy)).toBe(true);
  });
});
