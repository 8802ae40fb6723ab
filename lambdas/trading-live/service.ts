/**
 * The live engine service (issue 14 §2/§4): one long-lived process per broker account, holding the
 * broker's trade-updates stream. Start-up order, each step before the next:
 *
 *   1. rebuild: the engine from the PostgreSQL event store, the hash chain verified. A broken chain
 *      is recovered from the broker (IntegrityRecovered: the broker's orders, fills, positions and
 *      cash) when the trusted prefix still holds the account's opening; otherwise, or when the
 *      broker cannot be read, the service halts (critical alert) and never sends anything;
 *   2. connect: the broker stream (the adapter resolves every open order from the broker first);
 *   3. reconcile: orders and fills booked from the broker, ambiguous orders resolved, disputes
 *      halted for manual intervention;
 *   4. only then `accepting orders` (the /health endpoint and a stdout line say so) and the loop:
 *      catch up with other writers (the `trading submit/cancel/modify` CLI appends commands to the
 *      same stream: a moved head folds the events after the engine's version into it, the chain
 *      verified on from the last verified row, or rebuilds it from the whole stream when that is not
 *      provably the same; a racing append fails on expectedVersion and the engine rebuilds and
 *      retries), dispatch the outbox (dispatchLive), resolve in-flight orders, reconcile on an
 *      interval.
 *
 * SIGTERM stops the loop, waits for the step in progress, closes the stream and the pool.
 *
 * Crash points for the restart-recovery test (TRADING_CRASH_AT, honoured only with
 * TRADING_CRASH_POINTS=enabled so a stray variable cannot kill production): the process exits with
 * 137 (as SIGKILL) at the first occurrence of the step; see CRASH_POINTS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type pg from 'pg';
import { createPool } from '../platform/postgres';
import { AccountNotFoundError, type Alert, TradingEngine } from '../trading/engine';
import { IntegrityError, type IntegrityFailure } from '../trading/integrity';
import {
  BrokerAuthError,
  type BrokerIncident,
  BrokerRetryableError,
  dispatchLive,
  LiveBroker,
} from '../trading/live-broker';
import { OUTBOX_CHANNEL, PostgresEventStore } from '../trading/pg-store';
import type { Difference } from '../trading/reconcile';
import { livePort, reconcileAccount } from '../trading/reconcile-runner';
import { isOpen } from '../trading/state';
import { ConcurrencyError } from '../trading/store';
import type { BrokerReport, Order } from '../trading/types';
import { publishTradingMetrics, TradingMetricsWindow } from './metrics';

/** Where TRADING_CRASH_AT may stop the process (exit 137), in the order a command meets them. */
export const CRASH_POINTS = [
  /** A command is in the outbox; the service is about to send it. */
  'before_submit',
  /** The broker answered the submit (order created); the answer is not processed yet. */
  'submit_answered',
  /** The broker reported a fill (stream or REST); it is not booked yet. */
  'fill_unbooked',
  /** The broker took the cancel (204); nothing recorded yet. */
  'cancel_answered',
  /** The broker answered the replace; the answer is not processed yet. */
  'replace_answered',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export interface LiveConfig {
  readonly databaseUrl: string;
  /** TLS to PostgreSQL (DB_TLS=required: the RDS Proxy). */
  readonly databaseTls?: boolean;
  readonly schema?: string;
  readonly brokerBaseUrl: string;
  readonly brokerWsUrl: string;
  readonly keyId: string;
  readonly secret: string;
  /** The account id; the stream is `account-<id>` as for the CLI. */
  readonly account: string;
  /** /health port (0: any free port, printed on the ready line); undefined: no HTTP. */
  readonly healthPort?: number;
  readonly pollMs: number;
  readonly reconcileMs: number;
  readonly requestTimeoutMs: number;
  /** EMF metrics on stdout every this many ms (the AWS alarms read them); 0: off. */
  readonly metricsIntervalMs?: number;
  readonly crashAt?: CrashPoint;
}

export class ConfigError extends Error {}

/**
 * The configuration from the environment (documented in the README, "Trading live"): in AWS the
 * broker key and secret come from Secrets Manager into the container's environment.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LiveConfig {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new ConfigError(`${name} is not set`);
    return v;
  };
  const int = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer`);
    return n;
  };
  const base = need('BROKER_BASE_URL').replace(/\/$/, '');
  const crash = env.TRADING_CRASH_POINTS === 'enabled' ? env.TRADING_CRASH_AT : undefined;
  if (crash && !CRASH_POINTS.includes(crash as CrashPoint))
    throw new ConfigError(`TRADING_CRASH_AT must be one of ${CRASH_POINTS.join(', ')}`);
  return {
    ...database(env, need),
    schema: env.PG_SCHEMA && env.PG_SCHEMA !== 'public' ? env.PG_SCHEMA : undefined,
    brokerBaseUrl: base,
    brokerWsUrl: env.BROKER_STREAM_URL || `${base.replace(/^http/, 'ws')}/stream`,
    keyId: need('BROKER_KEY_ID'),
    secret: need('BROKER_SECRET_KEY'),
    account: env.TRADING_ACCOUNT || 'default',
    healthPort: env.TRADING_HEALTH_PORT === undefined ? undefined : int('TRADING_HEALTH_PORT', 0),
    pollMs: int('TRADING_POLL_MS', 200),
    reconcileMs: int('TRADING_RECONCILE_MS', 60_000),
    requestTimeoutMs: int('TRADING_BROKER_TIMEOUT_MS', 2_000),
    metricsIntervalMs: int('TRADING_METRICS_INTERVAL_MS', 0),
    crashAt: crash as CrashPoint | undefined,
  };
}

/**
 * DATABASE_URL (local, tests), or the container's DB_HOST, DB_PORT, DB_NAME, DB_USERNAME and
 * DB_PASSWORD (the trading login's secret injected by ECS) with DB_TLS=required.
 */
function database(
  env: NodeJS.ProcessEnv,
  need: (name: string) => string,
): { databaseUrl: string; databaseTls: boolean } {
  const tls = env.DB_TLS === 'required';
  if (env.DATABASE_URL) return { databaseUrl: env.DATABASE_URL, databaseTls: tls };
  if (!env.DB_HOST)
    throw new ConfigError('set DATABASE_URL, or DB_HOST, DB_NAME, DB_USERNAME and DB_PASSWORD');
  const url = new URL(`postgres://${need('DB_HOST')}:${env.DB_PORT || '5432'}/${need('DB_NAME')}`);
  url.username = encodeURIComponent(need('DB_USERNAME'));
  url.password = encodeURIComponent(need('DB_PASSWORD'));
  return { databaseUrl: url.toString(), databaseTls: tls };
}

export type ServiceState =
  | 'starting'
  | 'rebuilding'
  | 'connecting'
  | 'reconciling'
  | 'accepting'
  | 'halted'
  | 'stopping'
  | 'stopped';

export interface ServiceEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

/**
 * The reconciliation the service runs at start-up and on its interval: the reconciliation runner
 * (lambdas/trading/reconcile-runner.ts: differences recorded as events once, booked from the broker
 * or held for manual intervention, the view fetch retried with backoff), after the ambiguous orders
 * are resolved. A run that cannot read the broker's view applied nothing and throws (start-up does
 * not accept orders without it). Returns every difference found.
 */
export async function reconcileWithBroker(
  engine: TradingEngine,
  live: LiveBroker,
  at: string,
): Promise<Difference[]> {
  const settle = async () => {
    await live.resolveInFlight();
  };
  const outcome = await reconcileAccount(engine, livePort(live, settle), { at: () => at });
  if (outcome.status === 'incomplete') throw new Error(`reconciliation incomplete: ${outcome.reason}`);
  return outcome.found;
}

export class LiveService {
  state: ServiceState = 'starting';
  /** Why the service halted (integrity, authentication), when it did. */
  haltReason: string | null = null;
  engine: TradingEngine | null = null;
  readonly stream: string;
  private readonly pool: pg.Pool;
  private readonly store: PostgresEventStore;
  private live: LiveBroker | null = null;
  private server: Server | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  /** A nudge came while the loop was not asleep: its next sleep returns at once. */
  private nudged = false;
  private listening: Promise<void> | null = null;
  private unlisten: (() => void) | null = null;
  private lastReconcile = 0;
  private retryAt = 0;
  private crashArmed: CrashPoint | undefined;
  private readonly metrics = new TradingMetricsWindow();
  private metricsTimer: NodeJS.Timeout | null = null;
  /** Breakers and differences already counted (the state's lists only grow). */
  private counted = { breakers: 0, differences: 0 };

  constructor(
    private readonly config: LiveConfig,
    private readonly log: (e: ServiceEvent) => void = (e) => console.log(JSON.stringify(e)),
  ) {
    this.stream = `account-${config.account}`;
    this.crashArmed = config.crashAt;
    this.pool = createPool({
      connectionString: config.databaseUrl,
      ssl: config.databaseTls,
      schema: config.schema,
      // Three for the engine, the dispatcher and the broker's reports; one holds the LISTEN.
      max: 4,
    });
    this.store = new PostgresEventStore(this.pool);
  }

  private crash(point: CrashPoint): void {
    if (this.crashArmed !== point) return;
    // Written synchronously: the test reads it to know the step was reached.
    process.stdout.write(`${JSON.stringify({ event: 'crash', point })}\n`);
    process.exit(137);
  }

  private alert(a: Alert): void {
    this.log({ event: 'alert', severity: a.severity, source: a.source, message: a.message });
  }

  /**
   * `/health`: readiness, 200 `accepting orders` only once reconciled, 503 with the state otherwise.
   * `/live`: liveness, 200 while the process answers (the container's health check: a halted
   * engine stays up, alarmed and inspectable, instead of being replaced into the same halt).
   */
  async listen(): Promise<number | undefined> {
    if (this.config.healthPort === undefined) return undefined;
    this.server = createServer((req, res) => {
      const accepting = this.state === 'accepting';
      const status = req.url === '/health' ? (accepting ? 200 : 503) : req.url === '/live' ? 200 : 404;
      res.writeHead(status, {
        'content-type': 'application/json',
      });
      res.end(
        JSON.stringify({
          state: this.state,
          accepting,
          status: accepting ? 'accepting orders' : this.state,
          haltReason: this.haltReason,
          stream: this.stream,
        }),
      );
    });
    await new Promise<void>((resolve) => this.server?.listen(this.config.healthPort, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  private now(): string {
    return new Date().toISOString();
  }

  private halt(reason: string, detail: Record<string, unknown> = {}): void {
    this.state = 'halted';
    this.haltReason = reason;
    this.log({ event: 'alert', severity: 'critical', source: 'trading-live', message: reason, ...detail });
    this.log({ event: 'halted', reason });
  }

  private broker(): LiveBroker {
    const engine = () => this.engine;
    return new LiveBroker({
      baseUrl: this.config.brokerBaseUrl,
      wsUrl: this.config.brokerWsUrl,
      keyId: this.config.keyId,
      secret: this.config.secret,
      lookup: (cid) => engine()?.state.orders[cid],
      openOrders: () => {
        const s = engine()?.state;
        if (!s) return [];
        return [...s.open].map((id) => s.orders[id] as Order).filter((o) => o && isOpen(o));
      },
      onReport: (report) => this.report(report),
      // Reports are decided in order as they arrive; those that arrive together share a commit.
      decidesAtOnce: () => engine()?.decidesAtOnce() ?? false,
      onIncident: (i: BrokerIncident) => this.incident(i),
      onAnswer: (method, path, status) => this.answer(method, path, status),
      requestTimeoutMs: this.config.requestTimeoutMs,
    });
  }

  /** A broker answer has arrived and is not read yet: the "request sent, answer not processed" points. */
  private answer(method: string, path: string, status: number): void {
    if (status >= 300) return;
    if (method === 'POST' && path === '/v2/orders') this.crash('submit_answered');
    if (method === 'DELETE' && path.startsWith('/v2/orders/')) this.crash('cancel_answered');
    if (method === 'PATCH' && path.startsWith('/v2/orders/')) this.crash('replace_answered');
  }

  private incident(i: BrokerIncident): void {
    this.metrics.incident(i);
    const o = i.outcome;
    if (i.stream || (o && o.class !== 'definitive'))
      this.log({
        event: 'broker',
        stream: i.stream,
        command: i.command,
        clientOrderId: i.clientOrderId,
        outcome: o?.class,
        reason: o && 'reason' in o ? o.reason : undefined,
        detail: i.detail,
      });
  }

  /** A broker report to the engine; a racing writer (ConcurrencyError) rebuilt it: apply again. */
  private async report(report: BrokerReport): Promise<void> {
    if (report.kind === 'fill') this.crash('fill_unbooked');
    const engine = this.engine;
    if (!engine) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await engine.onBrokerReport(report, this.now());
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= 5) throw error;
      }
    }
  }

  /** Start-up: rebuild (verify), connect, reconcile, then accept. Resolves when accepting or halted. */
  /** One interval's metrics: breakers and differences new in the state since the last one. */
  private publishMetrics(publisher: Metrics): void {
    const s = this.engine?.state;
    if (s) {
      const differences = Object.keys(s.reconciliation).length;
      for (let i = this.counted.breakers; i < s.breakers.length; i++) this.metrics.breakerTripped();
      this.metrics.differencesRecorded(Math.max(0, differences - this.counted.differences));
      this.counted = { breakers: s.breakers.length, differences };
    }
    publishTradingMetrics(publisher, this.metrics.take(Date.now(), this.live?.inFlight ?? new Set()));
  }

  async start(): Promise<void> {
    if ((this.config.metricsIntervalMs ?? 0) > 0) {
      const publisher = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Tickstock' });
      this.metricsTimer = setInterval(() => this.publishMetrics(publisher), this.config.metricsIntervalMs);
      this.metricsTimer.unref();
    }
    const port = await this.listen();
    if (port !== undefined) this.log({ event: 'health', port });
    this.state = 'rebuilding';
    this.live = this.broker();
    for (;;) {
      try {
        this.engine = await TradingEngine.open(this.store, this.stream, { onAlert: (a) => this.alert(a) });
        break;
      } catch (error) {
        if (error instanceof AccountNotFoundError) {
          // Opened by `trading init`: wait for it rather than invent an account.
          if (this.stopping) return;
          this.log({ event: 'waiting', reason: error.message });
          await this.sleep(Math.max(this.config.pollMs, 200));
          continue;
        }
        if (error instanceof IntegrityError) {
          if (!(await this.recoverIntegrity(error.failure))) return;
          break;
        }
        throw error;
      }
    }
    const engine = this.engine as TradingEngine | null;
    if (!engine) return;
    this.log({ event: 'rebuilt', version: engine.state.version, orders: engine.state.orderIds.length });
    this.state = 'connecting';
    await this.live.start();
    this.log({ event: 'connected' });
    this.state = 'reconciling';
    const found = await reconcileWithBroker(engine, this.live, this.now());
    this.lastReconcile = Date.now();
    this.log({
      event: 'reconciled',
      differences: found.map((d) => ({ kind: d.kind, key: d.key, resolution: d.resolution })),
    });
    this.state = 'accepting';
    this.log({ event: 'ready', status: 'accepting orders', stream: this.stream });
    this.listening = this.listenForCommands();
    this.loop = this.run();
  }

  /**
   * Wakes the loop when another writer announces commands (the CLI's appends notify
   * OUTBOX_CHANNEL), so they go to the broker at once rather than at the next poll; the poll stays
   * as the fallback for a lost notification or a lost listening connection, which is re-opened.
   */
  private async listenForCommands(): Promise<void> {
    while (!this.stopping) {
      try {
        const subscription = await this.store.listen(this.stream, () => this.nudge());
        if (this.stopping) {
          subscription.close();
          break;
        }
        this.unlisten = subscription.close;
        this.log({ event: 'listening', channel: OUTBOX_CHANNEL });
        // Anything announced while the connection was being opened is read by this step.
        this.nudge();
        await subscription.lost;
      } catch (error) {
        if (!this.stopping) this.log({ event: 'listen_failed', error: (error as Error).message });
      }
      this.unlisten = null;
      if (!this.stopping) await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
    }
  }

  /** The loop runs its next step now: at once when it sleeps, else right after the step it is in. */
  private nudge(): void {
    if (this.wake) this.wake();
    else this.nudged = true;
  }

  /** A broken chain: recovered from the broker when the trusted prefix holds the opening, else halt. */
  private async recoverIntegrity(failure: IntegrityFailure): Promise<boolean> {
    this.log({
      event: 'integrity',
      kind: failure.kind,
      firstBadVersion: failure.firstBadVersion,
      detail: failure.detail,
    });
    if (!failure.trusted.some((e) => e.type === 'AccountOpened')) {
      this.halt(
        `event store ${failure.kind} at version ${failure.firstBadVersion}: the account's opening is not trustworthy; refusing to trade`,
        { firstBadVersion: failure.firstBadVersion },
      );
      return false;
    }
    let view: Awaited<ReturnType<LiveBroker['brokerView']>>;
    try {
      view = await (this.live as LiveBroker).brokerView();
    } catch (error) {
      this.halt(
        `event store ${failure.kind} at version ${failure.firstBadVersion} and the broker cannot be read (${(error as Error).message}): refusing to trade`,
        { firstBadVersion: failure.firstBadVersion },
      );
      return false;
    }
    this.engine = await TradingEngine.recoverIntegrity(this.store, failure, view, this.now(), (a) =>
      this.alert(a),
    );
    this.log({
      event: 'recovered',
      firstBadVersion: failure.firstBadVersion,
      orders: view.orders.length,
      positions: Object.keys(view.positions),
      cash: view.cash,
    });
    return true;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.nudged) {
        this.nudged = false;
        return resolve();
      }
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    while (!this.stopping && this.state === 'accepting') {
      try {
        await this.step();
      } catch (error) {
        if (error instanceof IntegrityError) {
          this.halt(error.message, { firstBadVersion: error.failure.firstBadVersion });
          break;
        }
        this.log({ event: 'step_failed', error: (error as Error).message });
      }
      if (!this.stopping) await this.sleep(this.config.pollMs);
    }
  }

  /** One turn of the loop: catch up, dispatch, resolve, and reconcile when due. */
  async step(): Promise<void> {
    const engine = this.engine as TradingEngine;
    const live = this.live as LiveBroker;
    if ((await this.store.headVersion(this.stream)) > engine.state.version) {
      // Another writer (the CLI) appended: its commands are in the outbox, its events folded now
      // (only those after our version when nothing of ours is pending, else a whole rebuild; either
      // verifies the chain, and a tail that does not verify is loaded whole: IntegrityError halts
      // the loop). A head below the engine's version is ours still being written (a group in
      // flight, acknowledgements held): not a reason to rebuild. Another writer's append that the
      // engine's own decisions have overtaken is caught by the expected-version guard of our next
      // append, which rebuilds the engine.
      await engine.refresh();
    }
    // Session changes, pauses and restoration steps fall due with time, as for every CLI command.
    await engine.advanceTo(this.now());
    if (Date.now() >= this.retryAt) {
      if (this.crashArmed === 'before_submit' && (await this.store.pendingCommands(this.stream)).length > 0)
        this.crash('before_submit');
      try {
        const r = await dispatchLive(this.store, this.stream, live);
        if (r.sent > 0) this.log({ event: 'dispatched', sent: r.sent });
        if (r.blocked instanceof BrokerRetryableError) this.retryAt = r.blocked.outcome.retryAt;
        if (r.blocked instanceof BrokerAuthError) {
          await engine.tripExternal(
            'broker:auth',
            'halted',
            { detail: r.blocked.outcome.detail },
            `the broker refused our credentials (${r.blocked.outcome.detail}): trading halted`,
            this.now(),
            { keepOrders: true, autoRecovery: null },
          );
          this.retryAt = Date.now() + 5_000;
        }
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
    if (live.inFlight.size > 0) await live.resolveInFlight();
    if (Date.now() - this.lastReconcile >= this.config.reconcileMs) {
      this.lastReconcile = Date.now();
      const found = await reconcileWithBroker(engine, live, this.now());
      if (found.length > 0)
        this.log({
          event: 'reconciled',
          differences: found.map((d) => ({ kind: d.kind, key: d.key, resolution: d.resolution })),
        });
    }
  }

  /** Graceful stop: the loop finishes its step, the stream and the pool close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const was = this.state;
    this.state = 'stopping';
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.wake?.();
    this.unlisten?.();
    await this.loop?.catch(() => undefined);
    await this.listening;
    await this.engine?.settled();
    await this.live?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.pool.end();
    this.state = 'stopped';
    this.log({ event: 'stopped', from: was });
  }
}
