/**
 * The equity batch: the SQS message the dispatcher sends and the EquityProcessing worker consumes.
 * Producer and consumer share this one schema. Each symbol carries its claim (queue row id and the
 * attempt number the claim set), so a worker can tell its own claim from a later one: after a lease
 * expired and the symbol was claimed again, the old message must not complete the new claim.
 */
import { z } from 'zod';
import { addTradingDays, type IsoDate } from '../calendar';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

export const ClaimSchema = z.object({
  symbol: z.string().regex(/^\S{1,32}$/),
  /** equity_processing_queue.id, as text (bigint). */
  queue_id: z.string().regex(/^\d+$/),
  /** attempts after the claim: the fencing token of this claim. */
  attempts: z.number().int().min(1),
});

export const EquityBatchSchema = z
  .object({
    type: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
    dispatch_id: z.string().min(1),
    /** 0-based position of this batch among the type's batches of the dispatch run. */
    batch_index: z.number().int().min(0),
    delay_seconds: z.number().int().min(0).max(900),
    claimed_at: z.iso.datetime(),
    /** Refresh window of daily bars, fixed at dispatch so a redelivery loads the same sessions. */
    as_of: isoDate,
    from: isoDate,
    to: isoDate,
    symbols: z.array(ClaimSchema).min(1),
  })
  .refine((b) => b.from <= b.to, { message: 'from must not be after to' });

export type EquityClaim = z.infer<typeof ClaimSchema>;
export type EquityBatch = z.infer<typeof EquityBatchSchema>;

/** Consumer id of the queue in lib/topology/market.ts (platform queueUrl resolves it). */
export const EQUITY_PROCESSING_QUEUE = 'EquityProcessing';

/** Sessions of daily bars a refresh reloads by default: a week covers late corrections. */
export const REFRESH_SESSIONS = 5;

/** The refresh window: the last `sessions` NYSE sessions ending on asOf (a trading day). */
export function refreshWindow(
  asOf: IsoDate,
  sessions: number = REFRESH_SESSIONS,
): { from: IsoDate; to: IsoDate } {
  if (!Number.isInteger(sessions) || sessions < 1)
    throw new RangeError('refresh sessions must be a positive integer');
  return { from: addTradingDays(asOf, -(sessions - 1)), to: asOf };
}
