/**
 * Data-quality check Lambda (EOD chain, after the daily bars are loaded). Thin: validate the event,
 * default the date to the previous NYSE trading day, run the domain check, return its summary.
 *
 * Alerts, metrics and the messages announcing them commit together (market outbox); the relay
 * after the commit publishes them. Errors propagate (the chain retries the step, then alarms and
 * continues: the check is an observer): QualityPublishError when the relay could not deliver every
 * message (they stay in the outbox, the retry relays them without re-enqueuing), pg errors as they
 * come. An unreachable split lookup is not an error: the price alerts are recorded as unverified.
 */
import { z } from 'zod';
import { parseStepEvent } from '../market/eod/step-event';
import { providerFromEnv } from '../market/provider';
import {
  QUALITY_SERVICE,
  type QualitySummary,
  resolveQualityConfig,
  runQualityCheck,
} from '../market/quality';
import { sqs } from '../platform/aws';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const env = readJobConfig({
  /** Optional JSON override of the thresholds (partial; defaults fill the rest). */
  QUALITY_CONFIG: z.string().optional(),
});
const config = resolveQualityConfig(env.QUALITY_CONFIG ? JSON.parse(env.QUALITY_CONFIG) : {});
// The provider reads its own variables (MARKET_API_BASE_URL, POLYGON_API_KEY_SECRET_ARN, ...) and
// fails here, at cold start, when they are malformed.
const provider = providerFromEnv();

async function run(event: unknown): Promise<QualitySummary> {
  const { tradeDate } = parseStepEvent(event, { defaultSession: 'previous' });
  const { pool, transport } = await jobRuntime(env, sqs, QUALITY_SERVICE);
  // Idempotent per date (alerts upserted, messages deduplicated in the outbox): safe to retry here.
  const summary = await retryUnit(
    `quality check ${tradeDate}`,
    () => runQualityCheck({ pool, transport, provider, config }, tradeDate),
    (m, f) => logger.warn(m, f),
  );
  logger.info('quality check done', {
    tradeDate,
    status: summary.status,
    symbolsChecked: summary.symbolsChecked,
    totalAlerts: summary.totalAlerts,
    inserted: summary.inserted,
    published: summary.published,
    delivered: summary.relay.delivered,
    seconds: summary.seconds,
  });
  if (summary.splitLookupError) {
    logger.warn('split lookup unreachable: price alerts recorded unverified, re-classified next run', {
      tradeDate,
      unverified: summary.unverified,
      error: summary.splitLookupError,
    });
  }
  if (summary.status === 'checked') {
    metrics.addMetric('QualityAlertsUnverified', 'Count', summary.unverified);
    metrics.addMetric('QualityAlertsReclassified', 'Count', summary.reclassified);
    metrics.addMetric('QualityAlerts', 'Count', summary.totalAlerts);
    metrics.addMetric('QualityScore', 'None', summary.qualityScore);
    metrics.addMetric('QualityCheckSeconds', 'Seconds', summary.seconds);
  }
  return summary;
}

export const handler = withTelemetry('quality-check', run);
