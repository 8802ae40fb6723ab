-- The router's bar writer (RouterBars consumer, role tickstock_router) writes the minute bars; the app
-- reads them. Nothing else: no DELETE for the writer, no write for the app (roles: 0090_roles).
DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tickstock_router, tickstock_app', s);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.realtime_minute_bars TO tickstock_router', s);
  EXECUTE format('GRANT SELECT ON %I.realtime_minute_bars TO tickstock_app', s);
END
$grants$;
