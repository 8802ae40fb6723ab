/**
 * Pre-trade risk checks: pure functions of the account state and one candidate order. The first
 * failing check denies the order with its code and a human detail; an order is never resized unless
 * the caller asked for sizing ('fit').
 */
import {
  type AccountState,
  bookSymbols,
  equity,
  markPrice,
  remaining,
  type SideBook,
  sideBook,
  sideBookOf,
} from './state';
import type { Denial, DenialCode, Limits, Order, OrderRequest, Side, TradingStateName } from './types';

export interface Candidate {
  readonly symbol: string;
  readonly side: Side;
  readonly qty: number;
  readonly type: 'market' | 'limit';
  readonly limitPrice: number | null;
}

const CLIENT_ORDER_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const SYMBOL = /^[A-Z][A-Z0-9.]{0,9}$/;

export function fmt(n: number): string {
  return Number.isInteger(n)
    ? n.toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumFractionDigits: 4 });
}

function deny(code: DenialCode, detail: string): Denial {
  return { code, detail };
}

/** INVALID_ORDER: what no limit can make acceptable. */
export function validateRequest(state: AccountState, req: OrderRequest): Denial | null {
  const problems: string[] = [];
  if (typeof req.clientOrderId !== 'string' || !CLIENT_ORDER_ID.test(req.clientOrderId))
    problems.push('clientOrderId must be 1-64 characters of letters, digits and . _ : -');
  if (typeof req.symbol !== 'string' || !SYMBOL.test(req.symbol))
    problems.push(`symbol ${JSON.stringify(req.symbol)} is not a ticker (A-Z, digits, '.')`);
  if (req.side !== 'buy' && req.side !== 'sell')
    problems.push(`side must be buy or sell, not ${JSON.stringify(req.side)}`);
  if (typeof req.qty !== 'number' || !Number.isInteger(req.qty) || req.qty <= 0)
    problems.push(`qty must be a positive whole number of shares, not ${JSON.stringify(req.qty)}`);
  if (req.tif !== 'day' && req.tif !== 'gtc')
    problems.push(`tif must be day or gtc, not ${JSON.stringify(req.tif)}`);
  if (req.type === 'limit') {
    if (typeof req.limitPrice !== 'number' || !Number.isFinite(req.limitPrice) || req.limitPrice <= 0)
      problems.push('a limit order needs a positive limitPrice');
  } else if (req.type === 'market') {
    if (req.limitPrice !== undefined && req.limitPrice !== null)
      problems.push('a market order takes no limitPrice');
    else if (typeof req.symbol === 'string' && markPrice(state, req.symbol) === undefined)
      problems.push(`no last price for ${req.symbol}: a market order needs a reference price`);
  } else problems.push(`type must be market or limit, not ${JSON.stringify(req.type)}`);
  return problems.length > 0 ? deny('INVALID_ORDER', problems.join('; ')) : null;
}

/** The fraction of the scaled limits in force (gradual restoration after a breaker reset). */
export function restorationFactor(state: AccountState, symbol?: string): number {
  const account = state.restoring.account?.factor ?? 1;
  const sym = symbol ? (state.restoring[symbol]?.factor ?? 1) : 1;
  return Math.min(account, sym);
}

export function scopeState(state: AccountState, scope: string): TradingStateName {
  return state.states[scope]?.state ?? 'active';
}

export function referencePrice(state: AccountState, c: Candidate): number {
  return c.type === 'limit' && c.limitPrice !== null ? c.limitPrice : (markPrice(state, c.symbol) ?? 0);
}

/**
 * Open orders per symbol: the state's incremental book (lambdas/trading/state.ts), or, for a modify,
 * that book without the order being replaced. Reading it costs one lookup per symbol.
 */
export type Book = (symbol: string) => SideBook;

export function openBook(state: AccountState, exclude?: string): Book {
  const excluded = exclude === undefined ? undefined : state.orders[exclude];
  if (!excluded || !state.open.has(excluded.clientOrderId)) return (s) => sideBook(state, s);
  const without = sideBookOf(state, excluded.symbol, excluded.clientOrderId);
  return (s) => (s === excluded.symbol ? without : sideBook(state, s));
}

/** Open quantity per side of a symbol, excluding one order (the one being replaced). */
export function openQty(
  state: AccountState,
  symbol: string,
  side: Side,
  exclude?: string,
  book = openBook(state, exclude),
): number {
  const b = book(symbol);
  return side === 'buy' ? b.buyQty : b.sellQty;
}

/**
 * A symbol's worst-case notional exposure: the position marked to the last price plus every open
 * order as if it filled at its reference price, on whichever side is larger. Open orders reserve
 * exposure before they fill.
 */
