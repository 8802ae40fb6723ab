/**
 * One simulated brokerage account of the broker simulator: orders, fills, positions, cash, its
 * trade-update frames and the fault knobs that apply to it. Modelled on Alpaca's trading API
 * (statuses, events, numbers as strings, rejects with Alpaca's codes and messages). Pure state: the
 * HTTP/WebSocket server (server.ts) decides when a request sees a fault; this module decides what
 * an order does.
 */
import { randomUUID } from 'node:crypto';

export type FaultKind =
  | 'http429'
  | 'timeout'
  | 'disconnect'
  | 'auth'
  | 'maintenance'
  | 'invalid'
  | 'lost_fill'
  | 'server_error'
  | 'fill_race_cancel'
  | 'reject';

export const FAULT_KINDS: readonly FaultKind[] = [
  'http429',
  'timeout',
  'disconnect',
  'auth',
  'maintenance',
  'invalid',
  'lost_fill',
  'server_error',
  'fill_race_cancel',
  'reject',
];

/** Alpaca's reject reasons (HTTP 403 with these codes and messages). */
export const REJECT_REASONS = {
  buying_power: { code: 40310000, message: 'insufficient buying power' },
  pdt: { code: 40310100, message: 'trade denied due to pattern day trading protection' },
  shorting: { code: 40310000, message: 'asset is not shortable' },
} as const;

export interface Fault {
  readonly kind: FaultKind;
  /** Active until this account-clock time (ms), when durationSeconds was given. */
  readonly until: number | null;
  /** How many more requests it hits (null: until it expires or is cleared). */
  remaining: number | null;
  /** Only requests about this client order id. */
  readonly clientOrderId: string | null;
  /** For `reject`: one of REJECT_REASONS or a free text. */
  readonly reason: string | null;
}

export interface SimOrder {
  id: string;
  client_order_id: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  filled_qty: number;
  filled_avg_price: number | null;
  type: 'market' | 'limit';
  limit_price: number | null;
  time_in_force: 'day' | 'gtc';
  status: string;
  created_at: string;
  updated_at: string;
  filled_at: string | null;
  canceled_at: string | null;
  expired_at: string | null;
  replaced_at: string | null;
  replaced_by: string | null;
  replaces: string | null;
}

export interface Position {
  qty: number;
  avgPrice: number;
}

/** One execution as Alpaca's account activities list it (activity_type FILL). */
export interface Activity {
  readonly id: string;
  readonly activity_type: 'FILL';
  readonly transaction_time: string;
  readonly type: 'fill' | 'partial_fill';
  price: number;
  readonly qty: number;
  readonly side: 'buy' | 'sell';
  readonly symbol: string;
  readonly leaves_qty: number;
  readonly order_id: string;
  readonly cum_qty: number;
  readonly order_status: string;
}

export interface Frame {
  readonly event: string;
  readonly order: SimOrder;
  readonly execution_id?: string;
  readonly price?: number;
  readonly qty?: number;
  readonly position_qty?: number;
}

export class SimError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const OPEN = new Set([
  'new',
  'accepted',
  'partially_filled',
  'pending_new',
  'pending_cancel',
  'pending_replace',
]);

export function isOpenStatus(status: string): boolean {
  return OPEN.has(status);
}

export interface AccountSetup {
  readonly keyId: string;
  readonly secret: string;
  readonly cash?: number;
  readonly positions?: Record<string, Position>;
  /** immediate: marketable orders fill at the last price on arrival, resting limits when it crosses. */
  readonly fill?: 'immediate' | 'none';
  readonly rateLimitPerMinute?: number;
}

export class SimAccount {
  readonly keyId: string;
  readonly secret: string;
  readonly id = randomUUID();
  cash: number;
  readonly positions = new Map<string, Position>();
  readonly orders = new Map<string, SimOrder>();
  readonly byClient = new Map<string, string>();
  readonly prices = new Map<string, number>();
  fill: 'immediate' | 'none';
  rateLimitPerMinute: number;
  latencyMs = 0;
  /** Fills of one order come in this many parts (1 = whole). */
  partialFills = 1;
  faults: Fault[] = [];
  /** Manual clock (ms) set through the control endpoint; null = wall clock. */
  clockMs: number | null = null;
  rate = { windowStart: 0, count: 0 };
  private exec = 0;
  /** Every execution, in order: the trade history (GET /v2/account/activities?activity_types=FILL). */
  readonly activities: Activity[] = [];
  /** Frames are handed to the stream (or dropped) through this. */
  emit: (frame: Frame) => void = () => undefined;
  readonly stats: Record<string, number> = {};

  constructor(setup: AccountSetup) {
    this.keyId = setup.keyId;
    this.secret = setup.secret;
    this.cash = setup.cash ?? 100_000;
    for (const [s, p] of Object.entries(setup.positions ?? {})) this.positions.set(s, { ...p });
    this.fill = setup.fill ?? 'immediate';
    this.rateLimitPerMinute = setup.rateLimitPerMinute ?? 200;
  }

