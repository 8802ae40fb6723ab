import { describe, expect, it } from 'vitest';
import {
  addTradingDays,
  CalendarRangeError,
  closeTime,
  earlyClose,
  earlyCloses,
  easterSunday,
  holidayName,
  holidays,
  InvalidDateError,
  isTradingDay,
  latestSession,
  nextTradingDay,
  previousTradingDay,
  sessionDate,
  todayInNewYork,
  tradingDays,
  tradingDaysBetween,
} from '../../../lambdas/market/calendar';

// The NYSE's published holiday schedules (nyse.com/markets/hours-calendars), written out as literal
// dates so the rule-based calendar is checked against the exchange's own lists, not against itself.
const PUBLISHED_HOLIDAYS: Record<number, string[]> = {
  2020: [
    '2020-01-01',
    '2020-01-20',
    '2020-02-17',
    '2020-04-10',
    '2020-05-25',
    '2020-07-03',
    '2020-09-07',
    '2020-11-26',
    '2020-12-25',
  ],
  2021: [
    '2021-01-01',
    '2021-01-18',
    '2021-02-15',
    '2021-04-02',
    '2021-05-31',
    '2021-07-05',
    '2021-09-06',
    '2021-11-25',
    '2021-12-24',
  ],
  // New Year's Day 2022 fell on a Saturday: no closure on Friday 2021-12-31.
  2022: [
    '2022-01-17',
    '2022-02-21',
    '2022-04-15',
    '2022-05-30',
    '2022-06-20',
    '2022-07-04',
    '2022-09-05',
    '2022-11-24',
    '2022-12-26',
  ],
  2023: [
    '2023-01-02',
    '2023-01-16',
    '2023-02-20',
    '2023-04-07',
    '2023-05-29',
    '2023-06-19',
    '2023-07-04',
    '2023-09-04',
    '2023-11-23',
    '2023-12-25',
  ],
  2024: [
    '2024-01-01',
    '2024-01-15',
    '2024-02-19',
    '2024-03-29',
    '2024-05-27',
    '2024-06-19',
    '2024-07-04',
    '2024-09-02',
    '2024-11-28',
    '2024-12-25',
  ],
  2025: [
    '2025-01-01',
    '2025-01-09',
    '2025-01-20',
    '2025-02-17',
    '2025-04-18',
    '2025-05-26',
    '2025-06-19',
    '2025-07-04',
    '2025-09-01',
    '2025-11-27',
    '2025-12-25',
  ],
  2026: [
    '2026-01-01',
    '2026-01-19',
    '2026-02-16',
    '2026-04-03',
    '2026-05-25',
    '2026-06-19',
    '2026-07-03',
    '2026-09-07',
    '2026-11-26',
    '2026-12-25',
  ],
  2027: [
    '2027-01-01',
    '2027-01-18',
    '2027-02-15',
    '2027-03-26',
    '2027-05-31',
    '2027-06-18',
    '2027-07-05',
    '2027-09-06',
    '2027-11-25',
    '2027-12-24',
  ],
};

const PUBLISHED_EARLY_CLOSES: Record<number, string[]> = {
  2020: ['2020-11-27', '2020-12-24'],
  2021: ['2021-11-26'],
  2022: ['2022-11-25'],
  2023: ['2023-07-03', '2023-11-24'],
  2024: ['2024-07-03', '2024-11-29', '2024-12-24'],
  2025: ['2025-07-03', '2025-11-28', '2025-12-24'],
  2026: ['2026-11-27', '2026-12-24'],
  2027: ['2027-11-26'],
};

// Sessions per year as reported by the exchange (weekdays minus weekday closures).
const SESSIONS_PER_YEAR: Record<number, number> = {
  2020: 253,
  2021: 252,
  2022: 251,
  2023: 250,
  2024: 252,
  2025: 250,
  2026: 251,
  2027: 251,
};

describe('NYSE holidays', () => {
  for (const [y, expected] of Object.entries(PUBLISHED_HOLIDAYS)) {
    it(`matches the published ${y} holiday list`, () => {
      // Prepare
      const year = Number(y);

      // Act
      const actual = holidays(year).map((h) => h.date);

      // Assess
      expect(actual).toEqual(expected);
      for (const date of expected) {
        expect(isTradingDay(date)).toBe(false);
        expect(holidayName(date)).not.toBeNull();
      }
    });
  }

  it('names the holidays, including the special closure for President Carter', () => {
    expect(holidayName('2025-01-09')).toBe('National Day of Mourning (President Carter)');
    expect(holidayName('2024-03-29')).toBe('Good Friday');
    expect(holidayName('2023-01-02')).toBe("New Year's Day");
    expect(holidayName('2022-06-20')).toBe('Juneteenth National Independence Day');
    expect(holidayName('2025-01-10')).toBeNull();
    expect(holidayName('2025-01-11')).toBeNull(); // a plain Saturday is no holiday
  });

  it('has no Juneteenth closure before 2022', () => {
    expect(isTradingDay('2021-06-18')).toBe(true);
    expect(isTradingDay('2021-06-21')).toBe(true);
  });

  it('keeps Friday Dec 31 open when New Year falls on Saturday', () => {
    expect(isTradingDay('2021-12-31')).toBe(true);
    expect(isTradingDay('2027-12-31')).toBe(true);
    expect(holidays(2028).some((h) => h.date === '2027-12-31')).toBe(false);
  });

  it('computes Easter Sunday by the Gregorian computus', () => {
    expect(easterSunday(2024)).toBe('2024-03-31');
    expect(easterSunday(2025)).toBe('2025-04-20');
    expect(easterSunday(2027)).toBe('2027-03-28');
    expect(easterSunday(2038)).toBe('2038-04-25'); // latest possible date
  });
});

