-- The seeds' get_symbols_for_processing(type, limit) READS the due symbols of a type; 0110 made it
-- claim them (a second call returned nothing). The claim keeps its behaviour under its own name,
-- claim_symbols_for_processing, and the seed's name gets its reading meaning back (same signature
-- and columns, so old callers keep compiling; they now see the queue without changing it).
CREATE FUNCTION claim_symbols_for_processing(p_type text, p_limit integer DEFAULT NULL)
RETURNS TABLE (
  queue_id bigint,
  symbol text,
  priority integer,
  scheduled_time timestamptz,
  attempts integer
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_type equity_types%ROWTYPE;
  v_limit integer;
  v_lease interval;
  v_max_attempts integer;
BEGIN
  SELECT * INTO v_type FROM equity_types t WHERE t.type_name = p_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;
  v_limit := coalesce(p_limit, v_type.batch_size);
  IF v_limit <= 0 THEN
    RETURN;
  END IF;
  v_lease := make_interval(secs => coalesce((v_type.processing_rules ->> 'lease_seconds')::numeric, 900));
  v_max_attempts := coalesce((v_type.processing_rules ->> 'max_attempts')::integer, 3);

  UPDATE equity_processing_queue q
  SET status = CASE WHEN q.attempts >= v_max_attempts THEN 'failed' ELSE 'pending' END,
      error = 'lease expired after ' || v_lease::text || ' (worker did not report)'
  WHERE q.id IN (
    SELECT e.id FROM equity_processing_queue e
    WHERE e.type = p_type AND e.status = 'processing' AND e.last_attempt < now() - v_lease
    FOR UPDATE SKIP LOCKED
  );

  RETURN QUERY
  WITH picked AS (
    SELECT e.id FROM equity_processing_queue e
    WHERE e.type = p_type AND e.status = 'pending' AND e.scheduled_time <= now()
    ORDER BY e.priority DESC, e.scheduled_time, e.id
    LIMIT v_limit
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE equity_processing_queue q
    SET status = 'processing', attempts = q.attempts + 1, last_attempt = now()
    FROM picked
    WHERE q.id = picked.id
    RETURNING q.id, q.symbol, q.priority, q.scheduled_time, q.attempts
  )
  SELECT c.id, c.symbol, c.priority, c.scheduled_time, c.attempts
  FROM claimed c
  ORDER BY c.priority DESC, c.scheduled_time, c.id;
END;
$$;

-- Reading only: the due pending symbols of a type in dispatch order, up to p_limit (default: the
-- type's batch_size). Calling it twice returns the same rows.
CREATE OR REPLACE FUNCTION get_symbols_for_processing(p_type text, p_limit integer DEFAULT NULL)
RETURNS TABLE (
  queue_id bigint,
  symbol text,
  priority integer,
  scheduled_time timestamptz,
  attempts integer
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_limit integer;
BEGIN
  SELECT coalesce(p_limit, t.batch_size) INTO v_limit FROM equity_types t WHERE t.type_name = p_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;
  RETURN QUERY
  SELECT e.id, e.symbol, e.priority, e.scheduled_time, e.attempts
  FROM equity_processing_queue e
  WHERE e.type = p_type AND e.status = 'pending' AND e.scheduled_time <= now()
  ORDER BY e.priority DESC, e.scheduled_time, e.id
  LIMIT greatest(v_limit, 0);
END;
$$;

-- Which symbols a processing type takes (active symbols only):
--   STOCK_EOD      every active common stock (CS) not priced as a penny stock
--   PENNY_STOCK    active common stocks whose latest close is below processing_rules.max_price (5)
--   ETF            the members of the ETF universes (category 'etf') that are active ETFs
--   ETN            every active ETN
--   STOCK_REALTIME / DEV_TESTING / any other type: the members of the universes named in
--                  processing_rules.universes ("category:name"), none when absent (queued by hand)
-- A stock without bars yet counts as STOCK_EOD (its price is unknown, not low).
CREATE FUNCTION symbols_for_processing_type(p_type text)
RETURNS TABLE (symbol text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_rules jsonb;
  v_max_price numeric;
BEGIN
  SELECT t.processing_rules INTO v_rules FROM equity_types t WHERE t.type_name = p_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;
  SELECT coalesce((t.processing_rules ->> 'max_price')::numeric, 5) INTO v_max_price
  FROM equity_types t WHERE t.type_name = 'PENNY_STOCK';
  v_max_price := coalesce(v_max_price, 5);

  IF p_type IN ('STOCK_EOD', 'PENNY_STOCK') THEN
    RETURN QUERY
    SELECT s.symbol FROM symbols s
    LEFT JOIN LATERAL (
      SELECT b.close FROM ohlcv_daily b WHERE b.symbol = s.symbol ORDER BY b.date DESC LIMIT 1
    ) last ON true
    WHERE s.active AND s.type = 'CS'
      AND CASE WHEN p_type = 'PENNY_STOCK' THEN last.close < v_max_price
               ELSE last.close IS NULL OR last.close >= v_max_price END
    ORDER BY s.symbol;
  ELSIF p_type = 'ETF' THEN
    RETURN QUERY
    SELECT DISTINCT m.symbol FROM universes u
    JOIN universe_members m ON m.universe_id = u.id
    JOIN symbols s ON s.symbol = m.symbol AND s.active AND s.type = 'ETF'
    WHERE u.category = 'etf'
    ORDER BY m.symbol;
  ELSIF p_type = 'ETN' THEN
    RETURN QUERY SELECT s.symbol FROM symbols s WHERE s.active AND s.type = 'ETN' ORDER BY s.symbol;
  ELSE
    RETURN QUERY
    SELECT DISTINCT m.symbol FROM universes u
    JOIN universe_members m ON m.universe_id = u.id
    JOIN symbols s ON s.symbol = m.symbol AND s.active
    WHERE u.category || ':' || u.name IN (
      SELECT jsonb_array_elements_text(coalesce(v_rules -> 'universes', '[]'::jsonb)))
    ORDER BY m.symbol;
  END IF;
END;
$$;

-- Queues a type's symbols for one session, once: a symbol that already has a row for the type
-- scheduled on or after p_session (pending, processing, completed or failed) is not queued again,
-- so a dispatcher running every 15 minutes queues each symbol once per session. Returns how many.
CREATE FUNCTION queue_type_symbols_for_session(p_type text, p_session date, p_scheduled_time timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
  RETURN queue_symbols_for_processing(
    p_type,
    ARRAY(
      SELECT t.symbol FROM symbols_for_processing_type(p_type) t
      WHERE NOT EXISTS (
        SELECT 1 FROM equity_processing_queue q
        WHERE q.type = p_type AND q.symbol = t.symbol AND q.scheduled_time >= p_session::timestamptz)
    ),
    NULL,
    p_scheduled_time);
END;
$$;
