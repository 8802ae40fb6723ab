/**
 * The person's sleep sessions as time spans, kept across exports (issue 15, point 4).
 *
 * A heart-rate export does not say when its wearer slept; the sleep export does, and it usually
 * arrives earlier (the night's sleep is synced in the morning, the day's heart rate that evening).
 * So each processed sleep export leaves its sessions here (start, end, zone, night or nap), and a
 * heart-rate export reads the sessions that overlap it: sleeping heart rate is the samples inside
 * them, and resting heart rate is computed from those (processors/heart-rate.ts). No health values
 * are kept: times, zone and kind only.
 *
 * Written after the export's unit of work has committed (a quarantined export never writes), and
 * again by a retry of the same export: the write is an upsert in which a newer version of a
 * session (later lastModifiedTimeEpochMillis) replaces the stored one and an older one never does,
 * so order and repetition do not matter.
 */
import type pg from 'pg';
import type { SleepSpan } from './processors/sleep';

export { type SleepSpan, sleepSpanOf } from './processors/sleep';

export interface SleepSpanStore {
  /** Upserts the spans of a processed sleep export (newer version of a session wins). */
  save(userId: string, sourceId: string, spans: readonly SleepSpan[]): Promise<void>;
  /** The spans overlapping [from, to), ordered by start. */
  overlapping(userId: string, from: number, to: number): Promise<SleepSpan[]>;
}

export class MemorySleepSpans implements SleepSpanStore {
  private readonly rows = new Map<string, SleepSpan>();

  async save(userId: string, _sourceId: string, spans: readonly SleepSpan[]): Promise<void> {
    for (const s of spans) {
      const key = `${userId}\0${s.origin}\0${s.sessionId}`;
      const had = this.rows.get(key);
      if (!had || s.lastModified > had.lastModified) this.rows.set(key, s);
    }
  }

  async overlapping(userId: string, from: number, to: number): Promise<SleepSpan[]> {
    const prefix = `${userId}\0`;
    return [...this.rows.entries()]
      .filter(([k, s]) => k.startsWith(prefix) && s.start < to && s.end > from)
      .map(([, s]) => s)
      .sort((a, b) => a.start - b.start || (a.origin < b.origin ? -1 : 1));
  }
}

export class PostgresSleepSpans implements SleepSpanStore {
  constructor(private readonly pool: pg.Pool) {}

  async save(userId: string, sourceId: string, spans: readonly SleepSpan[]): Promise<void> {
    if (spans.length === 0) return;
    await this.pool.query(
      `INSERT INTO health_sleep_spans
         (user_id, data_origin, session_id, start_ms, end_ms, zone, kind, night_of, last_modified_ms, source_id)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                                $8::date[], $9::bigint[], $10::text[])
       ON CONFLICT (user_id, data_origin, session_id) DO UPDATE SET
         start_ms = EXCLUDED.start_ms, end_ms = EXCLUDED.end_ms, zone = EXCLUDED.zone, kind = EXCLUDED.kind,
         night_of = EXCLUDED.night_of, last_modified_ms = EXCLUDED.last_modified_ms,
         source_id = EXCLUDED.source_id, updated_at = now()
       WHERE health_sleep_spans.last_modified_ms < EXCLUDED.last_modified_ms`,
      [
        userId,
        spans.map((s) => s.origin),
        spans.map((s) => s.sessionId),
        spans.map((s) => s.start),
        spans.map((s) => s.end),
        spans.map((s) => s.zone),
        spans.map((s) => s.kind),
        spans.map((s) => s.nightOf),
        spans.map((s) => s.lastModified),
        spans.map(() => sourceId),
      ],
    );
  }

  async overlapping(userId: string, from: number, to: number): Promise<SleepSpan[]> {
    const { rows } = await this.pool.query<{
      data_origin: string;
      session_id: string;
      start_ms: string;
      end_ms: string;
      zone: string | null;
      kind: 'main' | 'nap';
      night_of: string;
      last_modified_ms: string;
    }>(
      `SELECT data_origin, session_id, start_ms, end_ms, zone, kind, to_char(night_of, 'YYYY-MM-DD') AS night_of,
              last_modified_ms
         FROM health_sleep_spans
        WHERE user_id = $1 AND start_ms < $3 AND end_ms > $2
        ORDER BY start_ms, data_origin COLLATE "C"`,
      [userId, Math.floor(from), Math.ceil(to)],
    );
    return rows.map((r) => ({
      origin: r.data_origin,
      sessionId: r.session_id,
      start: Number(r.start_ms),
      end: Number(r.end_ms),
      zone: r.zone,
      kind: r.kind,
      nightOf: r.night_of,
      lastModified: Number(r.last_modified_ms),
    }));
  }
}

/**
 * The span store callers that pass none get: one in memory per record store, so the tests and
 * `etl run --memory` keep the sessions of a run together with its records. The handler and
 * `etl run --schema` pass a PostgresSleepSpans on the same pool as their record store.
 */
const defaults = new WeakMap<object, SleepSpanStore>();
export function defaultSleepSpans(store: object): SleepSpanStore {
  let s = defaults.get(store);
  if (!s) {
    s = new MemorySleepSpans();
    defaults.set(store, s);
  }
  return s;
}