export function symbolExposure(
  state: AccountState,
  symbol: string,
  extra?: Candidate,
  exclude?: string,
  book = openBook(state, exclude),
): number {
  const pos = state.positions[symbol]?.qty ?? 0;
  const mark = markPrice(state, symbol) ?? 0;
  const b = book(symbol);
  let long = pos * mark + b.buyNotional;
  let short = pos * mark - b.sellNotional;
  if (extra && extra.symbol === symbol) {
    const notional = extra.qty * referencePrice(state, extra);
    if (extra.side === 'buy') long += notional;
    else short -= notional;
  }
  return Math.max(Math.abs(long), Math.abs(short));
}

/** Gross exposure without and with a candidate order, in one pass over the symbols (sorted). */
export function grossExposures(
  state: AccountState,
  extra?: Candidate,
  exclude?: string,
  book = openBook(state, exclude),
): { before: number; after: number } {
  const symbols = bookSymbols(state);
  let before = 0;
  let after = 0;
  let seen = false;
  for (const s of symbols) {
    const e = symbolExposure(state, s, undefined, exclude, book);
    before += e;
    if (extra && s === extra.symbol) {
      seen = true;
      after += symbolExposure(state, s, extra, exclude, book);
    } else after += e;
  }
  if (extra && !seen) after += symbolExposure(state, extra.symbol, extra, exclude, book);
  return { before, after };
}

export function grossExposure(
  state: AccountState,
  extra?: Candidate,
  exclude?: string,
  book = openBook(state, exclude),
): number {
  return grossExposures(state, extra, exclude, book).after;
}

/** True when the order, fully filled, leaves the position no larger in absolute size. */
export function reducesPosition(
  state: AccountState,
  c: Candidate,
  exclude?: string,
  book = openBook(state, exclude),
): boolean {
  const pos = state.positions[c.symbol]?.qty ?? 0;
  if (pos === 0) return false;
  if ((pos > 0 && c.side !== 'sell') || (pos < 0 && c.side !== 'buy')) return false;
  return c.qty + openQty(state, c.symbol, c.side, exclude, book) <= Math.abs(pos);
}

export function orderAddsExposure(state: AccountState, o: Order): boolean {
  const pos = state.positions[o.symbol]?.qty ?? 0;
  const signed = o.side === 'buy' ? remaining(o) : -remaining(o);
  return Math.abs(pos + signed) > Math.abs(pos);
}

export function positionLimit(limits: Limits, symbol: string): number | undefined {
  return limits.maxPositionQty?.[symbol] ?? limits.maxPositionQty?.['*'];
}

function scaled(limit: number, factor: number): string {
  return factor < 1
    ? `${fmt(limit)} (${Math.round(factor * 100)}% of the limit while it is restored after a reset)`
    : fmt(limit);
}

