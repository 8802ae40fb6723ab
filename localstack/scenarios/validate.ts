/**
 * `scenario validate`: proves a generated market is what it claims to be, from the bars alone.
 * - every bar is valid and on an NYSE trading day;
 * - the anomalies in the bars are exactly the injected ones (independent re-detection);
 * - the injected market behaviour is visible to standard indicators (technicalindicators):
 *   breakouts close above the upper Bollinger band (20, 2) on > 2x the 20-day average volume;
 *   price spikes have a true range >= 1.5x the previous ATR(14); volume spikes exceed 5x SMA(20);
 *   regime trends show in the slope of SMA(10) of a median-return market index; crashes drive
 *   the index RSI(14) below 30 and its drawdown past -25 %; volatile regimes raise ATR%.
 */
import { ATR, BollingerBands, RSI, SMA, TrueRange } from 'technicalindicators';
import type { IsoDate } from '../../lambdas/market/calendar';
import type { DailyBar } from '../../lambdas/market/types';
import { compareDetections, type DetectedAnomaly, detectAnomalies } from './detect';
import { barProblems, type ExpectedEvent } from './generator';
import type { ScenarioMarket } from './index';

export interface ValidationCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

export interface ValidationReport {
  readonly scenario: string;
  readonly symbols: number;
  readonly bars: number;
  readonly ok: boolean;
  readonly checks: ValidationCheck[];
  /** Up to 20 examples of what failed, for the report. */
  readonly failures: string[];
}

const ATR_PERIOD = 14;
const BB_PERIOD = 20;

