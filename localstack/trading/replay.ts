/**
 * `trading replay`: runs a scenario on a simulated clock against the in-process simulated broker and
 * the event store, deterministically. Timeline entries run in order; before each, everything due
 * earlier (broker deliveries, session changes at the NYSE calendar's times, pause expiries, limit
 * restoration steps) runs at its own time.
 */
import { isDeepStrictEqual } from 'node:util';
import { type BrokerPort, dispatchOutbox } from '../../lambdas/trading/broker';
import { type Alert, TradingEngine } from '../../lambdas/trading/engine';
import type { Projections } from '../../lambdas/trading/state';
import type { EventStore } from '../../lambdas/trading/store';
import type { BrokerReport } from '../../lambdas/trading/types';
import { type Scenario, ScenarioError, type SubmitEntry, type TimelineEntry } from './scenario';
import { SimClock, SimulatedBroker } from './sim-broker';

export interface ReconciliationEntry {
  readonly kind: string;
  readonly detail: string;
  readonly resolution: string;
}

export interface ReplayResult extends Projections {
  events: number;
  brokerCommands: number;
  /** Over the wire (`--broker sim`): every difference reconciliation found and how it was resolved. */
  reconciliation?: ReconciliationEntry[];
}

/** The broker a replay drives: the in-process simulator, or the simulator process over the wire. */
export interface ReplayBroker extends BrokerPort {
  setPrices(prices: Record<string, number>): Promise<void>;
  fill(id: string, qty: number, price: number): Promise<boolean>;
  reject(id: string, reason: string): Promise<void>;
  expire(ids: string[]): void | Promise<void>;
  openIds(): string[];
  /** A timeline `broker` fault (over the wire only). */
  fault?(fault: { fault: string; durationSeconds?: number; clientOrderId?: string }): Promise<void>;
  /** A timeline `reconcile` (over the wire only). */
  reconcile?(): Promise<void>;
  /** After every timeline entry: wait until the broker's answers to it have reached the engine. */
  settle?(): Promise<void>;
  reconciliation?(): ReconciliationEntry[];
  close?(): Promise<void>;
}

export interface ReplayBrokerContext {
  readonly scenario: Scenario;
  readonly clock: SimClock;
  readonly deliver: (report: BrokerReport) => Promise<void>;
  readonly engine: () => TradingEngine;
}

export interface ReplayRun {
  readonly result: ReplayResult;
  /** Engine restarts done (timeline `restart` entries and, with restartEveryStep, one per command). */
  readonly restarts: number;
}

export interface ReplayOptions {
  readonly store: EventStore;
  readonly stream: string;
  /** Called after every engine command with the engine (the restart property test uses it). */
  readonly afterStep?: (engine: TradingEngine) => Promise<void>;
  readonly onAlert?: (alert: Alert) => void;
  /**
   * Restart the engine (rebuild from the store) after every command, checking each rebuild against
   * the running state and the stored projections: the restart property test.
   */
  readonly restartEveryStep?: boolean;
  /** The broker to run against (default: the in-process simulated broker). */
  readonly broker?: (context: ReplayBrokerContext) => Promise<ReplayBroker>;
}

