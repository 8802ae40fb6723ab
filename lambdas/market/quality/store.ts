/**
 * Persistence of one run: alerts upserted on the table's real unique key (alert_type, symbol,
 * trade_date), episodes that ended resolved, the date's metrics row upserted on its primary key.
 * Called inside one transaction, with the outbox enqueue, so a message exists iff its change committed.
 */
import type { IsoDate } from '../calendar';
import type { Queryable } from '../sql/db';
import type { QualityAlert } from './alerts';

export interface StoredAlert extends QualityAlert {
  readonly id: number;
  /** Stable across re-runs (the row is updated, never re-inserted). */
  readonly createdAt: Date;
  /** What this run did to the row: only inserted or changed rows are announced to the app. */
  readonly written: 'inserted' | 'updated' | 'unchanged';
}

export interface UpsertResult {
  readonly stored: StoredAlert[];
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
}

const keyOf = (t: string, s: string, d: string) => `${t}|${s}|${d}`;

export async function upsertAlerts(db: Queryable, alerts: readonly QualityAlert[]): Promise<UpsertResult> {
  if (alerts.length === 0) return { stored: [], inserted: 0, updated: 0, unchanged: 0 };
  const params = [
    alerts.map((a) => a.alertType),
    alerts.map((a) => a.symbol),
    alerts.map((a) => a.severity),
    alerts.map((a) => a.description),
    alerts.map((a) => JSON.stringify({ kind: a.kind, ...a.details })),
    alerts.map((a) => a.remediation),
    alerts.map((a) => a.tradeDate),
  ];
  // The WHERE on DO UPDATE leaves identical re-findings untouched (no dead tuples, updated_at kept),
  // so RETURNING lists exactly the inserted and the changed rows. Resolution columns are never
  // touched: a human's resolution survives a re-run.
  const written = await db.query<{
    inserted: boolean;
    alert_type: string;
    symbol: string;
    trade_date: string;
  }>(
    `INSERT INTO data_quality_alerts AS a
            (alert_type, symbol, severity, description, details, remediation, trade_date)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::date[])
     ON CONFLICT ON CONSTRAINT data_quality_alerts_dedup_key DO UPDATE
        SET severity = EXCLUDED.severity, description = EXCLUDED.description, details = EXCLUDED.details,
            remediation = EXCLUDED.remediation, updated_at = now()
      WHERE (a.severity, a.description, a.details, a.remediation)
            IS DISTINCT FROM (EXCLUDED.severity, EXCLUDED.description, EXCLUDED.details, EXCLUDED.remediation)
     RETURNING (xmax = 0) AS inserted, a.alert_type, a.symbol, a.trade_date::text AS trade_date`,
    params,
  );
  const inserted = written.rows.filter((r) => r.inserted).length;
  const updated = written.rows.length - inserted;
  const { rows } = await db.query<{
    id: string;
    alert_type: string;
    symbol: string;
    trade_date: string;
    created_at: Date;
  }>(
    `SELECT a.id, a.alert_type, a.symbol, a.trade_date::text AS trade_date, a.created_at
       FROM data_quality_alerts a
       JOIN unnest($1::text[], $2::text[], $3::date[]) AS k(alert_type, symbol, trade_date)
         ON a.alert_type = k.alert_type AND a.symbol = k.symbol AND a.trade_date = k.trade_date`,
    [params[0], params[1], params[6]],
  );
  const byKey = new Map(rows.map((r) => [keyOf(r.alert_type, r.symbol, r.trade_date), r]));
  const writtenAs = new Map(
    written.rows.map((r) => [
      keyOf(r.alert_type, r.symbol, r.trade_date),
      r.inserted ? ('inserted' as const) : ('updated' as const),
    ]),
  );
  const stored = alerts.map((a): StoredAlert => {
    const row = byKey.get(keyOf(a.alertType, a.symbol, a.tradeDate));
    if (!row) throw new Error(`alert row vanished after upsert: ${a.alertType} ${a.symbol} ${a.tradeDate}`);
    const key = keyOf(a.alertType, a.symbol, a.tradeDate);
    return {
      ...a,
      id: Number(row.id),
      createdAt: row.created_at,
      written: writtenAs.get(key) ?? 'unchanged',
    };
  });
  return { stored, inserted, updated, unchanged: alerts.length - inserted - updated };
}

