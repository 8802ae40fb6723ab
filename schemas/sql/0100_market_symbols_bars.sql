-- Market data: the symbol master and the one daily-bar table.
--
-- No schema prefixes anywhere: the runner sets search_path to the target schema (public in AWS, a
-- scenario or test schema locally), so the same file builds every copy of these tables.

-- Column names are the snake_case of lambdas/market/types.ts SymbolRecord; the IPO scan, the EOD
-- loader and the universe sync all write here, so they must not drift.
CREATE TABLE symbols (
  -- Polygon tickers are case-significant (preferreds like "ABRpD") and may contain dots ("BRK.A"),
  -- so only blank or whitespace-bearing symbols are refused.
  symbol text PRIMARY KEY CHECK (symbol ~ '^\S{1,32}$'),
  name text,
  -- Polygon type code (CS, ETF, ETN, ADRC, PFD, WARRANT, ...). Not an enum: Polygon adds codes and a
  -- new code must not stop the IPO scan; the universe sync selects the codes it understands.
  type text CHECK (type ~ '^[A-Z]{1,12}$'),
  market text NOT NULL DEFAULT 'stocks',
  primary_exchange text,
  active boolean NOT NULL DEFAULT true,
  market_cap numeric CHECK (market_cap >= 0),
  list_date date,
  sector text,
  industry text,
  sic_code text,
  sic_description text,
  shares_outstanding bigint CHECK (shares_outstanding >= 0),
  -- first_seen: the day the IPO scan first saw the ticker (drives the 30-day IPO assignment);
  -- initial_load_date: the day its history was backfilled (null = backfill still owed).
  first_seen date NOT NULL DEFAULT current_date,
  initial_load_date date,
  delisted_at date,
  updated_at timestamptz NOT NULL DEFAULT now(),
  issuer text,
  aum numeric CHECK (aum >= 0),
  expense_ratio numeric CHECK (expense_ratio >= 0),
  underlying_index text
);

-- Universe building: top-N / tiers by market cap among active symbols of one type.
CREATE INDEX symbols_active_type_market_cap_idx
  ON symbols (type, market_cap DESC NULLS LAST) WHERE active;
-- Sector leaders.
CREATE INDEX symbols_active_sector_idx ON symbols (sector) WHERE active;
-- IPO assignment (first seen in the last 30 days).
CREATE INDEX symbols_first_seen_idx ON symbols (first_seen);

-- Daily bars for every reader and writer (the replaced system's quality monitor read a table
-- nothing wrote; there is exactly one bar table here).
--
-- Prices are double precision, not numeric, on purpose:
--  * the provider sends IEEE-754 doubles (JSON numbers) and JavaScript holds them as doubles, so
--    numeric would store no information the source has; it would only add cost;
--  * float8 is a fixed 8-byte pass-by-value type with hardware arithmetic, while numeric is
--    variable-length software arithmetic: the quality check's window functions (lag, avg over 20
--    rows) over ~2M rows and the 2M-row bulk load are several times faster with float8;
--  * node-postgres returns float8 as a JS number but numeric as a string.
-- Money-exact values (none here: these are market observations, not ledger amounts) would be numeric.
-- The CHECKs compare against 'Infinity' because PostgreSQL orders NaN above every number, so
-- "price > 0" alone would accept NaN; "< 'Infinity'" rejects NaN and both infinities.
--
-- No foreign key to symbols: the grouped-daily endpoint returns bars for every US ticker (warrants,
-- rights, units the symbol master may not track yet), and the EOD load must not fail or drop the
-- whole day over a ticker the IPO scan registers later.
CREATE TABLE ohlcv_daily (
  symbol text NOT NULL CHECK (symbol ~ '^\S{1,32}$'),
  date date NOT NULL,
  open double precision NOT NULL CHECK (open > 0 AND open < 'Infinity'),
  high double precision NOT NULL CHECK (high < 'Infinity'),
  low double precision NOT NULL CHECK (low > 0),
  close double precision NOT NULL CHECK (close > 0 AND close < 'Infinity'),
  volume bigint NOT NULL CHECK (volume >= 0),
  -- Polygon omits vw/n for some thin or synthetic bars; absent is null, never a made-up 0.
  vwap double precision CHECK (vwap > 0 AND vwap < 'Infinity'),
  transactions integer CHECK (transactions >= 0),
  PRIMARY KEY (symbol, date),
  CONSTRAINT ohlcv_daily_high_covers_body CHECK (high >= greatest(open, close)),
  CONSTRAINT ohlcv_daily_low_under_body CHECK (low <= least(open, close))
);

-- The PK (symbol, date) serves per-symbol history and the quality check's per-symbol windows; this
-- one serves per-date scans (EOD completeness, "who has a bar on D", grouped reloads). Only one
-- secondary index: every extra index slows the 2M-row load.
CREATE INDEX ohlcv_daily_date_idx ON ohlcv_daily (date);
