/**
 * IPO scan (scheduled in the EOD chain, after the daily load). Input: `{ "tradeDate": "YYYY-MM-DD" }`,
 * optional; default the latest NYSE session on or before today (America/New_York). Returns the run
 * summary; throws when messages could not be delivered (they stay in the outbox, and the retry or
 * the next run relays them) or when the provider's list looks truncated.
 */
import { z } from 'zod';
import { parseStepEvent } from '../market/eod/step-event';
import { type IpoScanSummary, runIpoScan } from '../market/ipo/scan';
import { providerFromEnv } from '../market/provider';
import { sqs } from '../platform/aws';
import { SEED_SERVICES } from '../platform/event-bus';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { assertDelivered } from '../platform/outbox';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readJobConfig({
  IPO_SCAN_MAX_NEW: z.coerce.number().int().min(1).default(500),
  IPO_SCAN_MAX_ARCHIVE_FRACTION: z.coerce.number().min(0).max(1).default(0.05),
  IPO_SCAN_DETAILS_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(4),
  BACKFILL_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
});
const provider = providerFromEnv();

async function run(event: unknown): Promise<IpoScanSummary> {
  const { tradeDate: date } = parseStepEvent(event);
  const runtime = await jobRuntime(config, sqs, SEED_SERVICES.ipoMonitor);
  const summary = await retryUnit(
    `ipo scan ${date}`,
    () =>
      runIpoScan(
        { ...runtime, provider, log: (m, f) => logger.info(m, { ...f }) },
        {
          date,
          maxNew: config.IPO_SCAN_MAX_NEW,
          maxArchiveFraction: config.IPO_SCAN_MAX_ARCHIVE_FRACTION,
          detailsConcurrency: config.IPO_SCAN_DETAILS_CONCURRENCY,
          backfillDays: config.BACKFILL_DAYS,
        },
      ),
    (m, f) => logger.warn(m, f),
  );
  metrics.addMetric('IpoScanNewSymbols', 'Count', summary.processed);
  metrics.addMetric('IpoScanDetailFailures', 'Count', summary.failed);
  metrics.addMetric('IpoScanArchived', 'Count', summary.archived);
  assertDelivered(summary.relay);
  return summary;
}

export const handler = withTelemetry('ipo-scan', run);