/** Index of `date` in bars (bars sorted by date), or -1. */
function indexOf(bars: readonly DailyBar[], date: IsoDate): number {
  let lo = 0;
  let hi = bars.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const d = (bars[mid] as DailyBar).date;
    if (d === date) return mid;
    if (d < date) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

interface Tally {
  seen: number;
  visible: number;
}

export function validateScenario(market: ScenarioMarket): ValidationReport {
  const { days } = market;
  const dayIndex = new Map(days.map((d, i) => [d, i]));
  const records = new Map(market.universe.map((r) => [r.symbol, r]));
  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 20) failures.push(msg);
  };
  let symbols = 0;
  let barCount = 0;
  let invalid = 0;
  const expected: ExpectedEvent[] = [];
  const detected: DetectedAnomaly[] = [];
  const breakouts: Tally = { seen: 0, visible: 0 };
  const spikes: Tally = { seen: 0, visible: 0 };
  const volumeSpikes: Tally = { seen: 0, visible: 0 };
  // Per session, the symbols' log returns (NaN when absent or an event day), for a robust index.
  const returns: number[][] = days.map(() => []);
  const atrByRegime = new Map<number, number[]>();
  const regimeOf = new Int32Array(days.length);
  market.market.regimes.forEach((r, k) => {
    const from = dayIndex.get(r.from) ?? 0;
    for (let i = 0; i < r.steps; i++) regimeOf[from + i] = k;
  });

  for (const s of market.series()) {
    symbols++;
    barCount += s.bars.length;
    for (const bar of s.bars) {
      const problems = barProblems(bar);
      if (problems.length > 0) {
        invalid++;
        fail(`${s.symbol} ${bar.date}: ${problems.join(', ')}`);
      }
    }
    expected.push(...s.events);
    detected.push(...detectAnomalies(s.symbol, s.bars, market.end, records.get(s.symbol)));
    const eventDays = new Set(s.events.map((e) => e.date));
    const closes = s.bars.map((b) => b.close);
    const volumes = s.bars.map((b) => b.volume);
    const atr =
      s.bars.length > ATR_PERIOD
        ? ATR.calculate({
            period: ATR_PERIOD,
            high: s.bars.map((b) => b.high),
            low: s.bars.map((b) => b.low),
            close: closes,
          })
        : [];
    const hasSpikes = s.events.some((e) => e.kind === 'price_jump' || e.kind === 'split');
    const trueRanges = hasSpikes
      ? TrueRange.calculate({ high: s.bars.map((b) => b.high), low: s.bars.map((b) => b.low), close: closes })
      : [];
    // atr[k] belongs to bar k + ATR_PERIOD.
    const atrAt = (i: number) => atr[i - ATR_PERIOD];

    for (const e of s.events) {
      const i = indexOf(s.bars, e.date);
      if (i < 1) continue;
      const bar = s.bars[i] as DailyBar;
      if (e.kind === 'breakout') {
        breakouts.seen++;
        const bands = BollingerBands.calculate({
          period: BB_PERIOD,
          stdDev: 2,
          values: closes.slice(0, i + 1),
        });
        const upper = bands[bands.length - 1]?.upper ?? Number.POSITIVE_INFINITY;
        const avgVol = SMA.calculate({ period: BB_PERIOD, values: volumes.slice(i - BB_PERIOD, i) })[0] ?? 0;
        if (bar.close > upper && bar.volume > 2 * avgVol) breakouts.visible++;
        else
          fail(
            `${s.symbol} ${e.date}: breakout not visible (close ${bar.close}, upper band ${upper.toFixed(2)})`,
          );
      } else if (e.kind === 'price_jump' || e.kind === 'split') {
        spikes.seen++;
        // trueRanges[k] belongs to bar k + 1. The baseline is the median true range of the previous
        // 14 sessions rather than ATR(14), so a neighbouring injected spike cannot hide this one.
        const trueRange = trueRanges[i - 1] ?? 0;
        const baseline = median(trueRanges.slice(Math.max(0, i - 1 - ATR_PERIOD), i - 1));
        if (Number.isNaN(baseline) || trueRange >= 1.5 * baseline) spikes.visible++;
        else
          fail(
            `${s.symbol} ${e.date}: ${e.kind} ${e.size} not visible (TR ${trueRange.toFixed(3)}, median TR ${baseline.toFixed(3)})`,
          );
      } else if (e.kind === 'volume_spike') {
        volumeSpikes.seen++;
        const avgVol =
          SMA.calculate({ period: 20, values: volumes.slice(i - 20, i) })[0] ?? Number.POSITIVE_INFINITY;
        if (bar.volume > 5 * avgVol) volumeSpikes.visible++;
        else
          fail(
            `${s.symbol} ${e.date}: volume spike not visible (${bar.volume} vs SMA20 ${avgVol.toFixed(0)})`,
          );
      }
    }

    for (let i = 1; i < s.bars.length; i++) {
      const bar = s.bars[i] as DailyBar;
      const t = dayIndex.get(bar.date);
      const prev = s.bars[i - 1] as DailyBar;
      if (t === undefined || dayIndex.get(prev.date) !== t - 1 || eventDays.has(bar.date)) continue;
      returns[t]?.push(Math.log(bar.close / prev.close));
      const a = atrAt(i);
      if (a !== undefined && s.bars.length === days.length) {
        const k = regimeOf[t] as number;
        const list = atrByRegime.get(k) ?? [];
        atrByRegime.set(k, list);
        list.push(a / bar.close);
      }
    }
  }

  const checks: ValidationCheck[] = [];
  checks.push({
    name: 'bars valid, trading days only',
    passed: invalid === 0,
    detail: `${invalid} invalid of ${barCount}`,
  });
  const cmp = compareDetections(expected, detected);
  for (const m of cmp.missed.slice(0, 5)) fail(`missed ${m.kind} ${m.symbol} ${m.date}`);
  for (const u of cmp.unexpected.slice(0, 5))
    fail(`unexpected ${u.kind} ${u.symbol} ${u.date} (${u.size.toFixed(3)})`);
  checks.push({
    name: 'anomalies in the bars = injected anomalies',
    passed: cmp.missed.length === 0 && cmp.unexpected.length === 0 && cmp.sizeMismatches.length === 0,
    detail: `${cmp.expected} expected, ${cmp.detected} detected, ${cmp.missed.length} missed, ${cmp.unexpected.length} unexpected, ${cmp.sizeMismatches.length} size mismatches`,
  });
  const tally = (name: string, t: Tally) =>
    checks.push({ name, passed: t.visible === t.seen, detail: `${t.visible}/${t.seen} visible` });
  tally('breakouts above upper Bollinger(20,2) on >2x volume', breakouts);
  tally('price spikes: true range >= 1.5x median of the previous 14', spikes);
  tally('volume spikes > 5x SMA(20) volume', volumeSpikes);

  // Market index from the median symbol return per session (robust to the injected events).
  const index: number[] = [];
  let level = 100;
  for (const r of returns) {
    const m = median(r);
    level *= Math.exp(Number.isNaN(m) ? 0 : m);
    index.push(level);
  }
  const sma = SMA.calculate({ period: 10, values: index });
  const smaAt = (t: number) => sma[t - 9];
  const rsi = RSI.calculate({ period: 14, values: index });
  for (const r of market.market.regimes) {
    const from = dayIndex.get(r.from) ?? 0;
    const to = dayIndex.get(r.to) ?? 0;
    // The first SMA(10) whose window lies inside the regime, against the one at its last session.
    const a = smaAt(from + 9);
    const b = smaAt(to);
    if (a === undefined || b === undefined || to - from < 15) continue;
    const change = b / a - 1;
    const up = r.kind === 'uptrend' || r.kind === 'recovery';
    const down = r.kind === 'downtrend' || r.kind === 'crash';
    if (up || down) {
      checks.push({
        name: `${r.kind} ${r.from}..${r.to}: SMA(10) of the index ${up ? 'rises' : 'falls'}`,
        passed: up ? change > 0.02 : change < -0.02,
        detail: `SMA(10) change ${(change * 100).toFixed(1)} % (factor target ${(r.totalReturn * 100).toFixed(0)} %)`,
      });
    } else if (r.kind === 'sideways') {
      checks.push({
        name: `sideways ${r.from}..${r.to}: SMA(10) of the index flat`,
        passed: Math.abs(change) < 0.05,
        detail: `SMA(10) change ${(change * 100).toFixed(1)} %`,
      });
    }
    if (r.kind === 'crash') {
      const window = index.slice(0, to + 1);
      const peak = Math.max(...window);
      const trough = Math.min(...index.slice(window.indexOf(peak), to + 1));
      const minRsi = Math.min(...rsi.slice(Math.max(0, from - 14), to - 13));
      checks.push({
        name: `crash ${r.from}..${r.to}: drawdown and oversold RSI(14)`,
        passed: trough / peak - 1 < -0.25 && minRsi < 30,
        detail: `index drawdown ${((trough / peak - 1) * 100).toFixed(1)} %, min RSI ${minRsi.toFixed(1)}`,
      });
    }
  }
  const regimes = market.market.regimes;
  const volatile = regimes.flatMap((r, k) =>
    r.kind === 'volatile' || r.kind === 'crash' ? (atrByRegime.get(k) ?? []) : [],
  );
  const calm = regimes.flatMap((r, k) => (r.kind === 'calm' ? (atrByRegime.get(k) ?? []) : []));
  if (volatile.length > 0 && calm.length > 0) {
    const ratio = median(volatile) / median(calm);
    checks.push({
      name: 'volatile regimes raise ATR(14) % of price',
      passed: ratio > 1.5,
      detail: `median ATR% volatile / calm = ${ratio.toFixed(2)}`,
    });
  }
  return {
    scenario: market.definition.name,
    symbols,
    bars: barCount,
    ok: checks.every((c) => c.passed),
    checks,
    failures,
  };
}
