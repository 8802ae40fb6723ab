import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DailyBar } from '../../../lambdas/market/types';
import { createScenarioMarket, type SymbolSeries } from '../../../localstack/scenarios/index';
import {
  assertScenarioSchema,
  loadScenario,
  loadSymbolsHistory,
  ScenarioLoadError,
} from '../../../localstack/scenarios/load';
import { createTestSchema, type TestSchema } from '../../support/db';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('scenario_load');
});

afterAll(async () => {
  await db.drop();
});

async function counts(): Promise<{ symbols: number; bars: number; distinctBars: number }> {
  const { rows } = await db.pool.query<{ symbols: number; bars: number; distinct_bars: number }>(
    `SELECT (SELECT count(*)::int FROM symbols) AS symbols,
            (SELECT count(*)::int FROM ohlcv_daily) AS bars,
            (SELECT count(DISTINCT (symbol, date))::int FROM ohlcv_daily) AS distinct_bars`,
  );
  const row = rows[0];
  return { symbols: row?.symbols ?? -1, bars: row?.bars ?? -1, distinctBars: row?.distinct_bars ?? -1 };
}

async function barsOf(symbol: string): Promise<DailyBar[]> {
  const { rows } = await db.pool.query<DailyBar & { date: string }>(
    `SELECT symbol, to_char(date, 'YYYY-MM-DD') AS date, open, high, low, close, volume::float8 AS volume,
            vwap, transactions
       FROM ohlcv_daily WHERE symbol = $1 ORDER BY date`,
    [symbol],
  );
  return rows;
}

describe('scenario load', () => {
  it('loads symbols and bars into the schema, and a re-load gives the same rows', async () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'splits', seed: 8, size: 200 });
    const series = [...market.series()];
    const expectedBars = series.reduce((n, s) => n + s.bars.length, 0);

    // Act
    const first = await loadScenario(db.pool, market);
    const afterFirst = await counts();
    const second = await loadScenario(db.pool, market);
    const afterSecond = await counts();

    // Assess
    expect(first.schema).toBe(db.schema);
    expect(first).toMatchObject({ symbols: 200, bars: expectedBars });
    expect(second).toMatchObject({ symbols: 200, bars: expectedBars });
    expect(afterFirst).toEqual({ symbols: 200, bars: expectedBars, distinctBars: expectedBars });
    expect(afterSecond).toEqual(afterFirst);
    const sample = series[17] as SymbolSeries;
    expect(await barsOf(sample.symbol)).toEqual(sample.bars);
    // The secondary index dropped for the bulk load is back.
    const { rows } = await db.pool.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'ohlcv_daily'`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
  });

  it('writes symbol records with scenario list dates, delistings and first_seen', async () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'ipo', seed: 4, size: 200 });
    const ipo = market.universe.find((r) => r.listDate !== null && r.listDate > market.start);
    expect(ipo).toBeDefined();

    // Act
    await loadScenario(db.pool, market);
    const { rows } = await db.pool.query(
      `SELECT symbol, type, to_char(list_date, 'YYYY-MM-DD') AS list_date, to_char(first_seen, 'YYYY-MM-DD') AS first_seen,
              to_char(initial_load_date, 'YYYY-MM-DD') AS initial_load_date, active, market_cap::float8 AS market_cap
         FROM symbols WHERE symbol = $1`,
      [ipo?.symbol],
    );

    // Assess: the previous scenario's symbols are gone, the IPO is "new" since its list date
    expect((await counts()).symbols).toBe(200);
    expect(rows[0]).toMatchObject({
      symbol: ipo?.symbol,
      type: ipo?.type,
      list_date: ipo?.listDate,
      first_seen: ipo?.listDate,
      initial_load_date: market.end,
      active: true,
    });
  });

  it('loads some symbols history idempotently without touching the others', async () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'trend_changes', seed: 2, size: 120 });
    await loadScenario(db.pool, market);
    const before = await counts();
    const picked = market.universe.slice(0, 3).map((r) => r.symbol);
    const range = { from: market.days[20] as string, to: market.days[80] as string };

    // Act
    const first = await loadSymbolsHistory(db.pool, market, [...picked, 'NOT_THERE'], range);
    const second = await loadSymbolsHistory(db.pool, market, picked, range);

    // Assess
    expect(first.unknown).toEqual(['NOT_THERE']);
    expect(first.bars).toBe(second.bars);
    expect(first.bars).toBe(picked.reduce((n, s) => n + market.bars(s, range.from, range.to).length, 0));
    expect(await counts()).toEqual(before);
    expect(await barsOf(picked[0] as string)).toEqual(market.bars(picked[0] as string));
  });

  it('refuses the production schema', () => {
    expect(() => assertScenarioSchema('public')).toThrow(ScenarioLoadError);
    expect(assertScenarioSchema('scenario_crash')).toBe('scenario_crash');
  });
});
