/**
 * RouterBars consumer (SQS, partial batch responses): one record = one minute bar the real-time router
 * delivered (lambdas/market/realtime/minute-bar-message.ts). The valid records of a batch are upserted
 * in one statement (lambdas/market/sql/realtime-bars.ts) as the router's role; a record that can never
 * be stored (not JSON, not a bar, an impossible bar) is a batch item failure on its own and reaches
 * the DLQ after maxReceiveCount without holding back the others. A database failure fails the valid
 * records of the batch, which SQS redelivers (the upsert is idempotent).
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { newestPerBar, parseMinuteBarMessage } from '../market/realtime/minute-bar-message';
import { upsertMinuteBars } from '../market/sql/realtime-bars';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({ ...databaseEnv });

async function run(event: SQSEvent, _context: Context): Promise<SQSBatchResponse> {
  const failures: string[] = [];
  const valid: { id: string; bar: Parameters<typeof upsertMinuteBars>[1][number] }[] = [];
  for (const record of event.Records) {
    const parsed = parseMinuteBarMessage(record.body);
    if (parsed.ok) valid.push({ id: record.messageId, bar: parsed.bar });
    else {
      // The reason names the defect only; bar values are market data, but the body is not logged.
      logger.error('not a storable minute bar', { messageId: record.messageId, reason: parsed.reason });
      failures.push(record.messageId);
    }
  }
  metrics.addMetric('RouterBarsInvalid', 'Count', failures.length);
  if (valid.length > 0) {
    try {
      const pool = await sharedPool(config, 'router');
      const written = await upsertMinuteBars(
        pool,
        newestPerBar(valid).map((v) => v.bar),
      );
      metrics.addMetric('RouterBarsInserted', 'Count', written.inserted);
      metrics.addMetric('RouterBarsUpdated', 'Count', written.updated);
    } catch (error) {
      logger.error('minute bars not stored; the batch is retried', { error: (error as Error).message });
      failures.push(...valid.map((v) => v.id));
    }
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}

export const handler = withTelemetry('router-bars', run);
