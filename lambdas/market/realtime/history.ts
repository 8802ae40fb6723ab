/**
 * The last messages of one channel, kept for clients that reconnect and resume from an offset: each
 * message's wire text as bytes in one preallocated ring, with its offset, receipt time, kind and
 * symbol in typed arrays. Not the message objects: 10,000 of them per channel were alive through a
 * young-generation collection or two each, so every scavenge of the router's event loop copied
 * several MB of them (at the 10x surge, ~5.7 ms pauses every ~0.4 s, where a tick that arrives waits
 * for the whole pause). Bytes in a Buffer are not the collector's to copy.
 *
 * Bounded by count and by bytes: when either is full the oldest entries go first, and a resume from
 * before the oldest held offset is told to resync, as before. A capacity of 0 keeps nothing (an
 * offline replay has no client to resume).
 */
import { type MessageKind, type RouterChannel, type SequencedMessage, wireText } from './types';

const KINDS: readonly MessageKind[] = ['trade', 'quote', 'bar', 'fmv', 'event', 'control'];
const KIND_CODE = new Map(KINDS.map((k, i) => [k, i]));

/** Wire bytes per message the ring is sized for by default (a trade's text is ~220 bytes). */
export const HISTORY_BYTES_PER_MESSAGE = 512;

export class MessageHistory {
  private readonly ring: Buffer;
  private readonly starts: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly offsets: Float64Array;
  private readonly received: Float64Array;
  private readonly kinds: Uint8Array;
  /** Symbols: JSON.parse interns short strings (tickers), so these are shared, not one per message. */
  private readonly syms: (string | undefined)[];
  private head = 0;
  private count = 0;
  /** Where the next message's bytes go. */
  private writeAt = 0;

  constructor(
    private readonly channel: RouterChannel,
    readonly capacity: number,
    readonly capacityBytes = capacity * HISTORY_BYTES_PER_MESSAGE,
  ) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('capacity must be an integer >= 0');
    this.ring = Buffer.allocUnsafe(capacityBytes);
    this.starts = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.offsets = new Float64Array(capacity);
    this.received = new Float64Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.syms = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Offset of the oldest message held, or undefined when none is. */
  oldestOffset(): number | undefined {
    return this.count === 0 ? undefined : this.offsets[this.head];
  }

  /** Keeps the message (its wire text, serialised here once for every client and sink). */
  push(m: SequencedMessage): void {
    if (this.capacity === 0) return;
    const text = wireText(m);
    const n = Buffer.byteLength(text, 'utf8');
    if (n > this.capacityBytes) {
      // Larger than the ring: nothing before it can be resumed from either.
      this.head = 0;
      this.count = 0;
      this.writeAt = 0;
      return;
    }
    if (this.writeAt + n > this.capacityBytes) {
      // The ring's tail cannot take it: the entries still there (the oldest) go, the write wraps.
      while (this.count > 0 && (this.starts[this.head] as number) >= this.writeAt) this.evictOldest();
      this.writeAt = 0;
    }
    while (this.count > 0 && (this.count === this.capacity || this.overlapsOldest(this.writeAt, n)))
      this.evictOldest();
    const i = (this.head + this.count) % this.capacity;
    this.ring.write(text, this.writeAt, n, 'utf8');
    this.starts[i] = this.writeAt;
    this.lengths[i] = n;
    this.offsets[i] = m.offset;
    this.received[i] = m.receivedAtMono;
    this.kinds[i] = KIND_CODE.get(m.kind) as number;
    this.syms[i] = m.sym;
    this.count += 1;
    this.writeAt += n;
  }

  /**
   * The messages after `offset` whose symbol `wanted` accepts, oldest first, rebuilt from their wire
   * text (the same text, so a client receives the same bytes as the first time).
   */
  *after(
    offset: number,
    epoch: string,
    wanted: (sym: string) => boolean,
  ): IterableIterator<SequencedMessage> {
    for (let k = 0; k < this.count; k += 1) {
      const i = (this.head + k) % this.capacity;
      const sym = this.syms[i] as string;
      if ((this.offsets[i] as number) <= offset || !wanted(sym)) continue;
      const start = this.starts[i] as number;
      const wire = this.ring.toString('utf8', start, start + (this.lengths[i] as number));
      yield {
        channel: this.channel,
        sym,
        data: (JSON.parse(wire) as { data: Record<string, unknown> }).data,
        kind: KINDS[this.kinds[i] as number] as MessageKind,
        receivedAtMono: this.received[i] as number,
        epoch,
        offset: this.offsets[i] as number,
        wire,
      };
    }
  }

  private overlapsOldest(at: number, n: number): boolean {
    const start = this.starts[this.head] as number;
    return start < at + n && at < start + (this.lengths[this.head] as number);
  }

  private evictOldest(): void {
    this.syms[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
  }
}
