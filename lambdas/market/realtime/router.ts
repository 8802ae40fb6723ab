/**
 * The router core: provider frames from any number of sources -> classify -> per-channel rules ->
 * exact deduplication -> market events and minute completion -> one bounded buffer per channel ->
 * the hub (offsets, snapshot, clients). Single-threaded and synchronous on purpose (the LMAX
 * pattern): one order of events, no locks, and a replay of the same frames decides the same way.
 * No I/O here: the live process, the replay CLI and the benchmark drive it.
 */
import { type ConfidenceOptions, DEFAULT_CONFIDENCE, fmvConfidence } from './confidence';
import {
  BarWindow,
  type DedupVerdict,
  KeySet,
  type KeyWindowOptions,
  keyNumber,
  keyText,
  startKey,
  writtenKey,
} from './dedup';
import { Hub } from './hub';
import {
  DEFAULT_MARKET_EVENTS,
  type MarketEvent,
  MarketEventDetector,
  type MarketEventOptions,
} from './market-events';
import {
  DEFAULT_MINUTE_COMPLETE,
  type MinuteComplete,
  type MinuteCompleteOptions,
  MinuteCompletion,
} from './minute-complete';
import { classify } from './normalise';
import { BoundedQueue } from './queue';
import { type ChannelStats, emptyChannelStats, reject } from './stats';
import {
  type BarEvent,
  CHANNELS,
  type FmvEvent,
  isConflatable,
  minuteOf,
  type ProviderEvent,
  type QuoteEvent,
  type RoutedMessage,
  type RouterChannel,
  type SequencedMessage,
  type TradeEvent,
  toMillis,
} from './types';

const PUMP_EVERY = 256;

export interface DedupWindows {
  readonly trade: KeyWindowOptions;
  readonly quote: KeyWindowOptions;
  readonly secondBar: KeyWindowOptions;
  readonly minuteBar: KeyWindowOptions;
  readonly fmv: KeyWindowOptions;
  readonly event: KeyWindowOptions;
}

export interface RouterOptions {
  readonly epoch: string;
  /** Capacity of each channel's buffer between the rules and the hub. */
  readonly channelCapacity: number;
  /** Messages kept per channel for resuming clients (0: none, as in an offline replay). */
  readonly historySize: number;
  readonly dedup: DedupWindows;
  readonly confidence: ConfidenceOptions;
  readonly marketEvents: MarketEventOptions;
  readonly minuteComplete: MinuteCompleteOptions;
}

export const DEFAULT_DEDUP: DedupWindows = {
  trade: { windowMs: 10 * 60_000, maxPerSymbol: 20_000 },
  quote: { windowMs: 2 * 60_000, maxPerSymbol: 5_000 },
  secondBar: { windowMs: 10 * 60_000, maxPerSymbol: 1_200 },
  minuteBar: { windowMs: 60 * 60_000, maxPerSymbol: 120 },
  fmv: { windowMs: 10 * 60_000, maxPerSymbol: 5_000 },
  event: { windowMs: 60 * 60_000, maxPerSymbol: 256 },
};

export function routerOptions(overrides: Partial<RouterOptions> = {}): RouterOptions {
  return {
    epoch: overrides.epoch ?? `e${Date.now().toString(36)}`,
    channelCapacity: overrides.channelCapacity ?? 65_536,
    historySize: overrides.historySize ?? 10_000,
    dedup: overrides.dedup ?? DEFAULT_DEDUP,
    confidence: overrides.confidence ?? DEFAULT_CONFIDENCE,
    marketEvents: overrides.marketEvents ?? DEFAULT_MARKET_EVENTS,
    minuteComplete: overrides.minuteComplete ?? DEFAULT_MINUTE_COMPLETE,
  };
}

interface PriceRef {
  tradePrice?: number;
  tradeT?: number;
  quoteMid?: number;
  quoteT?: number;
}

export type PublishedTap = (message: SequencedMessage) => void;

export interface RouterHealth {
  readonly epoch: string;
  readonly channels: ChannelStats;
  readonly bufferDepth: Record<RouterChannel, number>;
  /** Router clock (frame receipt, ms) of the last event received per channel; null before any. */
  readonly lastEventAt: Record<RouterChannel, number | null>;
  readonly frames: number;
  readonly sources: Record<string, number>;
  readonly ignored: number;
  readonly dedupKeys: number;
  /** Bytes the dedup windows hold in typed arrays (all of their per-key memory but a Map entry per symbol). */
  readonly dedupBytes: number;
  readonly symbols: number;
  readonly clients: number;
}

