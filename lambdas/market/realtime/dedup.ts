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

/**
 * The same exact window for keys without a value (trades, quotes, FMV, market events), held off the
 * JavaScript heap: per symbol, typed arrays in insertion order (a ring: 32-bit hash, time, and where
 * the key's bytes are) plus an open-addressing index (linear probing, backward-shift deletion), and the
 * keys themselves as bytes in one arena per symbol (UTF-16 code units written CESU-8 style, 1-3 bytes
 * each: a bijection, so comparing bytes is comparing strings). A hash hit is only a candidate: a key is
 * a duplicate when its bytes equal a remembered key's, so dedup stays exact whatever the hash does.
 *
 * Why: `KeyWindow` holds a string and a Map entry per key (100+ bytes, all of it old space the garbage
 * collector marks over and over). At the 10x surge the trade and quote windows held millions of keys:
 * 1.5 GB peak RSS and full collections of up to a second (the tick tail). Here nothing per key is a
 * heap object: after five minutes of the surge profile in process (1.13M trade, 450k quote and 249k
 * FMV keys) the windows hold 97.5 MB, 38 bytes a trade key, 99 a quote key, 52 an FMV key, ring and
 * index slack included (147 MB with 32-bit index slots, a stored length per key, an arena sized 4/3
 * to 8/3 of its keys and quote keys holding the symbol).
 */
interface SymbolKeys {
  /** Ring of entries, capacity a power of two; entry `n` (absolute) lives at `n & (capacity - 1)`. */
  hash: Uint32Array;
  time: Float64Array;
  /**
   * Absolute byte offset of the key in the arena, modulo 2^32. Keys are written in ring order, so a
   * key ends where the next one starts (the last one at `byteTail`): no length is stored.
   */
  off: Uint32Array;
  head: number;
  tail: number;
  /** Index: ring position + 1 per slot, 0 = empty; twice the ring's capacity. */
  index: Uint16Array;
  bytes: Uint8Array;
  /** Absolute offset (mod 2^32) of bytes[0] and of the end of the last key. */
  byteBase: number;
  byteTail: number;
  maxT: number;
  watermark: number;
}

const INITIAL_RING = 8;
const INITIAL_BYTES = 128;
/** The index holds ring positions + 1 in 16 bits: rings of at most 2^15 entries. */
const MAX_RING = 32_768;
let scratch = new Uint8Array(256);
let scratchLength = 0;

