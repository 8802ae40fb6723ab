/**
 * The order path's commits (issue 14's order-flow target), on the PostgreSQL event store against a
 * broker simulator process over HTTP and the WebSocket: what waits on what, asserted by outcome and
 * by transaction (xmin), never by time.
 *
 * - the gate hands a report to the engine once the one before it is decided, not committed: an ack
 *   and a fill the broker reports together go in one transaction;
 * - an acknowledgement alone is committed without waiting for its WAL flush, and is still in the
 *   chain (the stream verifies and rebuilds to the same state);
 * - the outbox's delivered marks are off the commands' path: the next command is sent while the mark
 *   of the one before is written, and every row is marked when the run ends;
 * - an acknowledgement alone is held a moment before it is written: a fill decided in a later turn
 *   of the event loop (its frame read after the ack's) still shares its transaction;
 * - the dispatcher reads the outbox table once: after that, the store knows what its own appends
 *   added; another writer's commands are still sent, in order and once each.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerPort } from '../../lambdas/trading/broker';
import { TradingEngine } from '../../lambdas/trading/engine';
import { dispatchLive, LiveBroker } from '../../lambdas/trading/live-broker';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { ConcurrencyError } from '../../lambdas/trading/store';
import type { BrokerCommand, OrderRequest } from '../../lambdas/trading/types';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let store: PostgresEventStore;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_order_path'), startSimProcess()]);
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

const AT = '2026-03-02T15:00:00Z';
const market = (cid: string): OrderRequest => ({
  clientOrderId: cid,
  symbol: 'AAPL',
  side: 'buy',
  qty: 1,
  type: 'market',
  tif: 'day',
});

async function account(stream: string, on: PostgresEventStore = store) {
  const key = await sim.account({ cash: 1e6, fill: 'immediate', clock: AT, rateLimitPerMinute: 1_000_000 });
  await sim.control(key.keyId, { prices: { AAPL: 100 } });
  const engine = await TradingEngine.open(on, stream, { init: { cash: 1e6 }, at: AT });
  await engine.updatePrices({ AAPL: 100 }, AT);
  const live = new LiveBroker({
    baseUrl: sim.url,
    wsUrl: sim.wsUrl,
    ...key,
    lookup: (cid) => engine.state.orders[cid],
    openOrders: () => [],
    onReport: async (report) => {
      await engine.onBrokerReport(report, AT);
    },
    decidesAtOnce: () => engine.decidesAtOnce(),
    requestTimeoutMs: 2_000,
  });
  return { key, engine, live };
}

/** Each event's type and the transaction that wrote it. */
async function transactions(stream: string): Promise<{ type: string; xmin: string }[]> {
  const { rows } = await db.pool.query<{ type: string; xmin: string }>(
    'SELECT type, xmin::text AS xmin FROM trading_events WHERE stream = $1 ORDER BY version',
    [stream],
  );
  return rows;
}

