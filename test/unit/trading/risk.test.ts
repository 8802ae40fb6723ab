import { describe, expect, it } from 'vitest';
import { TradingEngine } from '../../../lambdas/trading/engine';
import {
  type Candidate,
  checkOrder,
  fitQuantity,
  grossExposure,
  validateRequest,
} from '../../../lambdas/trading/risk';
import {
  type AccountState,
  orderPrice,
  rebuild,
  remaining,
  type SideBook,
  sideBook,
} from '../../../lambdas/trading/state';
import { MemoryEventStore } from '../../../lambdas/trading/store';
import type { Limits, Order, PositionInit, TradingEvent } from '../../../lambdas/trading/types';
import { mulberry32 } from '../../../localstack/scenarios/prng';

const AT = '2026-03-02T15:00:00.000Z';
const NOW = Date.parse(AT);

function account(
  limits: Limits,
  extra: TradingEvent[] = [],
  positions: Record<string, PositionInit> = {},
  cash = 100_000,
): AccountState {
  return rebuild([
    { type: 'AccountOpened', at: AT, cash, positions, limits },
    { type: 'SessionChanged', at: AT, session: 'open', override: false },
    { type: 'PricesUpdated', at: AT, prices: { AAPL: 100, MSFT: 200, NVDA: 50 } },
    ...extra,
  ]);
}

