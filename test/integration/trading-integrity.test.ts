/**
 * Event store integrity (issue 14 §3) on the real PostgreSQL: the hash chain computed on append
 * (one statement, group commit included) agrees with the in-memory store's, verifies on load, and
 * names the first bad version when rows are edited or deleted (tampered by SQL as the owner, the
 * append-only trigger disabled). Recovery goes through the live service's start-up against the
 * broker simulator (its own process): rebuilt from the broker when possible and recorded, otherwise
 * halted with a critical alert and nothing sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import {
  type ChainRow,
  chainHash,
  eventDigest,
  IntegrityError,
  verifyChain,
} from '../../lambdas/trading/integrity';
import { dispatchLive, LiveBroker } from '../../lambdas/trading/live-broker';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { isOpen } from '../../lambdas/trading/state';
import { type EventStore, MemoryEventStore } from '../../lambdas/trading/store';
import type { Order, OrderRequest } from '../../lambdas/trading/types';
import { type LiveConfig, LiveService, type ServiceEvent } from '../../lambdas/trading-live/service';
import { assertSameState } from '../../localstack/trading/replay';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';
import { tamperEvents } from '../support/trading-tamper';

let db: TestSchema;
let store: PostgresEventStore;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_integrity'), startSimProcess()]);
  store = new PostgresEventStore(db.pool);
}, 120_000);
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

const AT = '2026-03-02T15:00:00.000Z';
const order = (id: string, over: Partial<OrderRequest> = {}): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty: 10,
  type: 'limit',
  limitPrice: 100,
  tif: 'day',
  ...over,
});

/** The same commands on any store (fixed times, so two stores get the same events). */
async function script(s: EventStore, stream: string): Promise<TradingEngine> {
  const e = await TradingEngine.open(s, stream, { init: { cash: 100_000 }, at: AT });
  await e.market({ session: 'open' }, AT);
  await e.updatePrices({ AAPL: 100, MSFT: 50 }, AT);
  await e.submit(order('A'), AT);
  await e.onBrokerReport({ kind: 'accepted', clientOrderId: 'A' }, AT);
  await e.onBrokerReport({ kind: 'fill', clientOrderId: 'A', qty: 4, price: 99.5 }, AT);
  // Group commit: several commands in one append (one statement), the chain across them.
  await Promise.all([
    e.submit(order('B', { symbol: 'MSFT', limitPrice: 50 }), AT),
    e.submit(order('C', { qty: 3 }), AT),
    e.cancel('A', AT),
  ]);
  await e.onBrokerReport({ kind: 'canceled', clientOrderId: 'A' }, AT);
  return e;
}

/** Tampering as the table's owner (test/support/trading-tamper.ts). */
const tamper = (sql: string, values: unknown[]) => tamperEvents(db.pool, sql, values);

async function integrityError(stream: string): Promise<IntegrityError> {
  const error = await store.load(stream).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrityError);
  return error as IntegrityError;
}

/** An account whose orders went to the simulator and filled there (a real broker-side history). */
async function tradedAccount(stream: string) {
  const creds = await sim.account({ cash: 100_000 });
  await sim.control(creds.keyId, { prices: { AAPL: 100, MSFT: 50 } });
  const now = new Date().toISOString();
  const engine = await TradingEngine.open(store, stream, { init: { cash: 100_000 }, at: now });
  await engine.market({ session: 'open' }, now);
  await engine.updatePrices({ AAPL: 100, MSFT: 50 }, now);
  const live = new LiveBroker({
    baseUrl: sim.url,
    wsUrl: sim.wsUrl,
    keyId: creds.keyId,
    secret: creds.secret,
    lookup: (cid) => engine.state.orders[cid],
    openOrders: () => [...engine.state.open].map((id) => engine.state.orders[id] as Order).filter(isOpen),
    onReport: async (r) => {
      await engine.onBrokerReport(r, new Date().toISOString());
    },
    requestTimeoutMs: 2_000,
  });
  await live.start();
  await engine.submit(order('M1', { type: 'market', limitPrice: undefined, qty: 5 }), now);
  await engine.submit(order('M2', { symbol: 'MSFT', type: 'market', limitPrice: undefined, qty: 8 }), now);
  // A resting limit far from the market: open at the broker.
  await engine.submit(order('L1', { limitPrice: 80, qty: 2 }), now);
  await dispatchLive(store, stream, live);
  await live.settle(async (id) => Boolean((await sim.control(creds.keyId, { barrier: id })).barrier));
  await live.close();
  await engine.settled();
  expect(engine.state.orders.M1?.filledQty).toBe(5);
  expect(engine.state.orders.M2?.filledQty).toBe(8);
  return { creds, engine };
}

