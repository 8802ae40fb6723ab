/**
 * Pure part of the check: turns the SQL passes' rows into alerts (kind, severity, description,
 * remediation, details). No I/O, so every rule is unit-testable on plain rows.
 *
 * Alert identity is (alert_type, symbol, trade_date), the table's unique key. trade_date is the date
 * the finding is ABOUT, which for episodes is when the episode started: a data gap is keyed by its
 * first missing session, a stale series by its last bar, a completeness shortfall by the first run
 * that found it. So the daily runs that keep seeing the same episode update one alert instead of
 * adding one per day, and price/volume findings are keyed by the bar's own date.
 */
import { CALENDAR_MIN_YEAR, type IsoDate, nextTradingDay, tradingDaysBetween } from '../calendar';

/**
 * Sessions from `since` to `tradeDate`, counting from the calendar's first year when `since` is
 * older: providers report listing dates long before 1990 (IBM, GE), and a symbol without bars is
 * judged from its listing date, which the calendar cannot place. The count is then a lower bound,
 * thousands of sessions, far past every staleness threshold, so the alert is the same.
 */
function sessionsSince(since: IsoDate, tradeDate: IsoDate): number {
  const floor = `${CALENDAR_MIN_YEAR}-01-01`;
  return tradingDaysBetween(since < floor ? floor : since, tradeDate);
}

import type { Split } from '../provider';
import type { QualityConfig } from './config';
import type { BarFindingRow, CoverageRow } from './sql';

export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type AlertType = 'price_anomaly' | 'volume_anomaly' | 'data_gap' | 'stale_data' | 'incomplete_data';
export type AlertKind =
  | 'price_move'
  | 'intraday_range'
  | 'split'
  | 'volume_spike'
  | 'volume_drought'
  | 'zero_volume'
  | 'missing_sessions'
  | 'stale'
  | 'no_data'
  | 'completeness';

export interface QualityAlert {
  readonly alertType: AlertType;
  readonly kind: AlertKind;
  readonly symbol: string;
  readonly tradeDate: IsoDate;
  readonly severity: Severity;
  readonly description: string;
  readonly remediation: string;
  /** Measured values only (deterministic for a given date and data: re-runs write the same). */
  readonly details: Record<string, unknown>;
}

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 0, medium: 1, high: 2, critical: 3 };
const maxSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b);

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** Severity of a price measure (close-to-close move or intraday range), null below the rule. */
export function priceSeverity(measure: number, threshold: number, config: QualityConfig): Severity | null {
  const m = Math.abs(measure);
  if (m >= config.price.criticalAt) return 'critical';
  if (m >= config.price.highAt) return 'high';
  if (m > threshold) return 'medium';
  return null;
}

/** Shares after / before (2 = 2-for-1); Polygon reports split_from -> split_to. */
export function splitRatio(split: Pick<Split, 'splitFrom' | 'splitTo'>): number {
  return split.splitTo / split.splitFrom;
}

/**
 * What the check knows about splits on a date: the provider's list (a split applies when its
 * symbol is in the map), or `unverified` when the provider's split lookup was unreachable.
 */
export type SplitKnowledge = ReadonlyMap<string, Split> | 'unverified';

/** Marks an alert whose price move could not be checked against the provider's splits. */
export const UNVERIFIED = 'unverified';
/** Marks an alert classified by a later run than the one that first recorded it unverified. */
export const RECHECKED = 'rechecked';

/** The alert as classified after an unverified record: its own message id tells the app. */
export function markRechecked(a: QualityAlert): QualityAlert {
  return { ...a, details: { ...a.details, split_check: RECHECKED } };
}

