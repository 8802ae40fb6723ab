/**
 * The trading core against its targets (issue 13), on the real PostgreSQL event store in a throwaway
 * schema: risk check p99 (< 1 ms), order flow = risk check + event append + outbox p99 (< 10 ms),
 * breaker trip to every order path refusing (< 5 ms), sustained risk-checked orders/s with events
 * persisted (>= 2,000/s). Prints figures; asserts nothing.
 *
 * The engine connects as the trading component's login role (tickstock_trading_login), as the CLI
 * does; the admin user only migrates and drops the throwaway schema. Every order is committed
 * durably (synchronous_commit on): the machine's own commit latency (one single-row INSERT) is
 * printed next to the order flow, since that flush is most of an order's latency here.
 *
 * Then the broker path (issue 14, test/bench/_trading-broker.ts): order flow excluding the broker
 * round trip and the round trip apart, error propagation to the risk manager, recovery after a
 * stream disconnect, reconciliation of 10,000 orders and 1,000 positions, fills lost/doubled in
 * fault runs, each next to its target.
 *
 * Then the live engine catching up with another writer (issue 14, `TradingEngine.refresh`): one
 * command appended by another writer (as the `trading` CLI does), caught up incrementally (the
 * events after the engine's version) and by a whole rebuild, at two stream lengths, in the same run.
 * TRADING_BENCH_ONLY=catchup runs that part alone (the machine is shared).
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { checkOrder } from '../../lambdas/trading/risk';
import type { AccountState } from '../../lambdas/trading/state';
import type { Limits, OrderRequest, TradingEvent } from '../../lambdas/trading/types';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { brokerBench } from './_trading-broker';

const START = '2026-03-02T15:00:00.000Z';
const SYMBOLS = Array.from({ length: 50 }, (_, i) => `S${String(i).padStart(2, '0')}`);
const LIMITS: Limits = {
  maxOrderNotional: 1_000_000,
  maxPositionQty: { '*': 1_000_000 },
  maxGrossExposure: 1e12,
  maxLeverage: 1_000,
  priceCollarPct: 10,
  correlationGroups: { first: { symbols: SYMBOLS.slice(0, 10), maxExposure: 1e12 } },
  dailyLossLimit: 1e9,
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function stats(label: string, ms: number[]): void {
  const s = [...ms].sort((a, b) => a - b);
  console.log(
    `  ${label.padEnd(48)} p50 ${percentile(s, 50).toFixed(3)} ms  p99 ${percentile(s, 99).toFixed(3)} ms  max ${(s[s.length - 1] ?? 0).toFixed(3)} ms  (n=${s.length})`,
  );
}

const at = (ms: number) => new Date(Date.parse(START) + ms).toISOString();

function order(id: string, i: number): OrderRequest {
  return {
    clientOrderId: id,
    symbol: SYMBOLS[i % SYMBOLS.length] as string,
    side: i % 3 === 0 ? 'sell' : 'buy',
    qty: 1 + (i % 5),
    type: 'limit',
    limitPrice: 100,
    tif: 'gtc',
  };
}

async function account(
  store: PostgresEventStore,
  stream: string,
  limits: Limits = LIMITS,
): Promise<TradingEngine> {
  const engine = await TradingEngine.open(store, stream, { init: { cash: 1e9, limits }, at: START });
  await engine.updatePrices(Object.fromEntries(SYMBOLS.map((s) => [s, 100])), START);
  return engine;
}

/** The PostgreSQL store with the incremental read refused: every catch-up rebuilds whole (as before). */
class WholeRebuildStore extends PostgresEventStore {
  override async loadAfter(): Promise<TradingEvent[] | null> {
    return null;
  }
}

/**
 * 5. Catching up with another writer: per stream length, the live engine (incremental) and a twin
 * on the same stream whose store refuses the incremental read (the whole rebuild, as the engine did
 * before) each catch up with the same appended command, alternately. The other writer is an engine
 * of its own store appending one submit (its own reads not measured).
 */
