/**
 * The bar generator: one market-factor path per scenario, then each symbol's series from its own
 * PRNG stream (seeded from global seed + scenario + symbol), so symbols differ, any one symbol can
 * be regenerated alone, and the market can be streamed symbol by symbol without holding all bars.
 *
 * Organic (non-injected) behaviour is bounded on purpose so that every data-quality anomaly in the
 * output is one that was injected and recorded: daily log returns are clamped to +-13 % (close
 * moves < 20 %), wicks to 4 % (ranges < 30 %), and the organic volume factor to 0.45-3x of the
 * symbol's base (never > 5x or < 0.1x of a 20-bar average). Injected events break those bounds
 * deliberately, and each is recorded with the size measured on the final, rounded bar.
 */
import {
  type IsoDate,
  isTradingDay,
  nextTradingDay,
  previousTradingDay,
  tradingDayOnOrAfter,
  tradingDayOnOrBefore,
} from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import { type InjectedKind, type RegimeKind, type ScenarioDefinition, scenarioSteps } from './definitions';
import { createRng, type Rng } from './prng';
import type { SymbolProfile } from './universe';

export type EventKind =
  | 'price_jump'
  | 'price_gap'
  | 'intraday_range'
  | 'volume_spike'
  | 'volume_drought'
  | 'zero_volume'
  | 'breakout'
  | 'data_gap'
  | 'stale'
  | 'split'
  | 'ipo'
  | 'delisting';

export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** One injected event, as the expected outcome a detector should reproduce. */
export interface ExpectedEvent {
  readonly symbol: string;
  /** price/volume events: the bar's date; data_gap: first missing session; stale: last bar; ipo: first bar; delisting: delisted_at. */
  readonly date: IsoDate;
  readonly kind: EventKind;
  /**
   * price_jump, split, breakout: close / previous close - 1; price_gap: open / previous close - 1;
   * intraday_range: (high - low) / previous close; volume_*: volume / average of the previous 20
   * bars; data_gap, stale: sessions (missing / since the last bar); ipo, delisting: 0.
   */
  readonly size: number;
  /** True when the daily quality check must raise an alert for this event. */
  readonly anomaly: boolean;
  /** The severity the quality rules assign (null for events that are not anomalies). */
  readonly severity: Severity | null;
  /** split: shares after / before (2 = 2:1). */
  readonly ratio?: number;
  /** data_gap: last missing session. */
  readonly to?: IsoDate;
  /** price events: previous close; volume events: the 20-bar average volume. */
  readonly reference?: number;
}

export interface RegimeSpan {
  readonly kind: RegimeKind;
  readonly from: IsoDate;
  readonly to: IsoDate;
  readonly steps: number;
  readonly totalReturn: number;
  readonly dailyVol: number;
}

export interface MarketPath {
  readonly days: readonly IsoDate[];
  /** Market-factor log return per session. */
  readonly returns: Float64Array;
  /** Market-factor volatility per session relative to 1 %/day. */
  readonly volMult: Float64Array;
  readonly regimes: readonly RegimeSpan[];
  /** Largest peak-to-trough fall of the market-factor index. */
  readonly maxDrawdown: { readonly peak: IsoDate; readonly trough: IsoDate; readonly size: number };
}

export interface SymbolSeries {
  readonly symbol: string;
  readonly bars: DailyBar[];
  readonly events: ExpectedEvent[];
}

/** Thresholds of the data-quality rules (docs: market-data.md, "Data quality check"). */
export const QUALITY_RULES = {
  priceMove: 0.2,
  intradayRange: 0.3,
  volumeSpike: 5,
  volumeDrought: 0.1,
  volumeWindow: 20,
  thinVolume: 1000,
  staleSessions: 2,
} as const;

export function priceSeverity(move: number): Severity | null {
  const m = Math.abs(move);
  if (m >= 0.5) return 'critical';
  if (m >= 0.35) return 'high';
  if (m > QUALITY_RULES.priceMove) return 'medium';
  return null;
}

const MAX_ORGANIC_LOG_RETURN = 0.13;
const MAX_WICK = 0.04;
const ORGANIC_VOLUME_MIN = 0.45;
const ORGANIC_VOLUME_MAX = 3;

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** Cents above $1, hundredths of a cent below (as the provider reports sub-dollar prices). */
export function roundPrice(p: number): number {
  const f = p >= 1 ? 100 : 10_000;
  return Math.max(1 / f, Math.round(p * f) / f);
}

