import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dispatchEquityBatches } from '../../../lambdas/market/equity-processing/dispatch';
import { InvalidMarketSqlArgumentError, UnknownEquityTypeError } from '../../../lambdas/market/sql/db';
import {
  claimSymbolsForProcessing,
  completeSymbolProcessing,
  getEquityProcessingConfig,
  getSymbolsForProcessing,
  queueSymbolsForProcessing,
  queueTypeSymbolsForSession,
  symbolsForProcessingType,
  updateProcessingStats,
} from '../../../lambdas/market/sql/processing-queue';
import {
  getEtfUniverse,
  getEtfUniversesSummary,
  getSymbolUniverses,
  getUniverseSymbols,
  refreshSymbolLiquidity,
  updateEtfUniverse,
  updateUniverse,
  validateEtfUniverseSymbols,
  validateUniverseSymbols,
} from '../../../lambdas/market/sql/universes';
import { createTestSchema, type TestSchema } from '../../support/db';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('market_sql_functions');
});
afterAll(() => db.drop());

async function queueRows(type: string) {
  const { rows } = await db.pool.query<{
    symbol: string;
    status: string;
    attempts: number;
    error: string | null;
  }>(
    `SELECT symbol, status, attempts, error FROM equity_processing_queue WHERE type = $1 ORDER BY symbol, id`,
    [type],
  );
  return rows;
}

