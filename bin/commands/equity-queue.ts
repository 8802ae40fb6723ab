import { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import {
  DispatchSendError,
  type DispatchSummary,
  dispatchEquityBatches,
} from '../../lambdas/market/equity-processing/dispatch';
import { EQUITY_PROCESSING_QUEUE } from '../../lambdas/market/equity-processing/message';
import { type EquityTypeStatus, equityQueueStatus } from '../../lambdas/market/equity-processing/status';
import { queueSymbolsForProcessing } from '../../lambdas/market/sql/processing-queue';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { sqsBatchSender } from '../../lambdas/platform/sqs-batch-sender';
import { EXIT, oneOf, parseCommandArgs, parseDate, parseInteger, UsageError } from '../../lib/cli/args';
import { emit, keyValues, table } from '../../lib/cli/output';
import { parseSymbolList } from '../../lib/cli/run';

export const summary =
  'equity-queue add --type T --symbols A,B [--priority N] | dispatch [--type T]... [--as-of D] [--window S] | status [--json]: the equity-types processing queue';

const USAGE = `usage:
  npm run pipeline -- equity-queue add --type ETF --symbols SPY,QQQ [--priority 95] [--json]
  npm run pipeline -- equity-queue dispatch [--type ETF]... [--as-of YYYY-MM-DD] [--window 900] [--json]
  npm run pipeline -- equity-queue status [--json]`;

const ACTIONS = ['add', 'dispatch', 'status'] as const;

/** Every --type must be a type of equity_types: an unknown one is named with the valid ones. */
async function checkTypes(pool: pg.Pool, types: readonly string[]): Promise<void> {
  const { rows } = await pool.query<{ type_name: string }>(
    'SELECT type_name FROM equity_types ORDER BY priority_level DESC, type_name',
  );
  const known = rows.map((r) => r.type_name);
  const unknown = types.filter((t) => !known.includes(t));
  if (unknown.length > 0) {
    throw new UsageError(`unknown --type ${unknown.join(', ')}: one of ${known.join(', ')}`, USAGE);
  }
}

/** The status table: queue rows by state, then the statistics of the processing runs. */
export function statusTable(status: readonly EquityTypeStatus[]): string {
  return table(
    [
      'type',
      'prio',
      'batch',
      'rate',
      'pending',
      'processing',
      'completed',
      'queue failed',
      'runs',
      'symbols done',
      'symbols failed',
      'run time',
      'last run',
    ],
    status.map((s) => [
      s.type,
      s.priorityLevel,
      s.batchSize,
      `${s.rateLimitMs} ms`,
      s.pendingNotDue > 0 ? `${s.queue.pending} (${s.pendingNotDue} later)` : s.queue.pending,
      s.expiredLeases > 0 ? `${s.queue.processing} (${s.expiredLeases} expired)` : s.queue.processing,
      s.queue.completed,
      s.queue.failed,
      s.stats.total_runs,
      s.stats.total_processed,
      s.stats.total_failed,
      `${s.stats.total_processing_seconds.toFixed(1)} s`,
      s.stats.last_processed_at ?? '-',
    ]),
    { right: [3, 4, 5, 11] },
  );
}

function printDispatch(r: DispatchSummary): void {
  console.log(
    keyValues([
      ['dispatch', r.dispatchId],
      ['as of', `${r.asOf} (sessions ${r.from} .. ${r.to})`],
      ['messages sent', r.messages],
      ['symbols claimed', r.claimed],
    ]),
  );
  console.log(
    table(
      ['type', 'prio', 'batch', 'slots', 'batches', 'claimed', 'queued', 'step', 'limited by'],
      r.types.map((t) => [
        t.type,
        t.priorityLevel,
        t.batchSize,
        t.slots,
        t.batches.length,
        t.claimed,
        t.queued,
        `${t.stepSeconds} s`,
        `${t.limitedBy}${t.slotsExhausted ? ' (more pending: next run)' : ''}`,
      ]),
      { indent: 2, right: [7] },
    ),
  );
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: {
      type: { type: 'string', multiple: true },
      symbols: { type: 'string' },
      priority: { type: 'string' },
      'as-of': { type: 'string' },
      window: { type: 'string' },
    },
    usage: USAGE,
  });
  const action = oneOf('equity-queue action', positionals[0], ACTIONS);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`, USAGE);
  const allowed: Record<(typeof ACTIONS)[number], string[]> = {
    add: ['type', 'symbols', 'priority'],
    dispatch: ['type', 'as-of', 'window'],
    status: [],
  };
  for (const flag of ['type', 'symbols', 'priority', 'as-of', 'window'] as const) {
    if (values[flag] !== undefined && !allowed[action].includes(flag)) {
      throw new UsageError(
        `--${flag} does not apply to ${action}${allowed[action].length ? `: ${action} takes ${allowed[action].map((f) => `--${f}`).join(', ')}` : ''}`,
        USAGE,
      );
    }
  }
  // Arguments checked before any connection.
  let symbols: string[] = [];
  let priority: number | undefined;
  if (action === 'add') {
    if (values.type?.length !== 1) {
      throw new UsageError('add needs exactly one --type (an equity type such as ETF)', USAGE);
    }
    symbols = parseSymbolList('--symbols', values.symbols, USAGE);
    priority =
      values.priority === undefined ? undefined : parseInteger('--priority', values.priority, 0, 1000);
  }
  const asOf = values['as-of'] === undefined ? undefined : parseDate('--as-of', values['as-of']);
  const windowSeconds =
    values.window === undefined ? undefined : parseInteger('--window', values.window, 1, 86_400);

  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL must be set');
  const pool = createPool({
    connectionString: localComponentUrl(url, 'market'),
    schema: process.env.PG_SCHEMA,
    max: 2,
  });
  try {
    if (values.type) await checkTypes(pool, values.type);
    if (action === 'add') {
      const type = values.type?.[0] as string;
      const queued = await queueSymbolsForProcessing(
        pool,
        type,
        symbols,
        priority === undefined ? {} : { priority },
      );
      // Symbols already pending or processing for the type are not queued twice.
      const result = { type, requested: symbols.length, queued, alreadyQueued: symbols.length - queued };
      emit(values.json, result, (r) =>
        console.log(
          `${r.type}: ${r.queued} of ${r.requested} symbols queued${r.alreadyQueued > 0 ? `, ${r.alreadyQueued} already pending or processing` : ''}`,
        ),
      );
      return EXIT.ok;
    }

    if (action === 'dispatch') {
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
        emit(values.json, result, printDispatch);
        return EXIT.ok;
      } catch (error) {
        if (error instanceof DispatchSendError) {
          console.error(`error: ${error.message}`);
          emit(values.json, error.summary, printDispatch);
          return EXIT.failure;
        }
        throw error;
      } finally {
        sqs.destroy();
      }
    }

    const status = await equityQueueStatus(pool);
    emit(values.json, status, (s) => {
      console.log(statusTable(s));
      console.log(
        '\nqueue: symbols by state now (queue failed = gave up after their retries); runs, symbols done, symbols failed and run time: totals over every processing run',
      );
    });
    return EXIT.ok;
  } finally {
    await pool.end();
  }
}
