/**
 * Universe (cache) sync, last step of the EOD chain. Input `{ tradeDate?, force? }`. Reads the EOD
 * completion signal of the date (lambdas/market/eod/signal): COMPLETE -> sync; INCOMPLETE -> status
 * 'skipped' (universes untouched) unless force; no signal -> EodSignalMissingError (chain out of
 * order) unless force. Returns a small summary (`tradeDate`, `status`, totals by task); throws
 * OutboxDeliveryError when messages could not be delivered (committed and kept in the outbox: the
 * retry, a no-op sync, relays them).
 */

import { parseStepEvent } from '../market/eod/step-event';
import { runUniverseSync, SYNC_SERVICE, type TaskTotals } from '../market/universe-sync/sync';
import { sqs } from '../platform/aws';
import { retryUnit } from '../platform/faults';
import { jobRuntime, readJobConfig } from '../platform/job-runtime';
import { assertDelivered } from '../platform/outbox';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readJobConfig({});

export interface UniverseSyncResult {
  readonly tradeDate: string;
  readonly status: 'synced' | 'skipped';
  readonly reason?: string;
  readonly eodStatus: 'COMPLETE' | 'INCOMPLETE' | null;
  readonly forced: boolean;
  readonly universes: number;
  readonly universesChanged: number;
  readonly totalChanges: number;
  readonly byTask: Record<string, TaskTotals>;
  readonly messagesEnqueued: number;
}

async function run(event: unknown): Promise<UniverseSyncResult> {
  const { tradeDate, force } = parseStepEvent(event);
  const runtime = await jobRuntime(config, sqs, SYNC_SERVICE);
  const s = await retryUnit(
    `universe sync ${tradeDate}`,
    () => runUniverseSync(runtime, { tradeDate, force }),
    (m, f) => logger.warn(m, f),
  );
  assertDelivered(s.relay);
  const result: UniverseSyncResult = {
    tradeDate,
    status: s.status,
    ...(s.reason ? { reason: s.reason } : {}),
    eodStatus: s.eodStatus,
    forced: s.forced,
    universes: s.universes,
    universesChanged: s.universesChanged,
    totalChanges: s.totalChanges,
    byTask: s.byTask as Record<string, TaskTotals>,
    messagesEnqueued: s.messagesEnqueued,
  };
  logger.info('universe sync done', { ...result, seconds: s.seconds });
  metrics.addMetric('UniverseChanges', 'Count', s.totalChanges);
  metrics.addMetric('UniverseSyncSeconds', 'Seconds', s.seconds);
  return result;
}

export const handler = withTelemetry('universe-sync', run);