describe('equity processing functions', () => {
  beforeEach(async () => {
    await db.pool.query('TRUNCATE equity_processing_queue');
    await db.pool.query(
      `UPDATE equity_types SET total_runs = 0, total_processed = 0, total_failed = 0,
         total_processing_seconds = 0, last_run_processed = NULL, last_run_failed = NULL,
         last_run_seconds = NULL, last_processed_at = NULL`,
    );
  });

  describe('get_equity_processing_config', () => {
    it('returns the type configuration, statistics and queue depth', async () => {
      // Prepare
      await queueSymbolsForProcessing(db.pool, 'ETF', ['SPY', 'QQQ', 'IWM']);
      await claimSymbolsForProcessing(db.pool, 'ETF', 1);

      // Act
      const config = await getEquityProcessingConfig(db.pool, 'ETF');

      // Assess
      expect(config).toMatchObject({
        type_name: 'ETF',
        update_frequency: 'daily',
        priority_level: 90,
        batch_size: 50,
        rate_limit_ms: 12000,
        requires_eod_validation: true,
        processing_rules: { max_attempts: 3 },
        stats: { total_runs: 0, total_processed: 0, last_processed_at: null },
        queue: { pending: 2, processing: 1 },
      });
    });

    it('returns null for an unknown type', async () => {
      // Act
      const config = await getEquityProcessingConfig(db.pool, 'CRYPTO');

      // Assess
      expect(config).toBeNull();
    });
  });

  describe('queue_symbols_for_processing', () => {
    it('returns the number actually queued and treats a re-queue of a queued symbol as a no-op', async () => {
      // Prepare
      const first = await queueSymbolsForProcessing(db.pool, 'ETF', ['SPY', 'QQQ']);

      // Act
      const again = await queueSymbolsForProcessing(db.pool, 'ETF', ['SPY', 'QQQ']);
      const mixed = await queueSymbolsForProcessing(db.pool, 'ETF', ['QQQ', 'DIA', 'DIA', ' ', '']);

      // Assess
      expect(first).toBe(2);
      expect(again).toBe(0);
      expect(mixed).toBe(1);
      expect((await queueRows('ETF')).map((r) => [r.symbol, r.status])).toEqual([
        ['DIA', 'pending'],
        ['QQQ', 'pending'],
        ['SPY', 'pending'],
      ]);
    });

    it('does not re-queue a symbol being processed, but does once it completed', async () => {
      // Prepare
      await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['AAPL']);
      await claimSymbolsForProcessing(db.pool, 'STOCK_EOD');

      // Act
      const whileProcessing = await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['AAPL']);
      await completeSymbolProcessing(db.pool, 'STOCK_EOD', 'AAPL');
      const afterCompletion = await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['AAPL']);

      // Assess
      expect(whileProcessing).toBe(0);
      expect(afterCompletion).toBe(1);
      expect((await queueRows('STOCK_EOD')).map((r) => r.status)).toEqual(['completed', 'pending']);
    });

    it('queues the same symbol independently per type, at the type priority by default', async () => {
      // Act
      const etf = await queueSymbolsForProcessing(db.pool, 'ETF', ['SPY']);
      const realtime = await queueSymbolsForProcessing(db.pool, 'STOCK_REALTIME', ['SPY']);

      // Assess
      expect([etf, realtime]).toEqual([1, 1]);
      const { rows } = await db.pool.query(
        `SELECT type, priority FROM equity_processing_queue WHERE symbol = 'SPY' ORDER BY type`,
      );
      expect(rows).toEqual([
        { type: 'ETF', priority: 90 },
        { type: 'STOCK_REALTIME', priority: 100 },
      ]);
    });

    it('refuses an unknown type with a named error', async () => {
      // Act
      const result = queueSymbolsForProcessing(db.pool, 'CRYPTO', ['BTC']);

      // Assess
      await expect(result).rejects.toBeInstanceOf(UnknownEquityTypeError);
      await expect(result).rejects.toThrow('unknown equity type: CRYPTO');
    });
  });

  describe('claim_symbols_for_processing', () => {
    it('claims in priority order, then schedule order, up to the limit, and marks them processing', async () => {
      // Prepare
      const base = new Date(Date.now() - 60_000);
      await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['LOW'], { priority: 10 });
      await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['MID_LATE'], {
        priority: 50,
        scheduledTime: new Date(base.getTime() + 10_000),
      });
      await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['MID_EARLY'], {
        priority: 50,
        scheduledTime: base,
      });
      await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['TOP'], { priority: 99 });

      // Act
      const firstBatch = await claimSymbolsForProcessing(db.pool, 'STOCK_EOD', 3);
      const secondBatch = await claimSymbolsForProcessing(db.pool, 'STOCK_EOD', 3);
      const thirdBatch = await claimSymbolsForProcessing(db.pool, 'STOCK_EOD', 3);

      // Assess
      expect(firstBatch.map((c) => [c.symbol, c.priority, c.attempts])).toEqual([
        ['TOP', 99, 1],
        ['MID_EARLY', 50, 1],
        ['MID_LATE', 50, 1],
      ]);
      expect(secondBatch.map((c) => c.symbol)).toEqual(['LOW']);
      expect(thirdBatch).toEqual([]);
      expect((await queueRows('STOCK_EOD')).every((r) => r.status === 'processing')).toBe(true);
    });

    it("defaults the limit to the type's batch size and skips work scheduled for later", async () => {
      // Prepare: DEV_TESTING has batch_size 10.
      const symbols = Array.from({ length: 15 }, (_, i) => `DEV${String(i).padStart(2, '0')}`);
      await queueSymbolsForProcessing(db.pool, 'DEV_TESTING', symbols);
      await queueSymbolsForProcessing(db.pool, 'DEV_TESTING', ['LATER'], {
        scheduledTime: new Date(Date.now() + 3_600_000),
      });

      // Act
      const first = await claimSymbolsForProcessing(db.pool, 'DEV_TESTING');
      const second = await claimSymbolsForProcessing(db.pool, 'DEV_TESTING');

      // Assess
      expect(first).toHaveLength(10);
      expect(second.map((c) => c.symbol)).toEqual(symbols.slice(10));
    });

    it('gives concurrent dispatchers disjoint claims without waiting on each other', async () => {
      // Prepare
      await queueSymbolsForProcessing(db.pool, 'ETF', ['A1', 'A2', 'A3', 'A4', 'A5', 'A6']);
      const one = await db.pool.connect();
      const two = await db.pool.connect();
      try {
        await one.query('BEGIN');
        await two.query('BEGIN');

        // Act: one holds its claimed rows locked (uncommitted) while two claims.
        const claimOne = await claimSymbolsForProcessing(one, 'ETF', 3);
        const claimTwo = await claimSymbolsForProcessing(two, 'ETF', 10);
        await one.query('COMMIT');
        await two.query('COMMIT');

        // Assess
        const a = claimOne.map((c) => c.symbol);
        const b = claimTwo.map((c) => c.symbol);
        expect(a).toHaveLength(3);
        expect(b).toHaveLength(3);
        expect(new Set([...a, ...b]).size).toBe(6);
      } finally {
        one.release();
        two.release();
      }
    });

    it('puts back a claim whose lease expired, and fails it after max_attempts', async () => {
      // Prepare: ETF lease_seconds 900, max_attempts 3.
      await queueSymbolsForProcessing(db.pool, 'ETF', ['LOST']);
      await claimSymbolsForProcessing(db.pool, 'ETF');
      await db.pool.query(`UPDATE equity_processing_queue SET last_attempt = now() - interval '16 minutes'`);

      // Act
      const reclaimed = await claimSymbolsForProcessing(db.pool, 'ETF');
      await db.pool.query(
        `UPDATE equity_processing_queue SET attempts = 3, last_attempt = now() - interval '16 minutes'`,
      );
      const exhausted = await claimSymbolsForProcessing(db.pool, 'ETF');

      // Assess
      expect(reclaimed.map((c) => [c.symbol, c.attempts])).toEqual([['LOST', 2]]);
      expect(exhausted).toEqual([]);
      const [row] = await queueRows('ETF');
      expect(row?.status).toBe('failed');
      expect(row?.error).toMatch(/lease expired/);
    });

    it('refuses an unknown type with a named error', async () => {
      // Act / Assess
      await expect(claimSymbolsForProcessing(db.pool, 'CRYPTO')).rejects.toBeInstanceOf(
        UnknownEquityTypeError,
      );
    });
  });

  describe('complete_symbol_processing', () => {
    it('completes on success, retries later on failure, fails after max_attempts', async () => {
      // Prepare: ETF max_attempts 3, DEV_TESTING max_attempts 1.
      await queueSymbolsForProcessing(db.pool, 'ETF', ['OK', 'FLAKY']);
      await queueSymbolsForProcessing(db.pool, 'DEV_TESTING', ['ONCE']);
      await claimSymbolsForProcessing(db.pool, 'ETF');
      await claimSymbolsForProcessing(db.pool, 'DEV_TESTING');

      // Act
      const ok = await completeSymbolProcessing(db.pool, 'ETF', 'OK');
      const flaky = await completeSymbolProcessing(db.pool, 'ETF', 'FLAKY', 'HTTP 503');
      const once = await completeSymbolProcessing(db.pool, 'DEV_TESTING', 'ONCE', 'HTTP 404');
      const unclaimed = await completeSymbolProcessing(db.pool, 'ETF', 'OK');
      const retryNow = await claimSymbolsForProcessing(db.pool, 'ETF');

      // Assess
      expect([ok, flaky, once, unclaimed]).toEqual(['completed', 'pending', 'failed', null]);
      expect(retryNow).toEqual([]);
      const { rows } = await db.pool.query(
        `SELECT symbol, error, scheduled_time > now() AS later, completed_at IS NOT NULL AS done
         FROM equity_processing_queue ORDER BY symbol`,
      );
      expect(rows).toEqual([
        { symbol: 'FLAKY', error: 'HTTP 503', later: true, done: false },
        { symbol: 'OK', error: null, later: false, done: true },
        { symbol: 'ONCE', error: 'HTTP 404', later: false, done: false },
      ]);
    });
  });

  describe('update_processing_stats', () => {
    it('accumulates runs into the type statistics and returns the totals', async () => {
      // Prepare
      await updateProcessingStats(db.pool, 'STOCK_EOD', { processed: 95, failed: 5, seconds: 300 });

      // Act
      const stats = await updateProcessingStats(db.pool, 'STOCK_EOD', {
        processed: 40,
        failed: 0,
        seconds: 12.5,
      });
      const config = await getEquityProcessingConfig(db.pool, 'STOCK_EOD');

      // Assess
      expect(stats).toMatchObject({
        total_runs: 2,
        total_processed: 135,
        total_failed: 5,
        total_processing_seconds: 312.5,
        last_run_processed: 40,
        last_run_failed: 0,
        last_run_seconds: 12.5,
      });
      expect(stats.last_processed_at).not.toBeNull();
      expect(config?.stats).toEqual(stats);
      expect((await getEquityProcessingConfig(db.pool, 'ETF'))?.stats.total_runs).toBe(0);
    });

    it('refuses negative figures and unknown types with named errors, changing nothing', async () => {
      // Act
      const [negative, unknown] = await Promise.allSettled([
        updateProcessingStats(db.pool, 'ETF', { processed: -1, failed: 0, seconds: 1 }),
        updateProcessingStats(db.pool, 'CRYPTO', { processed: 1, failed: 0, seconds: 1 }),
      ]);

      // Assess
      expect(negative).toMatchObject({
        status: 'rejected',
        reason: expect.any(InvalidMarketSqlArgumentError),
      });
      expect(unknown).toMatchObject({ status: 'rejected', reason: expect.any(UnknownEquityTypeError) });
      expect((await getEquityProcessingConfig(db.pool, 'ETF'))?.stats.total_runs).toBe(0);
    });
  });
});

