-- The record store's load path touches one index per record instead of two.
--
-- health_records_origin_time_idx (record_type, data_origin, start_time) was created for per-origin
-- time-range reads that nothing runs: the ETL decides on (record_type, metadata_id) only, and the
-- clinical figures are computed from the export being read. Every inserted record paid for a second
-- index entry all the same; on a first load of a 1,000,000-reading export that was a large share of
-- the merge. Re-create it (CONCURRENTLY) together with the first query that needs it.
DROP INDEX IF EXISTS health_records_origin_time_idx;
