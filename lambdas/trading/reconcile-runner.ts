/**
 * The reconciliation runner: one run against the broker for one account, the rules of reconcile.ts
 * applied through the engine, so every difference is an event (`ReconciliationDifferenceRecorded`,
 * deduplicated by its deterministic id). Thin and free of AWS: the replay over the wire
 * (localstack/trading/wire-broker.ts), `trading reconcile` and a live engine service or a scheduled
 * Lambda give it a broker port and an engine.
 *
 * A run: (1) fetch the broker's whole view (orders, positions, cash, trade history), retrying a
 * failed fetch (429, 5xx, maintenance, timeout, refused, an invalid answer) with exponential
 * backoff; a run that still cannot get the view applies nothing at all, raises a warning and says
 * `incomplete` (a half-read view would make false disputes); (2) record and book from the broker
 * what it is the source of truth for (fills, end states; a pending submit it never got is
 * resolved by client order id); (3) compare what remains with the same view: a dispute found again
 * by a second read (a fill between the requests of one read is not a dispute) is recorded and halts
 * its symbol (or the account) until an operator resolves it. Authentication failures
 * are not retried (the `broker:auth` path handles them).
 */
import { type Alert, TradingEngine } from './engine';
import { BrokerAuthError, type BrokerOrder, BrokerRetryableError, LiveBroker } from './live-broker';
import {
  type BrokerView,
  balanceDifferences,
  DEFAULT_TOLERANCE,
  type Difference,
  orderDifferences,
  type Tolerance,
  tradeHistoryDifferences,
} from './reconcile';
import type { AccountState } from './state';
import type { EventStore } from './store';

/** What the runner needs from the broker adapter (LiveBroker provides each). */
export interface ReconcileBrokerPort {
  brokerView(): Promise<BrokerView>;
  /** Books an order from the broker's record, through the adapter's gate (never twice). */
  applyBrokerOrder(order: BrokerOrder): Promise<void>;
  /** Resolves one order by client order id (a submit the broker never got is sent again). */
  resolve(clientOrderId: string): Promise<boolean>;
  /** Waits until what the broker sent has reached the engine. */
  settle?(): Promise<void>;
}

/** The live adapter as the runner's broker port (`settle`: how the caller waits for frames). */
export function livePort(live: LiveBroker, settle?: () => Promise<void>): ReconcileBrokerPort {
  return {
    brokerView: () => live.brokerView(),
    applyBrokerOrder: (o) => live.applyBrokerOrder(o),
    resolve: (cid) => live.resolve(cid),
    ...(settle ? { settle } : {}),
  };
}

export interface RetryPolicy {
  /** Attempts of the view fetch in all (default 4). */
  readonly attempts: number;
  /** First backoff; doubled per attempt (default 200 ms). */
  readonly baseMs: number;
  /** No single wait longer than this (a 429's reset time is honoured up to it; default 5 s). */
  readonly maxWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseMs: 200, maxWaitMs: 5_000 };

export interface ReconcileOptions {
  /** The engine clock's time of the run's events. */
  readonly at: () => string;
  readonly tolerance?: Tolerance;
  readonly retry?: Partial<RetryPolicy>;
  /** Waits between attempts (tests and the replay may shorten it). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The clock a 429's reset time is on (default Date.now). */
  readonly now?: () => number;
  /** Each failed fetch attempt (telemetry). */
  readonly onAttemptFailed?: (attempt: number, error: Error, waitMs: number) => void;
}

export type ReconcileOutcome =
  | {
      readonly status: 'complete';
      readonly attempts: number;
      /** Every difference this run found (recorded now or already recorded earlier). */
      readonly found: Difference[];
      /** The differences recorded by this run (a second run over the same facts records none). */
      readonly recorded: Difference[];
      /** The disputes (manual intervention) this run found. */
      readonly disputes: Difference[];
    }
  | { readonly status: 'incomplete'; readonly attempts: number; readonly reason: string };

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fetches the broker's view, retrying with exponential backoff; null and the last error when it cannot. */
export async function fetchViewWithRetry(
  broker: Pick<ReconcileBrokerPort, 'brokerView'>,
  options: Pick<ReconcileOptions, 'retry' | 'sleep' | 'now' | 'onAttemptFailed'> = {},
): Promise<{ view: BrokerView; attempts: number } | { view: null; attempts: number; error: Error }> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  const sleep = options.sleep ?? realSleep;
  const now = options.now ?? Date.now;
  let last: Error = new Error('no attempt made');
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      return { view: await broker.brokerView(), attempts: attempt };
    } catch (error) {
      last = error as Error;
      if (error instanceof BrokerAuthError) return { view: null, attempts: attempt, error: last };
      if (attempt === policy.attempts) break;
      let wait = policy.baseMs * 2 ** (attempt - 1);
      if (error instanceof BrokerRetryableError) wait = Math.max(wait, error.outcome.retryAt - now());
      wait = Math.min(wait, policy.maxWaitMs);
      options.onAttemptFailed?.(attempt, last, wait);
      await sleep(wait);
    }
  }
  return { view: null, attempts: policy.attempts, error: last };
}

