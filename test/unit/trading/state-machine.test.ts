import { describe, expect, it } from 'vitest';
import {
  canTransition,
  InvalidTransitionError,
  projections,
  rebuild,
  TERMINAL,
  TRANSITIONS,
} from '../../../lambdas/trading/state';
import {
  ORDER_STATUSES,
  type Order,
  type OrderStatus,
  type TradingEvent,
} from '../../../lambdas/trading/types';

const AT = '2026-03-02T15:00:00.000Z';

function order(id: string, status: OrderStatus = 'pending_new'): Order {
  return {
    clientOrderId: id,
    symbol: 'XYZ',
    side: 'buy',
    qty: 100,
    requestedQty: 100,
    type: 'limit',
    limitPrice: 10,
    tif: 'day',
    status,
    filledQty: 0,
    avgFillPrice: null,
    denial: null,
    submittedAt: AT,
    session: 'open',
    liquidation: false,
    replaces: null,
    replacedBy: null,
    statusBeforePending: null,
  };
}

const opened: TradingEvent[] = [
  { type: 'AccountOpened', at: AT, cash: 10_000, positions: {}, limits: {} },
  { type: 'OrderSubmitted', at: AT, order: order('O1') },
];

describe('order state machine', () => {
  it('has exactly the issue statuses, and terminal statuses have no way out', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ORDER_STATUSES].sort());
    expect([...TERMINAL].sort()).toEqual(['canceled', 'denied', 'expired', 'filled', 'rejected', 'replaced']);
    for (const s of TERMINAL) for (const to of ORDER_STATUSES) expect(canTransition(s, to)).toBe(false);
  });

  it('lets a fill race a cancel or a replace but never reopens a filled order', () => {
    expect(canTransition('pending_cancel', 'filled')).toBe(true);
    expect(canTransition('pending_cancel', 'pending_cancel')).toBe(true);
    expect(canTransition('pending_replace', 'filled')).toBe(true);
    expect(canTransition('filled', 'canceled')).toBe(false);
    expect(canTransition('new', 'pending_new')).toBe(false);
    expect(canTransition('new', 'denied')).toBe(false);
  });

  it('walks pending_new -> new -> partially_filled -> filled and books the position and cash', () => {
    const state = rebuild([
      ...opened,
      { type: 'OrderAccepted', at: AT, clientOrderId: 'O1' },
      { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 40, price: 10 },
      { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 60, price: 11 },
    ]);
    expect(projections(state).orders.O1).toEqual({
      status: 'filled',
      filledQty: 100,
      avgFillPrice: 10.6,
      denial: null,
    });
    expect(state.positions.XYZ).toEqual({ qty: 100, avgPrice: 10.6 });
    expect(state.cash).toBe(10_000 - 1060);
  });

  it('keeps pending_cancel through a partial fill and returns to partially_filled when the cancel is refused', () => {
    const state = rebuild([
      ...opened,
      { type: 'OrderAccepted', at: AT, clientOrderId: 'O1' },
      { type: 'CancelRequested', at: AT, clientOrderId: 'O1', reason: 'client' },
      { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 30, price: 10 },
    ]);
    expect(state.orders.O1?.status).toBe('pending_cancel');
    const refused = rebuild([
      ...opened,
      { type: 'OrderAccepted', at: AT, clientOrderId: 'O1' },
      { type: 'CancelRequested', at: AT, clientOrderId: 'O1', reason: 'client' },
      { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 30, price: 10 },
      { type: 'CancelRejected', at: AT, clientOrderId: 'O1', reason: 'too late' },
    ]);
    expect(refused.orders.O1?.status).toBe('partially_filled');
  });

  it('records a replace as the original replaced and a replacement for the rest of the new quantity', () => {
    const state = rebuild([
      ...opened,
      { type: 'OrderAccepted', at: AT, clientOrderId: 'O1' },
      { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 40, price: 10 },
      {
        type: 'ReplaceRequested',
        at: AT,
        clientOrderId: 'O1',
        newClientOrderId: 'O1.r1',
        qty: 150,
        limitPrice: 11,
      },
      { type: 'OrderReplaced', at: AT, clientOrderId: 'O1', newClientOrderId: 'O1.r1' },
    ]);
    expect(state.orders.O1).toMatchObject({ status: 'replaced', replacedBy: 'O1.r1', filledQty: 40 });
    expect(state.orders['O1.r1']).toMatchObject({ status: 'new', qty: 110, limitPrice: 11, replaces: 'O1' });
  });

  it('refuses an event that would move a terminal order', () => {
    expect(() =>
      rebuild([
        ...opened,
        { type: 'OrderCanceled', at: AT, clientOrderId: 'O1' },
        { type: 'OrderFilled', at: AT, clientOrderId: 'O1', qty: 1, price: 10 },
      ]),
    ).toThrow(InvalidTransitionError);
  });

  it('refuses a second order with the same client order id', () => {
    expect(() => rebuild([...opened, { type: 'OrderSubmitted', at: AT, order: order('O1') }])).toThrow(
      /exists/,
    );
  });
});

describe('order-rate window', () => {
  it('keeps the submits of the last second, dropping one exactly a second old, in place', () => {
    const at = (ms: number) => new Date(Date.parse(AT) + ms).toISOString();
    const submit = (id: string, ms: number): TradingEvent => ({
      type: 'OrderSubmitted',
      at: at(ms),
      order: { ...order(id), submittedAt: at(ms) },
    });
    const s = rebuild([
      opened[0] as TradingEvent,
      submit('A', 0),
      submit('B', 400),
      submit('C', 500),
      submit('D', 1400),
      submit('E', 1500),
    ]);
    // At 1,500 ms: A and B are more than a second old and C exactly one: only D and E remain.
    expect(s.recentOrders.map((t) => t - Date.parse(AT))).toEqual([1400, 1500]);
    // Many orders in one second stay one window (a rebuild no longer copies it per order).
    const burst = rebuild([
      opened[0] as TradingEvent,
      ...Array.from({ length: 3000 }, (_, i) => submit(`O${i}`, Math.floor(i / 4))),
    ]);
    expect(burst.recentOrders).toHaveLength(3000);
  });
});