/**
 * Closes episodes the data shows are over, as of the trade date: a stale series whose bars resumed
 * (the gap it became is alerted separately), a completeness shortfall that recovered. Returns how
 * many alerts were resolved.
 */
export async function resolveEndedEpisodes(
  db: Queryable,
  tradeDate: IsoDate,
  stillIncomplete: readonly string[],
): Promise<{ stale: number; completeness: number }> {
  const stale = await db.query(
    `UPDATE data_quality_alerts a
        SET resolved_at = now(), resolved_by = 'quality-check', updated_at = now(),
            resolution_notes = 'bars resumed on ' || (
              SELECT min(o.date) FROM ohlcv_daily o
               WHERE o.symbol = a.symbol AND o.date > a.trade_date AND o.date <= $1::date)::text
      WHERE a.alert_type = 'stale_data' AND a.resolved_at IS NULL AND a.trade_date < $1::date
        AND EXISTS (SELECT 1 FROM ohlcv_daily o
                     WHERE o.symbol = a.symbol AND o.date > a.trade_date AND o.date <= $1::date)`,
    [tradeDate],
  );
  const completeness = await db.query(
    `UPDATE data_quality_alerts a
        SET resolved_at = now(), resolved_by = 'quality-check', updated_at = now(),
            resolution_notes = 'completeness back above the minimum on ' || $1::text
      WHERE a.alert_type = 'incomplete_data' AND a.resolved_at IS NULL AND a.trade_date <= $1::date
        AND NOT (a.symbol = ANY($2::text[]))`,
    [tradeDate, stillIncomplete],
  );
  return { stale: stale.rowCount ?? 0, completeness: completeness.rowCount ?? 0 };
}

export interface MetricsRow {
  readonly tradeDate: IsoDate;
  readonly symbolsChecked: number;
  readonly symbolsWithAlerts: number;
  readonly totalAlerts: number;
  readonly alertCounts: Record<string, number>;
  readonly severityCounts: Record<string, number>;
  readonly completenessPct: number;
  readonly qualityScore: number;
  readonly details: Record<string, unknown>;
}

/** One row per trade date: a re-run replaces its figures (ON CONFLICT on the primary key). */
export async function upsertMetrics(db: Queryable, m: MetricsRow): Promise<{ createdAt: Date }> {
  const { rows } = await db.query<{ created_at: Date }>(
    `INSERT INTO data_quality_metrics AS m
            (trade_date, symbols_checked, symbols_with_alerts, total_alerts, alert_counts, severity_counts,
             completeness_pct, quality_score, details)
     VALUES ($1::date, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9::jsonb)
     ON CONFLICT (trade_date) DO UPDATE
        SET symbols_checked = EXCLUDED.symbols_checked, symbols_with_alerts = EXCLUDED.symbols_with_alerts,
            total_alerts = EXCLUDED.total_alerts, alert_counts = EXCLUDED.alert_counts,
            severity_counts = EXCLUDED.severity_counts, completeness_pct = EXCLUDED.completeness_pct,
            quality_score = EXCLUDED.quality_score, details = EXCLUDED.details, updated_at = now()
     RETURNING created_at`,
    [
      m.tradeDate,
      m.symbolsChecked,
      m.symbolsWithAlerts,
      m.totalAlerts,
      JSON.stringify(m.alertCounts),
      JSON.stringify(m.severityCounts),
      m.completenessPct,
      m.qualityScore,
      JSON.stringify(m.details),
    ],
  );
  return { createdAt: rows[0]?.created_at ?? new Date(0) };
}
