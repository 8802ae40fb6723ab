/**
 * The reconciliation rules and runner without a broker process: the view fetch's retry and backoff
 * (a failing port), an incomplete run applying nothing, trade-history differences, and manual
 * resolutions refused where they do not fit.
 */
import { describe, expect, it } from 'vitest';
import { TradingEngine } from '../../../lambdas/trading/engine';
import { BrokerRetryableError } from '../../../lambdas/trading/live-broker';
import { type BrokerView, tradeHistoryDifferences } from '../../../lambdas/trading/reconcile';
import { fetchViewWithRetry, reconcileAccount } from '../../../lambdas/trading/reconcile-runner';
import { MemoryEventStore } from '../../../lambdas/trading/store';

const T = '2026-03-02T15:00:00.000Z';
const order = (id: string, cid: string, filled: number, avg: number | null) => ({
  id,
  client_order_id: cid,
  symbol: 'AAPL',
  side: 'buy' as const,
  qty: 10,
  filled_qty: filled,
  filled_avg_price: avg,
  status: filled === 10 ? 'filled' : 'new',
  replaced_by: null,
  replaces: null,
});

async function filledEngine() {
  const engine = await TradingEngine.open(new MemoryEventStore(), 'u', { init: { cash: 10_000 }, at: T });
  await engine.updatePrices({ AAPL: 100 }, T);
  await engine.submit(
    { clientOrderId: 'B1', symbol: 'AAPL', side: 'buy', qty: 10, type: 'market', tif: 'day' },
    T,
  );
  await engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'B1' }, T);
  await engine.onBrokerReport({ kind: 'fill', clientOrderId: 'B1', qty: 10, price: 100 }, T);
  return engine;
}

describe('reconciliation runner', () => {
  it('retries a failing view fetch with doubling backoff, honouring a 429 reset up to the cap', async () => {
    const waits: number[] = [];
    let calls = 0;
    const view: BrokerView = { orders: [], positions: {}, cash: 0 };
    const r = await fetchViewWithRetry(
      {
        brokerView: async () => {
          calls += 1;
          if (calls === 1) throw new Error('timeout');
          if (calls === 2)
            throw new BrokerRetryableError({
              class: 'retryable',
              reason: 'rate_limited',
              status: 429,
              retryAt: 1_700,
            });
          if (calls === 3) throw new Error('invalid response');
          return view;
        },
      },
      {
        retry: { attempts: 5, baseMs: 100, maxWaitMs: 1_000 },
        now: () => 1_000,
        sleep: async (ms) => void waits.push(ms),
      },
    );
    expect(r).toEqual({ view, attempts: 4 });
    expect(waits).toEqual([100, 700, 400]);
  });

  it('a run that cannot read the view applies nothing and says so with a warning', async () => {
    const engine = await filledEngine();
    const before = engine.state.version;
    const outcome = await reconcileAccount(
      engine,
      {
        brokerView: async () => {
          throw new Error('HTTP 503');
        },
        applyBrokerOrder: async () => expect.unreachable('nothing may be booked'),
        resolve: async () => expect.unreachable('nothing may be resolved'),
      },
      { at: () => T, retry: { attempts: 3, baseMs: 1 }, sleep: async () => undefined },
    );
    expect(outcome).toMatchObject({ status: 'incomplete', attempts: 3 });
    expect(engine.state.version).toBe(before + 1);
    expect(engine.state.alerts.at(-1)).toMatchObject({ source: 'reconcile', severity: 'warning' });
    expect(Object.keys(engine.state.reconciliation)).toEqual([]);
  });
});

