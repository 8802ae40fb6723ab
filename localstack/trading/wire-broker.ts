/**
 * `trading replay --broker sim`: the replay's broker is the simulator process, reached through the
 * live adapter (lambdas/trading/live-broker.ts) over HTTP and the trade-updates WebSocket. The
 * scenario's clock drives the simulator's clock (control endpoint), so fault durations, rate-limit
 * resets and timestamps follow the scenario; after each timeline entry the replay waits until
 * every frame the simulator sent has passed the adapter's gate (a control barrier), so a run is
 * deterministic. Commands leave `latencyMs` after the outbox on the simulated clock, as in-process;
 * a retryable outcome is sent again at its retry time (the reset header's for a 429); an ambiguous
 * one is looked up by client order id 2 s later (the in-flight check); an authentication failure
 * trips `broker:auth` (account halted, working orders left alone, critical alert) and holds the
 * commands until the broker takes our key again.
 */
import { randomBytes } from 'node:crypto';
import {
  BrokerAuthError,
  type BrokerIncident,
  BrokerRetryableError,
  LiveBroker,
} from '../../lambdas/trading/live-broker';
import {
  livePort,
  type ReconcileOutcome,
  type RetryPolicy,
  reconcileAccount,
} from '../../lambdas/trading/reconcile-runner';
import { isOpen } from '../../lambdas/trading/state';
import type { BrokerCommand, Order } from '../../lambdas/trading/types';
import type { ReplayBroker, ReplayBrokerContext } from './replay';

export interface WireOptions {
  /** The simulator's base URL (http://127.0.0.1:4592 on the stage). */
  readonly url: string;
  readonly requestTimeoutMs?: number;
  readonly onIncident?: (incident: BrokerIncident) => void;
  /** Leave the simulator account after the run (tests inspect the broker's side). */
  readonly keepAccount?: boolean;
  /** The reconciliation's view-fetch retry policy (default: reconcile-runner's). */
  readonly reconcileRetry?: Partial<RetryPolicy>;
}

export interface WireBroker extends ReplayBroker {
  readonly keyId: string;
  /** The outcome of the last timeline `reconcile` (null before the first). */
  lastReconcile(): ReconcileOutcome | null;
}

const IN_FLIGHT_CHECK_MS = 2_000;
/** Retryable failures (maintenance, 5xx, 429) for this long put the account in `reducing` (degraded mode). */
const DEGRADED_AFTER_MS = 5_000;
const iso = (ms: number) => new Date(ms).toISOString();

