import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { checkPipeline, type StatusReport } from '../../lambdas/platform/status-checks';
import { channelTable, type RouterFigures, routerLine } from '../../lambdas/realtime-router/figures';
import { EXIT, parseCommandArgs } from '../../lib/cli/args';
import { emit, table } from '../../lib/cli/output';
import { localQueueUrls } from '../../localstack/resources';
import { routerCheck } from './router';

export const summary =
  'status [--json]: the pipeline health report (same checks as the status Lambda) for the local stage';

/** One short line per component: the detail's scalar fields, objects counted. */
function describe(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([k, v]) =>
      v !== null && typeof v === 'object'
        ? `${k}: ${Array.isArray(v) ? v.length : Object.keys(v).length}`
        : `${k}: ${String(v)}`,
    )
    .join(', ')
    .slice(0, 110);
}

function print(report: StatusReport): void {
  console.log(
    table(
      ['component', 'state', 'latency', 'detail'],
      report.components.map((c) => [
        c.component,
        c.skipped ? 'skipped' : c.healthy ? 'healthy' : 'UNHEALTHY',
        `${c.latencyMs} ms`,
        c.error ?? describe(c.detail),
      ]),
      { right: [2] },
    ),
  );
  const router = report.components.find((c) => c.component === 'router' && !c.skipped && !c.error);
  if (router) {
    // The real-time router's figures per channel, as `router status` prints them.
    const f = router.detail as unknown as RouterFigures;
    const { header, rows } = channelTable(f);
    console.log(table(header, rows));
    console.log(routerLine(f));
  }
  console.log(
    `stage ${report.stage}: ${report.healthy ? 'healthy' : 'UNHEALTHY'} (checked ${report.checkedAt})`,
  );
}

export async function run(args: string[] = []): Promise<number> {
  const { values } = parseCommandArgs(args, { options: {}, usage: `usage: npm run pipeline -- ${summary}` });
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
      router: () => routerCheck(),
    });
    emit(values.json, report, print);
    return report.healthy ? EXIT.ok : EXIT.failure;
  } finally {
    await pool.end();
    if (redis.isOpen) await redis.close();
    s3.destroy();
    sqs.destroy();
  }
}
