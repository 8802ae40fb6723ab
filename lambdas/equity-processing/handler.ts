/**
 * EquityProcessing consumer (SQS, partial batch responses): one record = one dispatched batch of one
 * equity type (see lambdas/market/equity-processing/worker.ts). A record whose batch stopped on a
 * retriable failure (provider throttling/outage after the adapter's retries, database, out of time)
 * is a batch item failure: SQS redelivers it, the redelivery skips the symbols already reported, and
 * after maxReceiveCount it reaches the DLQ (its symbols return to pending when their lease expires).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { EquityBatchSchema } from '../market/equity-processing/message';
import { EquityBatchRetriableError, processEquityBatch } from '../market/equity-processing/worker';
import { providerFromEnv } from '../market/provider';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({
  ...databaseEnv,
  EQUITY_DEADLINE_MARGIN_MS: z.coerce.number().int().min(0).default(15_000),
});
// Rate limit from MARKET_API_CALLS_PER_MINUTE: per container, so the CDK sets it to the account's
// limit divided by this consumer's maximum concurrency.
const provider = providerFromEnv();

/** A message that can never be processed (not an equity batch): fails to the DLQ with a clear reason. */
export class InvalidEquityBatchError extends Error {
  constructor(messageId: string, issues: string) {
    super(`message ${messageId} is not an equity batch: ${issues}`);
    this.name = 'InvalidEquityBatchError';
  }
}

function recordHandlerFor(context: Context) {
  return async (record: SQSRecord): Promise<void> => {
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      throw new InvalidEquityBatchError(record.messageId, 'body is not JSON');
    }
    const parsed = EquityBatchSchema.safeParse(body);
    if (!parsed.success) {
      throw new InvalidEquityBatchError(
        record.messageId,
        parsed.error.issues.map((i) => i.message).join('; '),
      );
    }
    const pool = await sharedPool(config, 'market');
    try {
      const outcome = await processEquityBatch(
        {
          pool,
          provider,
          remainingMs: () => context.getRemainingTimeInMillis(),
          log: (m, f) => logger.info(m, { ...f }),
        },
        parsed.data,
        { deadlineMarginMs: config.EQUITY_DEADLINE_MARGIN_MS },
      );
      addOutcomeMetrics(outcome);
    } catch (error) {
      if (error instanceof EquityBatchRetriableError) {
        addOutcomeMetrics(error.outcome);
        metrics.addMetric('EquityBatchRetried', 'Count', 1);
      }
      throw error;
    }
  };
}

function addOutcomeMetrics(outcome: {
  processed: number;
  failed: number;
  stale: number;
  barsLoaded: number;
}) {
  metrics.addMetric('EquitySymbolsProcessed', 'Count', outcome.processed);
  metrics.addMetric('EquitySymbolsFailed', 'Count', outcome.failed);
  metrics.addMetric('EquityClaimsStale', 'Count', outcome.stale);
  metrics.addMetric('EquityBarsLoaded', 'Count', outcome.barsLoaded);
}

async function run(event: SQSEvent, context: Context) {
  // A processor per invocation: BatchProcessor keeps one batch's successes and failures on the
  // instance, and nothing of a batch should outlive its invocation.
  const processor = new BatchProcessor(EventType.SQS);
  return await processPartialResponse(event, recordHandlerFor(context), processor, { context });
}

export const handler = withTelemetry('equity-processing', run);