export class Router {
  readonly options: RouterOptions;
  readonly hub: Hub;
  readonly stats: ChannelStats = emptyChannelStats();
  /** Status frames and channels not routed (LULD, imbalances). */
  ignored = 0;
  frames = 0;
  private readonly buffers = {} as Record<RouterChannel, BoundedQueue<RoutedMessage>>;
  /** Latest-value overflow per channel (quotes, FMV) while its buffer is full. */
  private readonly overflowLatest = {} as Record<RouterChannel, Map<string, RoutedMessage>>;
  /** Counted overflow per channel (trades, bars, events): becomes a gap notice. */
  private readonly overflowGaps: Record<RouterChannel, number> = { tick: 0, event: 0, fmv: 0, ohlcv: 0 };
  private readonly lastEventAt: Record<RouterChannel, number | null> = {
    tick: null,
    event: null,
    fmv: null,
    ohlcv: null,
  };
  private readonly trades: KeySet;
  private readonly quotes: KeySet;
  private readonly secondBars: BarWindow;
  private readonly minuteBars: BarWindow;
  private readonly fmvs: KeySet;
  private readonly events: KeySet;
  private readonly detector: MarketEventDetector;
  private readonly minutes: MinuteCompletion;
  private readonly refs = new Map<string, PriceRef>();
  private readonly taps: PublishedTap[] = [];
  /** A frame's events left for `ingest`'s second pass (reused: no array per frame). */
  private readonly later: ProviderEvent[] = [];
  private clock = 0;
  /** Frames per source (ws, rest, ...): keys ignore the source, so an item from two is delivered once. */
  readonly sources = new Map<string, number>();

  constructor(options: Partial<RouterOptions> = {}) {
    this.options = routerOptions(options);
    this.hub = new Hub({ epoch: this.options.epoch, historySize: this.options.historySize });
    for (const c of CHANNELS) {
      this.buffers[c] = new BoundedQueue(this.options.channelCapacity);
      this.overflowLatest[c] = new Map();
    }
    const d = this.options.dedup;
    this.trades = new KeySet(d.trade);
    this.quotes = new KeySet(d.quote);
    this.secondBars = new BarWindow(d.secondBar);
    this.minuteBars = new BarWindow(d.minuteBar);
    this.fmvs = new KeySet(d.fmv);
    this.events = new KeySet(d.event);
    this.detector = new MarketEventDetector(this.options.marketEvents);
    this.minutes = new MinuteCompletion(this.options.minuteComplete);
  }

  /** Called with every message the hub publishes (Redis Streams, SQS, archive adapters). */
  tap(listener: PublishedTap): void {
    this.taps.push(listener);
  }

  /**
   * One provider frame. `receivedAt` is the router clock (epoch ms; the feed line's `receivedAt` in a
   * replay), `mono` the monotonic time latency is measured from.
   *
   * Two passes, so a frame's ticks never wait for its other work: the first routes the trades and
   * quotes (checked, deduplicated, sent at once) and then calls `ticksRouted` (the service flushes
   * its client sockets there); the second does everything else in the frame's order (the reference
   * prices the trades and quotes set, the market events and minute completion they feed, FMV and
   * bars). Nothing the first pass decides reads what the second writes, and the second sees the
   * frame in its order, so every decision and the delivered order are what one pass gave.
   */
  ingest(
    source: string,
    receivedAt: number,
    frame: readonly unknown[],
    mono = performance.now(),
    ticksRouted?: () => void,
  ): void {
    this.frames += 1;
    if (receivedAt > this.clock) this.clock = receivedAt;
    this.sources.set(source, (this.sources.get(source) ?? 0) + 1);
    const later = this.later;
    try {
      for (const raw of frame) {
        const e = this.classifyCounted(raw, receivedAt);
        if (e === null) continue;
        let status: DedupVerdict<true>['status'];
        if (e.ev === 'T') status = this.trades.firstSeen(e.sym, `${e.x}|${e.i}`, e.t);
        else if (e.ev === 'Q') {
          writeQuoteKey(e);
          status = this.quotes.firstSeenWritten(e.sym, e.t);
        } else {
          later.push(e);
          continue;
        }
        if (!this.newTick(status)) continue;
        const kind = e.ev === 'T' ? 'trade' : 'quote';
        this.enqueue({ channel: 'tick', sym: e.sym, kind, data: e, receivedAtMono: mono });
        later.push(e);
      }
      ticksRouted?.();
      for (let k = 0; k < later.length; k += 1) {
        const e = later[k] as ProviderEvent;
        switch (e.ev) {
          case 'T':
            this.tradeFollowUp(e, mono);
            break;
          case 'Q':
            this.quoteFollowUp(e);
            break;
          case 'A':
          case 'AM':
            this.bar(e, receivedAt, mono);
            break;
          case 'FMV':
            this.fmv(e, receivedAt, mono);
            break;
        }
      }
    } finally {
      // Never carried into the next frame (nor kept alive past this one).
      later.length = 0;
    }
    for (const m of this.minutes.due(this.clock)) this.minuteComplete(m, mono);
  }

