-- Least privilege for the trading system (issue 13): only what the engine and its outbox dispatcher
-- do (lambdas/trading/pg-store.ts), nothing more. 0301 granted SELECT, INSERT, UPDATE and DELETE on
-- every projection and the outbox; the engine never deletes a row, never rewrites the state log (an
-- audit trail, like the events) and changes nothing of an outbox row but its delivery time.
--
--   trading_events                           SELECT, INSERT                (append-only: 0301, unchanged)
--   trading_orders, _positions, _accounts,
--   _states, _breakers                       SELECT, INSERT, UPDATE        (upserts in the append)
--   trading_state_log                        SELECT, INSERT
--   trading_outbox                           SELECT, INSERT, UPDATE (delivered_at) only
DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format(
    'REVOKE DELETE ON %1$I.trading_orders, %1$I.trading_positions, %1$I.trading_accounts, %1$I.trading_states,
       %1$I.trading_state_log, %1$I.trading_breakers, %1$I.trading_outbox FROM tickstock_trading',
    s
  );
  EXECUTE format('REVOKE UPDATE ON %I.trading_state_log FROM tickstock_trading', s);
  EXECUTE format('REVOKE UPDATE ON %I.trading_outbox FROM tickstock_trading', s);
  EXECUTE format('GRANT UPDATE (delivered_at) ON %I.trading_outbox TO tickstock_trading', s);
END
$grants$;
