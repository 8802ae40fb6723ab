/**
 * One client's delivery state: what it subscribed to, and a bounded send buffer with the slow-client
 * policy. A client that falls behind (its queue passes `highWater`) is switched to conflation: FMV and
 * quotes keep only the latest value per symbol; trades, bars and market events are never conflated,
 * and what does not fit is counted into a gap notice the client receives once it has caught up
 * (never silent loss). It returns to normal delivery when the queue is back under `lowWater`.
 */
import { BoundedQueue } from './queue';
import { CHANNELS, isConflatable, type RouterChannel, type SequencedMessage } from './types';

export interface ClientTransport {
  send(message: SequencedMessage): void;
  /** Bytes handed to the network layer but not yet sent (ws `bufferedAmount`); 0 for in-process sinks. */
  bufferedAmount(): number;
}

export interface ClientOptions {
  readonly maxQueue: number;
  readonly highWater: number;
  readonly lowWater: number;
  /** The transport is "writable" while its own buffer is under this. */
  readonly maxBufferedBytes: number;
}

export const DEFAULT_CLIENT: ClientOptions = {
  maxQueue: 10_000,
  highWater: 5_000,
  lowWater: 500,
  maxBufferedBytes: 1_048_576,
};

export interface ClientCounters {
  /** Live messages sent (what the router counts as delivered), control messages and snapshots excluded. */
  sent: Record<RouterChannel, number>;
  /** Latest values sent on subscribe (`"snapshot": true` on the wire). */
  snapshot: Record<RouterChannel, number>;
  conflated: Record<RouterChannel, number>;
  gapped: Record<RouterChannel, number>;
  conflations: number;
}

interface Gap {
  from: number;
  to: number;
  missed: number;
}

function perChannel(): Record<RouterChannel, number> {
  return { tick: 0, event: 0, fmv: 0, ohlcv: 0 };
}

export type SentObserver = (message: SequencedMessage) => void;

export class ClientSession {
  readonly counters: ClientCounters = {
    sent: perChannel(),
    snapshot: perChannel(),
    conflated: perChannel(),
    gapped: perChannel(),
    conflations: 0,
  };
  /** channel -> '*' or the subscribed symbols. */
  private readonly subscriptions = new Map<RouterChannel, '*' | Set<string>>();
  private readonly queue: BoundedQueue<SequencedMessage>;
  private readonly latest = new Map<string, SequencedMessage>();
  private readonly gaps = new Map<RouterChannel, Gap>();
  private conflatingMode = false;
  /** The epoch of the messages this client gets: gap notices carry it too. */
  private epoch = '';
  /** Highest offset sent per channel: where a reconnect resumes. */
  readonly lastOffsets: Partial<Record<RouterChannel, number>> = {};

  constructor(
    readonly id: string,
    private readonly transport: ClientTransport,
    private readonly options: ClientOptions = DEFAULT_CLIENT,
    private readonly onSent?: SentObserver,
  ) {
    if (!(options.lowWater < options.highWater && options.highWater <= options.maxQueue)) {
      throw new RangeError('client buffer needs lowWater < highWater <= maxQueue');
    }
    this.queue = new BoundedQueue(options.maxQueue);
  }

  subscribe(channel: RouterChannel, symbols: '*' | readonly string[]): void {
    const current = this.subscriptions.get(channel);
    if (symbols === '*' || current === '*') {
      this.subscriptions.set(channel, '*');
      return;
    }
    const set = current ?? new Set<string>();
    for (const s of symbols) set.add(s);
    this.subscriptions.set(channel, set);
  }

  unsubscribe(channel: RouterChannel): void {
    this.subscriptions.delete(channel);
  }

  wants(channel: RouterChannel, sym: string): boolean {
    const sub = this.subscriptions.get(channel);
    if (sub === undefined) return false;
    // Channel-wide control messages (minute_complete, gap) go to every subscriber of the channel.
    return sub === '*' || sym === '*' || sub.has(sym);
  }