  now(): number {
    return this.clockMs ?? Date.now();
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  count(what: string): void {
    this.stats[what] = (this.stats[what] ?? 0) + 1;
  }

  // --- faults ---------------------------------------------------------------------------------

  addFault(
    kind: FaultKind,
    options: { durationSeconds?: number; count?: number; clientOrderId?: string; reason?: string },
  ): Fault {
    const timed = options.durationSeconds !== undefined;
    const fault: Fault = {
      kind,
      until: timed ? this.now() + (options.durationSeconds as number) * 1000 : null,
      // Without a duration or a count a fault hits once (auth, maintenance and 429 storms usually take a duration).
      remaining: options.count ?? (timed ? null : 1),
      clientOrderId: options.clientOrderId ?? null,
      reason: options.reason ?? null,
    };
    this.faults.push(fault);
    return fault;
  }

  /** The active fault of a kind that applies (to this client order id, when given), consuming one use. */
  takeFault(kind: FaultKind, clientOrderId?: string, consume = true): Fault | undefined {
    const now = this.now();
    this.faults = this.faults.filter(
      (f) => (f.until === null || f.until > now) && (f.remaining === null || f.remaining > 0),
    );
    const f = this.faults.find(
      (x) => x.kind === kind && (x.clientOrderId === null || x.clientOrderId === clientOrderId),
    );
    if (f && consume && f.remaining !== null) f.remaining -= 1;
    return f;
  }

  // --- orders ---------------------------------------------------------------------------------

  private touch(o: SimOrder, status: string): void {
    o.status = status;
    o.updated_at = this.iso();
  }

  order(id: string): SimOrder | undefined {
    return this.orders.get(id);
  }

  orderByClientId(cid: string): SimOrder | undefined {
    const id = this.byClient.get(cid);
    return id ? this.orders.get(id) : undefined;
  }

  submit(body: Record<string, unknown>): SimOrder {
    const problems: string[] = [];
    const symbol = typeof body.symbol === 'string' && body.symbol !== '' ? body.symbol : null;
    if (!symbol) problems.push('symbol is required');
    const side = body.side === 'buy' || body.side === 'sell' ? body.side : null;
    if (!side) problems.push('side must be buy or sell');
    const qty = Number(body.qty);
    if (!Number.isFinite(qty) || qty <= 0) problems.push('qty must be a positive number');
    const type = body.type === 'market' || body.type === 'limit' ? body.type : null;
    if (!type) problems.push('type must be market or limit');
    const tif = body.time_in_force === 'day' || body.time_in_force === 'gtc' ? body.time_in_force : null;
    if (!tif) problems.push('time_in_force must be day or gtc');
    const limit =
      body.limit_price === undefined || body.limit_price === null ? null : Number(body.limit_price);
    if (type === 'limit' && !(limit !== null && limit > 0))
      problems.push('limit_price is required for limit orders');
    if (problems.length > 0) throw new SimError(422, 40010000, problems.join('; '));
    const cid =
      typeof body.client_order_id === 'string' && body.client_order_id !== ''
        ? body.client_order_id
        : randomUUID();
    if (this.byClient.has(cid)) throw new SimError(422, 40010001, 'client_order_id must be unique');
    const now = this.iso();
    const o: SimOrder = {
      id: randomUUID(),
      client_order_id: cid,
      symbol: symbol as string,
      side: side as 'buy' | 'sell',
      qty,
      filled_qty: 0,
      filled_avg_price: null,
      type: type as 'market' | 'limit',
      limit_price: limit,
      time_in_force: tif as 'day' | 'gtc',
      status: 'new',
      created_at: now,
      updated_at: now,
      filled_at: null,
      canceled_at: null,
      expired_at: null,
      replaced_at: null,
      replaced_by: null,
      replaces: null,
    };
    this.orders.set(o.id, o);
    this.byClient.set(cid, o.id);
    this.emit({ event: 'new', order: o });
    this.tryFill(o);
    return o;
  }

  /** Alpaca: 204 and a `canceled` frame, 422 when the order is no longer cancelable. */
  cancel(id: string): void {
    const o = this.orders.get(id);
    if (!o) throw new SimError(404, 40410000, 'order not found');
    const race = this.takeFault('fill_race_cancel', o.client_order_id);
    if (race && isOpenStatus(o.status)) {
      // The fill wins the race: the order fills at the last price (or its limit) before the cancel lands.
      const price = this.prices.get(o.symbol) ?? o.limit_price ?? o.filled_avg_price ?? 1;
      this.book(o, o.qty - o.filled_qty, price);
    }
    if (!isOpenStatus(o.status)) throw new SimError(422, 42210000, `order is not cancelable (${o.status})`);
    o.canceled_at = this.iso();
    this.touch(o, 'canceled');
    this.emit({ event: 'canceled', order: o });
  }

  /** Alpaca's PATCH: the original ends `replaced`, a new order works the new quantity minus what filled. */
  replace(id: string, body: Record<string, unknown>): SimOrder {
    const o = this.orders.get(id);
    if (!o) throw new SimError(404, 40410000, 'order not found');
    if (!isOpenStatus(o.status)) throw new SimError(422, 42210000, `order is not replaceable (${o.status})`);
    const qty = body.qty === undefined ? o.qty : Number(body.qty);
    if (!Number.isFinite(qty) || qty <= o.filled_qty)
      throw new SimError(422, 40010000, 'qty must be above the filled quantity');
    const cid =
      typeof body.client_order_id === 'string' && body.client_order_id !== ''
        ? body.client_order_id
        : randomUUID();
    if (this.byClient.has(cid)) throw new SimError(422, 40010001, 'client_order_id must be unique');
    const limit =
      body.limit_price === undefined || body.limit_price === null ? o.limit_price : Number(body.limit_price);
    const now = this.iso();
    const n: SimOrder = {
      ...o,
      id: randomUUID(),
      client_order_id: cid,
      qty: qty - o.filled_qty,
      filled_qty: 0,
      filled_avg_price: null,
      limit_price: limit,
      status: 'new',
      created_at: now,
      updated_at: now,
      filled_at: null,
      replaces: o.id,
      replaced_by: null,
    };
    o.replaced_by = n.id;
    o.replaced_at = now;
    this.touch(o, 'replaced');
    this.orders.set(n.id, n);
    this.byClient.set(cid, n.id);
    this.emit({ event: 'replaced', order: o });
    this.emit({ event: 'new', order: n });
    this.tryFill(n);
    return n;
  }

  private marketable(o: SimOrder, price: number): boolean {
    if (o.type === 'market' || o.limit_price === null) return true;
    return o.side === 'buy' ? price <= o.limit_price : price >= o.limit_price;
  }

  private tryFill(o: SimOrder): void {
    if (this.fill !== 'immediate' || !isOpenStatus(o.status)) return;
    const price = this.prices.get(o.symbol);
    if (price === undefined || !this.marketable(o, price)) return;
    const parts = Math.max(1, Math.min(this.partialFills, o.qty - o.filled_qty));
    for (let i = parts; i >= 1 && isOpenStatus(o.status); i--) {
      const open = o.qty - o.filled_qty;
      this.book(o, i === 1 ? open : Math.floor(open / i), price);
    }
  }

  /** Books a fill: order, position, cash, and its frame (unless a lost_fill fault swallows it). */
  book(o: SimOrder, qty: number, price: number, options: { silent?: boolean } = {}): void {
    if (qty <= 0) return;
    const before = o.filled_qty;
    o.filled_qty = before + qty;
    o.filled_avg_price = ((o.filled_avg_price ?? 0) * before + price * qty) / o.filled_qty;
    const full = o.filled_qty >= o.qty;
    if (full) o.filled_at = this.iso();
    this.touch(o, full ? 'filled' : 'partially_filled');
    const signed = o.side === 'buy' ? qty : -qty;
    this.cash -= signed * price;
    const p = this.positions.get(o.symbol) ?? { qty: 0, avgPrice: 0 };
    const next = p.qty + signed;
    if (p.qty === 0 || Math.sign(p.qty) === Math.sign(signed))
      p.avgPrice = (p.avgPrice * Math.abs(p.qty) + price * qty) / Math.abs(next);
    else if (Math.sign(next) !== Math.sign(p.qty) && next !== 0) p.avgPrice = price;
    p.qty = next;
    if (p.qty === 0) this.positions.delete(o.symbol);
    else this.positions.set(o.symbol, p);
    this.exec += 1;
    const now = this.now();
    this.activities.push({
      // Alpaca's activity ids: the transaction time (yyyymmddhhmmssSSS) and a unique suffix, so they sort.
      id: `${new Date(now).toISOString().replace(/\D/g, '').slice(0, 17)}::${this.id.slice(0, 8)}-${String(this.exec).padStart(6, '0')}`,
      activity_type: 'FILL',
      transaction_time: new Date(now).toISOString(),
      type: full ? 'fill' : 'partial_fill',
      price,
      qty,
      side: o.side,
      symbol: o.symbol,
      leaves_qty: o.qty - o.filled_qty,
      order_id: o.id,
      cum_qty: o.filled_qty,
      order_status: o.status,
    });
    if (options.silent) return;
    const frame: Frame = {
      event: full ? 'fill' : 'partial_fill',
      order: o,
      execution_id: `${this.id.slice(0, 8)}-${this.exec}`,
      price,
      qty,
      position_qty: p.qty,
    };
    if (this.takeFault('lost_fill', o.client_order_id)) {
      this.count('lost_fill_frames');
      return;
    }
    this.emit(frame);
  }

  setPrices(prices: Record<string, number>): void {
    for (const [s, p] of Object.entries(prices)) this.prices.set(s, p);
    for (const o of [...this.orders.values()])
      if (isOpenStatus(o.status) && o.symbol in prices) this.tryFill(o);
  }

  /** A scripted fill of what is open of the order (through its replacements). */
  scriptedFill(cid: string, qty: number, price: number, silent = false): boolean {
    let o = this.orderByClientId(cid);
    while (o?.replaced_by) o = this.orders.get(o.replaced_by);
    if (!o || !isOpenStatus(o.status)) return false;
    this.book(o, Math.min(qty, o.qty - o.filled_qty), price, { silent });
    return true;
  }

  /** Pending scripted rejects by client order id: the submit is refused (403) when it arrives. */
  readonly pendingRejects = new Map<string, string>();

  /** A scripted reject: the working, unfilled order is rejected now, or its submit when it arrives. */
  scriptedReject(cid: string, reason: string): void {
    let o = this.orderByClientId(cid);
    while (o?.replaced_by) o = this.orders.get(o.replaced_by);
    if (!o) {
      this.pendingRejects.set(cid, reason);
      return;
    }
    if (!isOpenStatus(o.status) || o.filled_qty > 0) return;
    this.touch(o, 'rejected');
    this.emit({ event: 'rejected', order: o });
  }

  /** The exchange ended these orders (day orders at the close), without a frame (the engine expired them). */
  expire(cids: readonly string[], frames = false): void {
    for (const cid of cids) {
      const o = this.orderByClientId(cid);
      if (!o || !isOpenStatus(o.status)) continue;
      o.expired_at = this.iso();
      this.touch(o, 'expired');
      if (frames) this.emit({ event: 'expired', order: o });
    }
  }

  /**
   * Divergence for reconciliation: the broker corrects the price of an order's executions after the
   * fact (a trade correction, FIX ExecType G) with nothing said on the stream: the order's average,
   * the cash and the position's average follow.
   */
  correctFill(cid: string, price: number): boolean {
    const o = this.orderByClientId(cid);
    if (!o || o.filled_qty === 0) return false;
    const signed = o.side === 'buy' ? 1 : -1;
    for (const a of this.activities)
      if (a.order_id === o.id) {
        this.cash -= signed * a.qty * (price - a.price);
        a.price = price;
      }
    const p = this.positions.get(o.symbol);
    if (p && p.qty !== 0 && o.filled_avg_price !== null)
      p.avgPrice += (signed * o.filled_qty * (price - o.filled_avg_price)) / p.qty;
    o.filled_avg_price = price;
    o.updated_at = this.iso();
    return true;
  }

  /** Divergence for reconciliation: the broker's position changes with nothing said to us. */
  divergePosition(symbol: string, qty: number, avgPrice: number): void {
    if (qty === 0) this.positions.delete(symbol);
    else this.positions.set(symbol, { qty, avgPrice });
  }

  equity(): number {
    let value = this.cash;
    for (const [s, p] of this.positions) value += p.qty * (this.prices.get(s) ?? p.avgPrice);
    return value;
  }
}

/** An execution as Alpaca's activities API shows it (numbers as strings). */
export function activityJson(a: Activity): Record<string, unknown> {
  return {
    ...a,
    price: String(Number(a.price.toFixed(6))),
    qty: String(a.qty),
    leaves_qty: String(a.leaves_qty),
    cum_qty: String(a.cum_qty),
  };
}

const num = (n: number | null): string | null => (n === null ? null : String(Number(n.toFixed(6))));

/** An order as Alpaca's REST API and stream show it (numbers as strings). */
export function orderJson(o: SimOrder): Record<string, unknown> {
  return {
    id: o.id,
    client_order_id: o.client_order_id,
    created_at: o.created_at,
    updated_at: o.updated_at,
    submitted_at: o.created_at,
    filled_at: o.filled_at,
    expired_at: o.expired_at,
    canceled_at: o.canceled_at,
    failed_at: null,
    replaced_at: o.replaced_at,
    replaced_by: o.replaced_by,
    replaces: o.replaces,
    asset_class: 'us_equity',
    symbol: o.symbol,
    qty: num(o.qty),
    filled_qty: num(o.filled_qty),
    filled_avg_price: num(o.filled_avg_price),
    order_class: '',
    order_type: o.type,
    type: o.type,
    side: o.side,
    time_in_force: o.time_in_force,
    limit_price: num(o.limit_price),
    stop_price: null,
    status: o.status,
    extended_hours: false,
  };
}
