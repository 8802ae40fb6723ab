import type { IsoDate } from '../calendar';
import type { DailyBar } from '../types';
import type { Queryable } from './db';

const SYMBOL = /^\S{1,32}$/;

/**
 * Why a bar cannot be stored in ohlcv_daily (its CHECKs, decided here so one bad bar never fails a
 * whole load), or null when it can. The one rule for every loader (EOD, backfill, equity worker):
 * a ticker, finite positive prices with the high and low around open and close, a finite volume
 * that is not negative, and a vwap that is positive when present. With a trade date, a bar of
 * another date is refused too.
 */
export function barProblem(bar: DailyBar, tradeDate?: IsoDate): string | null {
  if (!SYMBOL.test(bar.symbol)) return 'invalid ticker';
  if (tradeDate !== undefined && bar.date !== tradeDate) return `bar dated ${bar.date}`;
  const prices = [bar.open, bar.high, bar.low, bar.close];
  if (!prices.every((p) => Number.isFinite(p) && p > 0)) return 'non-positive or non-finite price';
  if (bar.high < Math.max(bar.open, bar.close)) return 'high below open/close';
  if (bar.low > Math.min(bar.open, bar.close)) return 'low above open/close';
  if (!Number.isFinite(bar.volume) || bar.volume < 0) return 'negative volume';
  if (Number.isFinite(bar.vwap) && bar.vwap <= 0) return 'non-positive vwap';
  return null;
}

/**
 * Upserts bars (at most one per symbol and date) in chunks of one statement each. Returns inserted / updated counts (rows whose values
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