describe('early closes', () => {
  for (const [y, expected] of Object.entries(PUBLISHED_EARLY_CLOSES)) {
    it(`matches the published ${y} early closes`, () => {
      expect(earlyCloses(Number(y))).toEqual(expected);
      for (const date of expected) expect(closeTime(date)).toBe('13:00');
    });
  }

  it('reports normal and closed sessions', () => {
    expect(earlyClose('2024-07-05')).toBe(false);
    expect(closeTime('2024-07-05')).toBe('16:00');
    expect(closeTime('2024-07-04')).toBeNull();
    expect(closeTime('2024-07-06')).toBeNull();
  });
});

describe('weekends and counting', () => {
  it('treats weekends as closed and ordinary weekdays as open', () => {
    expect(isTradingDay('2024-06-15')).toBe(false); // Saturday
    expect(isTradingDay('2024-06-16')).toBe(false); // Sunday
    expect(isTradingDay('2024-06-17')).toBe(true);
  });

  for (const [y, sessions] of Object.entries(SESSIONS_PER_YEAR)) {
    it(`counts ${sessions} sessions in ${y}`, () => {
      const year = Number(y);
      expect(tradingDaysBetween(`${year - 1}-12-31`, `${year}-12-31`)).toBe(sessions);
      expect(tradingDays(`${year}-01-01`, `${year}-12-31`)).toHaveLength(sessions);
    });
  }

  it('defines tradingDaysBetween as (a, b]: start exclusive, end inclusive, antisymmetric', () => {
    expect(tradingDaysBetween('2024-06-17', '2024-06-17')).toBe(0);
    expect(tradingDaysBetween('2024-06-17', '2024-06-18')).toBe(1);
    // Fri -> Mon over a weekend is one session; Tue 06-18 -> Thu 06-20 skips Juneteenth.
    expect(tradingDaysBetween('2024-06-14', '2024-06-17')).toBe(1);
    expect(tradingDaysBetween('2024-06-18', '2024-06-20')).toBe(1);
    expect(tradingDaysBetween('2024-06-20', '2024-06-18')).toBe(-1);
    // Across several years equals the sum of the years.
    expect(tradingDaysBetween('2019-12-31', '2027-12-31')).toBe(
      Object.values(SESSIONS_PER_YEAR).reduce((a, b) => a + b, 0),
    );
  });

  it('lists trading days with both ends inclusive', () => {
    expect(tradingDays('2024-12-23', '2025-01-03')).toEqual([
      '2024-12-23',
      '2024-12-24',
      '2024-12-26',
      '2024-12-27',
      '2024-12-30',
      '2024-12-31',
      '2025-01-02',
      '2025-01-03',
    ]);
  });
});

describe('previous and next trading day', () => {
  it('steps over holidays, weekends and year ends', () => {
    expect(nextTradingDay('2024-12-31')).toBe('2025-01-02');
    expect(previousTradingDay('2025-01-02')).toBe('2024-12-31');
    expect(nextTradingDay('2025-01-08')).toBe('2025-01-10'); // Carter mourning day
    expect(previousTradingDay('2024-04-01')).toBe('2024-03-28'); // over Good Friday + weekend
    expect(nextTradingDay('2023-12-29')).toBe('2024-01-02');
    expect(previousTradingDay('2023-01-03')).toBe('2022-12-30'); // over observed New Year + weekend
    expect(nextTradingDay('2022-12-23')).toBe('2022-12-27'); // Christmas observed on Monday
    expect(nextTradingDay('2024-06-15')).toBe('2024-06-17'); // from a Saturday
    expect(previousTradingDay('2024-06-16')).toBe('2024-06-14'); // from a Sunday
  });

  it('moves n trading days', () => {
    expect(addTradingDays('2024-12-31', 1)).toBe('2025-01-02');
    expect(addTradingDays('2025-01-02', -1)).toBe('2024-12-31');
    expect(addTradingDays('2024-06-17', 0)).toBe('2024-06-17');
    expect(tradingDaysBetween('2024-01-02', addTradingDays('2024-01-02', 100))).toBe(100);
  });
});

describe('input validation', () => {
  it('rejects malformed and impossible dates with a named error', () => {
    expect(() => isTradingDay('2024-02-30')).toThrow(InvalidDateError);
    expect(() => isTradingDay('2024/01/02')).toThrow(InvalidDateError);
    expect(() => isTradingDay('2024-1-2')).toThrow(InvalidDateError);
  });

  it('refuses years outside the supported range', () => {
    expect(() => isTradingDay('1850-01-02')).toThrow(CalendarRangeError);
  });
});

describe('today in New York', () => {
  it('dates an instant by the New York calendar, not UTC', () => {
    // Prepare: 03:00 UTC on a Tuesday is still Monday evening in New York (EST).
    const instant = new Date('2026-03-03T03:00:00Z');
    // Act / Assess
    expect(todayInNewYork(instant)).toBe('2026-03-02');
    expect(sessionDate(instant.getTime())).toBe('2026-03-02');
  });

  it('answers the latest session on or before today: a Saturday gives the Friday', () => {
    expect(latestSession(new Date('2026-03-07T15:00:00Z'))).toBe('2026-03-06');
    expect(latestSession(new Date('2026-03-06T22:00:00Z'))).toBe('2026-03-06');
  });
});
