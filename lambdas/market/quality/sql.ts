/**
 * The quality check's SQL: set-based passes over ohlcv_daily for one trade date, each one statement
 * with window functions over every symbol at once (never a query per symbol). Tables resolve through
 * search_path, so the same statements run on production and on a scenario/test schema.
 *
 * Trading-day arithmetic never happens in SQL: the caller passes the sessions from the NYSE calendar
 * (calendar.ts) as a date[] and SQL only numbers them (WITH ORDINALITY), so weekends and market
 * holidays can never look like missing bars.
 */
import type { IsoDate } from '../calendar';
import type { Queryable } from '../sql/db';
import type { QualityConfig } from './config';

/**
 * Symbols checked on a date: listed on or before it and not yet delisted. Judged as of the date (not
 * by today's `active` flag) so re-running a past date checks the universe of that date.
 */
const UNIVERSE = `
  SELECT symbol, list_date FROM symbols
   WHERE (list_date IS NULL OR list_date <= $1::date)
     AND (delisted_at IS NULL OR delisted_at > $1::date)
     AND (active OR delisted_at IS NOT NULL)`;

/** A bar on the trade date that breaks a price or volume rule, with what it was measured against. */
export interface BarFindingRow {
  readonly symbol: string;
  readonly prev_date: IsoDate | null;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
  readonly prev_close: number | null;
  /** Average volume of the previous `averageSessions` bars (null before the first bar). */
  readonly avg_volume: number | null;
  /** Bars behind avg_volume (less than averageSessions: not measurable yet). */
  readonly avg_bars: number;
}

export interface BarPassStats {
  /** Checked symbols with a bar on the trade date. */
  readonly barsOnDate: number;
  /** Bars on the date whose volume average is below the thin threshold (volume rules skipped). */
  readonly thinExcluded: number;
  /** Bars on the date with fewer than averageSessions previous bars in the look-back. */
  readonly volumeUnmeasured: number;
}

/**
 * Price and volume pass: lag() gives the previous close, a 20-row frame the previous 20 bars'
 * average volume, over the last `lookbackSessions` sessions of every checked symbol.
 */
export async function priceVolumePass(
  db: Queryable,
  tradeDate: IsoDate,
  lookbackStart: IsoDate,
  config: QualityConfig,
): Promise<{ findings: BarFindingRow[]; stats: BarPassStats }> {
  const { price, volume } = config;
  const { rows } = await db.query<BarFindingRow & BarPassStats & { symbol: string | null }>(
    `WITH u AS (${UNIVERSE}),
     b AS (
       SELECT o.symbol, o.date, o.open, o.high, o.low, o.close, o.volume,
              lag(o.close) OVER w AS prev_close,
              lag(o.date) OVER w AS prev_date,
              avg(o.volume) OVER (w ROWS BETWEEN $3 PRECEDING AND 1 PRECEDING) AS avg_volume,
              count(*) OVER (w ROWS BETWEEN $3 PRECEDING AND 1 PRECEDING) AS avg_bars
         FROM ohlcv_daily o JOIN u ON u.symbol = o.symbol
        WHERE o.date BETWEEN $2::date AND $1::date
       WINDOW w AS (PARTITION BY o.symbol ORDER BY o.date)
     ),
     d AS (SELECT * FROM b WHERE date = $1::date),
     s AS (
       SELECT count(*)::int AS "barsOnDate",
              count(*) FILTER (WHERE avg_bars = $3 AND avg_volume < $8)::int AS "thinExcluded",
              count(*) FILTER (WHERE avg_bars < $3)::int AS "volumeUnmeasured"
         FROM d
     )
     SELECT d.symbol, d.prev_date::text AS prev_date, d.open, d.high, d.low, d.close,
            d.volume::float8 AS volume, d.prev_close, d.avg_volume::float8 AS avg_volume,
            d.avg_bars::int AS avg_bars, s.*
       FROM s LEFT JOIN d ON
            (d.prev_close IS NOT NULL
              AND (abs(d.close / d.prev_close - 1) > $4 OR (d.high - d.low) / d.prev_close > $5))
         OR (d.avg_bars = $3 AND d.avg_volume >= $8
              AND (d.volume = 0 OR d.volume > $6 * d.avg_volume OR d.volume < $7 * d.avg_volume))
      ORDER BY d.symbol`,
    [
      tradeDate,
      lookbackStart,
      volume.averageSessions,
      price.move,
      price.range,
      volume.spikeMultiple,
      volume.droughtMultiple,
      volume.thinAverage,
    ],
  );
  const first = rows[0];
  const stats: BarPassStats = {
    barsOnDate: first?.barsOnDate ?? 0,
    thinExcluded: first?.thinExcluded ?? 0,
    volumeUnmeasured: first?.volumeUnmeasured ?? 0,
  };
  const findings = rows
    .filter((r) => r.symbol !== null)
    .map(
      (r): BarFindingRow => ({
        symbol: r.symbol,
        prev_date: r.prev_date,
        open: r.open,
        high: r.high,
        low: r.low,
        close: r.close,
        volume: r.volume,
        prev_close: r.prev_close,
        avg_volume: r.avg_volume,
        avg_bars: r.avg_bars,
      }),
    );
  return { findings, stats };
}

