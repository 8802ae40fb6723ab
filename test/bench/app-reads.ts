/**
 * App reads during a universe sync (issue 16, point 7): an 8,000-symbol scenario market in a
 * throwaway schema; the sync runs as the market role (tickstock_market_login) three times over a
 * moving market (prices of a new session: market caps re-valued, tiers reshuffled, 40 delistings),
 * while APP_READERS connections of the app's read-only role (tickstock_app_login) run the app's
 * reads back to back: get_etf_universe (liquidity filter), get_etf_universes_summary,
 * get_universe_symbols (top_500), get_symbol_universes, the cache_entries compatibility view, and
 * an ETF's correlations. The same reads with no sync running are the baseline. Prints p50, p95,
 * p99, max and the count over the seeds' 50 ms floor, per read and overall. Target: p95 < 5 ms and
 * nothing over 50 ms. Prints only.
 */
import { performance } from 'node:perf_hooks';
import { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { completeEod } from '../../lambdas/market/eod/complete';
import { upsertBars } from '../../lambdas/market/sql/bars';
import { runUniverseSync, SYNC_SERVICE } from '../../lambdas/market/universe-sync/sync';
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { applyLocalDefaults } from '../../localstack/env';
import { createScenarioMarket } from '../../localstack/scenarios';
import { upsertSymbols } from '../../localstack/scenarios/load';
import { createTestSchema } from '../support/db';

const APP_READERS = Number(process.env.APP_READERS ?? 4);
const SYNCS = 3;
const FLOOR_MS = 50;

type Samples = Map<string, number[]>;

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

function line(label: string, name: string, xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (v: number) => `${v.toFixed(2)} ms`.padStart(10);
  return (
    `  ${label.padEnd(12)} ${name.padEnd(26)} n=${String(s.length).padStart(6)}  p50 ${f(pct(s, 0.5))}  p95 ${f(pct(s, 0.95))}` +
    `  p99 ${f(pct(s, 0.99))}  max ${f(s.at(-1) ?? 0)}  >${FLOOR_MS} ms: ${s.filter((x) => x > FLOOR_MS).length}`
  );
}

/** One app connection running the app's reads back to back until told to stop. */
async function reader(
  pool: pg.Pool,
  symbols: readonly string[],
  etfs: readonly string[],
  out: Samples,
  stop: () => boolean,
  offset: number,
): Promise<void> {
  const client = await pool.connect();
  const themes = ['broad_market', 'sector', 'technology', 'bonds', 'international', 'growth'];
  const timed = async (name: string, sql: string, params: unknown[]) => {
    const t = performance.now();
    await client.query({ name, text: sql, values: params });
    const ms = performance.now() - t;
    out.get(name)?.push(ms) ?? out.set(name, [ms]);
  };
  try {
    for (let i = offset; !stop(); i++) {
      await timed('get_etf_universe', 'SELECT * FROM get_etf_universe($1, true)', [
        themes[i % themes.length],
      ]);
      await timed('get_etf_universes_summary', 'SELECT get_etf_universes_summary()', []);
      await timed('get_universe_symbols', 'SELECT * FROM get_universe_symbols($1, $2)', [
        'market_cap',
        'top_500',
      ]);
      await timed('get_symbol_universes', 'SELECT * FROM get_symbol_universes($1)', [
        symbols[i % symbols.length],
      ]);
      await timed(
        'cache_entries',
        'SELECT key, value, universe_category FROM cache_entries WHERE type = $1',
        ['etf_universe'],
      );
      await timed(
        'etf_correlations',
        'SELECT peer, relation, correlation FROM etf_correlations WHERE symbol = $1 ORDER BY relation, correlation DESC',
        [etfs[i % Math.max(1, etfs.length)] ?? 'SPY'],
      );
    }
  } finally {
    client.release();
  }
}

async function readWhile(
  url: string,
  schema: string,
  symbols: readonly string[],
  etfs: readonly string[],
  work: () => Promise<void>,
): Promise<Samples> {
  const pool = createPool({ connectionString: componentDatabaseUrl(url, 'app'), schema, max: APP_READERS });
  const out: Samples = new Map();
  let done = false;
  try {
    // Long-lived app connections: plans warm before measuring.
    const warm: Samples = new Map();
    let warmed = false;
    await Promise.all([
      ...Array.from({ length: APP_READERS }, (_, k) => reader(pool, symbols, etfs, warm, () => warmed, k)),
      new Promise<void>((r) =>
        setTimeout(() => {
          warmed = true;
          r();
        }, 300),
      ),
    ]);
    const readers = Array.from({ length: APP_READERS }, (_, k) =>
      reader(pool, symbols, etfs, out, () => done, k * 7),
    );
    try {
      await work();
    } finally {
      done = true;
    }
    await Promise.all(readers);
  } finally {
    await pool.end();
  }
  return out;
}

function print(label: string, samples: Samples): void {
  for (const [name, xs] of samples) console.log(line(label, name, xs));
  console.log(line(label, 'ALL READS', [...samples.values()].flat()));
}

export async function bench(): Promise<void> {
  applyLocalDefaults();
  const t0 = performance.now();
  const market = createScenarioMarket({ scenario: 'ipo', seed: 'bench-app-reads', size: 8000 });
  const days = market.days;
  const tradeDate = market.end;
  const from = days[days.length - 25] as string;
  const db = await createTestSchema('bench_app_reads');
  const redis = createRedisClient({ url: process.env.REDIS_URL as string });
  await redis.connect();
  const namespace = `bench_app_reads_${process.pid}`;
  const sqs = new SQSClient({});
  const marketPool = createPool({
    connectionString: componentDatabaseUrl(db.url, 'market'),
    schema: db.schema,
    max: 4,
  });
  try {
    const records = market.activeOn(tradeDate);
    await upsertSymbols(db.pool, records, { start: market.start, end: tradeDate });
    await upsertBars(db.pool, [...market.groupedBarsRange(from, tradeDate).values()].flat());
    const transport = (service: string) =>
      outboxTransport({
        bus: new EventBus({ client: redis, service, namespace }),
        redis,
        sqs,
        queueUrl: async (q) => {
          throw new Error(`the sync sends no queue messages (asked for ${q})`);
        },
      });
    await completeEod({ pool: marketPool, transport: transport('eod_pipeline') }, { tradeDate });
    const deps = { pool: marketPool, transport: transport(SYNC_SERVICE) };
    await runUniverseSync(deps, { tradeDate });
    const { rows: etfRows } = await db.pool.query<{ symbol: string }>(
      `SELECT m.symbol FROM universe_members m JOIN universes u ON u.id = m.universe_id WHERE u.category = 'etf'`,
    );
    const etfs = etfRows.map((r) => r.symbol);
    // Some correlation rows to read (the step's table; values are not the point here).
    await db.pool.query(
      `INSERT INTO etf_correlations (symbol, peer, relation, theme, window_sessions, as_of, observations, correlation)
       SELECT a.symbol, b.symbol, 'theme', 'x', 60, $1::date, 60, ((hashtext(a.symbol || b.symbol) & 1023) / 1023.0) * 2 - 1
       FROM (SELECT unnest($2::text[]) AS symbol) a, (SELECT unnest($2::text[]) AS symbol) b
       WHERE a.symbol <> b.symbol AND hashtext(a.symbol || b.symbol) % 4 = 0`,
      [tradeDate, etfs.slice(0, 120)],
    );
    const symbols = records.slice(0, 800).map((r) => r.symbol);
    console.log(
      `app-reads bench: ${records.length} symbols, ${etfs.length} ETFs in universes, ${APP_READERS} app connections ` +
        `(tickstock_app_login), sync as tickstock_market_login (set-up ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );

    const idle = await readWhile(
      db.url,
      db.schema,
      symbols,
      etfs,
      () => new Promise((r) => setTimeout(r, 3000)),
    );

    const syncMs: number[] = [];
    const during = await readWhile(db.url, db.schema, symbols, etfs, async () => {
      for (let k = 0; k < SYNCS; k++) {
        // A session of market movement: closes moved (the sync re-values caps from them), 40 delisted.
        await db.pool.query(
          `UPDATE ohlcv_daily SET close = round((close * (0.8 + 0.4 * ((hashtext(symbol || $2::text) & 1023) / 1023.0)))::numeric, 4),
                                  high = greatest(high, round((close * (0.8 + 0.4 * ((hashtext(symbol || $2::text) & 1023) / 1023.0)))::numeric, 4)),
                                  low = least(low, round((close * (0.8 + 0.4 * ((hashtext(symbol || $2::text) & 1023) / 1023.0)))::numeric, 4))
           WHERE date = $1::date`,
          [tradeDate, String(k)],
        );
        await db.pool.query(
          `UPDATE symbols SET active = false, delisted_at = $1::date
           WHERE symbol IN (SELECT symbol FROM symbols WHERE type = 'CS' AND active ORDER BY hashtext(symbol || $2::text) LIMIT 40)`,
          [tradeDate, String(k)],
        );
        const t = performance.now();
        const s = await runUniverseSync(deps, { tradeDate, force: true });
        syncMs.push(performance.now() - t);
        console.log(
          `  sync ${k + 1}/${SYNCS}: ${(performance.now() - t).toFixed(0)} ms, ${s.universesChanged} universes changed, ` +
            `${s.totalChanges} changes, ${s.marketCapsMarked} market caps re-valued`,
        );
      }
    });
    console.log(`  app reads (target p95 < 5 ms, nothing over the seeds' ${FLOOR_MS} ms):`);
    print('no sync', idle);
    print('during sync', during);
  } finally {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(keys);
    await redis.close();
    sqs.destroy();
    await marketPool.end();
    await db.drop();
  }
}
