import * as hdr from 'hdr-histogram-js';
import { CHANNELS, type RouterChannel } from './types';

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** Per-channel latency in microseconds (HDR histogram: constant memory, 3 significant digits). */
export class LatencyRecorder {
  private readonly histograms = {} as Record<RouterChannel, hdr.Histogram>;

  constructor() {
    for (const c of CHANNELS) {
      this.histograms[c] = hdr.build({
        lowestDiscernibleValue: 1,
        highestTrackableValue: 60_000_000,
        autoResize: true,
      });
    }
  }

  record(channel: RouterChannel, ms: number): void {
    this.histograms[channel].recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  /** Starts every channel over (an interval's percentiles, e.g. the metrics' tick p99). */
  reset(): void {
    for (const c of CHANNELS) this.histograms[c].reset();
  }

  count(channel: RouterChannel): number {
    return this.histograms[channel].totalCount;
  }

  /** Milliseconds, three decimals; zeros for a channel that delivered nothing. */
  summary(channel: RouterChannel): LatencySummary {
    const h = this.histograms[channel];
    if (h.totalCount === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      p50: ms(h.getValueAtPercentile(50)),
      p95: ms(h.getValueAtPercentile(95)),
      p99: ms(h.getValueAtPercentile(99)),
      max: ms(h.maxValue),
    };
  }

  all(): Record<RouterChannel, LatencySummary> {
    const out = {} as Record<RouterChannel, LatencySummary>;
    for (const c of CHANNELS) out[c] = this.summary(c);
    return out;
  }
}
