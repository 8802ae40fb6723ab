-- Transactional outbox of the market-data jobs (IPO scan, backfill, equity processing).
--
-- Why: a job changes the database (new symbol, archived symbol, bars loaded) and must tell the app
-- (Redis) and the next job (SQS) exactly once. Writing the message into this table in the SAME
-- transaction as the change means a crash can never leave "symbol inserted, symbols.new lost" or
-- "symbols.new sent, insert rolled back". A relay then delivers unpublished rows in id order and
-- marks them published. The dedupe_key makes the enqueue itself idempotent: a re-run of the scan
-- for a date, or an SQS redelivery of a backfill, writes no second row, so publishes nothing new.

CREATE TABLE market_outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- e.g. 'symbols.new:ABCD', 'backfill.completed:ABCD:2025-06-02'; unique = enqueued at most once.
  dedupe_key text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 300),
  -- 'channel:<redis channel>' or 'queue:<consumer id in lib/topology>'.
  destination text NOT NULL CHECK (destination ~ '^(channel|queue):[A-Za-z0-9_.-]+$'),
  -- Kept across delivery retries: the envelope's message_id, so a consumer can drop a duplicate and
  -- the relay can tell whether a crashed attempt already reached the stream.
  message_id uuid NOT NULL DEFAULT gen_random_uuid(),
  event_type text NOT NULL,
  payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_attempt_at timestamptz,
  -- A relay claims rows by setting a short lease (committed before it delivers), so relays in other
  -- processes skip them without a lock held across network calls; a relay that dies leaves the
  -- lease to expire and the next one re-checks the stream before re-sending (attempts > 0).
  lease_until timestamptz,
  last_error text,
  published_at timestamptz,
  CONSTRAINT market_outbox_dedupe_key UNIQUE (dedupe_key),
  CONSTRAINT market_outbox_message_id_key UNIQUE (message_id)
);

-- The relay's scan: only undelivered rows, oldest first. Stays tiny (published rows drop out).
CREATE INDEX market_outbox_pending_idx ON market_outbox (id) WHERE published_at IS NULL;
-- Retention pruning of delivered rows.
CREATE INDEX market_outbox_published_at_idx ON market_outbox (published_at) WHERE published_at IS NOT NULL;