function config(
  stream: string,
  creds: { keyId: string; secret: string },
  over: Partial<LiveConfig> = {},
): LiveConfig {
  return {
    databaseUrl: db.url,
    schema: db.schema,
    brokerBaseUrl: sim.url,
    brokerWsUrl: sim.wsUrl,
    keyId: creds.keyId,
    secret: creds.secret,
    account: stream.replace(/^account-/, ''),
    healthPort: 0,
    pollMs: 50,
    reconcileMs: 60_000,
    requestTimeoutMs: 2_000,
    ...over,
  };
}

async function startService(cfg: LiveConfig) {
  const events: ServiceEvent[] = [];
  const service = new LiveService(cfg, (e) => events.push(e));
  await service.start();
  return { service, events };
}

async function brokerState(keyId: string) {
  return (await sim.state(keyId)) as unknown as {
    cash: number;
    positions: Record<string, { qty: number }>;
    orders: { client_order_id: string; filled_qty: string }[];
  };
}

describe('TC-RC-006: event store consistency', () => {
  it('TC-RC-006: projections equal the fold, the chain verifies, and PostgreSQL chains exactly as the in-memory store', async () => {
    const memory = new MemoryEventStore();
    const [pgEngine] = await Promise.all([script(store, 'account-rc006'), script(memory, 'account-rc006')]);
    const rebuilt = await TradingEngine.open(store, 'account-rc006');
    expect(rebuilt.projections()).toEqual(pgEngine.projections());
    await assertSameState(pgEngine.projections(), rebuilt, store, 'account-rc006');

    const pg = await store.readChain('account-rc006');
    const mem = await memory.readChain('account-rc006');
    expect(pg.rows.length).toBeGreaterThan(8);
    expect(pg.head).toBe(pg.rows.length);
    // The same events give the same hashes: the SQL chain step and the TypeScript one agree.
    expect(pg.rows.map((r) => r.hash)).toEqual(mem.rows.map((r) => r.hash));
    expect(new Set(pg.rows.map((r) => r.hash)).size).toBe(pg.rows.length);
    const v = verifyChain('account-rc006', pg.rows, pg.head);
    expect(v.ok && v.legacy).toBe(0);
    // The stream's name is part of every digest: the same rows under another stream do not verify.
    expect(verifyChain('account-other', pg.rows, pg.head).ok).toBe(false);
  });
});

