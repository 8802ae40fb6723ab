/**
 * US equity sessions from the project's NYSE calendar: pre-market 04:00-09:30 ET, the regular
 * session 09:30-16:00 (13:00 on early closes), after-hours until 20:00 (17:00 on early closes), closed
 * otherwise and all day on weekends and holidays.
 */
import { closeTime, isTradingDay, tradingDayOnOrAfter } from '../market/calendar';
import type { Session } from './types';

const ET = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

export function easternParts(ms: number): { date: string; minutes: number } {
  const parts = Object.fromEntries(ET.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/** UTC milliseconds of an Eastern wall-clock time (EST or EDT, whichever is in force that day). */
export function easternToUtc(date: string, minutes: number): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  for (const offsetHours of [4, 5]) {
    const ms = Date.UTC(y, m - 1, d, 0, minutes) + offsetHours * 3_600_000;
    const parts = easternParts(ms);
    if (parts.date === date && parts.minutes === minutes) return ms;
  }
  throw new Error(`no Eastern time ${date} +${minutes} min`);
}

function boundaries(date: string): { minutes: number; session: Session }[] {
  const close = closeTime(date);
  if (!close) return [];
  const closeMin = close === '13:00' ? 13 * 60 : 16 * 60;
  return [
    { minutes: 4 * 60, session: 'pre-market' },
    { minutes: 9 * 60 + 30, session: 'open' },
    { minutes: closeMin, session: 'after-hours' },
    { minutes: closeMin + 4 * 60, session: 'closed' },
  ];
}

export function sessionAt(ms: number): Session {
  const { date, minutes } = easternParts(ms);
  if (!isTradingDay(date)) return 'closed';
  let session: Session = 'closed';
  for (const b of boundaries(date)) if (minutes >= b.minutes) session = b.session;
  return session;
}

/** The next session change strictly after ms. */
export function nextSessionChange(ms: number): { at: number; session: Session } {
  let { date } = easternParts(ms);
  for (let i = 0; i < 30; i++) {
    const day = tradingDayOnOrAfter(date);
    for (const b of boundaries(day)) {
      const at = easternToUtc(day, b.minutes);
      if (at > ms) return { at, session: b.session };
    }
    const next = new Date(Date.parse(`${day}T12:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    date = next;
  }
  throw new Error('no session change within 30 days');
}