  get conflating(): boolean {
    return this.conflatingMode;
  }

  get queued(): number {
    return this.queue.length + this.latest.size;
  }

  /**
   * Queues a message. `latestValue` marks messages that may be replaced by a newer one of the same
   * key (snapshots on subscribe) even when their kind is otherwise counted.
   */
  offer(message: SequencedMessage, latestValue = false): void {
    this.epoch = message.epoch;
    const conflatable = latestValue || isConflatable(message.kind);
    if (this.conflatingMode && conflatable) {
      this.conflate(message);
      return;
    }
    if (!this.queue.push(message)) {
      this.enterConflation();
      if (conflatable) this.conflate(message);
      else this.recordGap(message);
      return;
    }
    if (this.queue.length >= this.options.highWater) this.enterConflation();
  }

  /** Sends while the transport accepts; returns how many messages went out. */
  pump(): number {
    let sent = 0;
    for (;;) {
      while (this.queue.length > 0 && this.transport.bufferedAmount() < this.options.maxBufferedBytes) {
        const m = this.queue.shift() as SequencedMessage;
        this.deliver(m);
        sent += 1;
      }
      if (!this.conflatingMode || this.queue.length > this.options.lowWater) return sent;
      if (!this.refill()) return sent;
    }
  }

  private deliver(m: SequencedMessage): void {
    this.transport.send(m);
    if (m.kind !== 'control') {
      if (m.snapshot) this.counters.snapshot[m.channel] += 1;
      else this.counters.sent[m.channel] += 1;
      const last = this.lastOffsets[m.channel];
      if (last === undefined || m.offset > last) this.lastOffsets[m.channel] = m.offset;
    }
    this.onSent?.(m);
  }

  /** Caught up: gap notices first, then the latest values; leaves conflation when both are out. */
  private refill(): boolean {
    let moved = false;
    for (const channel of CHANNELS) {
      const gap = this.gaps.get(channel);
      if (!gap || this.queue.full) continue;
      const notice: SequencedMessage = {
        channel,
        sym: '*',
        kind: 'control',
        data: { ev: 'gap', from: gap.from, to: gap.to, missed: gap.missed },
        receivedAtMono: performance.now(),
        epoch: this.epoch,
        offset: gap.to,
      };
      this.queue.push(notice);
      this.gaps.delete(channel);
      moved = true;
    }
    if (this.latest.size > 0) {
      const ordered = [...this.latest.values()].sort((a, b) => a.receivedAtMono - b.receivedAtMono);
      for (const m of ordered) {
        if (this.queue.length >= this.options.highWater) break;
        this.queue.push(m);
        this.latest.delete(latestKey(m));
        moved = true;
      }
    }
    if (this.latest.size === 0 && this.gaps.size === 0) {
      this.conflatingMode = false;
      return moved;
    }
    return moved;
  }

  private enterConflation(): void {
    if (!this.conflatingMode) {
      this.conflatingMode = true;
      this.counters.conflations += 1;
    }
  }

  private conflate(message: SequencedMessage): void {
    const key = latestKey(message);
    if (this.latest.has(key)) this.counters.conflated[message.channel] += 1;
    this.latest.set(key, message);
  }

  private recordGap(message: SequencedMessage): void {
    this.counters.gapped[message.channel] += 1;
    const gap = this.gaps.get(message.channel);
    if (gap) {
      gap.from = Math.min(gap.from, message.offset);
      gap.to = Math.max(gap.to, message.offset);
      gap.missed += 1;
    } else {
      this.gaps.set(message.channel, { from: message.offset, to: message.offset, missed: 1 });
    }
  }
}

function latestKey(m: SequencedMessage): string {
  return `${m.channel}|${m.kind}|${m.sym}|${typeof m.data.type === 'string' ? m.data.type : ''}`;
}
