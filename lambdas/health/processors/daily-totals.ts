/**
 * Daily totals per data origin, shared by steps and active calories.
 *
 * Two apps report the same day over different windows (one from local midnight, another from 04:00
 * local) and different wear time. Their totals are never added: each origin's total is kept, and
 * the day's figure is the HIGHEST origin total, because a source that was not carried or worn
 * undercounts while none overcounts the same movement. Within one origin, records of the same
 * local day are summed (an app may write hourly or partial-day records).
 */
import { localClock, localTime } from '../time';
import { getOrCreate, int, joinList } from './common';

export interface TotalRecord {
  readonly origin: string;
  readonly start: number;
  readonly end: number;
  readonly zone: string | null;
  readonly value: number;
}

export interface OriginDay {
  origin: string;
  total: number;
  records: number;
  /** Local clock of the first record start and last record end, e.g. "00:00-23:59". */
  window: string;
}

export interface DayTotal {
  /** Local date of the records' start. */
  date: string;
  origins: OriginDay[];
  chosenOrigin: string;
  total: number;
  reconciliation: string;
}

export function dailyTotals(records: readonly TotalRecord[], unit: string): DayTotal[] {
  const days = new Map<
    string,
    Map<string, { total: number; records: number; start: number; end: number; zone: string | null }>
  >();
  for (const r of records) {
    const date = localTime(r.start, r.zone).date;
    const byOrigin = getOrCreate(days, date, () => new Map());
    const acc = getOrCreate(byOrigin, r.origin, () => ({
      total: 0,
      records: 0,
      start: r.start,
      end: r.end,
      zone: r.zone,
    }));
    acc.total += r.value;
    acc.records++;
    acc.start = Math.min(acc.start, r.start);
    acc.end = Math.max(acc.end, r.end);
  }
  return [...days.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([date, byOrigin]) => {
      const origins: OriginDay[] = [...byOrigin.entries()].map(([origin, a]) => ({
        origin,
        total: a.total,
        records: a.records,
        window: `${localClock(a.start, a.zone).slice(11)}-${localClock(a.end, a.zone).slice(11)}`,
      }));
      const ranked = [...origins].sort((a, b) => b.total - a.total || (a.origin < b.origin ? -1 : 1));
      const chosen = ranked[0] as OriginDay;
      const reconciliation =
        origins.length === 1
          ? 'single source'
          : `${origins.length} apps reported this day (${joinList(
              ranked.map((o) => `${o.origin} ${int(o.total)} ${unit} over ${o.window}`),
            )}); they cover different windows and wear time, so they are not added; using the highest, ${chosen.origin}`;
      return { date, origins, chosenOrigin: chosen.origin, total: chosen.total, reconciliation };
    });
}
