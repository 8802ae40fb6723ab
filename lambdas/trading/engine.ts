/**
 * The trading engine of one account: takes commands (orders, prices, market changes, broker
 * reports, resets), decides with the risk checks and breakers, and records every decision as events.
 * Each command is one append (events + projections + outbox in one transaction); the in-memory state
 * is only ever changed by folding those events, so a restart rebuilds it exactly.
 */
import { submitCommand } from './broker';
import { type IntegrityFailure, recoveryEvent } from './integrity';
import { nextSessionChange, sessionAt } from './market-hours';
import type { BrokerView } from './reconcile';
import {
  type Candidate,
  checkOrder,
  fitQuantity,
  fmt,
  grossExposure,
  orderAddsExposure,
  positionLimit,
  SIZE_CODES,
  validateRequest,
} from './risk';
import {
  type AccountState,
  accountView,
  apply,
  breakerView,
  type Changes,
  emptyState,
  equity,
  isOpen,
  markPrice,
  orderView,
  type Projections,
  positionGross,
  projections,
  rebuild,
  remaining,
  round,
  TERMINAL,
  watchChanges,
} from './state';
import { type AppendRequest, acknowledgementOnly, type EventStore, type ProjectionUpdate } from './store';
import {
  type BreakerRecord,
  type BrokerCommand,
  type BrokerReport,
  type CustomBreaker,
  DEFAULT_RESTORATION,
  type Denial,
  type Limits,
  type MarketChange,
  type Order,
  type OrderRequest,
  type OrderStatus,
  type PositionInit,
  type ReconciliationAction,
  type ReconciliationDifference,
  type Session,
  type TradingEvent,
  type TradingStateName,
} from './types';

export interface AccountInit {
  readonly cash: number;
  readonly positions?: Record<string, PositionInit>;
  readonly limits?: Limits;
}

export interface OrderOutcome {
  readonly clientOrderId: string;
  readonly status: OrderStatus;
  readonly qty: number;
  readonly denial: Denial | null;
}

export interface CommandOutcome {
  readonly ok: boolean;
  readonly clientOrderId?: string;
  readonly code?: string;
  readonly detail: string;
}

export interface Alert {
  readonly at: string;
  readonly severity: 'warning' | 'critical';
  readonly source: string;
  readonly message: string;
}

export class AccountNotFoundError extends Error {
  constructor(stream: string) {
    super(`no trading account ${stream}: open it first`);
    this.name = 'AccountNotFoundError';
  }
}

const SEVERITY: Record<TradingStateName, number> = { active: 0, reducing: 1, halted: 2 };

function commandOf(event: TradingEvent): BrokerCommand | null {
  if (event.type === 'OrderSubmitted') return submitCommand(event.order);
  if (event.type === 'CancelRequested') return { kind: 'cancel', clientOrderId: event.clientOrderId };
  if (event.type === 'ReplaceRequested')
    return {
      kind: 'replace',
      clientOrderId: event.clientOrderId,
      newClientOrderId: event.newClientOrderId,
      qty: event.qty,
      limitPrice: event.limitPrice,
    };
  return null;
}

/** One command waiting for its commit: decided at once, answered once its events are durable. */
interface Command {
  readonly at: string;
  readonly decide: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  result?: unknown;
  events: TradingEvent[];
}

/** Commands decided one after another whose events go to the store in one transaction. */
interface CommitGroup {
  /** The stream's version before the group. */
  readonly version: number;
  readonly logLength: number;
  readonly breakersBefore: readonly BreakerRecord[];
  readonly changes: Changes;
  readonly commands: Command[];
  readonly events: TradingEvent[];
}

/**
 * Most commands one transaction carries (group commit). Enough to amortise a commit's flush over
 * many orders, few enough that a group's statement stays small and its commands' latency short.
 */
export const MAX_GROUP_COMMANDS = 256;

/**
 * How long a group of broker acknowledgements alone waits for the next report before it is written
 * (see `flush`): a fill frame right behind its ack then shares its transaction. The fill's frame
 * follows the ack's by 0.3 ms (median) to 1-3 ms (p99) on the stage: with 1 ms, 14 fills in 600
 * came later and waited for the ack's own append; with 3 ms, 2.
 */
export const ACK_HOLD_MS = 3;

export class TradingEngine {
  private pending: TradingEvent[] = [];
  private pricedSymbols = new Set<string>();
  /** The group collecting decided commands while the previous group is being written. */
  private open: CommitGroup | null = null;
  /** Full groups sealed (their append request built) and waiting for the one in flight. */
  private sealed: { group: CommitGroup; request: AppendRequest }[] = [];
  private inFlight: Promise<void> | null = null;
  private flushScheduled = false;
  /** Set while the state is rebuilt from the store after a failure; commands wait for it. */
  private recovering: Promise<void> | null = null;
  private waiting: Command[] = [];
  /** The last rebuild failed: the in-memory state may hold events that never committed. */
  private stale = false;
  private idle: (() => void)[] = [];
  /** The open group is acknowledgements alone, held until this fires (see `flush`). */
  private ackHold: NodeJS.Timeout | null = null;

  private constructor(
    readonly stream: string,
    private readonly store: EventStore,
    public state: AccountState,
    private readonly onAlert: (alert: Alert) => void,
  ) {}

  /** Rebuilds the account from its events; opens it (at `at`) when the stream is empty and init is given. */
  static async open(
    store: EventStore,
    stream: string,
    options: { init?: AccountInit; at?: string; onAlert?: (alert: Alert) => void } = {},
  ): Promise<TradingEngine> {
    const events = await store.load(stream);
    const onAlert = options.onAlert ?? (() => undefined);
    if (events.length > 0) return new TradingEngine(stream, store, rebuild(events), onAlert);
    if (!options.init || !options.at) throw new AccountNotFoundError(stream);
    const engine = new TradingEngine(stream, store, emptyState(), onAlert);
    const init = options.init;
    await engine.run(options.at, () => {
      engine.emit({
        type: 'AccountOpened',
        at: options.at as string,
        cash: init.cash,
        positions: init.positions ?? {},
        limits: init.limits ?? {},
      });
      engine.emit({
        type: 'SessionChanged',
        at: options.at as string,
        session: sessionAt(Date.parse(options.at as string)),
        override: false,
      });
    });
    return engine;
  }

