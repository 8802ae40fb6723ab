/**
 * The trading engine's CloudWatch metrics as EMF lines on stdout (the container's awslogs driver puts
 * them in CloudWatch Logs, which extracts them: no agent, no PutMetricData on the order path). Once
 * per interval the process publishes what happened since the previous one. The alarms of
 * lib/constructs/trading-engine.ts (TRADING_METRICS) read these names: keep them in step.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BrokerIncident } from '../trading/live-broker';

export interface TradingMetricsSnapshot {
  /** Circuit breakers tripped during the interval. */
  readonly BreakerTrips: number;
  /** Age of the oldest order whose fate at the broker is unknown now (s); null: none. */
  readonly OldestAmbiguousOrderSeconds: number | null;
  /** Reconciliation differences recorded during the interval (each once: deterministic ids). */
  readonly ReconciliationDifferences: number;
  /** Retryable and ambiguous broker outcomes (429, 5xx, maintenance, timeouts, invalid answers). */
  readonly BrokerErrors: number;
  /** The broker refused our credentials (HTTP 401 or the stream's auth). */
  readonly BrokerAuthFailures: number;
}

/**
 * Counts what the adapter and the engine report during an interval. Pure (time is passed in), so
 * the figures can be checked without CloudWatch.
 */
export class TradingMetricsWindow {
  private breakerTrips = 0;
  private differences = 0;
  private brokerErrors = 0;
  private authFailures = 0;
  /** When each order still in flight first became ambiguous. */
  private readonly ambiguousSince = new Map<string, number>();

  /** Every incident of the live adapter (LiveBrokerOptions.onIncident). */
  incident(i: BrokerIncident): void {
    if (i.stream === 'unauthorized' || i.outcome?.class === 'fatal') this.authFailures += 1;
    else if (i.outcome?.class === 'retryable' || i.outcome?.class === 'ambiguous') this.brokerErrors += 1;
    if (i.outcome?.class === 'ambiguous' && i.clientOrderId && !this.ambiguousSince.has(i.clientOrderId))
      this.ambiguousSince.set(i.clientOrderId, i.at);
  }

  breakerTripped(): void {
    this.breakerTrips += 1;
  }

  differencesRecorded(n: number): void {
    this.differences += n;
  }

  /**
   * Closes the interval. `inFlight`: the adapter's orders whose fate is still unknown (an order
   * resolved since is forgotten here).
   */
  take(now: number, inFlight: ReadonlySet<string>): TradingMetricsSnapshot {
    for (const id of [...this.ambiguousSince.keys()]) if (!inFlight.has(id)) this.ambiguousSince.delete(id);
    for (const id of inFlight) if (!this.ambiguousSince.has(id)) this.ambiguousSince.set(id, now);
    let oldest: number | null = null;
    for (const since of this.ambiguousSince.values())
      oldest = oldest === null ? since : Math.min(oldest, since);
    const snapshot: TradingMetricsSnapshot = {
      BreakerTrips: this.breakerTrips,
      OldestAmbiguousOrderSeconds: oldest === null ? null : Math.max(0, (now - oldest) / 1000),
      ReconciliationDifferences: this.differences,
      BrokerErrors: this.brokerErrors,
      BrokerAuthFailures: this.authFailures,
    };
    this.breakerTrips = 0;
    this.differences = 0;
    this.brokerErrors = 0;
    this.authFailures = 0;
    return snapshot;
  }
}

const UNITS: Record<keyof TradingMetricsSnapshot, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  BreakerTrips: MetricUnit.Count,
  OldestAmbiguousOrderSeconds: MetricUnit.Seconds,
  ReconciliationDifferences: MetricUnit.Count,
  BrokerErrors: MetricUnit.Count,
  BrokerAuthFailures: MetricUnit.Count,
};

/** The metric names the process publishes (what the alarms may watch). */
export const TRADING_METRIC_NAMES = Object.keys(UNITS) as (keyof TradingMetricsSnapshot)[];

/** One EMF line (dimension service). A gauge without a value is left out: the alarm sees no data. */
export function publishTradingMetrics(metrics: Metrics, snapshot: TradingMetricsSnapshot): void {
  for (const [name, value] of Object.entries(snapshot) as [keyof TradingMetricsSnapshot, number | null][])
    if (value !== null) metrics.addMetric(name, UNITS[name], value);
  metrics.publishStoredMetrics();
}
