/**
 * The plan's broker cases (seed 003: TC-BE-001..017) over the wire: each scenario in
 * test/fixtures/trading/broker runs on the PostgreSQL event store against the broker simulator
 * process (its own, on a free port) through the live adapter, real HTTP and a real WebSocket.
 * Every case asserts its outcomes and that no fill was lost or doubled: the engine's fills equal the
 * broker's, order by order.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import {
  type BrokerIncident,
  dispatchLive,
  FallbackBroker,
  LiveBroker,
} from '../../lambdas/trading/live-broker';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import type { TradingEvent } from '../../lambdas/trading/types';
import {
  assertSameState,
  type ReplayBroker,
  type ReplayResult,
  runScenario,
} from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createWireBroker } from '../../localstack/trading/wire-broker';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let store: PostgresEventStore;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_broker'), startSimProcess()]);
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

interface Run {
  result: ReplayResult;
  events: TradingEvent[];
  incidents: BrokerIncident[];
  alerts: { severity: string; source: string; message: string }[];
  broker: {
    orders: { client_order_id: string; status: string; filled_qty: string }[];
    positions: Record<string, { qty: number }>;
  };
}

async function replay(
  id: string,
  wrap?: (b: ReplayBroker & { keyId: string }) => ReplayBroker,
): Promise<Run> {
  const scenario = parseScenario(JSON.parse(readFileSync(`test/fixtures/trading/broker/${id}.json`, 'utf8')));
  const incidents: BrokerIncident[] = [];
  const alerts: Run['alerts'] = [];
  const stream = `be-${id}`;
  let keyId = '';
  const result = await runScenario(scenario, {
    store,
    stream,
    onAlert: (a) => alerts.push(a),
    broker: async (ctx) => {
      const b = await createWireBroker(ctx, {
        url: sim.url,
        onIncident: (i) => incidents.push(i),
        keepAccount: true,
      });
      keyId = b.keyId;
      return wrap ? wrap(b) : b;
    },
  });
  const engine = await TradingEngine.open(store, stream);
  await assertSameState(engine.projections(), engine, store, stream);
  const broker = (await sim.state(keyId)) as unknown as Run['broker'];
  // Zero lost or doubled fills: every order's filled quantity is the broker's.
  for (const o of broker.orders)
    expect(result.orders[o.client_order_id]?.filledQty, o.client_order_id).toBe(Number(o.filled_qty));
  return { result, events: await store.load(stream), incidents, alerts, broker };
}

const outcomes = (r: Run, cid: string) =>
  r.incidents
    .filter((i) => i.clientOrderId === cid && i.outcome)
    .map((i) => (i.outcome?.class === 'definitive' ? i.outcome.result : i.outcome?.reason));
const count = (r: Run, type: string, cid?: string) =>
  r.events.filter((e) => e.type === type && (!cid || (e as { clientOrderId?: string }).clientOrderId === cid))
    .length;
const at = (r: Run, type: string, cid: string) =>
  r.events.find((e) => e.type === type && (e as { clientOrderId?: string }).clientOrderId === cid)?.at;

describe('4.3.1 broker communication failures (TC-BE-001..006)', () => {
  it('TC-BE-001: the connection drops mid-submit: the order stays in flight, the reconnect snapshot resolves it, filled once', async () => {
    const r = await replay('TC-BE-001');
    expect(outcomes(r, 'B1')[0]).toBe('disconnect');
    expect(r.incidents.some((i) => i.stream === 'disconnected')).toBe(true);
    expect(r.incidents.some((i) => i.stream === 'snapshot_applied')).toBe(true);
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(count(r, 'OrderFilled', 'B1')).toBe(1);
    expect(r.broker.orders.filter((o) => o.client_order_id === 'B1')).toHaveLength(1);
    expect(r.result.positions).toEqual({ AAPL: { qty: 15, avgPrice: 100 } });
  });

  it('TC-BE-002: a 429 storm: the submit waits for the X-RateLimit-Reset time, then goes through once', async () => {
    const r = await replay('TC-BE-002');
    expect(outcomes(r, 'B1')).toEqual(['rate_limited', 'accepted']);
    expect(at(r, 'OrderAccepted', 'B1')).toBe('2026-03-02T15:00:06.000Z');
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(r.broker.orders.filter((o) => o.client_order_id === 'B1')).toHaveLength(1);
  });

  it('TC-BE-003: authentication failure halts trading with a critical alarm until a named reset; the held order goes once the key works', async () => {
    const r = await replay('TC-BE-003');
    const trip = r.result.breakers.find((b) => b.breaker === 'broker:auth');
    expect(trip).toMatchObject({ at: '2026-03-02T15:00:01.000Z', resetBy: 'ops:rotated-key' });
    expect(r.alerts).toContainEqual(expect.objectContaining({ severity: 'critical', source: 'broker:auth' }));
    expect(r.result.orders.B2?.denial?.code).toBe('TRADING_HALTED');
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(r.result.orders.B3).toMatchObject({ status: 'filled', filledQty: 5 });
    expect(r.result.tradingState.map((s) => `${s.scope}:${s.state}`)).toEqual([
      'account:halted',
      'account:active',
    ]);
  });

  it('TC-BE-004: maintenance (503) is retryable: the order is retried until the window ends, never rejected', async () => {
    const r = await replay('TC-BE-004');
    expect(outcomes(r, 'B1').slice(0, 3)).toEqual(['maintenance', 'maintenance', 'maintenance']);
    expect(outcomes(r, 'B1').at(-1)).toBe('accepted');
    expect(Date.parse(at(r, 'OrderAccepted', 'B1') as string)).toBeGreaterThanOrEqual(
      Date.parse('2026-03-02T15:00:04Z'),
    );
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 });
  });

  it('TC-BE-005: a submit accepted but never answered is ambiguous, kept in flight and resolved by the stream and a lookup, never guessed', async () => {
    const r = await replay('TC-BE-005');
    expect(outcomes(r, 'B1')).toEqual(['timeout']);
    expect(
      r.incidents.some((i) => i.command === 'lookup' && i.clientOrderId === 'B1' && i.detail === 'found'),
    ).toBe(true);
    expect(count(r, 'OrderRejected')).toBe(0);
    expect(count(r, 'OrderFilled', 'B1')).toBe(1);
    expect(r.broker.orders.filter((o) => o.client_order_id === 'B1')).toHaveLength(1);
  });

  it('TC-BE-006: an invalid (truncated) response is ambiguous, not a reject: resolved from the broker, filled once', async () => {
    const r = await replay('TC-BE-006');
    expect(outcomes(r, 'B1')).toEqual(['invalid_response']);
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(count(r, 'OrderFilled', 'B1')).toBe(1);
  });
});

describe('4.3.2 errors through the layers (TC-BE-007..012)', () => {
  it('TC-BE-007: broker rejects (buying power, day-trading protection) reach the risk manager: its breaker halts the account', async () => {
    const r = await replay('TC-BE-007');
    expect(r.result.orders.B1).toMatchObject({ status: 'rejected' });
    expect(r.result.orders.B2).toMatchObject({ status: 'rejected' });
    expect(
      r.events.filter((e) => e.type === 'OrderRejected').map((e) => (e as { reason: string }).reason),
    ).toEqual(['insufficient buying power', 'trade denied due to pattern day trading protection']);
    expect(r.result.breakers.map((b) => b.breaker)).toEqual(['custom:broker-rejects']);
    expect(r.result.orders.B3?.denial?.code).toBe('TRADING_HALTED');
  });

  it('TC-BE-008: a lost fill frame (heartbeats continue) leaves the order new until reconciliation books it from the broker, once', async () => {
    const r = await replay('TC-BE-008');
    expect(at(r, 'OrderFilled', 'L1')).toBe('2026-03-02T15:00:10.000Z');
    expect(r.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10, avgFillPrice: 99 });
    expect(r.result.reconciliation).toEqual([
      {
        kind: 'missing_fill',
        detail: 'L1: the broker filled 10 @ 99, we had booked 0',
        resolution: 'book_from_broker',
      },
    ]);
    expect(count(r, 'OrderFilled')).toBe(1); // the second reconcile found nothing new
  });

  it('TC-BE-009: a position we were never told about is a dispute: manual intervention, the symbol blocked', async () => {
    const r = await replay('TC-BE-009', (b) => ({
      ...b,
      reconcile: async () => {
        await sim.control(b.keyId, { diverge: { position: { symbol: 'MSFT', qty: 7, avgPrice: 400 } } });
        await b.reconcile?.();
      },
    }));
    expect(r.result.reconciliation).toEqual([
      { kind: 'position', detail: 'MSFT: we hold 0, the broker 7', resolution: 'manual_intervention' },
    ]);
    expect(r.result.breakers.map((b) => b.breaker)).toEqual(['reconcile:MSFT']);
    expect(r.result.orders.M1?.denial?.code).toBe('SYMBOL_HALTED');
    expect(r.result.orders.B2).toMatchObject({ status: 'filled' }); // other symbols trade on
  });

  it('TC-BE-010: a cash difference beyond the tolerance halts the account for manual intervention', async () => {
    const r = await replay('TC-BE-010', (b) => ({
      ...b,
      reconcile: async () => {
        await sim.control(b.keyId, { diverge: { cash: -250 } });
        await b.reconcile?.();
      },
    }));
    expect(r.result.reconciliation).toEqual([
      { kind: 'balance', detail: "cash: ours 99000, the broker's 98750", resolution: 'manual_intervention' },
    ]);
    expect(r.result.orders.B2?.denial?.code).toBe('TRADING_HALTED');
  });

  it('TC-BE-011: telemetry gets every classified outcome once per attempt, of every class', async () => {
    const r = await replay('TC-BE-011');
    expect(outcomes(r, 'B1')).toEqual(['rate_limited', 'accepted']);
    expect(outcomes(r, 'B2')).toEqual(['timeout']);
    expect(outcomes(r, 'B3')[0]).toBe('maintenance');
    expect(outcomes(r, 'B4')).toEqual(['invalid_response']);
    for (const cid of ['B1', 'B2', 'B3', 'B4']) expect(count(r, 'OrderFilled', cid)).toBe(1);
  });

  it('TC-BE-012: broker errors are in the event store once each: the reject, the auth trip and its alert, the reset', async () => {
    const r = await replay('TC-BE-012');
    expect(count(r, 'OrderRejected', 'B1')).toBe(1);
    expect(
      r.events
        .filter((e) => e.type === 'BreakerTripped')
        .map((e) => (e as { record: { breaker: string } }).record.breaker),
    ).toEqual(['broker:auth']);
    expect(
      r.events.filter((e) => e.type === 'AlertRaised').map((e) => (e as { source: string }).source),
    ).toEqual(['broker', 'broker:auth']);
    expect(r.events.filter((e) => e.type === 'BreakerReset')).toHaveLength(1);
    expect(r.result.orders.B2).toMatchObject({ status: 'filled', filledQty: 5 });
  });
});

describe('4.3.3 recovery (TC-BE-013..017)', () => {
  it('TC-BE-013: the stream drops for 3 s while a fill happens: it reconnects by itself and the snapshot books the fill', async () => {
    const r = await replay('TC-BE-013');
    expect(r.incidents.filter((i) => i.stream === 'snapshot_applied').length).toBeGreaterThanOrEqual(2);
    expect(r.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10, avgFillPrice: 98.4 });
    expect(r.events.filter((e) => e.type === 'OrderFilled').map((e) => (e as { qty: number }).qty)).toEqual([
      4, 6,
    ]);
  });

  it('TC-BE-014: resubmission after failure uses the same client order id: one order at the broker each', async () => {
    const r = await replay('TC-BE-014');
    for (const cid of ['B1', 'B2', 'B3']) {
      expect(r.broker.orders.filter((o) => o.client_order_id === cid)).toHaveLength(1);
      expect(r.result.orders[cid]?.status).toBe('filled');
    }
    expect(outcomes(r, 'B1')).toContain('maintenance');
    expect(outcomes(r, 'B3')).toContain('rate_limited');
  });

  it('TC-BE-015: after a reconnect the REST snapshot is applied before new orders go out', async () => {
    const r = await replay('TC-BE-015');
    const index = (type: string, cid: string) =>
      r.events.findIndex((e) => e.type === type && (e as { clientOrderId?: string }).clientOrderId === cid);
    expect(r.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(r.result.orders.L2).toMatchObject({ status: 'canceled' });
    expect(index('OrderFilled', 'L1')).toBeLessThan(index('OrderAccepted', 'B3'));
    expect(r.broker.orders.filter((o) => o.client_order_id === 'B3')).toHaveLength(1);
  });

  it('TC-BE-016: the fallback broker takes new orders when the primary is down, never an order ambiguous at the primary', async () => {
    const stream = 'be-TC-BE-016';
    const [a, b] = await Promise.all([
      sim.account({ clock: '2026-03-02T15:00:00Z' }),
      sim.account({ clock: '2026-03-02T15:00:00Z' }),
    ]);
    await Promise.all([
      sim.control(a.keyId, { prices: { AAPL: 100 } }),
      sim.control(b.keyId, { prices: { AAPL: 100 } }),
    ]);
    const engine = await TradingEngine.open(store, stream, {
      init: { cash: 100_000 },
      at: '2026-03-02T15:00:00Z',
    });
    await engine.updatePrices({ AAPL: 100 }, '2026-03-02T15:00:00Z');
    const make = (k: { keyId: string; secret: string }) =>
      new LiveBroker({
        baseUrl: sim.url,
        wsUrl: sim.wsUrl,
        ...k,
        lookup: (cid) => engine.state.orders[cid],
        openOrders: () => [],
        onReport: async (report) => {
          await engine.onBrokerReport(report, '2026-03-02T15:00:01Z');
        },
        requestTimeoutMs: 500,
      });
    const primary = make(a);
    const fallback = make(b);
    await Promise.all([primary.start(), fallback.start()]);
    const switches: string[] = [];
    const router = new FallbackBroker(primary, fallback, {
      failoverAfter: 2,
      onSwitch: (to) => switches.push(to),
    });
    const submit = (cid: string) =>
      engine.submit(
        { clientOrderId: cid, symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', tif: 'day' },
        '2026-03-02T15:00:01Z',
      );
    try {
      // An order whose fate at the primary is ambiguous (accepted, never answered).
      await sim.control(a.keyId, { fault: { kind: 'timeout', clientOrderId: 'A1' } });
      await submit('A1');
      await dispatchLive(store, stream, router);
      // The primary goes into maintenance: two failures, then new orders go to the fallback.
      await sim.control(a.keyId, { fault: { kind: 'maintenance', durationSeconds: 600 } });
      await submit('N1');
      const first = await dispatchLive(store, stream, router);
      const second = await dispatchLive(store, stream, router);
      await submit('N2');
      await dispatchLive(store, stream, router);
      // A1 is retried only where it may live: the primary (still in maintenance, so it stays in flight).
      await router
        .send({
          kind: 'submit',
          clientOrderId: 'A1',
          symbol: 'AAPL',
          side: 'buy',
          qty: 1,
          type: 'market',
          limitPrice: null,
          tif: 'day',
        })
        .catch(() => undefined);
      await sim.control(a.keyId, { clearFaults: true });
      await primary.resolveInFlight();
      await primary.settle(async (id) => Boolean((await sim.control(a.keyId, { barrier: id })).barrier));
      await fallback.settle(async (id) => Boolean((await sim.control(b.keyId, { barrier: id })).barrier));

      expect(first.blocked?.name).toBe('BrokerRetryableError');
      expect(second.sent).toBe(1);
      expect(switches).toEqual(['fallback']);
      expect(router.routeOf('A1')).toBe('primary');
      expect(router.routeOf('N1')).toBe('fallback');
      expect(router.routeOf('N2')).toBe('fallback');
      const cids = async (k: string) =>
        ((await sim.state(k)) as unknown as Run['broker']).orders.map((o) => o.client_order_id).sort();
      expect(await cids(a.keyId)).toEqual(['A1']);
      expect(await cids(b.keyId)).toEqual(['N1', 'N2']);
      expect(engine.state.orders.A1).toMatchObject({ status: 'filled', filledQty: 1 });
      expect(engine.state.orders.N1).toMatchObject({ status: 'filled', filledQty: 1 });
    } finally {
      await Promise.all([primary.close(), fallback.close()]);
    }
  });

  it('TC-BE-017: a broker down beyond 5 s puts the account in degraded mode (reducing only), recovering by itself when it answers', async () => {
    const r = await replay('TC-BE-017');
    expect(r.result.breakers).toEqual([
      expect.objectContaining({ breaker: 'broker:unavailable', resetBy: 'auto:broker-answers' }),
    ]);
    expect(r.result.orders.S1).toMatchObject({ status: 'filled', filledQty: 5 }); // reducing passes
    expect(r.result.orders.B2?.denial?.code).toBe('REDUCE_ONLY');
    expect(r.result.orders.B1).toMatchObject({ status: 'filled', filledQty: 10 }); // queued, sent after the window
    expect(r.result.orders.B3).toMatchObject({ status: 'filled', filledQty: 5 });
    expect(r.result.tradingState.map((s) => `${s.scope}:${s.state}`)).toEqual([
      'account:reducing',
      'account:active',
    ]);
  });
});

describe('the stream connect', () => {
  it("a broker that accepts the stream's TCP connection and never answers the handshake: the connect gives up at its timeout and the adapter reconnects by itself", async () => {
    const key = await sim.account({ cash: 1e6 });
    const held = await fetch(`${sim.url}/_control/stream`, {
      method: 'POST',
      body: JSON.stringify({ holdHandshakes: 1 }),
    });
    expect(await held.json()).toEqual({ holdHandshakes: 1 });
    const incidents: BrokerIncident[] = [];
    const live = new LiveBroker({
      baseUrl: sim.url,
      wsUrl: sim.wsUrl,
      ...key,
      lookup: () => undefined,
      openOrders: () => [],
      onReport: async () => undefined,
      onIncident: (i) => incidents.push(i),
      connectTimeoutMs: 300,
    });
    try {
      await expect(live.start()).rejects.toThrow('stream handshake not done within 300 ms');
      expect(live.isReady()).toBe(false);
      // The next handshake is answered: connected, snapshot applied, ready.
      expect(await live.whenReady(10_000)).toBe(true);
      expect(incidents.map((i) => i.stream ?? i.detail)).toEqual(
        expect.arrayContaining(['stream handshake not done within 300 ms', 'connected', 'snapshot_applied']),
      );
    } finally {
      await live.close();
    }
  });
});

describe('cancel and replace of an order whose broker id is not known yet', () => {
  it('a 429 on the lookup by client order id is retryable: the cancel and the replace stay in the outbox and go through after it, never refused as an unknown order', async () => {
    const AT = '2026-03-02T15:00:00Z';
    const stream = 'be-lookup-429';
    const key = await sim.account({ cash: 1e6, fill: 'none', clock: AT, rateLimitPerMinute: 1_000_000 });
    await sim.control(key.keyId, { prices: { AAPL: 100 } });
    const engine = await TradingEngine.open(store, stream, { init: { cash: 1e6 }, at: AT });
    await engine.updatePrices({ AAPL: 100 }, AT);
    for (const cid of ['C1', 'R1'])
      expect(
        (
          await engine.submit(
            {
              clientOrderId: cid,
              symbol: 'AAPL',
              side: 'buy',
              qty: 1,
              type: 'limit',
              limitPrice: 50,
              tif: 'gtc',
            },
            AT,
          )
        ).status,
      ).toBe('pending_new');
    const live = new LiveBroker({
      baseUrl: sim.url,
      wsUrl: sim.wsUrl,
      ...key,
      lookup: (cid) => engine.state.orders[cid],
      // No snapshot lookups: the adapter learns the orders' broker ids only when a command needs them.
      openOrders: () => [],
      onReport: async (report) => {
        await engine.onBrokerReport(report, AT);
      },
      decidesAtOnce: () => engine.decidesAtOnce(),
    });
    try {
      // Sent by an earlier process (the same client order ids, straight to the broker) before this
      // adapter's stream was up: it has never seen them.
      for (const cid of ['C1', 'R1'])
        expect(
          (
            await sim.submitOrder(key, {
              symbol: 'AAPL',
              qty: '1',
              side: 'buy',
              type: 'limit',
              limit_price: '50',
              time_in_force: 'gtc',
              client_order_id: cid,
            })
          ).status,
        ).toBe(200);
      for (const id of (await store.pendingCommands(stream)).map((e) => e.id))
        await store.markDelivered([id]);
      for (const cid of ['C1', 'R1'])
        await engine.onBrokerReport({ kind: 'accepted', clientOrderId: cid }, AT);
      await live.start();
      // Each lookup meets a 429: the command waits in the outbox (retry at the reset time), then goes.
      for (const cid of ['C1', 'R1']) {
        const outcome =
          cid === 'C1'
            ? await engine.cancel(cid, AT)
            : await engine.modify({ clientOrderId: cid, qty: 2 }, AT);
        expect(outcome.ok).toBe(true);
        await sim.control(key.keyId, { fault: { kind: 'http429', count: 1 } });
        const r = await dispatchLive(store, stream, live);
        expect(r.sent).toBe(0);
        expect(r.blocked?.name).toBe('BrokerRetryableError');
        expect(engine.state.orders[cid]?.status).toBe(cid === 'C1' ? 'pending_cancel' : 'pending_replace');
        expect(await dispatchLive(store, stream, live)).toEqual({ sent: 1, blocked: null });
      }
      expect(
        await live.settle(async (id) => Boolean((await sim.control(key.keyId, { barrier: id })).barrier)),
      ).toBe(true);
      await engine.settled();
      expect(engine.state.orders.C1?.status).toBe('canceled');
      expect(engine.state.orders.R1?.status).toBe('replaced');
      expect(engine.state.orders['R1.r1']).toMatchObject({ status: 'new', qty: 2 });
      // Nothing was recorded as refused for an unknown order.
      const events = await store.load(stream);
      expect(
        events.filter((e) => e.type === 'BrokerReportIgnored' || /unknown order/.test(JSON.stringify(e))),
      ).toEqual([]);
      const broker = (await sim.state(key.keyId)) as {
        orders: { client_order_id: string; status: string }[];
      };
      expect(Object.fromEntries(broker.orders.map((o) => [o.client_order_id, o.status]))).toEqual({
        C1: 'canceled',
        R1: 'replaced',
        'R1.r1': 'new',
      });
    } finally {
      await live.close();
    }
  });
});

describe('the same scenarios over the wire', () => {
  it.each([
    'TC-IF-001',
    'TC-IF-004',
    'TC-IF-005',
    'TC-IF-006',
    'TC-IF-007',
    'TC-CB-007',
    'TC-CB-008',
    'TC-MC-013',
  ])(
    '%s without faults: the same orders, positions, account, states and breakers as in-process',
    async (id) => {
      const scenario = parseScenario(JSON.parse(readFileSync(`test/fixtures/trading/${id}.json`, 'utf8')));
      const inProcess = await runScenario(scenario, { store, stream: `inp-${id}` });
      const wire = await runScenario(scenario, {
        store,
        stream: `wire-${id}`,
        broker: (ctx) => createWireBroker(ctx, { url: sim.url }),
      });
      expect(wire.orders).toEqual(inProcess.orders);
      expect(wire.positions).toEqual(inProcess.positions);
      expect(wire.account).toEqual(inProcess.account);
      expect(wire.tradingState).toEqual(inProcess.tradingState);
      expect(wire.breakers).toEqual(inProcess.breakers);
      expect(wire.reconciliation).toEqual([]);
    },
  );
});
