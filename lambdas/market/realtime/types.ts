/**
 * The real-time router's vocabulary: the provider's stream events (Massive/Polygon stocks socket,
 * field names kept as the provider sends them), the router's channels and the messages it delivers.
 */

/** Delivery channels, in priority order under overload (first = most urgent). */
export const CHANNELS = ['tick', 'event', 'fmv', 'ohlcv'] as const;
export type RouterChannel = (typeof CHANNELS)[number];

/** The channels that carry provider data (the `event` channel carries what the router derives). */
export type DataChannel = Exclude<RouterChannel, 'event'>;

export function isRouterChannel(value: unknown): value is RouterChannel {
  return typeof value === 'string' && (CHANNELS as readonly string[]).includes(value);
}

export interface TradeEvent {
  readonly ev: 'T';
  readonly sym: string;
  /** Exchange id. */
  readonly x: number;
  /** Trade id: unique per (symbol, exchange), unlike `q`. */
  readonly i: string;
  readonly p: number;
  readonly s: number;
  /** SIP timestamp, Unix ms. */
  readonly t: number;
  /** Sequence number: repeated and reordered by the provider, never a key. */
  readonly q?: number;
  readonly [field: string]: unknown;
}

export interface QuoteEvent {
  readonly ev: 'Q';
  readonly sym: string;
  readonly bp: number;
  readonly ap: number;
  readonly t: number;
  readonly [field: string]: unknown;
}

export interface BarEvent {
  readonly ev: 'A' | 'AM';
  readonly sym: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  /** Start and end of the bar window, Unix ms. */
  readonly s: number;
  readonly e: number;
  readonly [field: string]: unknown;
}

export interface FmvEvent {
  readonly ev: 'FMV';
  readonly sym: string;
  readonly fmv: number;
  /** Nanoseconds on some feeds, milliseconds on others: see `toMillis`. */
  readonly t: number;
  readonly [field: string]: unknown;
}

export type ProviderEvent = TradeEvent | QuoteEvent | BarEvent | FmvEvent;

/** What a client receives: `data` keeps the provider's field names; derived messages add `type`/`ev`. */
export interface RoutedMessage {
  readonly channel: RouterChannel;
  readonly sym: string;
  readonly data: Record<string, unknown>;
  /** Trades, bars and market events are counted, never conflated; FMV and quotes are latest-value. */
  readonly kind: MessageKind;
  /** Monotonic clock (ms) at which the frame carrying it was received: latency is measured from here. */
  readonly receivedAtMono: number;
}

export type MessageKind = 'trade' | 'quote' | 'bar' | 'fmv' | 'event' | 'control';

/** Latest-value kinds: a slow client may get only the newest per symbol. */
export function isConflatable(kind: MessageKind): boolean {
  return kind === 'quote' || kind === 'fmv';
}

/** A delivered message with its position in its channel: a reconnecting client resumes from here. */
export interface SequencedMessage extends RoutedMessage {
  readonly epoch: string;
  readonly offset: number;
  /** The client wire text, serialised once however many clients receive it (`wireText`). */
  wire?: string;
  /**
   * A latest value sent on subscribe (a copy of a message published earlier, with its original
   * offset): labelled `"snapshot": true` on the wire and counted as `snapshot`, never as `sent`, so a
   * client's live count matches the router's delivered count.
   */
  readonly snapshot?: true;
}

/**
 * `{"channel","epoch","offset","sym","data"}` (plus `"snapshot": true` for a value sent on
 * subscribe): what a client receives, serialised once per message.
 */
export function wireText(m: SequencedMessage): string {
  if (m.wire === undefined)
    m.wire = JSON.stringify(
      m.snapshot
        ? { channel: m.channel, epoch: m.epoch, offset: m.offset, sym: m.sym, snapshot: true, data: m.data }
        : { channel: m.channel, epoch: m.epoch, offset: m.offset, sym: m.sym, data: m.data },
    );
  return m.wire;
}

/** The snapshot copy of a published message: own wire text, same position. */
export function asSnapshot(m: SequencedMessage): SequencedMessage {
  return { ...m, wire: undefined, snapshot: true };
}

/** Provider timestamps: FMV `t` is in nanoseconds on some feeds. Anything past year 2286 in ms is ns. */
export function toMillis(t: number): number {
  if (t > 1e16) return Math.floor(t / 1e6);
  if (t > 1e14) return Math.floor(t / 1e3);
  return t;
}

export const MINUTE_MS = 60_000;

export function minuteOf(ms: number): number {
  return ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
}