describe('TC-RC-013: data corruption detection', () => {
  it('TC-RC-013: an edited event is refused at its version, on PostgreSQL and in memory', async () => {
    await script(store, 'account-rc013a');
    await tamper(
      `UPDATE trading_events SET data = jsonb_set(data, '{qty}', '9') WHERE stream = $1 AND version = 6`,
      ['account-rc013a'],
    );
    const e = await integrityError('account-rc013a');
    expect(e.failure).toMatchObject({ kind: 'corrupted', firstBadVersion: 6 });
    expect(e.message).toContain('version 6');
    expect(e.failure.trusted).toHaveLength(5);
    // The engine refuses to open (nothing trades on it), as the CLI would.
    await expect(TradingEngine.open(store, 'account-rc013a')).rejects.toThrow(IntegrityError);

    const memory = new MemoryEventStore();
    await script(memory, 's');
    memory.tamper('s', (rows) =>
      rows.map((r) => (r.version === 3 ? { ...r, data: { ...r.data, at: '2026-03-02T16:00:00.000Z' } } : r)),
    );
    await expect(memory.load('s')).rejects.toThrow(/corrupted at version 3/);
  });

  it('TC-RC-013: a row edited with its hash recomputed breaks the next link; a removed hash is refused', async () => {
    await script(store, 'account-rc013b');
    // The forger edits row 4 and recomputes its own hash correctly: row 5's link to it breaks.
    const { rows } = await store.readChain('account-rc013b');
    const row = rows[3] as ChainRow;
    const data = { ...row.data, at: '2026-03-02T14:00:00.000Z' };
    const hash = chainHash(
      rows[2]?.hash ?? null,
      eventDigest('account-rc013b', 4, row.type, data, row.occurredAt),
    );
    await tamper('UPDATE trading_events SET data = $2, hash = $3 WHERE stream = $1 AND version = 4', [
      'account-rc013b',
      JSON.stringify(data),
      hash,
    ]);
    expect((await integrityError('account-rc013b')).failure.firstBadVersion).toBe(5);
    await script(store, 'account-rc013c');
    await tamper(`UPDATE trading_events SET hash = NULL WHERE stream = $1 AND version = 7`, [
      'account-rc013c',
    ]);
    expect((await integrityError('account-rc013c')).failure).toMatchObject({
      kind: 'corrupted',
      firstBadVersion: 7,
    });
  });

  it('TC-RC-013: an edited fill is recovered from the broker at start-up and recorded; the store verifies again', async () => {
    const stream = 'account-rc013d';
    const { creds } = await tradedAccount(stream);
    const { rows } = await db.pool.query<{ version: number }>(
      `SELECT version FROM trading_events WHERE stream = $1 AND type = 'OrderFilled' ORDER BY version LIMIT 1`,
      [stream],
    );
    const bad = rows[0]?.version as number;
    // The booked fill is changed to twice its quantity: cash and position would be wrong.
    await tamper(
      `UPDATE trading_events SET data = jsonb_set(data, '{qty}', to_jsonb((data->>'qty')::numeric * 2)) WHERE stream = $1 AND version = $2`,
      [stream, bad],
    );
    const { service, events } = await startService(config(stream, creds));
    try {
      expect(service.state).toBe('accepting');
      const kinds = events.map((e) => e.event);
      expect(kinds.indexOf('integrity')).toBeLessThan(kinds.indexOf('recovered'));
      expect(kinds.indexOf('recovered')).toBeLessThan(kinds.indexOf('ready'));
      expect(events.find((e) => e.event === 'integrity')).toMatchObject({
        kind: 'corrupted',
        firstBadVersion: bad,
      });
      expect(
        events.some((e) => e.event === 'alert' && e.severity === 'critical' && e.source === 'integrity'),
      ).toBe(true);
    } finally {
      await service.stop();
    }
    const engine = await TradingEngine.open(store, stream);
    const broker = await brokerState(creds.keyId);
    expect(engine.state.cash).toBeCloseTo(Number(broker.cash), 6);
    for (const [symbol, p] of Object.entries(broker.positions))
      expect(engine.state.positions[symbol]?.qty, symbol).toBe(Number(p.qty));
    for (const o of broker.orders)
      expect(engine.state.orders[o.client_order_id]?.filledQty, o.client_order_id).toBe(Number(o.filled_qty));
    const recovered = (await store.load(stream)).find((e) => e.type === 'IntegrityRecovered');
    expect(recovered).toMatchObject({ brokenAt: bad, kind: 'corrupted', recovered: { orders: 3 } });
    const chain = await store.readChain(stream);
    const v = verifyChain(stream, chain.rows, chain.head);
    expect(v.ok && v.recovered.map((r) => r.brokenAt)).toEqual([bad]);
  });

  it('TC-RC-013: a corrupted opening cannot be recovered: the service halts with a critical alert and sends nothing', async () => {
    const stream = 'account-rc013e';
    const creds = await sim.account({ cash: 100_000 });
    const e = await TradingEngine.open(store, stream, { init: { cash: 100_000 }, at: AT });
    await e.market({ session: 'open' }, AT);
    await e.updatePrices({ AAPL: 100 }, AT);
    await e.submit(order('H1'), AT);
    await tamper(
      `UPDATE trading_events SET data = jsonb_set(data, '{cash}', '999999') WHERE stream = $1 AND version = 1`,
      [stream],
    );
    const { service, events } = await startService(config(stream, creds));
    try {
      expect(service.state).toBe('halted');
      const port = events.find((x) => x.event === 'health')?.port as number;
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ accepting: false, state: 'halted' });
      expect(events.some((x) => x.event === 'alert' && x.severity === 'critical')).toBe(true);
      expect(events.some((x) => x.event === 'ready')).toBe(false);
    } finally {
      await service.stop();
    }
    expect((await brokerState(creds.keyId)).orders).toHaveLength(0);
    expect((await store.pendingCommands(stream)).length).toBe(1);
  });
});

