-- The health ETL's rights on the tables of 0220 and 0221 (roles: 0090_roles; 0210 granted the
-- record store itself). Conflicts are appended, never rewritten; training examples are inserted and
-- marked superseded. The staging table of a load is a temporary table of the session (TEMP).
DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT, INSERT ON %I.health_record_conflicts TO tickstock_health', s);
  EXECUTE format('GRANT USAGE ON SEQUENCE %I.health_record_conflicts_id_seq TO tickstock_health', s);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.health_training_examples TO tickstock_health', s);
END
$grants$;
