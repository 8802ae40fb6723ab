import type { MinuteBarMessage } from '../realtime/minute-bar-message';
import type { Queryable } from './db';

export interface MinuteBarWrite {
  readonly inserted: number;
  /** Rows whose values changed (a correction, or a newer version). */
  readonly updated: number;
  /** Same values again, or an older version than the stored one: nothing written. */
  readonly unchanged: number;
}

/**
 * Upserts minute bars into realtime_minute_bars (at most one per symbol and start: see
 * `newestPerBar`), keyed by (symbol, bar_start). A stored bar is replaced only by a newer version
 * (`published_at`, then the router offset) with different values; each such change counts in
 * `revisions`. Redelivered messages therefore write nothing, and an original arriving after its
 * correction cannot undo it.
 */
export async function upsertMinuteBars(
  db: Queryable,
  bars: readonly MinuteBarMessage[],
): Promise<MinuteBarWrite> {
  if (bars.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  const { rows } = await db.query<{ inserted: number; updated: number }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], $6::float8[],
                            $7::float8[], $8::float8[], $9::float8[], $10::boolean[], $11::text[],
                            $12::bigint[], $13::bigint[])
         AS x (symbol, s, e, open, high, low, close, volume, vwap, correction, epoch, router_offset, published)
     ), written AS (
       INSERT INTO realtime_minute_bars AS b
         (symbol, bar_start, bar_end, open, high, low, close, volume, vwap, correction, router_epoch,
          router_offset, published_at)
       SELECT symbol, to_timestamp(s / 1000.0), to_timestamp(e / 1000.0), open, high, low, close, volume,
              vwap, correction, epoch, router_offset, to_timestamp(published / 1000.0)
       FROM input
       ON CONFLICT (symbol, bar_start) DO UPDATE
         SET bar_end = EXCLUDED.bar_end, open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
             close = EXCLUDED.close, volume = EXCLUDED.volume, vwap = EXCLUDED.vwap,
             correction = EXCLUDED.correction, router_epoch = EXCLUDED.router_epoch,
             router_offset = EXCLUDED.router_offset, published_at = EXCLUDED.published_at,
             revisions = b.revisions + 1, updated_at = now()
         WHERE (EXCLUDED.published_at, EXCLUDED.router_offset) > (b.published_at, b.router_offset)
           AND (b.open, b.high, b.low, b.close, b.volume, b.vwap, b.bar_end)
               IS DISTINCT FROM
               (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.vwap,
                EXCLUDED.bar_end)
       -- xmax = 0 only on a freshly inserted row version.
       RETURNING (b.xmax = 0) AS fresh
     )
     SELECT count(*) FILTER (WHERE fresh)::integer AS inserted,
            count(*) FILTER (WHERE NOT fresh)::integer AS updated
     FROM written`,
    [
      bars.map((b) => b.sym),
      bars.map((b) => b.s),
      bars.map((b) => b.e),
      bars.map((b) => b.o),
      bars.map((b) => b.h),
      bars.map((b) => b.l),
      bars.map((b) => b.c),
      bars.map((b) => b.v),
      bars.map((b) => (typeof b.vw === 'number' ? b.vw : null)),
      bars.map((b) => b.correction),
      bars.map((b) => b.epoch),
      bars.map((b) => b.offset),
      bars.map((b) => b.publishedAt),
    ],
  );
  const inserted = rows[0]?.inserted ?? 0;
  const updated = rows[0]?.updated ?? 0;
  return { inserted, updated, unchanged: bars.length - inserted - updated };
}
