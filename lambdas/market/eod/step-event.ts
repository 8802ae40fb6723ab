/** The EOD chain's step input: `{ "tradeDate": "YYYY-MM-DD" }` (optional; other keys tolerated). */
import { z } from 'zod';
import { defaultScanDate } from '../../ipo-scan/handler-date';
import { type IsoDate, toDayNumber } from '../calendar';

export const EodStepEventSchema = z
  .object({
    tradeDate: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'tradeDate must be YYYY-MM-DD')
      .optional(),
    /** Universe sync only: run without a COMPLETE signal. */
    force: z.boolean().optional(),
  })
  .loose()
  .nullish();

export class InvalidEodEventError extends Error {
  constructor(issues: string[]) {
    super(`invalid EOD step event: ${issues.join('; ')}`);
    this.name = 'InvalidEodEventError';
  }
}

/**
 * The event's trade date, else the latest NYSE session on or before today in New York (the
 * scheduled run fires after the close, so that is the session just ended).
 */
export function parseEodStepEvent(
  event: unknown,
  now: Date = new Date(),
): { tradeDate: IsoDate; force: boolean } {
  const parsed = EodStepEventSchema.safeParse(event ?? {});
  if (!parsed.success) throw new InvalidEodEventError(parsed.error.issues.map((i) => i.message));
  const tradeDate = parsed.data?.tradeDate ?? defaultScanDate(now);
  toDayNumber(tradeDate); // InvalidDateError for 2025-02-30 and the like
  return { tradeDate, force: parsed.data?.force ?? false };
}
