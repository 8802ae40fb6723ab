/**
 * The order API: submit, cancel, modify, status, positions, reset, one module over the engine, used by
 * the `trading` CLI now and by the Lambda/API layer of the live engine later. Every call is one
 * command of the engine (one transaction) at the clock's time.
 */
import type { CommandOutcome, OrderOutcome, TradingEngine } from './engine';
import type { Projections } from './state';
import type { Limits, Order, OrderRequest } from './types';

export interface OrderApi {
  submit(order: OrderRequest | OrderRequest[]): Promise<OrderOutcome[]>;
  cancel(clientOrderId: string): Promise<CommandOutcome>;
  modify(change: { clientOrderId: string; qty?: number; limitPrice?: number }): Promise<CommandOutcome>;
  status(clientOrderId?: string): Promise<{ order?: Order; health: ReturnType<TradingEngine['health']> }>;
  positions(): Promise<{ positions: Projections['positions']; account: Projections['account'] }>;
  reset(breaker: string, by: string): Promise<CommandOutcome>;
  prices(prices: Record<string, number>): Promise<void>;
  limits(limits: Partial<Limits>): Promise<void>;
}

export function createOrderApi(
  engine: TradingEngine,
  clock: () => string = () => new Date().toISOString(),
): OrderApi {
  return {
    async submit(order) {
      const orders = Array.isArray(order) ? order : [order];
      await engine.advanceTo(clock());
      return orders.length === 1
        ? [await engine.submit(orders[0] as OrderRequest, clock())]
        : engine.submitPortfolio(orders, clock());
    },
    async cancel(id) {
      await engine.advanceTo(clock());
      return engine.cancel(id, clock());
    },
    async modify(change) {
      await engine.advanceTo(clock());
      return engine.modify(change, clock());
    },
    async status(id) {
      await engine.advanceTo(clock());
      // Reads answer with what is committed: wait for any group still being written.
      await engine.settled();
      return { order: id ? engine.resolve(id) : undefined, health: engine.health() };
    },
    async positions() {
      await engine.advanceTo(clock());
      await engine.settled();
      const p = engine.projections();
      return { positions: p.positions, account: p.account };
    },
    async reset(breaker, by) {
      await engine.advanceTo(clock());
      return engine.reset(breaker, by, clock());
    },
    async prices(prices) {
      await engine.advanceTo(clock());
      return engine.updatePrices(prices, clock());
    },
    async limits(limits) {
      await engine.advanceTo(clock());
      return engine.updateLimits(limits, clock());
    },
  };
}