async function catchUp(pool: ReturnType<typeof createPool>): Promise<void> {
  console.log("catch-up with another writer's command (live engine refresh; one CLI submit appended):");
  for (const [length, runs] of [
    [1_000, 40],
    [10_000, 20],
  ] as const) {
    const stream = `catchup-${length}`;
    const writer = await account(new PostgresEventStore(pool), stream);
    // A hundred orders a second (each batch a second after the last): the order-rate window stays short.
    for (let b = 0; writer.state.version < length; b++)
      await writer.submitPortfolio(
        Array.from({ length: Math.min(100, length - writer.state.version) }, (_, i) =>
          order(`H${b}-${i}`, i),
        ),
        at(1000 + b * 1000),
      );
    const live = await TradingEngine.open(new PostgresEventStore(pool), stream);
    const whole = await TradingEngine.open(new WholeRebuildStore(pool), stream);
    const incremental: number[] = [];
    const rebuilt: number[] = [];
    const timed = async (engine: TradingEngine, into: number[], keep: boolean) => {
      const t0 = performance.now();
      await engine.refresh();
      if (keep) into.push(performance.now() - t0);
    };
    for (let i = 0; i < runs + 3; i++) {
      await writer.submit(order(`W${i}`, i), at(10_000_000 + i * 1000));
      // Alternated: neither always reads the new rows first; the first three warm up.
      const first = i % 2 === 0;
      await timed(first ? live : whole, first ? incremental : rebuilt, i >= 3);
      await timed(first ? whole : live, first ? rebuilt : incremental, i >= 3);
    }
    if (
      live.state.version !== writer.state.version ||
      JSON.stringify(live.projections()) !== JSON.stringify(whole.projections())
    )
      throw new Error(`the incremental catch-up of ${stream} differs from the whole rebuild`);
    stats(`${length.toLocaleString('en-US')} events: incremental (events after ours)`, incremental);
    stats(`${length.toLocaleString('en-US')} events: whole rebuild`, rebuilt);
    const median = (ms: number[]) =>
      percentile(
        [...ms].sort((a, b) => a - b),
        50,
      );
    console.log(
      `  ${`${length.toLocaleString('en-US')} events: whole rebuild / incremental (p50)`.padEnd(48)} ${(median(rebuilt) / median(incremental)).toFixed(1)}x`,
    );
  }
  console.log(
    `  machine load average after: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
}

export async function bench(): Promise<void> {
  const only = process.env.TRADING_BENCH_ONLY;
  if (only !== undefined && only !== 'catchup')
    throw new Error(`TRADING_BENCH_ONLY=${only}: the only part that runs alone is catchup`);
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';
  await ensureDatabase(url);
  const schema = `bench_trading_${randomBytes(4).toString('hex')}`;
  const admin = createPool({ connectionString: url, schema, max: 2 });
  // The engine's connections: the trading login role, as production (and the trading CLI) connect.
  const pool = createPool({ connectionString: componentDatabaseUrl(url, 'trading'), schema, max: 8 });
  try {
    await migrate(
      admin,
      (await loadMigrations(MIGRATIONS_DIR)).filter((m) => m.version < '0100' || m.version.startsWith('03')),
      schema,
    );
    if (only === 'catchup') {
      await catchUp(pool);
      return;
    }
    const store = new PostgresEventStore(pool);

    // 1. Risk check alone, on accounts with 200 and 5,000 open orders over 50 symbols.
    const riskChecks = (state: AccountState): number[] => {
      const checks: number[] = [];
      const now = Date.parse(at(2000));
      for (let i = 0; i < 20_000; i++) {
        const c = {
          symbol: SYMBOLS[i % 50] as string,
          side: 'buy' as const,
          qty: 10,
          type: 'limit' as const,
          limitPrice: 100,
        };
        const t0 = performance.now();
        checkOrder(state, c, now);
        if (i >= 1000) checks.push(performance.now() - t0);
      }
      return checks;
    };
    const risk = await account(store, 'risk');
    await risk.submitPortfolio(
      Array.from({ length: 200 }, (_, i) => order(`R${i}`, i)),
      at(1000),
    );
    console.log('risk check (50 symbols, every limit set; target p99 < 1 ms):');
    stats('checkOrder, 200 open orders', riskChecks(risk.state));
    const deep = await account(store, 'risk-deep');
    for (let b = 0; b < 20; b++)
      await deep.submitPortfolio(
        Array.from({ length: 250 }, (_, i) => order(`D${b}-${i}`, i)),
        at(1000 + b),
      );
    stats('checkOrder, 5,000 open orders', riskChecks(deep.state));

    // 2. Order flow: risk check + event append + projections + outbox, one transaction per order.
    const flow = await account(store, 'flow');
    const flowMs: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < 1500; i++) {
      const t0 = performance.now();
      await flow.submit(order(`F${i}`, i), at(1000 + i * 10));
      if (i >= 100) flowMs.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    const roundTrips: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t1 = performance.now();
      await pool.query('SELECT 1');
      roundTrips.push(performance.now() - t1);
    }
    // The floor under any durable order on this machine: one single-row INSERT, committed.
    await admin.query('CREATE TABLE bench_commit (n integer)');
    const commits: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t1 = performance.now();
      await admin.query('INSERT INTO bench_commit VALUES ($1)', [i]);
      commits.push(performance.now() - t1);
    }
    console.log('order flow on the PostgreSQL event store (target p99 < 10 ms):');
    stats('submit (risk + append + projections + outbox)', flowMs);
    console.log(
      `  ${'engine CPU per order (user + system)'.padEnd(48)} ${((cpu.user + cpu.system) / 1000 / 1500).toFixed(3)} ms`,
    );
    stats('for scale: one SELECT 1 round trip', roundTrips);
    stats('for scale: one single-row INSERT, committed', commits);

    // 3. Breaker trip: the price that trips the daily loss gate until every order path refuses.
    //    The gate is the in-memory state: the trip is decided when the price arrives, and the next
    //    submit and modify are decided against it at once (no poll, no read). Their answers are
    //    released when they are committed: with the price, in one or two group commits.
    const gates: number[] = [];
    const durable: number[] = [];
    const sequential: number[] = [];
    for (let i = 0; i < 60; i++) {
      const engine = await account(store, `trip-${i}`, { dailyLossLimit: 1_000 });
      await engine.submit({ ...order(`T${i}`, 1), side: 'buy', qty: 100 }, at(500));
      await engine.onBrokerReport({ kind: 'fill', clientOrderId: `T${i}`, qty: 100, price: 100 }, at(600));
      for (let k = 0; k < 20; k++) await engine.submit(order(`O${i}-${k}`, k + 1), at(700 + k));
      // A working order that reduces the position: the trip leaves it, a modify that would add is refused.
      const reduce = `R${i}`;
      await engine.submit({ ...order(reduce, 1), side: 'sell', qty: 10 }, at(800));
      await engine.onBrokerReport({ kind: 'accepted', clientOrderId: reduce }, at(801));
      const t0 = performance.now();
      let submit: Awaited<ReturnType<TradingEngine['submit']>>;
      let modify: Awaited<ReturnType<TradingEngine['modify']>>;
      if (i % 2 === 0) {
        const price = engine.updatePrices({ [SYMBOLS[1] as string]: 1 }, at(1000));
        const s = engine.submit({ ...order(`X${i}`, 1), side: 'buy' }, at(1001));
        const m = engine.modify({ clientOrderId: reduce, qty: 200 }, at(1001));
        gates.push(performance.now() - t0);
        [, submit, modify] = await Promise.all([price, s, m]);
        durable.push(performance.now() - t0);
      } else {
        await engine.updatePrices({ [SYMBOLS[1] as string]: 1 }, at(1000));
        submit = await engine.submit({ ...order(`X${i}`, 1), side: 'buy' }, at(1001));
        modify = await engine.modify({ clientOrderId: reduce, qty: 200 }, at(1001));
        sequential.push(performance.now() - t0);
      }
      if (submit.denial?.code !== 'REDUCE_ONLY' || modify.ok || modify.code !== 'REDUCE_ONLY')
        throw new Error(`an order path did not refuse after the trip: ${JSON.stringify({ submit, modify })}`);
    }
    console.log('breaker trip -> every order path refusing (target < 5 ms):');
    stats('trip decided -> submit and modify refused (gate)', gates);
    stats('price tick -> trip + both refusals committed', durable);
    stats('same, each command awaited (three commits)', sequential);

    // 4. Sustained: risk-checked orders with their events persisted.
    const N = 3000;
    const single = await account(store, 'sustained-1');
    let t0 = performance.now();
    for (let i = 0; i < N; i++) await single.submit(order(`S${i}`, i), at(1000 + i));
    const singleRate = N / ((performance.now() - t0) / 1000);
    const accounts = await Promise.all(
      Array.from({ length: 8 }, (_, a) => account(store, `sustained-p${a}`)),
    );
    t0 = performance.now();
    await Promise.all(
      accounts.map(async (engine, a) => {
        for (let i = 0; i < N / 8; i++) await engine.submit(order(`P${a}-${i}`, i), at(1000 + i));
      }),
    );
    const parallelRate = N / ((performance.now() - t0) / 1000);
    // A stream of orders on one account, up to WINDOW in flight (a strategy or an API that does not
    // wait for one order's commit before sending the next): group commit.
    const WINDOW = 256;
    const streamed = await account(store, 'sustained-stream');
    const cpuStream0 = process.cpuUsage();
    t0 = performance.now();
    {
      let next = 0;
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          for (let i = next++; i < N * 2; i = next++) await streamed.submit(order(`G${i}`, i), at(1000 + i));
        }),
      );
    }
    const streamRate = (N * 2) / ((performance.now() - t0) / 1000);
    const cpuStream = process.cpuUsage(cpuStream0);
    const streamedAccounts = await Promise.all(
      Array.from({ length: 8 }, (_, a) => account(store, `sustained-stream-p${a}`)),
    );
    t0 = performance.now();
    await Promise.all(
      streamedAccounts.map(async (engine, a) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: WINDOW / 8 }, async () => {
            for (let i = next++; i < (N * 2) / 8; i = next++)
              await engine.submit(order(`Q${a}-${i}`, i), at(1000 + i));
          }),
        );
      }),
    );
    const streamParallelRate = (N * 2) / ((performance.now() - t0) / 1000);
    const batched = await account(store, 'sustained-batch');
    t0 = performance.now();
    for (let b = 0; b < N / 50; b++)
      await batched.submitPortfolio(
        Array.from({ length: 50 }, (_, i) => order(`B${b}-${i}`, i)),
        at(1000 + b),
      );
    const batchRate = N / ((performance.now() - t0) / 1000);
    const { rows } = await pool.query<{ events: number }>(
      'SELECT count(*)::int AS events FROM trading_events',
    );
    console.log(
      `machine load average while measuring: ${(await import('node:os'))
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log('sustained risk-checked orders with events persisted (target >= 2,000/s):');
    console.log(`  ${'one account, one transaction per order'.padEnd(48)} ${singleRate.toFixed(0)} orders/s`);
    console.log(
      `  ${'8 accounts in parallel, one transaction per order'.padEnd(48)} ${parallelRate.toFixed(0)} orders/s`,
    );
    console.log(
      `  ${'one account, portfolios of 50 per transaction'.padEnd(48)} ${batchRate.toFixed(0)} orders/s`,
    );
    console.log(
      `  ${`one account, ${WINDOW} in flight (group commit)`.padEnd(48)} ${streamRate.toFixed(0)} orders/s  (engine CPU ${((cpuStream.user + cpuStream.system) / 1000 / (N * 2)).toFixed(3)} ms per order)`,
    );
    console.log(
      `  ${`8 accounts, ${WINDOW / 8} in flight each (group commit)`.padEnd(48)} ${streamParallelRate.toFixed(0)} orders/s`,
    );
    console.log(`  events persisted in the run: ${rows[0]?.events}`);

    await catchUp(pool);
  } finally {
    await pool.end();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
  // The live path (issue 14): the broker figures in the same run.
  if (only !== 'catchup') await brokerBench();
}