/** The scenario's sessions: N trading days from start (or ending at end). */
export function scenarioDays(def: ScenarioDefinition, opts: { start?: IsoDate; end?: IsoDate }): IsoDate[] {
  const n = scenarioSteps(def);
  const days: IsoDate[] = [];
  if (opts.end && !opts.start) {
    let d = tradingDayOnOrBefore(opts.end);
    for (let i = 0; i < n; i++, d = previousTradingDay(d)) days.push(d);
    return days.reverse();
  }
  let d = tradingDayOnOrAfter(opts.start ?? def.defaultStart);
  for (let i = 0; i < n; i++, d = nextTradingDay(d)) days.push(d);
  return days;
}

export function buildMarketPath(
  def: ScenarioDefinition,
  seed: string | number,
  days: readonly IsoDate[],
): MarketPath {
  const rng = createRng('market', seed, def.name);
  const n = days.length;
  const returns = new Float64Array(n);
  const volMult = new Float64Array(n);
  const regimes: RegimeSpan[] = [];
  // GARCH(1,1) on a unit-variance multiplier: big moves raise tomorrow's variance (clustering)
  // while the regime sets the level, so a regime change moves volatility at once.
  const alpha = 0.1;
  const beta = 0.85;
  let h = 1;
  let lastZ = 0;
  let t0 = 0;
  for (const regime of def.regimes) {
    let sum = 0;
    for (let i = 0; i < regime.steps; i++) {
      const t = t0 + i;
      if (def.clustering) h = 1 - alpha - beta + alpha * lastZ ** 2 + beta * h;
      const sigma = regime.dailyVol * Math.sqrt(h);
      const z = rng.normal();
      lastZ = z * Math.sqrt(h);
      const shock = sigma * z;
      returns[t] = shock;
      volMult[t] = sigma / 0.01;
      sum += shock;
    }
    // De-mean so the regime's total return is exactly the definition's target.
    const shift = (Math.log(1 + regime.totalReturn) - sum) / regime.steps;
    for (let i = 0; i < regime.steps; i++) returns[t0 + i] = (returns[t0 + i] as number) + shift;
    regimes.push({
      kind: regime.kind,
      from: days[t0] as IsoDate,
      to: days[t0 + regime.steps - 1] as IsoDate,
      steps: regime.steps,
      totalReturn: regime.totalReturn,
      dailyVol: regime.dailyVol,
    });
    t0 += regime.steps;
  }
  let level = 0;
  let peakLevel = 0;
  let peakAt = 0;
  let worst = { peak: 0, trough: 0, size: 0 };
  for (let t = 0; t < n; t++) {
    level += returns[t] as number;
    if (level > peakLevel) {
      peakLevel = level;
      peakAt = t;
    }
    const dd = Math.exp(level - peakLevel) - 1;
    if (dd < worst.size) worst = { peak: peakAt, trough: t, size: dd };
  }
  return {
    days,
    returns,
    volMult,
    regimes,
    maxDrawdown: {
      peak: days[worst.peak] as IsoDate,
      trough: days[worst.trough] as IsoDate,
      size: worst.size,
    },
  };
}

type PointKind = Exclude<InjectedKind, 'data_gap' | 'stale' | 'ipo' | 'delisting'>;

/** What will happen to one symbol, decided before any bar is drawn. */
export interface SymbolPlan {
  /** Index of the first and last session with a bar. */
  readonly first: number;
  readonly last: number;
  readonly ipo: boolean;
  readonly delisted: boolean;
  readonly stale: boolean;
  readonly gap: { readonly start: number; readonly length: number } | null;
  readonly points: ReadonlyMap<number, PointKind>;
}

/** Order matters for reproducibility: kinds are drawn in this order from the plan stream. */
const POINT_KINDS: readonly PointKind[] = [
  'price_jump_anomaly',
  'big_up',
  'big_down',
  'price_gap',
  'intraday_range',
  'volume_spike',
  'volume_drought',
  'zero_volume',
  'breakout',
  'split',
];

