-- Hash chain over the trading event store (issue 14 §3, lambdas/trading/integrity.ts). Each row's
-- hash = sha256(previous row's hash || digest), the digest covering (stream, version, type, data,
-- occurred_at) in a canonical form the application computes. The store computes the hashes from the
-- stream's last hash and its single append statement (lambdas/trading/pg-store.ts) inserts only if
-- that last hash is still the stored one. Rows written
-- before this migration keep a NULL hash: accepted only as a leading run (a NULL after a hashed row
-- is a removed hash). Verification runs on every load; an edited row, a gap in the versions or a
-- truncated tail (the projections' version above the last event) is named by its first bad version.
ALTER TABLE trading_events ADD COLUMN hash text CHECK (hash ~ '^[0-9a-f]{64}$');