describe('TC-RC-012: missing data recovery', () => {
  it('TC-RC-012: a deleted event (a gap) and a truncated tail are named by their first missing version', async () => {
    await script(store, 'account-rc012a');
    await tamper('DELETE FROM trading_events WHERE stream = $1 AND version = 5', ['account-rc012a']);
    expect((await integrityError('account-rc012a')).failure).toMatchObject({
      kind: 'missing',
      firstBadVersion: 5,
    });

    await script(store, 'account-rc012b');
    const { head } = await store.readChain('account-rc012b');
    await tamper('DELETE FROM trading_events WHERE stream = $1 AND version >= $2', [
      'account-rc012b',
      head - 1,
    ]);
    const e = await integrityError('account-rc012b');
    expect(e.failure).toMatchObject({ kind: 'missing', firstBadVersion: head - 1 });
    expect(e.message).toContain(`head is version ${head}`);
  });

  it('TC-RC-012: deleted fills are recovered from the broker: fills, positions and cash equal the broker, recorded once', async () => {
    const stream = 'account-rc012c';
    const { creds } = await tradedAccount(stream);
    const { rows } = await db.pool.query<{ version: number }>(
      `SELECT version FROM trading_events WHERE stream = $1 AND type = 'OrderFilled' ORDER BY version`,
      [stream],
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    await tamper(`DELETE FROM trading_events WHERE stream = $1 AND type = 'OrderFilled'`, [stream]);
    const first = rows[0]?.version as number;
    for (let round = 0; round < 2; round++) {
      // The second start finds the chain verified (the recovery is recorded) and recovers nothing again.
      const { service, events } = await startService(config(stream, creds));
      await service.stop();
      expect(events.filter((e) => e.event === 'recovered')).toHaveLength(round === 0 ? 1 : 0);
      expect(events.some((e) => e.event === 'ready')).toBe(true);
    }
    const all = await store.load(stream);
    expect(all.filter((e) => e.type === 'IntegrityRecovered')).toEqual([
      expect.objectContaining({
        brokenAt: first,
        kind: 'missing',
        recovered: expect.objectContaining({ fills: 2 }),
      }),
    ]);
    const engine = await TradingEngine.open(store, stream);
    const broker = await brokerState(creds.keyId);
    expect(engine.state.cash).toBeCloseTo(Number(broker.cash), 6);
    expect(engine.state.positions.AAPL?.qty).toBe(5);
    expect(engine.state.positions.MSFT?.qty).toBe(8);
    expect(engine.state.orders.L1?.status).toBe('new');
    for (const o of broker.orders)
      expect(engine.state.orders[o.client_order_id]?.filledQty, o.client_order_id).toBe(Number(o.filled_qty));
  });

  it('TC-RC-012: missing events while the broker cannot be read: halted, refusing to trade', async () => {
    const stream = 'account-rc012d';
    const creds = await sim.account({ cash: 100_000 });
    await script(store, stream);
    await tamper('DELETE FROM trading_events WHERE stream = $1 AND version = 6', [stream]);
    // A port nothing listens on: the broker is unreachable.
    const { service, events } = await startService(
      config(stream, creds, { brokerBaseUrl: 'http://127.0.0.1:9', brokerWsUrl: 'ws://127.0.0.1:9/stream' }),
    );
    try {
      expect(service.state).toBe('halted');
      expect(service.haltReason).toMatch(/missing at version 6 and the broker cannot be read/);
      expect(events.some((e) => e.event === 'alert' && e.severity === 'critical')).toBe(true);
    } finally {
      await service.stop();
    }
    await expect(TradingEngine.open(store, stream)).rejects.toThrow(/missing at version 6/);
  });
});
