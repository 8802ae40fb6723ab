/**
 * Reconciliation against the broker: orders, fills, positions and cash. Pure: it compares what the
 * engine holds with the broker's view and names each difference with a deterministic id (the same
 * difference found again, by a later run or a replay, has the same id and is never recorded twice).
 *
 * Resolution rules: the broker is the source of truth for fills and order end states (they are
 * booked from the broker's record: `book_from_broker`); a position or cash difference that remains
 * after that, beyond the tolerance, is a dispute that goes to manual intervention and blocks the
 * symbol (`manual_intervention`); an order the broker has and we never sent is a dispute too.
 */
import { createHash } from 'node:crypto';
import type { BrokerOrder } from './live-broker';
import type { AccountState } from './state';

export type DifferenceKind =
  | 'missing_fill'
  | 'order_status'
  | 'unknown_order'
  | 'missing_order'
  | 'position'
  | 'balance';

export interface Difference {
  readonly id: string;
  readonly kind: DifferenceKind;
  /** The symbol or client order id concerned, or 'account'. */
  readonly key: string;
  readonly detail: string;
  readonly resolution: 'book_from_broker' | 'manual_intervention';
}

export interface BrokerView {
  readonly orders: readonly BrokerOrder[];
  readonly positions: Readonly<Record<string, { qty: number; avgPrice: number }>>;
  readonly cash: number;
}

export interface Tolerance {
  /** Absolute cash difference accepted (rounding), default 0.01. */
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

const BROKER_STATUS: Record<string, string> = {
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

/** Order and fill differences: what booking from the broker will resolve. */
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
      });
    } else if (b.filled_qty < o.filledQty) {
      const facts = { broker: b.filled_qty, local: o.filledQty };
      out.push({
        id: differenceId('missing_fill', o.clientOrderId, facts),
        kind: 'missing_fill',
        key: o.clientOrderId,
        detail: `${o.clientOrderId}: we booked ${o.filledQty} filled, the broker says ${b.filled_qty}`,
        resolution: 'manual_intervention',
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
    });
  }
  if (Math.abs(state.cash - broker.cash) > tolerance.cash) {
    const local = Math.round(state.cash * 100) / 100;
    const remote = Math.round(broker.cash * 100) / 100;
    out.push({
      id: differenceId('balance', 'account', { local, remote }),
      kind: 'balance',
      key: 'account',
      detail: `cash: ours ${local}, the broker's ${remote}`,
      resolution: 'manual_intervention',
    });
  }
  return out;
}
