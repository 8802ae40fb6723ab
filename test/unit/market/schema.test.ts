import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SymbolRecord } from '../../../lambdas/market/types';
import { loadMigrations, migrate } from '../../../lambdas/platform/migrations';
import { MIGRATIONS_DIR } from '../../../lib/paths';
import { createTestSchema, type TestSchema } from '../../support/db';

const MARKET_MIGRATIONS = [
  '0100_market_symbols_bars',
  '0110_equity_types',
  '0120_universes',
  '0130_data_quality',
  '0140_universe_read_path',
  '0150_universe_read_tuning',
];

const MARKET_FUNCTIONS = [
  'get_equity_processing_config',
  'get_symbols_for_processing',
  'queue_symbols_for_processing',
  'complete_symbol_processing',
  'update_processing_stats',
  'update_universe',
  'update_etf_universe',
  'get_universe_symbols',
  'get_symbol_universes',
  'get_etf_universe',
  'get_etf_universes_summary',
  'validate_universe_symbols',
  'validate_etf_universe_symbols',
  'refresh_symbol_liquidity',
];

const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

interface PgError {
  code?: string;
  constraint?: string;
}

async function sqlError(promise: Promise<unknown>): Promise<PgError> {
  try {
    await promise;
  } catch (error) {
    return error as PgError;
  }
  throw new Error('expected the statement to be rejected');
}