export function planSymbol(
  def: ScenarioDefinition,
  seed: string | number,
  days: readonly IsoDate[],
  profile: SymbolProfile,
): SymbolPlan {
  const rng = createRng('plan', seed, def.name, profile.record.symbol);
  const mix = def.events;
  const n = days.length;
  let first = 0;
  let last = n - 1;
  let ipo = false;
  // A symbol listed inside the window starts at its list date (a short, IPO-like history).
  const listDate = profile.record.listDate;
  if (listDate && listDate > (days[0] as IsoDate)) {
    const idx = days.findIndex((d) => d >= listDate);
    first = idx < 0 ? n - 1 : idx;
    ipo = true;
  }
  if (rng.chance(mix.ipo ?? 0) && n >= 30) {
    first = rng.int(Math.max(1, n - 90), n - 12);
    ipo = true;
  }
  let delisted = false;
  let stale = false;
  if (rng.chance(mix.delisting ?? 0) && last - first > 30) {
    last = rng.int(Math.max(first + 20, Math.floor(n * 0.5)), n - 8);
    delisted = true;
  }
  const staleDraw = rng.chance(mix.stale ?? 0);
  const staleSessions = rng.int(QUALITY_RULES.staleSessions + 1, 12);
  if (staleDraw && !delisted && last - staleSessions - first > 25) {
    last -= staleSessions;
    stale = true;
  }
  const occupied: [number, number][] = [];
  const free = (a: number, b: number) => occupied.every(([x, y]) => b < x || a > y);
  let gap: SymbolPlan['gap'] = null;
  const gapDraw = rng.chance(mix.data_gap ?? 0);
  const gapLength = rng.int(1, 5);
  if (gapDraw && last - first > 45) {
    const start = rng.int(first + 22, last - 8);
    gap = { start, length: gapLength };
    occupied.push([start - 2, start + gapLength + 1]);
  }
  const points = new Map<number, PointKind>();
  const lo = first + 21 + (gap ? gap.length : 0);
  for (const kind of POINT_KINDS) {
    const rate = mix[kind] ?? 0;
    if (!rng.chance(rate)) continue;
    if (kind === 'breakout' && profile.record.type !== 'CS') continue;
    // An 8-15 % day is only an "event" for a symbol whose ordinary days are much smaller.
    if ((kind === 'big_up' || kind === 'big_down' || kind === 'price_gap') && profile.idioVol > 0.02)
      continue;
    // A breakout needs a 20-session consolidation before it; other events keep 3 sessions apart.
    const before = kind === 'breakout' ? 21 : 3;
    const earliest = lo + (kind === 'breakout' ? 4 : 0);
    if (earliest > last - 1) continue;
    for (let attempt = 0; attempt < 20; attempt++) {
      const t = rng.int(earliest, last - 1);
      if (free(t - before, t + 3)) {
        occupied.push([t - before, t + 3]);
        points.set(t, kind);
        break;
      }
    }
  }
  return { first, last, ipo, delisted, stale, gap, points };
}

/** The record as this scenario presents it (IPO list dates and delistings applied). */
export function scenarioRecord(
  profile: SymbolProfile,
  plan: SymbolPlan,
  days: readonly IsoDate[],
): SymbolRecord {
  const r = profile.record;
  if (!plan.ipo && !plan.delisted) return r;
  return {
    ...r,
    listDate: plan.ipo ? (days[plan.first] as IsoDate) : r.listDate,
    active: !plan.delisted,
    delistedAt: plan.delisted ? nextTradingDay(days[plan.last] as IsoDate) : null,
  };
}

/** Running mean of the last 20 emitted volumes (the quality rule's window). */
class VolumeWindow {
  private readonly values: number[] = [];
  private sum = 0;
  get count(): number {
    return this.values.length;
  }
  get average(): number {
    return this.values.length === 0 ? 0 : this.sum / this.values.length;
  }
  push(v: number): void {
    this.values.push(v);
    this.sum += v;
    if (this.values.length > QUALITY_RULES.volumeWindow) this.sum -= this.values.shift() as number;
  }
}

