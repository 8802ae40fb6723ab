import { DescribeReplicationGroupsCommand, type ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import type { RedisClient } from './redis';

export interface ComponentStatus {
  readonly component: 'postgres' | 'redis' | 's3' | 'sqs' | 'elasticache' | 'router';
  readonly healthy: boolean;
  /** Not applicable here (e.g. ElastiCache on the local stage): neither healthy nor a failure. */
  readonly skipped?: boolean;
  readonly latencyMs: number;
  readonly detail: Record<string, unknown>;
  readonly error?: string;
}

export interface StatusReport {
  readonly stage: string;
  readonly healthy: boolean;
  readonly checkedAt: string;
  readonly components: ComponentStatus[];
}

export interface StatusDependencies {
  readonly stage: string;
  readonly pool: () => Promise<pg.Pool>;
  readonly redis: () => Promise<RedisClient>;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly sqs: SQSClient;
  /** Queue name (as in the topology) -> URL. */
  readonly queues: Record<string, string>;
  /** Only in AWS: the replication group behind the Redis endpoint. */
  readonly elastiCache?: { readonly client: ElastiCacheClient; readonly replicationGroupId: string };
  readonly timeoutMs?: number;
  /**
   * The real-time router's figures (its `/health`), where one is reachable; `skipped` when it is not
   * running (it is optional on the local stage).
   */
  readonly router?: () => Promise<{ healthy: boolean; skipped?: boolean; detail: Record<string, unknown> }>;
}

class CheckTimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'CheckTimeoutError';
  }
}

async function timed(
  component: ComponentStatus['component'],
  timeoutMs: number,
  check: () => Promise<{ healthy: boolean; skipped?: boolean; detail: Record<string, unknown> }>,
): Promise<ComponentStatus> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CheckTimeoutError(timeoutMs)), timeoutMs);
    });
    const { healthy, skipped, detail } = await Promise.race([check(), timeout]);
    return {
      component,
      healthy,
      ...(skipped ? { skipped } : {}),
      latencyMs: Math.round(performance.now() - started),
      detail,
    };
  } catch (error) {
    return {
      component,
      healthy: false,
      latencyMs: Math.round(performance.now() - started),
      detail: {},
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks every dependency of the pipeline concurrently and returns one report. A dependency that
 * fails or does not answer in time is reported unhealthy with its error; the check itself never throws.
 */
export async function checkPipeline(deps: StatusDependencies): Promise<StatusReport> {
  const timeoutMs = deps.timeoutMs ?? 5_000;
  const components = await Promise.all([
    timed('postgres', timeoutMs, async () => {
      const pool = await deps.pool();
      const { rows } = await pool.query<{ version: string; migrations: string | null }>(
        `SELECT current_setting('server_version') AS version,
                (SELECT count(*) FROM schema_migrations)::text AS migrations`,
      );
      return {
        healthy: true,
        detail: { serverVersion: rows[0]?.version, migrationsApplied: Number(rows[0]?.migrations) },
      };
    }),
    timed('redis', timeoutMs, async () => {
      const redis = await deps.redis();
      const pong = await redis.ping();
      return { healthy: pong === 'PONG', detail: { ping: pong } };
    }),
    timed('s3', timeoutMs, async () => {
      await deps.s3.send(new HeadBucketCommand({ Bucket: deps.bucket }));
      return { healthy: true, detail: { bucket: deps.bucket } };
    }),
    timed('sqs', timeoutMs, async () => {
      const entries = await Promise.all(
        Object.entries(deps.queues).map(async ([name, url]) => {
          const { Attributes } = await deps.sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: url,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          );
          return [
            name,
            {
              visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
              inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
            },
          ] as const;
        }),
      );
      return { healthy: true, detail: { queues: Object.fromEntries(entries) } };
    }),
    deps.elastiCache
      ? timed('elasticache', timeoutMs, async () => {
          const { client, replicationGroupId } = deps.elastiCache as NonNullable<
            StatusDependencies['elastiCache']
          >;
          const { ReplicationGroups } = await client.send(
            new DescribeReplicationGroupsCommand({ ReplicationGroupId: replicationGroupId }),
          );
          const group = ReplicationGroups?.[0];
          return {
            healthy: group?.Status === 'available',
            detail: {
              status: group?.Status,
              multiAz: group?.MultiAZ,
              transitEncryption: group?.TransitEncryptionEnabled,
              atRestEncryption: group?.AtRestEncryptionEnabled,
              authToken: group?.AuthTokenEnabled,
            },
          };
        })
      : Promise.resolve<ComponentStatus>({
          component: 'elasticache',
          healthy: true,
          skipped: true,
          latencyMs: 0,
          detail: { reason: 'no replication group on this stage (local Redis)' },
        }),
    ...(deps.router ? [timed('router', timeoutMs, deps.router)] : []),
  ]);
  return {
    stage: deps.stage,
    healthy: components.every((c) => c.healthy),
    checkedAt: new Date().toISOString(),
    components,
  };
}
