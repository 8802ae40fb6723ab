/**
 * ETF correlations, last step of the EOD chain (an observer: a failure alarms and the chain still
 * completes). Input `{ tradeDate? }`. Computes the rolling return correlations of the ETF universes
 * (lambdas/market/etf-correlation/run.ts), stores them and publishes the changes beyond the
 * threshold on tickstock.etf.correlation_update; throws OutboxDeliveryError when messages could not
 * be delivered (committed and kept in the outbox: the retry, a no-op run, relays them).
 */

import { parseStepEvent } from '../market/eod/step-event';
import { CORRELATION_SERVICE, runEtfCorrelation } from '../market/etf-correlation/run';
import { sqs } from '../platform/aws';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { assertDelivered } from '../platform/outbox';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readJobConfig({});

export interface EtfCorrelationResult {
  readonly tradeDate: string;
  readonly status: 'computed' | 'skipped';
  readonly benchmark: string | null;
  readonly etfs: number;
  readonly pairs: number;
  readonly published: number;
}

async function run(event: unknown): Promise<EtfCorrelationResult> {
  const { tradeDate } = parseStepEvent(event);
  const runtime = await jobRuntime(config, sqs, CORRELATION_SERVICE);
  const s = await retryUnit(
    `etf correlation ${tradeDate}`,
    () => runEtfCorrelation(runtime, { tradeDate }),
    (m, f) => logger.warn(m, f),
  );
  assertDelivered(s.relay);
  const result: EtfCorrelationResult = {
    tradeDate,
    status: s.status,
    benchmark: s.benchmark,
    etfs: s.etfs,
    pairs: s.pairs,
    published: s.published,
  };
  logger.info('etf correlation done', { ...result, seconds: s.seconds });
  metrics.addMetric('EtfCorrelationPairs', 'Count', s.pairs);
  metrics.addMetric('EtfCorrelationUpdates', 'Count', s.published);
  return result;
}

export const handler = withTelemetry('etf-correlation', run);
