/**
 * The EOD complete step (after the load, the IPO scan and the quality check): validate coverage
 * against the symbol master as the IPO scan left it, refresh the liquidity snapshot the universe
 * reads use, record the signal and publish it through the outbox. Idempotent per trade date: the
 * same outcome is published once (see eodSignalDedupeKey).
 */
import type pg from 'pg';
import { type OutboxTransport, type RelayResult, relayOutbox } from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import { type IsoDate, isTradingDay, toDayNumber } from '../calendar';
import { refreshSymbolLiquidity } from '../sql/universes';
import { notTradingReason } from './load';
import { type EodSignal, recordEodSignal } from './signal';
import { DEFAULT_EOD_THRESHOLD, validateEod } from './validate';

export interface EodCompleteDeps {
  readonly pool: pg.Pool;
  readonly transport: OutboxTransport;
}

export interface EodCompleteOptions {
  readonly tradeDate: IsoDate;
  readonly threshold?: number;
  /** Bars per symbol in the liquidity snapshot (get_etf_universe's default is 20). */
  readonly lookbackDays?: number;
}

export interface EodCompleteSummary {
  readonly tradeDate: IsoDate;
  readonly status: 'COMPLETE' | 'INCOMPLETE' | 'skipped';
  readonly reason?: string;
  readonly signal: EodSignal | null;
  /** False on a re-run with the same outcome (nothing new published). */
  readonly signalEnqueued: boolean;
  readonly liquidityRows: number;
  readonly relay: RelayResult;
  readonly seconds: number;
}

export async function completeEod(
  deps: EodCompleteDeps,
  options: EodCompleteOptions,
): Promise<EodCompleteSummary> {
  const started = performance.now();
  const { tradeDate } = options;
  toDayNumber(tradeDate);
  if (!isTradingDay(tradeDate)) {
    return {
      tradeDate,
      status: 'skipped',
      reason: notTradingReason(tradeDate),
      signal: null,
      signalEnqueued: false,
      liquidityRows: 0,
      relay: { delivered: 0, recovered: 0, failed: 0, errors: [] },
      seconds: (performance.now() - started) / 1000,
    };
  }
  const signal = await validateEod(deps.pool, tradeDate, options.threshold ?? DEFAULT_EOD_THRESHOLD);
  // Before the signal: an app reacting to it reads universes on a fresh snapshot.
  const liquidityRows = await refreshSymbolLiquidity(deps.pool, options.lookbackDays ?? 20);
  const signalEnqueued = await withTransaction(deps.pool, (client) => recordEodSignal(client, signal));
  const relay = await relayOutbox(deps.pool, deps.transport);
  return {
    tradeDate,
    status: signal.status,
    signal,
    signalEnqueued,
    liquidityRows,
    relay,
    seconds: (performance.now() - started) / 1000,
  };
}