/** Market state, trading state and limit checks, in a fixed order; the first failure denies. */
export function checkOrder(
  state: AccountState,
  c: Candidate,
  nowMs: number,
  exclude?: string,
): Denial | null {
  const limits = state.limits;
  const book = openBook(state, exclude);
  const reduces = reducesPosition(state, c, exclude, book);
  const account = scopeState(state, 'account');
  const symbolState = scopeState(state, c.symbol);
  if (account === 'halted')
    return deny(
      'TRADING_HALTED',
      `trading is halted account-wide (${state.states.account?.cause}); only cancels are accepted`,
    );
  if (state.exchangeHalts.includes(c.symbol))
    return deny(
      'SYMBOL_HALTED',
      `${c.symbol} is halted by the exchange; orders are refused until it resumes`,
    );
  if (symbolState === 'halted')
    return deny(
      'SYMBOL_HALTED',
      `${c.symbol} is halted (${state.states[c.symbol]?.cause}); orders are refused until it resumes`,
    );
  if (state.session === 'closed')
    return deny(
      'MARKET_CLOSED',
      `the market is closed at ${state.now}; orders are accepted from the pre-market session`,
    );
  if (state.session !== 'open' && c.type === 'market')
    return deny(
      'MARKET_CLOSED',
      `market orders are accepted in the regular session only (now ${state.session}); send a limit order`,
    );
  if (limits.restricted?.includes(c.symbol))
    return deny('RESTRICTED_SYMBOL', `${c.symbol} is on the restricted list`);
  if ((account === 'reducing' || symbolState === 'reducing') && !reduces) {
    const scope = account === 'reducing' ? 'the account' : c.symbol;
    const cause = account === 'reducing' ? state.states.account?.cause : state.states[c.symbol]?.cause;
    return deny(
      'REDUCE_ONLY',
      `${scope} is reducing (${cause}): only orders that reduce a position are accepted`,
    );
  }
  const last = state.prices[c.symbol];
  if (
    limits.priceCollarPct !== undefined &&
    c.type === 'limit' &&
    c.limitPrice !== null &&
    last !== undefined
  ) {
    const off = (Math.abs(c.limitPrice - last) / last) * 100;
    if (off > limits.priceCollarPct)
      return deny(
        'PRICE_COLLAR',
        `limit ${fmt(c.limitPrice)} is ${off.toFixed(2)}% from the last price ${fmt(last)}; the collar is ${fmt(limits.priceCollarPct)}%`,
      );
  }
  const factor = restorationFactor(state, c.symbol);
  const accountFactor = restorationFactor(state);
  if (limits.maxOrdersPerSecond !== undefined) {
    const allowed = Math.max(1, Math.floor(limits.maxOrdersPerSecond * accountFactor));
    const recent = state.recentOrders.filter((t) => t > nowMs - 1000).length;
    if (recent >= allowed)
      return deny(
        'ORDER_RATE',
        `${recent} orders in the last second; the limit is ${scaled(allowed, accountFactor)} per second`,
      );
  }
  const price = referencePrice(state, c);
  const notional = c.qty * price;
  if (limits.maxOrderNotional !== undefined) {
    const max = limits.maxOrderNotional * factor;
    if (notional > max)
      return deny(
        'MAX_ORDER_NOTIONAL',
        `order notional ${fmt(notional)} (${fmt(c.qty)} x ${fmt(price)}) exceeds ${scaled(max, factor)}`,
      );
  }
  const maxPos = positionLimit(limits, c.symbol);
  if (maxPos !== undefined) {
    const pos = state.positions[c.symbol]?.qty ?? 0;
    const sameSide = openQty(state, c.symbol, c.side, exclude, book);
    const before = c.side === 'buy' ? pos + sameSide : pos - sameSide;
    const after = c.side === 'buy' ? before + c.qty : before - c.qty;
    const max = Math.floor(maxPos * factor);
    if (Math.abs(after) > max && Math.abs(after) > Math.abs(before))
      return deny(
        'MAX_POSITION',
        `${c.symbol} position would reach ${fmt(after)} shares with open orders (position ${fmt(pos)}); the limit is ${scaled(max, factor)}`,
      );
  }
  const { before: grossBefore, after: grossAfter } = grossExposures(state, c, exclude, book);
  const adds = grossAfter > grossBefore + 1e-9;
  if (limits.maxGrossExposure !== undefined && adds) {
    const max = limits.maxGrossExposure * accountFactor;
    if (grossAfter > max)
      return deny(
        'MAX_GROSS_EXPOSURE',
        `gross exposure would reach ${fmt(grossAfter)} including open orders (now ${fmt(grossBefore)}); the limit is ${scaled(max, accountFactor)}`,
      );
  }
  for (const [name, group] of Object.entries(limits.correlationGroups ?? {})) {
    if (!group.symbols.includes(c.symbol)) continue;
    const before = group.symbols.reduce(
      (sum, s) => sum + symbolExposure(state, s, undefined, exclude, book),
      0,
    );
    const after = group.symbols.reduce((sum, s) => sum + symbolExposure(state, s, c, exclude, book), 0);
    const max = group.maxExposure * accountFactor;
    if (after > max && after > before + 1e-9)
      return deny(
        'CORRELATION_EXPOSURE',
        `correlated group ${name} (${group.symbols.join(', ')}) would reach ${fmt(after)} exposure (now ${fmt(before)}); the limit is ${scaled(max, accountFactor)}`,
      );
  }
  const eq = equity(state);
  if (limits.maxLeverage !== undefined && adds) {
    const leverage = eq > 0 ? grossAfter / eq : Number.POSITIVE_INFINITY;
    if (leverage > limits.maxLeverage)
      return deny(
        'MAX_LEVERAGE',
        `leverage would reach ${Number.isFinite(leverage) ? leverage.toFixed(2) : 'infinite'}x (gross ${fmt(grossAfter)} / equity ${fmt(eq)}); the limit is ${fmt(limits.maxLeverage)}x`,
      );
  }
  if (c.side === 'buy') {
    let reserved = 0;
    for (const s of bookSymbols(state)) reserved += book(s).buyNotional;
    const margin =
      limits.maxLeverage !== undefined && limits.maxLeverage > 1
        ? Math.max(0, eq) * (limits.maxLeverage - 1)
        : 0;
    const power = state.cash + margin - reserved;
    if (notional > power + 1e-9)
      return deny(
        'INSUFFICIENT_BUYING_POWER',
        `order needs ${fmt(notional)}; buying power is ${fmt(Math.max(0, power))} (cash ${fmt(state.cash)}${margin > 0 ? ` + margin ${fmt(margin)}` : ''} - ${fmt(reserved)} reserved by open buys)`,
      );
  }
  return null;
}

/** Codes an order can pass by being smaller. */
export const SIZE_CODES: ReadonlySet<DenialCode> = new Set([
  'MAX_ORDER_NOTIONAL',
  'MAX_POSITION',
  'MAX_GROSS_EXPOSURE',
  'MAX_LEVERAGE',
  'CORRELATION_EXPOSURE',
  'INSUFFICIENT_BUYING_POWER',
]);

/** The largest quantity below c.qty that passes every check, or 0. Only called when sizing was asked. */
export function fitQuantity(state: AccountState, c: Candidate, nowMs: number, exclude?: string): number {
  let lo = 0;
  let hi = c.qty - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (checkOrder(state, { ...c, qty: mid }, nowMs, exclude) === null) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