  /** Advances the router clock without a frame (a quiet feed still reaches minute deadlines). */
  advance(now: number, mono = performance.now()): void {
    if (now > this.clock) this.clock = now;
    for (const m of this.minutes.due(this.clock)) this.minuteComplete(m, mono);
  }

  /** Announces every open minute: end of a replay or shutdown. */
  closeMinutes(mono = performance.now()): void {
    for (const m of this.minutes.drain()) this.minuteComplete(m, mono);
  }

  /**
   * Moves up to `budget` messages from the channel buffers to the hub, most urgent channel first, then
   * lets every client send. Returns how many were published.
   */
  drain(budget = Number.POSITIVE_INFINITY): number {
    let published = 0;
    for (const channel of CHANNELS) {
      const buffer = this.buffers[channel];
      while (published < budget && buffer.length > 0) {
        this.publish(buffer.shift() as RoutedMessage);
        published += 1;
        // Clients send as we go: one burst (8,000 bars) must not pile up in a fast client's queue.
        if (published % PUMP_EVERY === 0) this.hub.pumpAll();
      }
      if (published >= budget) break;
      published += this.drainOverflow(channel, budget - published);
      // Ticks leave at once: clients send them before the other channels' publishing work starts.
      if (channel === 'tick' && published > 0) this.hub.pumpAll();
    }
    this.hub.pumpAll();
    return published;
  }

  /** Messages waiting in the channel buffers (not yet published). */
  pending(): number {
    let n = 0;
    for (const c of CHANNELS)
      n += this.buffers[c].length + this.overflowLatest[c].size + (this.overflowGaps[c] > 0 ? 1 : 0);
    return n;
  }

  health(): RouterHealth {
    const bufferDepth = {} as Record<RouterChannel, number>;
    for (const c of CHANNELS) bufferDepth[c] = this.buffers[c].length + this.overflowLatest[c].size;
    return {
      epoch: this.options.epoch,
      channels: this.stats,
      bufferDepth,
      lastEventAt: { ...this.lastEventAt },
      frames: this.frames,
      sources: Object.fromEntries(this.sources),
      ignored: this.ignored,
      dedupKeys:
        this.trades.keys +
        this.quotes.keys +
        this.secondBars.keys +
        this.minuteBars.keys +
        this.fmvs.keys +
        this.events.keys,
      dedupBytes:
        this.trades.bytes +
        this.quotes.bytes +
        this.secondBars.bytes +
        this.minuteBars.bytes +
        this.fmvs.bytes +
        this.events.bytes,
      symbols: this.refs.size,
      clients: this.hub.clientCount,
    };
  }

  /** The event when it is routed (counted as received on its channel); null when ignored or rejected. */
  private classifyCounted(raw: unknown, receivedAt: number): ProviderEvent | null {
    const c = classify(raw);
    if (c.channel === null) {
      this.ignored += 1;
      return null;
    }
    const counters = this.stats[c.channel];
    counters.received += 1;
    this.lastEventAt[c.channel] = receivedAt;
    if (!c.ok) {
      reject(counters, c.reason);
      return null;
    }
    return c.event;
  }

