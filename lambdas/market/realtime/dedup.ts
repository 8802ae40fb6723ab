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

export interface KeyWindowOptions {
  /** Keys older than the newest seen for the symbol minus this are forgotten. */
  readonly windowMs: number;
  /** Hard cap of remembered keys per symbol, whatever their age. */
  readonly maxPerSymbol: number;
}

/**
 * What `KeySet` and `BarWindow` keep per symbol for their order and index: a ring of entries in
 * insertion order (capacity a power of two; entry `n`, absolute, at `n & (capacity - 1)`) with each
 * entry's 32-bit hash and time, and an open-addressing index over it (linear probing, backward-shift
 * deletion: no tombstones) holding ring position + 1 per slot, 0 = empty, twice the ring's capacity.
 */
interface Ring {
  hash: Uint32Array;
  time: Float64Array;
  index: Uint16Array;
  head: number;
  tail: number;
  maxT: number;
  watermark: number;
}

function indexInsert(w: Ring, p: number): void {
  const mask = w.index.length - 1;
  let i = (w.hash[p] as number) & mask;
  while (w.index[i] !== 0) i = (i + 1) & mask;
  w.index[i] = p + 1;
}

function indexRemove(w: Ring, p: number): void {
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

/** A new, empty index for the ring's current capacity, with every live entry in it. */
function reindex(w: Ring): void {
  const size = w.hash.length;
  w.index = new Uint16Array(size * 2);
  for (let n = w.head; n < w.tail; n += 1) indexInsert(w, n & (size - 1));
}

/**
 * Forgets the oldest entries while there are more than `max` or they are older than the window behind
 * the newest; each one raises the watermark to its time. Returns how many went.
 */
function evictOld(w: Ring, options: KeyWindowOptions): number {
  const horizon = w.maxT - options.windowMs;
  const mask = w.hash.length - 1;
  let evicted = 0;
  while (w.head < w.tail) {
    const p = w.head & mask;
    const t = w.time[p] as number;
    if (w.tail - w.head <= options.maxPerSymbol && t >= horizon) break;
    indexRemove(w, p);
    w.head += 1;
    evicted += 1;
    if (t > w.watermark) w.watermark = t;
  }
  return evicted;
}

const INITIAL_RING = 8;
const INITIAL_BYTES = 128;
/** The index holds ring positions + 1 in 16 bits: rings of at most 2^15 entries. */
const MAX_RING = 32_768;

/** The largest ring a window needs: room for maxPerSymbol + 1 (an entry is added before the cap evicts). */
function ringLimit(options: KeyWindowOptions): number {
  if (!(options.windowMs > 0) || !(options.maxPerSymbol > 0)) {
    throw new RangeError('windowMs and maxPerSymbol must be positive');
  }
  if (options.maxPerSymbol >= MAX_RING)
    throw new RangeError(`a window holds at most ${MAX_RING - 1} entries per symbol`);
  let ring = INITIAL_RING;
  while (ring < options.maxPerSymbol + 1) ring *= 2;
  return ring;
}

/** The ring's live entries (`stride` values each), in order, in a new array of `size` entries. */
function regrow<A extends Uint32Array | Float64Array>(w: Ring, from: A, size: number, stride = 1): A {
  const to = new (from.constructor as new (length: number) => A)(size * stride);
  const old = from.length / stride;
  for (let n = w.head; n < w.tail; n += 1) {
    const a = (n & (old - 1)) * stride;
    const b = (n & (size - 1)) * stride;
    for (let k = 0; k < stride; k += 1) to[b + k] = from[a + k] as number;
  }
  return to;
}

/**
 * The window for keys without a value (trades, quotes, FMV, market events), held off the JavaScript
 * heap: per symbol, a `Ring` (32-bit hash and time per entry, and its index) with where each key's
 * bytes are, and the keys themselves as bytes in one arena per symbol (UTF-16 code units written
 * CESU-8 style, 1-3 bytes each: a bijection, so comparing bytes is comparing strings). A hash hit is
 * only a candidate: a key is a duplicate when its bytes equal a remembered key's, so dedup stays
 * exact whatever the hash does.
 *
 * Why: a Map-based window (test/support/key-window.ts, now the tests' reference model) holds a string
 * and a Map entry per key (100+ bytes, all of it old space the garbage collector marks over and over).
 * At the 10x surge the trade and quote windows held millions of keys: 1.5 GB peak RSS and full
 * collections of up to a second (the tick tail). Here nothing per key is a heap object: after five
 * minutes of the surge profile in process (1.13M trade, 450k quote and 249k FMV keys) the windows
 * hold 97.5 MB, 38 bytes a trade key, 99 a quote key, 52 an FMV key, ring and index slack included
 * (147 MB with 32-bit index slots, a stored length per key, an arena sized 4/3 to 8/3 of its keys
 * and quote keys holding the symbol). Quote keys written as parts (`startKey`: numbers as varints,
 * not text) are ~13 bytes smaller still: 106 -> 100 MB (10^6 bytes) at five minutes.
 */
interface SymbolKeys extends Ring {
  /**
   * Absolute byte offset of the key in the arena, modulo 2^32. Keys are written in ring order, so a
   * key ends where the next one starts (the last one at `byteTail`): no length is stored.
   */
  off: Uint32Array;
  bytes: Uint8Array;
  /** Absolute offset (mod 2^32) of bytes[0] and of the end of the last key. */
  byteBase: number;
  byteTail: number;
}

let scratch = new Uint8Array(256);
let scratchView = new DataView(scratch.buffer);
let scratchLength = 0;

/** Room for `more` bytes after what the scratch holds (kept when it grows). */
function reserveScratch(more: number): void {
  if (scratchLength + more <= scratch.length) return;
  const grown = new Uint8Array((scratchLength + more) * 2);
  grown.set(scratch.subarray(0, scratchLength));
  scratch = grown;
  scratchView = new DataView(scratch.buffer);
}

/**
 * Appends `text`'s UTF-16 units, 1-3 bytes each (CESU-8 style: a bijection), and returns the FNV-1a
 * of the units (before `avalanche`), computed in the same pass.
 */
function writeText(text: string): number {
  reserveScratch(text.length * 3);
  let h = 0x811c9dc5;
  let n = scratchLength;
  for (let k = 0; k < text.length; k += 1) {
    const c = text.charCodeAt(k);
    h = Math.imul(h ^ c, 0x01000193);
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
  }
  scratchLength = n;
  return h;
}

/** Murmur3's fmix32: the low bits pick the slot. */
function avalanche(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Writes `key` into `scratch` (1-3 bytes per UTF-16 unit) and returns its 32-bit hash. */
function encode(key: string): number {
  scratchLength = 0;
  return avalanche(writeText(key));
}

/** The 32-bit hash `KeySet`'s index uses for a key (FNV-1a over its UTF-16 units, then fmix32). */
export function keyHash(key: string): number {
  return encode(key);
}

/**
 * A key written as bytes, part by part, with no string built (the quote key: ten fields a quote at
 * the surge's rate were a sixth of the router's allocation): `startKey()`, then `keyNumber` and
 * `keyText` parts, then `KeySet.firstSeenWritten`. Each part is tagged and self-delimiting, so two
 * keys are equal exactly when their parts are. A window takes its keys in one form only: a written
 * key never equals the same content given as a string.
 */
export function startKey(): void {
  scratchLength = 0;
}

const TAG_UINT = 1;
const TAG_NEG_INT = 2;
const TAG_DECIMAL = 3;
const TAG_NEG_DECIMAL = 4;
const TAG_FLOAT = 5;
const TAG_TEXT = 6;

function writeVarint(u: number): void {
  // Safe integers only (u < 2^53): division, not 32-bit shifts.
  let v = u;
  while (v >= 128) {
    const low = v % 128;
    scratch[scratchLength++] = low | 128;
    v = (v - low) / 128;
  }
  scratch[scratchLength++] = v;
}

/**
 * A number, exactly (-0 as 0, as JSON writes it): an integer as a varint, a value with at most four
 * decimals as a varint of it times 10^4 (kept only when dividing back gives the very same double,
 * so the encoding stays one to one), anything else as its eight bytes.
 */
export function keyNumber(v: number): void {
  reserveScratch(10);
  if (Number.isSafeInteger(v)) {
    scratch[scratchLength++] = v < 0 ? TAG_NEG_INT : TAG_UINT;
    writeVarint(Math.abs(v));
    return;
  }
  const scaled = v * 10_000;
  if (Number.isSafeInteger(scaled) && scaled / 10_000 === v) {
    scratch[scratchLength++] = scaled < 0 ? TAG_NEG_DECIMAL : TAG_DECIMAL;
    writeVarint(Math.abs(scaled));
    return;
  }
  scratch[scratchLength++] = TAG_FLOAT;
  scratchView.setFloat64(scratchLength, v);
  scratchLength += 8;
}

/** A string part: its length in UTF-16 units, then its units. */
export function keyText(text: string): void {
  reserveScratch(10);
  scratch[scratchLength++] = TAG_TEXT;
  writeVarint(text.length);
  writeText(text);
}

/** The written key's bytes as a string (one char per byte): for tests and diagnostics. */
export function writtenKey(): string {
  return String.fromCharCode(...scratch.subarray(0, scratchLength));
}

/** FNV-1a over the written key's bytes, then fmix32. */
function hashWritten(): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < scratchLength; k += 1) h = Math.imul(h ^ (scratch[k] as number), 0x01000193);
  return avalanche(h);
}

