/**
 * The account's state, folded from its events by `apply` (pure: the same events always give the same
 * state, which is what makes a restart rebuild exactly what was there). Also the order state
 * machine: every status change goes through `transition`, which refuses what the table does not
 * allow.
 */
import {
  type BreakerRecord,
  DEFAULT_RESTORATION,
  type Limits,
  type Order,
  type OrderStatus,
  type ReconciliationDifference,
  type Session,
  type StateChange,
  type TradingEvent,
  type TradingStateName,
} from './types';

/** Allowed status changes. Terminal statuses have no way out. */
export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  pending_new: ['new', 'rejected', 'pending_cancel', 'partially_filled', 'filled', 'expired', 'canceled'],
  new: ['partially_filled', 'filled', 'pending_cancel', 'pending_replace', 'canceled', 'expired', 'rejected'],
  partially_filled: [
    'partially_filled',
    'filled',
    'pending_cancel',
    'pending_replace',
    'canceled',
    'expired',
  ],
  // A fill can race a cancel or a replace: partial fills keep the pending status, a full one wins.
  pending_cancel: [
    'pending_cancel',
    'canceled',
    'filled',
    'new',
    'partially_filled',
    'pending_new',
    'expired',
  ],
  pending_replace: [
    'pending_replace',
    'replaced',
    'filled',
    'new',
    'partially_filled',
    'canceled',
    'expired',
  ],
  filled: [],
  canceled: [],
  replaced: [],
  rejected: [],
  denied: [],
  expired: [],
};

export const TERMINAL: ReadonlySet<OrderStatus> = new Set([
  'filled',
  'canceled',
  'replaced',
  'rejected',
  'denied',
  'expired',
]);