  /**
   * Trades and quotes: true for an item seen for the first time (now remembered); a repeat counts as
   * a duplicate, one too old to check against the window is rejected rather than risk a second delivery.
   */
  private newTick(status: DedupVerdict<true>['status']): boolean {
    if (status === 'new') return true;
    if (status === 'duplicate') this.stats.tick.duplicates += 1;
    else reject(this.stats.tick, 'outside_dedup_window');
    return false;
  }

  /** What a new trade feeds besides its delivery: the reference price, minute completion, market events. */
  private tradeFollowUp(e: TradeEvent, mono: number): void {
    const ref = this.ref(e.sym);
    if (ref.tradeT === undefined || e.t >= ref.tradeT) {
      ref.tradePrice = e.p;
      ref.tradeT = e.t;
    }
    this.minutes.onTrade(e.sym, minuteOf(e.t));
    for (const ev of this.detector.fromTrade(e.sym, e.p, e.s, e.t)) this.marketEvent(ev, mono);
  }

  /** A new quote's reference mid (FMV confidence). */
  private quoteFollowUp(e: QuoteEvent): void {
    const ref = this.ref(e.sym);
    if (e.bp > 0 && e.ap > 0 && (ref.quoteT === undefined || e.t >= ref.quoteT)) {
      ref.quoteMid = (e.bp + e.ap) / 2;
      ref.quoteT = e.t;
    }
  }

  private bar(e: BarEvent, receivedAt: number, mono: number): void {
    const minuteBar = e.ev === 'AM';
    const window = minuteBar ? this.minuteBars : this.secondBars;
    const verdict = window.offer(e.sym, e.s, e.o, e.h, e.l, e.c, e.v, e.e);
    if (verdict === 'outside_window') {
      reject(this.stats.ohlcv, 'outside_dedup_window');
      return;
    }
    if (verdict === 'duplicate') {
      this.stats.ohlcv.duplicates += 1;
      return;
    }
    if (verdict === 'correction') {
      // Same bar, new values: a correction, delivered once (its repeats match the new values).
      this.stats.ohlcv.corrections += 1;
      this.enqueue({
        channel: 'ohlcv',
        sym: e.sym,
        kind: 'bar',
        data: { ...e, correction: true },
        receivedAtMono: mono,
      });
      return;
    }
    this.enqueue({ channel: 'ohlcv', sym: e.sym, kind: 'bar', data: e, receivedAtMono: mono });
    for (const ev of this.detector.fromBar(e.sym, e.h, e.l, e.v, e.s, minuteBar)) this.marketEvent(ev, mono);
    if (minuteBar) {
      for (const m of this.minutes.onMinuteBar(e.sym, minuteOf(e.s), receivedAt))
        this.minuteComplete(m, mono);
    }
  }

  private fmv(e: FmvEvent, receivedAt: number, mono: number): void {
    const key = String(e.t);
    const t = toMillis(e.t);
    const verdict = this.fmvs.check(e.sym, key, t);
    if (verdict === 'duplicate') {
      this.stats.fmv.duplicates += 1;
      return;
    }
    if (verdict === 'outside_window') {
      reject(this.stats.fmv, 'outside_dedup_window');
      return;
    }
    const { confidence } = fmvConfidence(
      e.fmv,
      t,
      receivedAt,
      this.refs.get(e.sym) ?? {},
      this.options.confidence,
    );
    if (confidence < this.options.confidence.threshold) {
      // Not remembered: "duplicate" means already delivered, and this one was not.
      reject(this.stats.fmv, 'low_confidence');
      return;
    }
    this.fmvs.remember(e.sym, key, t);
    this.enqueue({
      channel: 'fmv',
      sym: e.sym,
      kind: 'fmv',
      data: { ...e, confidence },
      receivedAtMono: mono,
    });
  }

  private marketEvent(ev: MarketEvent, mono: number): void {
    const counters = this.stats.event;
    counters.received += 1;
    const key = `${ev.type}|${ev.minute}`;
    const verdict = this.events.check(ev.sym, key, ev.minute);
    if (verdict === 'duplicate') {
      counters.duplicates += 1;
      return;
    }
    if (verdict === 'outside_window') {
      reject(counters, 'outside_dedup_window');
      return;
    }
    this.events.remember(ev.sym, key, ev.minute);
    this.lastEventAt.event = this.clock;
    this.enqueue({
      channel: 'event',
      sym: ev.sym,
      kind: 'event',
      data: { type: ev.type, sym: ev.sym, s: ev.minute, source: ev.source, ...ev.data },
      receivedAtMono: mono,
    });
  }