export class KeySet {
  private readonly symbols = new Map<string, SymbolKeys>();
  private size = 0;
  private readonly ringLimit: number;

  constructor(private readonly options: KeyWindowOptions) {
    this.ringLimit = ringLimit(options);
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
    return this.firstSeenHashed(sym, encode(key), t);
  }

  /** `firstSeen` for the key just written (`startKey` and its parts). */
  firstSeenWritten(sym: string, t: number): DedupVerdict<true>['status'] {
    return this.firstSeenHashed(sym, hashWritten(), t);
  }

  private firstSeenHashed(sym: string, hash: number, t: number): DedupVerdict<true>['status'] {
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
    indexInsert(w, p);
    this.size += 1;
    if (t > w.maxT) w.maxT = t;
    this.size -= evictOld(w, this.options);
  }

  /** Doubles the ring (and its index); the live entries keep their order. */
  private growRing(w: SymbolKeys): void {
    const size = w.hash.length * 2;
    if (size > this.ringLimit) throw new Error('KeySet ring over its limit (evict before adding)');
    w.hash = regrow(w, w.hash, size);
    w.time = regrow(w, w.time, size);
    w.off = regrow(w, w.off, size);
    reindex(w);
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

/** What `BarWindow.offer` found: a bar first seen, a repeat, new values for a held bar, or one too old. */
export type BarVerdict = 'new' | 'duplicate' | 'correction' | 'outside_window';

/** A bar's values compared to tell a repeat from a correction. */
const BAR_VALUES = 6;

interface SymbolBars extends Ring {
  /** Each entry's values o, h, l, c, v, e (BAR_VALUES per entry); its time is the bar's start, its key. */
  values: Float64Array;
}

const startBits = new Float64Array(1);
const startWords = new Uint32Array(startBits.buffer);

/** A bar start's 32-bit hash (its two words mixed, then fmix32). */
function startHash(start: number): number {
  startBits[0] = start;
  let h = Math.imul((startWords[0] as number) ^ 0x9e3779b9, 0x85ebca6b) ^ (startWords[1] as number);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The bars' window (second and minute bars, keyed by symbol and start), off the JavaScript heap as
 * `KeySet` is: per symbol a ring of typed arrays (the start, which is the bar's key and its time, and
 * its values o, h, l, c, v, e) with an open-addressing index on the start. A held bar offered again
 * is a repeat when its values are equal and a correction otherwise; a correction's values replace
 * the held ones, so its own repeats are repeats. Window, cap and watermark as in `KeySet`.
 *
 * Why: a minute bar is held for 60 minutes (for corrections), so 8,000 symbols hold ~480,000 bars
 * once the window is full. In the Map-based window each was a Map entry with its key and values as strings:
 * ~200 bytes of heap a bar (~550 while the values were a template literal's rope), ~100 MB the
 * collector marks; here 56 bytes of typed arrays plus ring and index slack.
 */
export class BarWindow {
  private readonly symbols = new Map<string, SymbolBars>();
  private size = 0;
  private readonly ringLimit: number;

  constructor(private readonly options: KeyWindowOptions) {
    this.ringLimit = ringLimit(options);
  }

  /** Looks the bar up and records it (a new bar, or a correction's values). */
  offer(
    sym: string,
    start: number,
    o: number,
    h: number,
    l: number,
    c: number,
    v: number,
    e: number,
  ): BarVerdict {
    const hash = startHash(start);
    let w = this.symbols.get(sym);
    if (w) {
      const p = this.find(w, hash, start);
      if (p >= 0) {
        const at = p * BAR_VALUES;
        const vs = w.values;
        if (
          vs[at] === o &&
          vs[at + 1] === h &&
          vs[at + 2] === l &&
          vs[at + 3] === c &&
          vs[at + 4] === v &&
          vs[at + 5] === e
        )
          return 'duplicate';
        vs[at] = o;
        vs[at + 1] = h;
        vs[at + 2] = l;
        vs[at + 3] = c;
        vs[at + 4] = v;
        vs[at + 5] = e;
        return 'correction';
      }
      if (start <= w.watermark) return 'outside_window';
    } else {
      w = this.create(sym, start);
    }
    if (w.tail - w.head === w.hash.length) this.growRing(w);
    const p = w.tail & (w.hash.length - 1);
    w.hash[p] = hash;
    w.time[p] = start;
    const at = p * BAR_VALUES;
    w.values[at] = o;
    w.values[at + 1] = h;
    w.values[at + 2] = l;
    w.values[at + 3] = c;
    w.values[at + 4] = v;
    w.values[at + 5] = e;
    w.tail += 1;
    indexInsert(w, p);
    this.size += 1;
    if (start > w.maxT) w.maxT = start;
    this.size -= evictOld(w, this.options);
    return 'new';
  }

  /** Bars held over all symbols. */
  get keys(): number {
    return this.size;
  }

  get symbolCount(): number {
    return this.symbols.size;
  }

  /** Bytes held in typed arrays (rings and indexes). */
  get bytes(): number {
    let n = 0;
    for (const w of this.symbols.values())
      n += w.hash.byteLength + w.time.byteLength + w.values.byteLength + w.index.byteLength;
    return n;
  }

  private create(sym: string, t: number): SymbolBars {
    const w: SymbolBars = {
      hash: new Uint32Array(INITIAL_RING),
      time: new Float64Array(INITIAL_RING),
      values: new Float64Array(INITIAL_RING * BAR_VALUES),
      head: 0,
      tail: 0,
      index: new Uint16Array(INITIAL_RING * 2),
      maxT: t,
      watermark: Number.NEGATIVE_INFINITY,
    };
    this.symbols.set(sym, w);
    return w;
  }

  private find(w: SymbolBars, hash: number, start: number): number {
    const mask = w.index.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const v = w.index[i] as number;
      if (v === 0) return -1;
      if (w.time[v - 1] === start) return v - 1;
    }
  }

  private growRing(w: SymbolBars): void {
    const size = w.hash.length * 2;
    if (size > this.ringLimit) throw new Error('BarWindow ring over its limit (evict before adding)');
    w.hash = regrow(w, w.hash, size);
    w.time = regrow(w, w.time, size);
    w.values = regrow(w, w.values, size, BAR_VALUES);
    reindex(w);
  }
}