function priceAlert(row: BarFindingRow, tradeDate: IsoDate, splits: SplitKnowledge, config: QualityConfig) {
  if (row.prev_close === null) return null;
  const split = splits === UNVERIFIED ? undefined : splits.get(row.symbol);
  const move = row.close / row.prev_close - 1;
  const range = (row.high - row.low) / row.prev_close;
  const moveSeverity = priceSeverity(move, config.price.move, config);
  const rangeSeverity = range > config.price.range ? priceSeverity(range, config.price.range, config) : null;
  if (!moveSeverity && !rangeSeverity) return null;
  const measured = {
    previous_close: row.prev_close,
    previous_date: row.prev_date,
    close: row.close,
    high: row.high,
    low: row.low,
    move: r6(move),
    range: r6(range),
  };
  if (split) {
    // Measure again against the split-adjusted previous close: a move the split explains is a
    // corporate action (history needs adjusting), not bad data; what is left over is still judged.
    const ratio = splitRatio(split);
    const adjustedPrev = row.prev_close / ratio;
    const adjMove = row.close / adjustedPrev - 1;
    const adjRange = (row.high - row.low) / adjustedPrev;
    const adjSeverity = [
      priceSeverity(adjMove, config.price.move, config),
      adjRange > config.price.range ? priceSeverity(adjRange, config.price.range, config) : null,
    ].reduce<Severity | null>((a, b) => (a && b ? maxSeverity(a, b) : (a ?? b)), null);
    const splitInfo = { split_from: split.splitFrom, split_to: split.splitTo, ratio: r6(ratio) };
    if (!adjSeverity) {
      return {
        kind: 'split' as const,
        severity: 'low' as const,
        description: `${split.splitTo}-for-${split.splitFrom} split on ${tradeDate}: unadjusted close moved ${pct(move)}, ${pct(adjMove)} after adjusting for the split`,
        remediation:
          'Corporate action, not a data error: re-load history before the split adjusted (adjusted=true) and refresh derived indicators.',
        details: { ...measured, ...splitInfo, adjusted_move: r6(adjMove), adjusted_range: r6(adjRange) },
      };
    }
    return {
      kind: Math.abs(adjMove) > config.price.move ? ('price_move' as const) : ('intraday_range' as const),
      severity: adjSeverity,
      description: `Price moved ${pct(adjMove)} beyond the ${split.splitTo}-for-${split.splitFrom} split reported for ${tradeDate}`,
      remediation:
        'Split reported, but the move exceeds it: verify the bar against a second source and the split ratio.',
      details: { ...measured, ...splitInfo, adjusted_move: r6(adjMove), adjusted_range: r6(adjRange) },
    };
  }
  const severity = maxSeverity(moveSeverity ?? 'low', rangeSeverity ?? 'low');
  const isMove =
    moveSeverity !== null && SEVERITY_RANK[moveSeverity] >= SEVERITY_RANK[rangeSeverity ?? 'low'];
  const unverified = splits === UNVERIFIED;
  return {
    kind: isMove ? ('price_move' as const) : ('intraday_range' as const),
    severity,
    description:
      (isMove
        ? `Close moved ${pct(move)} from the previous close ${row.prev_close}`
        : `Intraday range ${pct(range)} of the previous close ${row.prev_close}`) +
      (unverified ? ' (not yet checked against splits: the provider was unreachable)' : ''),
    remediation: unverified
      ? 'Unverified: the next run re-classifies it once the provider lists the splits; until then check for a split by hand.'
      : 'Check for a split or other corporate action, then verify the bar against a second source; re-load the day if it is wrong.',
    // Only an unverified finding carries split_check, so verified ones keep their details (and ids).
    details: unverified ? { ...measured, split_check: UNVERIFIED } : measured,
  };
}

/** An open price alert whose split check is pending, as stored (details hold the measured bar). */
export interface UnverifiedPriceAlert {
  readonly symbol: string;
  readonly tradeDate: IsoDate;
  readonly details: Record<string, unknown>;
}

/**
 * Re-classifies price alerts recorded while the split lookup was unreachable, from the bar they
 * measured, now that `splitsOn(date)` lists the splits of their date. A move a split explains
 * becomes a split (low); one it does not stays a price alert, now verified; both marked rechecked
 * (a new message id, so the app hears of it). Same key, so the upsert updates the row in place.
 */
