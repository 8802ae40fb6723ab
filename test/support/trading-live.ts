/**
 * One live trading account on the wall clock, as production wires it: the engine on the event
 * store, its outbox sent by `dispatchLive` over the real `LiveBroker` (HTTP and the trade-updates
 * WebSocket) to a broker simulator process, reports applied through the adapter's gate. One worker
 * per account serializes everything that talks to the broker on the engine's behalf (dispatch,
 * the in-flight check by client order id, the auth probe), as the live service does; the order
 * flow (submit, cancel, modify) runs concurrently with it. Used by the trading bench, the load
 * scenario and its integration test.
 */
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { TradingEngine } from '../../lambdas/trading/engine';
import {
  BrokerAuthError,
  type BrokerIncident,
  BrokerRetryableError,
  type BrokerTrace,
  dispatchLive,
  LiveBroker,
} from '../../lambdas/trading/live-broker';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { balanceDifferences, type Difference, orderDifferences } from '../../lambdas/trading/reconcile';
import { isOpen } from '../../lambdas/trading/state';
import type { BrokerReport, Limits, Order } from '../../lambdas/trading/types';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import type { SimProcess } from './broker-sim';

/** The engine's clock: a regular session (2026-03-02 10:00 New York) moving with the wall clock. */
const START = Date.parse('2026-03-02T15:00:00.000Z');
const T0 = Date.now();
export const engineNow = (): string => new Date(START + (Date.now() - T0)).toISOString();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A throwaway schema with the trading migrations, the engine on the trading login role (as the CLI
 * and the bench connect). `drop()` removes it.
 */
