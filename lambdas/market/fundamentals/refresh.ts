/**
 * Market caps and ETF assets from fresh values (migration 0261). Two parts:
 *
 * 1. `markToMarket` (every session, inside the universe sync's transaction, before it reads the
 *    symbol master): market_cap = shares_outstanding x the session's close; for ETFs and ETNs the
 *    same product is the fund's assets (aum). No provider call: the session's closes came with the
 *    one grouped-daily call of the EOD load. So the market-cap tiers, top-N lists, sector leaders
 *    and the ETF liquidity filter (min AUM) re-tier from that day's prices.
 * 2. `refreshFundamentals` (scheduled, `MarketCapRefresh` in lib/topology/jobs.ts): the provider's
 *    ticker details (`/v3/reference/tickers/{t}?date=D`: shares outstanding, market_cap) for a batch
 *    of the least recently refreshed active symbols; shares change with issuance and buybacks, which
 *    the daily mark cannot see. The batch fits the plan (`refreshBatchSize`): see the README.
 */
import type pg from 'pg';
import type { IsoDate } from '../calendar';
import { ProviderNotFoundError } from '../provider';
import type { TickerDetails } from '../provider/provider';

/** Types whose market value is the fund's assets. */
const FUND_TYPES = ['ETF', 'ETN'];

export interface MarkToMarketResult {
  /** Symbols whose market_cap (or aum) changed. */
  readonly updated: number;
}

/** Values every active symbol with known shares at the session's close (idempotent per session). */
export async function markToMarket(
  db: pg.Pool | pg.PoolClient,
  tradeDate: IsoDate,
): Promise<MarkToMarketResult> {
  const { rowCount } = await db.query(
    `WITH v AS (
       SELECT s.symbol, round(s.shares_outstanding * b.close) AS value, s.type = ANY($2::text[]) AS fund
       FROM symbols s JOIN ohlcv_daily b ON b.symbol = s.symbol AND b.date = $1::date
       WHERE s.active AND s.shares_outstanding > 0 AND b.close > 0
         AND (s.market_cap_as_of IS NULL OR s.market_cap_as_of <= $1::date)
     )
     UPDATE symbols s
     SET market_cap = v.value, aum = CASE WHEN v.fund THEN v.value ELSE s.aum END,
         market_cap_as_of = $1::date, updated_at = now()
     FROM v
     WHERE s.symbol = v.symbol
       AND (s.market_cap IS DISTINCT FROM v.value OR (v.fund AND s.aum IS DISTINCT FROM v.value)
            OR s.market_cap_as_of IS DISTINCT FROM $1::date)`,
    [tradeDate, FUND_TYPES],
  );
  return { updated: rowCount ?? 0 };
}

export interface RefreshPlan {
  /** The plan's rate limit (MARKET_API_CALLS_PER_MINUTE; free tier 5). */
  readonly callsPerMinute: number;
  /** Share of it the refresh may use (the IPO scan and backfills need the rest). */
  readonly share: number;
  /** Minutes between runs (the schedule). */
  readonly everyMinutes: number;
  /** The function's timeout: a run must finish its calls within 80 % of it. */
  readonly timeoutSeconds: number;
  /** Upper bound per run whatever the plan (paid tiers). */
  readonly maxBatch: number;
}

/**
 * Details calls per run: the share of the plan's calls between two runs, and no more than fit in
 * 80 % of the timeout at the plan's rate. Free tier (5/min, share 0.5, every 15 min, 900 s):
 * min(floor(5 x 0.5 x 15) = 37, floor(5 x 12) = 60) = 37 calls per run, 96 runs = 3,552 symbols a
 * day: an 8,000-symbol master every 2.3 days. A 6,000/min plan: min(45,000, 72,000, maxBatch 2,000).
 */
export function refreshBatchSize(plan: RefreshPlan): number {
  const byShare = Math.floor(plan.callsPerMinute * plan.share * plan.everyMinutes);
  const byTimeout = Math.floor(plan.callsPerMinute * ((plan.timeoutSeconds * 0.8) / 60));
  return Math.max(1, Math.min(byShare, byTimeout, plan.maxBatch));
}

