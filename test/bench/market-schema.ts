/**
 * Benchmark of the market-data schema (prints figures, asserts nothing): 2M-row bar load and the
 * quality check's window scan with float8 vs numeric prices, and the app's universe reads.
 */
import { performance } from 'node:perf_hooks';
import {
  getEtfUniverse,
  getEtfUniversesSummary,
  getSymbolUniverses,
  refreshSymbolLiquidity,
  updateEtfUniverse,
} from '../../lambdas/market/sql/universes';
import { createTestSchema } from '../support/db';

const SYMBOLS = 8_000;
const DAYS = 252;

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function bench(): Promise<void> {
  const db = await createTestSchema('bench_market_schema');
  try {
    await db.pool.query(`CREATE TABLE ohlcv_daily_numeric (LIKE ohlcv_daily INCLUDING ALL)`);
    await db.pool.query(`ALTER TABLE ohlcv_daily_numeric ALTER open TYPE numeric, ALTER high TYPE numeric,
      ALTER low TYPE numeric, ALTER close TYPE numeric, ALTER vwap TYPE numeric`);
    const dates: string[] = [];
    for (let d = new Date('2023-01-02T00:00:00Z'); dates.length < DAYS; d.setUTCDate(d.getUTCDate() + 1)) {
      if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) dates.push(d.toISOString().slice(0, 10));
    }
    type Batch = [string[], string[], number[], number[], number[], number[], number[]];
    const batches: Batch[] = [];
    {
      let seed = 42;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      // Date-major batches, as the EOD loader writes them (one grouped-daily call per date).
      const prices = Array.from({ length: SYMBOLS }, () => 10 + rnd() * 200);
      for (let d0 = 0; d0 < DAYS; d0 += 1) {
        const b: Batch = [[], [], [], [], [], [], []];
        for (let s = 0; s < SYMBOLS; s++) {
          const open = prices[s] as number;
          const close = Math.max(1, open * (1 + (rnd() - 0.5) * 0.06));
          b[0].push(`S${s}`);
          b[1].push(dates[d0] as string);
          b[2].push(+open.toFixed(4));
          b[5].push(+close.toFixed(4));
          b[3].push(+(Math.max(open, close) * 1.01).toFixed(4));
          b[4].push(+(Math.min(open, close) * 0.99).toFixed(4));
          b[6].push(Math.floor(rnd() * 5_000_000));
          prices[s] = close;
        }
        batches.push(b);
      }
    }
    for (const table of ['ohlcv_daily', 'ohlcv_daily_numeric']) {
      const t0 = performance.now();
      let i = 0;
      const worker = async () => {
        for (let b = batches[i++]; b; b = batches[i++]) {
          await db.pool.query(
            `INSERT INTO ${table} (symbol, date, open, high, low, close, volume)
             SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[])`,
            b,
          );
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      const loadMs = performance.now() - t0;
      await db.pool.query(`ANALYZE ${table}`);
      const scanMs = await timeIt(() =>
        db.pool.query(`
          WITH w AS (
            SELECT symbol, date, close, volume,
                   lag(close) OVER (PARTITION BY symbol ORDER BY date) AS prev_close,
                   avg(volume) OVER (PARTITION BY symbol ORDER BY date ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) AS avg20
            FROM ${table}
          )
          SELECT count(*) FILTER (WHERE prev_close > 0 AND abs(close / prev_close - 1) > 0.2) AS price_moves,
                 count(*) FILTER (WHERE avg20 >= 1000 AND volume > 5 * avg20) AS spikes
          FROM w`),
      );
      console.log(
        `${table.padEnd(20)} load ${SYMBOLS * DAYS} rows: ${(loadMs / 1000).toFixed(2)} s; window scan (lag + 20-bar avg): ${(scanMs / 1000).toFixed(2)} s`,
      );
    }
    await db.pool.query(`DROP TABLE ohlcv_daily_numeric`);

    // Universe reads: 60 ETF themes of 200 members over symbols S0..S1999 with bars.
    await db.pool.query(
      `INSERT INTO symbols (symbol, name, type, aum) SELECT 'S' || g, 'Fund ' || g, 'ETF', 1e9 FROM generate_series(0, 1999) g`,
    );
    for (let t = 0; t < 60; t++) {
      const members = Array.from({ length: 200 }, (_, i) => `S${(t * 37 + i * 7) % 2000}`);
      await updateEtfUniverse(db.pool, `theme_${t}`, members, {
        liquidity_filter: { min_avg_volume: 1_000_000, min_price: 5 },
      });
    }
    await db.pool.query('VACUUM ANALYZE');
    const runs = async (label: string, fn: () => Promise<unknown>) => {
      for (let i = 0; i < 20; i++) await fn();
      const ms: number[] = [];
      for (let i = 0; i < 200; i++) ms.push(await timeIt(fn));
      console.log(`${label.padEnd(44)} p50 ${pct(ms, 50).toFixed(2)} ms  p99 ${pct(ms, 99).toFixed(2)} ms`);
    };
    let k = 0;
    await runs('get_etf_universe(200, no snapshot, no filter)', () =>
      getEtfUniverse(db.pool, `theme_${k++ % 60}`),
    );
    const refreshMs = await timeIt(() => refreshSymbolLiquidity(db.pool));
    console.log(`refresh_symbol_liquidity (2,000 symbols, 2M bars): ${refreshMs.toFixed(0)} ms`);
    await db.pool.query(
      `INSERT INTO symbols (symbol, name, type) SELECT 'S' || g, 'Stock ' || g, 'CS' FROM generate_series(2000, 7999) g`,
    );
    const refresh8kMs = await timeIt(() => refreshSymbolLiquidity(db.pool));
    console.log(`refresh_symbol_liquidity (8,000 symbols, 2M bars): ${refresh8kMs.toFixed(0)} ms`);
    await runs('get_etf_universe(200 members, no filter)', () =>
      getEtfUniverse(db.pool, `theme_${k++ % 60}`),
    );
    await runs('get_etf_universe(200 members, liquidity filter)', () =>
      getEtfUniverse(db.pool, `theme_${k++ % 60}`, { applyLiquidityFilter: true }),
    );
    await runs('get_etf_universes_summary(60 themes)', () => getEtfUniversesSummary(db.pool));
    await runs('get_symbol_universes(symbol)', () => getSymbolUniverses(db.pool, `S${k++ % 2000}`));
    await runs('update_etf_universe(200, ~10 changed)', () => {
      const t = k++ % 60;
      const shift = k % 2 === 0 ? 0 : 10;
      return updateEtfUniverse(
        db.pool,
        `theme_${t}`,
        Array.from({ length: 200 }, (_, i) => `S${(t * 37 + (i + shift) * 7) % 2000}`),
      );
    });
  } finally {
    await db.drop();
  }
}
