-- Health records as typed columns plus a compact Avro body, loaded by binary COPY.
--
-- Why: the per-reading jsonb payload made the server parse ~600 bytes of JSON per reading and the
-- client serialise it; a 1,000,000-reading export took 40 s. Each record now carries the columns
-- the ETL decides on (version, content hash, measured value, how many values, how many out of
-- range) and its full content as Avro binary under our reader schema `reader_version`, with
-- appRecordFetchTimeEpochMillis zeroed (the fetch time of the export that wrote the row is in
-- fetch_ms). Rows written before this migration keep their jsonb payload; new rows have a body.
--
-- Same id, same lastModifiedTimeEpochMillis, different content (content_hash differs) is a
-- conflict: the better-founded version is kept (fewer values out of the physiological range, then
-- more values, then the later export, then the higher content hash so every worker decides the
-- same) and the pair is recorded in health_record_conflicts.

-- Keys compare bytewise (COLLATE "C"): ids and package names are identifiers, not words, and the
-- locale-aware comparison made every primary-key insert of a large export several times slower.
ALTER TABLE health_records
  ALTER COLUMN record_type TYPE text COLLATE "C",
  ALTER COLUMN metadata_id TYPE text COLLATE "C",
  ALTER COLUMN data_origin TYPE text COLLATE "C",
  ALTER COLUMN payload DROP NOT NULL,
  ADD COLUMN fetch_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN value double precision,
  ADD COLUMN value_count integer NOT NULL DEFAULT 1,
  ADD COLUMN out_of_range integer NOT NULL DEFAULT 0,
  ADD COLUMN content_hash bigint NOT NULL DEFAULT 0,
  ADD COLUMN reader_version smallint,
  ADD COLUMN body bytea,
  ADD CONSTRAINT health_records_content_check CHECK (payload IS NOT NULL OR (body IS NOT NULL AND reader_version IS NOT NULL));

ALTER TABLE health_ingests
  ADD COLUMN records_conflicts integer NOT NULL DEFAULT 0;

CREATE TABLE health_record_conflicts (
  id bigserial PRIMARY KEY,
  record_type text NOT NULL,
  metadata_id text NOT NULL,
  last_modified_ms bigint NOT NULL,
  stored_hash bigint NOT NULL,
  incoming_hash bigint NOT NULL,
  stored_source_id text NOT NULL,
  incoming_source_id text NOT NULL,
  kept text NOT NULL CHECK (kept IN ('stored', 'incoming')),
  -- The rule that decided, spelled out, so a reader of the table needs no code.
  rule text NOT NULL,
  detected_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (record_type, metadata_id, stored_hash, incoming_hash)
);
