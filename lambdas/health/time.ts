/**
 * Local time from a record's zone offset id. Health Connect stores instants in UTC plus a
 * `ZoneOffset` id per record ("Z", "-05:00", "+05:30"); time-of-day logic (fasting window,
 * overnight, bedtime, daily totals) must use that local time, never the machine's or UTC.
 */

const OFFSET = /^([+-])(\d{2}):?(\d{2})?(?::?(\d{2}))?$/;
const offsetCache = new Map<string, number | undefined>();

/** Offset in minutes east of UTC for a fixed-offset id; undefined when the id is not a fixed offset. */
export function parseZoneOffset(id: string | null | undefined): number | undefined {
  if (id === null || id === undefined || id === '') return undefined;
  if (offsetCache.has(id)) return offsetCache.get(id);
  let minutes: number | undefined;
  if (id === 'Z' || id === 'UTC' || id === 'GMT') minutes = 0;
  else {
    const m = OFFSET.exec(id);
    if (m) {
      const h = Number(m[2]);
      const mm = Number(m[3] ?? '0');
      if (h <= 18 && mm < 60) minutes = (m[1] === '-' ? -1 : 1) * (h * 60 + mm);
    }
  }
  if (offsetCache.size < 256) offsetCache.set(id, minutes);
  return minutes;
}

/** Region ids ("America/New_York") are not what the app writes, but are cheap to honour. */
function regionOffsetMinutes(zone: string, epochMillis: number): number | undefined {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      timeZoneName: 'longOffset',
    }).formatToParts(new Date(epochMillis));
    const name = parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
    if (name === 'GMT') return 0;
    return parseZoneOffset(name.replace(/^GMT/, ''));
  } catch {
    return undefined;
  }
}

/** Offset to apply to `epochMillis`; unknown or missing zone ids fall back to UTC (callers flag it). */
export function offsetMinutesAt(zone: string | null | undefined, epochMillis: number): number {
  const fixed = parseZoneOffset(zone);
  if (fixed !== undefined) return fixed;
  if (zone?.includes('/')) return regionOffsetMinutes(zone, epochMillis) ?? 0;
  return 0;
}

export function isKnownZone(zone: string | null | undefined): boolean {
  if (parseZoneOffset(zone) !== undefined) return true;
  return !!zone && zone.includes('/') && regionOffsetMinutes(zone, 0) !== undefined;
}

export interface LocalTime {
  /** YYYY-MM-DD in the record's local time. */
  readonly date: string;
  readonly hour: number;
  readonly minute: number;
  /** Minutes since local midnight, 0-1439. */
  readonly minuteOfDay: number;
}

const DAY = 86_400_000;

/** Minutes since local midnight (0-1439), without building a Date: for per-reading hot paths. */
export function localMinuteOfDay(epochMillis: number, zone: string | null | undefined): number {
  const shifted = epochMillis + offsetMinutesAt(zone, epochMillis) * 60_000;
  return Math.floor((((shifted % DAY) + DAY) % DAY) / 60_000);
}

/** Whole local hours since the epoch: a numeric bucket key for hourly summaries. */
export function localHourIndex(epochMillis: number, zone: string | null | undefined): number {
  return Math.floor((epochMillis + offsetMinutesAt(zone, epochMillis) * 60_000) / 3_600_000);
}

export function localTime(epochMillis: number, zone: string | null | undefined): LocalTime {
  const shifted = epochMillis + offsetMinutesAt(zone, epochMillis) * 60_000;
  const minuteOfDay = Math.floor((((shifted % DAY) + DAY) % DAY) / 60_000);
  return {
    date: new Date(shifted).toISOString().slice(0, 10),
    hour: Math.floor(minuteOfDay / 60),
    minute: minuteOfDay % 60,
    minuteOfDay,
  };
}

export function formatOffset(minutes: number): string {
  if (minutes === 0) return 'Z';
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** ISO-8601 local timestamp with its offset, e.g. 2025-11-03T07:15:00-05:00. */
export function localIso(epochMillis: number, zone: string | null | undefined): string {
  const offset = offsetMinutesAt(zone, epochMillis);
  const shifted = new Date(epochMillis + offset * 60_000).toISOString().slice(0, 19);
  return `${shifted}${formatOffset(offset)}`;
}

/** Human form for narratives: "2025-11-03 07:15". */
export function localClock(epochMillis: number, zone: string | null | undefined): string {
  return localIso(epochMillis, zone).slice(0, 16).replace('T', ' ');
}

/** Human form of a zone id for narratives. */
export function describeZone(zone: string | null | undefined): string {
  if (zone === null || zone === undefined || zone === '') return 'UTC (no zone recorded)';
  if (parseZoneOffset(zone) === 0) return 'UTC';
  return `UTC${zone}`;
}
