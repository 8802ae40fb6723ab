-- Data quality: alerts raised by the daily check and one metrics row per trading date.

CREATE TABLE data_quality_alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- price_anomaly, volume_anomaly, data_gap, stale_data, ... (an open set of snake_case names: a new
  -- check adds a type without a migration).
  alert_type text NOT NULL CHECK (alert_type ~ '^[a-z][a-z0-9_]*$'),
  -- NULL for a market-wide alert (e.g. no bars at all for a trading date).
  symbol text CHECK (symbol ~ '^\S{1,32}$'),
  severity text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  description text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  remediation text,
  -- The trading date the finding is about (not when the check ran): the dedup key's date.
  trade_date date NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  resolved_by text,
  resolution_notes text,
  -- A re-run of the same check for the same date finds the same problem: it must update the alert,
  -- not add a second one. The real unique key behind
  --   INSERT ... ON CONFLICT (alert_type, symbol, trade_date) DO UPDATE ...
  -- NULLS NOT DISTINCT (PostgreSQL 15+) so market-wide alerts (symbol NULL) dedup as well.
  CONSTRAINT data_quality_alerts_dedup_key UNIQUE NULLS NOT DISTINCT (alert_type, symbol, trade_date),
  CONSTRAINT data_quality_alerts_resolution_needs_time
    CHECK (resolved_at IS NOT NULL OR (resolved_by IS NULL AND resolution_notes IS NULL))
);
-- The app's open-alerts view, most severe and newest first.
CREATE INDEX data_quality_alerts_open_idx
  ON data_quality_alerts (trade_date DESC, severity) WHERE resolved_at IS NULL;
CREATE INDEX data_quality_alerts_symbol_idx ON data_quality_alerts (symbol, trade_date DESC);

-- One row per trading date; the check upserts it with ON CONFLICT (trade_date).
CREATE TABLE data_quality_metrics (
  trade_date date PRIMARY KEY,
  symbols_checked integer NOT NULL CHECK (symbols_checked >= 0),
  symbols_with_alerts integer NOT NULL DEFAULT 0 CHECK (symbols_with_alerts >= 0),
  total_alerts integer NOT NULL DEFAULT 0 CHECK (total_alerts >= 0),
  -- {"price_anomaly": 3, "volume_anomaly": 12, ...}: by type as jsonb because the set of types is open.
  alert_counts jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(alert_counts) = 'object'),
  -- {"low": 0, "medium": 10, "high": 4, "critical": 1}
  severity_counts jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(severity_counts) = 'object'),
  -- Percent of expected bars present (0-100) and the derived 0-100 score.
  completeness_pct numeric(5, 2) CHECK (completeness_pct BETWEEN 0 AND 100),
  quality_score numeric(5, 2) CHECK (quality_score BETWEEN 0 AND 100),
  details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (symbols_with_alerts <= symbols_checked)
);
