import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIDENCE, fmvConfidence } from '../../../lambdas/market/realtime/confidence';
import {
  BarWindow,
  KeySet,
  keyHash,
  keyNumber,
  keyText,
  startKey,
  writtenKey,
} from '../../../lambdas/market/realtime/dedup';
import { MarketEventDetector } from '../../../lambdas/market/realtime/market-events';
import { MinuteCompletion } from '../../../lambdas/market/realtime/minute-complete';
import { classify, invalidBarReason } from '../../../lambdas/market/realtime/normalise';
import type { BarEvent } from '../../../lambdas/market/realtime/types';
import { minuteOf, toMillis } from '../../../lambdas/market/realtime/types';
import { KeyWindow } from '../../support/key-window';

const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);
const bar = (over: Partial<BarEvent> = {}): BarEvent => ({
  ev: 'AM',
  sym: 'AAPL',
  o: 100,
  h: 101,
  l: 99,
  c: 100.5,
  v: 1000,
  s: T0,
  e: T0 + 60_000,
  ...over,
});

describe('classify', () => {
  it('routes T and Q to tick, A and AM to ohlcv, FMV to fmv', () => {
    const events = [
      { ev: 'T', sym: 'A', x: 1, i: '9', p: 1, s: 1, t: T0 },
      { ev: 'Q', sym: 'A', bp: 1, ap: 1.1, t: T0 },
      { ...bar(), ev: 'A', s: T0, e: T0 + 1000 },
      bar(),
      { ev: 'FMV', sym: 'A', fmv: 1, t: T0 },
    ];

    const channels = events.map((e) => classify(e).channel);

    expect(channels).toEqual(['tick', 'tick', 'ohlcv', 'ohlcv', 'fmv']);
  });

  it('keeps status frames and unrouted channels out of every channel', () => {
    const results = [
      classify({ ev: 'status', status: 'auth_success' }),
      classify({ ev: 'LULD', T: 'A' }),
      classify('x'),
      classify([1]),
    ];

    expect(results.map((r) => [r.channel, r.ok ? '' : r.reason])).toEqual([
      [null, 'status'],
      [null, 'unknown_event'],
      [null, 'unknown_event'],
      [null, 'unknown_event'],
    ]);
  });

  it('rejects events missing the fields their rules need as malformed_event, in their own channel', () => {
    const results = [
      classify({ ev: 'T', sym: 'A', x: 1, p: 1, s: 1, t: T0 }),
      classify({ ev: 'Q', sym: 'A', bp: '1', ap: 1, t: T0 }),
      classify({ ev: 'AM', sym: 'A', o: 1 }),
      classify({ ev: 'FMV', sym: 'A', t: T0 }),
      classify({ ev: 'T', x: 1, i: '1', p: 1, s: 1, t: T0 }),
    ];

    expect(results.map((r) => [r.channel, r.ok ? '' : r.reason])).toEqual([
      ['tick', 'malformed_event'],
      ['tick', 'malformed_event'],
      ['ohlcv', 'malformed_event'],
      ['fmv', 'malformed_event'],
      ['tick', 'malformed_event'],
    ]);
  });

  it('accepts a numeric trade id as the same id in string form', () => {
    const result = classify({ ev: 'T', sym: 'A', x: 1, i: 42, p: 1, s: 1, t: T0 });

    expect(result.ok && result.event.ev === 'T' && result.event.i).toBe('42');
  });

  it('rejects non-positive trade prices and FMV values', () => {
    const trade = classify({ ev: 'T', sym: 'A', x: 1, i: '1', p: 0, s: 1, t: T0 });
    const fmv = classify({ ev: 'FMV', sym: 'A', fmv: -2, t: T0 });

    expect([trade.ok ? '' : trade.reason, fmv.ok ? '' : fmv.reason]).toEqual([
      'invalid_trade',
      'invalid_value',
    ]);
  });
});

