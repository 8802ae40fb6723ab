import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { emptyChannelStats } from '../../../lambdas/market/realtime/stats';
import { type SequencedMessage, wireText } from '../../../lambdas/market/realtime/types';
import { MetricsWindow, PROCESS_METRICS, publishSnapshot } from '../../../lambdas/realtime-router/metrics';
import type { ServiceHealth } from '../../../lambdas/realtime-router/service';

const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);

function health(over: {
  received?: number;
  overflow?: number;
  disconnects?: number;
  sinkDropped?: number;
  clientGapped?: number;
  clientConflated?: number;
  depth?: number;
  ages?: (number | null)[];
}): ServiceHealth {
  const channels = emptyChannelStats();
  channels.tick.received = over.received ?? 0;
  channels.tick.delivered = over.received ?? 0;
  channels.ohlcv.rejected = { high_below_open_close: 2, buffer_overflow: over.overflow ?? 0 };
  const ages = over.ages ?? [null, null, null, null];
  return {
    status: 'running',
    router: {
      channels,
      bufferDepth: { tick: 0, event: 0, fmv: 0, ohlcv: over.depth ?? 0 },
    },
    latencyMs: {},
    provider: { disconnects: over.disconnects ?? 0 },
    sinks: {
      fmv: { breaker: 'closed', depth: 5, published: 0, failures: 0, dropped: over.sinkDropped ?? 0 },
    },
    clients: [
      {
        id: 'c',
        queued: 0,
        conflating: false,
        sent: { tick: 0, event: 0, fmv: 0, ohlcv: 0 },
        gapped: { tick: over.clientGapped ?? 0, event: 0, fmv: 0, ohlcv: 0 },
        conflated: { tick: 0, event: 0, fmv: over.clientConflated ?? 0, ohlcv: 0 },
      },
    ],
    lastEventAgeMs: { tick: ages[0], event: ages[1], fmv: ages[2], ohlcv: ages[3] },
  } as unknown as ServiceHealth;
}

describe('router metrics (EMF)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('reports counter deltas per interval, not running totals', () => {
    const w = new MetricsWindow();
    const first = w.take(health({ received: 10, disconnects: 1, overflow: 3 }), 1.5);
    const second = w.take(
      health({ received: 25, disconnects: 1, overflow: 4, sinkDropped: 2, clientGapped: 1 }),
      null,
    );

    expect(first.channels.tick).toMatchObject({ Received: 10, Delivered: 10 });
    expect(first.channels.ohlcv.Rejected).toBe(5);
    expect(first.process).toMatchObject({ Disconnects: 1, Dropped: 3, TickLatencyP99Ms: 1.5 });
    expect(second.channels.tick).toMatchObject({ Received: 15, Delivered: 15 });
    expect(second.channels.ohlcv.Rejected).toBe(1);
    // One more router overflow, two dropped by the Redis sink, one gapped at a client.
    expect(second.process).toMatchObject({ Disconnects: 0, Dropped: 4, TickLatencyP99Ms: null });
  });

  it('takes feed lag as the worst event-time delay of the interval, and resets it', () => {
    const w = new MetricsWindow();
    w.observeFrame(
      [
        { ev: 'T', t: T0 },
        { ev: 'T', t: T0 + 900 },
      ],
      T0 + 1_000,
    );
    w.observeFrame([{ ev: 'FMV', t: (T0 + 500) * 1e6 }], T0 + 3_000);
    w.observeFrame([{ ev: 'status', status: 'connected' }], T0 + 9_000);

    expect(w.take(health({}), null).process.FeedLagMs).toBe(2_500);
    expect(w.take(health({}), null).process.FeedLagMs).toBeNull();
  });

  it('sums buffer depth over channels and sinks, and takes the youngest channel as last-event age', () => {
    const snapshot = new MetricsWindow().take(health({ depth: 7, ages: [null, 4_000, 250, null] }), null);

    expect(snapshot.process.BufferDepth).toBe(12);
    expect(snapshot.process.LastEventAgeMs).toBe(250);
  });

  it('writes EMF lines: one per channel with its dimension, one for the process without missing gauges', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    // As in the container: not Powertools' dev mode (which would disable metrics and use console.log).
    vi.stubEnv('POWERTOOLS_DEV', 'false');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const metrics = new Metrics({ namespace: 'Tickstock', serviceName: 'realtime-router' });
    publishSnapshot(metrics, new MetricsWindow().take(health({ received: 3, depth: 1 }), null));
    vi.restoreAllMocks();

    const docs = lines
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(docs).toHaveLength(5);
    const tick = docs.find((d) => d.channel === 'tick');
    expect(tick._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'Tickstock',
      Dimensions: [expect.arrayContaining(['service', 'channel'])],
    });
    expect(tick.Received).toBe(3);
    const processDoc = docs.find((d) => d.channel === undefined);
    expect(processDoc.service).toBe('realtime-router');
    expect(processDoc.BufferDepth).toBe(6);
    // No events, no ticks: no FeedLagMs, LastEventAgeMs or TickLatencyP99Ms datapoint (not a fake 0).
    for (const gauge of ['FeedLagMs', 'LastEventAgeMs', 'TickLatencyP99Ms'])
      expect(processDoc).not.toHaveProperty(gauge);
    const names = processDoc._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name);
    for (const n of names) expect(PROCESS_METRICS).toContain(n);
  });
});

describe('wire text', () => {
  it('is the client message, serialised once and reused for every client', () => {
    const m: SequencedMessage = {
      channel: 'tick',
      sym: 'A',
      kind: 'trade',
      data: { ev: 'T', sym: 'A', p: 1 },
      receivedAtMono: 0,
      epoch: 'e1',
      offset: 7,
    };
    const text = wireText(m);

    expect(JSON.parse(text)).toEqual({ channel: 'tick', epoch: 'e1', offset: 7, sym: 'A', data: m.data });
    expect(wireText(m)).toBe(text);
    expect(m.wire).toBe(text);
  });
});
