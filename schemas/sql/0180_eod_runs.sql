-- EOD chain bookkeeping: the completion signal of each trade date and the universe syncs run for it.
--
-- Why a table as well as the Redis stream: the universe sync must read the signal of the date it
-- syncs (the replaced synchronizer waited on a Redis list key nobody wrote). The row is written in
-- the same transaction that enqueues the signal in market_outbox, so "signal recorded" and "signal
-- will be published" can never disagree; the app reads the stream, the sync reads this row. Both
-- carry the one payload defined in lambdas/market/eod/signal.ts.

CREATE TABLE eod_runs (
  trade_date date PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('COMPLETE', 'INCOMPLETE')),
  tracked_symbols integer NOT NULL CHECK (tracked_symbols >= 0),
  symbols_with_bar integer NOT NULL CHECK (symbols_with_bar >= 0),
  -- The signal's data exactly as published (parsed back with the shared zod schema).
  signal jsonb NOT NULL CHECK (jsonb_typeof(signal) = 'object'),
  -- The outbox message that carries it (stable across re-runs with the same outcome).
  message_id uuid,
  first_signalled_at timestamptz NOT NULL DEFAULT now(),
  signalled_at timestamptz NOT NULL DEFAULT now()
);

-- One row per trade date a universe sync ran for: lets a re-run that changes nothing publish nothing
-- (the first sync of the date already sent its cache.sync_complete).
CREATE TABLE universe_sync_runs (
  trade_date date PRIMARY KEY,
  runs integer NOT NULL DEFAULT 1 CHECK (runs > 0),
  last_changes integer NOT NULL CHECK (last_changes >= 0),
  last_totals jsonb NOT NULL CHECK (jsonb_typeof(last_totals) = 'object'),
  first_synced_at timestamptz NOT NULL DEFAULT now(),
  last_synced_at timestamptz NOT NULL DEFAULT now()
);
