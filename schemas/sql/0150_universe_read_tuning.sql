-- Keeps the universe read path fast right after each refresh (measured in the schema benchmark).
--
-- refresh_symbol_liquidity() rewrites every snapshot row once per EOD. Two effects showed up at
-- 8,000 symbols: (1) until autovacuum analyzed the table, the planner costed reads on stale
-- statistics and get_etf_universe took ~110 ms; (2) each refresh left a full table of dead tuples
-- for the reads to skip. Fix: analyze at the end of the refresh, and leave half of every page free
-- so the daily rewrite is a HOT update that prunes on the page instead of bloating table and index.
-- (3) even with fresh statistics the planner chose a hash join over all of symbols and
-- symbol_liquidity for a 200-member read (~3-10 ms); get_etf_universe now probes both per member.

ALTER TABLE symbol_liquidity SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05);

CREATE OR REPLACE FUNCTION refresh_symbol_liquidity(p_lookback_days integer DEFAULT 20)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_as_of date;
  v_rows integer;
BEGIN
  IF p_lookback_days IS NULL OR p_lookback_days <= 0 THEN
    RAISE EXCEPTION 'lookback_days must be positive, got %', p_lookback_days
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT max(b.date) INTO v_as_of FROM ohlcv_daily b;
  IF v_as_of IS NULL THEN
    DELETE FROM symbol_liquidity;
    RETURN 0;
  END IF;

  WITH wanted AS (
    SELECT s.symbol FROM symbols s
    UNION
    SELECT m.symbol FROM universe_members m
  ), computed AS (
    SELECT w.symbol, liq.*
    FROM wanted w
    CROSS JOIN LATERAL (
      SELECT count(*)::integer AS bar_count,
             avg(r.volume)::double precision AS avg_volume,
             avg(r.close * r.volume) AS avg_dollar_volume,
             (array_agg(r.close ORDER BY r.date DESC))[1] AS last_close,
             max(r.date) AS last_bar_date
      FROM (
        SELECT b.date, b.close, b.volume FROM ohlcv_daily b
        WHERE b.symbol = w.symbol
        ORDER BY b.date DESC
        LIMIT p_lookback_days
      ) r
    ) liq
    WHERE liq.bar_count > 0
  ), written AS (
    INSERT INTO symbol_liquidity AS t
      (symbol, as_of_date, lookback_days, bar_count, avg_volume, avg_dollar_volume, last_close,
       last_bar_date, refreshed_at)
    SELECT c.symbol, v_as_of, p_lookback_days, c.bar_count, c.avg_volume, c.avg_dollar_volume,
           c.last_close, c.last_bar_date, now()
    FROM computed c
    ON CONFLICT (symbol) DO UPDATE
      SET as_of_date = EXCLUDED.as_of_date,
          lookback_days = EXCLUDED.lookback_days,
          bar_count = EXCLUDED.bar_count,
          avg_volume = EXCLUDED.avg_volume,
          avg_dollar_volume = EXCLUDED.avg_dollar_volume,
          last_close = EXCLUDED.last_close,
          last_bar_date = EXCLUDED.last_bar_date,
          refreshed_at = EXCLUDED.refreshed_at
    RETURNING 1
  )
  SELECT count(*)::integer INTO v_rows FROM written;

  -- now() is the transaction's start, so every row written above carries it; an older stamp means
  -- the symbol left `symbols` and every universe, or has no bars any more.
  DELETE FROM symbol_liquidity t WHERE t.refreshed_at < now();
  -- Fresh statistics right away: before autovacuum gets to it, the planner would cost the read
  -- path on the old row count (measured: 111 ms instead of ~2 ms per 200-member read). A session
  -- that does not own the table gets a warning and skips this step.
  ANALYZE symbol_liquidity;
  RETURN v_rows;
END;
$$;

-- Same contract as in 0120/0140; only the lookups of symbols and symbol_liquidity changed.
CREATE OR REPLACE FUNCTION get_etf_universe(p_theme text, p_apply_liquidity_filter boolean DEFAULT false)
RETURNS TABLE (
  symbol text,
  ordinal integer,
  name text,
  type text,
  active boolean,
  aum numeric,
  expense_ratio numeric,
  avg_volume double precision,
  avg_dollar_volume double precision,
  last_close double precision,
  last_bar_date date
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_id bigint;
  v_filter jsonb;
  v_lookback integer;
  v_latest date;
BEGIN
  SELECT u.id, u.liquidity_filter, coalesce((u.liquidity_filter ->> 'lookback_days')::integer, 20)
  INTO v_id, v_filter, v_lookback
  FROM universes u
  WHERE u.category = 'etf' AND u.name = p_theme;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  -- One descent of the date index.
  SELECT max(b.date) INTO v_latest FROM ohlcv_daily b;

  RETURN QUERY
  SELECT m.symbol, m.ordinal, s.name, s.type, s.active, s.aum, s.expense_ratio,
         coalesce(sl.avg_volume, live.avg_volume),
         coalesce(sl.avg_dollar_volume, live.avg_dollar_volume),
         coalesce(sl.last_close, live.last_close),
         coalesce(sl.last_bar_date, live.last_bar_date)
  FROM universe_members m
  -- LATERAL ... LIMIT 1 cannot be flattened into a join, so each member is one primary-key probe
  -- (~200 probes) instead of the hash join over all 8,000 rows the planner otherwise prefers.
  LEFT JOIN LATERAL (
    SELECT x.name, x.type, x.active, x.aum, x.expense_ratio, x.delisted_at
    FROM symbols x WHERE x.symbol = m.symbol LIMIT 1
  ) s ON true
  LEFT JOIN LATERAL (
    SELECT y.symbol, y.avg_volume, y.avg_dollar_volume, y.last_close, y.last_bar_date
    FROM symbol_liquidity y
    WHERE y.symbol = m.symbol AND y.as_of_date = v_latest AND y.lookback_days = v_lookback
    LIMIT 1
  ) sl ON true
  -- Runs only for members without a usable snapshot row (the condition on sl is a one-time
  -- filter per member, evaluated before any index descent).
  LEFT JOIN LATERAL (
    SELECT avg(r.volume)::double precision AS avg_volume,
           avg(r.close * r.volume) AS avg_dollar_volume,
           (array_agg(r.close ORDER BY r.date DESC))[1] AS last_close,
           max(r.date) AS last_bar_date
    FROM (
      SELECT b.date, b.close, b.volume FROM ohlcv_daily b
      WHERE sl.symbol IS NULL AND b.symbol = m.symbol
      ORDER BY b.date DESC
      LIMIT v_lookback
    ) r
  ) live ON sl.symbol IS NULL
  WHERE m.universe_id = v_id
    AND (NOT p_apply_liquidity_filter
         OR (s.active IS TRUE
             AND (s.delisted_at IS NULL OR s.delisted_at > current_date)
             AND (NOT v_filter ? 'min_avg_volume'
                  OR coalesce(sl.avg_volume, live.avg_volume) >= (v_filter ->> 'min_avg_volume')::double precision)
             AND (NOT v_filter ? 'min_avg_dollar_volume'
                  OR coalesce(sl.avg_dollar_volume, live.avg_dollar_volume)
                     >= (v_filter ->> 'min_avg_dollar_volume')::double precision)
             AND (NOT v_filter ? 'min_price'
                  OR coalesce(sl.last_close, live.last_close) >= (v_filter ->> 'min_price')::double precision)
             AND (NOT v_filter ? 'min_aum' OR s.aum >= (v_filter ->> 'min_aum')::numeric)))
  ORDER BY m.ordinal;
END;
$$;
