import type { IsoDate } from '../calendar';
import type { Queryable } from '../sql/db';
import type { EodSignal } from './signal';

export const DEFAULT_EOD_THRESHOLD = 0.95;

export type EodValidation = EodSignal;

export class InvalidThresholdError extends Error {
  constructor(value: unknown) {
    super(`EOD coverage threshold must be a number in (0, 1], got ${String(value)}`);
    this.name = 'InvalidThresholdError';
  }
}

/**
 * Coverage of the tracked symbols on a trade date: active symbols of the master that were listed by
 * then and not delisted, against the bars stored for the date. Returns the signal's payload.
 */
export async function validateEod(
  db: Queryable,
  tradeDate: IsoDate,
  threshold: number = DEFAULT_EOD_THRESHOLD,
): Promise<EodValidation> {
  if (!Number.isFinite(threshold) || threshold <= 0 || threshold > 1)
    throw new InvalidThresholdError(threshold);
  const { rows } = await db.query<{
    tracked: number;
    with_bar: number;
    missing_sample: string[] | null;
    bars_on_date: number;
  }>(
    `WITH tracked AS (
       SELECT s.symbol FROM symbols s
       WHERE s.active
         AND (s.delisted_at IS NULL OR s.delisted_at > $1::date)
         AND (s.list_date IS NULL OR s.list_date <= $1::date)
     ), joined AS (
       SELECT t.symbol, b.symbol IS NOT NULL AS has_bar
       FROM tracked t
       LEFT JOIN ohlcv_daily b ON b.symbol = t.symbol AND b.date = $1::date
     )
     SELECT count(*)::integer AS tracked,
            count(*) FILTER (WHERE has_bar)::integer AS with_bar,
            (array_agg(symbol ORDER BY symbol) FILTER (WHERE NOT has_bar))[1:50] AS missing_sample,
            (SELECT count(*)::integer FROM ohlcv_daily WHERE date = $1::date) AS bars_on_date
     FROM joined`,
    [tradeDate],
  );
  const r = rows[0];
  const tracked = r?.tracked ?? 0;
  const withBar = r?.with_bar ?? 0;
  const coverage = tracked > 0 ? Math.round((withBar / tracked) * 10_000) / 10_000 : 0;
  return {
    trade_date: tradeDate,
    // Nothing tracked is not "complete": an empty master means the chain has nothing to stand on.
    status: tracked > 0 && withBar / tracked >= threshold ? 'COMPLETE' : 'INCOMPLETE',
    tracked_symbols: tracked,
    symbols_with_bar: withBar,
    missing_symbols: tracked - withBar,
    coverage,
    threshold,
    bars_on_date: r?.bars_on_date ?? 0,
    missing_sample: r?.missing_sample ?? [],
  };
}
