/**
 * The send loop the router's sinks share (`RedisChannelSink`: Redis Streams; `BatchSink`: SQS bars, S3
 * frames): one loop at a time takes a batch out of the sink's bounded buffer and sends it behind the
 * sink's own circuit breaker; a failed batch stays in flight and is retried after a wait, before
 * anything newer. `flush` sends what is left (a lingering partial batch too); `stop` ends the loop.
 * The sinks own their buffers and what a batch is; this owns when one is sent.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { BREAKER_STATES, type SinkHealth } from './sink-health';

export interface SendLoopOptions {
  /** Wait after a failed send (the breaker opens after 3 in a row). Default 200 ms. */
  readonly retryMs?: number;
  /**
   * Start the loop on a later turn (setImmediate) rather than on the offering caller's stack: the
   * first batch then takes a whole burst of offers.
   */
  readonly deferStart?: boolean;
}

export abstract class SendLoop {
  private readonly breaker = circuitBreaker(handleAll, {
    halfOpenAfter: 1_000,
    breaker: new ConsecutiveBreaker(3),
  });
  private running = false;
  private stopped = false;
  private flushing = false;
  private timer: NodeJS.Timeout | null = null;
  /** Failed sends (an open breaker's refusals included). */
  failures = 0;

  constructor(private readonly loopOptions: SendLoopOptions = {}) {}

  /** Anything buffered or in flight. */
  protected abstract pending(): boolean;

  /** Sends the batch in flight (taking one from the buffer first if none); throws to retry it. */
  protected abstract sendBatch(): Promise<void>;

  /** Milliseconds until a batch is due (a partial batch lingering); 0: now. */
  protected dueIn(): number {
    return 0;
  }

  /** Called after each send, confirmed or failed. */
  protected sent(): void {}

  /** Runs `send` behind the breaker. */
  protected guarded<R>(send: () => Promise<R>): Promise<R> {
    return this.breaker.execute(send);
  }

  protected breakerState(): SinkHealth['breaker'] {
    return BREAKER_STATES[this.breaker.state];
  }

  /** Waits until everything is sent (by the one loop) or `deadline` (epoch ms) passes. */
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

  protected kick(): void {
    // Nothing to send: no loop (flush polls kick(), and a loop scheduled for nothing would keep
    // `running` set, so flush waited out its whole deadline).
    if (this.running || this.stopped || !this.pending()) return;
    const wait = this.flushing ? 0 : this.dueIn();
    if (wait > 0) {
      // A partial batch waits for more, at most until it is due.
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.kick();
      }, wait);
      return;
    }
    this.running = true;
    if (this.loopOptions.deferStart) setImmediate(() => void this.loop());
    else void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending() && !this.stopped && (this.flushing || this.dueIn() <= 0)) {
        try {
          await this.sendBatch();
        } catch {
          // Open breaker or a failed batch: wait, the batch stays in flight and is retried whole.
          this.failures += 1;
          await new Promise((r) => setTimeout(r, this.loopOptions.retryMs ?? 200));
        } finally {
          this.sent();
        }
      }
    } finally {
      this.running = false;
      if (this.pending() && !this.stopped) this.kick();
    }
  }
}