  /**
   * Reopens an account whose event chain broke (lambdas/trading/integrity.ts): the trusted events
   * before the break, then one IntegrityRecovered event with the broker's orders, positions and cash
   * (the broker is the source of truth for fills) and a critical alert saying what was recovered.
   * The append continues the stored chain (after the damaged rows, which later folds skip).
   */
  static async recoverIntegrity(
    store: EventStore,
    failure: IntegrityFailure,
    broker: BrokerView,
    at: string,
    onAlert: (alert: Alert) => void = () => undefined,
  ): Promise<TradingEngine> {
    const state = rebuild(failure.trusted);
    state.version = failure.storedVersion;
    const engine = new TradingEngine(failure.stream, store, state, onAlert);
    await engine.run(at, () => {
      const event = recoveryEvent(failure, state, broker, at);
      engine.emit(event);
      const r = event.recovered;
      engine.emit({
        type: 'AlertRaised',
        at,
        severity: 'critical',
        source: 'integrity',
        message: `event store ${failure.kind} at version ${failure.firstBadVersion} (${failure.detail}): recovered from the broker ${r.orders} orders (${r.ordersUnknownLocally} unknown locally), ${r.fills} with fills, positions ${r.positions.join(', ') || 'none'}, cash ${r.cash}`,
      });
    });
    return engine;
  }

  // --- plumbing: decide at once, commit in groups -----------------------------------------------
  //
  // A command is decided synchronously against the in-memory state, which already holds every
  // earlier decision (so a breaker tripped by one command refuses the very next order, with no poll
  // and no read). Its caller is answered only once the command's events, projection rows and outbox
  // commands are committed. While one group's transaction is in flight, the commands that arrive
  // are decided and collected into the next group, which goes to the store as one append (events
  // in order, versions consecutive, UNIQUE(stream, version) and the expected-version guard as for a
  // single command): group commit, one commit flush for many orders. A sequential caller sees
  // exactly one command per transaction, as before. When an append fails, the state is rebuilt from
  // the store, the failed group's callers get the error, and the commands decided after it (never
  // written, never answered) are decided again on the rebuilt state.

