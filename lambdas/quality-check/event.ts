/** The quality-check Lambda's event: `{ tradeDate?: "YYYY-MM-DD" }` (other keys tolerated). */
import { z } from 'zod';
import { type IsoDate, previousTradingDay, toDayNumber } from '../market/calendar';

export const QualityCheckEventSchema = z
  .object({
    tradeDate: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'tradeDate must be YYYY-MM-DD')
      .optional(),
  })
  .loose();

export class InvalidQualityCheckEventError extends Error {
  constructor(issues: string[]) {
    super(`invalid quality-check event: ${issues.join('; ')}`);
    this.name = 'InvalidQualityCheckEventError';
  }
}

/**
 * The session the check is for: the event's date (the EOD chain always passes the session it just
 * loaded), else the NYSE trading day before today in New York, whose bars are final by then.
 */
export function tradeDateOf(event: unknown, now: Date = new Date()): IsoDate {
  const parsed = QualityCheckEventSchema.safeParse(event ?? {});
  if (!parsed.success) throw new InvalidQualityCheckEventError(parsed.error.issues.map((i) => i.message));
  if (parsed.data.tradeDate) {
    toDayNumber(parsed.data.tradeDate); // InvalidDateError for 2025-02-30 and the like
    return parsed.data.tradeDate;
  }
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York' }).format(now);
  return previousTradingDay(today);
}
