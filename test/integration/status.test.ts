import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { routerCheck } from '../../bin/commands/router';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { checkPipeline } from '../../lambdas/platform/status-checks';
import type { RouterFigures } from '../../lambdas/realtime-router/figures';
import { RouterService } from '../../lambdas/realtime-router/service';
import { applyLocalDefaults } from '../../localstack/env';
import { startFeed } from '../../localstack/feed/server';
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

  it('shows the real-time router per channel when one runs, and skips it when none does', async () => {
    const now = Date.now();
    const feed = await startFeed({
      profile: {
        ohlcvSymbols: 10,
        tickSymbols: 5,
        fmvSymbols: 3,
        eventsPerMinute: 1_200,
        frameSize: 10,
        barFrameSize: 10,
        seed: 3,
      },
      speed: 60,
      startAt: now - (now % 60_000),
      faults: { duplicateEvery: 5 },
    });
    const service = new RouterService({
      provider: {
        wsUrl: feed.wsUrl,
        restUrl: feed.restUrl,
        apiKey: 'local-key',
        subscriptions: 'T.*,Q.*,AM.*,FMV.*',
      },
    });
    await service.start();
    try {
      const deadline = Date.now() + 30_000;
      while (service.router.stats.ohlcv.delivered === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const base = {
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
      const running = await checkPipeline({ ...base, router: () => routerCheck(service.port) });
      const router = running.components.find((c) => c.component === 'router');
      expect(router?.healthy).toBe(true);
      const f = router?.detail as unknown as RouterFigures;
      expect(f.channels.map((c) => c.channel)).toEqual(['tick', 'event', 'fmv', 'ohlcv']);
      const tick = f.channels[0] as RouterFigures['channels'][number];
      expect(tick.received).toBeGreaterThan(0);
      expect(tick.duplicates).toBeGreaterThan(0);
      expect(tick.received).toBeLessThanOrEqual(service.router.stats.tick.received);
      expect(tick.lastEventAgeMs).not.toBeNull();
      expect(f.provider.state).toBe('streaming');
      expect(running.healthy).toBe(true);

      // Nothing listens on port 1: no router, which the local stage does not need.
      const none = await checkPipeline({ ...base, router: () => routerCheck(1) });
      expect(none.components.find((c) => c.component === 'router')?.skipped).toBe(true);
      expect(none.healthy).toBe(true);
    } finally {
      await service.stop(5_000);
      await feed.close();
    }
  });
});
