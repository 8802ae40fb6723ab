-- Minute bars from the real-time router (issue 12): every delivered AM bar, corrections included,
-- through SQS and the RouterBars consumer. One row per (symbol, bar_start); a correction replaces
-- the values and counts in `revisions`. (published_at, router_offset) is the version: an older
-- message (a redelivery of the original after its correction) never overwrites a newer one.
CREATE TABLE IF NOT EXISTS realtime_minute_bars (
  symbol        text             NOT NULL CHECK (symbol ~ '^\S{1,32}$'),
  bar_start     timestamptz      NOT NULL,
  bar_end       timestamptz      NOT NULL,
  open          double precision NOT NULL,
  high          double precision NOT NULL,
  low           double precision NOT NULL,
  close         double precision NOT NULL,
  volume        double precision NOT NULL CHECK (volume >= 0),
  vwap          double precision CHECK (vwap IS NULL OR vwap >= 0),
  correction    boolean          NOT NULL DEFAULT false,
  revisions     integer          NOT NULL DEFAULT 0,
  router_epoch  text             NOT NULL,
  router_offset bigint           NOT NULL,
  published_at  timestamptz      NOT NULL,
  created_at    timestamptz      NOT NULL DEFAULT now(),
  updated_at    timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, bar_start),
  CHECK (bar_end > bar_start),
  CHECK (low >= 0 AND high >= greatest(open, close) AND low <= least(open, close))
);

-- The app reads the latest minutes across symbols.
CREATE INDEX IF NOT EXISTS realtime_minute_bars_start ON realtime_minute_bars (bar_start);
