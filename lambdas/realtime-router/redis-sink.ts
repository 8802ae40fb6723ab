/**
 * One channel's egress to the app's Redis Stream through the event bus, behind its own circuit
 * breaker and bounded buffer: Redis failing (or slow) for one channel never stalls the router core
 * or the other channels. Messages stay buffered while the breaker is open and go out when it closes;
 * only when the buffer is full is the oldest dropped, and that is counted (`dropped`) and announced in
 * the stream itself by a `gap` entry (`{"ev":"gap","missed","from","to"}` offsets) before the next
 * message, never silent. The batch in flight is out of the buffer, so an overflow never drops it.
 * What is buffered goes out in batches (up to `batch` messages, offset order), each one MULTI on the
 * channel's connection (EventBus.publishBatch): at the 10x surge one transaction per message was the
 * sink's whole cost.
 */
import { createHash } from 'node:crypto';
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { BoundedQueue } from '../market/realtime/queue';
import type { RouterChannel, SequencedMessage } from '../market/realtime/types';
import { CHANNELS, type Channel, type EventBus, type PublishInput } from '../platform/event-bus';

export const BUS_CHANNEL: Record<RouterChannel, Channel> = {
  tick: CHANNELS.realtimeTick,
  event: CHANNELS.realtimeEvent,
  fmv: CHANNELS.realtimeFmv,
  ohlcv: CHANNELS.realtimeOhlcv,
};

export interface SinkHealth {
  readonly breaker: 'closed' | 'open' | 'half_open' | 'isolated';
  readonly depth: number;
  readonly published: number;
  readonly failures: number;
  readonly dropped: number;
  /** Gap entries written to the stream for dropped messages (Redis sinks only). */
  readonly gaps?: number;
  /** Deepest the buffer has been since start (Redis sinks only). */
  readonly peakDepth?: number;
}

/** The breaker's state as `/health` names it (shared by the Redis and the batch sinks). */
export const BREAKER_STATES: Readonly<Record<CircuitState, SinkHealth['breaker']>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * A stable message_id per (epoch, channel, offset): a retried publish is recognisably the same. A
 * UUID-shaped id whose first 80 bits hash (epoch, channel), computed once per pair, and whose last 48
 * bits are the offset: no hash per message.
 */
const idPrefixes = new Map<string, string>();

export function messageId(m: SequencedMessage): string {
  const pair = `${m.epoch}|${m.channel}`;
  let prefix = idPrefixes.get(pair);
  if (prefix === undefined) {
    prefix = sha1Uuid(pair).slice(0, 24);
    if (idPrefixes.size > 1_000) idPrefixes.clear();
    idPrefixes.set(pair, prefix);
  }
  return prefix + m.offset.toString(16).padStart(12, '0');
}

export function eventType(m: SequencedMessage): string {
  if (typeof m.data.type === 'string') return m.data.type;
  if (m.data.ev === 'minute_complete' || m.data.ev === 'gap') return m.data.ev;
  return m.kind;
}

/** Messages the sink's buffer dropped since its last gap entry: contiguous offsets of one epoch. */
interface PendingGap {
  epoch: string;
  from: number;
  to: number;
  missed: number;
}

export class RedisChannelSink {
  private readonly queue: BoundedQueue<SequencedMessage>;
  private readonly breaker = circuitBreaker(handleAll, {
    halfOpenAfter: 1_000,
    breaker: new ConsecutiveBreaker(3),
  });
  private running = false;
  private stopped = false;
  /**
   * The batch being sent, out of the buffer: an overflow while it is in flight drops buffered
   * messages, never one of these (a batch taken from the buffer's head and shifted off after the
   * round trip would shift off the wrong messages once the head had been evicted meanwhile).
   */
  private inflight: SequencedMessage[] = [];
  /** The gap entry of the batch in flight (retried with it, same message_id). */
  private inflightGap: PendingGap | null = null;
  /** Dropped messages not yet announced in the stream. */
  private gap: PendingGap | null = null;
  published = 0;
  failures = 0;
  dropped = 0;
  /** Gap entries written to the stream (one per run of dropped messages). */
  gaps = 0;
  /** The deepest the buffer has been: how close the sink came to dropping. */
  peakDepth = 0;

  constructor(
    readonly channel: RouterChannel,
    private readonly bus: EventBus,
    capacity = 100_000,
    private readonly batch = 512,
  ) {
    this.queue = new BoundedQueue(capacity);
  }

