/**
 * Universe sync benchmark: an 8,000-symbol scenario market (25 sessions of bars) in a throwaway
 * schema. Measures (1) the first sync (every universe built from nothing), (2) a sync after a
 * market-cap reshuffle plus 40 delistings, (3) a no-op re-run, and the app's reads (get_etf_universe
 * with the liquidity filter, get_etf_universes_summary, universe lookups) while (2) runs, against the
 * same reads with no sync running. Targets: sync < 5 s; reads p95 < 5 ms (floor 50 ms). Prints only.
 */
import { performance } from 'node:perf_hooks';
import { SQSClient } from '@aws-sdk/client-sqs';
import { completeEod } from '../../lambdas/market/eod/complete';
import { upsertBars } from '../../lambdas/market/sql/bars';
import { runUniverseSync, SYNC_SERVICE } from '../../lambdas/market/universe-sync/sync';
import { EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient } from '../../lambdas/platform/redis';
import { applyLocalDefaults } from '../../localstack/env';
import { createScenarioMarket } from '../../localstack/scenarios';
import { upsertSymbols } from '../../localstack/scenarios/load';
import { createTestSchema } from '../support/db';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function readLoop(
  url: string,
  schema: string,
  symbols: string[],
  until: () => boolean,
): Promise<Record<string, number[]>> {
  const pool = createPool({ connectionString: url, schema, max: 2 });
  const out: Record<string, number[]> = { get_etf_universe: [], get_etf_universes_summary: [], lookups: [] };
  const themes = ['broad_market', 'sector', 'technology', 'bonds', 'international'];
  let i = 0;
  try {
    // Warm the plan caches of this connection first (an app connection is long-lived).
    await pool.query('SELECT count(*) FROM get_etf_universe($1, true)', ['broad_market']);
    do {
      let t = performance.now();
      await pool.query('SELECT * FROM get_etf_universe($1, true)', [themes[i % themes.length]]);
      out.get_etf_universe?.push(performance.now() - t);
      t = performance.now();
      await pool.query('SELECT get_etf_universes_summary()');
      out.get_etf_universes_summary?.push(performance.now() - t);
      t = performance.now();
      await pool.query('SELECT * FROM get_universe_symbols($1, $2)', ['market_cap', 'top_500']);
      await pool.query('SELECT * FROM get_symbol_universes($1)', [symbols[i % symbols.length]]);
      out.lookups?.push(performance.now() - t);
      i++;
    } while (!until());
  } finally {
    await pool.end();
  }
  return out;
}

function printReads(label: string, reads: Record<string, number[]>): void {
  for (const [name, xs] of Object.entries(reads)) {
    const s = [...xs].sort((a, b) => a - b);
    console.log(
      `  ${label.padEnd(14)} ${name.padEnd(26)} n=${String(s.length).padStart(5)}  p50 ${pct(s, 0.5).toFixed(2)} ms  p95 ${pct(s, 0.95).toFixed(2)} ms  max ${(s.at(-1) ?? 0).toFixed(2)} ms`,
    );
  }
}

export async function bench(): Promise<void> {
  applyLocalDefaults();
  const t0 = performance.now();
  const market = createScenarioMarket({ scenario: 'ipo', seed: 'bench-universe-sync', size: 8000 });
  const tradeDate = market.end;
  const from = market.days[market.days.length - 25] as string;
  const db = await createTestSchema('bench_universe_sync');
  const redis = createRedisClient({ url: process.env.REDIS_URL as string });
  await redis.connect();
  const namespace = `bench_universe_sync_${process.pid}`;
  const sqs = new SQSClient({});
  try {
    const records = market.activeOn(tradeDate);
    await upsertSymbols(db.pool, records, { start: market.start, end: tradeDate });
    const bars = [...market.groupedBarsRange(from, tradeDate).values()].flat();
    await upsertBars(db.pool, bars);
    const transport = (service: string) =>
      outboxTransport({
        bus: new EventBus({ client: redis, service, namespace }),
        redis,
        sqs,
        queueUrl: async (q) => {
          throw new Error(`the sync sends no queue messages (asked for ${q})`);
        },
      });
    const complete = await completeEod(
      { pool: db.pool, transport: transport('eod_pipeline') },
      { tradeDate },
    );
    console.log(
      `universe-sync bench: ${records.length} symbols, ${bars.length} bars (${from}..${tradeDate}), EOD ${complete.status} ` +
        `(set-up ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    const deps = { pool: db.pool, transport: transport(SYNC_SERVICE) };

    let t = performance.now();
    const first = await runUniverseSync(deps, { tradeDate });
    console.log(
      `  first sync (build all):   ${(performance.now() - t).toFixed(0)} ms  ${first.universes} universes, ${first.totalChanges} changes, ${first.messagesEnqueued} messages`,
    );
    const { rows: etf } = await db.pool.query<{ themes: number; etfs: number }>(
      `SELECT count(*) FILTER (WHERE symbol_count > 0)::integer AS themes, sum(symbol_count)::integer AS etfs
       FROM universes WHERE category = 'etf'`,
    );
    console.log(
      `  ETF universes: ${etf[0]?.etfs} ETFs across ${etf[0]?.themes} themes (target >= 200 across >= 8)`,
    );

    const sample = records.slice(0, 500).map((r) => r.symbol);
    const idle = await readLoop(
      db.url,
      db.schema,
      sample,
      (() => {
        const end = performance.now() + 2000;
        return () => performance.now() > end;
      })(),
    );

    // A day of market movement: caps reshuffled, 40 symbols delisted.
    await db.pool.query(
      `UPDATE symbols SET market_cap = round(market_cap * (0.85 + 0.3 * ((hashtext(symbol) & 1023) / 1023.0)))
       WHERE market_cap IS NOT NULL`,
    );
    await db.pool.query(
      `UPDATE symbols SET active = false, delisted_at = $1::date
       WHERE symbol IN (SELECT symbol FROM symbols WHERE type = 'CS' ORDER BY hashtext(symbol) LIMIT 40)`,
      [tradeDate],
    );
    let syncing = true;
    const during = readLoop(db.url, db.schema, sample, () => !syncing);
    t = performance.now();
    const second = await runUniverseSync(deps, { tradeDate });
    const secondMs = performance.now() - t;
    syncing = false;
    const duringReads = await during;
    console.log(
      `  sync after reshuffle:     ${secondMs.toFixed(0)} ms  ${second.universesChanged} universes changed, ${second.totalChanges} changes, ${second.messagesEnqueued} messages`,
    );
    t = performance.now();
    const third = await runUniverseSync(deps, { tradeDate });
    console.log(
      `  no-op re-run:             ${(performance.now() - t).toFixed(0)} ms  ${third.totalChanges} changes, ${third.messagesEnqueued} messages`,
    );
    console.log('  app reads (target p95 < 5 ms, floor 50 ms):');
    printReads('no sync', idle);
    printReads('during sync', duringReads);
  } finally {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(keys);
    await redis.close();
    sqs.destroy();
    await db.drop();
  }
}