describe('the order path', () => {
  it('an ack and a fill the broker reports together are decided back to back and committed in one transaction', async () => {
    const stream = 'path-ack-fill';
    const { key, engine, live } = await account(stream);
    try {
      // The order is at the broker, filled; we hold it as submitted (pending_new) and learn its
      // fate from the broker's record (the in-flight lookup by client order id).
      await engine.submit(market('P1'), AT);
      const res = await sim.submitOrder(key, {
        symbol: 'AAPL',
        qty: '1',
        side: 'buy',
        type: 'market',
        time_in_force: 'day',
        client_order_id: 'P1',
      });
      expect(res.status).toBe(200);
      expect(await live.resolve('P1')).toBe(true);
      await engine.settled();
      expect(engine.state.orders.P1).toMatchObject({ status: 'filled', filledQty: 1 });
      const rows = (await transactions(stream)).filter((r) =>
        ['OrderAccepted', 'OrderFilled'].includes(r.type),
      );
      expect(rows.map((r) => r.type)).toEqual(['OrderAccepted', 'OrderFilled']);
      expect(rows[0]?.xmin).toBe(rows[1]?.xmin);
    } finally {
      await live.close();
    }
  });

  it('an acknowledgement alone is committed in its own transaction and stays in the verified chain', async () => {
    const stream = 'path-ack-alone';
    const { engine } = await account(stream);
    await engine.submit({ ...market('L1'), type: 'limit', limitPrice: 50, tif: 'gtc' }, AT);
    await engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'L1' }, AT);
    await engine.onBrokerReport({ kind: 'fill', clientOrderId: 'L1', qty: 1, price: 50 }, AT);
    const rows = await transactions(stream);
    const ack = rows.find((r) => r.type === 'OrderAccepted');
    const fill = rows.find((r) => r.type === 'OrderFilled');
    expect(ack && fill && ack.xmin !== fill.xmin).toBe(true);
    // The chain verifies and a rebuild decides the same state.
    const again = await TradingEngine.open(store, stream);
    expect(again.state.orders.L1).toMatchObject({ status: 'filled', filledQty: 1, avgFillPrice: 50 });
    expect(again.state.version).toBe(engine.state.version);
  });

  it("the outbox's delivered marks are off the commands' path: the next command goes out while the mark before it is written", async () => {
    const stream = 'path-outbox';
    const { engine, live } = await account(stream);
    await live.start();
    const log: string[] = [];
    // The store as the live service has it, its marks observed (the writes are the real ones).
    const observed = new (class extends PostgresEventStore {
      override async markDelivered(ids: readonly number[]): Promise<void> {
        log.push(`mark ${ids.length}`);
        await super.markDelivered(ids);
        log.push('marked');
      }
    })(db.pool);
    const broker: BrokerPort = {
      send: async (command: BrokerCommand) => {
        log.push(`send ${command.clientOrderId}`);
        await live.send(command);
      },
    };
    try {
      await Promise.all(['O1', 'O2', 'O3'].map((cid) => engine.submit(market(cid), AT)));
      const r = await dispatchLive(observed, stream, broker);
      expect(r).toEqual({ sent: 3, blocked: null });
      expect(await store.pendingCommands(stream)).toEqual([]);
      // O2 is sent before O1's mark is committed.
      expect(log.indexOf('send O2')).toBeLessThan(log.indexOf('marked'));
      expect(log.filter((l) => l.startsWith('send'))).toEqual(['send O1', 'send O2', 'send O3']);
      expect(log.at(-1)).toBe('marked');
    } finally {
      await live.close();
    }
  });

  it('an acknowledgement alone is held a moment: a fill decided in a later turn of the event loop shares its transaction', async () => {
    const stream = 'path-ack-hold';
    const { engine } = await account(stream);
    await engine.submit(market('H1'), AT);
    const ack = engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'H1' }, AT);
    // The fill's frame is read after the ack's was handled, in a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    const fill = engine.onBrokerReport({ kind: 'fill', clientOrderId: 'H1', qty: 1, price: 100 }, AT);
    expect(await Promise.all([ack, fill])).toEqual(['applied', 'applied']);
    const rows = (await transactions(stream)).filter((r) =>
      ['OrderAccepted', 'OrderFilled'].includes(r.type),
    );
    expect(rows.map((r) => r.type)).toEqual(['OrderAccepted', 'OrderFilled']);
    expect(rows[0]?.xmin).toBe(rows[1]?.xmin);
    // The fill's transaction is durable, the chain verifies and a rebuild decides the same state.
    const again = await TradingEngine.open(store, stream);
    expect(again.state.orders.H1).toMatchObject({ status: 'filled', filledQty: 1 });
  });

  it('the ack of an order resting away from the last price is not held: no fill is coming behind it', async () => {
    const stream = 'path-ack-resting';
    const { engine } = await account(stream);
    await engine.submit({ ...market('R1'), type: 'limit', limitPrice: 50, tif: 'gtc' }, AT);
    const ack = engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'R1' }, AT);
    await new Promise((resolve) => setImmediate(resolve));
    // A command of a later turn: the ack's transaction has already gone (held, they would share one).
    const next = engine.submit(market('R2'), AT);
    expect(await ack).toBe('applied');
    expect((await next).status).toBe('pending_new');
    const rows = await transactions(stream);
    const accepted = rows.find((r) => r.type === 'OrderAccepted');
    const submitted = rows.filter((r) => r.type === 'OrderSubmitted').at(-1);
    expect(accepted && submitted && accepted.xmin !== submitted.xmin).toBe(true);
  });

  it("the dispatcher reads the outbox once, then knows its own appends' commands; another writer's are still sent, in order, once each", async () => {
    const stream = 'path-known-outbox';
    // The store of the engine and the dispatcher (as in the live service), its reads of the outbox counted.
    let outboxReads = 0;
    const counted = {
      query: (...args: Parameters<pg.Pool['query']>) => {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
        if (/FROM trading_outbox o WHERE/.test(text)) outboxReads += 1;
        return (db.pool.query as (...a: unknown[]) => unknown)(...args);
      },
    } as unknown as pg.Pool;
    const ours = new PostgresEventStore(counted);
    const { key, engine, live } = await account(stream, ours);
    await live.start();
    const sent: string[] = [];
    const broker: BrokerPort = {
      send: async (command: BrokerCommand) => {
        sent.push(command.clientOrderId);
        await live.send(command);
      },
    };
    // Another writer on the same stream (the `trading` CLI): its own store and engine. It writes once
    // every frame the broker sent has been applied (the test's single writer at a time; the live
    // service applies a report again after a racing append).
    const cli = async (cid: string) => {
      await live.settle(async (id) => Boolean((await sim.control(key.keyId, { barrier: id })).barrier));
      await engine.settled();
      const other = await TradingEngine.open(new PostgresEventStore(db.pool), stream);
      expect((await other.submit(market(cid), AT)).status).toBe('pending_new');
    };
    try {
      await engine.submit(market('K1'), AT);
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 1, blocked: null });
      expect(outboxReads).toBe(1);
      await Promise.all([engine.submit(market('K2'), AT), engine.submit(market('K3'), AT)]);
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 2, blocked: null });
      expect(outboxReads).toBe(1);
      // Another writer appends: what this store knows ends before its command, which waits until
      // the engine has caught up (the service's poll sees the moved head and refreshes).
      await cli('W1');
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 0, blocked: null });
      await engine.refresh();
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 1, blocked: null });
      expect(outboxReads).toBe(2);
      await engine.submit(market('K4'), AT);
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 1, blocked: null });
      expect(outboxReads).toBe(2);
      // Another writer appends and our engine appends after it without having caught up: its append
      // is refused (expected version), the engine rebuilds, the command is issued again; the table is read.
      await cli('W2');
      await expect(engine.submit(market('K5'), AT)).rejects.toThrow(ConcurrencyError);
      expect((await engine.submit(market('K5'), AT)).status).toBe('pending_new');
      expect(await dispatchLive(ours, stream, broker)).toEqual({ sent: 2, blocked: null });
      expect(outboxReads).toBe(3);
      expect(sent).toEqual(['K1', 'K2', 'K3', 'W1', 'K4', 'W2', 'K5']);
      // Every row marked in the table (read by another store), one order per client order id at the broker.
      expect(await store.pendingCommands(stream)).toEqual([]);
      const state = (await sim.state(key.keyId)) as { orders: { client_order_id: string }[] };
      const cids = state.orders.map((o) => o.client_order_id).sort();
      expect(cids).toEqual(['K1', 'K2', 'K3', 'K4', 'K5', 'W1', 'W2']);
    } finally {
      await live.close();
    }
  });
});
