/**
 * EOD load (first step of the EOD chain): the trade date's bars for every US ticker (one grouped-daily
 * call) into ohlcv_daily, then the coverage validation. Input `{ tradeDate? }`; returns a small
 * summary with `tradeDate` and `status` ('loaded' | 'skipped' on weekends and market holidays, which
 * the chain uses to stop). Errors propagate (provider failures after the adapter's retries, pg
 * errors); a retry is idempotent.
 */
import { z } from 'zod';
import { runEodLoad } from '../market/eod/load';
import { parseStepEvent } from '../market/eod/step-event';
import { providerFromEnv } from '../market/provider';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { retryUnit } from '../platform/faults';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const env = readConfig({
  ...databaseEnv,
  /** Share of tracked symbols that must have a bar for the day to count as COMPLETE. */
  EOD_COVERAGE_THRESHOLD: z.coerce.number().gt(0).max(1).default(0.95),
});
const provider = providerFromEnv();

export interface EodLoadResult {
  readonly tradeDate: string;
  readonly status: 'loaded' | 'skipped';
  readonly reason?: string;
  readonly barsReceived: number;
  readonly barsRejected: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly coverage: number | null;
  readonly validation: 'COMPLETE' | 'INCOMPLETE' | null;
}

async function run(event: unknown): Promise<EodLoadResult> {
  const { tradeDate } = parseStepEvent(event);
  const pool = await sharedPool(env, 'market');
  const s = await retryUnit(
    `eod load ${tradeDate}`,
    () => runEodLoad({ pool, provider }, { tradeDate, threshold: env.EOD_COVERAGE_THRESHOLD }),
    (m, f) => logger.warn(m, f),
  );
  const result: EodLoadResult = {
    tradeDate,
    status: s.status,
    ...(s.reason ? { reason: s.reason } : {}),
    barsReceived: s.barsReceived,
    barsRejected: s.barsRejected,
    inserted: s.inserted,
    updated: s.updated,
    unchanged: s.unchanged,
    coverage: s.validation?.coverage ?? null,
    validation: s.validation?.status ?? null,
  };
  logger.info('eod load done', { ...result, seconds: s.seconds });
  if (s.status === 'loaded') {
    metrics.addMetric('EodBarsLoaded', 'Count', s.inserted + s.updated);
    metrics.addMetric('EodBarsRejected', 'Count', s.barsRejected);
    metrics.addMetric('EodCoverage', 'Percent', (s.validation?.coverage ?? 0) * 100);
  }
  return result;
}

export const handler = withTelemetry('eod-load', run);