export async function createWireBroker(ctx: ReplayBrokerContext, options: WireOptions): Promise<WireBroker> {
  const { scenario, clock } = ctx;
  const base = options.url.replace(/\/$/, '');
  const keyId = `replay-${randomBytes(6).toString('hex')}`;
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const value = (await r.json()) as Record<string, unknown>;
    if (!r.ok) throw new Error(`broker simulator ${path}: ${r.status} ${JSON.stringify(value)}`);
    return value;
  };
  const created = (await post('/_control/accounts', {
    keyId,
    cash: scenario.account.cash,
    positions: scenario.account.positions ?? {},
    fill: scenario.broker.fill,
    clock: iso(scenario.start),
    // The scenario's own order rate is checked by our risk limits; the broker's limit is a fault knob.
    rateLimitPerMinute: 1_000_000,
  })) as { keyId: string; secret: string };
  const control = (body: Record<string, unknown>) => post(`/_control/accounts/${keyId}`, body);
  let simClock = scenario.start;
  const syncClock = async () => {
    if (clock.now === simClock) return;
    simClock = clock.now;
    await control({ clock: iso(clock.now) });
  };

  const engineOrder = (cid: string): Order | undefined => ctx.engine().state.orders[cid];
  const live = new LiveBroker({
    baseUrl: base,
    wsUrl: `${base.replace(/^http/, 'ws')}/stream`,
    keyId: created.keyId,
    secret: created.secret,
    lookup: engineOrder,
    openOrders: () => {
      const s = ctx.engine().state;
      return [...s.open].map((id) => s.orders[id] as Order).filter((o) => o && isOpen(o));
    },
    onReport: (report) => ctx.deliver(report),
    onIncident: options.onIncident,
    now: () => clock.now,
    requestTimeoutMs: options.requestTimeoutMs ?? 1_000,
    heartbeatTimeoutMs: 5_000,
    retryBackoffMs: 1_000,
  });
  await live.start();

  const submitted = new Set<string>();
  let failingSince: number | null = null;
  let degraded = false;
  const brokerAnswered = async () => {
    failingSince = null;
    if (!degraded) return;
    degraded = false;
    await ctx.engine().recoverExternal('broker:unavailable', 'auto:broker-answers', iso(clock.now));
  };
  const brokerFailing = async (reason: string) => {
    failingSince ??= clock.now;
    if (degraded || clock.now - failingSince < DEGRADED_AFTER_MS) return;
    degraded = true;
    await ctx
      .engine()
      .tripExternal(
        'broker:unavailable',
        'reducing',
        { reason, since: iso(failingSince) },
        `the broker has been unavailable (${reason}) since ${iso(failingSince)}: degraded mode, reducing only`,
        iso(clock.now),
        { keepOrders: true, autoRecovery: 'when the broker answers again' },
      );
  };
  const held: BrokerCommand[] = [];
  let authBlocked = false;

  const settle = async () => {
    if (!live.isReady()) await live.whenReady(1_000);
    await live.settle(async (id) => Boolean((await control({ barrier: id })).barrier));
  };

  const scheduleInFlightCheck = () => {
    clock.schedule(clock.now + IN_FLIGHT_CHECK_MS, async () => {
      await syncClock();
      const left = await live.resolveInFlight().catch(() => live.inFlight.size);
      await settle();
      if (left > 0) scheduleInFlightCheck();
    });
  };

  const transmit = async (command: BrokerCommand): Promise<void> => {
    await syncClock();
    if (authBlocked) {
      held.push(command);
      return;
    }
    if (!live.isReady()) await live.whenReady(3_000);
    const before = live.inFlight.size;
    try {
      await live.send(command);
    } catch (error) {
      if (error instanceof BrokerRetryableError) {
        if (error.outcome.reason !== 'not_ready') await brokerFailing(error.outcome.reason);
        const at = Math.max(
          error.outcome.retryAt,
          clock.now + (error.outcome.reason === 'not_ready' ? 1_000 : 1),
        );
        clock.schedule(at, () => transmit(command));
        return;
      }
      if (error instanceof BrokerAuthError) {
        authBlocked = true;
        held.push(command);
        await ctx
          .engine()
          .tripExternal(
            'broker:auth',
            'halted',
            { status: error.outcome.status, detail: error.outcome.detail },
            `the broker refused our credentials (${error.outcome.detail}): trading halted`,
            iso(clock.now),
            { keepOrders: true, autoRecovery: null },
          );
        return;
      }
      throw error;
    }
    await brokerAnswered();
    if (live.inFlight.size > before) scheduleInFlightCheck();
    await settle();
  };

  const retryHeld = async () => {
    if (!authBlocked) return;
    await syncClock();
    if (!(await live.probe())) return;
    authBlocked = false;
    for (const command of held.splice(0)) clock.schedule(clock.now, () => transmit(command));
  };

  // Reconciliation (lambdas/trading/reconcile-runner.ts): differences are events in the store,
  // deduplicated by their deterministic id, so result.json lists each once across runs and restarts.
  let lastReconcile: ReconcileOutcome | null = null;
  const reconcile = async () => {
    await syncClock();
    if (!live.isReady()) await live.whenReady(5_000);
    lastReconcile = await reconcileAccount(ctx.engine(), livePort(live, settle), {
      at: () => iso(clock.now),
      now: () => clock.now,
      retry: options.reconcileRetry,
    });
  };

  const broker: WireBroker = {
    keyId,
    lastReconcile: () => lastReconcile,
    async send(command) {
      if (command.kind === 'submit') submitted.add(command.clientOrderId);
      clock.schedule(clock.now + scenario.broker.latencyMs, () => transmit(command));
    },
    async setPrices(prices) {
      await syncClock();
      await control({ prices });
      await settle();
    },
    async fill(id, qty, price) {
      await syncClock();
      const r = await control({ fill: { clientOrderId: id, qty, price } });
      await settle();
      return Boolean(r.filled);
    },
    async reject(id, reason) {
      await syncClock();
      await control({ reject: { clientOrderId: id, reason } });
      await settle();
    },
    async expire(ids) {
      await control({ expire: ids });
      for (const id of ids) submitted.delete(id);
    },
    openIds: () => [...submitted],
    async fault(f) {
      await syncClock();
      const kind = f.fault;
      await control({
        fault: {
          kind,
          ...(f.durationSeconds !== undefined ? { durationSeconds: f.durationSeconds } : {}),
          ...(f.clientOrderId !== undefined ? { clientOrderId: f.clientOrderId } : {}),
        },
      });
      if (kind === 'disconnect' && f.clientOrderId === undefined && f.durationSeconds !== undefined) {
        // Reconnects are refused until the duration has passed on the scenario's clock.
        clock.schedule(clock.now + f.durationSeconds * 1000, async () => {
          await syncClock();
          await live.whenReady(5_000);
        });
      }
    },
    reconcile,
    async settle() {
      await retryHeld();
      await settle();
    },
    reconciliation: () =>
      Object.values(ctx.engine().state.reconciliation).map((d) => ({
        kind: d.kind,
        detail: d.detail,
        resolution: d.resolution,
      })),
    async close() {
      await live.close();
      if (!options.keepAccount)
        await fetch(`${base}/_control/accounts/${keyId}`, { method: 'DELETE' }).catch(() => undefined);
    },
  };
  return broker;
}