/** One checked symbol's coverage of the window (session numbers are 1-based into `sessions`). */
export interface CoverageRow {
  readonly symbol: string;
  readonly list_date: IsoDate | null;
  /** Bars inside the window. */
  readonly bars: number;
  readonly first_n: number | null;
  readonly last_n: number | null;
  /** Holes closed by a recent bar: previous bar's session number and the closing bar's. */
  readonly hole_prev: number[] | null;
  readonly hole_next: number[] | null;
  /** Last bar before the window; only looked up when the window does not start with a bar. */
  readonly last_before: IsoDate | null;
}

/**
 * Coverage pass (gaps, staleness, completeness): every checked symbol's bars in the window, numbered
 * by session, with lag() exposing holes. The last-bar-before-window probe runs only for symbols whose
 * window does not open with a bar (new listings, long halts): a handful, by the primary key.
 */
export async function coveragePass(
  db: Queryable,
  tradeDate: IsoDate,
  sessions: readonly IsoDate[],
  gapLookbackSessions: number,
): Promise<CoverageRow[]> {
  const { rows } = await db.query<CoverageRow>(
    `WITH u AS (${UNIVERSE}),
     cal AS (SELECT c.d, c.n::int AS n FROM unnest($2::date[]) WITH ORDINALITY AS c(d, n)),
     b AS (
       SELECT o.symbol, c.n, lag(c.n) OVER (PARTITION BY o.symbol ORDER BY o.date) AS prev_n
         FROM ohlcv_daily o
         JOIN u ON u.symbol = o.symbol
         JOIN cal c ON c.d = o.date
        WHERE o.date BETWEEN ($2::date[])[1] AND $1::date
     ),
     per AS (
       SELECT symbol, count(*)::int AS bars, min(n) AS first_n, max(n) AS last_n,
              array_agg(prev_n ORDER BY n) FILTER (WHERE n - prev_n > 1 AND n > $3) AS hole_prev,
              array_agg(n ORDER BY n) FILTER (WHERE n - prev_n > 1 AND n > $3) AS hole_next
         FROM b GROUP BY symbol
     )
     SELECT u.symbol, u.list_date::text AS list_date, coalesce(per.bars, 0) AS bars, per.first_n, per.last_n,
            per.hole_prev, per.hole_next, before.last_date::text AS last_before
       FROM u
       LEFT JOIN per ON per.symbol = u.symbol
       LEFT JOIN LATERAL (
         SELECT max(x.date) AS last_date FROM ohlcv_daily x
          WHERE x.symbol = u.symbol AND x.date < ($2::date[])[1]
            AND (per.first_n IS NULL OR per.first_n > 1)
       ) before ON true
      ORDER BY u.symbol`,
    [tradeDate, sessions, sessions.length - gapLookbackSessions],
  );
  return rows;
}

/** Open completeness episodes: their trade_date is the key a continuing episode keeps. */
export async function openCompletenessEpisodes(
  db: Queryable,
  tradeDate: IsoDate,
): Promise<Map<string, IsoDate>> {
  const { rows } = await db.query<{ symbol: string; trade_date: IsoDate }>(
    `SELECT symbol, max(trade_date)::text AS trade_date FROM data_quality_alerts
      WHERE alert_type = 'incomplete_data' AND resolved_at IS NULL AND trade_date <= $1::date
        AND symbol IS NOT NULL
      GROUP BY symbol`,
    [tradeDate],
  );
  return new Map(rows.map((r) => [r.symbol, r.trade_date]));
}

/** Open price alerts up to tradeDate recorded while the split lookup was unreachable. */
export async function unverifiedPriceAlerts(
  db: Queryable,
  tradeDate: IsoDate,
): Promise<{ symbol: string; tradeDate: IsoDate; details: Record<string, unknown> }[]> {
  const { rows } = await db.query<{ symbol: string; trade_date: IsoDate; details: Record<string, unknown> }>(
    `SELECT symbol, trade_date::text AS trade_date, details FROM data_quality_alerts
      WHERE alert_type = 'price_anomaly' AND resolved_at IS NULL AND trade_date <= $1::date
        AND details ->> 'split_check' = 'unverified'
      ORDER BY trade_date, symbol`,
    [tradeDate],
  );
  return rows.map((r) => ({ symbol: r.symbol, tradeDate: r.trade_date, details: r.details }));
}
