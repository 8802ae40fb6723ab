/**
 * Backfill consumer (SQS, partial batch responses): one record = one symbol's history (see
 * lambdas/market/backfill). A record that fails (provider still throttling after the adapter's
 * retries, database or Redis unavailable) is reported as a batch item failure, so only it is
 * redelivered, and it reaches the dead-letter queue after the queue's maxReceiveCount. A symbol with
 * no history succeeds with backfill.completed success=false: it is an answer, not an error.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { runBackfill } from '../market/backfill/backfill';
import { BackfillJobSchema } from '../market/backfill/job';
import { providerFromEnv } from '../market/provider';
import { sqs } from '../platform/aws';
import { SEED_SERVICES } from '../platform/event-bus';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readJobConfig({
  BACKFILL_CHUNK_SIZE: z.coerce.number().int().min(1).max(50_000).default(1000),
});
// Rate limit from MARKET_API_CALLS_PER_MINUTE: per container, so the CDK sets it to the account's
// limit divided by this consumer's maximum concurrency.
const provider = providerFromEnv();

/** A message that can never be processed (not a backfill job): fails to the DLQ with a clear reason. */
export class InvalidBackfillJobError extends Error {
  constructor(messageId: string, issues: string) {
    super(`message ${messageId} is not a backfill job: ${issues}`);
    this.name = 'InvalidBackfillJobError';
  }
}

async function recordHandler(record: SQSRecord): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    throw new InvalidBackfillJobError(record.messageId, 'body is not JSON');
  }
  const parsed = BackfillJobSchema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidBackfillJobError(record.messageId, parsed.error.issues.map((i) => i.message).join('; '));
  }
  const runtime = await jobRuntime(config, sqs, SEED_SERVICES.ipoMonitor);
  // A backfill is idempotent (bars are upserted): a dropped connection retries it here at once.
  const outcome = await retryUnit(
    `backfill ${parsed.data.symbol}`,
    () =>
      runBackfill({ ...runtime, provider, log: (m, f) => logger.info(m, { ...f }) }, parsed.data, {
        chunkSize: config.BACKFILL_CHUNK_SIZE,
      }),
    (m, f) => logger.warn(m, f),
  );
  metrics.addMetric(outcome.success ? 'BackfillSucceeded' : 'BackfillNoHistory', 'Count', 1);
  metrics.addMetric('BackfillBarsLoaded', 'Count', outcome.recordsLoaded);
}

async function run(event: SQSEvent, context: Context) {
  // A processor per invocation: BatchProcessor keeps one batch's successes and failures on the
  // instance, and nothing of a batch should outlive its invocation.
  const processor = new BatchProcessor(EventType.SQS);
  return await processPartialResponse(event, recordHandler, processor, { context });
}

export const handler = withTelemetry('backfill', run);