describe('market-data migrations', () => {
  let empty: TestSchema;

  beforeAll(async () => {
    empty = await createTestSchema('market_schema_empty', { migrate: false });
  });
  afterAll(() => empty.drop());

  it('apply to an empty schema, then re-apply with nothing applied', async () => {
    // Prepare
    const migrations = await loadMigrations(MIGRATIONS_DIR);

    // Act
    const first = await migrate(empty.pool, migrations, empty.schema);
    const second = await migrate(empty.pool, migrations, empty.schema);

    // Assess
    expect(first.applied).toEqual(expect.arrayContaining(MARKET_MIGRATIONS));
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(expect.arrayContaining(MARKET_MIGRATIONS));
    const { rows } = await empty.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`,
      [empty.schema],
    );
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'symbols',
        'ohlcv_daily',
        'equity_types',
        'equity_processing_queue',
        'universes',
        'universe_members',
        'universe_changes',
        'data_quality_alerts',
        'data_quality_metrics',
        'symbol_liquidity',
      ]),
    );
    const seeds = await empty.pool.query('SELECT count(*)::int AS n FROM equity_types');
    expect(seeds.rows[0].n).toBe(6);
  });
});

describe('market-data tables', () => {
  let db: TestSchema;

  beforeAll(async () => {
    db = await createTestSchema('market_schema');
  });
  afterAll(() => db.drop());

  const columnsOf = async (table: string): Promise<Map<string, string>> => {
    const { rows } = await db.pool.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2`,
      [db.schema, table],
    );
    return new Map(rows.map((r) => [r.column_name, r.data_type]));
  };

  describe('symbols', () => {
    it('has a column for every SymbolRecord field (snake_case) plus the load bookkeeping', async () => {
      // Prepare: a full record, so adding a field to SymbolRecord without a column fails here.
      const record: SymbolRecord = {
        symbol: 'SPY',
        name: 'SPDR S&P 500 ETF Trust',
        type: 'ETF',
        market: 'stocks',
        primaryExchange: 'ARCX',
        active: true,
        marketCap: null,
        listDate: '1993-01-29',
        sector: null,
        industry: null,
        sicCode: null,
        sicDescription: null,
        sharesOutstanding: 900_000_000,
        issuer: 'State Street',
        aum: 500_000_000_000,
        expenseRatio: 0.0945,
        underlyingIndex: 'S&P 500',
        delistedAt: null,
      };

      // Act
      const columns = await columnsOf('symbols');

      // Assess
      for (const key of Object.keys(record)) expect(columns.has(snake(key)), snake(key)).toBe(true);
      for (const extra of ['first_seen', 'initial_load_date', 'updated_at'])
        expect(columns.has(extra)).toBe(true);
      expect(columns.get('shares_outstanding')).toBe('bigint');
      expect(columns.get('market_cap')).toBe('numeric');
    });

    it('rejects a blank symbol and a negative market cap', async () => {
      // Act
      const blank = await sqlError(db.pool.query(`INSERT INTO symbols (symbol) VALUES (' ')`));
      const negative = await sqlError(
        db.pool.query(`INSERT INTO symbols (symbol, market_cap) VALUES ('NEG', -1)`),
      );

      // Assess
      expect(blank.code).toBe('23514');
      expect(negative.code).toBe('23514');
    });
  });

  describe('ohlcv_daily', () => {
    beforeEach(async () => {
      await db.pool.query('TRUNCATE ohlcv_daily');
    });

    const insertBar = (bar: Record<string, unknown>) => {
      const row = {
        symbol: 'AAPL',
        date: '2024-03-01',
        open: 100,
        high: 110,
        low: 95,
        close: 105,
        volume: 1_000_000,
        vwap: 104,
        transactions: 5_000,
        ...bar,
      };
      return db.pool.query(
        `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume, vwap, transactions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          row.symbol,
          row.date,
          row.open,
          row.high,
          row.low,
          row.close,
          row.volume,
          row.vwap,
          row.transactions,
        ],
      );
    };

    it('stores a valid bar with float8 prices returned as numbers', async () => {
      // Act
      await insertBar({
        open: 187.15,
        high: 188.44,
        low: 182.0,
        close: 187.68,
        vwap: null,
        transactions: null,
      });

      // Assess
      const { rows } = await db.pool.query(`SELECT open, high, low, close, volume, vwap FROM ohlcv_daily`);
      expect(rows).toEqual([
        { open: 187.15, high: 188.44, low: 182, close: 187.68, volume: '1000000', vwap: null },
      ]);
      const columns = await columnsOf('ohlcv_daily');
      for (const price of ['open', 'high', 'low', 'close', 'vwap']) {
        expect(columns.get(price)).toBe('double precision');
      }
      expect(columns.get('volume')).toBe('bigint');
    });

    it.each([
      ['high below close', { high: 104 }],
      ['high below open', { open: 111, close: 105 }],
      ['low above open', { low: 101 }],
      ['low above close', { open: 108, close: 96, low: 97 }],
      ['negative volume', { volume: -1 }],
      ['zero price', { open: 0 }],
      ['negative low', { low: -5 }],
      ['NaN close', { close: Number.NaN }],
      ['infinite high', { high: Number.POSITIVE_INFINITY }],
      ['zero vwap', { vwap: 0 }],
      ['negative transactions', { transactions: -3 }],
    ])('rejects an invalid bar: %s', async (_label, bad) => {
      // Act
      const error = await sqlError(insertBar(bad));

      // Assess
      expect(error.code).toBe('23514');
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM ohlcv_daily');
      expect(rows[0].n).toBe(0);
    });

    it('accepts a doji (open = high = low = close) and zero volume', async () => {
      // Act
      await insertBar({ open: 10, high: 10, low: 10, close: 10, volume: 0 });

      // Assess
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM ohlcv_daily');
      expect(rows[0].n).toBe(1);
    });

    it('rejects a second bar for the same symbol and date', async () => {
      // Prepare
      await insertBar({});

      // Act
      const error = await sqlError(insertBar({ close: 106, high: 111 }));

      // Assess
      expect(error.code).toBe('23505');
      expect(error.constraint).toBe('ohlcv_daily_pkey');
    });

    it('has an index that leads with date for per-date scans', async () => {
      // Act
      const { rows } = await db.pool.query<{ indexdef: string }>(
        `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'ohlcv_daily'`,
        [db.schema],
      );

      // Assess
      expect(rows.some((r) => /\(date\)/.test(r.indexdef))).toBe(true);
    });
  });

  describe('equity_types', () => {
    it('holds the six seeds of the replaced system', async () => {
      // Act
      const { rows } = await db.pool.query(
        `SELECT type_name, update_frequency, priority_level, batch_size, rate_limit_ms, requires_eod_validation
         FROM equity_types ORDER BY priority_level DESC`,
      );

      // Assess
      expect(rows).toEqual([
        {
          type_name: 'STOCK_REALTIME',
          update_frequency: 'realtime',
          priority_level: 100,
          batch_size: 25,
          rate_limit_ms: 6000,
          requires_eod_validation: true,
        },
        {
          type_name: 'ETF',
          update_frequency: 'daily',
          priority_level: 90,
          batch_size: 50,
          rate_limit_ms: 12000,
          requires_eod_validation: true,
        },
        {
          type_name: 'ETN',
          update_frequency: 'daily',
          priority_level: 70,
          batch_size: 25,
          rate_limit_ms: 15000,
          requires_eod_validation: true,
        },
        {
          type_name: 'STOCK_EOD',
          update_frequency: 'daily',
          priority_level: 50,
          batch_size: 100,
          rate_limit_ms: 12000,
          requires_eod_validation: true,
        },
        {
          type_name: 'PENNY_STOCK',
          update_frequency: 'daily',
          priority_level: 30,
          batch_size: 50,
          rate_limit_ms: 20000,
          requires_eod_validation: true,
        },
        {
          type_name: 'DEV_TESTING',
          update_frequency: 'manual',
          priority_level: 10,
          batch_size: 10,
          rate_limit_ms: 6000,
          requires_eod_validation: false,
        },
      ]);
    });

    it('rejects a duplicate type name and an unknown frequency', async () => {
      // Act
      const duplicate = await sqlError(
        db.pool.query(
          `INSERT INTO equity_types (type_name, update_frequency, priority_level, batch_size, rate_limit_ms)
           VALUES ('ETF', 'daily', 1, 1, 0)`,
        ),
      );
      const frequency = await sqlError(
        db.pool.query(
          `INSERT INTO equity_types (type_name, update_frequency, priority_level, batch_size, rate_limit_ms)
           VALUES ('BONDS', 'hourly', 1, 1, 0)`,
        ),
      );

      // Assess
      expect(duplicate.code).toBe('23505');
      expect(frequency.code).toBe('23514');
    });
  });

  describe('equity_processing_queue', () => {
    beforeEach(async () => {
      await db.pool.query('TRUNCATE equity_processing_queue');
    });

    const enqueue = (type: string, symbol: string, status = 'pending') =>
      db.pool.query(
        `INSERT INTO equity_processing_queue (type, symbol, priority, status, completed_at)
         VALUES ($1, $2, 50, $3, CASE WHEN $3 = 'completed' THEN now() END)`,
        [type, symbol, status],
      );

    it('allows one pending-or-processing row per type and symbol', async () => {
      // Prepare
      await enqueue('ETF', 'SPY');

      // Act
      const again = await sqlError(enqueue('ETF', 'SPY'));
      const whileProcessing = await (async () => {
        await db.pool.query(`UPDATE equity_processing_queue SET status = 'processing'`);
        return sqlError(enqueue('ETF', 'SPY'));
      })();

      // Assess
      expect(again.code).toBe('23505');
      expect(whileProcessing.code).toBe('23505');
    });

    it('allows the same symbol under another type, and again once the earlier row finished', async () => {
      // Prepare
      await enqueue('ETF', 'SPY', 'completed');
      await enqueue('ETF', 'SPY', 'failed');

      // Act
      await enqueue('ETF', 'SPY');
      await enqueue('STOCK_EOD', 'SPY');

      // Assess
      const { rows } = await db.pool.query(
        `SELECT type, status FROM equity_processing_queue ORDER BY type, status`,
      );
      expect(rows).toEqual([
        { type: 'ETF', status: 'completed' },
        { type: 'ETF', status: 'failed' },
        { type: 'ETF', status: 'pending' },
        { type: 'STOCK_EOD', status: 'pending' },
      ]);
    });

    it('rejects an unknown type and an unknown status', async () => {
      // Act
      const type = await sqlError(enqueue('CRYPTO', 'BTC'));
      const status = await sqlError(enqueue('ETF', 'QQQ', 'paused'));

      // Assess
      expect(type.code).toBe('23503');
      expect(status.code).toBe('23514');
    });
  });

  describe('universes', () => {
    it('rejects an unknown category, a non-snake-case name and a duplicate (category, name)', async () => {
      // Prepare
      await db.pool.query(`INSERT INTO universes (category, name) VALUES ('etf', 'growth')`);

      // Act
      const category = await sqlError(
        db.pool.query(`INSERT INTO universes (category, name) VALUES ('crypto', 'coins')`),
      );
      const name = await sqlError(
        db.pool.query(`INSERT INTO universes (category, name) VALUES ('etf', 'Broad Market')`),
      );
      const duplicate = await sqlError(
        db.pool.query(`INSERT INTO universes (category, name) VALUES ('etf', 'growth')`),
      );

      // Assess
      expect(category.code).toBe('23514');
      expect(name.code).toBe('23514');
      expect(duplicate.code).toBe('23505');
      expect(duplicate.constraint).toBe('universes_category_name_key');
    });

    it('rejects a change-log action other than added or removed', async () => {
      // Act
      const error = await sqlError(
        db.pool.query(
          `INSERT INTO universe_changes (change_type, category, universe, symbol, action)
           VALUES ('manual', 'etf', 'growth', 'VUG', 'renamed')`,
        ),
      );

      // Assess
      expect(error.code).toBe('23514');
    });
  });

  describe('data quality', () => {
    beforeEach(async () => {
      await db.pool.query('TRUNCATE data_quality_alerts, data_quality_metrics');
    });

    const alert = (values: { type?: string; symbol?: string | null; severity?: string; date?: string }) =>
      db.pool.query(
        `INSERT INTO data_quality_alerts (alert_type, symbol, severity, description, trade_date)
         VALUES ($1, $2, $3, 'close moved 42 %', $4)`,
        [
          values.type ?? 'price_anomaly',
          values.symbol === undefined ? 'AAPL' : values.symbol,
          values.severity ?? 'high',
          values.date ?? '2024-03-01',
        ],
      );

    it('accepts the four severities and rejects any other', async () => {
      // Act
      for (const [i, severity] of ['low', 'medium', 'high', 'critical'].entries()) {
        await alert({ severity, date: `2024-03-0${i + 1}` });
      }
      const error = await sqlError(alert({ severity: 'urgent', date: '2024-03-08' }));

      // Assess
      expect(error.code).toBe('23514');
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM data_quality_alerts');
      expect(rows[0].n).toBe(4);
    });

    it('rejects a duplicate alert for the same type, symbol and trade date, market-wide ones too', async () => {
      // Prepare
      await alert({});
      await alert({ symbol: null, type: 'data_gap' });

      // Act
      const symbolDuplicate = await sqlError(alert({ severity: 'critical' }));
      const marketDuplicate = await sqlError(alert({ symbol: null, type: 'data_gap' }));
      await alert({ date: '2024-03-04' });
      await alert({ type: 'volume_anomaly' });
      await alert({ symbol: 'MSFT' });

      // Assess
      expect(symbolDuplicate.constraint).toBe('data_quality_alerts_dedup_key');
      expect(marketDuplicate.constraint).toBe('data_quality_alerts_dedup_key');
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM data_quality_alerts');
      expect(rows[0].n).toBe(5);
    });

    it('lets a re-run upsert its alert through the dedup key', async () => {
      // Prepare
      await alert({ severity: 'medium' });

      // Act
      await db.pool.query(
        `INSERT INTO data_quality_alerts (alert_type, symbol, severity, description, trade_date)
         VALUES ('price_anomaly', 'AAPL', 'critical', 'close moved 55 %', '2024-03-01')
         ON CONFLICT (alert_type, symbol, trade_date)
         DO UPDATE SET severity = EXCLUDED.severity, description = EXCLUDED.description, updated_at = now()`,
      );

      // Assess
      const { rows } = await db.pool.query('SELECT severity, description FROM data_quality_alerts');
      expect(rows).toEqual([{ severity: 'critical', description: 'close moved 55 %' }]);
    });

    it('refuses resolution notes on an unresolved alert', async () => {
      // Act
      const error = await sqlError(
        db.pool.query(
          `INSERT INTO data_quality_alerts (alert_type, symbol, severity, description, trade_date, resolved_by)
           VALUES ('stale_data', 'IBM', 'low', 'last bar 3 days old', '2024-03-01', 'ops')`,
        ),
      );

      // Assess
      expect(error.code).toBe('23514');
    });

    it('keeps one metrics row per date, upserted on trade_date', async () => {
      // Prepare
      const upsert = (checked: number, score: number) =>
        db.pool.query(
          `INSERT INTO data_quality_metrics (trade_date, symbols_checked, total_alerts, alert_counts,
             completeness_pct, quality_score)
           VALUES ('2024-03-01', $1, 2, '{"price_anomaly": 2}', 99.5, $2)
           ON CONFLICT (trade_date) DO UPDATE SET symbols_checked = EXCLUDED.symbols_checked,
             quality_score = EXCLUDED.quality_score, updated_at = now()`,
          [checked, score],
        );
      await upsert(7_990, 97.2);

      // Act
      await upsert(8_000, 98.1);
      const outOfRange = await sqlError(
        db.pool.query(
          `INSERT INTO data_quality_metrics (trade_date, symbols_checked, quality_score)
           VALUES ('2024-03-04', 10, 101)`,
        ),
      );

      // Assess
      const { rows } = await db.pool.query(
        `SELECT trade_date::text AS d, symbols_checked, quality_score, alert_counts FROM data_quality_metrics`,
      );
      expect(rows).toEqual([
        {
          d: '2024-03-01',
          symbols_checked: 8_000,
          quality_score: '98.10',
          alert_counts: { price_anomaly: 2 },
        },
      ]);
      expect(outOfRange.code).toBe('23514');
    });
  });

  describe('SQL functions', () => {
    it('keep reading their own schema when the session search_path points elsewhere', async () => {
      // Prepare: a session whose search_path does not include the test schema at all.
      const client = await db.pool.connect();
      try {
        await client.query('SET search_path TO pg_catalog');

        // Act
        const { rows } = await client.query(
          `SELECT ${db.schema}.get_equity_processing_config('ETF') ->> 'batch_size' AS batch`,
        );
        await client.query(`SELECT ${db.schema}.update_etf_universe('path_check', '["VTI", "VOO"]')`);
        const members = await client.query(
          `SELECT symbol FROM ${db.schema}.get_etf_universe('path_check', false)`,
        );

        // Assess
        expect(rows[0].batch).toBe('50');
        expect(members.rows.map((r) => r.symbol)).toEqual(['VTI', 'VOO']);
      } finally {
        await client.query('RESET search_path');
        client.release();
      }
    });

    it('pin search_path on every function of the market migrations', async () => {
      // Act
      const { rows } = await db.pool.query<{ proname: string; proconfig: string[] | null }>(
        `SELECT p.proname, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1 ORDER BY 1`,
        [db.schema],
      );

      // Assess
      const ours = rows.filter((r) => MARKET_FUNCTIONS.includes(r.proname));
      expect(ours.map((r) => r.proname).sort()).toEqual([...MARKET_FUNCTIONS].sort());
      for (const row of ours) {
        expect(
          row.proconfig?.some((c) => c.startsWith(`search_path=${db.schema}`)),
          row.proname,
        ).toBe(true);
      }
    });
  });
});
