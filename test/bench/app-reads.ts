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
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { SQSClient } from '@aws-sdk/client-sqs';
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
    `  ${label.padEnd(12)} ${name.padEnd(34)} n=${String(s.length).padStart(6)}  p50 ${f(pct(s, 0.5))}  p95 ${f(pct(s, 0.95))}` +
    `  p99 ${f(pct(s, 0.99))}  max ${f(s.at(-1) ?? 0)}  >${FLOOR_MS} ms: ${s.filter((x) => x > FLOOR_MS).length}`
  );
}

/** The app: a process of its own running the reads (test/bench/_app-reader.ts). */
function startApp(url: string, schema: string, symbols: string[], etfs: string[]) {
  const child = fork(fileURLToPath(new URL('./_app-reader.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.send({ url, schema, readers: APP_READERS, symbols, etfs });
  const ended = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { done?: boolean }) => {
      if (m.done) resolve();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`app reader exited with ${code}`)),
    );
  });
  return {
    /** Ends the current phase: returns its samples (per read) and starts the next one. */
    phase(label: string, stop = false): Promise<Samples> {
      return new Promise((resolve) => {
        const on = (m: { phase?: string; samples?: Record<string, number[]> }) => {
          if (m.phase !== label) return;
          child.off('message', on);
          resolve(new Map(Object.entries(m.samples ?? {})));
        };
        child.on('message', on);
        child.send({ phase: label, stop });
      });
    },
    ended,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function print(label: string, samples: Samples): void {
  const names = [...samples.keys()].sort();
  for (const name of names) console.log(line(label, name, samples.get(name) ?? []));
  const client = names.filter((n) => !n.startsWith('server: ')).flatMap((n) => samples.get(n) ?? []);
  const server = names.filter((n) => n.startsWith('server: ')).flatMap((n) => samples.get(n) ?? []);
  console.log(line(label, 'ALL READS (round trip)', client));
  console.log(line(label, 'ALL READS (server)', server));
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
    const during: Samples[] = [];
    console.log(
      `app-reads bench: ${records.length} symbols, ${etfs.length} ETFs in universes, ${APP_READERS} app connections ` +
        `(tickstock_app_login), sync as tickstock_market_login (set-up ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );

    const app = startApp(db.url, db.schema, symbols, etfs);
    await sleep(1000);
    await app.phase('warm-up'); // plans and caches warm, as on a long-lived app connection
    await sleep(3000);
    const idle = await app.phase('no sync');
    for (let k = 0; k < SYNCS; k++) {
      // A session of market movement: closes moved (the sync re-values caps from them), 40 delisted.
      await db.pool.query(
        `UPDATE ohlcv_daily t SET close = v.c, high = greatest(t.high, v.c), low = least(t.low, v.c)
         FROM (SELECT symbol, date, round((close * (0.8 + 0.4 * ((hashtext(symbol || $2::text) & 1023) / 1023.0)))::numeric, 4) AS c
               FROM ohlcv_daily WHERE date = $1::date) v
         WHERE t.symbol = v.symbol AND t.date = v.date`,
        [tradeDate, String(k)],
      );
      await db.pool.query(
        `UPDATE symbols SET active = false, delisted_at = $1::date
         WHERE symbol IN (SELECT symbol FROM symbols WHERE type = 'CS' AND active ORDER BY hashtext(symbol || $2::text) LIMIT 40)`,
        [tradeDate, String(k)],
      );
      await app.phase(`between ${k}`); // the set-up writes above are not the sync
      const t = performance.now();
      const s = await runUniverseSync(deps, { tradeDate, force: true });
      const ms = performance.now() - t;
      during.push(await app.phase(`sync ${k}`, k === SYNCS - 1));
      console.log(
        `  sync ${k + 1}/${SYNCS}: ${ms.toFixed(0)} ms, ${s.universesChanged} universes changed, ` +
          `${s.totalChanges} changes, ${s.marketCapsMarked} market caps re-valued`,
      );
    }
    await app.ended;
    console.log(`  app reads (target p95 < 5 ms, nothing over the seeds' ${FLOOR_MS} ms):`);
    print('no sync', idle);
    const merged: Samples = new Map();
    for (const d of during)
      for (const [name, xs] of d) merged.set(name, [...(merged.get(name) ?? []), ...xs]);
    print('during sync', merged);
  } finally {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(keys);
    await redis.close();
    sqs.destroy();
    await marketPool.end();
    await db.drop();
  }
}
