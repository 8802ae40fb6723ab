-- Database roles, one group role (NOLOGIN) per component, and one login role per component that is
-- a member of its group only. The migration owner (the admin user that runs migrations and owns
-- every object) is none of them and no role here is a member of it, so a component can never
-- SET ROLE to anything with more rights than its own group.
--
--   tickstock_app      the stock-market app: reads market data, writes only app_preferences
--   tickstock_market   the market jobs (EOD chain, IPO scan, backfill, equity types, quality)
--   tickstock_health   the health ETL (no access to market tables, and vice versa)
--   tickstock_trading  the trading system (its migrations grant on its own tables)
--   tickstock_router   the market-data router (its migrations grant on its own tables)
--
-- Roles are cluster-wide while migrations run per schema and per database (tests use a schema
-- each, several databases share a server), so this file runs many times, sometimes concurrently:
-- each CREATE ROLE is attempted in its own block, and "already exists" from an earlier run
-- (duplicate_object) or from a concurrent one (unique_violation on pg_authid) is success.
DO $roles$
DECLARE
  component text;
BEGIN
  FOREACH component IN ARRAY ARRAY['app', 'market', 'health', 'trading', 'router'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I NOLOGIN', 'tickstock_' || component);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
    -- The login role carries no password: locally the server trusts loopback; in AWS each
    -- function authenticates through RDS Proxy with its own credentials (IAM, below, or a secret).
    BEGIN
      EXECUTE format(
        'CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 50',
        'tickstock_' || component || '_login'
      );
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
    BEGIN
      EXECUTE format('GRANT %I TO %I', 'tickstock_' || component, 'tickstock_' || component || '_login');
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
    -- On RDS, the rds_iam role lets the login role authenticate with an IAM token.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
      EXECUTE format('GRANT rds_iam TO %I', 'tickstock_' || component || '_login');
    END IF;
  END LOOP;
END
$roles$;