function open(
  id: string,
  symbol: string,
  side: 'buy' | 'sell',
  qty: number,
  limitPrice: number,
): TradingEvent {
  const order: Order = {
    clientOrderId: id,
    symbol,
    side,
    qty,
    requestedQty: qty,
    type: 'limit',
    limitPrice,
    tif: 'day',
    status: 'pending_new',
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
  return { type: 'OrderSubmitted', at: AT, order };
}

const buy = (symbol: string, qty: number, limitPrice: number | null = null): Candidate => ({
  symbol,
  side: 'buy',
  qty,
  type: limitPrice === null ? 'market' : 'limit',
  limitPrice,
});
const sell = (symbol: string, qty: number): Candidate => ({
  symbol,
  side: 'sell',
  qty,
  type: 'market',
  limitPrice: null,
});
const code = (state: AccountState, c: Candidate) => checkOrder(state, c, NOW)?.code ?? null;

describe('pre-trade risk checks', () => {
  it('passes an order within every limit', () => {
    expect(checkOrder(account({ maxOrderNotional: 10_000 }), buy('AAPL', 10), NOW)).toBeNull();
  });

  it('INVALID_ORDER names every problem of a malformed request', () => {
    const denial = validateRequest(account({}), {
      clientOrderId: '',
      symbol: 'aapl',
      side: 'hold',
      qty: 1.5,
      type: 'limit',
      tif: 'week',
    });
    expect(denial?.code).toBe('INVALID_ORDER');
    for (const part of ['clientOrderId', 'symbol', 'side', 'qty', 'tif', 'limitPrice'])
      expect(denial?.detail).toContain(part);
    expect(
      validateRequest(account({}), {
        clientOrderId: 'X',
        symbol: 'ZZZ',
        side: 'buy',
        qty: 1,
        type: 'market',
        tif: 'day',
      })?.detail,
    ).toContain('no last price');
  });

  it('MAX_ORDER_NOTIONAL, with the notional in the detail', () => {
    const d = checkOrder(account({ maxOrderNotional: 5_000 }), buy('AAPL', 60), NOW);
    expect(d).toEqual({ code: 'MAX_ORDER_NOTIONAL', detail: expect.stringContaining('6,000') });
  });

  it('MAX_POSITION counts open orders on the same side, per symbol or "*"', () => {
    const state = account({ maxPositionQty: { AAPL: 100, '*': 10 } }, [open('O1', 'AAPL', 'buy', 80, 100)]);
    expect(code(state, buy('AAPL', 20))).toBeNull();
    expect(code(state, buy('AAPL', 21))).toBe('MAX_POSITION');
    expect(code(state, buy('MSFT', 11))).toBe('MAX_POSITION');
  });

  it('MAX_GROSS_EXPOSURE counts notional reserved by open orders', () => {
    const state = account({ maxGrossExposure: 20_000 }, [open('O1', 'MSFT', 'buy', 50, 200)]);
    expect(grossExposure(state)).toBe(10_000);
    expect(code(state, buy('AAPL', 100))).toBeNull();
    expect(code(state, buy('AAPL', 101))).toBe('MAX_GROSS_EXPOSURE');
  });

  it('MAX_LEVERAGE compares gross exposure with equity', () => {
    const state = account({ maxLeverage: 2 }, [], {}, 10_000);
    expect(code(state, buy('AAPL', 200))).toBeNull();
    expect(code(state, buy('AAPL', 201))).toBe('MAX_LEVERAGE');
  });

  it('CORRELATION_EXPOSURE caps a group together', () => {
    const limits: Limits = { correlationGroups: { big: { symbols: ['AAPL', 'MSFT'], maxExposure: 15_000 } } };
    const state = account(limits, [], { MSFT: { qty: 50, avgPrice: 200 } });
    expect(code(state, buy('AAPL', 50))).toBeNull();
    expect(code(state, buy('AAPL', 51))).toBe('CORRELATION_EXPOSURE');
    expect(code(state, buy('NVDA', 1000))).toBeNull();
  });

  it('ORDER_RATE counts submits in the last second', () => {
    const state = account({ maxOrdersPerSecond: 2 }, [
      open('O1', 'AAPL', 'buy', 1, 100),
      open('O2', 'AAPL', 'buy', 1, 100),
    ]);
    expect(code(state, buy('AAPL', 1))).toBe('ORDER_RATE');
    expect(checkOrder(state, buy('AAPL', 1), NOW + 1000)).toBeNull();
  });

  it('PRICE_COLLAR refuses a limit too far from the last price', () => {
    const state = account({ priceCollarPct: 5 });
    expect(code(state, buy('AAPL', 1, 105))).toBeNull();
    expect(code(state, buy('AAPL', 1, 94.9))).toBe('PRICE_COLLAR');
  });

  it('RESTRICTED_SYMBOL', () => {
    expect(code(account({ restricted: ['AAPL'] }), buy('AAPL', 1))).toBe('RESTRICTED_SYMBOL');
  });

  it('TRADING_HALTED and REDUCE_ONLY follow the account and symbol trading states', () => {
    const halted = account({}, [
      { type: 'TradingStateChanged', at: AT, scope: 'account', state: 'halted', cause: 'test' },
    ]);
    expect(code(halted, buy('AAPL', 1))).toBe('TRADING_HALTED');
    const reducing = account(
      {},
      [{ type: 'TradingStateChanged', at: AT, scope: 'AAPL', state: 'reducing', cause: 'test' }],
      {
        AAPL: { qty: 10, avgPrice: 100 },
      },
    );
    expect(code(reducing, buy('AAPL', 1))).toBe('REDUCE_ONLY');
    expect(code(reducing, sell('AAPL', 10))).toBeNull();
    expect(code(reducing, sell('AAPL', 11))).toBe('REDUCE_ONLY');
    expect(code(reducing, buy('MSFT', 1))).toBeNull();
  });

  it('SYMBOL_HALTED for an exchange halt or a paused symbol', () => {
    expect(
      code(
        account({}, [{ type: 'SymbolHaltChanged', at: AT, symbol: 'AAPL', halted: true }]),
        buy('AAPL', 1),
      ),
    ).toBe('SYMBOL_HALTED');
    expect(
      code(
        account({}, [
          { type: 'TradingStateChanged', at: AT, scope: 'AAPL', state: 'halted', cause: 'volatility:AAPL' },
        ]),
        buy('AAPL', 1),
      ),
    ).toBe('SYMBOL_HALTED');
  });

  it('MARKET_CLOSED when closed, and for market orders outside the regular session', () => {
    const closed = account({}, [{ type: 'SessionChanged', at: AT, session: 'closed', override: true }]);
    expect(code(closed, buy('AAPL', 1, 100))).toBe('MARKET_CLOSED');
    const pre = account({}, [{ type: 'SessionChanged', at: AT, session: 'pre-market', override: true }]);
    expect(code(pre, buy('AAPL', 1))).toBe('MARKET_CLOSED');
    expect(code(pre, buy('AAPL', 1, 100))).toBeNull();
  });

  it('INSUFFICIENT_BUYING_POWER counts cash reserved by open buys', () => {
    const state = account({}, [open('O1', 'AAPL', 'buy', 50, 100)], {}, 10_000);
    expect(code(state, buy('AAPL', 50))).toBeNull();
    expect(code(state, buy('AAPL', 51))).toBe('INSUFFICIENT_BUYING_POWER');
  });

  it('scales limits by the restoration factor after a reset', () => {
    const state = account({ maxOrderNotional: 10_000 }, [
      { type: 'RestorationStepped', at: AT, scope: 'account', factor: 0.25, nextAt: AT },
    ]);
    expect(code(state, buy('AAPL', 25))).toBeNull();
    expect(checkOrder(state, buy('AAPL', 26), NOW)?.detail).toContain('25%');
  });

  it('sizing finds the largest quantity that passes, never more', () => {
    const state = account({ maxOrderNotional: 10_000, maxPositionQty: { '*': 70 } });
    expect(fitQuantity(state, buy('AAPL', 500), NOW)).toBe(70);
    expect(fitQuantity(account({ restricted: ['AAPL'] }), buy('AAPL', 5), NOW)).toBe(0);
  });
});

/** The open-order aggregate of one symbol by scanning every open order (what the book replaces). */
function scan(state: AccountState, symbol: string): SideBook {
  const b: SideBook = { buyQty: 0, sellQty: 0, buyNotional: 0, sellNotional: 0 };
  for (const id of state.open) {
    const o = state.orders[id] as Order;
    if (o.symbol !== symbol) continue;
    const qty = remaining(o);
    if (o.side === 'buy') {
      b.buyQty += qty;
      b.buyNotional += qty * orderPrice(state, o);
    } else {
      b.sellQty += qty;
      b.sellNotional += qty * orderPrice(state, o);
    }
  }
  return b;
}

describe('the incremental open-order book', () => {
  it.each([3, 7, 11])(
    'equals a scan of every open order after each command, and a rebuilt state decides identically (seed %i)',
    async (start) => {
      // A deterministic pseudo-random session: submits (limit and market), fills, partial fills,
      // cancels, modifies, rejects and price moves over four symbols.
      const next = mulberry32(start);
      const rand = (n: number) => Math.floor(next() * n);
      const symbols = ['AAPL', 'MSFT', 'NVDA', 'TSLA'];
      const store = new MemoryEventStore();
      const engine = await TradingEngine.open(store, 'book', {
        init: {
          cash: 1_000_000,
          positions: { MSFT: { qty: 30, avgPrice: 190 } },
          limits: { maxGrossExposure: 400_000, maxPositionQty: { '*': 5_000 } },
        },
        at: AT,
      });
      await engine.updatePrices({ AAPL: 100, MSFT: 200, NVDA: 50.5, TSLA: 0.1 }, AT);
      const at = (i: number) => new Date(NOW + 1000 * (i + 1)).toISOString();
      const probes: Candidate[] = symbols.flatMap((s) => [buy(s, 7), sell(s, 13), buy(s, 5, 99.3)]);
      for (let i = 0; i < 400; i++) {
        const symbol = symbols[rand(4)] as string;
        const ids = [...engine.state.open];
        const id = ids[rand(Math.max(1, ids.length))];
        switch (rand(8)) {
          case 0:
          case 1: {
            const market = rand(3) === 0;
            await engine.submit(
              {
                clientOrderId: `O${i}`,
                symbol,
                side: rand(2) === 0 ? 'buy' : 'sell',
                qty: 1 + rand(40),
                type: market ? 'market' : 'limit',
                limitPrice: market ? undefined : 40 + rand(200) / 3,
                tif: 'gtc',
              },
              at(i),
            );
            break;
          }
          case 2:
            if (id) await engine.onBrokerReport({ kind: 'accepted', clientOrderId: id }, at(i));
            break;
          case 3:
            if (id) {
              const o = engine.state.orders[id] as Order;
              const qty = Math.max(1, Math.min(remaining(o), 1 + rand(20)));
              await engine.onBrokerReport(
                { kind: 'fill', clientOrderId: id, qty, price: 50 + rand(100) },
                at(i),
              );
            }
            break;
          case 4:
            if (id) await engine.cancel(id, at(i));
            break;
          case 5:
            if (id) await engine.modify({ clientOrderId: id, qty: 1 + rand(60) }, at(i));
            break;
          case 6:
            if (id)
              await engine.onBrokerReport(
                {
                  kind: rand(2) === 0 ? 'canceled' : 'replaced',
                  clientOrderId: id,
                  newClientOrderId: `${id}.r1`,
                } as never,
                at(i),
              );
            break;
          default:
            await engine.updatePrices({ [symbol]: 20 + rand(300) / 7 }, at(i));
        }
        for (const s of symbols) expect(sideBook(engine.state, s)).toEqual(scan(engine.state, s));
        if (i % 25 === 0) {
          const rebuilt = rebuild(await store.load('book'));
          for (const c of probes)
            expect(checkOrder(rebuilt, c, NOW + 1000 * (i + 1))).toEqual(
              checkOrder(engine.state, c, NOW + 1000 * (i + 1)),
            );
          expect(grossExposure(rebuilt)).toBe(grossExposure(engine.state));
        }
      }
      const counts: Record<string, number> = {};
      for (const e of await store.load('book')) counts[e.type] = (counts[e.type] ?? 0) + 1;
      console.log(
        JSON.stringify(counts),
        engine.state.open.size,
        JSON.stringify(
          Object.values(engine.state.orders)
            .map((o) => o.denial?.code)
            .filter(Boolean),
        ),
      );
      expect(engine.state.open.size).toBeGreaterThan(5);
    },
  );
});