  offer(m: SequencedMessage): void {
    if (this.queue.full) this.drop(this.queue.shift() as SequencedMessage);
    this.queue.push(m);
    if (this.queue.length > this.peakDepth) this.peakDepth = this.queue.length;
    this.kick();
  }

  health(): SinkHealth {
    return {
      breaker: BREAKER_STATES[this.breaker.state],
      depth: this.queue.length + this.inflight.length,
      published: this.published,
      failures: this.failures,
      dropped: this.dropped,
      gaps: this.gaps,
      peakDepth: this.peakDepth,
    };
  }

  /** Waits until the buffer is published (by the one send loop) or `deadline` (epoch ms) passes. */
  async flush(deadline: number): Promise<boolean> {
    this.kick();
    while ((this.pending() || this.running) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      this.kick();
    }
    return !this.pending();
  }

  stop(): void {
    this.stopped = true;
  }

  private pending(): boolean {
    return (
      this.queue.length > 0 || this.inflight.length > 0 || this.gap !== null || this.inflightGap !== null
    );
  }

  /**
   * A message the full buffer could not keep: counted, and announced in the stream by a `gap` entry
   * (missed, from, to offsets) written before the next message, so a consumer of the stream sees
   * the loss where it happened instead of an unexplained jump in offsets.
   */
  private drop(m: SequencedMessage): void {
    this.dropped += 1;
    // The buffer drops its oldest, so the run is contiguous (one router, one epoch, offsets rising).
    const g = this.gap;
    if (g) {
      g.missed += 1;
      g.to = m.offset;
    } else {
      this.gap = { epoch: m.epoch, from: m.offset, to: m.offset, missed: 1 };
    }
  }

  private kick(): void {
    // Nothing to send: no loop (flush polls kick(), and a loop scheduled for nothing would keep
    // `running` set, so flush waited out its whole deadline).
    if (this.running || this.stopped || !this.pending()) return;
    this.running = true;
    // Never on the caller's stack: offer() is called from the core's drain, and the envelope building
    // and Redis calls of a batch must not delay the clients' sends of that drain.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending() && !this.stopped) {
        try {
          await this.sendBatch();
        } catch {
          // Open breaker or a failed batch: wait, the batch stays in flight and is retried whole.
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async sendBatch(): Promise<void> {
    if (this.inflight.length === 0 && this.inflightGap === null) {
      // Taken out of the buffer now: a gap comes before the messages that follow it.
      this.inflightGap = this.gap;
      this.gap = null;
      const batch: SequencedMessage[] = [];
      while (batch.length < this.batch && this.queue.length > 0)
        batch.push(this.queue.shift() as SequencedMessage);
      this.inflight = batch;
    }
    const batch = this.inflight;
    const gap = this.inflightGap;
    if (batch.length === 0 && gap === null) return;
    const channel = BUS_CHANNEL[this.channel];
    const inputs: PublishInput[] = batch.map((m) => ({
      message_id: messageId(m),
      event_type: eventType(m),
      data: { sym: m.sym, epoch: m.epoch, offset: m.offset, ...m.data },
    }));
    if (gap) {
      inputs.unshift({
        message_id: gapMessageId(gap, this.channel),
        event_type: 'gap',
        data: {
          sym: '*',
          epoch: gap.epoch,
          ev: 'gap',
          missed: gap.missed,
          from: gap.from,
          to: gap.to,
          reason: 'redis_sink_overflow',
        },
      });
    }
    try {
      // One MULTI per batch (XADD + PUBLISH per message, in offset order): one round trip and one
      // transaction instead of one per message. The batch succeeds or is retried whole (a retry
      // repeats the same message_ids, so consumers can drop the repeat).
      await this.breaker.execute(() => this.bus.publishBatch(channel, inputs));
    } catch (error) {
      this.failures += 1;
      throw error;
    }
    this.inflight = [];
    this.inflightGap = null;
    this.published += batch.length;
    if (gap) this.gaps += 1;
  }
}

/** A stable message_id for a gap entry: the (epoch, channel) prefix hashed apart from the messages'. */
function gapMessageId(gap: PendingGap, channel: RouterChannel): string {
  return sha1Uuid(`${gap.epoch}|${channel}|gap|${gap.from}|${gap.to}`);
}

/** A name-based (version 5 shaped) UUID from the SHA-1 of `text`. */
function sha1Uuid(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
