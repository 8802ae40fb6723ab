-- The trading system's rights on its own tables (roles: 0090_roles; the schema's USAGE: 0210).
-- Events are append-only for the role too: INSERT and SELECT, never UPDATE or DELETE (the trigger
-- of 0300 refuses those even for the owner). Projections are rewritten with every append; the
-- outbox is marked delivered by the broker adapter. The app reads nothing of trading.
DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tickstock_trading', s);
  EXECUTE format('GRANT SELECT, INSERT ON %I.trading_events TO tickstock_trading', s);
  EXECUTE format(
    'GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.trading_orders, %1$I.trading_positions, %1$I.trading_accounts,
       %1$I.trading_states, %1$I.trading_state_log, %1$I.trading_breakers, %1$I.trading_outbox TO tickstock_trading',
    s
  );
END
$grants$;
