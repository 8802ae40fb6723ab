-- Rolling return correlations of the ETF universes (lambdas/market/etf-correlation), written by the
-- EOD chain's correlation step after the universe sync. One row per (ETF, peer, relation):
--   relation 'theme'  - another ETF of the same etf/<theme> universe (both directions stored, so
--                       "the correlations of X" is one index range);
--   relation 'market' - the broad-market benchmark (SPY when it trades, else the largest fund of
--                       etf/broad_market).
-- correlation is over the daily log returns of the last window_sessions sessions up to as_of
-- (observations = sessions where both had a return). published_correlation is the value last
-- announced on tickstock.etf.correlation_update: a change is published only when it moves at least
-- the step's threshold away from it, so a re-run that changes nothing publishes nothing.
CREATE TABLE etf_correlations (
  symbol text NOT NULL,
  peer text NOT NULL,
  relation text NOT NULL CHECK (relation IN ('theme', 'market')),
  theme text NOT NULL,
  window_sessions integer NOT NULL CHECK (window_sessions > 1),
  as_of date NOT NULL,
  observations integer NOT NULL CHECK (observations >= 0),
  correlation double precision NOT NULL CHECK (correlation BETWEEN -1 AND 1),
  published_correlation double precision CHECK (published_correlation BETWEEN -1 AND 1),
  published_as_of date,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, relation, peer),
  CHECK (symbol <> peer)
);

CREATE INDEX etf_correlations_theme_idx ON etf_correlations (theme, symbol);

-- One row per run (trade date): what the step computed, for the operator and for idempotence tests.
CREATE TABLE etf_correlation_runs (
  trade_date date PRIMARY KEY,
  window_sessions integer NOT NULL,
  benchmark text,
  etfs integer NOT NULL,
  pairs integer NOT NULL,
  published integer NOT NULL,
  runs integer NOT NULL DEFAULT 1,
  last_run_at timestamptz NOT NULL DEFAULT now()
);

DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.etf_correlations, %I.etf_correlation_runs TO tickstock_market', s, s);
  EXECUTE format('GRANT SELECT ON %I.etf_correlations, %I.etf_correlation_runs TO tickstock_app', s, s);
END
$grants$;
