import { describe, expect, it } from 'vitest';
import { TRADING_METRIC_NAMES, TradingMetricsWindow } from '../../../lambdas/trading-live/metrics';
import { TRADING_METRICS } from '../../../lib/constructs/trading-engine';

describe('trading engine metrics (EMF)', () => {
  it('counts broker errors, auth failures, breaker trips and differences per interval, then starts again', () => {
    const w = new TradingMetricsWindow();
    w.incident({ at: 0, outcome: { class: 'retryable', reason: 'rate_limited', status: 429, retryAt: 1 } });
    w.incident({ at: 0, outcome: { class: 'definitive', result: 'accepted', brokerOrderId: 'b1' } });
    w.incident({
      at: 0,
      clientOrderId: 'o1',
      outcome: { class: 'ambiguous', reason: 'timeout', detail: 'x' },
    });
    w.incident({ at: 0, outcome: { class: 'fatal', reason: 'auth', status: 401, detail: 'bad key' } });
    w.incident({ at: 0, stream: 'unauthorized' });
    w.incident({ at: 0, stream: 'disconnected' });
    w.breakerTripped();
    w.differencesRecorded(3);
    expect(w.take(0, new Set(['o1']))).toEqual({
      BreakerTrips: 1,
      OldestAmbiguousOrderSeconds: 0,
      ReconciliationDifferences: 3,
      BrokerErrors: 2,
      BrokerAuthFailures: 2,
    });
    expect(w.take(5_000, new Set(['o1']))).toMatchObject({
      BreakerTrips: 0,
      BrokerErrors: 0,
      BrokerAuthFailures: 0,
    });
  });

  it('reports the age of the oldest order still ambiguous, and none once the adapter resolved them', () => {
    const w = new TradingMetricsWindow();
    w.incident({
      at: 1_000,
      clientOrderId: 'a',
      outcome: { class: 'ambiguous', reason: 'timeout', detail: '' },
    });
    w.incident({
      at: 4_000,
      clientOrderId: 'b',
      outcome: { class: 'ambiguous', reason: 'disconnect', detail: '' },
    });
    expect(w.take(61_000, new Set(['a', 'b'])).OldestAmbiguousOrderSeconds).toBe(60);
    expect(w.take(62_000, new Set(['b'])).OldestAmbiguousOrderSeconds).toBe(58);
    expect(w.take(63_000, new Set()).OldestAmbiguousOrderSeconds).toBeNull();
  });

  it('publishes exactly the names the AWS alarms watch', () => {
    expect([...TRADING_METRIC_NAMES].sort()).toEqual([...TRADING_METRICS.names].sort());
  });
});