  /** Runs one command: decide, evaluate breakers, and answer once its events are committed. */
  private run<T>(at: string, decide: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const command: Command = {
        at,
        decide,
        resolve: resolve as (value: unknown) => void,
        reject,
        events: [],
      };
      if (this.stale && !this.recovering) this.rollback([], undefined);
      if (this.recovering) this.waiting.push(command);
      else this.execute(command);
    });
  }

  private execute(command: Command): void {
    if (!this.open) {
      this.open = {
        version: this.state.version,
        logLength: this.state.stateLog.length,
        breakersBefore: [...this.state.breakers],
        changes: watchChanges(this.state),
        commands: [],
        events: [],
      };
    }
    const group = this.open;
    this.at = Date.parse(command.at) < Date.parse(this.state.now) ? this.state.now : command.at;
    this.pending = [];
    this.pricedSymbols = new Set();
    try {
      command.result = command.decide();
      this.evaluateBreakers();
    } catch (error) {
      // Its events are already folded into the state: rebuild from what is durable.
      this.pending = [];
      this.rollback([command], error);
      return;
    }
    command.events = this.pending;
    this.pending = [];
    group.commands.push(command);
    for (const e of command.events) group.events.push(e);
    if (group.commands.length >= MAX_GROUP_COMMANDS) this.seal();
    // Sent after the current synchronous burst: commands issued together (a price tick and the
    // orders behind it, a portfolio of single submits) share a commit even when nothing is in flight.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Closes the open group: its append request is built now, from the state right after it. */
  private seal(): void {
    const group = this.open;
    if (!group) return;
    this.open = null;
    this.sealed.push({ group, request: this.appendRequest(group) });
  }

  private appendRequest(group: CommitGroup): AppendRequest {
    const events = group.events;
    const outbox = events.map(commandOf).filter((c): c is BrokerCommand => c !== null);
    const stateLog = this.state.stateLog
      .slice(group.logLength)
      .map((entry, i) => ({ seq: group.logLength + i, entry }));
    const breakers: ProjectionUpdate['breakers'] = [];
    this.state.breakers.forEach((b, id) => {
      if (group.breakersBefore[id] !== b) breakers.push({ id, view: breakerView(b) });
    });
    const positions: ProjectionUpdate['positions'] = {};
    for (const symbol of [...group.changes.positions].sort()) {
      const p = this.state.positions[symbol];
      if (p) positions[symbol] = { qty: p.qty, avgPrice: round(p.avgPrice) };
    }
    return {
      stream: this.stream,
      expectedVersion: group.version,
      events,
      projection: {
        orders: [...group.changes.orders].map((id) => {
          const order = this.state.orders[id] as Order;
          return { id, order, view: orderView(order) };
        }),
        positions,
        account: accountView(this.state),
        // The scopes' current states are written when a state changed.
        states:
          stateLog.length > 0
            ? Object.fromEntries(Object.entries(this.state.states).map(([k, v]) => [k, { ...v }]))
            : {},
        stateLog,
        breakers,
      },
      outbox,
    };
  }

  /** Sends the next sealed group when no append is in flight (one at a time: versions are a chain). */
  private flush(): void {
    if (this.inFlight || this.recovering) return;
    if (this.sealed.length === 0) {
      // Acknowledgements alone are held up to ACK_HOLD_MS before they are written when one of them
      // may fill at once: the broker sends a marketable order's ack and its fill back to back, and
      // the fill's frame is read a moment later. Written at once, the ack's transaction is in flight
      // when the fill is decided, and the fill, which must be durable, waits for it (and for the
      // client work of a second append); held, the fill joins it and they are one transaction.
      // Nobody's decision waits on an ack (the engine's state has it at once; it commits without
      // its WAL flush anyway), so the hold delays only its own write; an order resting away from
      // the last price is not held (no fill is coming behind its ack).
      const open = this.open;
      if (open && acknowledgementOnly(open.events, []) && open.events.some((e) => this.mayFillAtOnce(e))) {
        this.ackHold ??= setTimeout(() => {
          this.ackHold = null;
          this.flushHeld();
        }, ACK_HOLD_MS);
        return;
      }
      this.seal();
    }
    const next = this.sealed.shift();
    if (!next) {
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    const { group, request } = next;
    if (group.events.length === 0) {
      for (const c of group.commands) c.resolve(c.result);
      this.flush();
      return;
    }
    this.inFlight = this.store.append(request).then(
      () => {
        this.inFlight = null;
        for (const c of group.commands) {
          for (const e of c.events)
            if (e.type === 'AlertRaised')
              this.onAlert({ at: e.at, severity: e.severity, source: e.source, message: e.message });
          c.resolve(c.result);
        }
        this.flush();
      },
      (error: unknown) => {
        this.inFlight = null;
        this.rollback(group.commands, error);
      },
    );
  }

  /** Whether an acknowledged order is marketable at the last price (a fill may follow its ack at once). */
  private mayFillAtOnce(event: TradingEvent): boolean {
    if (event.type !== 'OrderAccepted') return false;
    const o = this.state.orders[event.clientOrderId];
    if (!o || o.type === 'market' || o.limitPrice === null) return true;
    const last = this.state.prices[o.symbol];
    if (last === undefined) return true;
    return o.side === 'buy' ? o.limitPrice >= last : o.limitPrice <= last;
  }

  /** The acknowledgements' hold is over: written now unless they already went with a later group. */
  private flushHeld(): void {
    if (this.inFlight || this.recovering) return;
    if (this.sealed.length === 0) this.seal();
    this.flush();
  }

  /**
   * Throws away everything not durable: rebuilds the state from the store, answers `failed` with the
   * error, and decides every command that came after them again on the rebuilt state.
   *
   * `catchUp` (refresh): when the engine is quiet (no group open, sealed or in flight, no rebuild
   * running, the last one not failed), its state is exactly the stream's first `version` events, so
   * only the events after them are read (`loadAfter`, the chain verified on from the row the store
   * last verified) and folded into it: what a rebuild folds after the same prefix, in the same
   * order. Anything else, or a tail the store cannot vouch for, rebuilds from the whole stream.
   */
  private rollback(failed: Command[], error: unknown, catchUp = false): void {
    const redo = [...this.sealed.flatMap((s) => s.group.commands), ...(this.open?.commands ?? [])];
    const quiet =
      catchUp &&
      failed.length === 0 &&
      redo.length === 0 &&
      !this.inFlight &&
      !this.recovering &&
      !this.stale;
    this.sealed = [];
    this.open = null;
    const inFlight = this.inFlight;
    const previous = this.recovering;
    const body = async (): Promise<void> => {
      await previous;
      // A group still being written ends first (answered by its own outcome).
      await inFlight?.catch(() => undefined);
      try {
        if (!(quiet && (await this.foldTail()))) this.state = rebuild(await this.store.load(this.stream));
        this.stale = false;
      } catch (loadError) {
        // The store is unreachable: everything waiting fails; the next command rebuilds first.
        this.stale = true;
        for (const c of [...failed, ...redo, ...this.waiting.splice(0)]) c.reject(loadError);
        return;
      }
      for (const c of failed) c.reject(error);
      const again = [...redo, ...this.waiting.splice(0)];
      for (let i = 0; i < again.length; i++) {
        // A command that fails while being decided again starts a recovery of its own: the rest wait for it.
        if (this.recovering !== task) {
          this.waiting.push(...again.slice(i));
          break;
        }
        this.execute(again[i] as Command);
      }
    };
    const task = body();
    this.recovering = task;
    void task.finally(() => {
      if (this.recovering !== task) return;
      this.recovering = null;
      for (const c of this.waiting.splice(0)) this.execute(c);
      this.flush();
    });
  }

  /**
   * Folds the events after the state's version into it when the store vouches for them (see
   * `rollback`); false when it does not, or when one does not fold (then the state may be half
   * folded: the caller replaces it with a rebuild, which meets the same event and fails as before).
   */
  private async foldTail(): Promise<boolean> {
    const tail = await this.store.loadAfter(this.stream, this.state.version);
    if (!tail) return false;
    try {
      for (const event of tail) apply(this.state, event);
    } catch {
      return false;
    }
    return true;
  }

  /**
   * Catches up with events another writer appended to the stream (the `trading` CLI's orders):
   * reads and folds only the events after the engine's version when nothing of its own is pending,
   * else rebuilds from the store as after a failed append (see `rollback`); commands issued
   * meanwhile wait for it. Throws when the store cannot be read (or its chain no longer verifies:
   * a tail that does not verify is loaded whole, whose verification throws as before).
   */
  async refresh(): Promise<void> {
    await this.settled();
    this.rollback([], undefined, true);
    await this.settled();
    if (this.stale) await this.store.load(this.stream);
  }

  /**
   * Whether a command issued now is decided before the call returns (its effect visible in `state`
   * at once): false while the state is being rebuilt, when commands wait for it.
   */
  decidesAtOnce(): boolean {
    return !this.recovering && !this.stale;
  }

  /** Resolves once everything decided so far is committed (or failed). */
  settled(): Promise<void> {
    if (!this.inFlight && !this.recovering && !this.open && this.sealed.length === 0)
      return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private at = new Date(0).toISOString();
  /** Timers already run up to this time (a timer with nothing to do leaves no event to move the clock). */
  private timerCursor = 0;

  private emit(event: TradingEvent): void {
    apply(this.state, event);
    this.pending.push(event);
  }

  private nowMs(): number {
    return Date.parse(this.at);
  }

  // --- orders -------------------------------------------------------------------------------

  submit(req: OrderRequest, at: string): Promise<OrderOutcome> {
    return this.run(at, () => this.decideSubmit(req));
  }

  /** Several orders in one transaction; each is checked against the state including the earlier ones. */
  submitPortfolio(reqs: readonly OrderRequest[], at: string): Promise<OrderOutcome[]> {
    return this.run(at, () => reqs.map((r) => this.decideSubmit(r)));
  }

  private decideSubmit(req: OrderRequest): OrderOutcome {
    const existing = typeof req.clientOrderId === 'string' ? this.state.orders[req.clientOrderId] : undefined;
    if (existing) {
      const detail = `client order id ${req.clientOrderId} was already used (order is ${existing.status}); nothing changed`;
      this.emit({ type: 'DuplicateSubmitDenied', at: this.at, clientOrderId: req.clientOrderId, detail });
      return {
        clientOrderId: req.clientOrderId,
        status: existing.status,
        qty: existing.qty,
        denial: { code: 'DUPLICATE_CLIENT_ORDER_ID', detail },
      };
    }
    const base: Order = {
      clientOrderId: String(req.clientOrderId),
      symbol: String(req.symbol),
      side: req.side as Order['side'],
      qty: req.qty,
      requestedQty: req.qty,
      type: req.type as Order['type'],
      limitPrice: req.limitPrice ?? null,
      tif: req.tif as Order['tif'],
      status: 'pending_new',
      filledQty: 0,
      avgFillPrice: null,
      denial: null,
      submittedAt: this.at,
      session: this.state.session,
      liquidation: false,
      replaces: null,
      replacedBy: null,
      statusBeforePending: null,
    };
    let denial = validateRequest(this.state, req);
    let qty = req.qty;
    if (!denial) {
      const c: Candidate = {
        symbol: base.symbol,
        side: base.side,
        qty,
        type: base.type,
        limitPrice: base.limitPrice,
      };
      denial = checkOrder(this.state, c, this.nowMs());
      if (denial && req.sizing === 'fit' && SIZE_CODES.has(denial.code)) {
        const fitted = fitQuantity(this.state, c, this.nowMs());
        if (fitted > 0) {
          qty = fitted;
          denial = null;
        }
      }
    }
    if (denial) {
      const order: Order = { ...base, status: 'denied', denial };
      // An order without a usable id cannot be addressed later: the refusal is recorded, not an order.
      if (typeof req.clientOrderId !== 'string' || req.clientOrderId === '') {
        this.emit({
          type: 'CommandRefused',
          at: this.at,
          command: 'submit',
          clientOrderId: order.clientOrderId,
          ...denial,
        });
      } else this.emit({ type: 'OrderDenied', at: this.at, order });
      return { clientOrderId: order.clientOrderId, status: 'denied', qty: order.qty, denial };
    }
    const order: Order = { ...base, qty };
    this.emit({ type: 'OrderSubmitted', at: this.at, order });
    return { clientOrderId: order.clientOrderId, status: 'pending_new', qty, denial: null };
  }

  /** The order a client id addresses now: a replaced order's successor, a pending replace's replacement. */
  resolve(id: string): Order | undefined {
    let o = this.state.orders[id];
    for (let i = 0; o && i < 100; i++) {
      if (o.replacedBy) {
        o = this.state.orders[o.replacedBy];
        continue;
      }
      if (o.status === 'pending_replace') {
        const from = o.clientOrderId;
        const successor = [...this.state.open]
          .map((x) => this.state.orders[x] as Order)
          .find((x) => x.replaces === from && isOpen(x));
        if (successor) {
          o = successor;
          continue;
        }
      }
      break;
    }
    return o;
  }

  cancel(id: string, at: string, reason = 'client'): Promise<CommandOutcome> {
    return this.run(at, () => this.decideCancel(id, reason));
  }

  private refuse(command: string, id: string, code: Denial['code'], detail: string): CommandOutcome {
    this.emit({ type: 'CommandRefused', at: this.at, command, clientOrderId: id, code, detail });
    return { ok: false, clientOrderId: id, code, detail };
  }

  private decideCancel(id: string, reason: string): CommandOutcome {
    const o = this.resolve(id);
    if (!o) return this.refuse('cancel', id, 'INVALID_ORDER', `unknown order ${id}`);
    if (TERMINAL.has(o.status))
      return this.refuse('cancel', id, 'INVALID_ORDER', `order ${o.clientOrderId} is ${o.status}`);
    if (o.status === 'pending_cancel')
      return this.refuse('cancel', id, 'INVALID_ORDER', `a cancel of ${o.clientOrderId} is already pending`);
    // Reached only when the replacement is gone (e.g. the broker canceled it) while the replace of
    // the original is unanswered: the broker's answer to the replace decides the original.
    if (o.status === 'pending_replace')
      return this.refuse(
        'cancel',
        id,
        'INVALID_ORDER',
        `a replace of ${o.clientOrderId} is pending; cancel it once the broker answers the replace`,
      );
    this.emit({ type: 'CancelRequested', at: this.at, clientOrderId: o.clientOrderId, reason });
    return { ok: true, clientOrderId: o.clientOrderId, detail: 'cancel requested' };
  }

  modify(
    change: { clientOrderId: string; qty?: number; limitPrice?: number },
    at: string,
  ): Promise<CommandOutcome> {
    return this.run(at, () => this.decideModify(change));
  }

  private decideModify(change: { clientOrderId: string; qty?: number; limitPrice?: number }): CommandOutcome {
    const id = change.clientOrderId;
    const o = this.resolve(id);
    if (!o) return this.refuse('modify', id, 'INVALID_ORDER', `unknown order ${id}`);
    if (o.status !== 'new' && o.status !== 'partially_filled')
      return this.refuse(
        'modify',
        id,
        'INVALID_ORDER',
        `order ${o.clientOrderId} is ${o.status}; only working orders can be modified`,
      );
    const qty = change.qty ?? o.qty;
    if (!Number.isInteger(qty) || qty <= o.filledQty)
      return this.refuse(
        'modify',
        id,
        'INVALID_ORDER',
        `qty must be a whole number above the ${o.filledQty} already filled`,
      );
    if (change.limitPrice !== undefined && (o.type !== 'limit' || !(change.limitPrice > 0)))
      return this.refuse('modify', id, 'INVALID_ORDER', 'only a limit order takes a positive limitPrice');
    const limitPrice = change.limitPrice ?? o.limitPrice;
    const c: Candidate = { symbol: o.symbol, side: o.side, qty: qty - o.filledQty, type: o.type, limitPrice };
    const denial = checkOrder(this.state, c, this.nowMs(), o.clientOrderId);
    if (denial) return this.refuse('modify', id, denial.code, denial.detail);
    const m = /^(.*)\.r(\d+)$/.exec(o.clientOrderId);
    const newId = m ? `${m[1]}.r${Number(m[2]) + 1}` : `${o.clientOrderId}.r1`;
    if (this.state.orders[newId])
      return this.refuse('modify', id, 'INVALID_ORDER', `replacement id ${newId} is taken`);
    this.emit({
      type: 'ReplaceRequested',
      at: this.at,
      clientOrderId: o.clientOrderId,
      newClientOrderId: newId,
      qty,
      limitPrice,
    });
    return { ok: true, clientOrderId: newId, detail: `replace requested as ${newId}` };
  }

  // --- broker reports -----------------------------------------------------------------------

  /** Applies a broker report; 'ignored' when it does not fit the order (recorded, alerted when suspicious). */
  onBrokerReport(report: BrokerReport, at: string): Promise<'applied' | 'ignored'> {
    return this.run(at, () => this.decideReport(report));
  }

  private ignore(report: BrokerReport, reason: string, alert: boolean): 'ignored' {
    this.emit({ type: 'BrokerReportIgnored', at: this.at, report, reason });
    if (alert)
      this.emit({
        type: 'AlertRaised',
        at: this.at,
        severity: 'critical',
        source: 'broker',
        message: reason,
      });
    return 'ignored';
  }

  private decideReport(r: BrokerReport): 'applied' | 'ignored' {
    const o = this.state.orders[r.clientOrderId];
    if (!o) return this.ignore(r, `broker report for unknown order ${r.clientOrderId}`, true);
    const at = this.at;
    switch (r.kind) {
      case 'accepted':
        if (
          o.status === 'pending_new' ||
          (o.status === 'pending_cancel' && o.statusBeforePending === 'pending_new')
        )
          this.emit({ type: 'OrderAccepted', at, clientOrderId: o.clientOrderId });
        else this.ignore(r, `order ${o.clientOrderId} already acknowledged (${o.status})`, false);
        return 'applied';
      case 'fill':
        if (!isOpen(o)) return this.ignore(r, `fill for ${o.clientOrderId}, which is ${o.status}`, true);
        if (!(r.qty > 0) || r.qty > remaining(o) || !(r.price > 0))
          return this.ignore(
            r,
            `fill of ${r.qty} @ ${r.price} does not fit ${o.clientOrderId} (${remaining(o)} open)`,
            true,
          );
        this.emit({ type: 'OrderFilled', at, clientOrderId: o.clientOrderId, qty: r.qty, price: r.price });
        return 'applied';
      case 'canceled':
        if (!isOpen(o)) return this.ignore(r, `order ${o.clientOrderId} is already ${o.status}`, false);
        this.emit({ type: 'OrderCanceled', at, clientOrderId: o.clientOrderId });
        return 'applied';
      case 'cancel_rejected':
        if (o.status !== 'pending_cancel')
          return this.ignore(r, `cancel of ${o.clientOrderId} refused; order is ${o.status}`, false);
        this.emit({ type: 'CancelRejected', at, clientOrderId: o.clientOrderId, reason: r.reason });
        return 'applied';
      case 'replaced':
        if (o.status !== 'pending_replace' || !this.state.orders[r.newClientOrderId])
          return this.ignore(r, `replace report for ${o.clientOrderId}, which is ${o.status}`, true);
        if (!isOpen(this.state.orders[r.newClientOrderId] as Order))
          return this.ignore(
            r,
            `replace report for ${o.clientOrderId}: its replacement ${r.newClientOrderId} is already ${this.state.orders[r.newClientOrderId]?.status}`,
            true,
          );
        this.emit({
          type: 'OrderReplaced',
          at,
          clientOrderId: o.clientOrderId,
          newClientOrderId: r.newClientOrderId,
        });
        return 'applied';
      case 'replace_rejected':
        if (o.status !== 'pending_replace')
          return this.ignore(r, `replace of ${o.clientOrderId} refused; order is ${o.status}`, false);
        this.emit({ type: 'ReplaceRejected', at, clientOrderId: o.clientOrderId, reason: r.reason });
        return 'applied';
      case 'rejected':
        if (o.status !== 'pending_new' && o.status !== 'new')
          return this.ignore(r, `reject for ${o.clientOrderId}, which is ${o.status}`, true);
        this.emit({ type: 'OrderRejected', at, clientOrderId: o.clientOrderId, reason: r.reason });
        this.emit({
          type: 'AlertRaised',
          at,
          severity: 'warning',
          source: 'broker',
          message: `broker rejected ${o.clientOrderId}: ${r.reason}`,
        });
        return 'applied';
      case 'expired':
        if (!isOpen(o)) return this.ignore(r, `order ${o.clientOrderId} is already ${o.status}`, false);
        this.emit({ type: 'OrderExpired', at, clientOrderId: o.clientOrderId });
        return 'applied';
    }
    return this.ignore(r, 'unknown report kind', true);
  }

  // --- market -------------------------------------------------------------------------------

  updatePrices(prices: Record<string, number>, at: string): Promise<void> {
    return this.run(at, () => {
      const good = Object.fromEntries(Object.entries(prices).filter(([, p]) => Number.isFinite(p) && p > 0));
      for (const s of Object.keys(good)) this.pricedSymbols.add(s);
      if (Object.keys(good).length > 0) this.emit({ type: 'PricesUpdated', at: this.at, prices: good });
    });
  }

  market(change: MarketChange, at: string): Promise<void> {
    return this.run(at, () => {
      if ('session' in change) this.changeSession(change.session, true);
      else if ('halt' in change)
        this.emit({ type: 'SymbolHaltChanged', at: this.at, symbol: change.halt, halted: true });
      else this.emit({ type: 'SymbolHaltChanged', at: this.at, symbol: change.resume, halted: false });
    });
  }

  private changeSession(session: Session, override: boolean): void {
    this.emit({ type: 'SessionChanged', at: this.at, session, override });
    if (session === 'after-hours' || session === 'closed') {
      for (const id of [...this.state.open]) {
        const o = this.state.orders[id] as Order;
        if (!isOpen(o) || o.tif !== 'day') continue;
        // Day orders work the session they were entered for: regular-hours orders end at the close,
        // after-hours orders at the end of after-hours.
        if (session === 'closed' || o.session !== 'after-hours')
          this.emit({ type: 'OrderExpired', at: this.at, clientOrderId: o.clientOrderId });
      }
    }
    if (session === 'open') {
      // A new trading day: the daily loss gate starts again from the open's equity.
      for (const b of this.activeRecords())
        if (b.breaker === 'daily_loss') this.recover(b.breaker, 'auto:session-open');
    }
  }

  // --- timers (session changes, pauses, restoration) ----------------------------------------

  /** The next time something is due without a command, or null. */
  nextTimer(): number | null {
    const times: number[] = [];
    const base = Math.max(Date.parse(this.state.now), this.timerCursor);
    if (!this.state.sessionOverride) times.push(nextSessionChange(base).at);
    for (const b of this.activeRecords()) if (b.until) times.push(Date.parse(b.until));
    for (const r of Object.values(this.state.restoring)) if (r.nextAt) times.push(Date.parse(r.nextAt));
    return times.length > 0 ? Math.min(...times) : null;
  }

  /** Runs everything due up to `at`, in time order, each at its own time. */
  async advanceTo(at: string): Promise<void> {
    const target = Date.parse(at);
    for (let guard = 0; guard < 10_000; guard++) {
      const next = this.nextTimer();
      if (next === null || next > target) return;
      await this.run(new Date(next).toISOString(), () => this.fireTimers(next));
      this.timerCursor = Math.max(this.timerCursor, next);
    }
    throw new Error('timer loop did not settle');
  }

  private fireTimers(t: number): void {
    if (!this.state.sessionOverride && sessionAt(t) !== this.state.session)
      this.changeSession(sessionAt(t), false);
    for (const b of this.activeRecords())
      if (b.until && Date.parse(b.until) <= t) this.recover(b.breaker, 'auto:pause-elapsed');
    const steps = (this.state.limits.restoration ?? DEFAULT_RESTORATION).steps;
    const stepSeconds = (this.state.limits.restoration ?? DEFAULT_RESTORATION).stepSeconds;
    for (const [scope, r] of Object.entries(this.state.restoring)) {
      if (!r.nextAt || Date.parse(r.nextAt) > t) continue;
      const factor = steps[r.step + 1] ?? 1;
      this.emit({
        type: 'RestorationStepped',
        at: this.at,
        scope,
        factor,
        nextAt: factor >= 1 ? null : new Date(t + stepSeconds * 1000).toISOString(),
      });
    }
  }

  // --- limits and breakers ------------------------------------------------------------------

  updateLimits(limits: Partial<Limits>, at: string): Promise<void> {
    return this.run(at, () => {
      const merged = { ...this.state.limits, ...limits } as Record<string, unknown>;
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      this.emit({
        type: 'LimitsUpdated',
        at: this.at,
        limits: merged as Limits,
        version: this.state.limitsVersion + 1,
      });
    });
  }

  reset(breaker: string, by: string, at: string): Promise<CommandOutcome> {
    return this.run(at, () => {
      const active = this.activeRecords().find((b) => b.breaker === breaker);
      if (!active) {
        const reason = `breaker ${breaker} is not tripped`;
        this.emit({ type: 'BreakerResetRefused', at: this.at, breaker, by, reason });
        return { ok: false, detail: reason };
      }
      const holding = this.conditionHolds(active);
      if (holding) {
        this.emit({ type: 'BreakerResetRefused', at: this.at, breaker, by, reason: holding });
        return { ok: false, detail: holding };
      }
      this.recover(breaker, by);
      return { ok: true, detail: `breaker ${breaker} reset by ${by}` };
    });
  }

  /**
   * A breaker tripped from outside the risk checks: the broker adapter's incidents (authentication
   * failure halts the account; a broker unavailable beyond its threshold puts it in `reducing`).
   * `keepOrders` leaves working orders alone (the broker cannot take cancels during the incident).
   * A no-op while that breaker is already active.
   */
  tripExternal(
    breaker: string,
    state: TradingStateName,
    inputs: Record<string, unknown>,
    message: string,
    at: string,
    options: { keepOrders?: boolean; autoRecovery?: string | null; scope?: string } = {},
  ): Promise<boolean> {
    return this.run(at, () => {
      if (this.activeRecords().some((b) => b.breaker === breaker)) return false;
      this.trip(breaker, [{ scope: options.scope ?? 'account', state }], inputs, {
        autoRecovery: options.autoRecovery ?? null,
        message,
        keepOrders: options.keepOrders ?? false,
      });
      return true;
    });
  }

  /** The documented automatic recovery of an external breaker (e.g. the broker answers again). */
  recoverExternal(breaker: string, by: string, at: string): Promise<boolean> {
    return this.run(at, () => {
      if (!this.activeRecords().some((b) => b.breaker === breaker)) return false;
      this.recover(breaker, by);
      return true;
    });
  }

  // --- reconciliation (rules: reconcile.ts) ---------------------------------------------------

  /**
   * Records reconciliation differences not yet in the stream (the deterministic id dedupes: a second
   * run, a restart or a replay records nothing again) and, for every dispute not resolved by an
   * operator, trips `reconcile:<scope>` (the symbol, or the account), halting it with working
   * orders kept. Returns the differences recorded now.
   */
  recordReconciliation(
    differences: readonly ReconciliationDifference[],
    at: string,
  ): Promise<ReconciliationDifference[]> {
    return this.run(at, () => {
      const recorded: ReconciliationDifference[] = [];
      for (const d of differences) {
        if (this.state.reconciliation[d.id] || recorded.some((r) => r.id === d.id)) continue;
        this.emit({ type: 'ReconciliationDifferenceRecorded', at: this.at, difference: d });
        recorded.push(d);
      }
      for (const d of differences) {
        if (d.resolution !== 'manual_intervention' || this.state.reconciliation[d.id]?.resolvedAt) continue;
        this.trip(
          `reconcile:${d.scope}`,
          [{ scope: d.scope, state: 'halted' }],
          { kind: d.kind, detail: d.detail, differenceId: d.id },
          {
            autoRecovery: null,
            message: `reconciliation dispute (${d.kind}): ${d.detail}; manual intervention needed`,
            keepOrders: true,
          },
        );
      }
      return recorded;
    });
  }

  /** A reconciliation run that could not complete (the broker's view unavailable): said, nothing applied. */
  reconciliationIncomplete(reason: string, at: string): Promise<void> {
    return this.run(at, () => {
      this.emit({
        type: 'AlertRaised',
        at: this.at,
        severity: 'warning',
        source: 'reconcile',
        message: `reconciliation could not complete: ${reason}; nothing applied`,
      });
    });
  }

  /**
   * An operator closes a dispute (manual intervention): `accept_broker` takes the broker's position
   * or cash over (an adjustment event), `dismiss` acknowledges it. Recorded with who did it; once no
   * dispute of the scope is open, its `reconcile:<scope>` breaker is reset by the same person.
   */
  resolveReconciliation(
    differenceId: string,
    by: string,
    action: ReconciliationAction,
    at: string,
    note = '',
  ): Promise<CommandOutcome> {
    return this.run(at, () => {
      const d = this.state.reconciliation[differenceId];
      if (!d) return { ok: false, detail: `no reconciliation difference ${differenceId}` };
      if (d.resolvedAt)
        return {
          ok: false,
          detail: `difference ${differenceId} was resolved by ${d.resolvedBy} at ${d.resolvedAt}`,
        };
      if (d.resolution !== 'manual_intervention')
        return {
          ok: false,
          detail: `difference ${differenceId} was booked from the broker; nothing to resolve`,
        };
      if (action === 'accept_broker') {
        if (d.kind === 'position' && d.broker?.qty !== undefined)
          this.emit({
            type: 'ReconciliationAdjusted',
            at: this.at,
            differenceId,
            symbol: d.key,
            qty: d.broker.qty,
            avgPrice: d.broker.avgPrice ?? 0,
            cash: null,
          });
        else if (d.kind === 'balance' && d.broker?.cash !== undefined)
          this.emit({
            type: 'ReconciliationAdjusted',
            at: this.at,
            differenceId,
            symbol: null,
            qty: null,
            avgPrice: null,
            cash: d.broker.cash,
          });
        else
          return {
            ok: false,
            detail: `a ${d.kind} difference has no broker figures to take over: dismiss it once handled`,
          };
      }
      this.emit({ type: 'ReconciliationDifferenceResolved', at: this.at, differenceId, by, action, note });
      const breaker = `reconcile:${d.scope}`;
      if (!this.openDisputes(d.scope) && this.activeRecords().some((b) => b.breaker === breaker))
        this.recover(breaker, by);
      return { ok: true, detail: `difference ${differenceId} (${d.kind}) resolved by ${by}: ${action}` };
    });
  }

  /** Disputes of a scope not yet resolved by an operator. */
  private openDisputes(scope: string): number {
    return Object.values(this.state.reconciliation).filter(
      (d) => d.scope === scope && d.resolution === 'manual_intervention' && !d.resolvedAt,
    ).length;
  }

  private activeRecords(): BreakerRecord[] {
    return this.state.activeBreakers.map((id) => this.state.breakers[id] as BreakerRecord);
  }

  private recover(breaker: string, by: string): void {
    const records = this.activeRecords().filter((b) => b.breaker === breaker);
    if (records.length === 0) return;
    this.emit({ type: 'BreakerReset', at: this.at, breaker, by });
    const restoration = this.state.limits.restoration ?? DEFAULT_RESTORATION;
    const first = restoration.steps[0] ?? 1;
    if (first < 1) {
      const scopes = new Set(records.flatMap((b) => b.effects.map((e) => e.scope)));
      for (const scope of scopes)
        this.emit({
          type: 'RestorationStepped',
          at: this.at,
          scope,
          factor: first,
          nextAt: new Date(this.nowMs() + restoration.stepSeconds * 1000).toISOString(),
        });
    }
    this.syncStates(`${breaker} reset by ${by}`);
  }

  /** Why a reset is refused: the condition that tripped the breaker still holds (null = clear). */
  private conditionHolds(b: BreakerRecord): string | null {
    const limits = this.state.limits;
    const [kind, target] = b.breaker.split(':') as [string, string | undefined];
    if (kind === 'reconcile' && target) {
      const open = this.openDisputes(target);
      if (open > 0)
        return `${open} reconciliation dispute(s) of ${target} are not resolved (trading reconcile --resolve ID --by NAME)`;
    }
    if (kind === 'daily_loss' && limits.dailyLossLimit !== undefined) {
      const loss = this.state.sessionOpenEquity - equity(this.state);
      if (loss >= limits.dailyLossLimit)
        return `daily loss ${fmt(loss)} is still at or above the limit ${fmt(limits.dailyLossLimit)}`;
    }
    if (kind === 'liquidation_buffer' && limits.liquidationBuffer !== undefined) {
      const ratio = this.bufferRatio();
      if (ratio !== null && ratio < limits.liquidationBuffer)
        return `equity/gross ${ratio.toFixed(3)} is still below the buffer ${limits.liquidationBuffer}`;
    }
    if (kind === 'position_size' && target) {
      const max = positionLimit(limits, target);
      const qty = Math.abs(this.state.positions[target]?.qty ?? 0);
      if (max !== undefined && qty > max) return `${target} position ${fmt(qty)} is still above ${fmt(max)}`;
    }
    if (kind === 'correlation' && target) {
      const group = limits.correlationGroups?.[target];
      if (group) {
        const exposure = this.groupPositionExposure(group.symbols);
        if (exposure > group.maxExposure)
          return `group ${target} exposure ${fmt(exposure)} is still above ${fmt(group.maxExposure)}`;
      }
    }
    if (kind === 'custom' && target) {
      const def = limits.customBreakers?.find((c) => c.name === target);
      if (def && this.customBreached(def))
        return `metric ${def.metric} is ${fmt(this.metric(def.metric))}, still beyond its threshold`;
    }
    return null;
  }

  private bufferRatio(): number | null {
    const gross = positionGross(this.state);
    return gross > 0 ? equity(this.state) / gross : null;
  }

  private groupPositionExposure(symbols: string[]): number {
    return symbols.reduce(
      (sum, s) => sum + Math.abs(this.state.positions[s]?.qty ?? 0) * (markPrice(this.state, s) ?? 0),
      0,
    );
  }

  metric(name: CustomBreaker['metric']): number {
    const s = this.state;
    const eq = equity(s);
    switch (name) {
      case 'grossExposure':
        return grossExposure(s);
      case 'leverage':
        return eq > 0 ? grossExposure(s) / eq : Number.POSITIVE_INFINITY;
      case 'openOrders':
        return s.open.size;
      case 'dailyPnl':
        return eq - s.sessionOpenEquity;
      case 'drawdownPct':
        return s.peakEquity > 0 ? ((s.peakEquity - eq) / s.peakEquity) * 100 : 0;
      case 'brokerRejects':
        return s.brokerRejectsToday;
    }
  }

  private customBreached(def: CustomBreaker): boolean {
    const v = this.metric(def.metric);
    return (def.above !== undefined && v > def.above) || (def.below !== undefined && v < def.below);
  }

  private trip(
    breaker: string,
    effects: BreakerRecord['effects'],
    inputs: Record<string, unknown>,
    options: {
      autoRecovery: string | null;
      until?: string;
      liquidate?: boolean;
      message: string;
      keepOrders?: boolean;
    },
  ): void {
    if (this.activeRecords().some((b) => b.breaker === breaker)) return;
    const actions: string[] = [];
    const cancels: string[] = [];
    const scopes = new Map(effects.map((e) => [e.scope, e.state]));
    for (const id of this.state.open) {
      const o = this.state.orders[id] as Order;
      if (
        options.keepOrders ||
        !isOpen(o) ||
        o.liquidation ||
        o.status === 'pending_cancel' ||
        o.status === 'pending_replace'
      )
        continue;
      const state = scopes.get(o.symbol) ?? scopes.get('account');
      if (!state) continue;
      if (state === 'halted' || options.liquidate || orderAddsExposure(this.state, o))
        cancels.push(o.clientOrderId);
    }
    for (const id of cancels) actions.push(`cancel:${id}`);
    const liquidations: Order[] = [];
    if (options.liquidate) {
      const buffer = this.state.limits.liquidationBuffer ?? 1;
      const eq = equity(this.state);
      const gross = positionGross(this.state);
      const keep = eq > 0 && buffer > 0 ? Math.min(1, eq / buffer / gross) : 0;
      const id = this.state.breakers.length;
      for (const [symbol, p] of Object.entries(this.state.positions).sort(([a], [b]) => a.localeCompare(b))) {
        if (p.qty === 0) continue;
        const qty = Math.min(Math.abs(p.qty), Math.ceil(Math.abs(p.qty) * (1 - keep)));
        if (qty <= 0) continue;
        const side = p.qty > 0 ? 'sell' : 'buy';
        const order: Order = {
          clientOrderId: `LIQ-${id}-${symbol}`,
          symbol,
          side,
          qty,
          requestedQty: qty,
          type: 'market',
          limitPrice: null,
          tif: 'day',
          status: 'pending_new',
          filledQty: 0,
          avgFillPrice: null,
          denial: null,
          submittedAt: this.at,
          session: this.state.session,
          liquidation: true,
          replaces: null,
          replacedBy: null,
          statusBeforePending: null,
        };
        liquidations.push(order);
        actions.push(`liquidate:${order.clientOrderId}:${side}:${qty}`);
      }
    }
    for (const e of effects) actions.push(`state:${e.scope}:${e.state}`);
    const severity =
      effects.some((e) => e.state === 'halted' && e.scope === 'account') || options.liquidate
        ? 'critical'
        : 'warning';
    actions.push(`alert:${severity}`);
    const record: BreakerRecord = {
      id: this.state.breakers.length,
      at: this.at,
      breaker,
      scope: effects[0]?.scope ?? 'account',
      effects,
      inputs,
      limitsVersion: this.state.limitsVersion,
      actions,
      autoRecovery: options.autoRecovery,
      until: options.until ?? null,
      resetAt: null,
      resetBy: null,
    };
    this.emit({ type: 'BreakerTripped', at: this.at, record });
    for (const id of cancels)
      this.emit({ type: 'CancelRequested', at: this.at, clientOrderId: id, reason: `breaker ${breaker}` });
    for (const order of liquidations) this.emit({ type: 'OrderSubmitted', at: this.at, order });
    this.syncStates(breaker);
    this.emit({ type: 'AlertRaised', at: this.at, severity, source: breaker, message: options.message });
  }

  /** Sets every scope's trading state to the most severe effect of the active breakers. */
  private syncStates(cause: string): void {
    const desired = new Map<string, { state: TradingStateName; causes: string[] }>();
    for (const b of this.activeRecords())
      for (const e of b.effects) {
        const d = desired.get(e.scope);
        if (!d || SEVERITY[e.state] > SEVERITY[d.state])
          desired.set(e.scope, { state: e.state, causes: [b.breaker] });
        else if (SEVERITY[e.state] === SEVERITY[d.state]) d.causes.push(b.breaker);
      }
    const scopes = new Set([...Object.keys(this.state.states), ...desired.keys()]);
    for (const scope of [...scopes].sort((a, b) =>
      a === 'account' ? -1 : b === 'account' ? 1 : a.localeCompare(b),
    )) {
      const want = desired.get(scope);
      const state = want?.state ?? 'active';
      const current = this.state.states[scope]?.state ?? 'active';
      if (state !== current)
        this.emit({
          type: 'TradingStateChanged',
          at: this.at,
          scope,
          state,
          cause: want ? want.causes.join(', ') : cause,
        });
    }
  }

  /** Checks every breaker against the state after a command; trips and automatic recoveries. */
  private evaluateBreakers(): void {
    const s = this.state;
    const limits = s.limits;
    const eq = equity(s);
    if (limits.dailyLossLimit !== undefined) {
      const loss = s.sessionOpenEquity - eq;
      if (loss >= limits.dailyLossLimit)
        this.trip(
          'daily_loss',
          [{ scope: 'account', state: 'reducing' }],
          {
            dailyPnl: -loss,
            sessionOpenEquity: s.sessionOpenEquity,
            equity: eq,
            realizedPnl: s.realizedPnl,
            limit: limits.dailyLossLimit,
          },
          {
            autoRecovery: 'next session open, or a manual reset once the loss is back under the limit',
            message: `daily loss ${fmt(loss)} reached the limit ${fmt(limits.dailyLossLimit)}: reducing only`,
          },
        );
    }
    if (limits.liquidationBuffer !== undefined) {
      const ratio = this.bufferRatio();
      if (ratio !== null && ratio < limits.liquidationBuffer)
        this.trip(
          'liquidation_buffer',
          [{ scope: 'account', state: 'halted' }],
          { equity: eq, grossPositions: positionGross(s), ratio, buffer: limits.liquidationBuffer },
          {
            autoRecovery: null,
            liquidate: true,
            message: `equity/gross ${ratio.toFixed(3)} fell below the liquidation buffer ${limits.liquidationBuffer}: liquidating, then halted`,
          },
        );
    }
    const vol = limits.volatilityHalt;
    if (vol) {
      for (const symbol of [...this.pricedSymbols].sort()) {
        const history = s.priceHistory[symbol] ?? [];
        const last = history[history.length - 1];
        if (!last) continue;
        let worst = 0;
        let from = last[1];
        for (const [t, p] of history) {
          if (t < last[0] - vol.windowSeconds * 1000) continue;
          const move = (Math.abs(last[1] - p) / p) * 100;
          if (move > worst) {
            worst = move;
            from = p;
          }
        }
        if (worst > vol.movePct)
          this.trip(
            `volatility:${symbol}`,
            [{ scope: symbol, state: 'halted' }],
            {
              symbol,
              from,
              to: last[1],
              movePct: worst,
              windowSeconds: vol.windowSeconds,
              limitPct: vol.movePct,
            },
            {
              autoRecovery: `resumes after ${vol.pauseSeconds} s`,
              until: new Date(this.nowMs() + vol.pauseSeconds * 1000).toISOString(),
              message: `${symbol} moved ${worst.toFixed(2)}% within ${vol.windowSeconds} s: paused ${vol.pauseSeconds} s`,
            },
          );
      }
    }
    for (const [symbol, p] of Object.entries(s.positions).sort(([a], [b]) => a.localeCompare(b))) {
      const max = positionLimit(limits, symbol);
      if (max === undefined) continue;
      const name = `position_size:${symbol}`;
      if (Math.abs(p.qty) > max)
        this.trip(
          name,
          [{ scope: symbol, state: 'reducing' }],
          { symbol, qty: p.qty, limit: max },
          {
            autoRecovery: 'when the position is back within the limit',
            message: `${symbol} position ${fmt(p.qty)} is beyond the limit ${fmt(max)}: reducing only`,
          },
        );
      else if (this.activeRecords().some((b) => b.breaker === name))
        this.recover(name, 'auto:position-within-limit');
    }
    for (const [group, def] of Object.entries(limits.correlationGroups ?? {}).sort(([a], [b]) =>
      a.localeCompare(b),
    )) {
      const name = `correlation:${group}`;
      const exposure = this.groupPositionExposure(def.symbols);
      if (exposure > def.maxExposure)
        this.trip(
          name,
          [...def.symbols].sort().map((scope) => ({ scope, state: 'reducing' as const })),
          { group, symbols: def.symbols, exposure, limit: def.maxExposure },
          {
            autoRecovery: 'when the group exposure is back within the limit',
            message: `correlated group ${group} exposure ${fmt(exposure)} is beyond ${fmt(def.maxExposure)}: reducing only`,
          },
        );
      else if (this.activeRecords().some((b) => b.breaker === name))
        this.recover(name, 'auto:exposure-within-limit');
    }
    for (const def of limits.customBreakers ?? []) {
      if (!this.customBreached(def)) continue;
      const value = this.metric(def.metric);
      this.trip(
        `custom:${def.name}`,
        [{ scope: 'account', state: def.action }],
        { metric: def.metric, value, above: def.above ?? null, below: def.below ?? null },
        { autoRecovery: null, message: `custom breaker ${def.name}: ${def.metric} = ${fmt(value)}` },
      );
    }
  }

  // --- reads --------------------------------------------------------------------------------

  projections(): Projections {
    return projections(this.state);
  }

  status(id: string): Order | undefined {
    return this.state.orders[id];
  }

  health(): {
    version: number;
    session: Session;
    states: Record<string, { state: TradingStateName; cause: string }>;
    activeBreakers: string[];
    restoring: Record<string, number>;
    openOrders: number;
    limitsVersion: number;
  } {
    return {
      version: this.state.version,
      session: this.state.session,
      states: { ...this.state.states },
      activeBreakers: this.activeRecords().map((b) => b.breaker),
      restoring: Object.fromEntries(Object.entries(this.state.restoring).map(([k, v]) => [k, v.factor])),
      openOrders: this.state.open.size,
      limitsVersion: this.state.limitsVersion,
    };
  }
}
