-- Market caps and ETF assets kept current (lambdas/market/fundamentals):
--   * every session the universe sync marks them to market: market_cap = shares_outstanding x the
--     session's close (for ETFs and ETNs the same product is the fund's assets, aum), no provider
--     call;
--   * a scheduled job re-reads the provider's ticker details (shares outstanding, market cap) for a
--     rotating batch of the least recently refreshed symbols, sized to the plan's rate limit.
-- market_cap_as_of: the session the current market_cap is valued at (never moved backwards).
-- fundamentals_refreshed_at: when the provider's details were last read (NULL: never; first in line).
ALTER TABLE symbols
  ADD COLUMN market_cap_as_of date,
  ADD COLUMN fundamentals_refreshed_at timestamptz;

CREATE INDEX symbols_fundamentals_refresh_idx
  ON symbols (fundamentals_refreshed_at NULLS FIRST, symbol) WHERE active;
