import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DispatchSendError, dispatchEquityBatches } from '../../lambdas/market/equity-processing/dispatch';
import { EQUITY_PROCESSING_QUEUE } from '../../lambdas/market/equity-processing/message';
import { equityQueueStatus } from '../../lambdas/market/equity-processing/status';
import { queueSymbolsForProcessing } from '../../lambdas/market/sql/processing-queue';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { sqsBatchSender } from '../../lambdas/platform/sqs-batch-sender';

export const summary =
  'equity-queue add --type T --symbols A,B [--priority N] | dispatch [--type T]... [--as-of D] [--window S] | status [--json]: the equity-types processing queue';

const USAGE = `usage:
  npm run pipeline -- equity-queue add --type ETF --symbols SPY,QQQ [--priority 95]
  npm run pipeline -- equity-queue dispatch [--type ETF]... [--as-of YYYY-MM-DD] [--window 900]
  npm run pipeline -- equity-queue status [--json]`;

function pad(value: string | number, width: number): string {
  return String(value).padStart(width);
}

export async function run(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      type: { type: 'string', multiple: true },
      symbols: { type: 'string' },
      priority: { type: 'string' },
      'as-of': { type: 'string' },
      window: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (action !== 'add' && action !== 'dispatch' && action !== 'status') {
    console.error(USAGE);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL must be set');
  const pool = createPool({
    connectionString: localComponentUrl(url, 'market'),
    schema: process.env.PG_SCHEMA,
    max: 2,
  });
  try {
    if (action === 'add') {
      const type = values.type?.[0];
      const symbols = (values.symbols ?? '')
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter((s) => s.length > 0);
      if (!type || values.type?.length !== 1 || symbols.length === 0) {
        console.error(`add needs one --type and --symbols A,B\n${USAGE}`);
        return 2;
      }
      const priority = values.priority === undefined ? undefined : Number(values.priority);
      if (priority !== undefined && !Number.isInteger(priority)) {
        console.error(`--priority must be an integer, got ${values.priority}`);
        return 2;
      }
      const queued = await queueSymbolsForProcessing(
        pool,
        type,
        symbols,
        priority === undefined ? {} : { priority },
      );
      // Symbols already pending or processing for the type are not queued twice.
      console.log(
        JSON.stringify({ type, requested: symbols.length, queued, alreadyQueued: symbols.length - queued }),
      );
      return 0;
    }

    if (action === 'dispatch') {
      const asOf = values['as-of'];
      if (asOf !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(asOf)) {
        console.error(`--as-of must be YYYY-MM-DD, got ${asOf}`);
        return 2;
      }
      const windowSeconds = values.window === undefined ? undefined : Number(values.window);
      const sqs = new SQSClient({});
      try {
        const result = await dispatchEquityBatches(
          { pool, sender: sqsBatchSender(sqs, () => queueUrl(sqs, EQUITY_PROCESSING_QUEUE)) },
          {
            ...(values.type ? { types: values.type } : {}),
            ...(asOf ? { asOf } : {}),
            ...(windowSeconds === undefined ? {} : { windowSeconds }),
          },
        );
        console.log(JSON.stringify(result, null, 2));
        return 0;
      } catch (error) {
        if (error instanceof DispatchSendError) {
          console.error(error.message);
          console.log(JSON.stringify(error.summary, null, 2));
          return 1;
        }
        throw error;
      } finally {
        sqs.destroy();
      }
    }

    const status = await equityQueueStatus(pool);
    if (values.json) {
      console.log(JSON.stringify(status, null, 2));
      return 0;
    }
    console.log(
      `${'type'.padEnd(15)}${pad('prio', 5)}${pad('batch', 6)}${pad('rate ms', 8)}${pad('pending', 9)}${pad('processing', 11)}` +
        `${pad('completed', 10)}${pad('failed', 7)}${pad('runs', 6)}${pad('processed', 10)}${pad('failed', 7)}${pad('secs', 9)}  last run`,
    );
    for (const s of status) {
      console.log(
        `${s.type.padEnd(15)}${pad(s.priorityLevel, 5)}${pad(s.batchSize, 6)}${pad(s.rateLimitMs, 8)}` +
          `${pad(s.queue.pending, 9)}${pad(s.queue.processing, 11)}${pad(s.queue.completed, 10)}${pad(s.queue.failed, 7)}` +
          `${pad(s.stats.total_runs, 6)}${pad(s.stats.total_processed, 10)}${pad(s.stats.total_failed, 7)}` +
          `${pad(s.stats.total_processing_seconds.toFixed(1), 9)}  ${s.stats.last_processed_at ?? '-'}` +
          (s.expiredLeases > 0 ? `  (${s.expiredLeases} expired lease(s))` : ''),
      );
    }
    return 0;
  } finally {
    await pool.end();
  }
}
