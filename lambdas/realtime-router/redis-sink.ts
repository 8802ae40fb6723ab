/**
 * One channel's egress to the app's Redis Stream through the event bus, behind its own circuit
 * breaker and bounded buffer: Redis failing (or slow) for one channel never stalls the router core
 * or the other channels. Messages stay buffered while the breaker is open and go out when it closes;
 * only when the buffer is full is the oldest dropped, and that is counted (`dropped`), never silent.
 * What is buffered goes out in batches (up to `batch` messages, offset order), each one MULTI on the
 * channel's connection (EventBus.publishBatch): at the 10x surge one transaction per message was the
 * sink's whole cost.
 */
import { createHash } from 'node:crypto';
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { BoundedQueue } from '../market/realtime/queue';
import type { RouterChannel, SequencedMessage } from '../market/realtime/types';
import { CHANNELS, type Channel, type EventBus } from '../platform/event-bus';

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
    const h = createHash('sha1').update(pair).digest('hex');
    prefix = `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-`;
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

export class RedisChannelSink {
  private readonly queue: BoundedQueue<SequencedMessage>;
  private readonly breaker = circuitBreaker(handleAll, {
    halfOpenAfter: 1_000,
    breaker: new ConsecutiveBreaker(3),
  });
  private running = false;
  private stopped = false;
  published = 0;
  failures = 0;
  dropped = 0;

  constructor(
    readonly channel: RouterChannel,
    private readonly bus: EventBus,
    capacity = 100_000,
    private readonly batch = 512,
  ) {
    this.queue = new BoundedQueue(capacity);
  }

  offer(m: SequencedMessage): void {
    if (this.queue.pushEvictingOldest(m)) this.dropped += 1;
    this.kick();
  }

  health(): SinkHealth {
    return {
      breaker: BREAKER_STATES[this.breaker.state],
      depth: this.queue.length,
      published: this.published,
      failures: this.failures,
      dropped: this.dropped,
    };
  }

  /** Waits until the buffer is published (by the one send loop) or `deadline` (epoch ms) passes. */
  async flush(deadline: number): Promise<boolean> {
    this.kick();
    while ((this.queue.length > 0 || this.running) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      this.kick();
    }
    return this.queue.length === 0;
  }

  stop(): void {
    this.stopped = true;
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // Never on the caller's stack: offer() is called from the core's drain, and the envelope building
    // and Redis calls of a batch must not delay the clients' sends of that drain.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.stopped) {
        try {
          await this.sendBatch();
        } catch {
          // Open breaker or a failed batch: wait, the messages stay buffered.
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async sendBatch(): Promise<void> {
    const batch: SequencedMessage[] = [];
    for (const m of this.queue) {
      batch.push(m);
      if (batch.length >= this.batch) break;
    }
    if (batch.length === 0) return;
    const channel = BUS_CHANNEL[this.channel];
    try {
      await this.breaker.execute(() =>
        // One MULTI per batch (XADD + PUBLISH per message, in offset order): one round trip and one
        // transaction instead of one per message. The batch succeeds or is retried whole (a retry
        // repeats the same message_ids, so consumers can drop the repeat).
        this.bus.publishBatch(
          channel,
          batch.map((m) => ({
            message_id: messageId(m),
            event_type: eventType(m),
            data: { sym: m.sym, epoch: m.epoch, offset: m.offset, ...m.data },
          })),
        ),
      );
    } catch (error) {
      this.failures += 1;
      throw error;
    }
    for (let k = 0; k < batch.length; k += 1) this.queue.shift();
    this.published += batch.length;
  }
}
