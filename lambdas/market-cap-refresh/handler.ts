/**
 * Market caps and ETF assets from the provider (scheduled every 15 minutes; see
 * lambdas/market/fundamentals/refresh.ts). Input, optional: `{ "tradeDate": "YYYY-MM-DD" }`, the
 * valuation date (default the last completed session). Each run re-reads the details of the
 * least recently refreshed symbols, as many as the plan allows between two runs
 * (`refreshBatchSize`: MARKET_API_CALLS_PER_MINUTE x MARKET_CAP_REFRESH_SHARE x the period, within
 * the timeout). Fails only when every call of a non-empty batch failed (the provider is down).
 */
import { z } from 'zod';
import { parseStepEvent } from '../market/eod/step-event';
import { type RefreshResult, refreshBatchSize, refreshFundamentals } from '../market/fundamentals/refresh';
import { providerFromEnv } from '../market/provider';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({
  ...databaseEnv,
  MARKET_API_CALLS_PER_MINUTE: z.coerce.number().positive().default(5),
  /** Share of the plan's calls for this job; the IPO scan and backfills use the rest. */
  MARKET_CAP_REFRESH_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  /** Must equal the schedule (MarketCapRefresh.everyMinutes in lib/topology/jobs.ts). */
  MARKET_CAP_REFRESH_EVERY_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  MARKET_CAP_REFRESH_MAX_BATCH: z.coerce.number().int().min(1).max(20_000).default(2_000),
  MARKET_CAP_REFRESH_TIMEOUT_SECONDS: z.coerce.number().int().min(10).max(900).default(900),
  MARKET_CAP_REFRESH_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(4),
});
const provider = providerFromEnv();

export class ProviderUnavailableForRefreshError extends Error {
  constructor(readonly result: RefreshResult) {
    super(
      `every details call of the batch failed (${result.failed}); first: ${result.errors[0] ?? 'unknown'}`,
    );
    this.name = 'ProviderUnavailableForRefreshError';
  }
}

async function run(event: unknown): Promise<RefreshResult & { batchSize: number }> {
  const { tradeDate } = parseStepEvent(event, { defaultSession: 'previous' });
  const batchSize = refreshBatchSize({
    callsPerMinute: config.MARKET_API_CALLS_PER_MINUTE,
    share: config.MARKET_CAP_REFRESH_SHARE,
    everyMinutes: config.MARKET_CAP_REFRESH_EVERY_MINUTES,
    timeoutSeconds: config.MARKET_CAP_REFRESH_TIMEOUT_SECONDS,
    maxBatch: config.MARKET_CAP_REFRESH_MAX_BATCH,
  });
  const pool = await sharedPool(config, 'market');
  const result = await refreshFundamentals(
    { pool, provider },
    { asOf: tradeDate, batchSize, concurrency: config.MARKET_CAP_REFRESH_CONCURRENCY },
  );
  logger.info('market cap refresh done', { ...result, batchSize });
  metrics.addMetric('MarketCapsRefreshed', 'Count', result.refreshed);
  metrics.addMetric('MarketCapsChanged', 'Count', result.changed);
  metrics.addMetric('MarketCapRefreshFailures', 'Count', result.failed);
  if (result.selected > 0 && result.failed === result.selected)
    throw new ProviderUnavailableForRefreshError(result);
  return { ...result, batchSize };
}

export const handler = withTelemetry('market-cap-refresh', run);
