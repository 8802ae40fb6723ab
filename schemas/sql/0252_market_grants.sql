-- Rights on the market objects of 0250/0251 (roles: 0090_roles; 0210 revoked PUBLIC's EXECUTE on
-- new functions). The market jobs run the queue functions; the app reads the compatibility view.
DO $grants$
DECLARE
  s text := current_schema();
  fn record;
BEGIN
  FOR fn IN
    SELECT p.oid::regprocedure AS sig FROM pg_proc p
    WHERE p.pronamespace = s::regnamespace
      AND p.proname IN ('claim_symbols_for_processing', 'symbols_for_processing_type',
                        'queue_type_symbols_for_session')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO tickstock_market', fn.sig);
  END LOOP;
  EXECUTE format('GRANT SELECT ON %I.cache_entries TO tickstock_app, tickstock_market', s);
END
$grants$;
