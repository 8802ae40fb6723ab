/**
 * Market events (the `event` channel): session high, session low and volume surge per symbol,
 * detected from trades and from bars. Both paths feed one state per symbol, and the router
 * deduplicates on (symbol, type, minute), so an event seen from a trade and again from the bar of the
 * same minute is delivered once.
 */
import { MINUTE_MS, minuteOf } from './types';

export type MarketEventType = 'session_high' | 'session_low' | 'volume_surge';

export interface MarketEvent {
  readonly type: MarketEventType;
  readonly sym: string;
  /** Start of the minute the event belongs to (ms): part of its identity. */
  readonly minute: number;
  readonly source: 'tick' | 'ohlcv';
  readonly data: Record<string, number>;
}

export interface MarketEventOptions {
  /** A minute's volume at least this multiple of the recent average is a surge. */
  readonly surgeFactor: number;
  /** Minutes of history averaged; a surge needs at least `surgeMinHistory` of them. */
  readonly surgeLookback: number;
  readonly surgeMinHistory: number;
}

export const DEFAULT_MARKET_EVENTS: MarketEventOptions = {
  surgeFactor: 3,
  surgeLookback: 10,
  surgeMinHistory: 3,
};

interface SymbolState {
  day: number;
  high: number;
  low: number;
  /** minute start -> volume seen for that minute (max of trade sum and bar volume). */
  readonly volumes: Map<number, number>;
  /** minute start -> volume summed from trades. */
  readonly tradeVolumes: Map<number, number>;
}

const DAY_MS = 86_400_000;

export class MarketEventDetector {
  private readonly symbols = new Map<string, SymbolState>();

  constructor(private readonly options: MarketEventOptions = DEFAULT_MARKET_EVENTS) {}

  fromTrade(sym: string, price: number, size: number, t: number): MarketEvent[] {
    const state = this.state(sym, t);
    const minute = minuteOf(t);
    const out: MarketEvent[] = [];
    this.extremes(state, sym, minute, price, price, 'tick', out);
    const before = state.tradeVolumes.get(minute) ?? 0;
    const traded = before + size;
    state.tradeVolumes.set(minute, traded);
    this.volume(state, sym, minute, before, traded, 'tick', out);
    return out;
  }

  fromBar(
    sym: string,
    high: number,
    low: number,
    volume: number,
    start: number,
    minuteBar: boolean,
  ): MarketEvent[] {
    const state = this.state(sym, start);
    const minute = minuteOf(start);
    const out: MarketEvent[] = [];
    this.extremes(state, sym, minute, high, low, 'ohlcv', out);
    // Second bars are partial minutes: only minute bars carry a whole minute's volume.
    if (minuteBar) this.volume(state, sym, minute, 0, volume, 'ohlcv', out);
    return out;
  }

  private state(sym: string, t: number): SymbolState {
    // Sessions are UTC days: the US regular and extended sessions never straddle midnight UTC in
    // a way that matters here (they end by 01:00 UTC), and this avoids a time-zone lookup per event.
    const day = Math.floor(t / DAY_MS);
    let s = this.symbols.get(sym);
    if (!s || day > s.day) {
      s = {
        day,
        high: Number.NEGATIVE_INFINITY,
        low: Number.POSITIVE_INFINITY,
        volumes: new Map(),
        tradeVolumes: new Map(),
      };
      this.symbols.set(sym, s);
    }
    return s;
  }

  private extremes(
    s: SymbolState,
    sym: string,
    minute: number,
    high: number,
    low: number,
    source: MarketEvent['source'],
    out: MarketEvent[],
  ): void {
    const first = s.high === Number.NEGATIVE_INFINITY;
    if (high > s.high) {
      if (!first)
        out.push({ type: 'session_high', sym, minute, source, data: { price: high, previous: s.high } });
      s.high = high;
    }
    if (low < s.low) {
      if (!first)
        out.push({ type: 'session_low', sym, minute, source, data: { price: low, previous: s.low } });
      s.low = low;
    }
  }

  private volume(
    s: SymbolState,
    sym: string,
    minute: number,
    before: number,
    volume: number,
    source: MarketEvent['source'],
    out: MarketEvent[],
  ): void {
    if (volume > (s.volumes.get(minute) ?? 0)) s.volumes.set(minute, volume);
    let sum = 0;
    let n = 0;
    for (let k = 1; k <= this.options.surgeLookback; k += 1) {
      const v = s.volumes.get(minute - k * MINUTE_MS);
      if (v !== undefined) {
        sum += v;
        n += 1;
      }
    }
    this.forget(s, minute);
    if (n < this.options.surgeMinHistory || sum <= 0) return;
    const average = sum / n;
    const threshold = average * this.options.surgeFactor;
    // Each path fires once per minute: trades when their running sum crosses the threshold, a minute
    // bar when its volume is over it. Both firing is the duplicate the (symbol, type, minute) key removes.
    if (before < threshold && volume >= threshold) {
      out.push({
        type: 'volume_surge',
        sym,
        minute,
        source,
        data: { volume, average, ratio: volume / average },
      });
    }
  }

  /** Keeps only the minutes the surge average can still use. */
  private forget(s: SymbolState, minute: number): void {
    const oldest = minute - (this.options.surgeLookback + 1) * MINUTE_MS;
    for (const m of s.volumes.keys()) if (m < oldest) s.volumes.delete(m);
    for (const m of s.tradeVolumes.keys()) if (m < oldest) s.tradeVolumes.delete(m);
  }

  get symbolCount(): number {
    return this.symbols.size;
  }
}
