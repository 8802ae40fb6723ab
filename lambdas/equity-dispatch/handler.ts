/**
 * Equity-types dispatcher (scheduled; see lambdas/market/equity-processing/dispatch.ts). Input,
 * optional: `{ "types": ["ETF"], "asOf": "YYYY-MM-DD" }` (default every type, and the latest NYSE
 * session). Run it every EQUITY_DISPATCH_WINDOW_SECONDS: that period is what keeps each type's rate
 * limit across runs. Returns the dispatch summary; throws when messages could not be sent (their
 * symbols come back after the claim lease).
 */
import { z } from 'zod';
import { type DispatchSummary, dispatchEquityBatches } from '../market/equity-processing/dispatch';
import { EQUITY_PROCESSING_QUEUE } from '../market/equity-processing/message';
import { sqs } from '../platform/aws';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { queueUrl } from '../platform/queues';
import { sqsBatchSender } from '../platform/sqs-batch-sender';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({
  ...databaseEnv,
  EQUITY_DISPATCH_WINDOW_SECONDS: z.coerce.number().int().min(60).max(900).default(900),
  EQUITY_DISPATCH_LEASE_MARGIN_SECONDS: z.coerce.number().int().min(0).default(180),
  EQUITY_DISPATCH_MAX_BATCHES_PER_TYPE: z.coerce.number().int().min(1).max(1000).default(200),
  EQUITY_REFRESH_SESSIONS: z.coerce.number().int().min(1).max(60).default(5),
});
const sender = sqsBatchSender(sqs, () => queueUrl(sqs, EQUITY_PROCESSING_QUEUE));

const InputSchema = z
  .object({
    types: z
      .array(z.string().regex(/^[A-Z][A-Z0-9_]*$/))
      .min(1)
      .optional(),
    asOf: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional(),
  })
  .passthrough()
  .nullish();

async function run(event: unknown): Promise<DispatchSummary> {
  const input = InputSchema.parse(event ?? {});
  const pool = await sharedPool(config, 'market');
  const summary = await dispatchEquityBatches(
    { pool, sender, log: (m, f) => logger.info(m, { ...f }) },
    {
      windowSeconds: config.EQUITY_DISPATCH_WINDOW_SECONDS,
      leaseMarginSeconds: config.EQUITY_DISPATCH_LEASE_MARGIN_SECONDS,
      maxBatchesPerType: config.EQUITY_DISPATCH_MAX_BATCHES_PER_TYPE,
      refreshSessions: config.EQUITY_REFRESH_SESSIONS,
      ...(input?.types ? { types: input.types } : {}),
      ...(input?.asOf ? { asOf: input.asOf } : {}),
    },
  );
  metrics.addMetric('EquityBatchesDispatched', 'Count', summary.messages);
  metrics.addMetric('EquitySymbolsClaimed', 'Count', summary.claimed);
  return summary;
}

export const handler = withTelemetry('equity-dispatch', run);
