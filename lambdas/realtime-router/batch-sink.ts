/**
 * A buffered, batched egress behind its own circuit breaker (the SQS minute-bar queue, the S3 frame
 * archive): the router core only offers items, one send loop takes up to `batch` of them (or fewer
 * once the oldest has waited `lingerMs`), and a failing destination never stalls the core or the
 * other sinks. Items a send reports as failed stay at the head and are retried; only a full buffer
 * drops (the oldest), and that is counted (`dropped`), never silent.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { BoundedQueue } from '../market/realtime/queue';
import { BREAKER_STATES, type SinkHealth } from './redis-sink';

/** Sends a batch; returns the items that were not accepted (retried), or throws (all retried). */
export type BatchSend<T> = (batch: readonly T[]) => Promise<readonly T[]>;

export interface BatchSinkOptions {
  readonly capacity?: number;
  /** Items per send. */
  readonly batch: number;
  /** A partial batch goes out once its oldest item waited this long (0: at once). */
  readonly lingerMs?: number;
  /** Wait after a failed send (the breaker opens after 3 in a row). */
  readonly retryMs?: number;
}

export class BatchSink<T> {
  private readonly queue: BoundedQueue<{ item: T; at: number }>;
  private readonly breaker = circuitBreaker(handleAll, {
    halfOpenAfter: 1_000,
    breaker: new ConsecutiveBreaker(3),
  });
  private running = false;
  private stopped = false;
  private flushing = false;
  private timer: NodeJS.Timeout | null = null;
  /**
   * The batch being sent (then its refused items, retried first), out of the buffer: an overflow
   * meanwhile drops buffered items, never these, and the wrong items are never shifted off.
   */
  private inflight: { item: T; at: number }[] = [];
  published = 0;
  failures = 0;
  dropped = 0;

  constructor(
    readonly name: string,
    private readonly send: BatchSend<T>,
    private readonly options: BatchSinkOptions,
  ) {
    this.queue = new BoundedQueue(options.capacity ?? 100_000);
  }

  offer(item: T): void {
    if (this.queue.pushEvictingOldest({ item, at: Date.now() })) this.dropped += 1;
    this.kick();
  }

  health(): SinkHealth {
    return {
      breaker: BREAKER_STATES[this.breaker.state],
      depth: this.queue.length + this.inflight.length,
      published: this.published,
      failures: this.failures,
      dropped: this.dropped,
    };
  }

  /** Sends everything buffered (partial batches too); true when empty before `deadline` (epoch ms). */
  async flush(deadline: number): Promise<boolean> {
    this.flushing = true;
    try {
      this.kick();
      while ((this.pending() || this.running) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        this.kick();
      }
      return !this.pending();
    } finally {
      this.flushing = false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private pending(): boolean {
    return this.queue.length > 0 || this.inflight.length > 0;
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    const head = this.inflight[0] ?? this.queue.peek();
    if (!head) return;
    const linger = this.options.lingerMs ?? 0;
    const wait = head.at + linger - Date.now();
    if (this.inflight.length === 0 && this.queue.length < this.options.batch && wait > 0 && !this.flushing) {
      // A partial batch waits for more items, at most until its oldest has lingered long enough.
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.kick();
      }, wait);
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending() && !this.stopped) {
        const linger = this.options.lingerMs ?? 0;
        const head = this.queue.peek();
        const full = this.inflight.length > 0 || this.queue.length >= this.options.batch;
        if (!full && !this.flushing && head && head.at + linger > Date.now()) break;
        try {
          await this.sendBatch();
        } catch {
          await new Promise((r) => setTimeout(r, this.options.retryMs ?? 200));
        }
      }
    } finally {
      this.running = false;
      if (this.pending() && !this.stopped) this.kick();
    }
  }

  private async sendBatch(): Promise<void> {
    if (this.inflight.length === 0) {
      while (this.inflight.length < this.options.batch && this.queue.length > 0)
        this.inflight.push(this.queue.shift() as { item: T; at: number });
    }
    const entries = this.inflight;
    if (entries.length === 0) return;
    const batch = entries.map((e) => e.item);
    let failed: readonly T[];
    try {
      failed = await this.breaker.execute(() => this.send(batch));
    } catch (error) {
      this.failures += 1;
      throw error;
    }
    const retry = new Set(failed);
    // Not accepted: kept in flight, in order, and retried before anything newer.
    this.inflight = entries.filter((e) => retry.has(e.item));
    this.published += entries.length - this.inflight.length;
    if (this.inflight.length > 0) {
      this.failures += 1;
      throw new Error(`${this.name}: ${this.inflight.length} of ${entries.length} not accepted`);
    }
  }
}
