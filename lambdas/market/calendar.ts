/**
 * NYSE trading calendar: pure, no I/O, ISO dates (YYYY-MM-DD, America/New_York session dates).
 *
 * Holidays are computed by rule (NYSE Rule 7.2) rather than listed, so the calendar keeps working
 * for years nobody typed in; only one-off closures (national days of mourning, 9/11, Hurricane
 * Sandy) are listed. Each year is computed once and cached as a sorted array of trading-day
 * numbers, so every query is a Set lookup or a binary search.
 *
 * Observance rules as the NYSE applies them:
 * - a holiday on Sunday is observed the following Monday;
 * - a holiday on Saturday is observed the preceding Friday, EXCEPT New Year's Day: the Friday
 *   before (Dec 31) ends the accounting year, so the exchange stays open and there is no holiday
 *   (e.g. 2022-01-01 and 2028-01-01);
 * - Juneteenth is a holiday from 2022, MLK Day from 1998.
 * Early closes (13:00 ET): the day after Thanksgiving; Christmas Eve when it is a weekday and not
 * itself the observed Christmas holiday (Dec 24 Mon-Thu); July 3 when it is Mon-Thu (July 4
 * Tue-Fri). When Independence Day is observed on Friday July 3 or Monday July 5 there is no early
 * close (2020, 2021, 2026, 2027).
 */

export type IsoDate = string;

export class InvalidDateError extends Error {
  constructor(value: unknown) {
    super(`invalid ISO date (expected YYYY-MM-DD): ${JSON.stringify(value)}`);
    this.name = 'InvalidDateError';
  }
}

/** Years the calendar answers for; outside them the holiday rules above are not the NYSE's. */
export const CALENDAR_MIN_YEAR = 1990;
export const CALENDAR_MAX_YEAR = 2199;

export class CalendarRangeError extends Error {
  constructor(year: number) {
    super(`year ${year} is outside the supported calendar range ${CALENDAR_MIN_YEAR}-${CALENDAR_MAX_YEAR}`);
    this.name = 'CalendarRangeError';
  }
}

/** One-off full-day closures that no rule produces. */
const SPECIAL_CLOSURES: Readonly<Record<IsoDate, string>> = {
  '1994-04-27': 'National Day of Mourning (President Nixon)',
  '2001-09-11': 'September 11 attacks',
  '2001-09-12': 'September 11 attacks',
  '2001-09-13': 'September 11 attacks',
  '2001-09-14': 'September 11 attacks',
  '2004-06-11': 'National Day of Mourning (President Reagan)',
  '2007-01-02': 'National Day of Mourning (President Ford)',
  '2012-10-29': 'Hurricane Sandy',
  '2012-10-30': 'Hurricane Sandy',
  '2018-12-05': 'National Day of Mourning (President George H.W. Bush)',
  '2025-01-09': 'National Day of Mourning (President Carter)',
};

const MS_PER_DAY = 86_400_000;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since 1970-01-01 (UTC arithmetic: calendar dates have no time zone). */
export function toDayNumber(date: IsoDate): number {
  const m = ISO_DATE.exec(date);
  if (!m) throw new InvalidDateError(date);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const ms = Date.UTC(y, mo - 1, d);
  const check = new Date(ms);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw new InvalidDateError(date);
  return ms / MS_PER_DAY;
}