export class InvalidTransitionError extends Error {
  constructor(id: string, from: OrderStatus, to: OrderStatus) {
    super(`order ${id}: ${from} -> ${to} is not an allowed transition`);
    this.name = 'InvalidTransitionError';
  }
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

function transition(order: Order, to: OrderStatus): OrderStatus {
  if (!canTransition(order.status, to))
    throw new InvalidTransitionError(order.clientOrderId, order.status, to);
  return to;
}

export interface Position {
  qty: number;
  avgPrice: number;
}

export interface Restoring {
  factor: number;
  step: number;
  nextAt: string | null;
}

export interface AccountState {
  version: number;
  now: string;
  openedAt: string;
  cash: number;
  realizedPnl: number;
  sessionOpenEquity: number;
  peakEquity: number;
  limits: Limits;
  limitsVersion: number;
  orders: Record<string, Order>;
  orderIds: string[];
  /** Ids of the open orders, in submission order (the risk checks read only these). */
  open: Set<string>;
  positions: Record<string, Position>;
  prices: Record<string, number>;
  /** Recent prices per symbol within the volatility window (time ms, price). */
  priceHistory: Record<string, [number, number][]>;
  session: Session;
  sessionOverride: boolean;
  exchangeHalts: string[];
  states: Record<string, { state: TradingStateName; cause: string }>;
  stateLog: StateChange[];
  breakers: BreakerRecord[];
  /** Ids (index in `breakers`) of trips not yet reset or recovered. */
  activeBreakers: number[];
  restoring: Record<string, Restoring>;
  /** Times (ms) of recent submits and modifies, for the order-rate limit. */
  recentOrders: number[];
  brokerRejectsToday: number;
  alerts: { at: string; severity: string; source: string; message: string }[];
  /**
   * Reconciliation differences recorded in this stream, by their deterministic id (a run that finds
   * one again records nothing), with who resolved a dispute.
   */
  reconciliation: Record<
    string,
    ReconciliationDifference & { at: string; resolvedAt: string | null; resolvedBy: string | null }
  >;
}

export function emptyState(): AccountState {
  return {
    version: 0,
    now: new Date(0).toISOString(),
    openedAt: new Date(0).toISOString(),
    cash: 0,
    realizedPnl: 0,
    sessionOpenEquity: 0,
    peakEquity: 0,
    limits: {},
    limitsVersion: 0,
    orders: {},
    orderIds: [],
    open: new Set(),
    positions: {},
    prices: {},
    priceHistory: {},
    session: 'closed',
    sessionOverride: false,
    exchangeHalts: [],
    states: { account: { state: 'active', cause: 'opened' } },
    stateLog: [],
    breakers: [],
    activeBreakers: [],
    restoring: {},
    recentOrders: [],
    brokerRejectsToday: 0,
    alerts: [],
    reconciliation: {},
  };
}

export const OPEN_STATUSES: ReadonlySet<OrderStatus> = new Set([
  'pending_new',
  'new',
  'partially_filled',
  'pending_cancel',
  'pending_replace',
]);

export function isOpen(order: Order): boolean {
  return OPEN_STATUSES.has(order.status);
}

export function remaining(order: Order): number {
  return Math.max(0, order.qty - order.filledQty);
}

export function markPrice(state: AccountState, symbol: string): number | undefined {
  return state.prices[symbol] ?? state.positions[symbol]?.avgPrice;
}

export function equity(state: AccountState): number {
  let value = state.cash;
  for (const [symbol, p] of Object.entries(state.positions)) value += p.qty * (markPrice(state, symbol) ?? 0);
  return value;
}

export function unrealizedPnl(state: AccountState): number {
  let pnl = 0;
  for (const [symbol, p] of Object.entries(state.positions))
    pnl += p.qty * ((markPrice(state, symbol) ?? p.avgPrice) - p.avgPrice);
  return pnl;
}

export function positionGross(state: AccountState): number {
  let gross = 0;
  for (const [symbol, p] of Object.entries(state.positions))
    gross += Math.abs(p.qty) * (markPrice(state, symbol) ?? 0);
  return gross;
}

export function round(value: number, places = 6): number {
  const f = 10 ** places;
  const r = Math.round(value * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

/** Open orders of one symbol aggregated per side: open quantity and the notional they reserve. */
export interface SideBook {
  buyQty: number;
  sellQty: number;
  buyNotional: number;
  sellNotional: number;
}

/**
 * The open-order book kept up to date as events are folded, so a risk check reads one aggregate per
 * symbol instead of scanning every open order. `setOrder`, `setPosition` and price updates mark the
 * symbol they touch; its aggregate is recomputed (over that symbol's open orders only) on the next
 * read. Sums run in a fixed order (a symbol's orders in submission order, symbols sorted), so a
 * rebuilt state computes bit-identical figures.
 */
interface BookIndex {
  /** Open order ids per symbol, in submission order. */
  readonly bySymbol: Map<string, Set<string>>;
  readonly sides: Map<string, SideBook>;
  readonly dirty: Set<string>;
  /** Every symbol with a position or an open order (sorted), or null when a new one appeared. */
  symbols: string[] | null;
}

const books = new WeakMap<AccountState, BookIndex>();

function bookIndex(state: AccountState): BookIndex {
  let index = books.get(state);
  if (!index) {
    index = { bySymbol: new Map(), sides: new Map(), dirty: new Set(), symbols: null };
    for (const id of state.open) {
      const o = state.orders[id] as Order;
      const ids = index.bySymbol.get(o.symbol) ?? new Set<string>();
      index.bySymbol.set(o.symbol, ids);
      ids.add(id);
      index.dirty.add(o.symbol);
    }
    books.set(state, index);
  }
  return index;
}

function bookChanged(state: AccountState, symbol: string): void {
  const index = books.get(state);
  if (!index) return;
  index.dirty.add(symbol);
  if (
    index.symbols &&
    (index.bySymbol.has(symbol) || symbol in state.positions) &&
    !index.symbols.includes(symbol)
  )
    index.symbols = null;
}

function trackOpen(state: AccountState, order: Order, open: boolean): void {
  const index = books.get(state);
  if (!index) return;
  const ids = index.bySymbol.get(order.symbol);
  if (!open) ids?.delete(order.clientOrderId);
  else if (ids) ids.add(order.clientOrderId);
  else index.bySymbol.set(order.symbol, new Set([order.clientOrderId]));
}

/** The price an open order reserves notional at: its limit, or the symbol's mark for a market order. */
export function orderPrice(state: AccountState, o: Order): number {
  return o.type === 'limit' && o.limitPrice !== null ? o.limitPrice : (markPrice(state, o.symbol) ?? 0);
}

/** One symbol's open orders aggregated, optionally without one order (the one being replaced). */
export function sideBookOf(state: AccountState, symbol: string, exclude?: string): SideBook {
  const b: SideBook = { buyQty: 0, sellQty: 0, buyNotional: 0, sellNotional: 0 };
  const ids = bookIndex(state).bySymbol.get(symbol);
  if (!ids) return b;
  for (const id of ids) {
    if (id === exclude) continue;
    const o = state.orders[id] as Order;
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

const EMPTY_SIDE: SideBook = Object.freeze({ buyQty: 0, sellQty: 0, buyNotional: 0, sellNotional: 0 });

/** A symbol's open-order aggregate, from the incremental book (recomputed only when it changed). */
export function sideBook(state: AccountState, symbol: string): SideBook {
  const index = bookIndex(state);
  if (index.dirty.size > 0) {
    for (const s of index.dirty) {
      const ids = index.bySymbol.get(s);
      if (ids && ids.size > 0) index.sides.set(s, sideBookOf(state, s));
      else {
        index.sides.delete(s);
        if (ids) index.bySymbol.delete(s);
      }
    }
    index.dirty.clear();
  }
  return index.sides.get(symbol) ?? EMPTY_SIDE;
}

/** Every symbol with a position or open orders, sorted (the fixed order exposure sums run in). */
export function bookSymbols(state: AccountState): readonly string[] {
  const index = bookIndex(state);
  if (index.dirty.size > 0) sideBook(state, '');
  if (!index.symbols) {
    const all = new Set([...Object.keys(state.positions), ...index.bySymbol.keys()]);
    index.symbols = [...all].sort();
  }
  return index.symbols;
}

/** What a batch of events changed: the projection rows an append must write (nothing else). */
export interface Changes {
  readonly orders: Set<string>;
  readonly positions: Set<string>;
}

const watchers = new WeakMap<AccountState, Changes>();

/** Collects the ids of the orders and the symbols of the positions that change from now on. */
export function watchChanges(state: AccountState): Changes {
  const changes: Changes = { orders: new Set(), positions: new Set() };
  watchers.set(state, changes);
  return changes;
}

/**
 * Records a submit or modify at `t` (ms) for the order-rate limit, dropping the times a second or
 * more before it from the front. In place: a copy of the window per order made a rebuild quadratic
 * in the orders of one second (10,000 in one second took 1.4 s). Events come in time order (the
 * engine never dates one before the state's clock), so the expired times are at the front; the
 * risk check counts only the last second's anyway.
 */
function noteOrderTime(state: AccountState, t: number): void {
  const times = state.recentOrders;
  let expired = 0;
  while (expired < times.length && (times[expired] as number) <= t - 1000) expired += 1;
  if (expired > 0) times.splice(0, expired);
  times.push(t);
}

function setOrder(state: AccountState, order: Order): void {
  watchers.get(state)?.orders.add(order.clientOrderId);
  const previous = state.orders[order.clientOrderId];
  if (!previous) state.orderIds.push(order.clientOrderId);
  state.orders[order.clientOrderId] = order;
  const open = OPEN_STATUSES.has(order.status);
  if (open) state.open.add(order.clientOrderId);
  else state.open.delete(order.clientOrderId);
  trackOpen(state, order, open);
  bookChanged(state, order.symbol);
}

function setPosition(state: AccountState, symbol: string, position: Position): void {
  watchers.get(state)?.positions.add(symbol);
  state.positions[symbol] = position;
  // A market order's reserved notional is marked to the last price, or the position's average.
  bookChanged(state, symbol);
}

function order(state: AccountState, id: string): Order {
  const o = state.orders[id];
  if (!o) throw new Error(`event refers to unknown order ${id}`);
  return o;
}

function applyFill(state: AccountState, o: Order, qty: number, price: number): void {
  const signed = o.side === 'buy' ? qty : -qty;
  state.cash -= signed * price;
  const pos = state.positions[o.symbol] ?? { qty: 0, avgPrice: 0 };
  if (pos.qty === 0 || Math.sign(pos.qty) === Math.sign(signed)) {
    const total = Math.abs(pos.qty) + qty;
    pos.avgPrice = (Math.abs(pos.qty) * pos.avgPrice + qty * price) / total;
    pos.qty += signed;
  } else {
    const closing = Math.min(Math.abs(pos.qty), qty);
    state.realizedPnl += closing * (price - pos.avgPrice) * Math.sign(pos.qty);
    pos.qty += signed;
    if (pos.qty === 0) pos.avgPrice = 0;
    else if (Math.sign(pos.qty) === Math.sign(signed)) pos.avgPrice = price;
  }
  setPosition(state, o.symbol, pos);
  const filled = o.filledQty + qty;
  const avg = ((o.avgFillPrice ?? 0) * o.filledQty + price * qty) / filled;
  let status: OrderStatus;
  if (filled >= o.qty) status = 'filled';
  else if (o.status === 'pending_cancel' || o.status === 'pending_replace') status = o.status;
  else status = 'partially_filled';
  setOrder(state, {
    ...o,
    filledQty: filled,
    avgFillPrice: avg,
    status: transition(o, status),
    statusBeforePending: o.statusBeforePending === null ? null : 'partially_filled',
  });
}

/** Folds one event into the state (in place) and returns it. */
export function apply(state: AccountState, event: TradingEvent): AccountState {
  state.version += 1;
  state.now = event.at;
  switch (event.type) {
    case 'AccountOpened': {
      state.openedAt = event.at;
      state.cash = event.cash;
      state.limits = event.limits;
      state.limitsVersion = 1;
      for (const [symbol, p] of Object.entries(event.positions))
        setPosition(state, symbol, { qty: p.qty, avgPrice: p.avgPrice });
      state.sessionOpenEquity = equity(state);
      state.peakEquity = state.sessionOpenEquity;
      break;
    }
    case 'LimitsUpdated':
      state.limits = event.limits;
      state.limitsVersion = event.version;
      break;
    case 'PricesUpdated': {
      const t = Date.parse(event.at);
      const window = (state.limits.volatilityHalt?.windowSeconds ?? 0) * 1000;
      for (const [symbol, price] of Object.entries(event.prices)) {
        state.prices[symbol] = price;
        bookChanged(state, symbol);
        const history = (state.priceHistory[symbol] ?? []).filter(([at]) => at >= t - window);
        history.push([t, price]);
        state.priceHistory[symbol] = history;
      }
      state.peakEquity = Math.max(state.peakEquity, equity(state));
      break;
    }
    case 'SessionChanged':
      if (event.session === 'open') {
        state.sessionOpenEquity = equity(state);
        state.peakEquity = state.sessionOpenEquity;
        state.brokerRejectsToday = 0;
      }
      state.session = event.session;
      state.sessionOverride = event.override;
      break;
    case 'SymbolHaltChanged':
      state.exchangeHalts = event.halted
        ? [...new Set([...state.exchangeHalts, event.symbol])].sort()
        : state.exchangeHalts.filter((s) => s !== event.symbol);
      break;
    case 'OrderSubmitted': {
      if (state.orders[event.order.clientOrderId])
        throw new Error(`order ${event.order.clientOrderId} exists`);
      setOrder(state, event.order);
      const t = Date.parse(event.at);
      if (!event.order.liquidation) noteOrderTime(state, t);
      break;
    }
    case 'OrderDenied':
      if (state.orders[event.order.clientOrderId])
        throw new Error(`order ${event.order.clientOrderId} exists`);
      setOrder(state, event.order);
      break;
    case 'DuplicateSubmitDenied':
    case 'CommandRefused':
    case 'BrokerReportIgnored':
    case 'BreakerResetRefused':
      break;
    case 'OrderAccepted': {
      const o = order(state, event.clientOrderId);
      if (o.status === 'pending_new') setOrder(state, { ...o, status: transition(o, 'new') });
      else if (o.statusBeforePending === 'pending_new') setOrder(state, { ...o, statusBeforePending: 'new' });
      break;
    }
    case 'OrderFilled':
      applyFill(state, order(state, event.clientOrderId), event.qty, event.price);
      break;
    case 'CancelRequested': {
      const o = order(state, event.clientOrderId);
      setOrder(state, { ...o, status: transition(o, 'pending_cancel'), statusBeforePending: o.status });
      break;
    }
    case 'OrderCanceled': {
      const o = order(state, event.clientOrderId);
      setOrder(state, { ...o, status: transition(o, 'canceled'), statusBeforePending: null });
      break;
    }
    case 'CancelRejected':
    case 'ReplaceRejected': {
      const o = order(state, event.clientOrderId);
      if (o.status === 'pending_cancel' || o.status === 'pending_replace') {
        const back = o.statusBeforePending ?? (o.filledQty > 0 ? 'partially_filled' : 'new');
        setOrder(state, { ...o, status: transition(o, back), statusBeforePending: null });
      }
      if (event.type === 'ReplaceRejected') {
        for (const id of state.orderIds) {
          const n = state.orders[id] as Order;
          if (n.replaces === o.clientOrderId && n.status === 'pending_new')
            setOrder(state, { ...n, status: transition(n, 'rejected') });
        }
      }
      break;
    }
    case 'ReplaceRequested': {
      const o = order(state, event.clientOrderId);
      setOrder(state, { ...o, status: transition(o, 'pending_replace'), statusBeforePending: o.status });
      noteOrderTime(state, Date.parse(event.at));
      // The replacement is recorded now, as pending_new, so its quantity is reserved against the limits.
      setOrder(state, {
        ...o,
        clientOrderId: event.newClientOrderId,
        qty: event.qty - o.filledQty,
        requestedQty: event.qty,
        limitPrice: event.limitPrice,
        status: 'pending_new',
        filledQty: 0,
        avgFillPrice: null,
        submittedAt: event.at,
        session: state.session,
        replaces: o.clientOrderId,
        replacedBy: null,
        statusBeforePending: null,
      });
      break;
    }
    case 'OrderReplaced': {
      const o = order(state, event.clientOrderId);
      setOrder(state, {
        ...o,
        status: transition(o, 'replaced'),
        replacedBy: event.newClientOrderId,
        statusBeforePending: null,
      });
      const n = order(state, event.newClientOrderId);
      const qty = Math.max(0, n.requestedQty - o.filledQty);
      // A breaker may already have asked to cancel the replacement: it stays pending_cancel.
      if (n.status === 'pending_cancel') setOrder(state, { ...n, qty, statusBeforePending: 'new' });
      else if (n.status === 'pending_new') setOrder(state, { ...n, qty, status: transition(n, 'new') });
      // A fill reached the replacement before the broker's replace report: it keeps its status.
      else setOrder(state, { ...n, qty });
      break;
    }
    case 'OrderRejected': {
      const o = order(state, event.clientOrderId);
      setOrder(state, { ...o, status: transition(o, 'rejected'), statusBeforePending: null });
      state.brokerRejectsToday += 1;
      break;
    }
    case 'OrderExpired': {
      const o = order(state, event.clientOrderId);
      setOrder(state, { ...o, status: transition(o, 'expired'), statusBeforePending: null });
      break;
    }
    case 'BreakerTripped':
      state.breakers.push(event.record);
      state.activeBreakers.push(event.record.id);
      break;
    case 'BreakerActionsRecorded': {
      const b = state.breakers[event.id];
      if (b) state.breakers[event.id] = { ...b, actions: [...b.actions, ...event.actions] };
      break;
    }
    case 'BreakerReset': {
      for (const id of state.activeBreakers) {
        const b = state.breakers[id];
        if (b && b.breaker === event.breaker)
          state.breakers[id] = { ...b, resetAt: event.at, resetBy: event.by };
      }
      state.activeBreakers = state.activeBreakers.filter(
        (id) => state.breakers[id]?.breaker !== event.breaker,
      );
      break;
    }
    case 'TradingStateChanged':
      state.states[event.scope] = { state: event.state, cause: event.cause };
      state.stateLog.push({ at: event.at, scope: event.scope, state: event.state, cause: event.cause });
      break;
    case 'RestorationStepped': {
      if (event.factor >= 1) delete state.restoring[event.scope];
      else {
        const steps = (state.limits.restoration ?? DEFAULT_RESTORATION).steps;
        state.restoring[event.scope] = {
          factor: event.factor,
          step: Math.max(0, steps.indexOf(event.factor)),
          nextAt: event.nextAt,
        };
      }
      break;
    }
    case 'ReconciliationDifferenceRecorded':
      if (!state.reconciliation[event.difference.id])
        state.reconciliation[event.difference.id] = {
          ...event.difference,
          at: event.at,
          resolvedAt: null,
          resolvedBy: null,
        };
      break;
    case 'ReconciliationAdjusted':
      if (event.symbol !== null && event.qty !== null)
        setPosition(state, event.symbol, {
          qty: event.qty,
          avgPrice: event.qty === 0 ? 0 : (event.avgPrice ?? 0),
        });
      if (event.cash !== null) state.cash = event.cash;
      break;
    case 'ReconciliationDifferenceResolved': {
      const d = state.reconciliation[event.differenceId];
      if (d) state.reconciliation[event.differenceId] = { ...d, resolvedAt: event.at, resolvedBy: event.by };
      break;
    }
    case 'IntegrityRecovered': {
      // The damaged rows are skipped by the fold: this event's own version follows the stored ones.
      state.version = event.through + 1;
      for (const o of event.orders) setOrder(state, o);
      for (const symbol of Object.keys(state.positions))
        if (!(symbol in event.positions)) setPosition(state, symbol, { qty: 0, avgPrice: 0 });
      for (const [symbol, p] of Object.entries(event.positions))
        setPosition(state, symbol, { qty: p.qty, avgPrice: p.avgPrice });
      state.cash = event.cash;
      break;
    }
    case 'AlertRaised':
      state.alerts.push({
        at: event.at,
        severity: event.severity,
        source: event.source,
        message: event.message,
      });
      break;
  }
  return state;
}

export function rebuild(events: readonly TradingEvent[]): AccountState {
  const state = emptyState();
  for (const e of events) apply(state, e);
  return state;
}

/** The projections the engine keeps in PostgreSQL and the replay writes to result.json. */
export interface Projections {
  orders: Record<
    string,
    {
      status: OrderStatus;
      filledQty: number;
      avgFillPrice: number | null;
      denial: { code: string; detail: string } | null;
    }
  >;
  positions: Record<string, { qty: number; avgPrice: number }>;
  account: { cash: number; equity: number; realizedPnl: number; unrealizedPnl: number; dailyPnl: number };
  tradingState: StateChange[];
  breakers: {
    at: string;
    breaker: string;
    actions: string[];
    resetAt: string | null;
    resetBy: string | null;
  }[];
}

export function orderView(o: Order): Projections['orders'][string] {
  return {
    status: o.status,
    filledQty: o.filledQty,
    avgFillPrice: o.avgFillPrice === null ? null : round(o.avgFillPrice),
    denial: o.denial ? { code: o.denial.code, detail: o.denial.detail } : null,
  };
}

export function accountView(state: AccountState): Projections['account'] {
  const eq = equity(state);
  return {
    cash: round(state.cash),
    equity: round(eq),
    realizedPnl: round(state.realizedPnl),
    unrealizedPnl: round(unrealizedPnl(state)),
    dailyPnl: round(eq - state.sessionOpenEquity),
  };
}

export function breakerView(b: BreakerRecord): Projections['breakers'][number] {
  return { at: b.at, breaker: b.breaker, actions: [...b.actions], resetAt: b.resetAt, resetBy: b.resetBy };
}

export function positionViews(state: AccountState): Projections['positions'] {
  const positions: Projections['positions'] = {};
  for (const symbol of Object.keys(state.positions).sort()) {
    const p = state.positions[symbol] as Position;
    positions[symbol] = { qty: p.qty, avgPrice: round(p.avgPrice) };
  }
  return positions;
}

export function projections(state: AccountState): Projections {
  const orders: Projections['orders'] = {};
  for (const id of state.orderIds) orders[id] = orderView(state.orders[id] as Order);
  return {
    orders,
    positions: positionViews(state),
    account: accountView(state),
    tradingState: state.stateLog.map((s) => ({ ...s })),
    breakers: state.breakers.map(breakerView),
  };
}
