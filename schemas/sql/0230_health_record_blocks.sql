-- Health records in blocks: every record of one (record type, id bucket) in one row.
--
-- Why: one row and one primary-key entry per reading made a 1,000,000-reading export insert a
-- million rows: ~8 s of server time on a 2-core machine however they were sent (COPY, binary,
-- typed columns), 5-20x the time of decoding the export. A block holds the records whose
-- metadata id hashes to its bucket (lambdas/health/record-blocks.ts: FNV-1a of the id modulo
-- 16384), sorted by id, as one bytea: the records' decision fields (lastModified, content hash,
-- fetch time, value count, out-of-range count, source) and their Avro body. Such an export now
-- writes at most 16,384 rows; a daily export of a few hundred records touches a few hundred small
-- blocks. The bucket is a function of the id alone, so the stored version of a record is always in
-- one known block: the newest-wins decision, conflicts and versions are decided exactly as before,
-- by the client under the block's row lock (every unit locks its blocks in bucket order).
--
-- Rows of health_records written before this migration stay readable where they are: the store
-- reads them as stored versions and moves a record into its block (deleting the old row) when a
-- newer version of it arrives. health_records_conflicts is unchanged.
CREATE TABLE health_record_blocks (
  record_type text COLLATE "C" NOT NULL,
  bucket integer NOT NULL CHECK (bucket >= 0 AND bucket < 16384),
  -- Records in the block (counting without decoding).
  n integer NOT NULL CHECK (n >= 0),
  data bytea NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (record_type, bucket)
);

-- lz4, not the default pglz: a block of glucose readings shrinks to ~45 % (ids and device names
-- repeat inside a record) at a fraction of pglz's CPU, which halves what a large export writes to
-- the table and the WAL. Servers built without lz4 keep the default.
DO $compression$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE health_record_blocks ALTER COLUMN data SET COMPRESSION lz4;
  END IF;
END
$compression$;

DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.health_record_blocks TO tickstock_health', s);
  -- A record of health_records is deleted when its newer version moves into its block.
  EXECUTE format('GRANT DELETE ON %I.health_records TO tickstock_health', s);
END
$grants$;
