-- Universes (the replaced system's "cache entries"): named symbol sets the app offers - market-cap
-- tiers, sector leaders, themes, ETF themes, IPOs - with their change log and the functions the
-- app and the universe sync call.
--
-- Design: one row per universe plus one row per (universe, symbol) membership, instead of a jsonb
-- array per universe. Reads are index lookups (a 200-symbol universe is one PK range scan), "which
-- universes hold X" is an index lookup on symbol, and a sync computes added/removed with set
-- operations. A sync rewrites universes inside one transaction (update_universe() is one statement
-- from the caller's view; a caller may wrap many in one BEGIN/COMMIT): under MVCC readers keep
-- seeing the previous committed membership until COMMIT and never a half-updated set, and they
-- never block on the writer.
--
-- Names: a universe is identified by (category, name); name is lower snake case ("growth",
-- "top_100", "sector_technology"). For category 'etf' the name is the theme that
-- get_etf_universe(theme) takes.

CREATE TABLE universes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  category text NOT NULL
    CHECK (category IN ('market_cap', 'sector', 'industry', 'theme', 'etf', 'ipo', 'custom')),
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_]{0,62}$'),
  description text,
  -- Keys understood by get_etf_universe(): min_avg_volume, min_avg_dollar_volume, min_price,
  -- min_aum, lookback_days (default 20). An empty object filters nothing but inactive symbols.
  liquidity_filter jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(liquidity_filter) = 'object'),
  metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  -- Kept in step with universe_members by update_universe(), so the summary reads no members.
  symbol_count integer NOT NULL DEFAULT 0 CHECK (symbol_count >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_universe_update timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT universes_category_name_key UNIQUE (category, name)
);
CREATE INDEX universes_last_update_idx ON universes (last_universe_update DESC);

CREATE TABLE universe_members (
  universe_id bigint NOT NULL REFERENCES universes (id) ON DELETE CASCADE,
  -- No FK to symbols: a universe may name a symbol the master does not hold (yet); that is exactly
  -- what validate_universe_symbols() reports and the delisting cleanup removes.
  symbol text NOT NULL CHECK (symbol ~ '^\S{1,32}$'),
  -- Position in the list as given (top-N lists are ranked), 1-based.
  ordinal integer NOT NULL CHECK (ordinal > 0),
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (universe_id, symbol)
);
CREATE INDEX universe_members_symbol_idx ON universe_members (symbol);

-- Audit log of every membership change. Universe named by text (not FK) so the history outlives a
-- dropped universe.
CREATE TABLE universe_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- What caused it: etf_universe_update, market_cap_rebalance, ipo_assignment, delisting_cleanup, ...
  change_type text NOT NULL CHECK (change_type ~ '^[a-z][a-z0-9_]*$'),
  category text NOT NULL,
  universe text NOT NULL,
  symbol text NOT NULL,
  action text NOT NULL CHECK (action IN ('added', 'removed')),
  reason text,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX universe_changes_universe_idx ON universe_changes (category, universe, changed_at DESC);
CREATE INDEX universe_changes_symbol_idx ON universe_changes (symbol, changed_at DESC);
CREATE INDEX universe_changes_changed_at_idx ON universe_changes (changed_at DESC);