/** Writes `key` into `scratch` (1-3 bytes per UTF-16 unit) and returns its 32-bit hash. */
function encode(key: string): number {
  if (scratch.length < key.length * 3) scratch = new Uint8Array(key.length * 3 * 2);
  let h = 0x811c9dc5;
  let n = 0;
  for (let k = 0; k < key.length; k += 1) {
    const c = key.charCodeAt(k);
    if (c < 0x80) {
      scratch[n++] = c;
    } else if (c < 0x800) {
      scratch[n++] = 0xc0 | (c >> 6);
      scratch[n++] = 0x80 | (c & 0x3f);
    } else {
      scratch[n++] = 0xe0 | (c >> 12);
      scratch[n++] = 0x80 | ((c >> 6) & 0x3f);
      scratch[n++] = 0x80 | (c & 0x3f);
    }
    h = Math.imul(h ^ c, 0x01000193);
  }
  scratchLength = n;
  // Final avalanche (murmur3 fmix32): the low bits pick the slot.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit hash `KeySet`'s index uses for a key (FNV-1a over its UTF-16 units, then fmix32). */
export function keyHash(key: string): number {
  return encode(key);
}

export class KeySet {
  private readonly symbols = new Map<string, SymbolKeys>();
  private size = 0;
  private readonly ringLimit: number;

  constructor(private readonly options: KeyWindowOptions) {
    if (!(options.windowMs > 0) || !(options.maxPerSymbol > 0)) {
      throw new RangeError('windowMs and maxPerSymbol must be positive');
    }
    // Room for maxPerSymbol + 1 (a key is added before the cap evicts).
    if (options.maxPerSymbol >= MAX_RING)
      throw new RangeError(`KeySet holds at most ${MAX_RING - 1} keys per symbol`);
    let ring = INITIAL_RING;
    while (ring < options.maxPerSymbol + 1) ring *= 2;
    this.ringLimit = ring;
  }

  /** Looks the key up without recording it. */
  check(sym: string, key: string, t: number): DedupVerdict<true>['status'] {
    const w = this.symbols.get(sym);
    if (!w) return 'new';
    if (this.find(w, encode(key)) >= 0) return 'duplicate';
    return t <= w.watermark ? 'outside_window' : 'new';
  }

  /** `check` and, for a new key, `remember` in one pass. */
  firstSeen(sym: string, key: string, t: number): DedupVerdict<true>['status'] {
    const hash = encode(key);
    let w = this.symbols.get(sym);
    if (w) {
      if (this.find(w, hash) >= 0) return 'duplicate';
      if (t <= w.watermark) return 'outside_window';
    } else {
      w = this.create(sym, t);
    }
    this.add(w, hash, t);
    return 'new';
  }

  /** Records the key (nothing when it is already remembered). */
  remember(sym: string, key: string, t: number): void {
    const hash = encode(key);
    const w = this.symbols.get(sym) ?? this.create(sym, t);
    if (this.find(w, hash) >= 0) return;
    this.add(w, hash, t);
  }

  /** Remembered keys over all symbols. */
  get keys(): number {
    return this.size;
  }

  get symbolCount(): number {
    return this.symbols.size;
  }

  /** Bytes held in typed arrays (rings, indexes, key arenas): the window's memory, measured. */
  get bytes(): number {
    let n = 0;
    for (const w of this.symbols.values())
      n += w.hash.byteLength + w.time.byteLength + w.off.byteLength + w.index.byteLength + w.bytes.byteLength;
    return n;
  }

  private create(sym: string, t: number): SymbolKeys {
    const w: SymbolKeys = {
      hash: new Uint32Array(INITIAL_RING),
      time: new Float64Array(INITIAL_RING),
      off: new Uint32Array(INITIAL_RING),
      head: 0,
      tail: 0,
      index: new Uint16Array(INITIAL_RING * 2),
      bytes: new Uint8Array(INITIAL_BYTES),
      byteBase: 0,
      byteTail: 0,
      maxT: t,
      watermark: Number.NEGATIVE_INFINITY,
    };
    this.symbols.set(sym, w);
    return w;
  }

  /** Ring position of the remembered key equal to `scratch` (hash `hash`), or -1. */
  private find(w: SymbolKeys, hash: number): number {
    const mask = w.index.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const v = w.index[i] as number;
      if (v === 0) return -1;
      const p = v - 1;
      if (w.hash[p] === hash && this.equal(w, p)) return p;
    }
  }

  private equal(w: SymbolKeys, p: number): boolean {
    const mask = w.hash.length - 1;
    const end = p === ((w.tail - 1) & mask) ? w.byteTail : (w.off[(p + 1) & mask] as number);
    const n = (end - (w.off[p] as number)) >>> 0;
    if (n !== scratchLength) return false;
    const start = ((w.off[p] as number) - w.byteBase) >>> 0;
    const bytes = w.bytes;
    for (let k = 0; k < n; k += 1) if (bytes[start + k] !== scratch[k]) return false;
    return true;
  }

  private add(w: SymbolKeys, hash: number, t: number): void {
    if (w.tail - w.head === w.hash.length) this.growRing(w);
    this.reserve(w, scratchLength);
    const start = (w.byteTail - w.byteBase) >>> 0;
    w.bytes.set(scratch.subarray(0, scratchLength), start);
    const p = w.tail & (w.hash.length - 1);
    w.hash[p] = hash;
    w.time[p] = t;
    w.off[p] = w.byteTail;
    w.byteTail = (w.byteTail + scratchLength) >>> 0;
    w.tail += 1;
    this.insert(w, p);
    this.size += 1;
    if (t > w.maxT) w.maxT = t;
    this.evict(w);
  }

  private insert(w: SymbolKeys, p: number): void {
    const mask = w.index.length - 1;
    let i = (w.hash[p] as number) & mask;
    while (w.index[i] !== 0) i = (i + 1) & mask;
    w.index[i] = p + 1;
  }

  /** Removes ring position `p` from the index (backward-shift deletion: no tombstones). */
  private unindex(w: SymbolKeys, p: number): void {
    const index = w.index;
    const mask = index.length - 1;
    let i = (w.hash[p] as number) & mask;
    while (index[i] !== p + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const v = index[j] as number;
      if (v === 0) break;
      const home = (w.hash[v - 1] as number) & mask;
      // The entry at j may move to i unless its home lies cyclically in (i, j].
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      index[i] = v;
      i = j;
    }
    index[i] = 0;
  }

  private evict(w: SymbolKeys): void {
    const horizon = w.maxT - this.options.windowMs;
    const max = this.options.maxPerSymbol;
    const mask = w.hash.length - 1;
    while (w.head < w.tail) {
      const p = w.head & mask;
      const t = w.time[p] as number;
      if (w.tail - w.head <= max && t >= horizon) break;
      this.unindex(w, p);
      w.head += 1;
      this.size -= 1;
      if (t > w.watermark) w.watermark = t;
    }
  }

  /** Doubles the ring (and its index); the live entries keep their order. */
  private growRing(w: SymbolKeys): void {
    const old = w.hash.length;
    const size = old * 2;
    if (size > this.ringLimit) throw new Error('KeySet ring over its limit (evict before adding)');
    const hash = new Uint32Array(size);
    const time = new Float64Array(size);
    const off = new Uint32Array(size);
    for (let n = w.head; n < w.tail; n += 1) {
      const from = n & (old - 1);
      const to = n & (size - 1);
      hash[to] = w.hash[from] as number;
      time[to] = w.time[from] as number;
      off[to] = w.off[from] as number;
    }
    w.hash = hash;
    w.time = time;
    w.off = off;
    w.index = new Uint16Array(size * 2);
    for (let n = w.head; n < w.tail; n += 1) this.insert(w, n & (size - 1));
  }

  /**
   * Room for `n` more key bytes: the evicted keys' bytes are dropped, and the arena is resized to
   * 1.5x what it must hold when that is over 7/8 of it (or under 1/4: a window that emptied gives its
   * memory back). Between resizes the arena is 8/7 to 4x its live bytes, 1.5x after a resize; each
   * compaction copies the live bytes, about twice the bytes appended since the last one.
   */
  private reserve(w: SymbolKeys, n: number): void {
    const used = (w.byteTail - w.byteBase) >>> 0;
    if (used + n <= w.bytes.length) return;
    const first = w.head < w.tail ? (w.off[w.head & (w.hash.length - 1)] as number) : w.byteTail;
    const live = (w.byteTail - first) >>> 0;
    const from = (first - w.byteBase) >>> 0;
    const need = live + n;
    const size = w.bytes.length;
    if (need * 8 <= size * 7 && need * 4 >= size) {
      w.bytes.copyWithin(0, from, from + live);
    } else {
      const bytes = new Uint8Array(Math.max(INITIAL_BYTES, Math.ceil((need * 1.5) / 8) * 8));
      bytes.set(w.bytes.subarray(from, from + live));
      w.bytes = bytes;
    }
    w.byteBase = first;
  }
}
