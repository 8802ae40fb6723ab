-- Health Connect records: one row per record (record type, metadata.id), the newest version wins.
--
-- Exports overlap: consecutive syncs repeat most records and sometimes carry an UPDATED version of
-- one (more samples, later lastModifiedTimeEpochMillis). The ETL upserts every record of a file in
-- one set-based statement
--   INSERT ... ON CONFLICT (record_type, metadata_id) DO UPDATE ... WHERE excluded.last_modified_ms > last_modified_ms
-- so PostgreSQL, not a read-then-write in the application, decides what is new under concurrent
-- workers; a file that inserts and updates nothing is a duplicate.

CREATE TABLE health_records (
  record_type text NOT NULL CHECK (record_type IN (
    'BloodGlucoseRecord', 'HeartRateRecord', 'HeartRateVariabilityRmssdRecord',
    'SleepSessionRecord', 'StepsRecord', 'ActiveCaloriesBurnedRecord'
  )),
  metadata_id text NOT NULL CHECK (metadata_id <> ''),
  data_origin text NOT NULL,
  -- metadata.lastModifiedTimeEpochMillis of the stored version (exact, as written by the app).
  last_modified_ms bigint NOT NULL,
  client_record_version bigint NOT NULL DEFAULT 0,
  -- NULL only when the record's time is outside 1900-3000 (kept in payload as written).
  start_time timestamptz,
  end_time timestamptz,
  zone_offset text,
  -- The record as our reader schema decodes it (flat field names of the app).
  payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  -- Stable id of the export (bucket, key, version/etag) that wrote this version.
  source_id text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (record_type, metadata_id)
);

-- Per-origin time-range reads (a day of steps from one app, a night of sleep).
CREATE INDEX health_records_origin_time_idx ON health_records (record_type, data_origin, start_time);