describe('universe functions', () => {
  beforeEach(async () => {
    await db.pool.query(
      'TRUNCATE universes, universe_members, universe_changes, symbols, ohlcv_daily, symbol_liquidity',
    );
  });

  async function changeLog() {
    const { rows } = await db.pool.query(
      `SELECT change_type, category, universe, symbol, action, reason FROM universe_changes
       ORDER BY id`,
    );
    return rows;
  }

  /** n consecutive daily bars ending today-1 with the given volume and close. */
  async function bars(symbol: string, n: number, volume: number, close: number, ageOffset = 0) {
    await db.pool.query(
      `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)
       SELECT $1, current_date - (g + $5::int), $3::float8, $3::float8 * 1.01, $3::float8 * 0.99, $3::float8,
              $2::bigint
       FROM generate_series(1, $4::int) AS g`,
      [symbol, volume, close, n, ageOffset],
    );
  }

  async function symbol(ticker: string, values: { active?: boolean; aum?: number; delisted?: string } = {}) {
    await db.pool.query(
      `INSERT INTO symbols (symbol, name, type, active, aum, delisted_at) VALUES ($1, $1 || ' fund', 'ETF', $2, $3, $4)`,
      [ticker, values.active ?? true, values.aum ?? null, values.delisted ?? null],
    );
  }

  describe('update_etf_universe', () => {
    it('creates a theme and logs every symbol as added', async () => {
      // Act
      const change = await updateEtfUniverse(db.pool, 'growth', ['VUG', 'IWF', 'SCHG'], {
        description: 'Large-cap growth',
        reason: 'initial load',
      });

      // Assess
      expect(change).toEqual({
        category: 'etf',
        universe: 'growth',
        created: true,
        added: ['VUG', 'IWF', 'SCHG'],
        removed: [],
        symbol_count: 3,
      });
      expect(await getUniverseSymbols(db.pool, 'etf', 'growth')).toEqual(['VUG', 'IWF', 'SCHG']);
      expect(await changeLog()).toEqual(
        ['VUG', 'IWF', 'SCHG'].map((s) => ({
          change_type: 'etf_universe_update',
          category: 'etf',
          universe: 'growth',
          symbol: s,
          action: 'added',
          reason: 'initial load',
        })),
      );
      const { rows } = await db.pool.query(`SELECT metadata, liquidity_filter FROM universes`);
      expect(rows).toEqual([{ metadata: { description: 'Large-cap growth' }, liquidity_filter: {} }]);
    });

    it('returns what was added and removed, logs exactly those, and follows the new order', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'growth', ['VUG', 'IWF', 'SCHG', 'MGK']);
      const before = await db.pool.query(`SELECT added_at FROM universe_members WHERE symbol = 'VUG'`);
      await db.pool.query('TRUNCATE universe_changes');

      // Act
      const change = await updateEtfUniverse(db.pool, 'growth', ['SPYG', 'VUG', 'IWF', 'VONG'], {
        reason: 'quarterly review',
      });

      // Assess
      expect(change).toMatchObject({
        created: false,
        added: ['SPYG', 'VONG'],
        removed: ['MGK', 'SCHG'],
        symbol_count: 4,
      });
      expect(await getUniverseSymbols(db.pool, 'etf', 'growth')).toEqual(['SPYG', 'VUG', 'IWF', 'VONG']);
      expect((await changeLog()).map((r) => [r.symbol, r.action, r.reason])).toEqual([
        ['SPYG', 'added', 'quarterly review'],
        ['VONG', 'added', 'quarterly review'],
        ['MGK', 'removed', 'quarterly review'],
        ['SCHG', 'removed', 'quarterly review'],
      ]);
      const after = await db.pool.query(`SELECT added_at FROM universe_members WHERE symbol = 'VUG'`);
      expect(after.rows[0].added_at).toEqual(before.rows[0].added_at);
      const count = await db.pool.query(`SELECT symbol_count FROM universes WHERE name = 'growth'`);
      expect(count.rows[0].symbol_count).toBe(4);
    });

    it('changes nothing and logs nothing when the membership is the same', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'bonds', ['AGG', 'BND']);

      // Act
      const change = await updateEtfUniverse(db.pool, 'bonds', ['AGG', 'BND']);

      // Assess
      expect(change).toMatchObject({ created: false, added: [], removed: [], symbol_count: 2 });
      expect(await changeLog()).toHaveLength(2);
    });

    it('accepts objects with a symbol key, keeps the first of duplicates, and stores the liquidity filter', async () => {
      // Act
      const change = await updateUniverse(db.pool, {
        category: 'etf',
        name: 'commodities',
        symbols: ['GLD', 'SLV', 'GLD', 'USO'],
        liquidityFilter: { min_avg_volume: 100_000 },
        metadata: { source: 'issuer lists' },
      });
      const viaObjects = await db.pool.query(
        `SELECT update_etf_universe('commodities', $1::jsonb, NULL) AS change`,
        [JSON.stringify([{ symbol: 'USO' }, { symbol: 'GLD', weight: 2 }])],
      );

      // Assess
      expect(change.added).toEqual(['GLD', 'SLV', 'USO']);
      expect(viaObjects.rows[0].change.removed).toEqual(['SLV']);
      expect(await getUniverseSymbols(db.pool, 'etf', 'commodities')).toEqual(['USO', 'GLD']);
      const { rows } = await db.pool.query(`SELECT metadata, liquidity_filter FROM universes`);
      // NULL metadata keeps what was stored.
      expect(rows).toEqual([
        { metadata: { source: 'issuer lists' }, liquidity_filter: { min_avg_volume: 100_000 } },
      ]);
    });

    it('refuses malformed input with a named error and leaves the universe as it was', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'value', ['VTV', 'IWD']);

      // Act
      const [blank, notArray, badName] = await Promise.allSettled([
        updateEtfUniverse(db.pool, 'value', ['VTV', ' ']),
        db.pool.query(`SELECT update_etf_universe('value', '{"symbol": "VTV"}', NULL)`),
        updateEtfUniverse(db.pool, 'Value Funds', ['VTV']),
      ]);

      // Assess
      expect(blank).toMatchObject({ status: 'rejected', reason: expect.any(InvalidMarketSqlArgumentError) });
      expect(notArray).toMatchObject({ status: 'rejected', reason: { code: '22023' } });
      expect(badName).toMatchObject({
        status: 'rejected',
        reason: expect.any(InvalidMarketSqlArgumentError),
      });
      expect(await getUniverseSymbols(db.pool, 'etf', 'value')).toEqual(['VTV', 'IWD']);
      expect(await changeLog()).toHaveLength(2);
    });

    it('lets readers keep the previous membership until the rewrite commits, without blocking them', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'technology', ['XLK', 'VGT']);
      const writer = await db.pool.connect();
      try {
        await writer.query('BEGIN');
        await updateEtfUniverse(writer, 'technology', ['XLK', 'SMH', 'SOXX']);

        // Act
        const during = (await getEtfUniverse(db.pool, 'technology')).map((m) => m.symbol);
        await writer.query('COMMIT');
        const after = (await getEtfUniverse(db.pool, 'technology')).map((m) => m.symbol);

        // Assess
        expect(during).toEqual(['XLK', 'VGT']);
        expect(after).toEqual(['XLK', 'SMH', 'SOXX']);
      } finally {
        writer.release();
      }
    });
  });

  describe('get_etf_universe', () => {
    beforeEach(async () => {
      // Prepare: one theme whose members each fail a different part of the filter, except LIQ.
      await symbol('LIQ', { aum: 5e9 });
      await symbol('THIN', { aum: 5e9 });
      await symbol('CHEAP', { aum: 5e9 });
      await symbol('SMALL', { aum: 1e7 });
      await symbol('GONE', { active: false, aum: 5e9 });
      await symbol('NOBARS', { aum: 5e9 });
      await bars('LIQ', 20, 2_000_000, 50);
      // 25 older bars of huge volume lie outside the 20-bar lookback and must not lift THIN's average.
      await bars('THIN', 20, 10_000, 50);
      await bars('THIN', 25, 90_000_000, 50, 20);
      await bars('CHEAP', 20, 2_000_000, 2);
      await bars('SMALL', 20, 2_000_000, 50);
      await bars('GONE', 20, 2_000_000, 50);
      await updateEtfUniverse(
        db.pool,
        'broad_market',
        ['LIQ', 'THIN', 'CHEAP', 'SMALL', 'GONE', 'NOBARS', 'GHOST'],
        {
          liquidity_filter: { min_avg_volume: 500_000, min_price: 5, min_aum: 1e8, lookback_days: 20 },
        },
      );
    });

    it('returns every member in list order with its liquidity figures when not filtering', async () => {
      // Act
      const members = await getEtfUniverse(db.pool, 'broad_market', { applyLiquidityFilter: false });

      // Assess
      expect(members.map((m) => m.symbol)).toEqual([
        'LIQ',
        'THIN',
        'CHEAP',
        'SMALL',
        'GONE',
        'NOBARS',
        'GHOST',
      ]);
      const bySymbol = new Map(members.map((m) => [m.symbol, m]));
      expect(bySymbol.get('LIQ')).toMatchObject({
        ordinal: 1,
        name: 'LIQ fund',
        type: 'ETF',
        active: true,
        aum: 5e9,
        avgVolume: 2_000_000,
        avgDollarVolume: 100_000_000,
        lastClose: 50,
      });
      expect(bySymbol.get('LIQ')?.lastBarDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(bySymbol.get('THIN')?.avgVolume).toBe(10_000);
      expect(bySymbol.get('GHOST')).toMatchObject({ name: null, active: null, avgVolume: null });
    });

    it('keeps only known, active members meeting every threshold when filtering', async () => {
      // Act
      const members = await getEtfUniverse(db.pool, 'broad_market', { applyLiquidityFilter: true });

      // Assess
      expect(members.map((m) => m.symbol)).toEqual(['LIQ']);
    });

    it('applies only the thresholds the filter names', async () => {
      // Prepare: volume alone; CHEAP and SMALL now pass, THIN still fails.
      await updateEtfUniverse(
        db.pool,
        'broad_market',
        ['LIQ', 'THIN', 'CHEAP', 'SMALL', 'GONE', 'NOBARS', 'GHOST'],
        {
          liquidity_filter: { min_avg_volume: 500_000 },
        },
      );

      // Act
      const members = await getEtfUniverse(db.pool, 'broad_market', { applyLiquidityFilter: true });

      // Assess
      expect(members.map((m) => m.symbol)).toEqual(['LIQ', 'CHEAP', 'SMALL']);
    });

    it('returns nothing for an unknown theme and ignores non-ETF universes of the same name', async () => {
      // Prepare
      await updateUniverse(db.pool, { category: 'theme', name: 'ai', symbols: ['NVDA'] });

      // Act
      const unknown = await getEtfUniverse(db.pool, 'ai');

      // Assess
      expect(unknown).toEqual([]);
    });
  });

  describe('refresh_symbol_liquidity', () => {
    beforeEach(async () => {
      // Prepare
      await symbol('LIQ');
      await symbol('THIN');
      await bars('LIQ', 20, 2_000_000, 50);
      await bars('THIN', 20, 10_000, 50);
      await bars('THIN', 25, 90_000_000, 50, 20);
      await bars('NOT_TRACKED', 20, 1, 1);
      await updateEtfUniverse(db.pool, 'core', ['LIQ', 'THIN', 'GHOST'], {
        liquidity_filter: { min_avg_volume: 500_000 },
      });
    });

    const snapshotRows = async () =>
      (
        await db.pool.query(
          `SELECT symbol, bar_count, avg_volume, last_close, as_of_date = (SELECT max(date) FROM ohlcv_daily) AS fresh
           FROM symbol_liquidity ORDER BY symbol`,
        )
      ).rows;

    it('snapshots the last-N-bar figures of tracked symbols, identical to the live computation', async () => {
      // Prepare
      const live = await getEtfUniverse(db.pool, 'core');

      // Act
      const written = await refreshSymbolLiquidity(db.pool);
      const fromSnapshot = await getEtfUniverse(db.pool, 'core');

      // Assess
      expect(written).toBe(2);
      expect(await snapshotRows()).toEqual([
        { symbol: 'LIQ', bar_count: 20, avg_volume: 2_000_000, last_close: 50, fresh: true },
        { symbol: 'THIN', bar_count: 20, avg_volume: 10_000, last_close: 50, fresh: true },
      ]);
      expect(fromSnapshot).toEqual(live);
      // Analyzed by the refresh itself, so reads are planned on the real size at once.
      const { rows } = await db.pool.query(`SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, [
        `${db.schema}.symbol_liquidity`,
      ]);
      expect(rows[0].reltuples).toBe(2);
    });

    it('serves reads from a fresh snapshot and falls back to live figures once newer bars arrive', async () => {
      // Prepare: a doctored snapshot value shows which path answered.
      await refreshSymbolLiquidity(db.pool);
      await db.pool.query(`UPDATE symbol_liquidity SET avg_volume = 1 WHERE symbol = 'LIQ'`);

      // Act
      const fromSnapshot = await getEtfUniverse(db.pool, 'core', { applyLiquidityFilter: true });
      await db.pool.query(
        `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)
         VALUES ('THIN', current_date, 50, 51, 49, 50, 10000)`,
      );
      const afterNewBars = await getEtfUniverse(db.pool, 'core', { applyLiquidityFilter: true });

      // Assess
      expect(fromSnapshot).toEqual([]);
      expect(afterNewBars.map((m) => [m.symbol, m.avgVolume])).toEqual([['LIQ', 2_000_000]]);
    });

    it('ignores a snapshot taken with another lookback than the theme asks for', async () => {
      // Prepare
      await refreshSymbolLiquidity(db.pool, 20);
      await db.pool.query(`UPDATE symbol_liquidity SET avg_volume = 1 WHERE symbol = 'LIQ'`);
      await updateEtfUniverse(db.pool, 'core', ['LIQ', 'THIN', 'GHOST'], {
        liquidity_filter: { min_avg_volume: 500_000, lookback_days: 5 },
      });

      // Act
      const members = await getEtfUniverse(db.pool, 'core', { applyLiquidityFilter: true });

      // Assess
      expect(members.map((m) => [m.symbol, m.avgVolume])).toEqual([['LIQ', 2_000_000]]);
    });

    it('drops rows of symbols no longer tracked and refuses a non-positive lookback', async () => {
      // Prepare
      await refreshSymbolLiquidity(db.pool);
      await db.pool.query(`DELETE FROM symbols WHERE symbol = 'THIN'`);
      await updateEtfUniverse(db.pool, 'core', ['LIQ']);

      // Act
      const written = await refreshSymbolLiquidity(db.pool);
      const [invalid] = await Promise.allSettled([refreshSymbolLiquidity(db.pool, 0)]);

      // Assess
      expect(written).toBe(1);
      expect((await snapshotRows()).map((r) => r.symbol)).toEqual(['LIQ']);
      expect(invalid).toMatchObject({
        status: 'rejected',
        reason: expect.any(InvalidMarketSqlArgumentError),
      });
    });
  });

  describe('get_etf_universes_summary', () => {
    it('counts ETF themes, memberships and distinct symbols, one entry per theme by name', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'sectors', ['XLK', 'XLF', 'XLE']);
      await updateEtfUniverse(db.pool, 'technology', ['XLK', 'VGT'], { liquidity_filter: { min_price: 5 } });
      await updateUniverse(db.pool, { category: 'market_cap', name: 'top_100', symbols: ['AAPL', 'MSFT'] });

      // Act
      const summary = await getEtfUniversesSummary(db.pool);

      // Assess
      expect(summary).toMatchObject({ universe_count: 2, total_memberships: 5, distinct_symbols: 4 });
      expect(summary.universes.map((u) => [u.theme, u.symbol_count, u.liquidity_filter])).toEqual([
        ['sectors', 3, {}],
        ['technology', 2, { min_price: 5 }],
      ]);
      expect(summary.last_universe_update).not.toBeNull();
    });

    it('reports zero universes on an empty table', async () => {
      // Act
      const summary = await getEtfUniversesSummary(db.pool);

      // Assess
      expect(summary).toEqual({
        universe_count: 0,
        total_memberships: 0,
        distinct_symbols: 0,
        last_universe_update: null,
        universes: [],
      });
    });
  });

  describe('validate_etf_universe_symbols', () => {
    it('reports unknown and inactive (or delisted) members only, ETF themes only', async () => {
      // Prepare
      await symbol('SPY');
      await symbol('OLD', { active: false });
      await symbol('GONE', { delisted: '2020-01-02' });
      await symbol('SOON', { delisted: '2999-01-01' });
      await updateEtfUniverse(db.pool, 'broad_market', ['SPY', 'OLD', 'NOPE', 'SOON']);
      await updateEtfUniverse(db.pool, 'legacy', ['GONE']);
      await updateUniverse(db.pool, { category: 'sector', name: 'technology', symbols: ['MISSING'] });

      // Act
      const etf = await validateEtfUniverseSymbols(db.pool);
      const all = await validateUniverseSymbols(db.pool);

      // Assess
      expect(etf).toEqual([
        { theme: 'broad_market', symbol: 'NOPE', issue: 'unknown' },
        { theme: 'broad_market', symbol: 'OLD', issue: 'inactive' },
        { theme: 'legacy', symbol: 'GONE', issue: 'inactive' },
      ]);
      expect(all).toContainEqual({
        category: 'sector',
        universe: 'technology',
        symbol: 'MISSING',
        issue: 'unknown',
      });
      expect(all).toHaveLength(4);
    });
  });

  describe('lookups', () => {
    it('finds every universe that holds a symbol', async () => {
      // Prepare
      await updateEtfUniverse(db.pool, 'technology', ['XLK', 'VGT']);
      await updateUniverse(db.pool, { category: 'market_cap', name: 'top_100', symbols: ['AAPL', 'XLK'] });
      await updateUniverse(db.pool, { category: 'sector', name: 'technology', symbols: ['AAPL'] });

      // Act
      const universes = await getSymbolUniverses(db.pool, 'XLK');

      // Assess
      expect(universes).toEqual([
        { category: 'etf', universe: 'technology' },
        { category: 'market_cap', universe: 'top_100' },
      ]);
      expect(await getUniverseSymbols(db.pool, 'sector', 'missing')).toEqual([]);
    });

    it("logs the caller's change type for non-ETF universes", async () => {
      // Act
      await updateUniverse(db.pool, {
        category: 'ipo',
        name: 'recent_ipos',
        symbols: ['NEWCO'],
        changeType: 'ipo_assignment',
        reason: 'first seen 2024-03-01',
      });

      // Assess
      expect(await changeLog()).toEqual([
        {
          change_type: 'ipo_assignment',
          category: 'ipo',
          universe: 'recent_ipos',
          symbol: 'NEWCO',
          action: 'added',
          reason: 'first seen 2024-03-01',
        },
      ]);
    });
  });
});

describe('processing types: reading, membership and queuing per session', () => {
  beforeAll(async () => {
    await db.pool.query('TRUNCATE equity_processing_queue, ohlcv_daily, symbols, universes CASCADE');
    await db.pool.query(
      `INSERT INTO symbols (symbol, name, type, active) VALUES
         ('BIG', 'Big Co', 'CS', true), ('PNY', 'Penny Co', 'CS', true), ('NEWCO', 'New Co', 'CS', true),
         ('GONE', 'Gone Co', 'CS', false), ('SPY', 'S&P fund', 'ETF', true), ('XLK', 'Tech fund', 'ETF', true),
         ('LONE', 'Lone fund', 'ETF', true), ('NOTE', 'A note', 'ETN', true)`,
    );
    await db.pool.query(
      `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume) VALUES
         ('BIG', '2025-06-13', 100, 101, 99, 100, 1000), ('PNY', '2025-06-13', 2, 2.1, 1.9, 2, 1000)`,
    );
    await updateEtfUniverse(db.pool, 'broad', ['SPY', 'XLK']);
  });

  it('get_symbols_for_processing only reads: two calls return the same due symbols and change nothing', async () => {
    // Prepare
    await db.pool.query('TRUNCATE equity_processing_queue');
    await queueSymbolsForProcessing(db.pool, 'STOCK_EOD', ['AAA', 'BBB']);

    // Act
    const first = await getSymbolsForProcessing(db.pool, 'STOCK_EOD');
    const second = await getSymbolsForProcessing(db.pool, 'STOCK_EOD');
    const claimed = await claimSymbolsForProcessing(db.pool, 'STOCK_EOD');
    const afterClaim = await getSymbolsForProcessing(db.pool, 'STOCK_EOD');

    // Assess
    expect(first.map((r) => r.symbol)).toEqual(['AAA', 'BBB']);
    expect(second).toEqual(first);
    expect(claimed.map((r) => r.symbol)).toEqual(['AAA', 'BBB']);
    expect(afterClaim).toEqual([]);
    await expect(getSymbolsForProcessing(db.pool, 'NO_SUCH')).rejects.toBeInstanceOf(UnknownEquityTypeError);
  });

  it('defines the symbols of each type: active common stocks by price, the ETF universes, the ETNs', async () => {
    // Act
    const [eod, penny, etf, etn, realtime] = await Promise.all(
      ['STOCK_EOD', 'PENNY_STOCK', 'ETF', 'ETN', 'STOCK_REALTIME'].map((t) =>
        symbolsForProcessingType(db.pool, t),
      ),
    );

    // Assess: a stock without bars is not a penny stock; an ETF outside the universes is not taken
    expect(eod).toEqual(['BIG', 'NEWCO']);
    expect(penny).toEqual(['PNY']);
    expect(etf).toEqual(['SPY', 'XLK']);
    expect(etn).toEqual(['NOTE']);
    expect(realtime).toEqual([]);
  });

  it('queues a type once per session, and again for the next session', async () => {
    // Prepare
    await db.pool.query('TRUNCATE equity_processing_queue');

    // Act
    const first = await queueTypeSymbolsForSession(db.pool, 'ETF', '2025-06-13');
    const again = await queueTypeSymbolsForSession(db.pool, 'ETF', '2025-06-13');
    const claimed = await claimSymbolsForProcessing(db.pool, 'ETF');
    for (const c of claimed) await completeSymbolProcessing(db.pool, 'ETF', c.symbol);
    const afterDone = await queueTypeSymbolsForSession(db.pool, 'ETF', '2025-06-13');
    const nextSession = await queueTypeSymbolsForSession(db.pool, 'ETF', '2999-01-02');

    // Assess
    expect([first, again, afterDone]).toEqual([2, 0, 0]);
    expect(claimed.map((c) => c.symbol)).toEqual(['SPY', 'XLK']);
    expect(nextSession).toBe(2);
  });

  it('the scheduled dispatcher queues the daily types for the session, then claims them; a second run adds nothing', async () => {
    // Prepare
    await db.pool.query('TRUNCATE equity_processing_queue');
    const sent: string[] = [];
    const sender = {
      send: async (messages: readonly { id: string; body: string; delaySeconds: number }[]) => {
        sent.push(...messages.map((m) => m.body));
        return { failed: [] };
      },
    };

    // Act
    const first = await dispatchEquityBatches(
      { pool: db.pool, sender },
      { types: ['ETF', 'STOCK_REALTIME'], asOf: '2025-06-13', queueForSession: true },
    );
    const second = await dispatchEquityBatches(
      { pool: db.pool, sender },
      { types: ['ETF', 'STOCK_REALTIME'], asOf: '2025-06-13', queueForSession: true },
    );

    // Assess: STOCK_REALTIME is not a daily type and is not queued by the schedule
    expect(first.types.map((t) => [t.type, t.queued, t.claimed])).toEqual([
      ['STOCK_REALTIME', 0, 0],
      ['ETF', 2, 2],
    ]);
    expect(second.claimed).toBe(0);
    expect(second.types.every((t) => t.queued === 0)).toBe(true);
    expect(sent.map((b) => JSON.parse(b).symbols.map((x: { symbol: string }) => x.symbol))).toEqual([
      ['SPY', 'XLK'],
    ]);
  });
});

describe('cache_entries compatibility view', () => {
  it("shows each universe with the seeds' columns and refuses writes", async () => {
    // Prepare
    await updateEtfUniverse(db.pool, 'compat_theme', ['XLK', 'SPY'], {
      liquidity_filter: { min_avg_volume: 1000 },
    });

    // Act
    const { rows } = await db.pool.query<{
      type: string;
      key: string;
      value: { symbols: string[]; count: number };
      universe_category: string;
      liquidity_filter: Record<string, unknown>;
      universe_metadata: Record<string, unknown>;
      last_universe_update: Date;
    }>(
      `SELECT type, key, value, universe_category, liquidity_filter, universe_metadata, last_universe_update
       FROM cache_entries WHERE universe_category = 'etf' AND key = 'compat_theme'`,
    );
    const write = db.pool.query(`UPDATE cache_entries SET key = 'x' WHERE key = 'compat_theme'`);

    // Assess
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      type: 'etf_universe',
      universe_category: 'etf',
      value: { symbols: ['XLK', 'SPY'], count: 2 },
      liquidity_filter: { min_avg_volume: 1000 },
    });
    expect(rows[0]?.last_universe_update).toBeInstanceOf(Date);
    expect(typeof rows[0]?.universe_metadata).toBe('object');
    await expect(write).rejects.toThrow(/cannot update view/);
  });
});
