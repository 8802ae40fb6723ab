/**
 * The daily bars of one trade date for every US ticker (one grouped-daily call) into ohlcv_daily,
 * set-based, then the coverage validation of the tracked symbols. Idempotent per trade date: a
 * re-run rewrites nothing that did not change (the upsert skips identical rows), so it reports
 * inserted = updated = 0.
 */
import type pg from 'pg';
import { holidayName, type IsoDate, isTradingDay, toDayNumber } from '../calendar';
import type { MarketDataProvider } from '../provider';
import { barProblem, upsertBars } from '../sql/bars';
import type { DailyBar } from '../types';
import { type EodValidation, validateEod } from './validate';

export interface EodLoadDeps {
  readonly pool: pg.Pool;
  readonly provider: Pick<MarketDataProvider, 'groupedDaily'>;
}

export interface EodLoadOptions {
  readonly tradeDate: IsoDate;
  /** Share of tracked symbols that must have a bar (0..1). Default 0.95. */
  readonly threshold?: number;
}

export interface EodLoadSummary {
  readonly tradeDate: IsoDate;
  readonly status: 'loaded' | 'skipped';
  readonly reason?: string;
  readonly barsReceived: number;
  /** Bars refused before the database (impossible OHLC, non-positive prices, bad ticker). */
  readonly barsRejected: number;
  readonly rejectedSample: string[];
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly validation: EodValidation | null;
  readonly seconds: number;
}

export async function runEodLoad(deps: EodLoadDeps, options: EodLoadOptions): Promise<EodLoadSummary> {
  const started = performance.now();
  const { tradeDate } = options;
  toDayNumber(tradeDate); // InvalidDateError for malformed input
  if (!isTradingDay(tradeDate)) {
    return {
      tradeDate,
      status: 'skipped',
      reason: notTradingReason(tradeDate),
      barsReceived: 0,
      barsRejected: 0,
      rejectedSample: [],
      inserted: 0,
      updated: 0,
      unchanged: 0,
      validation: null,
      seconds: (performance.now() - started) / 1000,
    };
  }
  const received = await deps.provider.groupedDaily(tradeDate);
  const good: DailyBar[] = [];
  const rejected: string[] = [];
  // A ticker twice in one response would make the upsert touch a row twice (an error): last wins.
  const bySymbol = new Map<string, DailyBar>();
  for (const bar of received) {
    const problem = barProblem(bar, tradeDate);
    if (problem) rejected.push(`${bar.symbol}: ${problem}`);
    else bySymbol.set(bar.symbol, bar);
  }
  good.push(...bySymbol.values());
  const { inserted, updated } = await upsertBars(deps.pool, good);
  const validation = await validateEod(deps.pool, tradeDate, options.threshold);
  return {
    tradeDate,
    status: 'loaded',
    barsReceived: received.length,
    barsRejected: rejected.length,
    rejectedSample: rejected.sort().slice(0, 20),
    inserted,
    updated,
    unchanged: good.length - inserted - updated,
    validation,
    seconds: (performance.now() - started) / 1000,
  };
}

export function notTradingReason(date: IsoDate): string {
  const holiday = holidayName(date);
  if (holiday) return `${date} is an NYSE market holiday (${holiday})`;
  const weekday = new Date(`${date}T12:00:00Z`).getUTCDay();
  return weekday === 0 || weekday === 6 ? `${date} is a weekend` : `${date} is not an NYSE trading day`;
}
