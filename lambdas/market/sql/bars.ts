import type pg from 'pg';
import type { DailyBar } from '../types';

/**
 * Upserts one symbol's daily bars into ohlcv_daily in one set-based statement; returns the rows
 * written. A missing or non-positive vwap, or a missing transaction count, is stored as NULL.
 */
export async function upsertSymbolBars(
  db: pg.ClientBase,
  symbol: string,
  bars: readonly DailyBar[],
): Promise<number> {
  if (bars.length === 0) return 0;
  const { rowCount } = await db.query(
    `INSERT INTO ohlcv_daily AS o (symbol, date, open, high, low, close, volume, vwap, transactions)
     SELECT $1, t.date, t.open, t.high, t.low, t.close, t.volume, t.vwap, t.transactions
     FROM unnest($2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[],
                 $8::float8[], $9::integer[])
       AS t (date, open, high, low, close, volume, vwap, transactions)
     ON CONFLICT (symbol, date) DO UPDATE
       SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
           volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, transactions = EXCLUDED.transactions`,
    [
      symbol,
      bars.map((b) => b.date),
      bars.map((b) => b.open),
      bars.map((b) => b.high),
      bars.map((b) => b.low),
      bars.map((b) => b.close),
      bars.map((b) => Math.round(b.volume)),
      bars.map((b) => (Number.isFinite(b.vwap) && b.vwap > 0 ? b.vwap : null)),
      bars.map((b) => (Number.isFinite(b.transactions) ? Math.max(0, Math.round(b.transactions)) : null)),
    ],
  );
  return rowCount ?? 0;
}
