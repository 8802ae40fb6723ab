-- The person's sleep sessions, kept so that a heart-rate export can tell sleep from wakefulness
-- (issue 15, point 4): sleeping heart rate and resting heart rate are computed from the samples
-- inside these sessions, which often arrive in an earlier export than the heart rate. One row per
-- session (data origin + the record's metadata.id), written when a sleep export is processed; a
-- later version of the session (newer lastModifiedTimeEpochMillis) replaces it, an older one never
-- does (lambdas/health/sleep-spans.ts). No health values: times, zone and kind only.

CREATE TABLE health_sleep_spans (
  user_id text NOT NULL,
  data_origin text NOT NULL,
  session_id text NOT NULL,
  start_ms bigint NOT NULL,
  end_ms bigint NOT NULL,
  zone text,
  -- 'main' (a night) or 'nap' (processors/sleep.ts sessionPeriod).
  kind text NOT NULL CHECK (kind IN ('main', 'nap')),
  -- The local date of the evening the night began (naps: their own date).
  night_of date NOT NULL,
  last_modified_ms bigint NOT NULL,
  source_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, data_origin, session_id),
  CHECK (end_ms > start_ms)
);

-- Sessions overlapping a heart-rate export's time range.
CREATE INDEX health_sleep_spans_time_idx ON health_sleep_spans (user_id, start_ms, end_ms);

DO $grants$
DECLARE
  s text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.health_sleep_spans TO tickstock_health', s);
END
$grants$;
