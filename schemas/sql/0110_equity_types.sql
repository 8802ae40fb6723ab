-- Equity types (how each kind of instrument is processed) and the per-type processing queue, with
-- the SQL functions the app and the jobs call.
--
-- Every function pins `SET search_path FROM CURRENT`: it captures the schema the migration ran in,
-- so a function in a scenario/test schema keeps reading its own tables even when called from a
-- session whose search_path points elsewhere (and a caller cannot shadow a table by search_path).

CREATE TABLE equity_types (
  type_name text PRIMARY KEY CHECK (type_name ~ '^[A-Z][A-Z0-9_]*$'),
  description text,
  update_frequency text NOT NULL
    CHECK (update_frequency IN ('realtime', 'intraday', 'daily', 'weekly', 'manual')),
  -- Free-form per-type rules; the queue functions read max_attempts, lease_seconds and
  -- retry_delay_seconds from here (defaults in the functions when absent).
  processing_rules jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(processing_rules) = 'object'),
  priority_level integer NOT NULL CHECK (priority_level BETWEEN 0 AND 1000),
  batch_size integer NOT NULL CHECK (batch_size > 0),
  rate_limit_ms integer NOT NULL CHECK (rate_limit_ms >= 0),
  requires_eod_validation boolean NOT NULL DEFAULT true,
  -- Running statistics, written only by update_processing_stats().
  total_runs bigint NOT NULL DEFAULT 0,
  total_processed bigint NOT NULL DEFAULT 0,
  total_failed bigint NOT NULL DEFAULT 0,
  total_processing_seconds double precision NOT NULL DEFAULT 0,
  last_run_processed integer,
  last_run_failed integer,
  last_run_seconds double precision,
  last_processed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The six types of the replaced system, with its numbers. ETN, STOCK_EOD and PENNY_STOCK had no
-- documented frequency; they are end-of-day instruments, hence daily.
INSERT INTO equity_types
  (type_name, description, update_frequency, processing_rules, priority_level, batch_size,
   rate_limit_ms, requires_eod_validation)
VALUES
  ('STOCK_REALTIME', 'Stocks with intraday (real-time) updates', 'realtime',
   '{"timeframes": ["1min", "daily"], "max_attempts": 3, "lease_seconds": 300, "retry_delay_seconds": 30}',
   100, 25, 6000, true),
  ('ETF', 'Exchange-traded funds', 'daily',
   '{"timeframes": ["daily"], "track_aum": true, "max_attempts": 3, "lease_seconds": 900, "retry_delay_seconds": 60}',
   90, 50, 12000, true),
  ('ETN', 'Exchange-traded notes', 'daily',
   '{"timeframes": ["daily"], "max_attempts": 3, "lease_seconds": 900, "retry_delay_seconds": 60}',
   70, 25, 15000, true),
  ('STOCK_EOD', 'Stocks updated once per day after the close', 'daily',
   '{"timeframes": ["daily"], "max_attempts": 3, "lease_seconds": 900, "retry_delay_seconds": 60}',
   50, 100, 12000, true),
  ('PENNY_STOCK', 'Low-priced stocks (thin, noisy data)', 'daily',
   '{"timeframes": ["daily"], "max_price": 5, "max_attempts": 3, "lease_seconds": 900, "retry_delay_seconds": 120}',
   30, 50, 20000, true),
  ('DEV_TESTING', 'Development and test symbols (never validated against EOD)', 'manual',
   '{"timeframes": ["daily"], "max_attempts": 1, "lease_seconds": 300, "retry_delay_seconds": 0}',
   10, 10, 6000, false)
ON CONFLICT (type_name) DO NOTHING;

-- One row per queued unit of work. Uniqueness (see the partial index below): a symbol is queued at
-- most once per type WHILE it is pending or processing. That is what an operator expects: queuing
-- SPY twice before it ran does nothing; once it completed (or finally failed), tomorrow's run can
-- queue it again, and the finished rows stay as history.
CREATE TABLE equity_processing_queue (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type text NOT NULL REFERENCES equity_types (type_name) ON UPDATE CASCADE,
  -- No FK to symbols: an IPO is queued for backfill before or while its symbol row is written.
  symbol text NOT NULL CHECK (symbol ~ '^\S{1,32}$'),
  priority integer NOT NULL,
  scheduled_time timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_attempt timestamptz,
  error text,
  completed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT equity_processing_queue_completed_has_time
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);

-- The real unique key behind queue_symbols_for_processing's ON CONFLICT.
CREATE UNIQUE INDEX equity_processing_queue_active_key
  ON equity_processing_queue (type, symbol) WHERE status IN ('pending', 'processing');
-- Dispatch order: highest priority first, then oldest schedule.
CREATE INDEX equity_processing_queue_dispatch_idx
  ON equity_processing_queue (type, priority DESC, scheduled_time, id) WHERE status = 'pending';
-- Lease expiry sweep.
CREATE INDEX equity_processing_queue_processing_idx
  ON equity_processing_queue (type, last_attempt) WHERE status = 'processing';

-- A named SQLSTATE so callers can tell "unknown type" from other failures (class TS = TickStock).
-- TS001 unknown equity type.

