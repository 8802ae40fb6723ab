/**
 * Market caps and ETF assets from fresh values: the scheduled refresh reads the provider's details
 * (the local market API values a listing at a date: shares x that day's close) in rotating batches
 * sized to the plan, and the universe sync marks every symbol to the session's close and re-tiers.
 * Real PostgreSQL schema, real Redis, the local market API in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEodChain } from '../../lambdas/market/eod/chain';
import { refreshBatchSize, refreshFundamentals } from '../../lambdas/market/fundamentals/refresh';
import { capTierOf } from '../../lambdas/market/ipo/classify';
import { type IpoStage, loadMarketUntil, stageTransportFor, startIpoStage } from './ipo-support';

const D0 = '2025-07-01';
const D1 = '2025-07-02';

describe('refreshBatchSize: the plan arithmetic', () => {
  it('free tier: 37 calls per 15-minute run (half of 5/min), paid tiers capped by maxBatch, never beyond 80 % of the timeout', () => {
    const plan = { callsPerMinute: 5, share: 0.5, everyMinutes: 15, timeoutSeconds: 900, maxBatch: 2000 };
    expect(refreshBatchSize(plan)).toBe(37);
    expect(refreshBatchSize({ ...plan, callsPerMinute: 6000 })).toBe(2000);
    // Hourly at 5/min and share 1 would be 300 calls, but only 48 fit in 80 % of a 600 s timeout.
    expect(refreshBatchSize({ ...plan, share: 1, everyMinutes: 60, timeoutSeconds: 600 })).toBe(40);
    expect(refreshBatchSize({ ...plan, callsPerMinute: 0.01 })).toBe(1);
  });
});

describe('market caps and ETF assets (real PostgreSQL, local market API)', () => {
  let stage: IpoStage;

  const detailsCalls = () =>
    Object.entries(stage.api.stats())
      .filter(([route]) => route.startsWith('/v3/reference/tickers/'))
      .reduce((n, [, c]) => n + c, 0);

  beforeAll(async () => {
    stage = await startIpoStage({ label: 'market_caps', market: { seed: 'market-caps-it', size: 800 } });
    await loadMarketUntil(stage, '2025-05-01', D0);
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('refreshes the least recently refreshed batch from the provider, one details call per symbol, and rotates', async () => {
    // Arrange
    const { rows: order } = await stage.db.pool.query<{ symbol: string }>(
      'SELECT symbol FROM symbols WHERE active ORDER BY symbol',
    );
    const callsBefore = detailsCalls();

    // Act
    const first = await refreshFundamentals(
      { pool: stage.db.pool, provider: stage.provider },
      { asOf: D0, batchSize: 50 },
    );
    const second = await refreshFundamentals(
      { pool: stage.db.pool, provider: stage.provider },
      { asOf: D0, batchSize: 50 },
    );

    // Assess: 100 calls, the first 50 then the next 50 (never refreshed first, by symbol)
    expect(detailsCalls() - callsBefore).toBe(100);
    expect(first).toMatchObject({ selected: 50, refreshed: 50, failed: 0 });
    expect(second).toMatchObject({ selected: 50, refreshed: 50, failed: 0 });
    const { rows } = await stage.db.pool.query<{
      symbol: string;
      type: string;
      market_cap: string;
      aum: string | null;
      shares_outstanding: string;
      market_cap_as_of: string;
      close: number;
      refreshed: boolean;
    }>(
      `SELECT s.symbol, s.type, s.market_cap, s.aum, s.shares_outstanding, s.market_cap_as_of::text,
              b.close::float8 AS close, s.fundamentals_refreshed_at IS NOT NULL AS refreshed
       FROM symbols s JOIN ohlcv_daily b ON b.symbol = s.symbol AND b.date = $1::date
       WHERE s.active ORDER BY s.symbol`,
      [D0],
    );
    const refreshed = rows.filter((r) => r.refreshed).map((r) => r.symbol);
    expect(refreshed).toEqual(
      order
        .map((r) => r.symbol)
        .slice(0, 100)
        .filter((s) => rows.some((r) => r.symbol === s)),
    );
    for (const r of rows.filter((x) => x.refreshed)) {
      // The provider's value at D0: shares x D0's close; a fund's assets are the same product.
      const value = Math.round(Number(r.shares_outstanding) * r.close);
      expect(Number(r.market_cap), r.symbol).toBe(value);
      expect(r.market_cap_as_of).toBe(D0);
      if (r.type === 'ETF' || r.type === 'ETN') expect(Number(r.aum), r.symbol).toBe(value);
    }
  });

  it('the universe sync values every symbol at the session close and re-tiers from those values', async () => {
    // Arrange: the static scenario caps the symbols were loaded with
    const { rows: loaded } = await stage.db.pool.query<{ symbol: string; market_cap: string }>(
      "SELECT symbol, market_cap FROM symbols WHERE active AND type = 'CS' AND market_cap_as_of IS NULL",
    );
    const staticTier = new Map(loaded.map((r) => [r.symbol, capTierOf(Number(r.market_cap))]));

    // Act: the EOD chain of D1 (its load brings D1's bars; the sync marks to market and re-tiers)
    const result = await runEodChain(
      {
        pool: stage.db.pool,
        provider: stage.provider,
        transportFor: stageTransportFor(stage),
      },
      { tradeDate: D1 },
    );

    // Assess: every active symbol with shares and a D1 bar is valued at D1's close
    expect(result.sync?.status).toBe('synced');
    expect(result.sync?.marketCapsMarked).toBeGreaterThan(0);
    const { rows } = await stage.db.pool.query<{
      symbol: string;
      type: string;
      market_cap: string;
      aum: string | null;
      value: string;
      market_cap_as_of: string;
    }>(
      `SELECT s.symbol, s.type, s.market_cap, s.aum, round(s.shares_outstanding * b.close) AS value,
              s.market_cap_as_of::text
       FROM symbols s JOIN ohlcv_daily b ON b.symbol = s.symbol AND b.date = $1::date
       WHERE s.active AND s.shares_outstanding > 0`,
      [D1],
    );
    expect(rows.length).toBeGreaterThan(500);
    for (const r of rows) {
      expect(Number(r.market_cap), r.symbol).toBe(Number(r.value));
      expect(r.market_cap_as_of).toBe(D1);
      if (r.type === 'ETF') expect(Number(r.aum), r.symbol).toBe(Number(r.value));
    }
    // Assess: stocks whose tier moved with their price are in the fresh tier's universe only
    const { rows: members } = await stage.db.pool.query<{ name: string; symbol: string }>(
      `SELECT u.name, m.symbol FROM universes u JOIN universe_members m ON m.universe_id = u.id
       WHERE u.category = 'market_cap' AND u.name IN ('mega', 'large', 'mid', 'small', 'micro')`,
    );
    const tierOf = new Map(members.map((m) => [m.symbol, m.name]));
    const moved = rows.filter(
      (r) =>
        r.type === 'CS' &&
        staticTier.has(r.symbol) &&
        staticTier.get(r.symbol) !== capTierOf(Number(r.value)),
    );
    expect(moved.length).toBeGreaterThan(0);
    for (const r of moved) expect(tierOf.get(r.symbol), r.symbol).toBe(capTierOf(Number(r.value)));

    // Assess: a later refresh valued at an older date does not move the valuation back
    const before = await stage.db.pool.query('SELECT symbol, market_cap, aum FROM symbols ORDER BY symbol');
    const again = await refreshFundamentals(
      { pool: stage.db.pool, provider: stage.provider },
      { asOf: D0, batchSize: 20 },
    );
    expect(again).toMatchObject({ refreshed: 20, changed: 0 });
    expect(
      (await stage.db.pool.query('SELECT symbol, market_cap, aum FROM symbols ORDER BY symbol')).rows,
    ).toEqual(before.rows);
  });
});
