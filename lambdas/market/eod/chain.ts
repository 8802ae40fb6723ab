/**
 * The EOD chain in one process (the CLI's `eod run`, the local stage, the integration test): the same
 * domain functions the Step Functions steps call, in the same order. Each step is idempotent per
 * trade date, so re-running a date re-runs every step harmlessly.
 */
import type pg from 'pg';
import { type EventBus, SEED_SERVICES } from '../../platform/event-bus';
import { faultSummary, type RetryOptions, retryTransient } from '../../platform/faults';
import type { OutboxTransport } from '../../platform/outbox';
import { type IsoDate, isTradingDay } from '../calendar';
import {
  CORRELATION_SERVICE,
  type CorrelationConfig,
  type EtfCorrelationSummary,
  runEtfCorrelation,
} from '../etf-correlation/run';
import { DEFAULT_MAX_NEW, type IpoScanSummary, runIpoScan, type ScanProvider } from '../ipo/scan';
import type { MarketDataProvider } from '../provider';
import { QUALITY_SERVICE, type QualityConfig, type QualitySummary, runQualityCheck } from '../quality';
import { runUniverseSync, SYNC_SERVICE, type UniverseSyncSummary } from '../universe-sync/sync';
import { completeEod, type EodCompleteSummary } from './complete';
import { type EodLoadSummary, notTradingReason, runEodLoad } from './load';
import { EOD_SERVICE } from './signal';

export interface EodChainDeps {
  readonly pool: pg.Pool;
  readonly provider: ScanProvider & Pick<MarketDataProvider, 'groupedDaily' | 'splits'>;
  /** A bus and outbox transport publishing as `service` (the envelope's producer name). */
  readonly transportFor: (service: string) => { bus: EventBus; transport: OutboxTransport };
  readonly qualityConfig?: QualityConfig;
  readonly log?: (line: string) => void;
  /** Called before each step (progress display; tests take a snapshot before the sync). */
  readonly beforeStep?: (step: EodStep) => Promise<void> | void;
  /** In-process retry of a step after a transient fault (budget, back-off). */
  readonly retry?: Omit<RetryOptions, 'onRetry'>;
  readonly correlationConfig?: Partial<CorrelationConfig>;
  /** Called on each retry of a step (the fault suite counts them). */
  readonly onRetry?: (step: EodStep, error: unknown) => void;
}

export type EodStep = 'load' | 'ipo_scan' | 'quality' | 'complete' | 'sync' | 'correlation';

export interface EodChainOptions {
  readonly tradeDate: IsoDate;
  readonly threshold?: number;
  /** Universe sync even when the EOD signal is INCOMPLETE. */
  readonly force?: boolean;
}

export interface EodChainResult {
  readonly tradeDate: IsoDate;
  readonly status: 'skipped' | 'COMPLETE' | 'INCOMPLETE';
  readonly reason?: string;
  /** False when a step left messages undelivered (they stay in the outbox for the next run). */
  readonly ok: boolean;
  readonly load?: EodLoadSummary;
  readonly ipoScan?: IpoScanSummary;
  readonly quality?: QualitySummary;
  readonly complete?: EodCompleteSummary;
  readonly sync?: UniverseSyncSummary;
  readonly correlation?: EtfCorrelationSummary;
  /**
   * The correlation step is an observer (as in the state machine): when it still fails after its
   * retries the chain completes and the error is reported here (re-run the step for the date).
   */
  readonly correlationError?: string;
}

const s1 = (x: number) => x.toFixed(2);

