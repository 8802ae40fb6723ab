/**
 * A buffered, batched egress behind its own circuit breaker (the SQS minute-bar queue, the S3 frame
 * archive): the router core only offers items, one send loop takes up to `batch` of them (or fewer
 * once the oldest has waited `lingerMs`), and a failing destination never stalls the core or the
 * other sinks. Items a send reports as failed stay at the head and are retried; only a full buffer
 * drops (the oldest), and that is counted (`dropped`), never silent.
 */
import { BoundedQueue } from '../market/realtime/queue';
import { SendLoop } from './send-loop';
import type { SinkHealth } from './sink-health';

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

export class BatchSink<T> extends SendLoop {
  private readonly queue: BoundedQueue<{ item: T; at: number }>;
  /**
   * The batch being sent (then its refused items, retried first), out of the buffer: an overflow
   * meanwhile drops buffered items, never these, and the wrong items are never shifted off.
   */
  private inflight: { item: T; at: number }[] = [];
  published = 0;
  dropped = 0;

  constructor(
    readonly name: string,
    private readonly send: BatchSend<T>,
    private readonly options: BatchSinkOptions,
  ) {
    super({ retryMs: options.retryMs ?? 200 });
    this.queue = new BoundedQueue(options.capacity ?? 100_000);
  }

  offer(item: T): void {
    if (this.queue.pushEvictingOldest({ item, at: Date.now() })) this.dropped += 1;
    this.kick();
  }

  health(): SinkHealth {
    return {
      breaker: this.breakerState(),
      depth: this.queue.length + this.inflight.length,
      published: this.published,
      failures: this.failures,
      dropped: this.dropped,
    };
  }

  protected override pending(): boolean {
    return this.queue.length > 0 || this.inflight.length > 0;
  }

  /** A full batch (or one in flight) goes now; a partial one once its oldest item has lingered. */
  protected override dueIn(): number {
    if (this.inflight.length > 0 || this.queue.length >= this.options.batch) return 0;
    const head = this.queue.peek();
    return head ? head.at + (this.options.lingerMs ?? 0) - Date.now() : 0;
  }

  protected override async sendBatch(): Promise<void> {
    if (this.inflight.length === 0) {
      while (this.inflight.length < this.options.batch && this.queue.length > 0)
        this.inflight.push(this.queue.shift() as { item: T; at: number });
    }
    const entries = this.inflight;
    if (entries.length === 0) return;
    const batch = entries.map((e) => e.item);
    const failed = await this.guarded(() => this.send(batch));
    const retry = new Set(failed);
    // Not accepted: kept in flight, in order, and retried before anything newer.
    this.inflight = entries.filter((e) => retry.has(e.item));
    this.published += entries.length - this.inflight.length;
    if (this.inflight.length > 0)
      throw new Error(`${this.name}: ${this.inflight.length} of ${entries.length} not accepted`);
  }
}