CREATE FUNCTION get_equity_processing_config(p_type text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT jsonb_build_object(
    'type_name', t.type_name,
    'description', t.description,
    'update_frequency', t.update_frequency,
    'processing_rules', t.processing_rules,
    'priority_level', t.priority_level,
    'batch_size', t.batch_size,
    'rate_limit_ms', t.rate_limit_ms,
    'requires_eod_validation', t.requires_eod_validation,
    'stats', jsonb_build_object(
      'total_runs', t.total_runs,
      'total_processed', t.total_processed,
      'total_failed', t.total_failed,
      'total_processing_seconds', t.total_processing_seconds,
      'last_run_processed', t.last_run_processed,
      'last_run_failed', t.last_run_failed,
      'last_run_seconds', t.last_run_seconds,
      'last_processed_at', t.last_processed_at
    ),
    'queue', jsonb_build_object(
      'pending', (SELECT count(*) FROM equity_processing_queue q
                  WHERE q.type = t.type_name AND q.status = 'pending'),
      'processing', (SELECT count(*) FROM equity_processing_queue q
                     WHERE q.type = t.type_name AND q.status = 'processing')
    )
  )
  FROM equity_types t
  WHERE t.type_name = p_type
$$;
COMMENT ON FUNCTION get_equity_processing_config(text) IS
  'Configuration, statistics and queue depth of one equity type as jsonb; NULL for an unknown type.';

-- Queues symbols once per type (see the unique index). Returns how many were actually queued, so
-- re-queuing a symbol that is already pending or processing counts 0. Duplicates, NULLs and blanks
-- in the input are ignored; priority defaults to the type's priority_level.
CREATE FUNCTION queue_symbols_for_processing(
  p_type text,
  p_symbols text[],
  p_priority integer DEFAULT NULL,
  p_scheduled_time timestamptz DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_priority integer;
  v_queued integer;
BEGIN
  SELECT coalesce(p_priority, t.priority_level) INTO v_priority
  FROM equity_types t WHERE t.type_name = p_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;

  WITH inserted AS (
    INSERT INTO equity_processing_queue (type, symbol, priority, scheduled_time)
    SELECT DISTINCT p_type, btrim(s), v_priority, coalesce(p_scheduled_time, now())
    FROM unnest(coalesce(p_symbols, '{}'::text[])) AS s
    WHERE s IS NOT NULL AND btrim(s) <> ''
    ON CONFLICT (type, symbol) WHERE status IN ('pending', 'processing') DO NOTHING
    RETURNING 1
  )
  SELECT count(*)::integer INTO v_queued FROM inserted;
  RETURN v_queued;
END;
$$;

-- Claims up to p_limit (default: the type's batch_size) due symbols, highest priority first, and
-- moves them to 'processing' in the same statement. FOR UPDATE SKIP LOCKED lets several
-- dispatchers run at once: each claims a disjoint set and none waits on another's rows. A claim
-- whose lease (processing_rules.lease_seconds, default 900) expired - its worker died - is put back
-- to pending first, or failed when it has used max_attempts.
CREATE FUNCTION get_symbols_for_processing(p_type text, p_limit integer DEFAULT NULL)
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

-- Reports the outcome of one claimed symbol. Success -> completed. Failure -> back to pending after
-- retry_delay_seconds x attempts while attempts < max_attempts, else failed. Returns the new status,
-- or NULL when the symbol had no claim (already reported, or its lease was reclaimed).
CREATE FUNCTION complete_symbol_processing(p_type text, p_symbol text, p_error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_rules jsonb;
  v_status text;
BEGIN
  SELECT t.processing_rules INTO v_rules FROM equity_types t WHERE t.type_name = p_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;

  UPDATE equity_processing_queue q
  SET status = CASE
        WHEN p_error IS NULL THEN 'completed'
        WHEN q.attempts >= coalesce((v_rules ->> 'max_attempts')::integer, 3) THEN 'failed'
        ELSE 'pending'
      END,
      completed_at = CASE WHEN p_error IS NULL THEN now() END,
      error = p_error,
      scheduled_time = CASE
        WHEN p_error IS NULL THEN q.scheduled_time
        ELSE now() + make_interval(
          secs => coalesce((v_rules ->> 'retry_delay_seconds')::numeric, 60) * q.attempts)
      END
  WHERE q.type = p_type AND q.symbol = p_symbol AND q.status = 'processing'
  RETURNING q.status INTO v_status;
  RETURN v_status;
END;
$$;

-- Adds one run's figures to the type's running statistics and returns the new statistics.
CREATE FUNCTION update_processing_stats(
  p_type text,
  p_processed integer,
  p_failed integer,
  p_seconds double precision
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_stats jsonb;
BEGIN
  IF p_processed IS NULL OR p_failed IS NULL OR p_seconds IS NULL
     OR p_processed < 0 OR p_failed < 0 OR p_seconds < 0 OR p_seconds = 'Infinity' OR p_seconds = 'NaN' THEN
    RAISE EXCEPTION 'processing stats must be finite and non-negative (processed %, failed %, seconds %)',
      p_processed, p_failed, p_seconds USING ERRCODE = 'invalid_parameter_value';
  END IF;

  UPDATE equity_types t
  SET total_runs = t.total_runs + 1,
      total_processed = t.total_processed + p_processed,
      total_failed = t.total_failed + p_failed,
      total_processing_seconds = t.total_processing_seconds + p_seconds,
      last_run_processed = p_processed,
      last_run_failed = p_failed,
      last_run_seconds = p_seconds,
      last_processed_at = now(),
      updated_at = now()
  WHERE t.type_name = p_type
  RETURNING jsonb_build_object(
    'total_runs', t.total_runs,
    'total_processed', t.total_processed,
    'total_failed', t.total_failed,
    'total_processing_seconds', t.total_processing_seconds,
    'last_run_processed', t.last_run_processed,
    'last_run_failed', t.last_run_failed,
    'last_run_seconds', t.last_run_seconds,
    'last_processed_at', t.last_processed_at
  ) INTO v_stats;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown equity type: %', p_type USING ERRCODE = 'TS001';
  END IF;
  RETURN v_stats;
END;
$$;
