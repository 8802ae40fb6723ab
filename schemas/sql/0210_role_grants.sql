-- Least privilege per component in this schema (the migration runs once per schema: the tests'
-- schemas, scenario markets and public each get their own grants). Roles come from 0090_roles.
--
-- Nothing is granted by default: tables created by later migrations are reachable only by the
-- owner until that migration grants them to the component that needs them (health 0220+,
-- trading 0300+, router 0400+ grant their own tables).

-- The app's own table, the only one it writes: per-user settings of the stock-market app.
CREATE TABLE IF NOT EXISTS app_preferences (
  user_id text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
  key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_.]{0,63}$'),
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);

DO $grants$
DECLARE
  s text := current_schema();
  market_tables text[] := ARRAY['symbols', 'ohlcv_daily', 'equity_types', 'equity_processing_queue',
    'universes', 'universe_members', 'universe_changes', 'data_quality_alerts', 'data_quality_metrics',
    'symbol_liquidity', 'market_outbox', 'eod_runs', 'universe_sync_runs'];
  -- What the app reads: market data and the state of the runs, not the jobs' queue and outbox.
  app_tables text[] := ARRAY['symbols', 'ohlcv_daily', 'equity_types', 'universes', 'universe_members',
    'universe_changes', 'data_quality_alerts', 'data_quality_metrics', 'symbol_liquidity', 'eod_runs',
    'universe_sync_runs', 'schema_migrations'];
  app_functions text[] := ARRAY['get_universe_symbols', 'get_symbol_universes', 'get_etf_universe',
    'get_etf_universes_summary', 'validate_universe_symbols', 'validate_etf_universe_symbols'];
  market_functions text[] := app_functions || ARRAY['get_equity_processing_config',
    'queue_symbols_for_processing', 'get_symbols_for_processing', 'complete_symbol_processing',
    'update_processing_stats', 'update_universe', 'update_etf_universe', 'refresh_symbol_liquidity'];
  t text;
  fn record;
BEGIN
  EXECUTE format(
    'GRANT USAGE ON SCHEMA %I TO tickstock_app, tickstock_market, tickstock_health, tickstock_trading, tickstock_router',
    s
  );

  -- PostgreSQL lets PUBLIC execute every new function; here only the roles granted below may.
  EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', s);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', s);

  -- Market jobs: read and write the market tables, run the market functions.
  FOREACH t IN ARRAY market_tables LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO tickstock_market', s, t);
  END LOOP;
  FOR fn IN
    SELECT p.oid::regprocedure AS sig, p.proname = ANY (app_functions) AS app
    FROM pg_proc p
    WHERE p.pronamespace = s::regnamespace AND p.proname = ANY (market_functions)
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tickstock_market', fn.sig);
    -- The app: its read functions only.
    IF fn.app THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tickstock_app', fn.sig);
    END IF;
  END LOOP;

  -- Health ETL: its record store only (no market table, and the market role none of these).
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.health_records, %I.health_ingests TO tickstock_health', s, s);

  -- The app: reads, and writes its own preferences.
  FOREACH t IN ARRAY app_tables LOOP
    EXECUTE format('GRANT SELECT ON %I.%I TO tickstock_app', s, t);
  END LOOP;
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.app_preferences TO tickstock_app', s);
END
$grants$;