describe('invalid bars', () => {
  it.each([
    ['high_below_open_close', { h: 100.4 }],
    ['low_above_open_close', { l: 100.1 }],
    ['negative_value', { v: -1 }],
    ['non_finite_value', { o: Number.NaN }],
    ['non_finite_value', { vw: Number.POSITIVE_INFINITY }],
    ['end_before_start', { e: T0 - 1 }],
  ])('a bar with %s is rejected', (reason, over) => {
    expect(invalidBarReason(bar(over as Partial<BarEvent>))).toBe(reason);
  });

  it('a bar whose high equals the close and low equals the open is valid', () => {
    expect(invalidBarReason(bar({ h: 100.5, l: 100 }))).toBeNull();
  });

  it('rejects through classify in the ohlcv channel', () => {
    const result = classify(bar({ h: 99 }));

    expect([result.channel, result.ok ? '' : result.reason]).toEqual(['ohlcv', 'high_below_open_close']);
  });
});

describe('KeyWindow (exact dedup, bounded memory)', () => {
  it('says duplicate for a key seen before and returns the value remembered with it', () => {
    const w = new KeyWindow<string>({ windowMs: 60_000, maxPerSymbol: 10 });
    w.remember('A', 'k', T0, 'v1');

    expect(w.check('A', 'k', T0)).toEqual({ status: 'duplicate', previous: 'v1' });
    expect(w.check('B', 'k', T0)).toEqual({ status: 'new' });
  });

  it('never holds more than maxPerSymbol keys and refuses what it can no longer check', () => {
    const w = new KeyWindow({ windowMs: 3_600_000, maxPerSymbol: 100 });
    for (let k = 0; k < 1000; k += 1) w.remember('A', `k${k}`, T0 + k, true);

    expect(w.keys).toBe(100);
    expect(w.check('A', 'k0', T0)).toEqual({ status: 'outside_window' });
    expect(w.check('A', 'k999', T0 + 999)).toEqual({ status: 'duplicate', previous: true });
    expect(w.check('A', 'new', T0 + 1000)).toEqual({ status: 'new' });
  });

  it('forgets keys older than the window behind the newest and refuses their timestamps', () => {
    const w = new KeyWindow({ windowMs: 1_000, maxPerSymbol: 1_000 });
    w.remember('A', 'old', T0, true);
    w.remember('A', 'new', T0 + 5_000, true);

    expect(w.keys).toBe(1);
    expect(w.check('A', 'old', T0)).toEqual({ status: 'outside_window' });
    expect(w.check('A', 'other-old', T0 - 10)).toEqual({ status: 'outside_window' });
  });

  it('accepts a late key that is still inside the window', () => {
    const w = new KeyWindow({ windowMs: 10_000, maxPerSymbol: 1_000 });
    w.remember('A', 'b', T0 + 5_000, true);

    expect(w.check('A', 'a', T0)).toEqual({ status: 'new' });
  });

  it('firstSeen checks and remembers in one call, with the same verdicts as check then remember', () => {
    const w = new KeyWindow({ windowMs: 1_000, maxPerSymbol: 1_000 });

    expect(w.firstSeen('A', 'k', T0, true)).toBe('new');
    expect(w.firstSeen('A', 'k', T0, true)).toBe('duplicate');
    expect(w.firstSeen('B', 'k', T0, true)).toBe('new');
    expect(w.firstSeen('A', 'late', T0 + 5_000, true)).toBe('new');
    expect(w.firstSeen('A', 'k', T0, true)).toBe('outside_window');
    expect(w.keys).toBe(2);
  });

  it('stays exact and bounded over a long stream (evictions far past its internal compaction)', () => {
    const w = new KeyWindow({ windowMs: 500, maxPerSymbol: 300 });
    let duplicates = 0;
    for (let k = 0; k < 50_000; k += 1) {
      if (w.firstSeen('A', `k${k}`, T0 + k, true) !== 'new') throw new Error(`k${k} not new`);
      // Every key is offered again 100 keys later: still inside the window, so a duplicate.
      if (k >= 100 && w.firstSeen('A', `k${k - 100}`, T0 + k - 100, true) === 'duplicate') duplicates += 1;
      if (w.keys > 300) throw new Error(`${w.keys} keys held at k${k}`);
    }

    expect(duplicates).toBe(50_000 - 100);
    expect(w.check('A', 'k0', T0)).toEqual({ status: 'outside_window' });
    expect(w.check('A', 'k49999', T0 + 49_999)).toEqual({ status: 'duplicate', previous: true });
  });
});

