/**
 * Daily totals per data origin, shared by steps and active calories.
 *
 * Two apps report the same day over different windows (one from local midnight, another from 04:00
 * local) and different wear time. Their totals are never added: each origin's total is kept, and
 * the day's figure is the HIGHEST origin total, because a source that was not carried or worn
 * undercounts while none overcounts the same movement. Within one origin, records of the same
 * local day are summed (an app may write hourly or partial-day records).
 *
 * A day that had not ended when the data was exported (the records' appRecordFetchTimeEpochMillis
 * is before the next local midnight) is a partial day: its total is "as of HH:MM, N % of the day"
 * and is never graded against a daily target, because 1,210 steps by 10:27 is not a sedentary day.
 */
import { localClock, localTime } from '../time';
import { getOrCreate, int, joinList } from './common';

export interface TotalRecord {
  readonly origin: string;
  readonly start: number;
  readonly end: number;
  readonly zone: string | null;
  readonly value: number;
  /** appRecordFetchTimeEpochMillis: when the app read the data. */
  readonly fetch: number;
}

export interface PartialDay {
  /** Local clock of the export, "10:27". */
  asOf: string;
  /** Share of the local day that had passed at the export, whole percent. */
  percentOfDay: number;
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
  /** Null when the day had ended before the export. */
  partial: PartialDay | null;
}

const DAY_MS = 86_400_000;

/** Whether the local day `date` had ended at `fetch`, seen in `zone`. */
export function partialDay(date: string, fetch: number, zone: string | null): PartialDay | null {
  if (!(fetch > 0)) return null;
  const local = localTime(fetch, zone);
  if (local.date > date) return null;
  const elapsed = local.date < date ? 0 : local.minuteOfDay / (DAY_MS / 60_000);
  const hh = String(local.hour).padStart(2, '0');
  const mm = String(local.minute).padStart(2, '0');
  return { asOf: `${hh}:${mm}`, percentOfDay: Math.round(elapsed * 100) };
}

/** "Steps on 2025-11-03" or "Steps on 2025-11-03 as of 10:27 (44 % of the day)". */
export function dayLabel(d: Pick<DayTotal, 'date' | 'partial'>): string {
  return d.partial ? `${d.date} as of ${d.partial.asOf} (${d.partial.percentOfDay} % of the day)` : d.date;
}

export const PARTIAL_DAY_NOTE =
  'The day had not ended when the data was exported, so this is a running total and is not compared with the daily target.';

export function dailyTotals(records: readonly TotalRecord[], unit: string): DayTotal[] {
  const days = new Map<
    string,
    Map<
      string,
      { total: number; records: number; start: number; end: number; zone: string | null; fetch: number }
    >
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
      fetch: r.fetch,
    }));
    acc.fetch = Math.max(acc.fetch, r.fetch);
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
      const chosenAcc = byOrigin.get(chosen.origin);
      const partial = chosenAcc ? partialDay(date, chosenAcc.fetch, chosenAcc.zone) : null;
      return { date, origins, chosenOrigin: chosen.origin, total: chosen.total, reconciliation, partial };
    });
}