function targetMove(rng: Rng, kind: PointKind): number {
  switch (kind) {
    case 'price_jump_anomaly': {
      // Spread over the severity tiers (medium / high / critical), both directions.
      const tier = rng.int(0, 2);
      const up = rng.chance(0.5);
      const [a, b] = tier === 0 ? [0.22, 0.33] : tier === 1 ? [0.37, 0.48] : [0.52, up ? 0.9 : 0.75];
      return (up ? 1 : -1) * rng.uniform(a, b);
    }
    case 'big_up':
      return rng.uniform(0.08, 0.15);
    case 'big_down':
      return -rng.uniform(0.08, 0.12);
    case 'breakout':
      return rng.uniform(0.08, 0.12);
    default:
      return 0;
  }
}

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** One symbol's bars and injected events. Pure: same inputs, same output. */
export function generateSeries(
  def: ScenarioDefinition,
  seed: string | number,
  market: MarketPath,
  profile: SymbolProfile,
  plan: SymbolPlan,
): SymbolSeries {
  const symbol = profile.record.symbol;
  const rng = createRng('bars', seed, def.name, symbol);
  const { days } = market;
  const bars: DailyBar[] = [];
  const events: ExpectedEvent[] = [];
  const volumes = new VolumeWindow();
  const tradeSize = rng.uniform(80, 250);
  const breakouts = [...plan.points].filter(([, k]) => k === 'breakout').map(([t]) => t);
  let prevClose = profile.startPrice;
  const push = (e: Omit<ExpectedEvent, 'symbol'>) => events.push({ symbol, ...e });

  if (plan.ipo)
    push({ date: days[plan.first] as IsoDate, kind: 'ipo', size: 0, anomaly: false, severity: null });

  for (let t = plan.first; t <= plan.last; t++) {
    const date = days[t] as IsoDate;
    const vm = market.volMult[t] as number;
    // Fixed number of draws per session keeps later sessions independent of which events happen.
    const z1 = rng.normal();
    const z2 = rng.normal();
    const z3 = rng.normal();
    const z4 = rng.normal();
    const z5 = rng.normal();
    const u = rng.next();
    const u2 = rng.next();
    if (plan.gap && t >= plan.gap.start && t < plan.gap.start + plan.gap.length) continue; // halted: no bar
    const idio = profile.idioVol * clamp(vm, 0.5, 3);
    const sigma = Math.abs(profile.beta) * 0.01 * vm + idio;
    let r = profile.alpha + profile.beta * (market.returns[t] as number) + idio * z1;
    if (breakouts.some((b) => t >= b - 20 && t < b)) r *= 0.25; // consolidation before a breakout
    r = clamp(r, -MAX_ORGANIC_LOG_RETURN, MAX_ORGANIC_LOG_RETURN);
    const kind = plan.points.get(t);

    let base = prevClose;
    let ratio = 0;
    if (kind === 'split') {
      ratio = u < 0.6 ? 2 : 3;
      base = prevClose / ratio;
    }
    let open = base * Math.exp(clamp(0.3 * sigma * z2, -0.03, 0.03));
    let close = base * Math.exp(r);
    switch (kind) {
      case 'price_jump_anomaly': {
        // News gap: the move happens at the open, so the intraday range stays ordinary.
        close = prevClose * (1 + targetMove(rng, kind));
        open = close * (1 + clamp(0.005 * z2, -0.01, 0.01));
        break;
      }
      case 'big_up':
      case 'big_down':
      case 'breakout':
        close = prevClose * (1 + targetMove(rng, kind));
        open = prevClose * (1 + clamp(0.003 * z2, -0.01, 0.01));
        break;
      case 'price_gap': {
        const g = (u < 0.5 ? 1 : -1) * (0.03 + 0.04 * u2);
        open = prevClose * (1 + g);
        close = open * Math.exp(clamp(0.5 * sigma * z1, -0.02, 0.02));
        break;
      }
      case 'intraday_range':
        open = prevClose * (1 + clamp(0.003 * z2, -0.01, 0.01));
        close = prevClose * Math.exp(clamp(r, -0.03, 0.03));
        break;
      case 'zero_volume':
        open = prevClose;
        close = prevClose;
        break;
      default:
        break;
    }
    open = roundPrice(open);
    close = roundPrice(close);
    let high: number;
    let low: number;
    if (kind === 'intraday_range') {
      const range = 0.32 + 0.26 * u;
      const down = range * (0.3 + 0.4 * u2);
      low = roundPrice(prevClose * (1 - down));
      high = roundPrice(prevClose * (1 + range - down));
    } else if (kind === 'zero_volume') {
      high = close;
      low = close;
    } else {
      high = roundPrice(Math.max(open, close) * (1 + Math.min(MAX_WICK, Math.abs(z3) * 0.5 * sigma)));
      low = roundPrice(Math.min(open, close) * (1 - Math.min(MAX_WICK, Math.abs(z4) * 0.5 * sigma)));
    }
    high = Math.max(high, open, close);
    low = Math.min(low, open, close);

    const avg = volumes.average;
    const measurable = volumes.count >= QUALITY_RULES.volumeWindow && avg >= QUALITY_RULES.thinVolume;
    const organic = clamp(
      Math.exp(0.25 * z5) * (1 + 3 * Math.abs(Math.log(close / base))) * clamp(vm, 0.7, 2),
      ORGANIC_VOLUME_MIN,
      ORGANIC_VOLUME_MAX,
    );
    let volume = Math.round(profile.baseVolume * organic);
    if (kind === 'volume_spike' && measurable) volume = Math.round(avg * (6 + 6 * u));
    else if (kind === 'volume_drought' && measurable)
      volume = Math.max(1, Math.round(avg * (0.02 + 0.05 * u)));
    else if (kind === 'zero_volume' && measurable) volume = 0;
    else if (kind === 'breakout' && volumes.count >= QUALITY_RULES.volumeWindow)
      volume = Math.round(avg * (2.5 + u));

    const vwap = roundPrice((high + low + close) / 3);
    bars.push({
      symbol,
      date,
      open,
      high,
      low,
      close,
      volume,
      vwap,
      transactions: volume === 0 ? 0 : Math.max(1, Math.round(volume / tradeSize)),
    });

    const move = close / prevClose - 1;
    switch (kind) {
      case 'price_jump_anomaly':
        push({
          date,
          kind: 'price_jump',
          size: r6(move),
          anomaly: true,
          severity: priceSeverity(move),
          reference: prevClose,
        });
        break;
      case 'big_up':
      case 'big_down':
        push({
          date,
          kind: 'price_jump',
          size: r6(move),
          anomaly: false,
          severity: null,
          reference: prevClose,
        });
        break;
      case 'breakout':
        push({
          date,
          kind: 'breakout',
          size: r6(move),
          anomaly: false,
          severity: null,
          reference: prevClose,
        });
        break;
      case 'price_gap':
        push({
          date,
          kind: 'price_gap',
          size: r6(open / prevClose - 1),
          anomaly: false,
          severity: null,
          reference: prevClose,
        });
        break;
      case 'split':
        push({
          date,
          kind: 'split',
          size: r6(move),
          anomaly: true,
          severity: priceSeverity(move),
          ratio,
          reference: prevClose,
        });
        break;
      case 'intraday_range': {
        const range = (high - low) / prevClose;
        push({
          date,
          kind: 'intraday_range',
          size: r6(range),
          anomaly: true,
          severity: priceSeverity(range) ?? 'medium',
          reference: prevClose,
        });
        break;
      }
      case 'volume_spike':
        if (measurable)
          push({ date, kind, size: r6(volume / avg), anomaly: true, severity: 'high', reference: r6(avg) });
        break;
      case 'volume_drought':
      case 'zero_volume':
        if (measurable)
          push({ date, kind, size: r6(volume / avg), anomaly: true, severity: 'medium', reference: r6(avg) });
        break;
      default:
        break;
    }
    volumes.push(volume);
    prevClose = close;
  }

  if (plan.gap) {
    const from = days[plan.gap.start] as IsoDate;
    const to = days[plan.gap.start + plan.gap.length - 1] as IsoDate;
    push({ date: from, kind: 'data_gap', size: plan.gap.length, anomaly: true, severity: 'medium', to });
  }
  if (plan.stale) {
    const sessions = days.length - 1 - plan.last;
    push({
      date: days[plan.last] as IsoDate,
      kind: 'stale',
      size: sessions,
      anomaly: true,
      severity: sessions >= 7 ? 'high' : 'medium',
    });
  }
  if (plan.delisted) {
    push({
      date: nextTradingDay(days[plan.last] as IsoDate),
      kind: 'delisting',
      size: 0,
      anomaly: false,
      severity: null,
    });
  }
  events.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  return { symbol, bars, events };
}

/** Guard used by tests and validation: a bar the tables and the quality rules accept. */
export function barProblems(bar: DailyBar): string[] {
  const problems: string[] = [];
  if (!(bar.open > 0 && bar.close > 0 && bar.low > 0)) problems.push('non-positive price');
  if (bar.high < Math.max(bar.open, bar.close)) problems.push('high below body');
  if (bar.low > Math.min(bar.open, bar.close)) problems.push('low above body');
  if (!(bar.volume >= 0) || !Number.isInteger(bar.volume)) problems.push('bad volume');
  if (!(bar.vwap > 0)) problems.push('bad vwap');
  if (!isTradingDay(bar.date)) problems.push('not a trading day');
  return problems;
}
