-- Near-duplicate suppression of training examples (issue 15, point 5; lambdas/health/training.ts
-- `suppressNearDuplicates`). Each example records what the comparison needs: the hash of its
-- template (user, domain, instruction and output with dates, clock times and numbers masked), the
-- numbers of its output in order, and how many readings it summarises (the more informative of two
-- near-duplicates is kept). Like supersession, suppression is a query over these rows (the training
-- manifest), never a flag: it does not depend on the order files arrived in. Rows written before
-- this migration have NULLs and are never suppressed.

ALTER TABLE health_training_examples
  ADD COLUMN dedup_template text,
  ADD COLUMN dedup_numbers double precision[],
  ADD COLUMN records_processed integer;
