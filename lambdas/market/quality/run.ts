/**
 * The daily data-quality check for one trade date: SQL passes -> alerts -> one transaction (alerts,
 * resolutions, metrics and the outbox rows announcing them) -> outbox relay to the app.
 *
 * Re-run story (the EOD chain retries a failed run; an operator may re-run a date):
 * - Alerts are upserted on (alert_type, symbol, trade_date): a re-run of the same date inserts no
 *   row; identical findings are not even rewritten. The metrics row is upserted on trade_date.
 * - Messages go through the market outbox, written in the same transaction: only alerts this run
 *   inserted or changed are enqueued, each under a dedupe key (and message_id) derived from its
 *   identity and content class (alert_type, symbol, trade_date, kind, severity); the summary under
 *   the date and a hash of its figures. A re-run that changes nothing therefore enqueues nothing
 *   and publishes nothing; a finding whose severity or kind changed is a new message. A relay that
 *   fails leaves the rows in the outbox and rejects the run (QualityPublishError) so the chain's
 *   retry (or any later relay) delivers them, once.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { CHANNELS as CH, type Channel, SEED_SERVICES } from '../../platform/event-bus';
import {
  enqueueOutbox,
  type OutboxMessage,
  type OutboxTransport,
  type RelayResult,
  relayOutbox,
} from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import {
  addTradingDays,
  holidayName,
  type IsoDate,
  isTradingDay,
  toDayNumber,
  tradingDays,
} from '../calendar';
import type { MarketDataProvider, Split } from '../provider';
import {
  type AlertType,
  barAlerts,
  coverageAlerts,
  markRechecked,
  type QualityAlert,
  RECHECKED,
  reclassifyUnverified,
  SEVERITY_RANK,
  type Severity,
  type SplitKnowledge,
  UNVERIFIED,
} from './alerts';
import { DEFAULT_QUALITY_CONFIG, type QualityConfig } from './config';
import { coveragePass, openCompletenessEpisodes, priceVolumePass, unverifiedPriceAlerts } from './sql';
import { resolveEndedEpisodes, type StoredAlert, upsertAlerts, upsertMetrics } from './store';

export const QUALITY_SERVICE = SEED_SERVICES.dataQualityMonitor;

export const CHANNEL_OF: Readonly<Record<AlertType, Channel>> = {
  price_anomaly: CH.qualityPriceAnomaly,
  volume_anomaly: CH.qualityVolumeAnomaly,
  data_gap: CH.qualityDataGap,
  incomplete_data: CH.qualityDataGap,
  stale_data: CH.qualityStaleData,
};

export class QualityCheckError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'QualityCheckError';
  }
}

/** Alerts, metrics and their messages are committed but the relay could not deliver every message. */
export class QualityPublishError extends QualityCheckError {
  constructor(
    readonly tradeDate: IsoDate,
    readonly failed: number,
    readonly firstError: string,
    options?: ErrorOptions,
  ) {
    super(
      `quality check ${tradeDate}: ${failed} outbox message(s) not delivered (kept in the outbox; the retry or the next relay sends them): ${firstError}`,
      options,
    );
    this.name = 'QualityPublishError';
  }
}

export interface QualityCheckDeps {
  readonly pool: pg.Pool;
  /** Delivery of the outbox rows (lambdas/platform/outbox-transport). */
  readonly transport: OutboxTransport;
  readonly provider: Pick<MarketDataProvider, 'splits'>;
  readonly config?: QualityConfig;
}

