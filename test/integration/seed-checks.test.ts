/**
 * The seeds' remaining checks (000: "200+ ETF symbol processing", CONCURRENT_OPERATIONS_TARGET = 10,
 * MEMORY_INCREASE_LIMIT = 100 MB under stress) on the 8,000-symbol scenario market, real PostgreSQL
 * (fresh schema; the app's reads as tickstock_app_login, the jobs as tickstock_market_login) and
 * real Redis (own namespace).
 */
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeEod } from '../../lambdas/market/eod/complete';
import { runEtfCorrelation } from '../../lambdas/market/etf-correlation/run';
import { upsertBars } from '../../lambdas/market/sql/bars';
import { runUniverseSync, type UniverseSyncSummary } from '../../lambdas/market/universe-sync/sync';
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { CHANNELS, EventBus } from '../../lambdas/platform/event-bus';
import type { OutboxTransport } from '../../lambdas/platform/outbox';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';
import { applyLocalDefaults } from '../../localstack/env';
import { createScenarioMarket } from '../../localstack/scenarios';
import { upsertSymbols } from '../../localstack/scenarios/load';
import { createTestSchema, type TestSchema } from '../support/db';

applyLocalDefaults();

const SETUP_MS = 300_000;

describe("the seeds' checks on the 8,000-symbol scenario market", () => {
  let db: TestSchema;
  let redis: RedisClient;
  let sqs: SQSClient;
  let app: pg.Pool;
  let marketPool: pg.Pool;
  let transport: OutboxTransport;
  let bus: EventBus;
  let tradeDate: string;
  const namespace = `test_seed_checks_${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    const market = createScenarioMarket({ scenario: 'ipo', seed: 'seed-checks-it', size: 8000 });
    tradeDate = market.end;
    db = await createTestSchema('seed_checks');
    redis = createRedisClient({ url: process.env.REDIS_URL as string });
    await redis.connect();
    sqs = new SQSClient({});
    const records = market.activeOn(tradeDate);
    await upsertSymbols(db.pool, records, { start: market.start, end: tradeDate });
    await upsertBars(
      db.pool,
      [...market.groupedBarsRange(market.days[market.days.length - 30] as string, tradeDate).values()].flat(),
    );
    app = createPool({ connectionString: componentDatabaseUrl(db.url, 'app'), schema: db.schema, max: 8 });
    marketPool = createPool({
      connectionString: componentDatabaseUrl(db.url, 'market'),
      schema: db.schema,
      max: 8,
    });
    bus = new EventBus({ client: redis, service: 'seed_checks', namespace });
    transport = outboxTransport({
      bus,
      redis,
      sqs,
      queueUrl: async (q) => {
        throw new Error(`no queue in this test (asked for ${q})`);
      },
    });
    await completeEod({ pool: marketPool, transport }, { tradeDate });
  }, SETUP_MS);
  afterAll(async () => {
    const keys = await redis?.keys(`${namespace}:*`);
    if (keys && keys.length > 0) await redis.del(keys);
    await redis?.close();
    sqs?.destroy();
    await app?.end();
    await marketPool?.end();
    await db?.drop();
  });

  it(
    '>= 200 ETFs across the themes after a sync, every one a known active ETF, readable by the app',
    async () => {
      // Act
      const sync = await runUniverseSync({ pool: marketPool, transport }, { tradeDate });

      // Assess
      expect(sync.status).toBe('synced');
      const { rows } = await app.query<{
        s: { distinct_symbols: number; universes: { theme: string; symbol_count: number }[] };
      }>('SELECT get_etf_universes_summary() AS s');
      const summary = rows[0]?.s;
      const themes = summary?.universes.filter((u) => u.symbol_count > 0).length ?? 0;
      console.log(`ETF universes: ${summary?.distinct_symbols} ETFs across ${themes} themes`);
      expect(summary?.distinct_symbols).toBeGreaterThanOrEqual(200);
      expect(themes).toBeGreaterThanOrEqual(8);
      expect((await app.query('SELECT * FROM validate_etf_universe_symbols()')).rows).toEqual([]);
      const { rows: types } = await app.query<{ type: string; active: boolean }>(
        `SELECT DISTINCT s.type, s.active FROM universe_members m JOIN universes u ON u.id = m.universe_id
       JOIN symbols s ON s.symbol = m.symbol WHERE u.category = 'etf'`,
      );
      expect(types).toEqual([{ type: 'ETF', active: true }]);
    },
    SETUP_MS,
  );

  it(
    '12 concurrent operations (3 syncs, 3 queue claims, 6 app reads) all succeed: one sync applies the change, claims are disjoint',
    async () => {
      // Arrange: a change for the syncs to apply (20 delistings) and a queue to claim from
      const { rows: gone } = await db.pool.query<{ symbol: string }>(
        `UPDATE symbols SET active = false, delisted_at = $1::date
       WHERE symbol IN (SELECT m.symbol FROM universe_members m JOIN universes u ON u.id = m.universe_id
                        WHERE u.category = 'market_cap' AND u.name = 'top_500' ORDER BY m.symbol LIMIT 20)
       RETURNING symbol`,
        [tradeDate],
      );
      expect(gone).toHaveLength(20);
      const { rows: cs } = await db.pool.query<{ symbol: string }>(
        "SELECT symbol FROM symbols WHERE type = 'CS' AND active ORDER BY symbol LIMIT 300",
      );
      await marketPool.query('SELECT queue_symbols_for_processing($1, $2::text[])', [
        'STOCK_EOD',
        cs.map((r) => r.symbol),
      ]);

      // Act: 12 at once
      const syncs = Array.from({ length: 3 }, () =>
        runUniverseSync({ pool: marketPool, transport }, { tradeDate, force: true }),
      );
      const claims = Array.from({ length: 3 }, () =>
        marketPool
          .query<{ symbol: string }>('SELECT symbol FROM claim_symbols_for_processing($1, $2)', [
            'STOCK_EOD',
            80,
          ])
          .then((r) => r.rows.map((x) => x.symbol)),
      );
      const reads = Array.from({ length: 6 }, (_, i) =>
        i % 2 === 0
          ? app
              .query('SELECT * FROM get_etf_universe($1, true)', ['broad_market'])
              .then((r) => r.rowCount ?? 0)
          : app
              .query("SELECT key FROM cache_entries WHERE type = 'market_cap_universe'")
              .then((r) => r.rowCount ?? 0),
      );
      const settled = await Promise.allSettled([...syncs, ...claims, ...reads]);

      // Assess: every operation succeeded
      expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
      const syncResults = (await Promise.all(syncs)) as UniverseSyncSummary[];
      // The syncs take turns (advisory lock): one applies the delistings, the others find nothing left.
      expect(syncResults.filter((s) => s.totalChanges > 0)).toHaveLength(1);
      expect(
        syncResults.reduce((n, s) => n + (s.byTask.delisting_cleanup?.removed ?? 0), 0),
      ).toBeGreaterThanOrEqual(20);
      const claimed = (await Promise.all(claims)).flat();
      expect(claimed).toHaveLength(240);
      expect(new Set(claimed).size).toBe(240);
      for (const n of await Promise.all(reads)) expect(n).toBeGreaterThan(0);
      const { rows: invalid } = await app.query('SELECT * FROM validate_universe_symbols()');
      expect(invalid).toEqual([]);
    },
    SETUP_MS,
  );

  it(
    'memory grows < 100 MB over a stress run of syncs, correlations, 10,000 publishes and app reads (measured after GC)',
    async () => {
      v8.setFlagsFromString('--expose_gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const heap = () => {
        gc();
        gc();
        return process.memoryUsage().heapUsed / 2 ** 20;
      };
      const round = async (k: number) => {
        await db.pool.query(
          `UPDATE ohlcv_daily t SET close = v.c, high = greatest(t.high, v.c), low = least(t.low, v.c)
           FROM (SELECT symbol, date, round((close * (0.9 + 0.2 * ((hashtext(symbol || $2::text) & 1023) / 1023.0)))::numeric, 4) AS c
                 FROM ohlcv_daily WHERE date = $1::date) v
           WHERE t.symbol = v.symbol AND t.date = v.date`,
          [tradeDate, String(k)],
        );
        await runUniverseSync({ pool: marketPool, transport }, { tradeDate, force: true });
        await runEtfCorrelation(
          { pool: marketPool, transport },
          { tradeDate, config: { windowSessions: 20, minObservations: 15 } },
        );
        for (let i = 0; i < 10; i++) {
          await Promise.all(
            Array.from({ length: 100 }, (_, j) =>
              bus.publish(CHANNELS.universeUpdated, {
                event_type: 'stress',
                data: { k, i, j, pad: 'x'.repeat(200) },
              }),
            ),
          );
        }
        await Promise.all(
          Array.from({ length: 20 }, (_, j) =>
            app.query('SELECT * FROM get_etf_universe($1, true)', [j % 2 ? 'sector' : 'broad_market']),
          ),
        );
      };
      // Warm-up rounds: module state, plan caches and pools reach their working size.
      await round(0);
      await round(1);
      const before = heap();
      for (let k = 2; k < 12; k++) await round(k);
      const after = heap();
      const growth = after - before;
      console.log(
        `memory: heap ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB after 10 stress rounds (${growth.toFixed(1)} MB)`,
      );
      expect(growth).toBeLessThan(100);
    },
    SETUP_MS * 2,
  );
});