export class RestartMismatchError extends Error {
  constructor(what: string) {
    super(`restart rebuilt a different state: ${what}`);
    this.name = 'RestartMismatchError';
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

function request(s: SubmitEntry) {
  return {
    clientOrderId: s.clientOrderId,
    symbol: s.symbol,
    side: s.side,
    qty: s.qty,
    type: s.type,
    limitPrice: s.limitPrice,
    tif: s.tif,
    sizing: s.sizing,
  };
}

export async function runScenario(scenario: Scenario, options: ReplayOptions): Promise<ReplayResult> {
  return (await replayScenario(scenario, options)).result;
}

export async function replayScenario(scenario: Scenario, options: ReplayOptions): Promise<ReplayRun> {
  const { store, stream } = options;
  const clock = new SimClock(scenario.start);
  const onAlert = options.onAlert ?? (() => undefined);
  let restarts = 0;
  let engine = await TradingEngine.open(store, stream, {
    init: {
      cash: scenario.account.cash,
      positions: scenario.account.positions ?? {},
      limits: scenario.limits,
    },
    at: iso(scenario.start),
    onAlert,
  });
  const step = async () => {
    // The broker stops working what the engine expired at the close, as the exchange does.
    const expired = broker.openIds().filter((id) => engine.state.orders[id]?.status === 'expired');
    if (expired.length > 0) await broker.expire(expired);
    await dispatchOutbox(store, stream, broker);
    if (options.afterStep) await options.afterStep(engine);
    if (options.restartEveryStep) {
      const before = engine.projections();
      engine = await TradingEngine.open(store, stream, { onAlert });
      await assertSameState(before, engine, store, stream);
      restarts += 1;
    }
  };
  const deliver = async (report: BrokerReport) => {
    await engine.onBrokerReport(report, iso(clock.now));
    await step();
  };
  const broker: ReplayBroker = options.broker
    ? await options.broker({ scenario, clock, deliver, engine: () => engine })
    : new SimulatedBroker(scenario.broker, clock, deliver);
  if (!options.broker) {
    const wireOnly = scenario.timeline.filter((e) => e.action.kind === 'broker');
    if (wireOnly.length > 0)
      throw new ScenarioError(
        wireOnly.map(
          (e) => `timeline[${e.index}].broker: broker faults need the simulator process (--broker sim)`,
        ),
      );
  }

  const drainUntil = async (target: number) => {
    for (let guard = 0; guard < 100_000; guard++) {
      const nb = clock.peek() ?? Number.POSITIVE_INFINITY;
      const nt = engine.nextTimer() ?? Number.POSITIVE_INFINITY;
      const next = Math.min(nb, nt);
      if (next > target) break;
      clock.now = Math.max(clock.now, next);
      await engine.advanceTo(iso(next));
      await step();
      if (nb <= nt) {
        const item = clock.pop();
        if (item) await item.fn();
      }
    }
    clock.now = Math.max(clock.now, target);
    await engine.advanceTo(iso(target));
    await step();
  };

  const run = async (entry: TimelineEntry) => {
    const at = iso(entry.at);
    const a = entry.action;
    switch (a.kind) {
      case 'prices':
        await engine.updatePrices(a.value, at);
        await step();
        await broker.setPrices(a.value);
        return;
      case 'submit':
        await engine.submit(request(a.value), at);
        return;
      case 'portfolio':
        await engine.submitPortfolio(a.value.map(request), at);
        return;
      case 'cancel':
        await engine.cancel(a.value, at);
        return;
      case 'modify':
        await engine.modify(
          { clientOrderId: a.value.clientOrderId, qty: a.value.qty, limitPrice: a.value.limitPrice },
          at,
        );
        return;
      case 'fill':
        await broker.fill(a.value.clientOrderId, a.value.qty, a.value.price);
        return;
      case 'brokerReject':
        await broker.reject(a.value.clientOrderId, a.value.reason);
        return;
      case 'market':
        await engine.market(a.value, at);
        return;
      case 'restart': {
        const before = engine.projections();
        engine = await TradingEngine.open(store, stream, { onAlert });
        await assertSameState(before, engine, store, stream);
        restarts += 1;
        return;
      }
      case 'reset':
        await engine.reset(a.value.breaker, a.value.by, at);
        return;
      case 'limits':
        await engine.updateLimits(a.value as never, at);
        return;
      case 'broker':
        await broker.fault?.(a.value);
        return;
      case 'reconcile':
        // In-process the broker and the engine cannot disagree: nothing to reconcile.
        await broker.reconcile?.();
        return;
    }
  };

  try {
    for (const entry of scenario.timeline) {
      await drainUntil(entry.at);
      await run(entry);
      await step();
      await broker.settle?.();
    }
    // Let in-flight broker commands land (and whatever falls due on the way), then stop.
    for (let next = clock.peek(); next !== null; next = clock.peek()) {
      await drainUntil(next);
      await broker.settle?.();
    }
  } finally {
    await broker.close?.();
  }

  const counts = await store.counts(stream);
  const p = engine.projections();
  const result: ReplayResult = {
    orders: p.orders,
    positions: p.positions,
    account: p.account,
    tradingState: p.tradingState,
    breakers: p.breakers,
    events: counts.events,
    brokerCommands: counts.brokerCommands,
    ...(broker.reconciliation ? { reconciliation: broker.reconciliation() } : {}),
  };
  return { result, restarts };
}

/** A rebuilt engine must hold what the running one held, and the stored projections must agree. */
export async function assertSameState(
  before: Projections,
  engine: TradingEngine,
  store: EventStore,
  stream: string,
): Promise<void> {
  const rebuilt = engine.projections();
  if (!isDeepStrictEqual(rebuilt, before)) throw new RestartMismatchError('engine projections differ');
  const stored = await store.readProjections(stream);
  if (!isDeepStrictEqual(stored, rebuilt))
    throw new RestartMismatchError('stored projections differ from the events');
}
