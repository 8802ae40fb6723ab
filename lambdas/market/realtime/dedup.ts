/**
 * Exact deduplication with bounded memory.
 *
 * Each symbol keeps the keys it has seen within a time window (and at most `maxPerSymbol` of them).
 * A key that leaves the window raises the symbol's watermark to its timestamp; anything arriving at or
 * below the watermark can no longer be checked, so it is refused as `outside_dedup_window` instead of
 * risking a second delivery. That keeps deduplication exact (never a duplicate delivered) while memory
 * stays at O(symbols x window).
 */

export type DedupVerdict<V> =
  | { readonly status: 'new' }
  | { readonly status: 'duplicate'; readonly previous: V }
  | { readonly status: 'outside_window' };

interface SymbolWindow<V> {
  /** key -> [timestamp, value]; Map keeps insertion order, which is (nearly) time order. */
  readonly entries: Map<string, { t: number; value: V }>;
  maxT: number;
  watermark: number;
}

export interface KeyWindowOptions {
  /** Keys older than the newest seen for the symbol minus this are forgotten. */
  readonly windowMs: number;
  /** Hard cap of remembered keys per symbol, whatever their age. */
  readonly maxPerSymbol: number;
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
    if (seen) return { status: 'duplicate', previous: seen.value };
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
      w = { entries: new Map(), maxT: t, watermark: Number.NEGATIVE_INFINITY };
      this.symbols.set(sym, w);
    }
    w.entries.set(key, { t, value });
    this.size += 1;
    if (t > w.maxT) w.maxT = t;
    this.evict(w);
    return 'new';
  }

  /** Records (or replaces) the key's value. Call after `check` said new or duplicate. */
  remember(sym: string, key: string, t: number, value: V): void {
    let w = this.symbols.get(sym);
    if (!w) {
      w = { entries: new Map(), maxT: t, watermark: Number.NEGATIVE_INFINITY };
      this.symbols.set(sym, w);
    }
    const existing = w.entries.get(key);
    if (existing) {
      existing.value = value;
      return;
    }
    w.entries.set(key, { t, value });
    this.size += 1;
    if (t > w.maxT) w.maxT = t;
    this.evict(w);
  }

  private evict(w: SymbolWindow<V>): void {
    const horizon = w.maxT - this.options.windowMs;
    for (const [key, entry] of w.entries) {
      if (w.entries.size <= this.options.maxPerSymbol && entry.t >= horizon) break;
      w.entries.delete(key);
      this.size -= 1;
      if (entry.t > w.watermark) w.watermark = entry.t;
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
