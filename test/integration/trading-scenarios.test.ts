/**
 * The plan's cases (seed 003: TC-IF-001..017, TC-CB-001..017, TC-MC-001..015), each a scenario file in
 * test/fixtures/trading run on the PostgreSQL event store, with its outcomes asserted. Broker and
 * reconciliation cases (TC-BE, TC-RC) belong to the live engine (issue 14).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import type { TradingEvent } from '../../lambdas/trading/types';
import { assertSameState, type ReplayResult, runScenario } from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestSchema('trading_cases');
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await db.drop();
});

interface Run {
  result: ReplayResult;
  alerts: { severity: string; source: string; message: string }[];
  events: TradingEvent[];
  stream: string;
}

async function replay(id: string): Promise<Run> {
  const scenario = parseScenario(JSON.parse(readFileSync(`test/fixtures/trading/${id}.json`, 'utf8')));
  const alerts: Run['alerts'] = [];
  const stream = `case-${id}`;
  const result = await runScenario(scenario, { store, stream, onAlert: (a) => alerts.push(a) });
  // Whatever the case, the stored projections are those the events rebuild.
  const engine = await TradingEngine.open(store, stream);
  await assertSameState(engine.projections(), engine, store, stream);
  return { result, alerts, events: await store.load(stream), stream };
}

const filled = (filledQty: number, avgFillPrice: number) => ({
  status: 'filled',
  filledQty,
  avgFillPrice,
  denial: null,
});
const denied = (code: string) => ({ status: 'denied', filledQty: 0, avgFillPrice: null, denial: { code } });

describe('4.1 order flow (TC-IF)', () => {
  it('TC-IF-001: a normal order goes risk check -> broker -> fill -> position and cash', async () => {
    const { result: r } = await replay('TC-IF-001');
    expect(r.orders.B1).toEqual(filled(50, 190));
    expect(r.orders.B2).toEqual(filled(20, 404)); // the resting limit filled when the price crossed it
    expect(r.positions).toEqual({ AAPL: { qty: 50, avgPrice: 190 }, MSFT: { qty: 20, avgPrice: 404 } });
    expect(r.account).toEqual({
      cash: 82420,
      equity: 100100,
      realizedPnl: 0,
      unrealizedPnl: 100,
      dailyPnl: 100,
    });
    expect(r.brokerCommands).toBe(2);
    expect(r.events).toBe(10);
  });

  it('TC-IF-002: risk denials carry their code and a human detail; a duplicate id changes nothing', async () => {
    const { result: r, events } = await replay('TC-IF-002');
    expect(r.orders.R1).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.R1?.denial?.detail).toContain('19,000');
    expect(r.orders.R2).toMatchObject(denied('RESTRICTED_SYMBOL'));
    expect(r.orders.R3).toMatchObject(denied('PRICE_COLLAR'));
    expect(r.orders.R4).toMatchObject(denied('INVALID_ORDER'));
    expect(r.orders.R6).toMatchObject(denied('INVALID_ORDER'));
    expect(r.orders.R5).toEqual(filled(10, 190));
    expect(r.positions.AAPL).toEqual({ qty: 10, avgPrice: 190 });
    expect(events.filter((e) => e.type === 'DuplicateSubmitDenied')).toHaveLength(1);
    expect(r.brokerCommands).toBe(1);
  });

  it('TC-IF-003: an order the broker rejects ends rejected, alerts, and leaves no position', async () => {
    const { result: r, alerts } = await replay('TC-IF-003');
    expect(r.orders.B1).toEqual({ status: 'rejected', filledQty: 0, avgFillPrice: null, denial: null });
    expect(r.orders.B2).toEqual(filled(10, 190));
    expect(r.positions.AAPL?.qty).toBe(10);
    expect(alerts.map((a) => a.source)).toEqual(['broker']);
  });

  it('TC-IF-004: partial fills accumulate to a volume-weighted price; a cancel keeps what filled', async () => {
    const { result: r } = await replay('TC-IF-004');
    expect(r.orders.B1).toEqual(filled(100, 99.55));
    expect(r.orders.B2).toEqual({ status: 'canceled', filledQty: 40, avgFillPrice: 100, denial: null });
    expect(r.positions.XYZ?.qty).toBe(140);
    expect(r.account.cash).toBe(100000 - 9955 - 4000);
  });

  it('TC-IF-005: a fill racing a cancel: partial fill then canceled; a full fill wins over the cancel', async () => {
    const { result: r, events } = await replay('TC-IF-005');
    expect(r.orders.B1).toEqual({ status: 'canceled', filledQty: 30, avgFillPrice: 100, denial: null });
    expect(r.orders.B2).toEqual(filled(100, 99.9));
    expect(r.orders.B3?.status).toBe('canceled');
    const refused = events
      .filter((e) => e.type === 'CommandRefused')
      .map((e) => (e as { clientOrderId: string }).clientOrderId);
    expect(refused).toEqual(['B2', 'NOPE']);
    expect(events.some((e) => e.type === 'BrokerReportIgnored' && e.report.kind === 'cancel_rejected')).toBe(
      true,
    );
    expect(r.positions.XYZ?.qty).toBe(130);
  });

  it('TC-IF-006: modify is a cancel-replace: the original ends replaced, the replacement works the rest', async () => {
    const { result: r, events } = await replay('TC-IF-006');
    expect(r.orders.B1).toEqual({ status: 'replaced', filledQty: 40, avgFillPrice: 100, denial: null });
    expect(r.orders['B1.r1']).toEqual(filled(110, 101));
    expect(r.positions.XYZ?.qty).toBe(150);
    expect(r.orders.B2?.status).toBe('replaced');
    expect(r.orders['B2.r1']?.status).toBe('new');
    const refusals = events.filter((e) => e.type === 'CommandRefused');
    expect(refusals.map((e) => (e as { code: string }).code)).toEqual([
      'MAX_ORDER_NOTIONAL',
      'INVALID_ORDER',
    ]);
  });

  it('TC-IF-007: a portfolio is checked order by order against the state including the earlier ones', async () => {
    const { result: r, events } = await replay('TC-IF-007');
    expect(r.orders.P1).toEqual(filled(100, 100));
    expect(r.orders.P2).toEqual(filled(100, 200));
    expect(r.orders.P3).toEqual(filled(200, 50));
    expect(r.orders.P4).toMatchObject(denied('MAX_GROSS_EXPOSURE'));
    expect(r.orders.P5).toEqual(filled(20, 100));
    const submitted = events.filter((e) => e.type === 'OrderSubmitted' || e.type === 'OrderDenied');
    expect(new Set(submitted.map((e) => e.at)).size).toBe(1);
  });

  it('TC-IF-008: open orders reserve the position limit before they fill', async () => {
    const { result: r } = await replay('TC-IF-008');
    expect(r.orders.B2).toMatchObject(denied('MAX_POSITION'));
    expect(r.orders.B2?.denial?.detail).toContain('110');
    expect(r.orders.B3).toEqual(filled(30, 100));
    expect(r.orders.B4).toMatchObject(denied('MAX_POSITION'));
    expect(r.orders.B5?.status).toBe('new');
  });

  it('TC-IF-009: an order is denied, never resized, unless the caller asked for sizing', async () => {
    const { result: r, events } = await replay('TC-IF-009');
    expect(r.orders.B1).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.B2).toEqual(filled(100, 100));
    const b2 = events.find((e) => e.type === 'OrderSubmitted' && e.order.clientOrderId === 'B2');
    expect(b2?.type === 'OrderSubmitted' && [b2.order.requestedQty, b2.order.qty]).toEqual([150, 100]);
    expect(r.orders.B3).toMatchObject(denied('RESTRICTED_SYMBOL'));
  });

  it('TC-IF-010: leverage is enforced on every order; reducing orders pass', async () => {
    const { result: r } = await replay('TC-IF-010');
    expect(r.orders.B1).toEqual(filled(600, 100));
    expect(r.orders.B2).toMatchObject(denied('MAX_LEVERAGE'));
    expect(r.orders.B3).toMatchObject(denied('MAX_LEVERAGE'));
    expect(r.orders.S1).toEqual(filled(100, 90));
    expect(r.orders.B4).toEqual(filled(50, 90));
    expect(r.positions.XYZ?.qty).toBe(550);
  });

  it('TC-IF-011: the exposure cap counts concurrent open orders, not only positions', async () => {
    const { result: r } = await replay('TC-IF-011');
    expect(r.orders.B3).toMatchObject(denied('MAX_GROSS_EXPOSURE'));
    expect(r.orders.B3?.denial?.detail).toContain('35,000');
    expect(r.orders.B4?.status).toBe('new');
    expect(r.orders.B5).toMatchObject(denied('MAX_GROSS_EXPOSURE'));
  });

  it('TC-IF-012: a correlated group has one exposure cap', async () => {
    const { result: r } = await replay('TC-IF-012');
    expect(r.orders.B3).toMatchObject(denied('CORRELATION_EXPOSURE'));
    expect(r.orders.B4).toEqual(filled(100, 100));
    expect(r.orders.S1).toEqual(filled(50, 100));
    expect(r.orders.B5).toEqual(filled(50, 100));
  });

  it('TC-IF-013: restarts while orders are in flight rebuild the same state and the flow completes', async () => {
    const { result: r } = await replay('TC-IF-013');
    expect(r.orders.B1).toEqual(filled(10, 100));
    expect(r.orders.B2?.status).toBe('canceled');
    expect(r.brokerCommands).toBe(3);
  });

  it('TC-IF-014: positions flip and close with realised P&L against the average price', async () => {
    const { result: r } = await replay('TC-IF-014');
    expect(r.positions.XYZ).toEqual({ qty: 0, avgPrice: 0 });
    expect(r.account).toEqual({
      cash: 101250,
      equity: 101250,
      realizedPnl: 1250,
      unrealizedPnl: 0,
      dailyPnl: 1250,
    });
  });

  it('TC-IF-015: limits changed while orders work apply to the next order and trip the position breaker', async () => {
    const { result: r, events } = await replay('TC-IF-015');
    expect(r.orders.B2).toMatchObject(denied('MAX_POSITION'));
    expect(r.orders.B3).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.S1).toEqual(filled(60, 100));
    expect(r.orders.B4).toMatchObject(denied('MAX_POSITION'));
    expect(r.orders.B4?.denial?.detail).toContain('25%');
    const trip = events.find((e) => e.type === 'BreakerTripped');
    expect(trip?.type === 'BreakerTripped' && trip.record.limitsVersion).toBe(2);
    expect(r.breakers).toEqual([
      expect.objectContaining({ breaker: 'position_size:XYZ', resetBy: 'auto:position-within-limit' }),
    ]);
  });

  it('TC-IF-016: every command and outcome is an event, versions contiguous, broker commands in the outbox', async () => {
    const { result: r, events, stream } = await replay('TC-IF-016');
    expect(events.map((e) => e.type)).toEqual([
      'AccountOpened',
      'SessionChanged',
      'PricesUpdated',
      'OrderSubmitted',
      'OrderAccepted',
      'OrderFilled',
      'CancelRequested',
      'OrderCanceled',
      'DuplicateSubmitDenied',
    ]);
    const { rows } = await db.pool.query<{ version: number }>(
      'SELECT version FROM trading_events WHERE stream = $1 ORDER BY position',
      [stream],
    );
    expect(rows.map((x) => x.version)).toEqual(events.map((_, i) => i + 1));
    const outbox = await db.pool.query<{ kind: string; delivered: boolean }>(
      `SELECT command->>'kind' AS kind, delivered_at IS NOT NULL AS delivered FROM trading_outbox WHERE stream = $1 ORDER BY id`,
      [stream],
    );
    expect(outbox.rows).toEqual([
      { kind: 'submit', delivered: true },
      { kind: 'cancel', delivered: true },
    ]);
    expect(r.orders.B1).toEqual({ status: 'canceled', filledQty: 40, avgFillPrice: 100, denial: null });
    await expect(db.pool.query('DELETE FROM trading_events WHERE stream = $1', [stream])).rejects.toThrow(
      /append-only/,
    );
  });

  it('TC-IF-017: restarts after fills, after a breaker trip and after a reset rebuild the same state', async () => {
    const { result: r } = await replay('TC-IF-017');
    expect(r.orders.B1).toEqual(filled(100, 100));
    expect(r.orders.B2?.status).toBe('canceled');
    expect(r.orders.B3).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.B4?.status).toBe('new');
    expect(r.breakers).toEqual([
      {
        at: '2026-03-02T15:00:06.000Z',
        breaker: 'daily_loss',
        actions: ['cancel:B2', 'state:account:reducing', 'alert:warning'],
        resetAt: '2026-03-02T15:00:10.000Z',
        resetBy: 'ops@desk',
      },
    ]);
  });
});

describe('4.2 circuit breakers (TC-CB)', () => {
  it('TC-CB-001: the daily loss gate sets reducing and cancels only the orders that add exposure', async () => {
    const { result: r } = await replay('TC-CB-001');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.S1?.status).toBe('new');
    expect(r.orders.B2).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.S2).toEqual(filled(100, 97.5));
    expect(r.tradingState).toEqual([
      { at: '2026-03-02T15:00:03.000Z', scope: 'account', state: 'reducing', cause: 'daily_loss' },
    ]);
    expect(r.breakers[0]?.actions).toEqual(['cancel:B1', 'state:account:reducing', 'alert:warning']);
  });

  it('TC-CB-002: a liquidation buffer breach liquidates to restore the buffer, then halts until reset', async () => {
    const { result: r } = await replay('TC-CB-002');
    expect(r.orders['LIQ-0-AAPL']).toEqual(filled(20, 85));
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.B2).toMatchObject(denied('TRADING_HALTED'));
    expect(r.orders.S1).toMatchObject(denied('TRADING_HALTED'));
    expect(r.orders.S2).toEqual(filled(10, 85));
    expect(r.breakers[0]).toMatchObject({ breaker: 'liquidation_buffer', resetBy: 'risk.officer' });
    expect(r.tradingState.map((s) => s.state)).toEqual(['halted', 'active']);
  });

  it('TC-CB-003: a volatility spike pauses the symbol, cancels its orders, and resumes after the pause', async () => {
    const { result: r } = await replay('TC-CB-003');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.B2).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B3).toEqual(filled(10, 200));
    expect(r.orders.B4).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B5).toEqual(filled(10, 106));
    expect(r.breakers).toEqual([
      {
        at: '2026-03-02T15:00:40.000Z',
        breaker: 'volatility:AAPL',
        actions: ['cancel:B1', 'state:AAPL:halted', 'alert:warning'],
        resetAt: '2026-03-02T15:05:40.000Z',
        resetBy: 'auto:pause-elapsed',
      },
    ]);
  });

  it('TC-CB-004: the correlation breaker sets the group reducing until its exposure is back within the cap', async () => {
    const { result: r } = await replay('TC-CB-004');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.B2).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.S1).toEqual(filled(50, 140));
    expect(r.orders.B3?.status).toBe('new');
    expect(r.tradingState.map((s) => `${s.scope}:${s.state}`)).toEqual([
      'AMD:reducing',
      'NVDA:reducing',
      'AMD:active',
      'NVDA:active',
    ]);
  });

  it('TC-CB-005: a position beyond its limit sets the symbol reducing until it is back within', async () => {
    const { result: r } = await replay('TC-CB-005');
    expect(r.orders.B1).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.S1).toEqual(filled(150, 100));
    expect(r.orders.B2).toMatchObject(denied('MAX_POSITION'));
    expect(r.breakers[0]).toMatchObject({
      breaker: 'position_size:AAPL',
      resetBy: 'auto:position-within-limit',
    });
  });

  it('TC-CB-006: a custom metric breaker halts; its reset is refused while the metric still breaches', async () => {
    const { result: r, events } = await replay('TC-CB-006');
    expect(['B1', 'B2', 'B3'].map((id) => r.orders[id]?.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
    ]);
    expect(r.orders.B4).toMatchObject(denied('TRADING_HALTED'));
    expect(r.orders.B5).toEqual(filled(1, 100));
    const refused = events.filter((e) => e.type === 'BreakerResetRefused');
    expect(refused).toHaveLength(1);
    expect(r.breakers[0]).toMatchObject({
      breaker: 'custom:reject-storm',
      resetBy: 'ops',
      resetAt: '2026-03-02T15:00:07.000Z',
    });
  });

  it('TC-CB-007: on a trip the broker cancels every exposure-adding order, keeps the reducing ones', async () => {
    const { result: r } = await replay('TC-CB-007');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.SS1?.status).toBe('canceled');
    expect(r.orders.S1?.status).toBe('new');
    expect(r.orders.S2?.status).toBe('new');
    expect(r.breakers[0]?.actions).toEqual([
      'cancel:B1',
      'cancel:SS1',
      'state:account:reducing',
      'alert:warning',
    ]);
  });

  it('TC-CB-008: liquidation on critical risk cuts every position in proportion, long and short', async () => {
    const { result: r } = await replay('TC-CB-008');
    expect(r.orders['LIQ-0-AAPL']).toEqual(filled(60, 90));
    expect(r.orders['LIQ-0-TSLA']).toEqual(filled(24, 210));
    expect(r.positions).toEqual({ AAPL: { qty: 440, avgPrice: 100 }, TSLA: { qty: -176, avgPrice: 200 } });
    const gross = 440 * 90 + 176 * 210;
    expect(r.account.equity / gross).toBeGreaterThanOrEqual(0.3);
    expect(r.orders.B1).toMatchObject(denied('TRADING_HALTED'));
  });

  it('TC-CB-009: breaker cancels go to the broker through the outbox and come back confirmed', async () => {
    const { result: r, stream } = await replay('TC-CB-009');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.B2?.status).toBe('canceled');
    const { rows } = await db.pool.query<{ kind: string }>(
      `SELECT command->>'kind' AS kind FROM trading_outbox WHERE stream = $1 AND delivered_at IS NOT NULL ORDER BY id`,
      [stream],
    );
    expect(rows.map((x) => x.kind)).toEqual(['submit', 'submit', 'cancel', 'cancel']);
    expect(r.brokerCommands).toBe(4);
  });

  it('TC-CB-010: every trip and every broker reject raises an alert', async () => {
    const { alerts, events } = await replay('TC-CB-010');
    expect(alerts.map((a) => `${a.severity}:${a.source}`)).toEqual([
      'warning:broker',
      'warning:daily_loss',
      'warning:volatility:AAPL',
    ]);
    expect(events.filter((e) => e.type === 'AlertRaised')).toHaveLength(3);
  });

  it('TC-CB-011: the trip (inputs, limits version) and the reset (who, when) are events and projections', async () => {
    const { events, stream } = await replay('TC-CB-011');
    const trip = events.find((e) => e.type === 'BreakerTripped');
    expect(trip?.type === 'BreakerTripped' && trip.record).toMatchObject({
      breaker: 'daily_loss',
      limitsVersion: 1,
      inputs: { dailyPnl: -500, limit: 400, sessionOpenEquity: 110000, equity: 109500 },
    });
    expect(events.find((e) => e.type === 'BreakerReset')).toMatchObject({
      breaker: 'daily_loss',
      by: 'risk.officer',
    });
    const { rows } = await db.pool.query(
      'SELECT breaker, reset_by, reset_at FROM trading_breakers WHERE stream = $1',
      [stream],
    );
    expect(rows).toEqual([
      { breaker: 'daily_loss', reset_by: 'risk.officer', reset_at: new Date('2026-03-02T15:00:03Z') },
    ]);
  });

  it('TC-CB-012: a limit lowered at runtime trips the breaker under the new limits version', async () => {
    const { result: r, events } = await replay('TC-CB-012');
    const trip = events.find((e) => e.type === 'BreakerTripped');
    expect(trip?.type === 'BreakerTripped' && trip.record.limitsVersion).toBe(2);
    expect(r.orders.B1).toMatchObject(denied('REDUCE_ONLY'));
    expect(events.filter((e) => e.type === 'BreakerResetRefused')).toHaveLength(1);
    expect(r.breakers[0]).toMatchObject({ resetBy: 'ops', resetAt: '2026-03-02T15:00:06.000Z' });
    expect(r.orders.B2).toEqual(filled(1, 97));
  });

  it('TC-CB-013: after the pause the symbol recovers by itself and the limits step back to 100 %', async () => {
    const { result: r, events } = await replay('TC-CB-013');
    expect(r.orders.B1).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B2).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.B2?.denial?.detail).toContain('25%');
    expect(r.orders.B3).toEqual(filled(20, 112));
    expect(r.orders.B4).toEqual(filled(80, 112));
    const steps = events
      .filter((e) => e.type === 'RestorationStepped')
      .map((e) => (e as { factor: number }).factor);
    expect(steps).toEqual([0.25, 0.5, 0.75, 1]);
  });

  it('TC-CB-014: a manual reset is refused while the loss holds, then records who and when', async () => {
    const { result: r, events } = await replay('TC-CB-014');
    const refused = events
      .filter((e) => e.type === 'BreakerResetRefused')
      .map((e) => (e as { breaker: string }).breaker);
    expect(refused).toEqual(['daily_loss', 'liquidation_buffer']);
    expect(r.breakers).toEqual([
      {
        at: '2026-03-02T15:00:01.000Z',
        breaker: 'daily_loss',
        actions: ['state:account:reducing', 'alert:warning'],
        resetAt: '2026-03-02T15:00:05.000Z',
        resetBy: 'jane.doe',
      },
    ]);
    expect(r.orders.B1).toEqual(filled(1, 96));
  });

  it('TC-CB-015: after a reset the limits come back at 25 %, 50 %, 75 %, 100 % every 5 minutes', async () => {
    const { result: r } = await replay('TC-CB-015');
    expect(r.orders.B1).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.B2).toEqual(filled(40, 99));
    expect(r.orders.B3).toEqual(filled(90, 99));
    expect(r.orders.B4).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.B4?.denial?.detail).toContain('50%');
    expect(r.orders.B5).toEqual(filled(190, 99));
  });

  it('TC-CB-016: after recovery, submit, modify and cancel flow as normal', async () => {
    const { result: r } = await replay('TC-CB-016');
    expect(r.orders.B0).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.B1?.status).toBe('replaced');
    expect(r.orders['B1.r1']).toEqual(filled(10, 99));
    expect(r.orders.B2?.status).toBe('canceled');
    expect(r.orders.S1).toEqual(filled(50, 99));
  });

  it('TC-CB-017: after recovery the health check is clean: no breaker, all active, outbox drained, projections = events', async () => {
    const { result: r, stream } = await replay('TC-CB-017');
    const engine = await TradingEngine.open(store, stream);
    expect(engine.health()).toMatchObject({ activeBreakers: [], restoring: {}, openOrders: 0 });
    expect(Object.values(engine.health().states).every((s) => s.state === 'active')).toBe(true);
    expect(await store.pendingCommands(stream)).toEqual([]);
    expect(await store.readProjections(stream)).toEqual(engine.projections());
    expect(r.orders.B2).toEqual(filled(1, 114));
  });
});

describe('4.4 market conditions (TC-MC)', () => {
  it('TC-MC-001: swings inside the band trip nothing; the collar refuses limits chasing a stale price', async () => {
    const { result: r } = await replay('TC-MC-001');
    expect(r.breakers).toEqual([]);
    expect(r.orders.B1).toMatchObject(denied('PRICE_COLLAR'));
    expect(r.orders.B2).toEqual(filled(10, 101));
  });

  it('TC-MC-002: a sudden spike halts the symbol and cancels its orders; other symbols trade on', async () => {
    const { result: r } = await replay('TC-MC-002');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.S1?.status).toBe('canceled');
    expect(r.orders.B2).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B3?.status).toBe('new');
  });

  it('TC-MC-003: a flash crash halts the symbol and gates the account; the pause ends, the gate needs a reset', async () => {
    const { result: r } = await replay('TC-MC-003');
    expect(r.orders.B1?.status).toBe('canceled');
    expect(r.orders.B2).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B3).toMatchObject(denied('REDUCE_ONLY'));
    expect(r.orders.B4?.status).toBe('new');
    expect(r.breakers.map((b) => [b.breaker, b.resetBy])).toEqual([
      ['daily_loss', 'risk.officer'],
      ['volatility:SPY', 'auto:pause-elapsed'],
    ]);
  });

  it('TC-MC-004: a tighter volatility band set at runtime trips on a move the old band allowed', async () => {
    const { result: r } = await replay('TC-MC-004');
    expect(r.breakers.map((b) => [b.at, b.breaker])).toEqual([
      ['2026-03-02T15:01:50.000Z', 'volatility:AAPL'],
    ]);
    expect(r.orders.B1).toMatchObject(denied('SYMBOL_HALTED'));
  });

  it('TC-MC-005: a volatility surge answered by tighter limits refuses what the old limits allowed', async () => {
    const { result: r } = await replay('TC-MC-005');
    expect(r.orders.B1).toEqual(filled(80, 100));
    expect(r.orders.B2).toMatchObject(denied('MAX_ORDER_NOTIONAL'));
    expect(r.orders.B3).toMatchObject(denied('PRICE_COLLAR'));
    expect(r.orders.B4?.status).toBe('new');
  });

  it('TC-MC-006: in a thin market a day order partly filled expires at the close; a GTC one keeps working', async () => {
    const { result: r } = await replay('TC-MC-006');
    expect(r.orders.B1).toEqual({ status: 'expired', filledQty: 200, avgFillPrice: 20, denial: null });
    expect(r.orders.B2).toEqual({
      status: 'partially_filled',
      filledQty: 100,
      avgFillPrice: 20,
      denial: null,
    });
    expect(r.positions.XYZ?.qty).toBe(300);
  });

  it('TC-MC-007: liquidity drains into a trading halt: new orders refused, cancels accepted, resumed later', async () => {
    const { result: r } = await replay('TC-MC-007');
    expect(r.orders.B1).toEqual({ status: 'canceled', filledQty: 100, avgFillPrice: 20.1, denial: null });
    expect(r.orders.B2).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B3?.status).toBe('new');
  });

  it('TC-MC-008: an order walking the book fills across levels at the volume-weighted price', async () => {
    const { result: r } = await replay('TC-MC-008');
    expect(r.orders.B1).toEqual(filled(1000, 50.13));
    expect(r.account.unrealizedPnl).toBe(70);
  });

  it('TC-MC-009: when the spread widens, limits outside the collar are refused, modifies included', async () => {
    const { result: r, events } = await replay('TC-MC-009');
    expect(r.orders.B2).toMatchObject(denied('PRICE_COLLAR'));
    expect(r.orders.B3?.status).toBe('new');
    expect(r.orders.B1?.status).toBe('new');
    expect(events.find((e) => e.type === 'CommandRefused')).toMatchObject({
      command: 'modify',
      code: 'PRICE_COLLAR',
    });
  });

  it('TC-MC-010: market impact shows in the P&L: fills above the last price are an unrealised loss', async () => {
    const { result: r } = await replay('TC-MC-010');
    expect(r.orders.B1).toEqual(filled(900, 101.5));
    expect(r.account).toMatchObject({ unrealizedPnl: -1350, dailyPnl: -1350 });
  });

  it('TC-MC-011: pre-market takes limit orders only; market orders are accepted from the open', async () => {
    const { result: r } = await replay('TC-MC-011');
    expect(r.orders.B1).toMatchObject(denied('MARKET_CLOSED'));
    expect(r.orders.B2).toEqual(filled(10, 100));
    expect(r.orders.B3).toEqual(filled(10, 100));
  });

  it('TC-MC-012: at 16:00 regular day orders expire; after-hours day orders expire at 20:00', async () => {
    const { result: r } = await replay('TC-MC-012');
    expect(r.orders.D1?.status).toBe('expired');
    expect(r.orders.G1?.status).toBe('new');
    expect(r.orders.M1).toMatchObject(denied('MARKET_CLOSED'));
    expect(r.orders.A1?.status).toBe('expired');
    expect(r.orders.C1).toMatchObject(denied('MARKET_CLOSED'));
  });

  it('TC-MC-013: on an early-close day (13:00 ET) day orders expire at 13:00', async () => {
    const { result: r, events } = await replay('TC-MC-013');
    expect(r.orders.D1?.status).toBe('expired');
    expect(r.orders.G1?.status).toBe('new');
    expect(r.orders.M1).toMatchObject(denied('MARKET_CLOSED'));
    expect(events.find((e) => e.type === 'OrderExpired')?.at).toBe('2026-11-27T18:00:00.000Z');
  });

  it('TC-MC-014: Good Friday and the weekend are closed; a GTC order survives them and fills on Monday', async () => {
    const { result: r } = await replay('TC-MC-014');
    expect(r.orders.D1?.status).toBe('expired');
    expect(r.orders.H1).toMatchObject(denied('MARKET_CLOSED'));
    expect(r.orders.W1).toMatchObject(denied('MARKET_CLOSED'));
    expect(r.orders.G1).toEqual(filled(10, 94));
    expect(r.orders.M1).toEqual(filled(10, 94));
  });

  it('TC-MC-015: an emergency market-wide halt expires day orders and refuses new ones; cancels still work', async () => {
    const { result: r } = await replay('TC-MC-015');
    expect(r.orders.D1?.status).toBe('expired');
    expect(r.orders.G1?.status).toBe('canceled');
    expect(r.orders.B1).toMatchObject(denied('SYMBOL_HALTED'));
    expect(r.orders.B2).toMatchObject(denied('MARKET_CLOSED'));
    expect(r.orders.B3?.status).toBe('new');
  });
});