  private minuteComplete(m: MinuteComplete, mono: number): void {
    this.stats.ohlcv.received += 1;
    this.enqueue({ channel: 'ohlcv', sym: '*', kind: 'control', data: { ...m }, receivedAtMono: mono });
  }

  private enqueue(message: RoutedMessage): void {
    const channel = message.channel;
    // Ticks are immediate: with nothing queued ahead of it, a tick is published and sent while the
    // rest of its frame is still being routed (the order is the one drain() would give: ticks first).
    if (channel === 'tick' && this.buffers.tick.length === 0) {
      this.publish(message);
      this.hub.pumpAll();
      return;
    }
    if (this.buffers[channel].push(message)) return;
    if (isConflatable(message.kind)) {
      const key = `${message.kind}|${message.sym}`;
      if (this.overflowLatest[channel].has(key)) this.stats[channel].conflated += 1;
      this.overflowLatest[channel].set(key, message);
      return;
    }
    reject(this.stats[channel], 'buffer_overflow');
    this.overflowGaps[channel] += 1;
  }

  private drainOverflow(channel: RouterChannel, budget: number): number {
    let published = 0;
    const gap = this.overflowGaps[channel];
    if (gap > 0 && budget > 0) {
      this.overflowGaps[channel] = 0;
      this.publishControl({
        channel,
        sym: '*',
        kind: 'control',
        data: { ev: 'gap', missed: gap, reason: 'router_buffer_overflow' },
        receivedAtMono: performance.now(),
      });
    }
    const latest = this.overflowLatest[channel];
    for (const [key, message] of latest) {
      if (published >= budget) break;
      latest.delete(key);
      this.publish(message);
      published += 1;
    }
    return published;
  }

  private publish(message: RoutedMessage): void {
    if (message.kind !== 'control' || message.data.ev === 'minute_complete')
      this.stats[message.channel].delivered += 1;
    this.publishControl(message);
  }

  private publishControl(message: RoutedMessage): void {
    const sequenced = this.hub.publish(message);
    for (const tap of this.taps) tap(sequenced);
  }

  private ref(sym: string): PriceRef {
    let r = this.refs.get(sym);
    if (!r) {
      r = {};
      this.refs.set(sym, r);
    }
    return r;
  }
}

/**
 * A quote is identified by all of its fields (in a fixed order, whatever order they arrived in): the
 * key is the id of its field set (the sorted names) followed by the values, written straight into
 * the dedup window's scratch (`startKey`: numbers as exact varints or bytes, other values as their
 * JSON text; no string is built). Each part is self-delimiting, so two different quotes never share
 * a key. The values of `sym` and `ev` are left out (their names stay in the field set): the window
 * is the symbol's own and every quote's `ev` is `Q`. The provider sends its quotes with one field
 * order, so the last shape is cached: no sort per quote.
 */
let lastShape: string[] = [];
/** The last shape's names in key order, without `sym` and `ev`. */
let lastSorted: string[] = [];
let lastShapeId = 0;
const shapeIds = new Map<string, number>();

function writeQuoteKey(e: QuoteEvent): void {
  const keys = Object.keys(e);
  let same = keys.length === lastShape.length;
  for (let k = 0; same && k < keys.length; k += 1) same = keys[k] === lastShape[k];
  if (!same) {
    lastShape = keys;
    const sorted = [...keys].sort();
    lastSorted = sorted.filter((k) => k !== 'sym' && k !== 'ev');
    const names = JSON.stringify(sorted);
    let id = shapeIds.get(names);
    if (id === undefined) {
      id = shapeIds.size;
      shapeIds.set(names, id);
    }
    lastShapeId = id;
  }
  startKey();
  keyNumber(lastShapeId);
  for (const k of lastSorted) {
    const v = e[k];
    if (typeof v === 'number') keyNumber(v);
    else keyText(JSON.stringify(v) ?? 'undefined');
  }
}

/** A quote's dedup key as the window stores it (one char per byte): for tests and diagnostics. */
export function quoteKey(e: QuoteEvent): string {
  writeQuoteKey(e);
  return writtenKey();
}
