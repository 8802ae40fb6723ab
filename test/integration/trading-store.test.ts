/** The PostgreSQL event store's append contract: all or nothing, and a stale writer is refused. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { ConcurrencyError } from '../../lambdas/trading/store';
import type { OrderRequest } from '../../lambdas/trading/types';
import { createTestSchema, type TestSchema } from '../support/db';

const AT = '2026-03-02T15:00:00.000Z';
const order = (id: string): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty: 1,
  type: 'limit',
  limitPrice: 100,
  tif: 'day',
});

let db: TestSchema;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestSchema('trading_store');
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await db.drop();
});

describe('PostgreSQL event store', () => {
  it('refuses a writer whose state is stale and writes none of its events, projections or commands', async () => {
    const first = await TradingEngine.open(store, 'acct-1', { init: { cash: 1000 }, at: AT });
    const second = await TradingEngine.open(store, 'acct-1');
    await first.submit(order('A'), AT);
    const before = await store.counts('acct-1');
    await expect(second.submit(order('B'), AT)).rejects.toThrow(ConcurrencyError);
    expect(await store.counts('acct-1')).toEqual(before);
    const { rows } = await db.pool.query('SELECT client_order_id FROM trading_orders WHERE stream = $1', [
      'acct-1',
    ]);
    expect(rows).toEqual([{ client_order_id: 'A' }]);
    // The refused engine rebuilt itself from the store and can go on.
    expect(second.state.orders.A?.status).toBe('pending_new');
    await second.submit(order('B'), AT);
    expect((await store.counts('acct-1')).brokerCommands).toBe(2);
  });

  it('gives concurrent writers on one stream one winner each round, never a gap or a duplicate version', async () => {
    await TradingEngine.open(store, 'acct-2', { init: { cash: 1000 }, at: AT });
    const engines = await Promise.all([1, 2, 3, 4].map(() => TradingEngine.open(store, 'acct-2')));
    const outcomes = await Promise.allSettled(engines.map((e, i) => e.submit(order(`C${i}`), AT)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const { rows } = await db.pool.query<{ version: number }>(
      'SELECT version FROM trading_events WHERE stream = $1 ORDER BY version',
      ['acct-2'],
    );
    expect(rows.map((r) => r.version)).toEqual(rows.map((_, i) => i + 1));
  });

  it('group commit: concurrent orders on one account share transactions, each order and event committed once', async () => {
    const engine = await TradingEngine.open(store, 'acct-3', { init: { cash: 1_000_000 }, at: AT });
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) => engine.submit(order(`G${i}`), AT)),
    );
    expect(outcomes.every((o) => o.status === 'pending_new')).toBe(true);
    const { rows } = await db.pool.query<{
      events: number;
      versions: number;
      max: number;
      transactions: number;
    }>(
      `SELECT count(*)::int AS events, count(DISTINCT version)::int AS versions, max(version) AS max,
              count(DISTINCT xmin::text)::int AS transactions
         FROM trading_events WHERE stream = $1`,
      ['acct-3'],
    );
    const r = rows[0];
    // 2 opening events + 300 submits, versions 1..302 without a gap or a duplicate.
    expect(r).toMatchObject({ events: 302, versions: 302, max: 302 });
    // Fewer transactions than orders: the orders that arrived during a commit went in the next one.
    expect(r?.transactions).toBeLessThan(50);
    expect((await store.counts('acct-3')).brokerCommands).toBe(300);
    const restarted = await TradingEngine.open(store, 'acct-3');
    expect(restarted.projections()).toEqual(engine.projections());
    expect(await store.readProjections('acct-3')).toEqual(engine.projections());
  });
});