export interface FundamentalsProvider {
  tickerDetailsRaw(symbol: string, date?: string): Promise<TickerDetails>;
}

export interface RefreshResult {
  readonly asOf: IsoDate;
  readonly selected: number;
  readonly refreshed: number;
  /** market_cap or aum changed. */
  readonly changed: number;
  readonly notFound: number;
  readonly failed: number;
  readonly errors: string[];
  readonly seconds: number;
}

/**
 * Re-reads the provider's details for the `batchSize` least recently refreshed active symbols
 * (never refreshed first), as of `asOf`. A symbol the provider no longer knows is stamped (it
 * leaves the front of the line; the IPO scan archives it); a failed call leaves it first in line
 * for the next run and never stops the batch.
 */
export async function refreshFundamentals(
  deps: { readonly pool: pg.Pool; readonly provider: FundamentalsProvider },
  options: { readonly asOf: IsoDate; readonly batchSize: number; readonly concurrency?: number },
): Promise<RefreshResult> {
  const started = performance.now();
  const { rows: batch } = await deps.pool.query<{ symbol: string }>(
    `SELECT symbol FROM symbols WHERE active
     ORDER BY fundamentals_refreshed_at NULLS FIRST, symbol LIMIT $1`,
    [options.batchSize],
  );
  const found: { symbol: string; market_cap: number | null; shares: number | null }[] = [];
  const missing: string[] = [];
  const errors: string[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < batch.length; i = next++) {
      const symbol = (batch[i] as { symbol: string }).symbol;
      try {
        const d = await deps.provider.tickerDetailsRaw(symbol, options.asOf);
        found.push({
          symbol,
          market_cap: d.market_cap ?? null,
          shares: d.share_class_shares_outstanding ?? d.weighted_shares_outstanding ?? null,
        });
      } catch (error) {
        if (error instanceof ProviderNotFoundError) {
          missing.push(symbol);
        } else {
          failed++;
          if (errors.length < 5) errors.push(`${symbol}: ${(error as Error).message}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));

  const { rows } = await deps.pool.query<{ changed: boolean }>(
    `WITH r AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r (symbol text, market_cap numeric, shares bigint)
     ), prior AS (
       SELECT s.symbol, s.market_cap, s.aum FROM symbols s JOIN r USING (symbol)
     )
     UPDATE symbols s
     SET shares_outstanding = coalesce(r.shares, s.shares_outstanding),
         -- a newer mark-to-market (a later session) is not overwritten by an older valuation
         market_cap = CASE WHEN r.market_cap IS NOT NULL AND (s.market_cap_as_of IS NULL OR s.market_cap_as_of <= $2::date)
                           THEN round(r.market_cap) ELSE s.market_cap END,
         aum = CASE WHEN s.type = ANY($3::text[]) AND r.market_cap IS NOT NULL
                         AND (s.market_cap_as_of IS NULL OR s.market_cap_as_of <= $2::date)
                    THEN round(r.market_cap) ELSE s.aum END,
         market_cap_as_of = CASE WHEN r.market_cap IS NOT NULL AND (s.market_cap_as_of IS NULL OR s.market_cap_as_of <= $2::date)
                                 THEN $2::date ELSE s.market_cap_as_of END,
         fundamentals_refreshed_at = now(), updated_at = now()
     FROM r, prior p
     WHERE s.symbol = r.symbol AND p.symbol = r.symbol
     RETURNING (p.market_cap IS DISTINCT FROM s.market_cap OR p.aum IS DISTINCT FROM s.aum) AS changed`,
    [JSON.stringify(found), options.asOf, FUND_TYPES],
  );
  if (missing.length > 0) {
    await deps.pool.query(
      'UPDATE symbols SET fundamentals_refreshed_at = now() WHERE symbol = ANY($1::text[])',
      [missing],
    );
  }
  return {
    asOf: options.asOf,
    selected: batch.length,
    refreshed: rows.length,
    changed: rows.filter((r) => r.changed).length,
    notFound: missing.length,
    failed,
    errors,
    seconds: (performance.now() - started) / 1000,
  };
}
