/**
 * Reconciliation against the broker, the pure part: it compares what the engine holds (orders,
 * fills, positions, cash and the trade history) with the broker's view and names each difference
 * with a deterministic id (a hash of its kind, key and facts). The same difference found again, by
 * a later run, after a restart or in a replay, has the same id; it is recorded once
 * (`ReconciliationDifferenceRecorded` in the event store, deduplicated by the fold), never twice.
 *
 * Resolution rules (the runner, reconcile-runner.ts, applies them):
 * - the broker is the source of truth for fills and order end states: a fill or an end state the
 *   broker has and we do not is booked from the broker's record (`book_from_broker`, through the
 *   adapter's gate, so never twice);
 * - what still differs afterwards beyond the tolerance (a position, the cash balance, the trade
 *   history of an order, an order the broker has and we never sent, a fill we booked that the
 *   broker does not have, a working order the broker does not know) is a dispute:
 *   `manual_intervention`. It is recorded, and a `reconcile:<SYMBOL>` breaker (or
 *   `reconcile:account` for cash and order disputes) halts that scope until an operator resolves
 *   the difference (`ReconciliationDifferenceResolved`, with who did it: `accept_broker` takes
 *   the broker's position or cash over, `dismiss` acknowledges) and the breaker is reset.
 */
import { createHash } from 'node:crypto';
import type { BrokerOrder } from './live-broker';
import type { AccountState } from './state';
import type { OrderStatus, ReconciliationDifference, ReconciliationKind } from './types';

export type DifferenceKind = ReconciliationKind;
export type Difference = ReconciliationDifference;

/** One execution in the broker's trade history (Alpaca's FILL account activity). */
export interface BrokerExecution {
  readonly id: string;
  readonly orderId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly qty: number;
  readonly price: number;
  readonly at: string;
}

export interface BrokerView {
  readonly orders: readonly BrokerOrder[];
  readonly positions: Readonly<Record<string, { qty: number; avgPrice: number }>>;
  readonly cash: number;
  /** The broker's executions (absent: the broker offers no trade history; not compared). */
  readonly executions?: readonly BrokerExecution[];
}

export interface Tolerance {
  /** Absolute cash (and fill notional) difference accepted (rounding), default 0.01. */
  readonly cash: number;
  /** Absolute position quantity difference accepted, default 0. */
  readonly qty: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { cash: 0.01, qty: 0 };

export function differenceId(kind: string, key: string, facts: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([kind, key, facts]))
    .digest('hex')
    .slice(0, 20);
}

/** The broker's order statuses as ours (`accepted` is `new` here). */
export const BROKER_STATUS: Record<string, OrderStatus> = {
  new: 'new',
  accepted: 'new',
  pending_new: 'pending_new',
  partially_filled: 'partially_filled',
  filled: 'filled',
  canceled: 'canceled',
  expired: 'expired',
  replaced: 'replaced',
  rejected: 'rejected',
  pending_cancel: 'pending_cancel',
  pending_replace: 'pending_replace',
};

const money = (n: number) => Math.round(n * 100) / 100;

/** Order and fill differences: what booking from the broker will resolve (and the order disputes). */
export function orderDifferences(state: AccountState, broker: BrokerView): Difference[] {
  const out: Difference[] = [];
  const seen = new Set<string>();
  for (const b of broker.orders) {
    seen.add(b.client_order_id);
    const o = state.orders[b.client_order_id];
    if (!o) {
      const facts = { symbol: b.symbol, side: b.side, qty: b.qty, filled: b.filled_qty, status: b.status };
      out.push({
        id: differenceId('unknown_order', b.client_order_id, facts),
        kind: 'unknown_order',
        key: b.client_order_id,
        detail: `the broker has order ${b.client_order_id} (${b.side} ${b.qty} ${b.symbol}, ${b.status}, filled ${b.filled_qty}) that we never sent`,
        resolution: 'manual_intervention',
        scope: 'account',
      });
      continue;
    }
    if (b.filled_qty > o.filledQty) {
      const facts = { broker: b.filled_qty, local: o.filledQty, avg: b.filled_avg_price };
      out.push({
        id: differenceId('missing_fill', o.clientOrderId, facts),
        kind: 'missing_fill',
        key: o.clientOrderId,
        detail: `${o.clientOrderId}: the broker filled ${b.filled_qty} @ ${b.filled_avg_price}, we had booked ${o.filledQty}`,
        resolution: 'book_from_broker',
        scope: o.symbol,
      });
    } else if (b.filled_qty < o.filledQty) {
      const facts = { broker: b.filled_qty, local: o.filledQty };
      out.push({
        id: differenceId('missing_fill', o.clientOrderId, facts),
        kind: 'missing_fill',
        key: o.clientOrderId,
        detail: `${o.clientOrderId}: we booked ${o.filledQty} filled, the broker says ${b.filled_qty}`,
        resolution: 'manual_intervention',
        scope: 'account',
      });
    }
    const want = BROKER_STATUS[b.status] ?? b.status;
    const terminal = ['filled', 'canceled', 'expired', 'replaced', 'rejected'];
    if (want !== o.status && terminal.includes(want) && want !== 'filled') {
      const facts = { broker: want, local: o.status };
      out.push({
        id: differenceId('order_status', o.clientOrderId, facts),
        kind: 'order_status',
        key: o.clientOrderId,
        detail: `${o.clientOrderId}: the broker says ${want}, we had ${o.status}`,
        resolution: 'book_from_broker',
        scope: o.symbol,
      });
    }
  }
  for (const id of state.open) {
    const o = state.orders[id];
    if (!o || seen.has(id) || o.status === 'denied') continue;
    out.push({
      id: differenceId('missing_order', id, { status: o.status }),
      kind: 'missing_order',
      key: id,
      detail: `${id} is ${o.status} here and unknown to the broker`,
      resolution: o.status === 'pending_new' ? 'book_from_broker' : 'manual_intervention',
      scope: 'account',
    });
  }
  return out;
}

