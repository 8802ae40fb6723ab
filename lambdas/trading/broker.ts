/**
 * The broker port. The engine never calls a broker directly: its commands go to the outbox in the
 * same transaction as the events, and a dispatcher hands them over; the broker answers with reports
 * (acks, fills, cancels, rejects) that come back to the engine as commands of their own. The
 * in-process simulated broker (localstack/trading) and the live adapter implement the same port.
 */
import type { EventStore } from './store';
import type { BrokerCommand, Order } from './types';

export interface BrokerPort {
  /** Hands one command over; reports arrive later through the adapter's report handler. */
  send(command: BrokerCommand): Promise<void>;
}

/** The submit command the broker receives for an order (the outbox's, and a resubmit's). */
export function submitCommand(o: Order): Extract<BrokerCommand, { kind: 'submit' }> {
  return {
    kind: 'submit',
    clientOrderId: o.clientOrderId,
    symbol: o.symbol,
    side: o.side,
    qty: o.qty,
    type: o.type,
    limitPrice: o.limitPrice,
    tif: o.tif,
  };
}

/** Sends every undelivered outbox command in order and marks each delivered once sent. */
export async function dispatchOutbox(store: EventStore, stream: string, broker: BrokerPort): Promise<number> {
  const pending = await store.pendingCommands(stream);
  for (const entry of pending) {
    await broker.send(entry.command);
    await store.markDelivered([entry.id]);
  }
  return pending.length;
}
