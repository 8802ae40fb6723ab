/**
 * Offline replay of a recorded feed through the same router core: the contract behind
 * `npm run pipeline -- router replay`. Feed lines are `{"source","receivedAt","frame"}`; a line that is
 * not one is counted as `malformed` and skipped. Every message a client subscribed to everything
 * receives is written as `{"channel","sym","data"}`, in delivery order.
 */
import { ClientSession } from './client';
import { LatencyRecorder, type LatencySummary } from './latency';
import { Router, type RouterOptions } from './router';
import { type ChannelCounters, reject } from './stats';
import { CHANNELS, type RouterChannel, type SequencedMessage } from './types';

export interface FeedLine {
  readonly source: string;
  readonly receivedAt: number;
  readonly frame: unknown[];
}

/** Parses one feed line; null when it is not a feed line. */
export function parseFeedLine(line: string): FeedLine | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.source !== 'string' || v.source === '') return null;
  if (typeof v.receivedAt !== 'number' || !Number.isFinite(v.receivedAt)) return null;
  if (!Array.isArray(v.frame)) return null;
  return { source: v.source, receivedAt: v.receivedAt, frame: v.frame };
}

export interface ReplaySummary {
  readonly channels: Record<RouterChannel, ChannelCounters>;
  readonly malformed: number;
  readonly latencyMs: Record<RouterChannel, LatencySummary>;
  readonly peakRssMb: number;
}

export interface ReplayOptions {
  /** Multiplier of the feed's own pace (receivedAt gaps), or 'max' for as fast as possible. */
  readonly speed: number | 'max';
  readonly router?: Partial<RouterOptions>;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface DeliveredLine {
  readonly channel: RouterChannel;
  readonly sym: string;
  readonly data: Record<string, unknown>;
}

const RSS_SAMPLE_EVERY = 500;

export async function replayFeed(
  lines: AsyncIterable<string> | Iterable<string>,
  write: (line: DeliveredLine) => void,
  options: ReplayOptions,
): Promise<ReplaySummary> {
  if (options.speed !== 'max' && !(options.speed > 0)) throw new RangeError(`speed must be > 0 or 'max'`);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // No resume history: an offline replay has no reconnecting client.
  const router = new Router({ epoch: 'replay', historySize: 0, ...options.router });
  const latency = new LatencyRecorder();
  const delivered: Record<RouterChannel, number> = { tick: 0, event: 0, fmv: 0, ohlcv: 0 };
  const client = new ClientSession(
    'replay',
    {
      send(m: SequencedMessage) {
        write({ channel: m.channel, sym: m.sym, data: m.data });
      },
      bufferedAmount: () => 0,
    },
    undefined,
    (m) => {
      if (m.data.ev === 'gap') return;
      delivered[m.channel] += 1;
      latency.record(m.channel, performance.now() - m.receivedAtMono);
    },
  );
  router.hub.attach(client);
  for (const c of CHANNELS) router.hub.subscribe(client, c, '*');

  let malformed = 0;
  let peakRss = process.memoryUsage.rss();
  let n = 0;
  let feedStart: number | null = null;
  const wallStart = performance.now();
  for await (const text of lines) {
    if (text.trim() === '') continue;
    const line = parseFeedLine(text);
    if (!line) {
      malformed += 1;
      continue;
    }
    if (options.speed !== 'max') {
      feedStart ??= line.receivedAt;
      const due = (line.receivedAt - feedStart) / options.speed - (performance.now() - wallStart);
      if (due > 1) await sleep(due);
    }
    router.ingest(line.source, line.receivedAt, line.frame, performance.now());
    router.drain();
    n += 1;
    if (n % RSS_SAMPLE_EVERY === 0) peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
  router.closeMinutes();
  router.drain();
  peakRss = Math.max(peakRss, process.memoryUsage.rss());

  const channels = {} as Record<RouterChannel, ChannelCounters>;
  for (const c of CHANNELS) {
    const r = router.stats[c];
    const counters: ChannelCounters = {
      received: r.received,
      delivered: delivered[c],
      duplicates: r.duplicates,
      corrections: r.corrections,
      conflated: r.conflated + client.counters.conflated[c],
      rejected: { ...r.rejected },
    };
    if (client.counters.gapped[c] > 0) reject(counters, 'slow_client', client.counters.gapped[c]);
    channels[c] = counters;
  }
  return {
    channels,
    malformed,
    latencyMs: latency.all(),
    peakRssMb: Math.round((peakRss / 1_048_576) * 10) / 10,
  };
}