export function reclassifyUnverified(
  pending: readonly UnverifiedPriceAlert[],
  splitsOn: (date: IsoDate) => ReadonlyMap<string, Split>,
  config: QualityConfig,
): QualityAlert[] {
  const out: QualityAlert[] = [];
  for (const p of pending) {
    const d = p.details;
    const num = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : null);
    const prevClose = num('previous_close');
    const close = num('close');
    const high = num('high');
    const low = num('low');
    if (prevClose === null || close === null || high === null || low === null) continue;
    const row: BarFindingRow = {
      symbol: p.symbol,
      prev_date: typeof d.previous_date === 'string' ? (d.previous_date as IsoDate) : null,
      open: close,
      high,
      low,
      close,
      volume: 0,
      prev_close: prevClose,
      avg_volume: null,
      avg_bars: 0,
    };
    const alert = priceAlert(row, p.tradeDate, splitsOn(p.tradeDate), config);
    if (alert)
      out.push(
        markRechecked({ alertType: 'price_anomaly', symbol: p.symbol, tradeDate: p.tradeDate, ...alert }),
      );
  }
  return out;
}

function volumeAlert(row: BarFindingRow, config: QualityConfig) {
  const { volume: v } = config;
  if (row.avg_bars < v.averageSessions || row.avg_volume === null || row.avg_volume < v.thinAverage)
    return null;
  const ratio = row.volume / row.avg_volume;
  const details = {
    volume: row.volume,
    average_volume: r6(row.avg_volume),
    average_sessions: v.averageSessions,
    ratio: r6(ratio),
  };
  if (row.volume === 0)
    return {
      kind: 'zero_volume' as const,
      severity: 'medium' as const,
      description: `Zero volume (previous ${v.averageSessions}-session average ${Math.round(row.avg_volume)})`,
      remediation: 'Check for a trading halt; otherwise the bar is probably incomplete: re-load the day.',
      details,
    };
  if (ratio > v.spikeMultiple)
    return {
      kind: 'volume_spike' as const,
      severity: 'high' as const,
      description: `Volume ${ratio.toFixed(1)}x the previous ${v.averageSessions}-session average`,
      remediation: 'Look for news or an index event; if none, verify the bar (double-counted prints).',
      details,
    };
  if (ratio < v.droughtMultiple)
    return {
      kind: 'volume_drought' as const,
      severity: 'medium' as const,
      description: `Volume ${ratio.toFixed(3)}x the previous ${v.averageSessions}-session average`,
      remediation: 'Check for a partial-day halt or a truncated provider bar; re-load the day if incomplete.',
      details,
    };
  return null;
}

/** Price and volume alerts of the bars on the trade date. */
export function barAlerts(
  rows: readonly BarFindingRow[],
  tradeDate: IsoDate,
  splits: SplitKnowledge,
  config: QualityConfig,
): QualityAlert[] {
  const out: QualityAlert[] = [];
  for (const row of rows) {
    const p = priceAlert(row, tradeDate, splits, config);
    if (p) out.push({ alertType: 'price_anomaly', symbol: row.symbol, tradeDate, ...p });
    const v = volumeAlert(row, config);
    if (v) out.push({ alertType: 'volume_anomaly', symbol: row.symbol, tradeDate, ...v });
  }
  return out;
}

export interface CoverageStats {
  readonly expectedBars: number;
  readonly presentBars: number;
}

/**
 * Gap, staleness and completeness alerts of the window `sessions` (the NYSE sessions ending on the
 * trade date). `openCompleteness` maps symbols with an open completeness episode to its key date.
 */