describe('written keys (parts straight into the window, no string built)', () => {
  const written = (...parts: (number | string)[]): string => {
    startKey();
    for (const p of parts) typeof p === 'number' ? keyNumber(p) : keyText(p);
    return writtenKey();
  };

  it('writes equal numbers alike and different numbers apart, whatever their size or sign', () => {
    const values = [
      0,
      1,
      -1,
      127,
      128,
      -128,
      2 ** 31,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53,
      1e21,
      -1e21,
      0.1,
      0.2,
      0.3,
      0.1 + 0.2,
      123.45,
      123.4501,
      -123.45,
      99.99,
      100.01,
      1e-7,
      5e-324,
      Number.MAX_VALUE,
      1 / 3,
      0.00005,
      0.0001,
    ];
    const keys = values.map((v) => written(v));

    expect(new Set(keys).size).toBe(values.length);
    expect(values.map((v) => written(v))).toEqual(keys);
    // JSON writes -0 as 0: the same quote.
    expect(written(-0)).toBe(written(0));
  });

  it('keeps parts apart: a number never equals its text, and texts cannot run together', () => {
    expect(written(1)).not.toBe(written('1'));
    expect(written('ab', 'c')).not.toBe(written('a', 'bc'));
    expect(written(1, 23)).not.toBe(written(12, 3));
    expect(written('é', '\ud83d\ude00')).toBe(written('é', '\ud83d\ude00'));
  });

  it('finds a written key again in a window and tells others apart (against the reference model)', () => {
    const w = new KeySet({ windowMs: 60_000, maxPerSymbol: 1_000 });
    const model = new KeyWindow<true>({ windowMs: 60_000, maxPerSymbol: 1_000 });
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let agreed = 0;
    for (let k = 0; k < 20_000; k += 1) {
      // Few distinct values, so repeats are common: prices, sizes, and a text part now and then.
      const parts = [
        Math.floor(random() * 5),
        100 + Math.floor(random() * 4) / 100,
        Math.floor(random() * 3),
      ];
      const text = random() < 0.2 ? ['c'] : [];
      startKey();
      for (const p of parts) keyNumber(p);
      for (const x of text) keyText(x);
      const got = w.firstSeenWritten('A', T0);
      const reference = JSON.stringify([parts, text]);
      const expected = model.check('A', reference, T0).status === 'duplicate' ? 'duplicate' : 'new';
      if (expected === 'new') model.remember('A', reference, T0, true);
      if (got === expected) agreed += 1;
    }

    expect(agreed).toBe(20_000);
    expect(w.keys).toBe(model.keys);
  });
});

