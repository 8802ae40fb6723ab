-- Fast read path for the app's universe queries (target < 5 ms).
--
-- Measured on 0120's get_etf_universe: a 200-member theme costs ~10-15 ms, almost all of it 200
-- index descents into ohlcv_daily for the last 20 bars (bars of one symbol lie on ~20 different
-- heap pages, because the EOD load writes date by date), plus re-planning the body on every call
-- (a SQL-language function with a SET clause is neither inlined nor plan-cached).
--
-- So the per-symbol liquidity figures are computed once per EOD into symbol_liquidity by
-- refresh_symbol_liquidity(), and the read functions become plpgsql (cached plans). The snapshot
-- can never make a read wrong: a member's snapshot row is used only when it was taken at the
-- newest bar date in ohlcv_daily with the universe's lookback; otherwise (no refresh since the
-- last load, a new IPO, a theme with another lookback) that member is computed live as before.

CREATE TABLE symbol_liquidity (
  symbol text PRIMARY KEY,
  -- The newest ohlcv_daily date when the row was computed: the freshness test of the read path.
  as_of_date date NOT NULL,
  lookback_days integer NOT NULL CHECK (lookback_days > 0),
  -- Figures over the symbol's last lookback_days bars (same definition as the live computation).
  bar_count integer NOT NULL CHECK (bar_count >= 0),
  avg_volume double precision,
  avg_dollar_volume double precision,
  last_close double precision,
  last_bar_date date,
  refreshed_at timestamptz NOT NULL DEFAULT now()
);

-- Recomputes the snapshot for every symbol in `symbols` or in a universe (bars of other tickers
-- are never read by the universe functions). Call after the EOD load (the universe sync does so
-- before it rebuilds universes). One transaction: readers see the old or the new snapshot, and
-- rows of symbols that no longer qualify are removed. Returns the number of rows written.
CREATE FUNCTION refresh_symbol_liquidity(p_lookback_days integer DEFAULT 20)
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
  RETURN v_rows;
END;
$$;

-- Same contract as in 0120 (see there); now snapshot-first with a live fallback per member.
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
  LEFT JOIN symbols s ON s.symbol = m.symbol
  LEFT JOIN symbol_liquidity sl
    ON sl.symbol = m.symbol AND sl.as_of_date = v_latest AND sl.lookback_days = v_lookback
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

-- Same document as in 0120; plpgsql for a cached plan, and a hashed DISTINCT instead of a sort.
CREATE OR REPLACE FUNCTION get_etf_universes_summary()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_summary jsonb;
  v_distinct bigint;
BEGIN
  SELECT count(*) INTO v_distinct
  FROM (
    SELECT DISTINCT m.symbol
    FROM universes e
    JOIN universe_members m ON m.universe_id = e.id
    WHERE e.category = 'etf'
  ) d;

  SELECT jsonb_build_object(
    'universe_count', count(*),
    'total_memberships', coalesce(sum(u.symbol_count), 0),
    'distinct_symbols', v_distinct,
    'last_universe_update', max(u.last_universe_update),
    'universes', coalesce(jsonb_agg(jsonb_build_object(
        'theme', u.name,
        'symbol_count', u.symbol_count,
        'last_universe_update', u.last_universe_update,
        'liquidity_filter', u.liquidity_filter,
        'metadata', u.metadata
      ) ORDER BY u.name), '[]'::jsonb)
  ) INTO v_summary
  FROM universes u
  WHERE u.category = 'etf';
  RETURN v_summary;
END;
$$;
