/**
 * The backfill job: the SQS message the IPO scan (or an operator) sends to the Backfill consumer.
 * Producer and consumer share this one schema.
 */
import { z } from 'zod';
import { addDays, type IsoDate } from '../calendar';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

export const BackfillJobSchema = z
  .object({
    symbol: z.string().regex(/^\S{1,32}$/),
    /** The date the history ends on (the scan date): bars up to and including it. */
    as_of: isoDate,
    from: isoDate,
    to: isoDate,
    reason: z.enum(['ipo', 'manual', 'reactivated']),
    requested_at: z.iso.datetime(),
  })
  .refine((j) => j.from <= j.to, { message: 'from must not be after to' });

export type BackfillJob = z.infer<typeof BackfillJobSchema>;

/** Default history of a new symbol: 90 calendar days. */
export const BACKFILL_DAYS = 90;

/** The window of `days` calendar days ending on asOf (inclusive at both ends). */
export function backfillWindow(asOf: IsoDate, days: number = BACKFILL_DAYS): { from: IsoDate; to: IsoDate } {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`backfill days must be a positive integer`);
  return { from: addDays(asOf, -(days - 1)), to: asOf };
}

export function backfillJob(
  symbol: string,
  asOf: IsoDate,
  reason: BackfillJob['reason'],
  options: { days?: number; now?: Date } = {},
): BackfillJob {
  const { from, to } = backfillWindow(asOf, options.days);
  return {
    symbol,
    as_of: asOf,
    from,
    to,
    reason,
    requested_at: (options.now ?? new Date()).toISOString(),
  };
}

/** Consumer id of the backfill queue in lib/topology (platform queueUrl resolves it). */
export const BACKFILL_QUEUE = 'Backfill';