export function coverageAlerts(
  rows: readonly CoverageRow[],
  sessions: readonly IsoDate[],
  openCompleteness: ReadonlyMap<string, IsoDate>,
  config: QualityConfig,
): { alerts: QualityAlert[]; stats: CoverageStats } {
  const C = sessions.length;
  const tradeDate = sessions[C - 1] as IsoDate;
  const at = (n: number) => sessions[n - 1] as IsoDate;
  const alerts: QualityAlert[] = [];
  let expectedBars = 0;
  let presentBars = 0;
  for (const row of rows) {
    const { symbol } = row;
    // Data gaps: holes inside the window closed by a recent bar...
    const holes: { lastBar: IsoDate; closingBar: IsoDate }[] = [];
    (row.hole_prev ?? []).forEach((prev, i) => {
      const next = row.hole_next?.[i];
      if (next !== undefined) holes.push({ lastBar: at(prev), closingBar: at(next) });
    });
    // ...and one opening the window, closed by a recent first bar (the bar before is outside it).
    if (
      row.first_n !== null &&
      row.first_n > 1 &&
      row.last_before &&
      row.first_n > C - config.gaps.lookbackSessions
    )
      holes.push({ lastBar: row.last_before, closingBar: at(row.first_n) });
    for (const h of holes) {
      const missing = sessionsSince(h.lastBar, h.closingBar) - 1;
      const from = nextTradingDay(h.lastBar);
      alerts.push({
        alertType: 'data_gap',
        kind: 'missing_sessions',
        symbol,
        tradeDate: from,
        severity: missing >= config.gaps.highAtSessions ? 'high' : 'medium',
        description: `${missing} trading session${missing === 1 ? '' : 's'} missing from ${from} (bars resume ${h.closingBar})`,
        remediation:
          'Back-fill the missing sessions from the provider (range aggregates); if the symbol was halted, resolve with that note.',
        details: { missing_sessions: missing, from, last_bar_before: h.lastBar, resumed_on: h.closingBar },
      });
    }

    // Staleness, in sessions since the last bar.
    const lastBar = row.last_n !== null ? at(row.last_n) : row.last_before;
    let stale = false;
    if (lastBar) {
      const since = sessionsSince(lastBar, tradeDate);
      if (since > config.staleness.afterSessions) {
        stale = true;
        alerts.push({
          alertType: 'stale_data',
          kind: 'stale',
          symbol,
          tradeDate: lastBar,
          severity: since >= config.staleness.highAtSessions ? 'high' : 'medium',
          description: `No bar for ${since} trading sessions (last bar ${lastBar})`,
          remediation:
            'Check whether the symbol is halted or delisted on the provider; otherwise re-run the EOD load for the missing sessions.',
          details: { sessions_since_last_bar: since, last_bar: lastBar },
        });
      }
    } else {
      // Never a bar: judged from the listing date when known.
      const since = row.list_date ? sessionsSince(row.list_date, tradeDate) : Number.POSITIVE_INFINITY;
      if (since > config.staleness.afterSessions) {
        stale = true;
        alerts.push({
          alertType: 'stale_data',
          kind: 'no_data',
          symbol,
          tradeDate: row.list_date ?? tradeDate,
          severity: 'high',
          description: row.list_date
            ? `No bar at all since the listing on ${row.list_date} (${since} sessions)`
            : 'No bar at all for an active symbol without a listing date',
          remediation: 'Back-fill the symbol history (IPO back-fill queue) or mark it inactive.',
          details: {
            sessions_since_listing: Number.isFinite(since) ? since : null,
            list_date: row.list_date,
          },
        });
      }
    }

    // Completeness over the window, from where the symbol's coverage starts in it: the window's
    // first session when it has older bars, else its first bar (history that was never back-filled
    // after a listing is the IPO back-fill's business; a symbol with no bar at all is stale above).
    let start: number;
    if (row.first_n === 1 || row.last_before) start = 1;
    else if (row.first_n !== null) start = row.first_n;
    else continue;
    const expected = C - start + 1;
    expectedBars += expected;
    presentBars += row.bars;
    const share = expected > 0 ? row.bars / expected : 1;
    // A stale series is already alerted and its missing tail is the whole story: one alert per cause.
    if (!stale && share < config.completeness.minimum) {
      alerts.push({
        alertType: 'incomplete_data',
        kind: 'completeness',
        symbol,
        tradeDate: openCompleteness.get(symbol) ?? tradeDate,
        severity: share < config.completeness.highBelow ? 'high' : 'medium',
        description: `${row.bars} of ${expected} expected sessions present (${pct(share)}) in the ${C}-session window ending ${tradeDate}`,
        remediation:
          'Back-fill the window from the provider; a persistently patchy symbol may need another source.',
        details: {
          present: row.bars,
          expected,
          completeness: r6(share),
          window_sessions: C,
          as_of: tradeDate,
        },
      });
    }
  }
  return { alerts, stats: { expectedBars, presentBars } };
}
