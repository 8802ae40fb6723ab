/**
 * The health ETL's time budget: what the decode limits, the function's timeout and the handler's
 * scheduling of a batch must agree on, so that no message can only time out on every attempt and
 * die in the dead-letter queue (issue 15, point 7).
 *
 * Worst-case speeds of the whole path (decode, validate, process, PostgreSQL store, outputs), below
 * the slowest that `npm run bench -- health` measured for the 1,000,000-reading export (~100 bytes
 * a reading) through `ingestExport` with the PostgreSQL store: 6,400 records/s (0.65 MB/s) on a
 * 2-core machine at a load average of 20; 16,000-19,000 records/s when less loaded.
 */
export const WORST_CASE_RECORDS_PER_SECOND = 5_000;
export const WORST_CASE_BYTES_PER_SECOND = 500_000;
/** Fixed cost of one object (S3 round trips, transaction, outputs, manifest). */
export const PER_OBJECT_OVERHEAD_MS = 5_000;

/** The longest one object may take: the larger of its byte and record bounds, plus the overhead. */
export function worstCaseMillis(object: { bytes: number; records?: number }): number {
  const byBytes = (object.bytes / WORST_CASE_BYTES_PER_SECOND) * 1000;
  const byRecords = ((object.records ?? 0) / WORST_CASE_RECORDS_PER_SECOND) * 1000;
  return PER_OBJECT_OVERHEAD_MS + Math.max(byBytes, byRecords);
}

/**
 * Whether the handler starts an object now or hands it back to the queue (as a new message: see
 * `ExportBudget` and the handler's `requeueDeferred`, so deferring never spends a receive). The first object of an invocation is always started: the
 * decode limits guarantee it fits a whole timeout (`test/unit/health/budget.test.ts`), so every
 * object makes progress as the first of some invocation. A later one is started only if its worst
 * case fits the time left, so an invocation never times out in the middle of a batch (which would
 * send every message of the batch back, finished or not).
 */
export function startsNow(input: { first: boolean; remainingMs: number; bytes: number }): boolean {
  return input.first || worstCaseMillis({ bytes: input.bytes }) <= input.remainingMs;
}

/**
 * Time kept back at the end of an invocation to end an object cleanly when its processing runs out
 * of time: roll back, copy it to quarantine or hand it back to the queue, report. A quarter of the
 * time left, at most 30 s (a 160 MiB server-side copy and a sidecar put take a few seconds).
 */
export function reserveMillis(remainingMs: number): number {
  return Math.min(30_000, remainingMs / 4);
}

/**
 * The time an object may take, handed to processExport. `terminal` is true when the object had a
 * whole invocation to itself (the first one started): if it still runs out of time, it can never
 * finish, and it is quarantined at once as `too_large_for_budget` instead of timing out on every
 * attempt until the dead-letter queue. Otherwise (a later object, slower than its worst case) it is
 * handed back to the queue and starts as the first object of another invocation.
 */
export interface ExportBudget {
  /** Epoch millis by which processing must have stopped. */
  readonly deadline: number;
  readonly terminal: boolean;
}

export function exportBudget(input: { first: boolean; remainingMs: number; now: number }): ExportBudget {
  return {
    deadline: input.now + input.remainingMs - reserveMillis(input.remainingMs),
    terminal: input.first,
  };
}

/** Processing of one object passed its budget's deadline (checked between blocks of the file). */
export class BudgetExceededError extends Error {
  constructor(
    readonly budget: ExportBudget,
    readonly recordsRead: number,
  ) {
    super(
      `processing ran out of its time budget after ${recordsRead} records${budget.terminal ? ' with a whole invocation to itself' : ''}`,
    );
    this.name = 'BudgetExceededError';
  }
}

/** The quarantine reason of an object that cannot finish within one invocation. */
export const TOO_LARGE_FOR_BUDGET = 'too_large_for_budget';