describe('dispute confirmation', () => {
  it('a difference seen by one read only (a fill between its requests) is not a dispute; one seen twice is, once', async () => {
    const engine = await filledEngine();
    const agree: BrokerView = {
      orders: [order('o1', 'B1', 10, 100)],
      positions: { AAPL: { qty: 10, avgPrice: 100 } },
      cash: 9_000,
    };
    const racing: BrokerView = { ...agree, positions: { AAPL: { qty: 11, avgPrice: 100 } } };
    const port = (views: BrokerView[]) => ({
      brokerView: async () => views.shift() ?? agree,
      applyBrokerOrder: async () => undefined,
      resolve: async () => true,
    });
    const transient = await reconcileAccount(engine, port([racing, agree]), { at: () => T });
    expect(transient).toMatchObject({ status: 'complete', attempts: 2, disputes: [], recorded: [] });
    expect(engine.health().activeBreakers).toEqual([]);
    const real = await reconcileAccount(engine, port([racing, racing]), { at: () => T });
    expect(real.status === 'complete' && real.recorded.map((d) => d.detail)).toEqual([
      'AAPL: we hold 10, the broker 11',
    ]);
    expect(engine.health().activeBreakers).toEqual(['reconcile:AAPL']);
  });
});

describe('trade history differences', () => {
  it('agree: nothing; the broker books disagreeing with themselves, a corrected price, an orphan execution: disputes', async () => {
    const engine = await filledEngine();
    const exec = (id: string, orderId: string, qty: number, price: number) => ({
      id,
      orderId,
      symbol: 'AAPL',
      side: 'buy' as const,
      qty,
      price,
      at: T,
    });
    const base = { positions: { AAPL: { qty: 10, avgPrice: 100 } }, cash: 9_000 };
    const agree = {
      ...base,
      orders: [order('o1', 'B1', 10, 100)],
      executions: [exec('e1', 'o1', 4, 100), exec('e2', 'o1', 6, 100)],
    };
    expect(tradeHistoryDifferences(engine.state, agree)).toEqual([]);
    expect(tradeHistoryDifferences(engine.state, { ...agree, executions: undefined })).toEqual([]);
    const kinds = (v: BrokerView) => tradeHistoryDifferences(engine.state, v).map((d) => [d.key, d.detail]);
    expect(kinds({ ...agree, executions: [exec('e1', 'o1', 4, 100)] })).toEqual([
      ['B1', "B1: the broker's executions add up to 4, its order says 10 filled"],
    ]);
    expect(kinds({ ...agree, executions: [exec('e1', 'o1', 10, 100.5)] })).toEqual([
      ['B1', "B1: we booked 10 for 1000, the broker's 1 execution(s) for 1005"],
    ]);
    expect(kinds({ ...agree, executions: [...agree.executions, exec('e9', 'ghost', 1, 100)] })).toEqual([
      ['e9', 'execution e9 (buy 1 AAPL @ 100) belongs to no order the broker lists'],
    ]);
  });

  it('manual resolutions: unknown ids, booked differences and accept_broker without broker figures are refused', async () => {
    const engine = await filledEngine();
    const booked = {
      id: 'b',
      kind: 'missing_fill' as const,
      key: 'B1',
      detail: 'x',
      resolution: 'book_from_broker' as const,
      scope: 'AAPL',
    };
    const dispute = {
      ...booked,
      id: 'd',
      kind: 'unknown_order' as const,
      resolution: 'manual_intervention' as const,
      scope: 'account',
    };
    expect(await engine.recordReconciliation([booked, dispute, dispute], T)).toHaveLength(2);
    expect(engine.health().activeBreakers).toEqual(['reconcile:account']);
    expect((await engine.resolveReconciliation('zz', 'ops', 'dismiss', T)).ok).toBe(false);
    expect((await engine.resolveReconciliation('b', 'ops', 'dismiss', T)).detail).toContain(
      'booked from the broker',
    );
    expect((await engine.resolveReconciliation('d', 'ops', 'accept_broker', T)).detail).toContain(
      'no broker figures',
    );
    expect((await engine.reset('reconcile:account', 'ops', T)).ok).toBe(false);
    expect((await engine.resolveReconciliation('d', 'ops', 'dismiss', T)).ok).toBe(true);
    expect(engine.health().activeBreakers).toEqual([]);
    expect(await engine.recordReconciliation([dispute], T)).toEqual([]); // found again: resolved, no trip
    expect(engine.health().activeBreakers).toEqual([]);
  });
});