describe('KeySet (exact dedup off the heap, bounded memory)', () => {
  it('says duplicate only for the same key of the same symbol', () => {
    const w = new KeySet({ windowMs: 60_000, maxPerSymbol: 10 });

    expect(w.firstSeen('A', '4|1', T0)).toBe('new');
    expect(w.firstSeen('A', '4|1', T0)).toBe('duplicate');
    expect(w.firstSeen('A', '4|10', T0)).toBe('new');
    expect(w.firstSeen('B', '4|1', T0)).toBe('new');
    expect(w.check('A', '4|10', T0)).toBe('duplicate');
    expect(w.check('A', '4|100', T0)).toBe('new');
    expect(w.keys).toBe(3);
  });

  it('compares keys exactly, whatever their characters (non-ASCII, astral, empty)', () => {
    const w = new KeySet({ windowMs: 60_000, maxPerSymbol: 100 });
    const keys = [
      '',
      'é',
      'e\u0301',
      '\u20ac1',
      '\ud83d\ude00',
      '\ud83d',
      'ÿ',
      '\u00ff\u0000',
      '\u0000\u00ff',
    ];
    for (const k of keys) expect(w.firstSeen('A', k, T0)).toBe('new');
    for (const k of keys) expect(w.firstSeen('A', k, T0)).toBe('duplicate');
  });

  it('tells apart keys whose 32-bit hashes collide (the bytes decide, not the hash)', () => {
    // Two-character keys with equal FNV-1a-then-fmix hashes, found by search below: a collision the
    // index must resolve by comparing the keys.
    const seen = new Map<number, string>();
    let pair: [string, string] | null = null;
    for (let k = 0; pair === null && k < 2_000_000; k += 1) {
      const s = `k${k}`;
      const h = keyHash(s);
      const other = seen.get(h);
      if (other !== undefined) pair = [other, s];
      else seen.set(h, s);
    }
    if (pair === null) throw new Error('no collision found');
    const w = new KeySet({ windowMs: 60_000, maxPerSymbol: 100 });

    expect(keyHash(pair[0])).toBe(keyHash(pair[1]));
    expect(w.firstSeen('A', pair[0], T0)).toBe('new');
    expect(w.firstSeen('A', pair[1], T0)).toBe('new');
    expect(w.firstSeen('A', pair[1], T0)).toBe('duplicate');
    expect(w.firstSeen('A', pair[0], T0)).toBe('duplicate');
  });

  it('never holds more than maxPerSymbol keys and refuses what it can no longer check', () => {
    const w = new KeySet({ windowMs: 3_600_000, maxPerSymbol: 100 });
    for (let k = 0; k < 1000; k += 1) w.remember('A', `k${k}`, T0 + k);

    expect(w.keys).toBe(100);
    expect(w.check('A', 'k0', T0)).toBe('outside_window');
    expect(w.check('A', 'k999', T0 + 999)).toBe('duplicate');
    expect(w.check('A', 'new', T0 + 1000)).toBe('new');
  });

  it('forgets keys older than the window behind the newest and refuses their timestamps', () => {
    const w = new KeySet({ windowMs: 1_000, maxPerSymbol: 1_000 });
    w.remember('A', 'old', T0);
    w.remember('A', 'new', T0 + 5_000);

    expect(w.keys).toBe(1);
    expect(w.check('A', 'old', T0)).toBe('outside_window');
    expect(w.check('A', 'other-old', T0 - 10)).toBe('outside_window');
    expect(w.check('A', 'late', T0 + 4_500)).toBe('new');
  });

  it('gives the same verdicts as KeyWindow over a long random stream with repeats, late keys and evictions', () => {
    const options = { windowMs: 2_000, maxPerSymbol: 700 };
    const a = new KeySet(options);
    const b = new KeyWindow(options);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const verdicts: Record<string, number> = { new: 0, duplicate: 0, outside_window: 0 };
    for (let k = 0; k < 200_000; k += 1) {
      const sym = `S${rand(5)}`;
      // Keys of varying length (the arena compacts and grows), times mostly rising, some late.
      const id = rand(400);
      const key = `${rand(3)}|${id}${'x'.repeat(id % 40)}`;
      const t = T0 + k / 10 - rand(4) * 500;
      const got = a.firstSeen(sym, key, t);
      const want = b.firstSeen(sym, key, t, true);
      if (got !== want) throw new Error(`event ${k}: ${got} != ${want}`);
      verdicts[got] = (verdicts[got] ?? 0) + 1;
      if (a.keys !== b.keys) throw new Error(`event ${k}: ${a.keys} keys != ${b.keys}`);
    }

    // Every verdict occurred, and memory stayed bounded: at most 5 x 700 keys.
    expect(Object.values(verdicts).every((n) => n > 1_000)).toBe(true);
    expect(a.keys).toBeLessThanOrEqual(5 * 700);
    expect(a.bytes).toBeLessThan(5 * 1024 * 1024);
  });

  it("gives a symbol's key bytes back once its window has emptied, and still decides exactly", () => {
    const w = new KeySet({ windowMs: 1_000, maxPerSymbol: 5_000 });
    const long = (k: number) => `${k}|${'x'.repeat(60)}`;
    for (let k = 0; k < 5_000; k += 1) w.remember('A', long(k), T0);
    const full = w.bytes;
    // Each key now leaves the window before the next arrives: one live key, its arena reused.
    let t = T0;
    for (let k = 0; k < 20_000; k += 1) {
      t += 2_000;
      expect(w.firstSeen('A', `late${k}`, t)).toBe('new');
    }

    expect(w.keys).toBe(1);
    // The ring keeps its size (5,000 keys' worth); the ~300 KB of key bytes are gone.
    expect(full - w.bytes).toBeGreaterThan(250_000);
    expect(w.check('A', 'late19999', t)).toBe('duplicate');
    expect(w.check('A', 'late19998', t - 2_000)).toBe('outside_window');
    expect(w.check('A', long(1), T0)).toBe('outside_window');
  });

  it('refuses a per-symbol cap its 16-bit index cannot address', () => {
    expect(() => new KeySet({ windowMs: 1_000, maxPerSymbol: 32_768 })).toThrow(RangeError);
    expect(new KeySet({ windowMs: 1_000, maxPerSymbol: 32_767 }).keys).toBe(0);
  });
});

