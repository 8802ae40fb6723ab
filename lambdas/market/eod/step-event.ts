/**
 * The input of every EOD-chain step (and of the jobs run on their own): `{ "tradeDate": "YYYY-MM-DD",
 * "force"?: boolean }`, both optional, other keys tolerated. One field name for the date: the state
 * machine passes `tradeDate` to every step.
 */
import { z } from 'zod';
import { type IsoDate, latestSession, previousTradingDay, toDayNumber, todayInNewYork } from '../calendar';

export const StepEventSchema = z
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

export class InvalidStepEventError extends Error {
  constructor(issues: string[]) {
    super(`invalid EOD step event: ${issues.join('; ')}`);
    this.name = 'InvalidStepEventError';
  }
}

export interface StepEvent {
  readonly tradeDate: IsoDate;
  readonly force: boolean;
}

export interface StepEventOptions {
  /**
   * The session when the event names none: `latest` is the latest NYSE session on or before today
   * in New York (the scheduled chain fires after the close, so the session just ended); `previous`
   * is the session before today, whose bars are final whenever the job runs.
   */
  readonly defaultSession?: 'latest' | 'previous';
  readonly now?: Date;
}

export function parseStepEvent(event: unknown, options: StepEventOptions = {}): StepEvent {
  const parsed = StepEventSchema.safeParse(event ?? {});
  if (!parsed.success) throw new InvalidStepEventError(parsed.error.issues.map((i) => i.message));
  const now = options.now ?? new Date();
  const tradeDate =
    parsed.data?.tradeDate ??
    (options.defaultSession === 'previous' ? previousTradingDay(todayInNewYork(now)) : latestSession(now));
  toDayNumber(tradeDate); // InvalidDateError for 2025-02-30 and the like
  return { tradeDate, force: parsed.data?.force ?? false };
}