export interface QualitySummary {
  readonly status: 'checked' | 'skipped';
  readonly tradeDate: IsoDate;
  readonly reason?: string;
  readonly symbolsChecked: number;
  readonly symbolsWithAlerts: number;
  readonly totalAlerts: number;
  readonly alertCounts: Record<string, number>;
  readonly kindCounts: Record<string, number>;
  readonly severityCounts: Record<Severity, number>;
  readonly completenessPct: number;
  readonly qualityScore: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly resolved: { stale: number; completeness: number };
  readonly splitsReported: number;
  /** This date's price alerts recorded unverified (split lookup unreachable). */
  readonly unverified: number;
  /** Earlier dates' unverified price alerts re-classified by this run. */
  readonly reclassified: number;
  /** Why the split lookup failed (null when it answered or was not needed). */
  readonly splitLookupError: string | null;
  /** Messages this run enqueued (0 for a re-run that changed nothing). */
  readonly published: number;
  readonly summaryMessageId: string | null;
  /** The relay after the commit (it also delivers rows earlier runs or other jobs left behind). */
  readonly relay: RelayResult;
  readonly seconds: number;
}

/** A UUID (version 5 layout) from a SHA-256 of the parts: same parts, same id, on any machine. */
export function stableMessageId(...parts: readonly (string | number)[]): string {
  const h = createHash('sha256').update(parts.join('\u001f')).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * An unverified finding has its own id, and so has its later classification (rechecked), so the
 * verification reaches the app as a new message rather than a duplicate of an earlier one.
 */
export function alertMessageId(
  a: Pick<QualityAlert, 'alertType' | 'symbol' | 'tradeDate' | 'kind' | 'severity'> & {
    readonly details?: Record<string, unknown>;
  },
): string {
  const parts = ['quality-alert', a.alertType, a.symbol, a.tradeDate, a.kind, a.severity];
  const check = a.details?.split_check;
  if (check === UNVERIFIED || check === RECHECKED) parts.push(check);
  return stableMessageId(...parts);
}

/** Sessions ending on tradeDate, n of them, from the NYSE calendar. */
function sessionsEnding(tradeDate: IsoDate, n: number): IsoDate[] {
  return tradingDays(addTradingDays(tradeDate, -(n - 1)), tradeDate);
}

/** Split-day weights: a split is a corporate action and costs the score nothing. */
const SCORE_WEIGHT: Readonly<Record<Severity, number>> = { low: 0, medium: 0.25, high: 0.5, critical: 1 };

function dedupe(alerts: readonly QualityAlert[]): QualityAlert[] {
  const byKey = new Map<string, QualityAlert>();
  for (const a of alerts) {
    const k = `${a.alertType}|${a.symbol}|${a.tradeDate}`;
    const seen = byKey.get(k);
    if (!seen || SEVERITY_RANK[a.severity] > SEVERITY_RANK[seen.severity]) byKey.set(k, a);
  }
  return [...byKey.values()];
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function runQualityCheck(deps: QualityCheckDeps, tradeDate: IsoDate): Promise<QualitySummary> {
  const started = performance.now();
  toDayNumber(tradeDate); // InvalidDateError for malformed input
  const config = deps.config ?? DEFAULT_QUALITY_CONFIG;
  const severityCounts: Record<Severity, number> = { low: 0, medium: 0, high: 0, critical: 0 };
  if (!isTradingDay(tradeDate)) {
    // Weekends and market holidays have no bars to judge; checking them could only invent gaps.
    return {
      status: 'skipped',
      tradeDate,
      reason: `not an NYSE trading day${holidayName(tradeDate) ? ` (${holidayName(tradeDate)})` : ''}`,
      symbolsChecked: 0,
      symbolsWithAlerts: 0,
      totalAlerts: 0,
      alertCounts: {},
      kindCounts: {},
      severityCounts,
      completenessPct: 0,
      qualityScore: 0,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      resolved: { stale: 0, completeness: 0 },
      splitsReported: 0,
      unverified: 0,
      reclassified: 0,
      splitLookupError: null,
      published: 0,
      summaryMessageId: null,
      relay: { delivered: 0, recovered: 0, failed: 0, errors: [] },
      seconds: (performance.now() - started) / 1000,
    };
  }

  const volumeDays = sessionsEnding(tradeDate, config.volume.lookbackSessions + 1);
  const windowDays = sessionsEnding(
    tradeDate,
    Math.max(config.completeness.windowSessions, config.gaps.lookbackSessions + 1),
  );
  // The passes are independent reads: run them concurrently on two pooled connections.
  const [bars, coverage, openEpisodes] = await Promise.all([
    priceVolumePass(deps.pool, tradeDate, volumeDays[0] as IsoDate, config),
    coveragePass(deps.pool, tradeDate, windowDays, config.gaps.lookbackSessions),
    openCompletenessEpisodes(deps.pool, tradeDate),
  ]);

  // Splits are fetched in one (paged) call, only when a price move needs them: the date's, and those
  // of earlier dates whose price alerts were recorded unverified (the provider was unreachable then).
  const unverifiedBefore = await unverifiedPriceAlerts(deps.pool, tradeDate);
  // This date's own are re-judged below from fresh bars; earlier dates' from their stored bar.
  const pending = unverifiedBefore.filter((p) => p.tradeDate < tradeDate);
  const pendingToday = new Set(
    unverifiedBefore.filter((p) => p.tradeDate === tradeDate).map((p) => p.symbol),
  );
  const needsSplits = bars.findings.some((r) => r.prev_close !== null);
  let splits: SplitKnowledge = new Map<string, Split>();
  let reclassified: QualityAlert[] = [];
  let splitsReported = 0;
  let splitLookupError: string | null = null;
  if (needsSplits || pending.length > 0) {
    const from = pending.reduce<IsoDate>((min, p) => (p.tradeDate < min ? p.tradeDate : min), tradeDate);
    try {
      const list = await deps.provider.splits({ from, to: tradeDate });
      const byDate = new Map<IsoDate, Map<string, Split>>();
      for (const sp of list) {
        const onDate = byDate.get(sp.executionDate) ?? new Map<string, Split>();
        onDate.set(sp.symbol, sp);
        byDate.set(sp.executionDate, onDate);
      }
      const none = new Map<string, Split>();
      splits = byDate.get(tradeDate) ?? none;
      splitsReported = list.filter((sp) => sp.executionDate === tradeDate).length;
      reclassified = reclassifyUnverified(pending, (d) => byDate.get(d) ?? none, config);
    } catch (error) {
      // Classifying moves without the split list would raise false critical alerts, and failing the
      // whole check would hide every other finding: record the price alerts as unverified instead.
      splits = UNVERIFIED;
      splitLookupError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }

  const cov = coverageAlerts(coverage, windowDays, openEpisodes, config);
  const alerts = dedupe([
    ...barAlerts(bars.findings, tradeDate, splits, config).map((a) =>
      a.alertType === 'price_anomaly' && splits !== UNVERIFIED && pendingToday.has(a.symbol)
        ? markRechecked(a)
        : a,
    ),
    ...cov.alerts,
  ]);
  const unverified = alerts.filter((a) => a.details.split_check === UNVERIFIED).length;
  const symbolsChecked = coverage.length;
  const alertCounts: Record<string, number> = {};
  const kindCounts: Record<string, number> = {};
  const worst = new Map<string, Severity>();
  for (const a of alerts) {
    alertCounts[a.alertType] = (alertCounts[a.alertType] ?? 0) + 1;
    kindCounts[a.kind] = (kindCounts[a.kind] ?? 0) + 1;
    severityCounts[a.severity] += 1;
    const w = worst.get(a.symbol);
    if (!w || SEVERITY_RANK[a.severity] > SEVERITY_RANK[w]) worst.set(a.symbol, a.severity);
  }
  const completeness = cov.stats.expectedBars > 0 ? cov.stats.presentBars / cov.stats.expectedBars : 1;
  const penalty = [...worst.values()].reduce((s, sev) => s + SCORE_WEIGHT[sev], 0);
  // Score: completeness scaled by the share of symbols without a serious finding (weighted by the
  // worst severity per symbol; splits are free), so one bad day and chronic gaps both show.
  const qualityScore = round2(100 * completeness * (symbolsChecked > 0 ? 1 - penalty / symbolsChecked : 1));
  const completenessPct = round2(100 * completeness);
  const stillIncomplete = [
    ...new Set(
      alerts
        .filter((a) => a.alertType === 'incomplete_data' || a.alertType === 'stale_data')
        .map((a) => a.symbol),
    ),
  ];

  const summaryData = {
    trade_date: tradeDate,
    symbols_checked: symbolsChecked,
    symbols_with_alerts: worst.size,
    total_alerts: alerts.length,
    alert_counts: alertCounts,
    kind_counts: kindCounts,
    severity_counts: severityCounts,
    completeness_pct: completenessPct,
    quality_score: qualityScore,
    bars_on_date: bars.stats.barsOnDate,
    unverified_alerts: unverified,
  };
  const summaryMessageId = stableMessageId('quality-summary', JSON.stringify(summaryData));
  const { upsert, resolved, published } = await withTransaction(deps.pool, async (client) => {
    // Concurrent runs of the same date (a retry racing a slow first attempt) take turns.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`quality-check:${tradeDate}`]);
    // Re-classified alerts of earlier dates share the upsert (other keys); this date's figures
    // below count only this date's alerts.
    const upsert = await upsertAlerts(client, [...alerts, ...reclassified]);
    const resolved = await resolveEndedEpisodes(client, tradeDate, stillIncomplete);
    await upsertMetrics(client, {
      tradeDate,
      symbolsChecked,
      symbolsWithAlerts: worst.size,
      totalAlerts: alerts.length,
      alertCounts,
      severityCounts,
      completenessPct,
      qualityScore,
      details: {
        kind_counts: kindCounts,
        bars_on_date: bars.stats.barsOnDate,
        thin_excluded: bars.stats.thinExcluded,
        volume_unmeasured: bars.stats.volumeUnmeasured,
        splits_reported: splitsReported,
        unverified_alerts: unverified,
        reclassified_alerts: reclassified.length,
        ...(splitLookupError ? { split_lookup_error: splitLookupError.slice(0, 300) } : {}),
        window_sessions: windowDays.length,
        expected_bars: cov.stats.expectedBars,
        present_bars: cov.stats.presentBars,
      },
    });
    // The summary goes last (outbox ids are the delivery order): a consumer that sees it has been
    // offered every alert before it.
    const messages = [
      ...upsert.stored.filter((a) => a.written !== 'unchanged').map(alertMessage),
      summaryMessage(tradeDate, summaryMessageId, summaryData),
    ];
    const enqueued = await enqueueOutbox(client, messages);
    return { upsert, resolved, published: enqueued.length };
  });

  const relay = await relayOutbox(deps.pool, deps.transport);
  if (relay.failed > 0) throw new QualityPublishError(tradeDate, relay.failed, relay.errors[0] ?? 'unknown');

  return {
    status: 'checked',
    tradeDate,
    symbolsChecked,
    symbolsWithAlerts: worst.size,
    totalAlerts: alerts.length,
    alertCounts,
    kindCounts,
    severityCounts,
    completenessPct,
    qualityScore,
    inserted: upsert.inserted,
    updated: upsert.updated,
    unverified,
    reclassified: reclassified.length,
    splitLookupError,
    unchanged: upsert.unchanged,
    resolved,
    splitsReported,
    published,
    summaryMessageId,
    relay,
    seconds: (performance.now() - started) / 1000,
  };
}

function alertMessage(a: StoredAlert): OutboxMessage {
  const messageId = alertMessageId(a);
  return {
    dedupeKey: `quality.alert:${messageId}`,
    messageId,
    destination: { channel: CHANNEL_OF[a.alertType] },
    eventType: a.alertType,
    payload: {
      alert_id: a.id,
      alert_type: a.alertType,
      kind: a.kind,
      symbol: a.symbol,
      trade_date: a.tradeDate,
      severity: a.severity,
      description: a.description,
      remediation: a.remediation,
      details: a.details,
    },
  };
}

function summaryMessage(tradeDate: IsoDate, messageId: string, data: Record<string, unknown>): OutboxMessage {
  return {
    dedupeKey: `quality.summary:${tradeDate}:${messageId}`,
    messageId,
    destination: { channel: CH.qualityDailySummary },
    eventType: 'daily_summary',
    payload: data,
  };
}
