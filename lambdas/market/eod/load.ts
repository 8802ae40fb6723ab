/**
 * The daily bars of one trade date for every US ticker (one grouped-daily call) into ohlcv_daily,
 * set-based, then the coverage validation of the tracked symbols. Idempotent per trade date: a
 * re-run rewrites nothing that did not change (the upsert skips identical rows), so it reports
 * inserted = updated = 0.
 */
import type pg from 'pg';
import { holidayName, type IsoDate, isTradingDay, toDayNumber } from '../calendar';
import type { MarketDataProvider } from '../provider';
import type { Queryable } from '../sql/db';
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

const SYMBOL = /^\S{1,32}$/;

/** Why a bar cannot be stored (the table's CHECKs, decided here so one bad bar never fails the day). */
export function barProblem(bar: DailyBar, tradeDate: IsoDate): string | null {
  if (!SYMBOL.test(bar.symbol)) return 'invalid ticker';
  if (bar.date !== tradeDate) return `bar dated ${bar.date}`;
  const prices = [bar.open, bar.high, bar.low, bar.close];
  if (!prices.every((p) => Number.isFinite(p) && p > 0)) return 'non-positive or non-finite price';
  if (bar.high < Math.max(bar.open, bar.close)) return 'high below open/close';
  if (bar.low > Math.min(bar.open, bar.close)) return 'low above open/close';
  if (!Number.isFinite(bar.volume) || bar.volume < 0) return 'negative volume';
  return null;
}

/**
 * Upserts bars in chunks of one statement each. Returns inserted / updated counts (rows whose values
 * were identical are not touched, so a re-run writes nothing).
 */
export async function upsertBars(
  db: Queryable,
  bars: readonly DailyBar[],
): Promise<{ inserted: number; updated: number }> {
  let inserted = 0;
  let updated = 0;
  for (let i = 0; i < bars.length; i += 5000) {
    const chunk = bars.slice(i, i + 5000);
    const { rows } = await db.query<{ inserted: number; updated: number }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[],
                              $6::float8[], $7::bigint[], $8::float8[], $9::integer[])
           AS x (symbol, date, open, high, low, close, volume, vwap, transactions)
       ), written AS (
         INSERT INTO ohlcv_daily AS o (symbol, date, open, high, low, close, volume, vwap, transactions)
         SELECT * FROM input
         ON CONFLICT (symbol, date) DO UPDATE
           SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
               volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, transactions = EXCLUDED.transactions
           WHERE (o.open, o.high, o.low, o.close, o.volume, o.vwap, o.transactions)
                 IS DISTINCT FROM
                 (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume,
                  EXCLUDED.vwap, EXCLUDED.transactions)
         -- xmax = 0 only on a freshly inserted row version.
         RETURNING (o.xmax = 0) AS fresh
       )
       SELECT count(*) FILTER (WHERE fresh)::integer AS inserted,
              count(*) FILTER (WHERE NOT fresh)::integer AS updated
       FROM written`,
      [
        chunk.map((b) => b.symbol),
        chunk.map((b) => b.date),
        chunk.map((b) => b.open),
        chunk.map((b) => b.high),
        chunk.map((b) => b.low),
        chunk.map((b) => b.close),
        chunk.map((b) => Math.round(b.volume)),
        // Absent is null, never a made-up value (the table refuses vwap <= 0).
        chunk.map((b) => (Number.isFinite(b.vwap) && b.vwap > 0 ? b.vwap : null)),
        chunk.map((b) => (Number.isInteger(b.transactions) && b.transactions >= 0 ? b.transactions : null)),
      ],
    );
    inserted += rows[0]?.inserted ?? 0;
    updated += rows[0]?.updated ?? 0;
  }
  return { inserted, updated };
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