export async function runEodChain(deps: EodChainDeps, options: EodChainOptions): Promise<EodChainResult> {
  const log = deps.log ?? (() => undefined);
  const { tradeDate } = options;
  // Every step is idempotent per trade date: a dropped connection retries the step at once (the
  // Step Functions retry is the fallback when a dependency stays down past the budget).
  const step = <T>(name: EodStep, run: () => Promise<T>): Promise<T> =>
    retryTransient(run, {
      ...deps.retry,
      onRetry: (error, attempt, delayMs) => {
        log(`    ${name}: ${faultSummary(error)}; retry ${attempt} in ${delayMs} ms`);
        deps.onRetry?.(name, error);
      },
    });
  if (!isTradingDay(tradeDate)) {
    const reason = notTradingReason(tradeDate);
    log(`eod ${tradeDate}: skipped, ${reason}`);
    return { tradeDate, status: 'skipped', reason, ok: true };
  }

  await deps.beforeStep?.('load');
  const load = await step('load', () =>
    runEodLoad(deps, {
      tradeDate,
      ...(options.threshold ? { threshold: options.threshold } : {}),
    }),
  );
  log(
    `1/6 load       ${tradeDate}: ${load.barsReceived} bars received, ${load.inserted} inserted, ${load.updated} updated, ` +
      `${load.unchanged} unchanged, ${load.barsRejected} rejected; coverage ${((load.validation?.coverage ?? 0) * 100).toFixed(2)} % (${s1(load.seconds)} s)`,
  );

  await deps.beforeStep?.('ipo_scan');
  const ipo = deps.transportFor(SEED_SERVICES.ipoMonitor);
  const ipoScan = await step('ipo_scan', () =>
    runIpoScan({ pool: deps.pool, provider: deps.provider, transport: ipo.transport }, { date: tradeDate }),
  );
  log(
    `2/6 ipo scan   ${tradeDate}: ${ipoScan.processed} new` +
      // The scan takes at most DEFAULT_MAX_NEW new symbols a run: the rest are named, not silent.
      `${ipoScan.deferred > 0 ? ` (at most ${DEFAULT_MAX_NEW} a run; ${ipoScan.deferred} more found, left for the next run)` : ''}` +
      `, ${ipoScan.archived} archived, ${ipoScan.reactivated} reactivated, ` +
      `${ipoScan.failed} failed, ${ipoScan.messagesEnqueued} messages (${s1(ipoScan.durationSeconds)} s)`,
  );

  await deps.beforeStep?.('quality');
  const quality = await step('quality', () =>
    runQualityCheck(
      {
        pool: deps.pool,
        transport: deps.transportFor(QUALITY_SERVICE).transport,
        provider: deps.provider,
        ...(deps.qualityConfig ? { config: deps.qualityConfig } : {}),
      },
      tradeDate,
    ),
  );
  log(
    `3/6 quality    ${tradeDate}: ${quality.symbolsChecked} symbols, ${quality.totalAlerts} alerts (${quality.inserted} new), ` +
      `score ${quality.qualityScore} (${s1(quality.seconds)} s)`,
  );

  await deps.beforeStep?.('complete');
  const eodTransport = deps.transportFor(EOD_SERVICE).transport;
  const complete = await step('complete', () =>
    completeEod(
      { pool: deps.pool, transport: eodTransport },
      { tradeDate, ...(options.threshold ? { threshold: options.threshold } : {}) },
    ),
  );
  log(
    `4/6 eod signal ${tradeDate}: ${complete.status} ${complete.signal?.symbols_with_bar}/${complete.signal?.tracked_symbols} tracked symbols with a bar, ` +
      `${complete.signalEnqueued ? 'published' : 'already published'} (${s1(complete.seconds)} s)`,
  );

  await deps.beforeStep?.('sync');
  const syncTransport = deps.transportFor(SYNC_SERVICE).transport;
  const sync = await step('sync', () =>
    runUniverseSync(
      { pool: deps.pool, transport: syncTransport },
      { tradeDate, force: options.force ?? false },
    ),
  );
  const tasks = Object.entries(sync.byTask)
    .map(([t, n]) => `${t} +${n.added}/-${n.removed}`)
    .join(', ');
  log(
    sync.status === 'skipped'
      ? `5/6 sync       ${tradeDate}: skipped, ${sync.reason}`
      : `5/6 sync       ${tradeDate}: ${sync.universesChanged} of ${sync.universes} universes changed, ${sync.totalChanges} changes` +
          `${tasks ? ` (${tasks})` : ''}, ${sync.messagesEnqueued} messages (${s1(sync.seconds)} s)`,
  );

  // Observer: correlations report on the day; a failure is counted, not a stop (README, failure policy).
  await deps.beforeStep?.('correlation');
  let correlation: EtfCorrelationSummary | undefined;
  let correlationError: string | undefined;
  if (sync.status === 'synced') {
    try {
      const { transport } = deps.transportFor(CORRELATION_SERVICE);
      correlation = await step('correlation', () =>
        runEtfCorrelation(
          { pool: deps.pool, transport },
          { tradeDate, ...(deps.correlationConfig ? { config: deps.correlationConfig } : {}) },
        ),
      );
      log(
        `6/6 etf corr   ${tradeDate}: ${correlation.etfs} ETFs, ${correlation.pairs} pairs over ${correlation.windowSessions} sessions ` +
          `(benchmark ${correlation.benchmark ?? 'none'}), ${correlation.published} updates published (${s1(correlation.seconds)} s)`,
      );
    } catch (error) {
      correlationError = faultSummary(error);
      log(`6/6 etf corr   ${tradeDate}: FAILED (observer, the chain goes on): ${correlationError}`);
    }
  } else {
    log(`6/6 etf corr   ${tradeDate}: skipped, the universes were not synced`);
  }
  const ok =
    ipoScan.relay.failed === 0 &&
    complete.relay.failed === 0 &&
    sync.relay.failed === 0 &&
    (correlation?.relay.failed ?? 0) === 0;
  return {
    tradeDate,
    status: complete.status === 'skipped' ? 'skipped' : complete.status,
    ok,
    load,
    ipoScan,
    quality,
    complete,
    sync,
    ...(correlation ? { correlation } : {}),
    ...(correlationError ? { correlationError } : {}),
  };
}