/** One reconciliation run of an account against its broker (see the module header). */
export async function reconcileAccount(
  engine: TradingEngine,
  broker: ReconcileBrokerPort,
  options: ReconcileOptions,
): Promise<ReconcileOutcome> {
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const fetched = await fetchViewWithRetry(broker, options);
  if (fetched.view === null) {
    const reason = `the broker's view could not be read after ${fetched.attempts} attempt(s): ${fetched.error.message}`;
    await engine.reconciliationIncomplete(reason, options.at());
    return { status: 'incomplete', attempts: fetched.attempts, reason };
  }
  let view = fetched.view;

  // (2) The broker is the source of truth for fills and end states: record, then book them.
  const booked = orderDifferences(engine.state, view).filter((d) => d.resolution === 'book_from_broker');
  const recorded = await engine.recordReconciliation(booked, options.at());
  const toBook = new Set(booked.map((d) => d.key));
  for (const o of view.orders)
    if (toBook.has(o.client_order_id) && engine.state.orders[o.client_order_id])
      await broker.applyBrokerOrder(o);
  const resubmitted = new Set<string>();
  for (const d of booked)
    if (d.kind === 'missing_order') {
      await broker.resolve(d.key);
      resubmitted.add(d.key);
    }
  await broker.settle?.();
  if (resubmitted.size > 0) {
    // A resubmitted order may have filled since the view was read: compare with a fresh one.
    const again = await fetchViewWithRetry(broker, options);
    if (again.view === null) {
      const reason = `resubmitted ${[...resubmitted].join(', ')}; the broker's view for the disputes could not be read: ${again.error.message}`;
      await engine.reconciliationIncomplete(reason, options.at());
      return { status: 'incomplete', attempts: fetched.attempts + again.attempts, reason };
    }
    view = again.view;
  }

  // (3) What still differs from the same view is a dispute. The view is read in several requests
  // (orders, positions, account, activities): a fill landing between them looks like a dispute for
  // one read. A dispute is only recorded when a second read finds the very same one (same id).
  const findDisputes = (v: BrokerView) => [
    ...orderDifferences(engine.state, v).filter(
      (d) =>
        d.resolution === 'manual_intervention' && !(d.kind === 'missing_order' && resubmitted.has(d.key)),
    ),
    ...balanceDifferences(engine.state, v, tolerance),
    ...tradeHistoryDifferences(engine.state, v, tolerance),
  ];
  let disputes = findDisputes(view);
  let attempts = fetched.attempts;
  if (disputes.length > 0) {
    const confirm = await fetchViewWithRetry(broker, options);
    attempts += confirm.attempts;
    if (confirm.view === null) {
      const reason = `disputes found but not confirmed (the broker's view could not be read again: ${confirm.error.message}); nothing recorded for them`;
      await engine.reconciliationIncomplete(reason, options.at());
      return { status: 'incomplete', attempts, reason };
    }
    const again = new Set(findDisputes(confirm.view).map((d) => d.id));
    disputes = disputes.filter((d) => again.has(d.id));
  }
  recorded.push(...(await engine.recordReconciliation(disputes, options.at())));
  return {
    status: 'complete',
    attempts,
    found: [...booked, ...disputes],
    recorded,
    disputes,
  };
}

/** The broker's REST base and key (its one trade-updates stream belongs to the engine service). */
export interface BrokerRestAccess {
  readonly baseUrl: string;
  readonly keyId: string;
  readonly secret: string;
}

export interface RestRunResult {
  readonly outcome: ReconcileOutcome;
  /** Disputes recorded (by this run or earlier ones) that no operator has resolved yet. */
  readonly openDisputes: AccountState['reconciliation'][string][];
}

/**
 * One run for an account of an event store over the broker's REST API only: `trading reconcile`
 * and the scheduled TradingReconcile Lambda. The engine is opened from the store (its chain
 * verified); what the run records goes through the engine's appends with the store's expected
 * version, so a concurrent writer (the engine service) makes an append fail and the engine rebuild
 * and re-decide, never interleave; a difference recorded by either has the same id and is kept once.
 */
export async function reconcileOverRest(
  store: EventStore,
  stream: string,
  broker: BrokerRestAccess,
  options: { onAlert?: (alert: Alert) => void; now?: () => Date } = {},
): Promise<RestRunResult> {
  const engine = await TradingEngine.open(store, stream, { onAlert: options.onAlert });
  const at = () => (options.now?.() ?? new Date()).toISOString();
  const baseUrl = broker.baseUrl.replace(/\/$/, '');
  const live = new LiveBroker({
    baseUrl,
    wsUrl: `${baseUrl.replace(/^http/, 'ws')}/stream`,
    keyId: broker.keyId,
    secret: broker.secret,
    lookup: (id) => engine.state.orders[id],
    openOrders: () => [],
    onReport: async (report) => {
      await engine.onBrokerReport(report, at());
    },
  });
  try {
    const outcome = await reconcileAccount(engine, livePort(live), { at });
    await engine.settled();
    const openDisputes = Object.values(engine.state.reconciliation).filter(
      (d) => d.resolution === 'manual_intervention' && !d.resolvedAt,
    );
    return { outcome, openDisputes };
  } finally {
    await live.close();
  }
}
