/**
 * An independent re-detection of the data-quality anomalies from bars alone, following the rules in
 * market-data.md. It exists so tests and `scenario validate` can prove the expected outcomes match
 * what is actually in the bars (and that clean symbols really are clean). It is not the production
 * quality check, which another module owns; it only shares the published thresholds.
 */
import {
  type IsoDate,
  nextTradingDay,
  previousTradingDay,
  tradingDaysBetween,
} from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import { type ExpectedEvent, QUALITY_RULES } from './generator';

export type DetectedKind =
  | 'price_move'
  | 'intraday_range'
  | 'volume_spike'
  | 'volume_drought'
  | 'zero_volume'
  | 'data_gap'
  | 'stale';

export interface DetectedAnomaly {
  readonly symbol: string;
  readonly date: IsoDate;
  readonly kind: DetectedKind;
  readonly size: number;
}

/** Anomalies in one symbol's bars (sorted by date) as of the session `asOf`. */
export function detectAnomalies(
  symbol: string,
  bars: readonly DailyBar[],
  asOf: IsoDate,
  record?: Pick<SymbolRecord, 'delistedAt'>,
): DetectedAnomaly[] {
  const out: DetectedAnomaly[] = [];
  let volumeSum = 0;
  for (let i = 0; i < bars.length; i++) {
    const bar = bars[i] as DailyBar;
    const prev = bars[i - 1];
    if (prev) {
      const move = bar.close / prev.close - 1;
      if (Math.abs(move) > QUALITY_RULES.priceMove)
        out.push({ symbol, date: bar.date, kind: 'price_move', size: move });
      const range = (bar.high - bar.low) / prev.close;
      if (range > QUALITY_RULES.intradayRange)
        out.push({ symbol, date: bar.date, kind: 'intraday_range', size: range });
      const missing = tradingDaysBetween(prev.date, bar.date) - 1;
      if (missing > 0) out.push({ symbol, date: nextTradingDay(prev.date), kind: 'data_gap', size: missing });
    }
    const window = QUALITY_RULES.volumeWindow;
    if (i >= window) {
      const avg = volumeSum / window;
      if (avg >= QUALITY_RULES.thinVolume) {
        const ratio = bar.volume / avg;
        if (bar.volume === 0) out.push({ symbol, date: bar.date, kind: 'zero_volume', size: 0 });
        else if (ratio > QUALITY_RULES.volumeSpike)
          out.push({ symbol, date: bar.date, kind: 'volume_spike', size: ratio });
        else if (ratio < QUALITY_RULES.volumeDrought)
          out.push({ symbol, date: bar.date, kind: 'volume_drought', size: ratio });
      }
      volumeSum -= (bars[i - window] as DailyBar).volume;
    }
    volumeSum += bar.volume;
  }
  const lastBar = bars[bars.length - 1];
  const delisted = record?.delistedAt != null && record.delistedAt <= asOf;
  if (lastBar && !delisted) {
    const since = tradingDaysBetween(lastBar.date, asOf);
    if (since > QUALITY_RULES.staleSessions)
      out.push({ symbol, date: lastBar.date, kind: 'stale', size: since });
  }
  return out;
}

/** The detection an expected anomaly should produce (splits surface as price moves). */
export function detectionKindOf(event: ExpectedEvent): DetectedKind | null {
  if (!event.anomaly) return null;
  switch (event.kind) {
    case 'price_jump':
    case 'split':
      return 'price_move';
    case 'intraday_range':
    case 'volume_spike':
    case 'volume_drought':
    case 'zero_volume':
    case 'data_gap':
    case 'stale':
      return event.kind;
    default:
      return null;
  }
}

export interface DetectionComparison {
  readonly expected: number;
  readonly detected: number;
  /** Expected anomalies the bars do not show. */
  readonly missed: ExpectedEvent[];
  /** Anomalies in the bars that nobody injected. */
  readonly unexpected: DetectedAnomaly[];
  /** Matched, but the recorded size differs from the measured one. */
  readonly sizeMismatches: { expected: ExpectedEvent; detected: DetectedAnomaly }[];
}

const keyOf = (symbol: string, date: IsoDate, kind: string) => `${symbol}|${date}|${kind}`;

export function compareDetections(
  expected: readonly ExpectedEvent[],
  detected: readonly DetectedAnomaly[],
): DetectionComparison {
  const wanted = new Map<string, ExpectedEvent>();
  for (const e of expected) {
    const kind = detectionKindOf(e);
    if (kind) wanted.set(keyOf(e.symbol, e.date, kind), e);
  }
  const found = new Map(detected.map((d) => [keyOf(d.symbol, d.date, d.kind), d]));
  const missed = [...wanted].filter(([k]) => !found.has(k)).map(([, e]) => e);
  const unexpected = [...found].filter(([k]) => !wanted.has(k)).map(([, d]) => d);
  const sizeMismatches: DetectionComparison['sizeMismatches'] = [];
  for (const [k, e] of wanted) {
    const d = found.get(k);
    if (d && e.kind !== 'zero_volume' && Math.abs(d.size - e.size) > 1e-5 * Math.max(1, Math.abs(e.size))) {
      sizeMismatches.push({ expected: e, detected: d });
    }
  }
  return { expected: wanted.size, detected: found.size, missed, unexpected, sizeMismatches };
}

/** Sessions a symbol is expected to have bars for, between two dates (both inclusive). */
export function expectedSessions(from: IsoDate, to: IsoDate): number {
  return tradingDaysBetween(previousTradingDay(from), to);
}