export async function tradingSchema(
  url: string,
  label: string,
): Promise<{
  store: PostgresEventStore;
  /** For scale (benchmarks): one single-row INSERT committed, in ms (the machine's commit floor). */
  commit(): Promise<number>;
  drop(): Promise<void>;
}> {
  await ensureDatabase(url);
  const schema = `${label}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = createPool({ connectionString: url, schema, max: 2 });
  const pool = createPool({ connectionString: componentDatabaseUrl(url, 'trading'), schema, max: 8 });
  await migrate(
    admin,
    (await loadMigrations(MIGRATIONS_DIR)).filter((m) => m.version < '0100' || m.version.startsWith('03')),
    schema,
  );
  let floor: Promise<unknown> | null = null;
  return {
    store: new PostgresEventStore(pool),
    async commit() {
      floor ??= admin.query('CREATE TABLE IF NOT EXISTS bench_commit (n integer)');
      await floor;
      const t0 = performance.now();
      await admin.query('INSERT INTO bench_commit VALUES (1)');
      return performance.now() - t0;
    },
    async drop() {
      await pool.end();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

export interface LiveAccountOptions {
  readonly store: PostgresEventStore;
  readonly stream: string;
  readonly sim: SimProcess;
  readonly cash: number;
  readonly prices: Record<string, number>;
  readonly limits?: Limits;
  readonly requestTimeoutMs?: number;
  readonly onTrace?: (trace: BrokerTrace) => void;
  readonly onIncident?: (incident: BrokerIncident) => void;
  /** Each report as the engine took it: decided in memory at `decided`, committed at `durable`. */
  readonly onReport?: (report: BrokerReport, started: number, decided: number, durable: number) => void;
  /** `broker:auth` tripped after a 401: decided and committed (performance.now()). */
  readonly onAuthTrip?: (decided: number, durable: number) => void;
  /** Reset `broker:auth` by itself once the key works again (the load scenario's operator). */
  readonly autoResetAuth?: boolean;
  /** Start the worker (default true); without it the caller dispatches (`dispatch()`), as the bench does. */
  readonly worker?: boolean;
}

export interface ReconcileResult {
  /** Differences found and booked from the broker (fills and end states the stream never told us). */
  readonly booked: Difference[];
  /** What still differs afterwards: disputes (must be none for the accounting to hold). */
  readonly disputes: Difference[];
}

export class LiveAccount {
  readonly live: LiveBroker;
  readonly incidents = { retryable: 0, ambiguous: 0, fatal: 0, rejected: 0, reconnects: -1 };
  private wake: (() => void) | null = null;
  private dirty = true;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private retryAt = 0;
  private nextCheck = 0;
  private authBlocked = false;
  /** Each order's classified outcomes and lookups, in order (to explain a failed accounting). */
  readonly history = new Map<string, string[]>();
  /** Errors the worker met (never expected: a store failure, an unclassified answer). */
  readonly errors: string[] = [];

  private constructor(
    readonly options: LiveAccountOptions,
    readonly engine: TradingEngine,
    readonly keyId: string,
    secret: string,
  ) {
    this.live = new LiveBroker({
      baseUrl: options.sim.url,
      wsUrl: options.sim.wsUrl,
      keyId,
      secret,
      lookup: (cid) => this.engine.state.orders[cid],
      openOrders: () => {
        const s = this.engine.state;
        return [...s.open].map((id) => s.orders[id] as Order).filter((o) => o && isOpen(o));
      },
      onReport: async (report) => {
        const started = performance.now();
        const committed = this.engine.onBrokerReport(report, engineNow());
        const decided = performance.now();
        await committed;
        options.onReport?.(report, started, decided, performance.now());
      },
      decidesAtOnce: () => this.engine.decidesAtOnce(),
      onIncident: (i) => {
        if (i.clientOrderId) {
          const what = i.outcome
            ? `${i.command} ${i.outcome.class === 'definitive' ? i.outcome.result : i.outcome.reason}`
            : `${i.command} ${i.detail ?? ''}`;
          const h = this.history.get(i.clientOrderId) ?? [];
          h.push(what);
          this.history.set(i.clientOrderId, h);
        }
        if (i.outcome?.class === 'retryable' && i.outcome.reason !== 'not_ready')
          this.incidents.retryable += 1;
        if (i.outcome?.class === 'ambiguous') this.incidents.ambiguous += 1;
        if (i.outcome?.class === 'fatal') this.incidents.fatal += 1;
        if (i.outcome?.class === 'definitive' && i.outcome.result === 'rejected')
          this.incidents.rejected += 1;
        // Every connect after the first is a reconnect (failed attempts in between are not counted).
        if (i.stream === 'connected') this.incidents.reconnects += 1;
        options.onIncident?.(i);
      },
      ...(options.onTrace ? { onTrace: options.onTrace } : {}),
      requestTimeoutMs: options.requestTimeoutMs ?? 500,
      heartbeatTimeoutMs: 2_000,
      retryBackoffMs: 200,
    });
  }

  /** Opens the account at the broker (a key of its own) and in the engine, and starts the worker. */
  static async open(options: LiveAccountOptions): Promise<LiveAccount> {
    const { keyId, secret } = await options.sim.account({
      cash: options.cash,
      fill: 'immediate',
      rateLimitPerMinute: 1_000_000,
    });
    await options.sim.control(keyId, { prices: options.prices });
    const engine = await TradingEngine.open(options.store, options.stream, {
      init: { cash: options.cash, limits: options.limits ?? {} },
      at: engineNow(),
    });
    await engine.updatePrices(options.prices, engineNow());
    const account = new LiveAccount(options, engine, keyId, secret);
    await account.live.start();
    if (options.worker !== false) account.loop = account.work();
    return account;
  }

  /** New commands are in the outbox: the worker sends them now. */
  kick(): void {
    this.dirty = true;
    this.wake?.();
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      let delay = 200;
      try {
        delay = await this.step();
      } catch (error) {
        this.errors.push((error as Error).message);
      }
      if (this.stopped) return;
      if (this.dirty && !this.authBlocked && Date.now() >= this.retryAt) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** One round of the worker; returns how long to wait before the next one. */
  private async step(): Promise<number> {
    if (this.authBlocked) {
      if (!(await this.live.probe())) return 200;
      this.authBlocked = false;
      if (this.options.autoResetAuth)
        await this.engine.reset('broker:auth', 'load:key-works-again', engineNow());
    }
    if (Date.now() >= this.retryAt) await this.dispatch();
    // The in-flight check: an ambiguous order is looked up by its client order id.
    if (this.live.inFlight.size > 0 && Date.now() >= this.nextCheck) {
      this.nextCheck = Date.now() + 250;
      await this.live.resolveInFlight().catch((error: Error) => {
        if (error instanceof BrokerAuthError) this.authBlocked = true;
      });
    }
    const waitRetry = this.retryAt - Date.now();
    if (this.dirty && waitRetry > 0) return Math.min(waitRetry, 1_000);
    return this.live.inFlight.size > 0 ? 100 : 500;
  }

  /**
   * Sends the outbox (`dispatchLive`): a retryable outcome is retried at its time, an authentication
   * failure trips `broker:auth` (account halted, working orders kept, critical alert).
   */
  async dispatch(broker: Pick<LiveBroker, 'send'> = this.live): Promise<void> {
    this.dirty = false;
    const r = await dispatchLive(this.options.store, this.options.stream, broker);
    if (r.blocked instanceof BrokerRetryableError) {
      this.dirty = true;
      this.retryAt = Math.max(r.blocked.outcome.retryAt, Date.now() + 20);
    } else if (r.blocked instanceof BrokerAuthError) {
      this.dirty = true;
      this.authBlocked = true;
      const committed = this.engine.tripExternal(
        'broker:auth',
        'halted',
        { status: r.blocked.outcome.status, detail: r.blocked.outcome.detail },
        `the broker refused our credentials (${r.blocked.outcome.detail}): trading halted`,
        engineNow(),
        { keepOrders: true, autoRecovery: null },
      );
      const decided = performance.now();
      await committed;
      this.options.onAuthTrip?.(decided, performance.now());
    }
  }

  /** Everything said to the broker and heard back: outbox empty, nothing in flight, stream ready. */
  async quiesce(timeoutMs = 60_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      this.kick();
      const pending = await this.options.store.pendingCommands(this.options.stream);
      if (pending.length === 0 && this.live.inFlight.size === 0 && this.live.isReady() && !this.authBlocked) {
        await this.settle();
        return true;
      }
      await sleep(100);
    }
    return false;
  }

  /** Waits until every frame the simulator sent so far has passed the gate. */
  settle(): Promise<boolean> {
    return this.live.settle(async (id) =>
      Boolean((await this.options.sim.control(this.keyId, { barrier: id })).barrier),
    );
  }

  /**
   * Reconciliation as the replay runs it: the broker's view, fills and end states booked from it,
   * then what still differs (a dispute).
   */
  async reconcile(): Promise<ReconcileResult> {
    await this.live.whenReady(5_000);
    const before = await this.live.brokerView();
    const booked = orderDifferences(this.engine.state, before);
    for (const o of before.orders)
      if (
        this.engine.state.orders[o.client_order_id] &&
        booked.some((d) => d.key === o.client_order_id && d.resolution === 'book_from_broker')
      )
        await this.live.applyBrokerOrder(o);
    for (const d of booked)
      if (d.kind === 'missing_order' && d.resolution === 'book_from_broker') await this.live.resolve(d.key);
    await this.settle();
    const after = await this.live.brokerView();
    return {
      booked,
      disputes: [
        ...orderDifferences(this.engine.state, after),
        ...balanceDifferences(this.engine.state, after),
      ],
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.live.close();
    await this.engine.settled();
  }
}
