-- Trading event store (issue 13): append-only events, the projections they maintain and the broker
-- outbox, all written in one transaction per command. One stream per account.

CREATE TABLE trading_events (
  position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id     uuid NOT NULL UNIQUE,
  stream       text NOT NULL,
  version      integer NOT NULL CHECK (version > 0),
  type         text NOT NULL,
  data         jsonb NOT NULL,
  occurred_at  timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream, version)
);

-- Append-only: history is never rewritten.
CREATE FUNCTION trading_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'trading_events is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER trading_events_no_update BEFORE UPDATE OR DELETE ON trading_events
  FOR EACH ROW EXECUTE FUNCTION trading_events_append_only();

CREATE TABLE trading_orders (
  stream           text NOT NULL,
  client_order_id  text NOT NULL,
  symbol           text NOT NULL,
  side             text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending_new', 'new', 'partially_filled', 'filled',
                     'pending_cancel', 'canceled', 'pending_replace', 'replaced', 'rejected', 'denied', 'expired')),
  qty              numeric NOT NULL,
  filled_qty       numeric NOT NULL,
  avg_fill_price   numeric,
  denial_code      text,
  view             jsonb NOT NULL,
  "order"          jsonb NOT NULL,
  version          integer NOT NULL,
  PRIMARY KEY (stream, client_order_id)
);
CREATE INDEX trading_orders_open ON trading_orders (stream, symbol)
  WHERE status IN ('pending_new', 'new', 'partially_filled', 'pending_cancel', 'pending_replace');

CREATE TABLE trading_positions (
  stream     text NOT NULL,
  symbol     text NOT NULL,
  qty        numeric NOT NULL,
  avg_price  numeric NOT NULL,
  version    integer NOT NULL,
  PRIMARY KEY (stream, symbol)
);

CREATE TABLE trading_accounts (
  stream          text PRIMARY KEY,
  cash            numeric NOT NULL,
  equity          numeric NOT NULL,
  realized_pnl    numeric NOT NULL,
  unrealized_pnl  numeric NOT NULL,
  daily_pnl       numeric NOT NULL,
  version         integer NOT NULL
);

CREATE TABLE trading_states (
  stream  text NOT NULL,
  scope   text NOT NULL,
  state   text NOT NULL CHECK (state IN ('active', 'reducing', 'halted')),
  cause   text NOT NULL,
  PRIMARY KEY (stream, scope)
);

CREATE TABLE trading_state_log (
  stream  text NOT NULL,
  seq     integer NOT NULL,
  at      timestamptz NOT NULL,
  scope   text NOT NULL,
  state   text NOT NULL,
  cause   text NOT NULL,
  PRIMARY KEY (stream, seq)
);

CREATE TABLE trading_breakers (
  stream    text NOT NULL,
  id        integer NOT NULL,
  breaker   text NOT NULL,
  view      jsonb NOT NULL,
  reset_at  timestamptz,
  reset_by  text,
  PRIMARY KEY (stream, id)
);

CREATE TABLE trading_outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream        text NOT NULL,
  command       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz
);
CREATE INDEX trading_outbox_pending ON trading_outbox (stream, id) WHERE delivered_at IS NULL;