/** Position and cash differences left once orders are booked from the broker: disputes. */
export function balanceDifferences(
  state: AccountState,
  broker: BrokerView,
  tolerance: Tolerance = DEFAULT_TOLERANCE,
): Difference[] {
  const out: Difference[] = [];
  const symbols = new Set([...Object.keys(state.positions), ...Object.keys(broker.positions)]);
  for (const symbol of [...symbols].sort()) {
    const local = state.positions[symbol]?.qty ?? 0;
    const remote = broker.positions[symbol]?.qty ?? 0;
    if (Math.abs(local - remote) <= tolerance.qty) continue;
    out.push({
      id: differenceId('position', symbol, { local, remote }),
      kind: 'position',
      key: symbol,
      detail: `${symbol}: we hold ${local}, the broker ${remote}`,
      resolution: 'manual_intervention',
      scope: symbol,
      broker: { qty: remote, avgPrice: broker.positions[symbol]?.avgPrice ?? 0 },
    });
  }
  if (Math.abs(state.cash - broker.cash) > tolerance.cash) {
    const local = money(state.cash);
    const remote = money(broker.cash);
    out.push({
      id: differenceId('balance', 'account', { local, remote }),
      kind: 'balance',
      key: 'account',
      detail: `cash: ours ${local}, the broker's ${remote}`,
      resolution: 'manual_intervention',
      scope: 'account',
      broker: { cash: broker.cash },
    });
  }
  return out;
}

/**
 * The trade history: per order, the broker's executions against its own order record (the broker's
 * books must agree with themselves) and against the fills we booked (quantity and notional: a trade
 * the broker corrected after the fact changes the price, not the quantity). Run after booking from
 * the broker, so a quantity we lack has already been booked: what remains is a dispute.
 */
export function tradeHistoryDifferences(
  state: AccountState,
  broker: BrokerView,
  tolerance: Tolerance = DEFAULT_TOLERANCE,
): Difference[] {
  if (!broker.executions) return [];
  const byBrokerId = new Map(broker.orders.map((o) => [o.id, o]));
  const totals = new Map<string, { qty: number; notional: number; count: number }>();
  for (const x of broker.executions) {
    const t = totals.get(x.orderId) ?? { qty: 0, notional: 0, count: 0 };
    t.qty += x.qty;
    t.notional += x.qty * x.price;
    t.count += 1;
    totals.set(x.orderId, t);
  }
  const out: Difference[] = [];
  for (const b of broker.orders) {
    const t = totals.get(b.id) ?? { qty: 0, notional: 0, count: 0 };
    const o = state.orders[b.client_order_id];
    if (Math.abs(t.qty - b.filled_qty) > tolerance.qty) {
      const facts = { executions: t.qty, order: b.filled_qty };
      out.push({
        id: differenceId('trade_history', b.client_order_id, facts),
        kind: 'trade_history',
        key: b.client_order_id,
        detail: `${b.client_order_id}: the broker's executions add up to ${t.qty}, its order says ${b.filled_qty} filled`,
        resolution: 'manual_intervention',
        scope: b.symbol,
      });
      continue;
    }
    if (!o || o.filledQty !== t.qty || t.qty === 0) continue;
    const local = money(o.filledQty * (o.avgFillPrice ?? 0));
    const remote = money(t.notional);
    if (Math.abs(local - remote) <= tolerance.cash) continue;
    out.push({
      id: differenceId('trade_history', b.client_order_id, { local, remote, qty: t.qty }),
      kind: 'trade_history',
      key: b.client_order_id,
      detail: `${b.client_order_id}: we booked ${t.qty} for ${local}, the broker's ${t.count} execution(s) for ${remote}`,
      resolution: 'manual_intervention',
      scope: b.symbol,
    });
  }
  for (const x of broker.executions)
    if (!byBrokerId.has(x.orderId)) {
      out.push({
        id: differenceId('trade_history', x.id, { order: x.orderId, qty: x.qty, price: x.price }),
        kind: 'trade_history',
        key: x.id,
        detail: `execution ${x.id} (${x.side} ${x.qty} ${x.symbol} @ ${x.price}) belongs to no order the broker lists`,
        resolution: 'manual_intervention',
        scope: x.symbol,
      });
    }
  return out;
}
