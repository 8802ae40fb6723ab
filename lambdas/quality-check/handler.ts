/**
 * Data-quality check Lambda (EOD chain, after the daily bars are loaded). Thin: validate the event,
 * default the date to the previous NYSE trading day, run the domain check, return its summary.
 *
 * Errors propagate (the chain's retry policy re-runs the date; a re-run is idempotent and re-publishes
 * with the same message ids): SplitLookupError when the provider cannot list the date's splits,
 * QualityPublishError when Redis did not confirm every message, pg errors as they come.
 */
import { z } from 'zod';
import { parseStepEvent } from '../market/eod/step-event';
import { providerFromEnv } from '../market/provider';
import { type QualitySummary, resolveQualityConfig, runQualityCheck } from '../market/quality';
import { databaseEnv, readConfig, redisEnv } from '../platform/config';
import { sharedPool, sharedRedis } from '../platform/connections';
import { DEFAULT_NAMESPACE, EventBus } from '../platform/event-bus';
import { retryUnit } from '../platform/faults';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const env = readConfig({
  ...databaseEnv,
  ...redisEnv,
  /** Optional JSON override of the thresholds (partial; defaults fill the rest). */
  QUALITY_CONFIG: z.string().optional(),
  /** Stream key prefix of the event bus (stages sharing a Redis keep apart). */
  EVENT_BUS_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9_]+$/)
    .default(DEFAULT_NAMESPACE),
});
const config = resolveQualityConfig(env.QUALITY_CONFIG ? JSON.parse(env.QUALITY_CONFIG) : {});
// The provider reads its own variables (MARKET_API_BASE_URL, POLYGON_API_KEY_SECRET_ARN, ...) and
// fails here, at cold start, when they are malformed.
const provider = providerFromEnv();

async function run(event: unknown): Promise<QualitySummary> {
  const { tradeDate } = parseStepEvent(event, { defaultSession: 'previous' });
  const [pool, redis] = await Promise.all([sharedPool(env, 'market'), sharedRedis(env)]);
  const bus = new EventBus({
    client: redis,
    service: 'data-quality-monitor',
    namespace: env.EVENT_BUS_NAMESPACE,
  });
  const summary = await retryUnit(
    `quality check ${tradeDate}`,
    () => runQualityCheck({ pool, bus, provider, config }, tradeDate),
    (m, f) => logger.warn(m, f),
  );
  logger.info('quality check done', {
    tradeDate,
    status: summary.status,
    symbolsChecked: summary.symbolsChecked,
    totalAlerts: summary.totalAlerts,
    inserted: summary.inserted,
    published: summary.published,
    seconds: summary.seconds,
  });
  if (summary.status === 'checked') {
    metrics.addMetric('QualityAlerts', 'Count', summary.totalAlerts);
    metrics.addMetric('QualityScore', 'None', summary.qualityScore);
    metrics.addMetric('QualityCheckSeconds', 'Seconds', summary.seconds);
  }
  return summary;
}

export const handler = withTelemetry('quality-check', run);