describe('BarWindow (bars off the heap: repeats, corrections, bounded memory)', () => {
  it('gives the same verdicts as a KeyWindow holding the values as text over a long random stream', () => {
    const options = { windowMs: 60_000, maxPerSymbol: 120 };
    const a = new BarWindow(options);
    const b = new KeyWindow<string>(options);
    let seed = 777;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const verdicts: Record<string, number> = { new: 0, duplicate: 0, correction: 0, outside_window: 0 };
    for (let k = 0; k < 200_000; k += 1) {
      const sym = `S${rand(5)}`;
      // Second bars mostly rising, some late (outside the window), repeats, and changed values (corrections,
      // then repeats of a correction, then the first values again).
      const start = T0 + (Math.floor(k / 40) - rand(100)) * 1_000;
      const change = rand(8) === 0 ? rand(3) : 0;
      const [o, h, l, c, v, e] = [
        10 + change,
        11 + change,
        9,
        10,
        100 + (change === 2 ? 1 : 0),
        start + 1_000,
      ];
      const got = a.offer(sym, start, o, h, l, c, v, e);
      const prints = [o, h, l, c, v, e].join('|');
      const held = b.check(sym, String(start), start);
      let want: string;
      if (held.status === 'outside_window') want = 'outside_window';
      else if (held.status === 'duplicate' && held.previous === prints) want = 'duplicate';
      else {
        want = held.status === 'duplicate' ? 'correction' : 'new';
        b.remember(sym, String(start), start, prints);
      }
      if (got !== want) throw new Error(`bar ${k}: ${got} != ${want}`);
      verdicts[got] = (verdicts[got] ?? 0) + 1;
      if (a.keys !== b.keys) throw new Error(`bar ${k}: ${a.keys} bars != ${b.keys}`);
    }

    expect(Object.values(verdicts).every((n) => n > 1_000)).toBe(true);
    expect(a.keys).toBeLessThanOrEqual(5 * 120);
    // 5 symbols x a ring of 128 x (hash 4 + start 8 + six values 48 + two 16-bit index slots 4 bytes).
    expect(a.bytes).toBeLessThanOrEqual(5 * 128 * (4 + 8 + 48 + 4));
  });

  it('tells apart values that differ in any one field, and holds a correction as the new values', () => {
    const w = new BarWindow({ windowMs: 3_600_000, maxPerSymbol: 120 });
    const bar = [10, 12, 9, 11, 500, T0 + 60_000] as const;
    expect(w.offer('A', T0, ...bar)).toBe('new');
    expect(w.offer('B', T0, ...bar)).toBe('new');
    expect(w.offer('A', T0, ...bar)).toBe('duplicate');
    for (let f = 0; f < 6; f += 1) {
      const changed = bar.map((x, i) => (i === f ? x + 1 : x)) as [
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      expect(w.offer('A', T0, ...changed)).toBe('correction');
      expect(w.offer('A', T0, ...changed)).toBe('duplicate');
      expect(w.offer('A', T0, ...bar)).toBe('correction');
    }
    expect(w.offer('B', T0, ...bar)).toBe('duplicate');
    expect(w.keys).toBe(2);
  });

  it('refuses a per-symbol cap its 16-bit index cannot address', () => {
    expect(() => new BarWindow({ windowMs: 1_000, maxPerSymbol: 32_768 })).toThrow(RangeError);
  });
});

describe('FMV confidence', () => {
  it('is high when the value agrees with the fresh quote midpoint', () => {
    const c = fmvConfidence(100.02, T0, T0 + 100, {
      quoteMid: 100,
      quoteT: T0 - 1000,
      tradePrice: 90,
      tradeT: T0,
    });

    expect(c).toEqual({ confidence: 0.996, reference: 'quote' });
  });

  it('falls back to the last trade when there is no fresh quote', () => {
    const c = fmvConfidence(101, T0, T0, { quoteMid: 50, quoteT: T0 - 120_000, tradePrice: 100, tradeT: T0 });

    expect(c).toEqual({ confidence: 0.8, reference: 'trade' });
  });

  it('is zero for a value 5 % or more away from the reference', () => {
    expect(fmvConfidence(105, T0, T0, { tradePrice: 100, tradeT: T0 }).confidence).toBe(0);
  });

  it('decays with staleness on arrival, to zero at staleMs', () => {
    const ref = { tradePrice: 100, tradeT: T0 };
    const at = (age: number): number => fmvConfidence(100, T0, T0 + age, ref).confidence;

    expect([at(0), at(2_000), at(16_000), at(30_000)]).toEqual([1, 1, 0.5, 0]);
  });

  it('uses the unreferenced agreement for a symbol with no trades or quotes', () => {
    expect(fmvConfidence(100, T0, T0, {})).toEqual({
      confidence: DEFAULT_CONFIDENCE.unreferencedAgreement,
      reference: 'none',
    });
  });
});

describe('market events', () => {
  it('reports a new session high and low from trades, not the first trade', () => {
    const d = new MarketEventDetector();

    const first = d.fromTrade('A', 100, 1, T0);
    const higher = d.fromTrade('A', 101, 1, T0 + 1000);
    const lower = d.fromTrade('A', 99, 1, T0 + 2000);

    expect(first).toEqual([]);
    expect(higher.map((e) => [e.type, e.data.price, e.minute])).toEqual([['session_high', 101, T0]]);
    expect(lower.map((e) => [e.type, e.data.price])).toEqual([['session_low', 99]]);
  });

  it('reports highs and lows from bars against the same session state', () => {
    const d = new MarketEventDetector();
    d.fromTrade('A', 100, 1, T0);

    const events = d.fromBar('A', 102, 98, 10, T0, true);

    expect(events.map((e) => [e.type, e.source])).toEqual([
      ['session_high', 'ohlcv'],
      ['session_low', 'ohlcv'],
    ]);
  });

  it('starts a new session on a new day', () => {
    const d = new MarketEventDetector();
    d.fromTrade('A', 100, 1, T0);

    const nextDay = d.fromTrade('A', 90, 1, T0 + 86_400_000);

    expect(nextDay).toEqual([]);
  });

  it('reports a volume surge once when a minute crosses 3x the recent average, from trades and from bars', () => {
    const d = new MarketEventDetector();
    for (let m = 0; m < 3; m += 1) d.fromBar('A', 100, 100, 100, T0 + m * 60_000, true);
    const minute = T0 + 3 * 60_000;

    const below = d.fromTrade('A', 100, 299, minute);
    const crossing = d.fromTrade('A', 100, 1, minute + 1);
    const after = d.fromTrade('A', 100, 50, minute + 2);
    const fromBar = d.fromBar('A', 100, 100, 350, minute, true);

    expect(below).toEqual([]);
    expect(crossing.map((e) => [e.type, e.minute, e.data.volume, e.data.average])).toEqual([
      ['volume_surge', minute, 300, 100],
    ]);
    expect(after).toEqual([]);
    expect(fromBar.map((e) => [e.type, e.source, e.minute])).toEqual([['volume_surge', 'ohlcv', minute]]);
  });

  it('needs enough history before calling anything a surge', () => {
    const d = new MarketEventDetector();
    d.fromBar('A', 100, 100, 1, T0, true);

    expect(d.fromBar('A', 100, 100, 1_000_000, T0 + 60_000, true)).toEqual([]);
  });
});

describe('minute_complete', () => {
  it('announces a minute once every symbol that traded in it has its bar', () => {
    const m = new MinuteCompletion();
    m.onTrade('A', T0);
    m.onTrade('B', T0);

    const afterA = m.onMinuteBar('A', T0, T0 + 60_100);
    const afterB = m.onMinuteBar('B', T0, T0 + 60_200);
    const late = m.onMinuteBar('C', T0, T0 + 60_300);

    expect(afterA).toEqual([]);
    expect(afterB).toEqual([
      {
        ev: 'minute_complete',
        s: T0,
        e: T0 + 60_000,
        bars: 2,
        expected: 2,
        missingCount: 0,
        missing: [],
        reason: 'complete',
      },
    ]);
    expect(late).toEqual([]);
  });

  it('announces at the deadline after the first bar, naming the symbols without a bar', () => {
    const m = new MinuteCompletion({ deadlineMs: 2_000, noBarDeadlineMs: 10_000, listMissing: 50 });
    m.onTrade('A', T0);
    m.onTrade('B', T0);
    m.onMinuteBar('A', T0, T0 + 60_100);

    const early = m.due(T0 + 62_099);
    const due = m.due(T0 + 62_100);

    expect(early).toEqual([]);
    expect(due.map((d) => [d.reason, d.bars, d.expected, d.missing])).toEqual([['deadline', 1, 2, ['B']]]);
    expect(m.openMinutes).toBe(0);
  });

  it('announces a minute with trades and no bar at all after the no-bar deadline', () => {
    const m = new MinuteCompletion({ deadlineMs: 2_000, noBarDeadlineMs: 10_000, listMissing: 50 });
    m.onTrade('A', T0);

    expect(m.due(T0 + 69_999)).toEqual([]);
    expect(m.due(T0 + 70_000).map((d) => [d.reason, d.missingCount])).toEqual([['deadline', 1]]);
  });

  it('drains every open minute, oldest first', () => {
    const m = new MinuteCompletion();
    m.onTrade('A', T0 + 60_000);
    m.onTrade('A', T0);

    expect(m.drain().map((d) => [d.s, d.reason])).toEqual([
      [T0, 'drain'],
      [T0 + 60_000, 'drain'],
    ]);
  });
});

describe('time helpers', () => {
  it('reads FMV timestamps in nanoseconds, microseconds or milliseconds', () => {
    expect([toMillis(T0 * 1e6), toMillis(T0 * 1e3), toMillis(T0)]).toEqual([T0, T0, T0]);
  });

  it('floors to the minute', () => {
    expect(minuteOf(T0 + 59_999)).toBe(T0);
  });
});
