-- One row per source object (bucket, key, version id or ETag) the ETL has decided on.
--
-- The row is inserted in the same transaction as the file's record upserts, so the decision
-- (processed or duplicate) and the record state commit together. The outputs (training object,
-- quarantine copy) are written after the commit; completed_at is set only once they are all
-- written. A retry of an object whose row exists but is not completed reproduces the recorded
-- decision and rewrites the same outputs (a retry is never mistaken for a duplicate); a completed
-- object seen again is a duplicate. Quarantined files leave no row (quarantine is decided from the
-- file alone and is repeatable).

CREATE TABLE health_ingests (
  source_id text PRIMARY KEY,
  bucket text NOT NULL,
  object_key text NOT NULL,
  version_id text,
  etag text,
  record_type text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'processed', 'duplicate')),
  records_read integer NOT NULL DEFAULT 0,
  records_inserted integer NOT NULL DEFAULT 0,
  records_updated integer NOT NULL DEFAULT 0,
  correlation_id text,
  -- Processing time of the attempt that decided; retries reuse it so their outputs are identical.
  processed_at timestamptz NOT NULL,
  completed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX health_ingests_incomplete_idx ON health_ingests (processed_at) WHERE completed_at IS NULL;
