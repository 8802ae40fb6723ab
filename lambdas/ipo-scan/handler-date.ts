import { type IsoDate, tradingDayOnOrBefore } from '../market/calendar';
import { sessionDate } from '../market/provider';

/** The scan's default date: the latest NYSE session on or before today in New York. */
export function defaultScanDate(now: Date = new Date()): IsoDate {
  return tradingDayOnOrBefore(sessionDate(now.getTime()));
}
