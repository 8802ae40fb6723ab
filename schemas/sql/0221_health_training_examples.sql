-- One row per training example written (one per processed export), with its subject: the domain,
-- the data origins it describes and the local day of its data. A later export of the same subject
-- supersedes an earlier one: the current example of a subject is the one with the latest export
-- fetch time (then the highest source id, so every reader agrees); the others stay as superseded
-- versions (their objects are immutable and are never deleted). Nothing is ever updated here, so
-- concurrent workers cannot race: "current" is a query (the training manifest), not a flag.

CREATE TABLE health_training_examples (
  source_id text PRIMARY KEY,
  subject_key text NOT NULL COLLATE "C",
  domain text NOT NULL,
  data_origins text[] NOT NULL,
  local_day date NOT NULL,
  training_key text NOT NULL,
  fetch_ms bigint NOT NULL,
  -- False when the day had not ended at the export (a running total "as of HH:MM").
  day_complete boolean NOT NULL,
  as_of text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX health_training_examples_subject_idx ON health_training_examples (subject_key, fetch_ms DESC, source_id DESC);
