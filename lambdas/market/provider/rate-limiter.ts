export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Client-side token bucket: at most `callsPerMinute` on average, bursts up to `burst`. Waiters are
 * served in arrival order so concurrent jobs share the budget fairly. The limit is configuration (a
 * free key allows 5/min, paid ones far more); nothing sleeps after a call that did not need to.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly perMs: number;
  readonly burst: number;

  constructor(
    readonly callsPerMinute: number,
    burst: number = callsPerMinute,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(callsPerMinute > 0)) throw new RangeError(`callsPerMinute must be > 0, got ${callsPerMinute}`);
    this.burst = Math.max(1, burst);
    this.perMs = callsPerMinute / 60_000;
    this.tokens = this.burst;
    this.updatedAt = clock.now();
  }

  /** Resolves when a call may be made. */
  take(): Promise<void> {
    const turn = this.queue.then(() => this.takeOne());
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async takeOne(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(this.burst, this.tokens + (now - this.updatedAt) * this.perMs);
      this.updatedAt = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.clock.sleep(Math.ceil((1 - this.tokens) / this.perMs));
    }
  }
}
