/**
 * An in-process broker on a simulated clock, behind the engine's BrokerPort. Commands reach it
 * `latencyMs` after they leave the outbox; its reports reach the engine at once. `fill: "immediate"`
 * fills marketable orders at the last price when they arrive and resting limit orders when the price
 * crosses them; `fill: "none"` fills only what the scenario's `fill` entries say.
 */
import type { BrokerPort } from '../../lambdas/trading/broker';
import type { BrokerCommand, BrokerReport, Side } from '../../lambdas/trading/types';

export class SimClock {
  private seq = 0;
  private items: { at: number; seq: number; fn: () => Promise<void> }[] = [];
  constructor(public now: number) {}

  schedule(at: number, fn: () => Promise<void>): void {
    this.items.push({ at, seq: this.seq++, fn });
    this.items.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  peek(): number | null {
    return this.items[0]?.at ?? null;
  }

  pop(): { at: number; fn: () => Promise<void> } | undefined {
    return this.items.shift();
  }
}

interface BrokerOrder {
  id: string;
  symbol: string;
  side: Side;
  qty: number;
  filled: number;
  type: 'market' | 'limit';
  limitPrice: number | null;
  open: boolean;
  replacedBy: string | null;
}

export interface SimBrokerOptions {
  readonly fill: 'immediate' | 'none';
  readonly latencyMs: number;
}

export class SimulatedBroker implements BrokerPort {
  private readonly orders = new Map<string, BrokerOrder>();
  private readonly prices = new Map<string, number>();
  private readonly rejects = new Map<string, string>();
  readonly received: BrokerCommand[] = [];

  constructor(
    private readonly options: SimBrokerOptions,
    private readonly clock: SimClock,
    private readonly deliver: (report: BrokerReport) => Promise<void>,
  ) {}

  async send(command: BrokerCommand): Promise<void> {
    this.clock.schedule(this.clock.now + this.options.latencyMs, () => this.process(command));
  }

  private resolve(id: string): BrokerOrder | undefined {
    let o = this.orders.get(id);
    while (o?.replacedBy) o = this.orders.get(o.replacedBy);
    return o;
  }

  private async process(command: BrokerCommand): Promise<void> {
    this.received.push(command);
    if (command.kind === 'submit') {
      const reason = this.rejects.get(command.clientOrderId);
      if (reason !== undefined) {
        this.rejects.delete(command.clientOrderId);
        return this.deliver({ kind: 'rejected', clientOrderId: command.clientOrderId, reason });
      }
      const o: BrokerOrder = {
        id: command.clientOrderId,
        symbol: command.symbol,
        side: command.side,
        qty: command.qty,
        filled: 0,
        type: command.type,
        limitPrice: command.limitPrice,
        open: true,
        replacedBy: null,
      };
      this.orders.set(o.id, o);
      await this.deliver({ kind: 'accepted', clientOrderId: o.id });
      return this.tryFill(o);
    }
    const o = this.orders.get(command.clientOrderId);
    if (command.kind === 'cancel') {
      if (!o)
        return this.deliver({
          kind: 'cancel_rejected',
          clientOrderId: command.clientOrderId,
          reason: 'unknown order',
        });
      if (!o.open)
        return this.deliver({
          kind: 'cancel_rejected',
          clientOrderId: o.id,
          reason: 'order is no longer open',
        });
      o.open = false;
      return this.deliver({ kind: 'canceled', clientOrderId: o.id });
    }
    if (!o?.open)
      return this.deliver({
        kind: 'replace_rejected',
        clientOrderId: command.clientOrderId,
        reason: 'order is no longer open',
      });
    if (command.qty <= o.filled)
      return this.deliver({
        kind: 'replace_rejected',
        clientOrderId: o.id,
        reason: 'new quantity is not above the filled quantity',
      });
    o.open = false;
    o.replacedBy = command.newClientOrderId;
    const n: BrokerOrder = {
      ...o,
      id: command.newClientOrderId,
      qty: command.qty - o.filled,
      filled: 0,
      limitPrice: command.limitPrice,
      open: true,
      replacedBy: null,
    };
    this.orders.set(n.id, n);
    await this.deliver({ kind: 'replaced', clientOrderId: o.id, newClientOrderId: n.id });
    return this.tryFill(n);
  }

  private marketable(o: BrokerOrder, price: number): boolean {
    if (o.type === 'market' || o.limitPrice === null) return true;
    return o.side === 'buy' ? price <= o.limitPrice : price >= o.limitPrice;
  }

  private async tryFill(o: BrokerOrder): Promise<void> {
    if (this.options.fill !== 'immediate' || !o.open) return;
    const price = this.prices.get(o.symbol);
    if (price === undefined || !this.marketable(o, price)) return;
    const qty = o.qty - o.filled;
    o.filled = o.qty;
    o.open = false;
    await this.deliver({ kind: 'fill', clientOrderId: o.id, qty, price });
  }

  async setPrices(prices: Record<string, number>): Promise<void> {
    for (const [symbol, price] of Object.entries(prices)) this.prices.set(symbol, price);
    for (const o of [...this.orders.values()]) if (o.open && o.symbol in prices) await this.tryFill(o);
  }

  /** A scenario `fill`: the broker fills what is open of the order (resolved through replacements). */
  async fill(id: string, qty: number, price: number): Promise<boolean> {
    const o = this.resolve(id);
    if (!o?.open) return false;
    const q = Math.min(qty, o.qty - o.filled);
    o.filled += q;
    if (o.filled >= o.qty) o.open = false;
    await this.deliver({ kind: 'fill', clientOrderId: o.id, qty: q, price });
    return true;
  }

  /** A scenario `brokerReject`: rejects the order now if it is working and unfilled, or when it arrives. */
  async reject(id: string, reason: string): Promise<void> {
    const o = this.resolve(id);
    if (!o) {
      this.rejects.set(id, reason);
      return;
    }
    if (!o.open || o.filled > 0) return;
    o.open = false;
    await this.deliver({ kind: 'rejected', clientOrderId: o.id, reason });
  }

  /** Orders the exchange ended (day orders at the close); the broker stops working them. */
  expire(ids: Iterable<string>): void {
    for (const id of ids) {
      const o = this.orders.get(id);
      if (o) o.open = false;
    }
  }

  openIds(): string[] {
    return [...this.orders.values()].filter((o) => o.open).map((o) => o.id);
  }
}