export function fromDayNumber(day: number): IsoDate {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

/** Adds calendar days (not trading days). */
export function addDays(date: IsoDate, days: number): IsoDate {
  return fromDayNumber(toDayNumber(date) + days);
}

/** 0 = Sunday ... 6 = Saturday. 1970-01-01 was a Thursday. */
function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

function dayOf(y: number, month: number, d: number): number {
  return Date.UTC(y, month - 1, d) / MS_PER_DAY;
}

/** The n-th (1-based) given weekday of a month; n = -1 for the last one. */
function nthWeekday(y: number, month: number, wd: number, n: number): number {
  if (n > 0) {
    const first = dayOf(y, month, 1);
    return first + ((wd - weekday(first) + 7) % 7) + (n - 1) * 7;
  }
  const last = dayOf(y, month + 1, 1) - 1;
  return last - ((weekday(last) - wd + 7) % 7);
}

/** Easter Sunday (anonymous Gregorian computus, Meeus/Jones/Butcher). */
export function easterSunday(y: number): IsoDate {
  const a = y % 19;
  const b = Math.floor(y / 100);
  const c = y % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return fromDayNumber(dayOf(y, month, day));
}

/** Saturday -> Friday, Sunday -> Monday. */
function observed(day: number): number {
  const wd = weekday(day);
  if (wd === 6) return day - 1;
  if (wd === 0) return day + 1;
  return day;
}

interface YearCalendar {
  readonly holidays: ReadonlyMap<number, string>;
  readonly earlyCloses: ReadonlySet<number>;
  /** Sorted trading-day numbers of the year. */
  readonly tradingDays: Int32Array;
}

const cache = new Map<number, YearCalendar>();

function buildYear(y: number): YearCalendar {
  const holidays = new Map<number, string>();
  const add = (day: number, name: string) => {
    // Observance may move a holiday across the year boundary (New Year's Day on Sunday stays in
    // January; Christmas never moves out of December), so only keep days of this year.
    if (new Date(day * MS_PER_DAY).getUTCFullYear() === y) holidays.set(day, name);
  };

  const newYear = dayOf(y, 1, 1);
  if (weekday(newYear) === 0) add(newYear + 1, "New Year's Day");
  else if (weekday(newYear) !== 6) add(newYear, "New Year's Day");
  if (y >= 1998) add(nthWeekday(y, 1, 1, 3), 'Martin Luther King Jr. Day');
  add(nthWeekday(y, 2, 1, 3), "Washington's Birthday");
  add(toDayNumber(easterSunday(y)) - 2, 'Good Friday');
  add(nthWeekday(y, 5, 1, -1), 'Memorial Day');
  if (y >= 2022) add(observed(dayOf(y, 6, 19)), 'Juneteenth National Independence Day');
  add(observed(dayOf(y, 7, 4)), 'Independence Day');
  add(nthWeekday(y, 9, 1, 1), 'Labor Day');
  const thanksgiving = nthWeekday(y, 11, 4, 4);
  add(thanksgiving, 'Thanksgiving Day');
  add(observed(dayOf(y, 12, 25)), 'Christmas Day');
  for (const [date, name] of Object.entries(SPECIAL_CLOSURES)) {
    if (date.startsWith(`${y}-`)) holidays.set(toDayNumber(date), name);
  }

  const earlyCloses = new Set<number>();
  const isOpen = (day: number) => weekday(day) !== 0 && weekday(day) !== 6 && !holidays.has(day);
  const july3 = dayOf(y, 7, 3);
  if (weekday(july3) >= 1 && weekday(july3) <= 4 && isOpen(july3)) earlyCloses.add(july3);
  if (isOpen(thanksgiving + 1)) earlyCloses.add(thanksgiving + 1);
  const christmasEve = dayOf(y, 12, 24);
  if (weekday(christmasEve) >= 1 && weekday(christmasEve) <= 4 && isOpen(christmasEve)) {
    earlyCloses.add(christmasEve);
  }

  const days: number[] = [];
  for (let day = newYear, end = dayOf(y + 1, 1, 1); day < end; day++) if (isOpen(day)) days.push(day);
  return { holidays, earlyCloses, tradingDays: Int32Array.from(days) };
}

function yearOf(day: number): number {
  return new Date(day * MS_PER_DAY).getUTCFullYear();
}

function year(y: number): YearCalendar {
  let cal = cache.get(y);
  if (!cal) {
    if (y < CALENDAR_MIN_YEAR || y > CALENDAR_MAX_YEAR) throw new CalendarRangeError(y);
    cal = buildYear(y);
    cache.set(y, cal);
  }
  return cal;
}

function isTradingDayNumber(day: number): boolean {
  const wd = weekday(day);
  return wd !== 0 && wd !== 6 && !year(yearOf(day)).holidays.has(day);
}

export function isTradingDay(date: IsoDate): boolean {
  return isTradingDayNumber(toDayNumber(date));
}

/** The NYSE holiday name when the exchange is closed for a holiday on that date, else null. */
export function holidayName(date: IsoDate): string | null {
  const day = toDayNumber(date);
  return year(yearOf(day)).holidays.get(day) ?? null;
}

/** All full-day closures (weekday holidays and special closures) of a year, in date order. */
export function holidays(y: number): { date: IsoDate; name: string }[] {
  return [...year(y).holidays.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([day, name]) => ({ date: fromDayNumber(day), name }));
}

/** True when the session closes at 13:00 ET instead of 16:00. */
export function earlyClose(date: IsoDate): boolean {
  const day = toDayNumber(date);
  return year(yearOf(day)).earlyCloses.has(day);
}

/** Session close (ET, HH:MM) or null when the exchange is closed that day. */
export function closeTime(date: IsoDate): '16:00' | '13:00' | null {
  if (!isTradingDay(date)) return null;
  return earlyClose(date) ? '13:00' : '16:00';
}

export function earlyCloses(y: number): IsoDate[] {
  return [...year(y).earlyCloses].sort((a, b) => a - b).map(fromDayNumber);
}

/** The last trading day strictly before date. */
export function previousTradingDay(date: IsoDate): IsoDate {
  let day = toDayNumber(date) - 1;
  while (!isTradingDayNumber(day)) day--;
  return fromDayNumber(day);
}

/** The first trading day strictly after date. */
export function nextTradingDay(date: IsoDate): IsoDate {
  let day = toDayNumber(date) + 1;
  while (!isTradingDayNumber(day)) day++;
  return fromDayNumber(day);
}

/** date itself when it is a trading day, else the previous one (the latest completed session). */
export function tradingDayOnOrBefore(date: IsoDate): IsoDate {
  return isTradingDay(date) ? date : previousTradingDay(date);
}

// Session dates are New York dates: a daily bar's t is midnight New York time, and "today" for
// the exchange is today in New York whatever the machine's zone.
const NY_DATE = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** The New York calendar date of an instant (Unix ms). */
export function sessionDate(epochMs: number): IsoDate {
  return NY_DATE.format(new Date(epochMs));
}

/** Today's date in New York. */
export function todayInNewYork(now: Date = new Date()): IsoDate {
  return sessionDate(now.getTime());
}

/** The latest NYSE session on or before today in New York (after the close: the session just ended). */
export function latestSession(now: Date = new Date()): IsoDate {
  return tradingDayOnOrBefore(todayInNewYork(now));
}

/** date itself when it is a trading day, else the next one. */
export function tradingDayOnOrAfter(date: IsoDate): IsoDate {
  return isTradingDay(date) ? date : nextTradingDay(date);
}

/** Number of trading days of year y on or before day (day inside year y). */
function rankInYear(cal: YearCalendar, day: number): number {
  const days = cal.tradingDays;
  let lo = 0;
  let hi = days.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((days[mid] as number) <= day) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Trading days on or before day, counted from CALENDAR_MIN_YEAR. */
function cumulative(day: number): number {
  const y = yearOf(day);
  let total = 0;
  for (let yy = CALENDAR_MIN_YEAR; yy < y; yy++) total += year(yy).tradingDays.length;
  return total + rankInYear(year(y), day);
}

/**
 * Trading days d with a < d <= b: start EXCLUSIVE, end INCLUSIVE, so it answers "how many sessions
 * have closed since a, as of b". tradingDaysBetween('2020-12-31', '2021-12-31') is the 252 sessions
 * of 2021; equal dates give 0; b before a gives the negative of (b, a].
 */
export function tradingDaysBetween(a: IsoDate, b: IsoDate): number {
  const da = toDayNumber(a);
  const db = toDayNumber(b);
  if (db < da) return -tradingDaysBetween(b, a);
  const ya = yearOf(da);
  const yb = yearOf(db);
  if (ya === yb) return rankInYear(year(ya), db) - rankInYear(year(ya), da);
  return cumulative(db) - cumulative(da);
}

/** Trading days from..to, both INCLUSIVE, in order. */
export function tradingDays(from: IsoDate, to: IsoDate): IsoDate[] {
  const out: IsoDate[] = [];
  const end = toDayNumber(to);
  for (let y = yearOf(toDayNumber(from)), start = toDayNumber(from); y <= yearOf(end); y++) {
    for (const day of year(y).tradingDays) if (day >= start && day <= end) out.push(fromDayNumber(day));
  }
  return out;
}

/** Moves n trading days from date (n > 0 forward, n < 0 back); n = 0 returns date unchanged. */
export function addTradingDays(date: IsoDate, n: number): IsoDate {
  let current = date;
  for (let i = 0; i < n; i++) current = nextTradingDay(current);
  for (let i = 0; i > n; i--) current = previousTradingDay(current);
  return current;
}
