/**
 * Synthetic real-time market in the provider's stream format, deterministic per seed: trades and
 * quotes for the tick symbols spread over each minute, FMV for the FMV symbols, and at each minute's
 * end the burst of minute bars for every OHLCV symbol (the provider emits them within a few hundred
 * ms). Used by the local WebSocket feed, the router benchmark and the load test.
 */
import { mulberry32 } from '../scenarios/prng';

export interface RealtimeProfile {
  readonly ohlcvSymbols: number;
  readonly tickSymbols: number;
  readonly fmvSymbols: number;
  /** Trades + quotes + FMV per minute (bars come on top: one per OHLCV symbol). */
  readonly eventsPerMinute: number;
  /** Events per frame for the intra-minute stream. */
  readonly frameSize: number;
  /** Bars per frame in the end-of-minute burst. */
  readonly barFrameSize: number;
  readonly seed: number;
}

/** The replaced system's profiles (seed 002), as the issue gives them. */
export const PROFILES = {
  steady: {
    ohlcvSymbols: 8000,
    tickSymbols: 500,
    fmvSymbols: 1000,
    eventsPerMinute: 10_000,
    frameSize: 20,
    barFrameSize: 500,
    seed: 2,
  },
  surge: {
    ohlcvSymbols: 8000,
    tickSymbols: 100,
    fmvSymbols: 500,
    eventsPerMinute: 50_000,
    frameSize: 50,
    barFrameSize: 500,
    seed: 3,
  },
  surge10x: {
    ohlcvSymbols: 8000,
    tickSymbols: 100,
    fmvSymbols: 500,
    eventsPerMinute: 500_000,
    frameSize: 200,
    barFrameSize: 500,
    seed: 4,
  },
} as const satisfies Record<string, RealtimeProfile>;

export interface TimedFrame {
  /** Offset from the start of the minute, ms. */
  readonly at: number;
  readonly frame: Record<string, unknown>[];
}

export function symbolName(k: number): string {
  let s = '';
  let n = k;
  do {
    s = String.fromCharCode(65 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `S${s}`;
}

const round = (v: number): number => Math.round(v * 100) / 100;

/**
 * Generates the market minute by minute. Trade ids are unique per (symbol, exchange); `q` is shared
 * and sometimes repeated, as the provider does. Prices walk per symbol so bars and trades agree.
 */
export class RealtimeMarket {
  private readonly random: () => number;
  private readonly prices: number[];
  private readonly tradeIds: number[];
  private readonly volumes: number[];
  private seq = 0;

  constructor(readonly profile: RealtimeProfile) {
    this.random = mulberry32(profile.seed);
    this.prices = Array.from({ length: profile.ohlcvSymbols }, () => 20 + this.random() * 480);
    this.tradeIds = new Array(profile.ohlcvSymbols).fill(0);
    this.volumes = new Array(profile.ohlcvSymbols).fill(0);
  }

  /** Every frame of the minute starting at `minuteStart` (epoch ms), in time order. */
  minute(minuteStart: number): TimedFrame[] {
    const p = this.profile;
    const frames: TimedFrame[] = [];
    const stats = new Map<number, { o: number; h: number; l: number; c: number; v: number }>();
    const streamEvents = p.eventsPerMinute;
    const frameCount = Math.max(1, Math.ceil(streamEvents / p.frameSize));
    let made = 0;
    for (let f = 0; f < frameCount; f += 1) {
      const at = Math.floor((f * 60_000) / frameCount);
      const frame: Record<string, unknown>[] = [];
      for (let k = 0; k < p.frameSize && made < streamEvents; k += 1, made += 1) {
        const t = minuteStart + at + Math.floor(this.random() * (60_000 / frameCount));
        const roll = this.random();
        const fmvShare = p.fmvSymbols > 0 ? 0.1 : 0;
        if (roll < fmvShare) {
          const sym = Math.floor(this.random() * p.fmvSymbols);
          frame.push({ ev: 'FMV', fmv: round(this.prices[sym] as number), sym: symbolName(sym), t: t * 1e6 });
        } else if (roll < fmvShare + 0.45) {
          const sym = Math.floor(this.random() * p.tickSymbols);
          const mid = this.prices[sym] as number;
          frame.push({
            ev: 'Q',
            sym: symbolName(sym),
            bx: 4,
            bp: round(mid - 0.01),
            bs: 1 + Math.floor(this.random() * 10),
            ax: 7,
            ap: round(mid + 0.01),
            as: 1 + Math.floor(this.random() * 10),
            c: 0,
            t,
            q: this.seq,
            z: 3,
          });
        } else {
          const sym = Math.floor(this.random() * p.tickSymbols);
          const price = round(
            Math.max(1, (this.prices[sym] as number) * (1 + (this.random() - 0.5) * 0.002)),
          );
          this.prices[sym] = price;
          const size = 1 + Math.floor(this.random() * 200);
          this.tradeIds[sym] = (this.tradeIds[sym] as number) + 1;
          // The provider repeats and reorders q: every 50th trade reuses the previous number.
          if (this.tradeIds[sym] % 50 !== 0) this.seq += 1;
          frame.push({
            ev: 'T',
            sym: symbolName(sym),
            x: 4,
            i: String(this.tradeIds[sym]),
            z: 3,
            p: price,
            s: size,
            c: [12],
            t,
            q: this.seq,
          });
          const st = stats.get(sym);
          if (st) {
            st.h = Math.max(st.h, price);
            st.l = Math.min(st.l, price);
            st.c = price;
            st.v += size;
          } else stats.set(sym, { o: price, h: price, l: price, c: price, v: size });
        }
      }
      frames.push({ at, frame });
    }
    // The end-of-minute burst: one bar per OHLCV symbol within ~300 ms of the minute's end.
    const bars: Record<string, unknown>[] = [];
    for (let sym = 0; sym < p.ohlcvSymbols; sym += 1) {
      let st = stats.get(sym);
      if (!st) {
        const price = round(Math.max(1, (this.prices[sym] as number) * (1 + (this.random() - 0.5) * 0.004)));
        const other = round(Math.max(1, price * (1 + (this.random() - 0.5) * 0.002)));
        this.prices[sym] = price;
        st = {
          o: other,
          h: Math.max(price, other),
          l: Math.min(price, other),
          c: price,
          v: 100 + Math.floor(this.random() * 5000),
        };
      }
      this.volumes[sym] = (this.volumes[sym] as number) + st.v;
      bars.push({
        ev: 'AM',
        sym: symbolName(sym),
        v: st.v,
        av: this.volumes[sym],
        op: st.o,
        vw: round((st.h + st.l + st.c) / 3),
        o: st.o,
        c: st.c,
        h: st.h,
        l: st.l,
        a: round((st.h + st.l + st.c) / 3),
        z: 50,
        s: minuteStart,
        e: minuteStart + 60_000,
      });
    }
    const barFrames = Math.ceil(bars.length / p.barFrameSize);
    for (let b = 0; b < barFrames; b += 1) {
      frames.push({
        at: 60_000 + Math.floor((b * 300) / barFrames),
        frame: bars.slice(b * p.barFrameSize, (b + 1) * p.barFrameSize),
      });
    }
    return frames;
  }
}
