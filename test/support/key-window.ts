/**
 * The reference model of the router's dedup windows (`KeySet`, `BarWindow` in
 * lambdas/market/realtime/dedup.ts): the same exact window and watermark held the plain way, a Map
 * per symbol with the keys in insertion order. The router used it for bars until `BarWindow`; the
 * unit tests now check the off-heap windows against it, verdict by verdict, over long random streams.
 */
import type { DedupVerdict, KeyWindowOptions } from '../../lambdas/market/realtime/dedup';

interface SymbolWindow<V> {
  /** key -> value (the value only: no object per key). */
  readonly entries: Map<string, V>;
  /**
   * The keys in insertion order (which is nearly time order) with their times, from `head` on: the
   * eviction order. Kept apart from the map because deleting a Map's oldest entries and iterating it
   * from the start again walks every deleted slot until the map is rehashed.
   */
  order: string[];
  times: number[];
  head: number;
  maxT: number;
  watermark: number;
}

// The verdicts without a payload are shared: `check` runs for every event and must not allocate.
const NEW: DedupVerdict<never> = Object.freeze({ status: 'new' });
const OUTSIDE: DedupVerdict<never> = Object.freeze({ status: 'outside_window' });

export class KeyWindow<V = true> {
  private readonly symbols = new Map<string, SymbolWindow<V>>();
  private size = 0;

  constructor(private readonly options: KeyWindowOptions) {
    if (!(options.windowMs > 0) || !(options.maxPerSymbol > 0)) {
      throw new RangeError('windowMs and maxPerSymbol must be positive');
    }
  }

  /** Looks the key up without recording it. */
  check(sym: string, key: string, t: number): DedupVerdict<V> {
    const w = this.symbols.get(sym);
    if (!w) return NEW;
    const seen = w.entries.get(key);
    if (seen !== undefined) return { status: 'duplicate', previous: seen };
    if (t <= w.watermark) return OUTSIDE;
    return NEW;
  }

  /**
   * `check` and, for a new key, `remember(value)` in one pass (one symbol lookup, one key lookup):
   * the hot path of trades and quotes, whose value never changes.
   */
  firstSeen(sym: string, key: string, t: number, value: V): DedupVerdict<V>['status'] {
    let w = this.symbols.get(sym);
    if (w) {
      if (w.entries.has(key)) return 'duplicate';
      if (t <= w.watermark) return 'outside_window';
    } else {
      w = this.window(sym, t);
    }
    this.add(w, key, t, value);
    return 'new';
  }

  /** Records (or replaces) the key's value. Call after `check` said new or duplicate. */
  remember(sym: string, key: string, t: number, value: V): void {
    const w = this.symbols.get(sym) ?? this.window(sym, t);
    if (w.entries.has(key)) {
      w.entries.set(key, value);
      return;
    }
    this.add(w, key, t, value);
  }

  private window(sym: string, t: number): SymbolWindow<V> {
    const w: SymbolWindow<V> = {
      entries: new Map(),
      order: [],
      times: [],
      head: 0,
      maxT: t,
      watermark: Number.NEGATIVE_INFINITY,
    };
    this.symbols.set(sym, w);
    return w;
  }

  private add(w: SymbolWindow<V>, key: string, t: number, value: V): void {
    w.entries.set(key, value);
    w.order.push(key);
    w.times.push(t);
    this.size += 1;
    if (t > w.maxT) w.maxT = t;
    this.evict(w);
  }

  private evict(w: SymbolWindow<V>): void {
    const horizon = w.maxT - this.options.windowMs;
    const max = this.options.maxPerSymbol;
    while (w.head < w.order.length) {
      const t = w.times[w.head] as number;
      if (w.entries.size <= max && t >= horizon) break;
      w.entries.delete(w.order[w.head] as string);
      w.order[w.head] = '';
      w.head += 1;
      this.size -= 1;
      if (t > w.watermark) w.watermark = t;
    }
    // Drop the evicted prefix once it is most of the arrays (amortised O(1) per key).
    if (w.head > 1024 && w.head * 2 > w.order.length) {
      w.order = w.order.slice(w.head);
      w.times = w.times.slice(w.head);
      w.head = 0;
    }
  }

  /** Remembered keys over all symbols (the memory bound the tests check). */
  get keys(): number {
    return this.size;
  }

  get symbolCount(): number {
    return this.symbols.size;
  }
}
