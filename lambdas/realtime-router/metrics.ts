/**
 * The router's CloudWatch metrics as EMF (embedded metric format) lines on stdout: in AWS the
 * container's awslogs driver puts them in CloudWatch Logs, which extracts the metrics (no agent, no
 * PutMetricData call, nothing on the tick path). Once per interval the process publishes the deltas of
 * its counters since the previous interval, the gauges at that moment and the interval's tick p99.
 * The alarms of lib/constructs/realtime-router.ts read these names: keep them in step.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { rejectedTotal } from '../market/realtime/stats';
import { CHANNELS, type RouterChannel, toMillis } from '../market/realtime/types';
import type { ServiceHealth } from './service';

/** Per channel (dimension `channel`): counts during the interval. */
export const CHANNEL_METRICS = ['Received', 'Delivered', 'Duplicates', 'Rejected', 'Conflated'] as const;
export type ChannelMetric = (typeof CHANNEL_METRICS)[number];

/** Process-wide (no channel dimension): what the alarms watch. */
export interface ProcessMetrics {
  /** Messages waiting in the router's channel buffers and the Redis sinks' buffers (now). */
  readonly BufferDepth: number;
  /** Worst delay of the interval between an event's provider time and its receipt (ms); null: no events. */
  readonly FeedLagMs: number | null;
  /** Age of the newest event on any channel (ms); null before the first. */
  readonly LastEventAgeMs: number | null;
  /** Provider socket disconnects during the interval. */
  readonly Disconnects: number;
  /** Messages lost to a full buffer (router channel buffer, Redis sink, slow client's gap) in the interval. */
  readonly Dropped: number;
  /** Messages replaced by a newer value (router overflow and slow clients) in the interval. */
  readonly Conflated: number;
  /** Tick latency p99, frame receipt to client send, over the interval (ms); null: no ticks sent. */
  readonly TickLatencyP99Ms: number | null;
}

export interface MetricsSnapshot {
  readonly channels: Record<RouterChannel, Record<ChannelMetric, number>>;
  readonly process: ProcessMetrics;
}

/** Running totals the deltas are taken from. */
interface Totals {
  readonly channels: Record<RouterChannel, Record<ChannelMetric, number>>;
  readonly disconnects: number;
  readonly dropped: number;
  readonly conflated: number;
}

function totals(health: ServiceHealth): Totals {
  const channels = {} as Totals['channels'];
  let conflated = 0;
  let dropped = 0;
  for (const c of CHANNELS) {
    const s = health.router.channels[c];
    channels[c] = {
      Received: s.received,
      Delivered: s.delivered,
      Duplicates: s.duplicates,
      Rejected: rejectedTotal(s),
      Conflated: s.conflated,
    };
    conflated += s.conflated;
    dropped += s.rejected.buffer_overflow ?? 0;
    dropped += health.sinks[c]?.dropped ?? 0;
  }
  for (const client of health.clients) {
    for (const c of CHANNELS) {
      conflated += client.conflated[c];
      dropped += client.gapped[c];
    }
  }
  return { channels, disconnects: health.provider.disconnects, dropped, conflated };
}

/**
 * What one interval reports: counter deltas against `previous` (all of them on the first call), the
 * gauges now. Pure, so the figures can be checked without CloudWatch.
 */
export class MetricsWindow {
  private previous: Totals | null = null;
  private feedLag: number | null = null;

  /** A provider frame from the socket: its newest event time against the receipt time. */
  observeFrame(frame: readonly unknown[], receivedAt: number): void {
    let newest = Number.NEGATIVE_INFINITY;
    for (const e of frame) {
      const t = (e as { t?: unknown; e?: unknown } | null)?.t ?? (e as { e?: unknown } | null)?.e;
      if (typeof t === 'number' && Number.isFinite(t)) newest = Math.max(newest, toMillis(t));
    }
    if (newest === Number.NEGATIVE_INFINITY) return;
    const lag = Math.max(0, receivedAt - newest);
    if (this.feedLag === null || lag > this.feedLag) this.feedLag = lag;
  }

  /** Closes the interval: the snapshot to publish, and a fresh interval from here. */
  take(health: ServiceHealth, tickP99Ms: number | null): MetricsSnapshot {
    const now = totals(health);
    const before = this.previous;
    const channels = {} as MetricsSnapshot['channels'];
    for (const c of CHANNELS) {
      const row = {} as Record<ChannelMetric, number>;
      for (const m of CHANNEL_METRICS) row[m] = now.channels[c][m] - (before?.channels[c][m] ?? 0);
      channels[c] = row;
    }
    let bufferDepth = 0;
    for (const c of CHANNELS) bufferDepth += health.router.bufferDepth[c] + (health.sinks[c]?.depth ?? 0);
    let lastEventAge: number | null = null;
    for (const c of CHANNELS) {
      const age = health.lastEventAgeMs[c];
      if (age !== null && (lastEventAge === null || age < lastEventAge)) lastEventAge = age;
    }
    const snapshot: MetricsSnapshot = {
      channels,
      process: {
        BufferDepth: bufferDepth,
        FeedLagMs: this.feedLag,
        LastEventAgeMs: lastEventAge,
        Disconnects: now.disconnects - (before?.disconnects ?? 0),
        Dropped: now.dropped - (before?.dropped ?? 0),
        Conflated: now.conflated - (before?.conflated ?? 0),
        TickLatencyP99Ms: tickP99Ms,
      },
    };
    this.previous = now;
    this.feedLag = null;
    return snapshot;
  }
}

const UNITS: Record<keyof ProcessMetrics, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  BufferDepth: MetricUnit.Count,
  FeedLagMs: MetricUnit.Milliseconds,
  LastEventAgeMs: MetricUnit.Milliseconds,
  Disconnects: MetricUnit.Count,
  Dropped: MetricUnit.Count,
  Conflated: MetricUnit.Count,
  TickLatencyP99Ms: MetricUnit.Milliseconds,
};

/** The process-wide metric names (what the alarms may watch). */
export const PROCESS_METRICS = Object.keys(UNITS) as (keyof ProcessMetrics)[];

/**
 * Writes one snapshot through Powertools Metrics: one EMF line per channel (dimensions service,
 * channel) and one for the process (dimension service). A gauge without a value (no events in the
 * interval) is left out rather than reported as 0, so an alarm sees missing data, not a good value.
 */
export function publishSnapshot(metrics: Metrics, snapshot: MetricsSnapshot): void {
  for (const c of CHANNELS) {
    metrics.addDimension('channel', c);
    for (const m of CHANNEL_METRICS) metrics.addMetric(m, MetricUnit.Count, snapshot.channels[c][m]);
    metrics.publishStoredMetrics();
  }
  for (const [name, value] of Object.entries(snapshot.process) as [keyof ProcessMetrics, number | null][]) {
    if (value !== null) metrics.addMetric(name, UNITS[name], value);
  }
  metrics.publishStoredMetrics();
}