-- Replaces the membership of universe (category, name) with p_symbols and returns what changed:
-- {"category", "universe", "created", "added": [...], "removed": [...], "symbol_count"}.
-- p_symbols is a jsonb array of tickers or of objects with a "symbol" key (order = ordinal; the
-- first occurrence of a duplicate wins). p_metadata / p_liquidity_filter replace the stored values
-- when given, are kept when NULL. Every added/removed symbol gets a universe_changes row.
-- The universe row is locked first, so two syncs of one universe serialise instead of computing
-- their differences from the same old membership.
CREATE FUNCTION update_universe(
  p_category text,
  p_name text,
  p_symbols jsonb,
  p_metadata jsonb DEFAULT NULL,
  p_liquidity_filter jsonb DEFAULT NULL,
  p_change_type text DEFAULT NULL,
  p_reason text DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_id bigint;
  v_created boolean := false;
  v_symbols text[];
  v_bad jsonb;
  v_added text[];
  v_removed text[];
  v_count integer;
  v_change_type text := coalesce(p_change_type, p_category || '_universe_update');
BEGIN
  IF p_symbols IS NULL OR jsonb_typeof(p_symbols) <> 'array' THEN
    RAISE EXCEPTION 'universe %/% symbols must be a jsonb array, got %', p_category, p_name,
      coalesce(jsonb_typeof(p_symbols), 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;

  SELECT jsonb_agg(e) INTO v_bad
  FROM jsonb_array_elements(p_symbols) AS e
  WHERE coalesce(btrim(CASE jsonb_typeof(e)
                         WHEN 'string' THEN e #>> '{}'
                         WHEN 'object' THEN e ->> 'symbol'
                       END), '') !~ '^\S{1,32}$';
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'universe %/% has invalid symbol entries: %', p_category, p_name, v_bad
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  SELECT coalesce(array_agg(sym ORDER BY first_ord), '{}') INTO v_symbols
  FROM (
    SELECT sym, min(ord) AS first_ord
    FROM (
      SELECT btrim(CASE jsonb_typeof(e) WHEN 'string' THEN e #>> '{}' ELSE e ->> 'symbol' END) AS sym, ord
      FROM jsonb_array_elements(p_symbols) WITH ORDINALITY AS x (e, ord)
    ) parsed
    GROUP BY sym
  ) deduped;

  SELECT u.id INTO v_id FROM universes u
  WHERE u.category = p_category AND u.name = p_name
  FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO universes (category, name, metadata, liquidity_filter)
    VALUES (p_category, p_name, coalesce(p_metadata, '{}'), coalesce(p_liquidity_filter, '{}'))
    ON CONFLICT ON CONSTRAINT universes_category_name_key DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NOT NULL THEN
      v_created := true;
    ELSE
      -- Another transaction created it between our SELECT and INSERT; take its row.
      SELECT u.id INTO STRICT v_id FROM universes u
      WHERE u.category = p_category AND u.name = p_name
      FOR UPDATE;
    END IF;
  END IF;

  WITH gone AS (
    DELETE FROM universe_members m
    WHERE m.universe_id = v_id AND NOT (m.symbol = ANY (v_symbols))
    RETURNING m.symbol
  )
  SELECT coalesce(array_agg(g.symbol ORDER BY g.symbol), '{}') INTO v_removed FROM gone g;

  WITH wanted AS (
    SELECT w.symbol, w.ordinal::integer AS ordinal
    FROM unnest(v_symbols) WITH ORDINALITY AS w (symbol, ordinal)
  ), inserted AS (
    INSERT INTO universe_members (universe_id, symbol, ordinal)
    SELECT v_id, w.symbol, w.ordinal FROM wanted w
    ON CONFLICT (universe_id, symbol) DO NOTHING
    RETURNING universe_members.symbol, universe_members.ordinal
  )
  SELECT coalesce(array_agg(i.symbol ORDER BY i.ordinal), '{}') INTO v_added FROM inserted i;

  -- Members that stayed keep their added_at; only their position follows the new list.
  UPDATE universe_members m
  SET ordinal = w.ordinal
  FROM unnest(v_symbols) WITH ORDINALITY AS w (symbol, ordinal)
  WHERE m.universe_id = v_id AND m.symbol = w.symbol AND m.ordinal <> w.ordinal;

  v_count := cardinality(v_symbols);
  UPDATE universes u
  SET symbol_count = v_count,
      metadata = coalesce(p_metadata, u.metadata),
      liquidity_filter = coalesce(p_liquidity_filter, u.liquidity_filter),
      last_universe_update = now()
  WHERE u.id = v_id;

  INSERT INTO universe_changes (change_type, category, universe, symbol, action, reason)
  SELECT v_change_type, p_category, p_name, s, 'added', p_reason FROM unnest(v_added) AS s
  UNION ALL
  SELECT v_change_type, p_category, p_name, s, 'removed', p_reason FROM unnest(v_removed) AS s;

  RETURN jsonb_build_object(
    'category', p_category,
    'universe', p_name,
    'created', v_created,
    'added', to_jsonb(v_added),
    'removed', to_jsonb(v_removed),
    'symbol_count', v_count
  );
END;
$$;

-- The ETF form the app knows: theme = universe name in category 'etf'. A "liquidity_filter" key in
-- p_metadata becomes the universe's liquidity filter, a "reason" key the change-log reason; the rest
-- is stored as metadata.
CREATE FUNCTION update_etf_universe(p_theme text, p_symbols jsonb, p_metadata jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
  SELECT update_universe(
    'etf',
    p_theme,
    p_symbols,
    p_metadata - 'liquidity_filter' - 'reason',
    p_metadata -> 'liquidity_filter',
    'etf_universe_update',
    p_metadata ->> 'reason'
  )
$$;

-- Members of one universe in list order (lookups for any category).
CREATE FUNCTION get_universe_symbols(p_category text, p_name text)
RETURNS TABLE (symbol text, ordinal integer)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT m.symbol, m.ordinal
  FROM universes u
  JOIN universe_members m ON m.universe_id = u.id
  WHERE u.category = p_category AND u.name = p_name
  ORDER BY m.ordinal
$$;

-- Every universe a symbol belongs to.
CREATE FUNCTION get_symbol_universes(p_symbol text)
RETURNS TABLE (category text, universe text, ordinal integer)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT u.category, u.name, m.ordinal
  FROM universe_members m
  JOIN universes u ON u.id = m.universe_id
  WHERE m.symbol = p_symbol
  ORDER BY u.category, u.name
$$;

-- Members of an ETF theme with the figures the liquidity filter looks at: average volume, average
-- dollar volume and last close over the last lookback_days bars (default 20) from ohlcv_daily, and
-- AUM from symbols. With p_apply_liquidity_filter, a member must be a known, active symbol and meet
-- every threshold present in the universe's liquidity_filter (missing data fails a threshold);
-- without it, every member is returned, known or not.
CREATE FUNCTION get_etf_universe(p_theme text, p_apply_liquidity_filter boolean DEFAULT false)
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
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  WITH u AS (
    SELECT u.id, u.liquidity_filter AS f,
           coalesce((u.liquidity_filter ->> 'lookback_days')::integer, 20) AS lookback
    FROM universes u
    WHERE u.category = 'etf' AND u.name = p_theme
  )
  SELECT m.symbol, m.ordinal, s.name, s.type, s.active, s.aum, s.expense_ratio,
         liq.avg_volume, liq.avg_dollar_volume, liq.last_close, liq.last_bar_date
  FROM u
  JOIN universe_members m ON m.universe_id = u.id
  LEFT JOIN symbols s ON s.symbol = m.symbol
  LEFT JOIN LATERAL (
    SELECT avg(r.volume)::double precision AS avg_volume,
           avg(r.close * r.volume) AS avg_dollar_volume,
           (array_agg(r.close ORDER BY r.date DESC))[1] AS last_close,
           max(r.date) AS last_bar_date
    FROM (
      SELECT b.date, b.close, b.volume FROM ohlcv_daily b
      WHERE b.symbol = m.symbol
      ORDER BY b.date DESC
      LIMIT u.lookback
    ) r
  ) liq ON true
  WHERE NOT p_apply_liquidity_filter
     OR (s.active IS TRUE
         AND (s.delisted_at IS NULL OR s.delisted_at > current_date)
         AND (NOT u.f ? 'min_avg_volume' OR liq.avg_volume >= (u.f ->> 'min_avg_volume')::double precision)
         AND (NOT u.f ? 'min_avg_dollar_volume'
              OR liq.avg_dollar_volume >= (u.f ->> 'min_avg_dollar_volume')::double precision)
         AND (NOT u.f ? 'min_price' OR liq.last_close >= (u.f ->> 'min_price')::double precision)
         AND (NOT u.f ? 'min_aum' OR s.aum >= (u.f ->> 'min_aum')::numeric))
  ORDER BY m.ordinal
$$;

-- One jsonb document for the app's ETF overview: totals plus one entry per theme (by name).
CREATE FUNCTION get_etf_universes_summary()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT jsonb_build_object(
    'universe_count', count(*),
    'total_memberships', coalesce(sum(u.symbol_count), 0),
    'distinct_symbols', (SELECT count(DISTINCT m.symbol)
                         FROM universe_members m
                         JOIN universes e ON e.id = m.universe_id
                         WHERE e.category = 'etf'),
    'last_universe_update', max(u.last_universe_update),
    'universes', coalesce(jsonb_agg(jsonb_build_object(
        'theme', u.name,
        'symbol_count', u.symbol_count,
        'last_universe_update', u.last_universe_update,
        'liquidity_filter', u.liquidity_filter,
        'metadata', u.metadata
      ) ORDER BY u.name), '[]'::jsonb)
  )
  FROM universes u
  WHERE u.category = 'etf'
$$;

-- Every member of every universe (or of one category) checked against the symbol master; returns
-- only the problems: 'unknown' (no symbols row) or 'inactive' (inactive, or delisted by today).
CREATE FUNCTION validate_universe_symbols(p_category text DEFAULT NULL)
RETURNS TABLE (category text, universe text, symbol text, issue text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT u.category, u.name, m.symbol,
         CASE WHEN s.symbol IS NULL THEN 'unknown' ELSE 'inactive' END
  FROM universes u
  JOIN universe_members m ON m.universe_id = u.id
  LEFT JOIN symbols s ON s.symbol = m.symbol
  WHERE (p_category IS NULL OR u.category = p_category)
    AND (s.symbol IS NULL OR NOT s.active OR s.delisted_at <= current_date)
  ORDER BY u.category, u.name, m.symbol
$$;

CREATE FUNCTION validate_etf_universe_symbols()
RETURNS TABLE (theme text, symbol text, issue text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT v.universe, v.symbol, v.issue FROM validate_universe_symbols('etf') v
$$;
