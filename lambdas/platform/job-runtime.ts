/**
 * What the market job handlers share per container: validated environment, the PostgreSQL pool,
 * the Redis connection, the event bus and the outbox transport. Created once, reused by later
 * invocations; a missing variable fails the cold start (readConfig).
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { z } from 'zod';
import { databaseEnv, readConfig, redisEnv } from './config';
import { sharedPool, sharedRedis } from './connections';
import { DEFAULT_MAX_LEN, DEFAULT_NAMESPACE, EventBus } from './event-bus';
import type { OutboxTransport } from './outbox';
import { outboxTransport } from './outbox-transport';
import { queueUrl } from './queues';
import type { RedisClient } from './redis';

export const jobEnv = {
  ...databaseEnv,
  ...redisEnv,
  /** Stream key prefix of the event bus (tests and shared Redis servers use their own). */
  EVENT_BUS_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9_:-]+$/)
    .default(DEFAULT_NAMESPACE),
  /** Length cap of each event stream, sized per stage by its retention window (lib/config.ts). */
  EVENT_BUS_MAX_LEN: z.coerce.number().int().positive().default(DEFAULT_MAX_LEN),
};

export type JobConfig = z.infer<z.ZodObject<typeof jobEnv>>;

export function readJobConfig<S extends z.ZodRawShape>(
  extra: S,
  env: NodeJS.ProcessEnv = process.env,
): JobConfig & z.infer<z.ZodObject<S>> {
  return readConfig({ ...jobEnv, ...extra }, env) as JobConfig & z.infer<z.ZodObject<S>>;
}

export interface JobRuntime {
  readonly pool: pg.Pool;
  readonly redis: RedisClient;
  readonly bus: EventBus;
  readonly transport: OutboxTransport;
}

/** The container's runtime for a service name (the envelope's `service`). */
export async function jobRuntime(config: JobConfig, sqs: SQSClient, service: string): Promise<JobRuntime> {
  const [pool, redis] = await Promise.all([sharedPool(config, 'market'), sharedRedis(config)]);
  const bus = new EventBus({
    client: redis,
    service,
    namespace: config.EVENT_BUS_NAMESPACE,
    maxLen: config.EVENT_BUS_MAX_LEN,
  });
  const transport = outboxTransport({ bus, redis, sqs, queueUrl: (queue) => queueUrl(sqs, queue) });
  return { pool, redis, bus, transport };
}
