/**
 * EOD complete (after the load, the IPO scan and the quality check): validates coverage against the
 * symbol master, refreshes the liquidity snapshot, records the EOD completion signal and publishes it
 * (outbox -> event bus). Input `{ tradeDate? }`; returns `{ tradeDate, status: COMPLETE | INCOMPLETE
 * | skipped, ... }`. Throws OutboxDeliveryError when the signal could not be delivered (it stays in
 * the outbox; the retry relays it without re-enqueuing).
 */
import { z } from 'zod';
import { completeEod } from '../market/eod/complete';
import { parseStepEvent } from '../market/eod/step-event';
import { sqs } from '../platform/aws';
import { SEED_SERVICES } from '../platform/event-bus';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { assertDelivered } from '../platform/outbox';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readJobConfig({
  EOD_COVERAGE_THRESHOLD: z.coerce.number().gt(0).max(1).default(0.95),
  LIQUIDITY_LOOKBACK_DAYS: z.coerce.number().int().min(1).max(252).default(20),
});

export interface EodCompleteResult {
  readonly tradeDate: string;
  readonly status: 'COMPLETE' | 'INCOMPLETE' | 'skipped';
  readonly reason?: string;
  readonly trackedSymbols: number;
  readonly symbolsWithBar: number;
  readonly coverage: number | null;
  readonly signalPublished: boolean;
}

async function run(event: unknown): Promise<EodCompleteResult> {
  const { tradeDate } = parseStepEvent(event);
  const runtime = await jobRuntime(config, sqs, SEED_SERVICES.eodPipeline);
  const s = await retryUnit(
    `eod complete ${tradeDate}`,
    () =>
      completeEod(runtime, {
        tradeDate,
        threshold: config.EOD_COVERAGE_THRESHOLD,
        lookbackDays: config.LIQUIDITY_LOOKBACK_DAYS,
      }),
    (m, f) => logger.warn(m, f),
  );
  assertDelivered(s.relay);
  const result: EodCompleteResult = {
    tradeDate,
    status: s.status,
    ...(s.reason ? { reason: s.reason } : {}),
    trackedSymbols: s.signal?.tracked_symbols ?? 0,
    symbolsWithBar: s.signal?.symbols_with_bar ?? 0,
    coverage: s.signal?.coverage ?? null,
    signalPublished: s.signalEnqueued,
  };
  logger.info('eod complete', { ...result, seconds: s.seconds });
  metrics.addMetric(s.status === 'INCOMPLETE' ? 'EodIncomplete' : 'EodComplete', 'Count', 1);
  return result;
}

export const handler = withTelemetry('eod-complete', run);
