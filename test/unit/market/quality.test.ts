import { describe, expect, it } from 'vitest';
import { type IsoDate, tradingDays } from '../../../lambdas/market/calendar';
import { InvalidStepEventError, parseStepEvent } from '../../../lambdas/market/eod/step-event';
import {
  alertMessageId,
  barAlerts,
  coverageAlerts,
  DEFAULT_QUALITY_CONFIG,
  InvalidQualityConfigError,
  markRechecked,
  priceSeverity,
  reclassifyUnverified,
  resolveQualityConfig,
  stableMessageId,
  UNVERIFIED,
} from '../../../lambdas/market/quality';
import type { BarFindingRow, CoverageRow } from '../../../lambdas/market/quality/sql';
import { EnvelopeSchema } from '../../../lambdas/platform/event-bus';

const C = DEFAULT_QUALITY_CONFIG;
const D = '2025-04-22'; // the Tuesday after Good Friday (2025-04-18) and a weekend

function bar(overrides: Partial<BarFindingRow>): BarFindingRow {
  return {
    symbol: 'ABC',
    prev_date: '2025-04-21',
    open: 100,
    high: 101,
    low: 99,
    close: 100,
    volume: 50_000,
    prev_close: 100,
    avg_volume: 50_000,
    avg_bars: 20,
    ...overrides,
  };
}

describe('price rules', () => {
  it('tiers severity by the size of the move in either direction', () => {
    const cases: [number, string | null][] = [
      [0.2, null],
      [0.2001, 'medium'],
      [-0.34, 'medium'],
      [0.35, 'high'],
      [-0.49, 'high'],
      [0.5, 'critical'],
      [-0.7, 'critical'],
    ];

    const got = cases.map(([m]) => priceSeverity(m, C.price.move, C));

    expect(got).toEqual(cases.map(([, s]) => s));
  });

  it('reports a close-to-close move and an intraday range over 30 % of the previous close', () => {
    const rows = [
      bar({ symbol: 'JMP', close: 140, high: 141 }),
      bar({ symbol: 'RNG', high: 118, low: 86, close: 101 }),
    ];

    const alerts = barAlerts(rows, D, new Map(), C);

    expect(alerts.map((a) => [a.symbol, a.alertType, a.kind, a.severity])).toEqual([
      ['JMP', 'price_anomaly', 'price_move', 'high'],
      ['RNG', 'price_anomaly', 'intraday_range', 'medium'],
    ]);
  });

  it('classifies a move the provider-reported split explains as a split, low severity', () => {
    const split = { symbol: 'SPL', executionDate: D, splitFrom: 1, splitTo: 2 };
    const rows = [bar({ symbol: 'SPL', prev_close: 100, close: 50.5, high: 51, low: 49.8 })];

    const [alert] = barAlerts(rows, D, new Map([['SPL', split]]), C);

    expect(alert?.kind).toBe('split');
    expect(alert?.severity).toBe('low');
    expect(alert?.remediation).toMatch(/corporate action/i);
    expect(alert?.details).toMatchObject({ ratio: 2, adjusted_move: 0.01 });
  });

  it('still judges what a split does not explain', () => {
    const split = { symbol: 'SPL', executionDate: D, splitFrom: 1, splitTo: 2 };
    const rows = [bar({ symbol: 'SPL', prev_close: 100, close: 30, high: 31, low: 29.5 })];

    const [alert] = barAlerts(rows, D, new Map([['SPL', split]]), C);

    expect(alert?.kind).toBe('price_move');
    expect(alert?.severity).toBe('high'); // 30 vs the adjusted 50: -40 %
  });
});

describe('split lookup unreachable', () => {
  const split = { symbol: 'SPL', executionDate: D, splitFrom: 1, splitTo: 2 };
  const rows = [
    bar({ symbol: 'SPL', prev_close: 100, close: 50.5, high: 51, low: 49.8 }),
    bar({ symbol: 'JMP', close: 140, high: 141 }),
  ];

  it('records the price alerts as unverified, judged as if no split, and says so', () => {
    const alerts = barAlerts(rows, D, UNVERIFIED, C);

    expect(alerts.map((a) => [a.symbol, a.kind, a.severity, a.details.split_check])).toEqual([
      ['SPL', 'price_move', 'high', 'unverified'],
      ['JMP', 'price_move', 'high', 'unverified'],
    ]);
    expect(alerts.every((a) => /not yet checked against splits/.test(a.description))).toBe(true);
  });

  it('re-classifies them from their stored bar once the splits are known: a split, or a verified move', () => {
    const pending = barAlerts(rows, D, UNVERIFIED, C).map((a) => ({
      symbol: a.symbol,
      tradeDate: a.tradeDate,
      details: JSON.parse(JSON.stringify({ kind: a.kind, ...a.details })) as Record<string, unknown>,
    }));

    const again = reclassifyUnverified(pending, (d) => new Map(d === D ? [['SPL', split]] : []), C);

    expect(again.map((a) => [a.symbol, a.tradeDate, a.kind, a.severity, a.details.split_check])).toEqual([
      ['SPL', D, 'split', 'low', 'rechecked'],
      ['JMP', D, 'price_move', 'high', 'rechecked'],
    ]);
    expect(again).toEqual(barAlerts(rows, D, new Map([['SPL', split]]), C).map(markRechecked));
    // A new id: the app hears of the classification even when it matches an earlier message.
    const [plain] = barAlerts(rows, D, new Map([['SPL', split]]), C);
    expect(again[0] && alertMessageId(again[0])).not.toBe(plain && alertMessageId(plain));
  });

  it('gives an unverified finding its own message id, so its verification is a new message', () => {
    const [unverified] = barAlerts(rows.slice(1), D, UNVERIFIED, C);
    const [verified] = barAlerts(rows.slice(1), D, new Map(), C);

    expect(unverified && alertMessageId(unverified)).not.toBe(verified && alertMessageId(verified));
    expect(verified && alertMessageId(verified)).toBe(
      alertMessageId({
        alertType: 'price_anomaly',
        symbol: 'JMP',
        tradeDate: D,
        kind: 'price_move',
        severity: 'high',
      }),
    );
  });
});

describe('volume rules', () => {
  it('spike above 5x is high, drought under 0.1x and zero volume are medium; the limits themselves are not alerts', () => {
    const rows = [
      bar({ symbol: 'S5', volume: 250_000 }),
      bar({ symbol: 'S6', volume: 250_001 }),
      bar({ symbol: 'D1', volume: 5_000 }),
      bar({ symbol: 'D0', volume: 4_999 }),
      bar({ symbol: 'Z', volume: 0 }),
    ];

    const alerts = barAlerts(rows, D, new Map(), C);

    expect(alerts.map((a) => [a.symbol, a.kind, a.severity])).toEqual([
      ['S6', 'volume_spike', 'high'],
      ['D0', 'volume_drought', 'medium'],
      ['Z', 'zero_volume', 'medium'],
    ]);
  });

  it('ignores thin symbols and symbols without 20 previous bars', () => {
    const rows = [
      bar({ symbol: 'THIN', avg_volume: 999, volume: 0 }),
      bar({ symbol: 'NEW', avg_bars: 19, volume: 10_000_000 }),
    ];

    expect(barAlerts(rows, D, new Map(), C)).toEqual([]);
  });
});

describe('coverage rules', () => {
  const sessions: IsoDate[] = tradingDays('2025-01-17', D).slice(-63);
  const n = (date: IsoDate) => sessions.indexOf(date) + 1;
  const full = (overrides: Partial<CoverageRow>): CoverageRow => ({
    symbol: 'ABC',
    list_date: null,
    bars: sessions.length,
    first_n: 1,
    last_n: sessions.length,
    hole_prev: null,
    hole_next: null,
    last_before: null,
    ...overrides,
  });

  it('measures a gap across Good Friday and a weekend in sessions and keys it by the first missing one', () => {
    // Bars on 04-16 and 04-22: 04-17 and 04-21 are missing; 04-18 is a holiday, 04-19/20 a weekend.
    const rows = [full({ bars: 61, hole_prev: [n('2025-04-16')], hole_next: [n('2025-04-22')] })];

    const { alerts } = coverageAlerts(rows, sessions, new Map(), C);

    expect(alerts.map((a) => [a.alertType, a.tradeDate, a.severity, a.details.missing_sessions])).toEqual([
      ['data_gap', '2025-04-17', 'medium', 2],
    ]);
  });

  it('a symbol trading straight through the holiday has no alert at all', () => {
    expect(coverageAlerts([full({})], sessions, new Map(), C).alerts).toEqual([]);
  });

  it('staleness counts sessions since the last bar: 2 is fine, 3 is medium, 7 is high', () => {
    const rows = [2, 3, 7].map((since) =>
      full({ symbol: `S${since}`, last_n: sessions.length - since, bars: sessions.length - since }),
    );

    const { alerts } = coverageAlerts(rows, sessions, new Map(), C);

    expect(alerts.map((a) => [a.symbol, a.kind, a.severity, a.tradeDate])).toEqual([
      ['S3', 'stale', 'medium', sessions[sessions.length - 4]],
      ['S7', 'stale', 'high', sessions[sessions.length - 8]],
    ]);
  });

  it('completeness under 80 % is medium, under 50 % high, and keeps an open episode key', () => {
    const patchy = (symbol: string, bars: number) => full({ symbol, bars });
    const rows = [patchy('OK', 51), patchy('MED', 50), patchy('HIGH', 31)];

    const { alerts, stats } = coverageAlerts(rows, sessions, new Map([['HIGH', '2025-03-03']]), C);

    expect(alerts.map((a) => [a.symbol, a.alertType, a.severity, a.tradeDate])).toEqual([
      ['MED', 'incomplete_data', 'medium', D],
      ['HIGH', 'incomplete_data', 'high', '2025-03-03'],
    ]);
    expect(stats).toEqual({ expectedBars: 3 * 63, presentBars: 51 + 50 + 31 });
  });

  it('a symbol without bars listed before the calendar range (1981) is stale, not an error', () => {
    // A provider's listing date for an old stock; the check threw CalendarRangeError here, failing
    // the EOD chain's quality step until a back-fill gave the symbol bars.
    const rows = [full({ symbol: 'OLD', bars: 0, first_n: null, last_n: null, list_date: '1981-03-02' })];

    const { alerts } = coverageAlerts(rows, sessions, new Map(), C);

    const stale = alerts.find((a) => a.alertType === 'stale_data');
    expect(stale).toMatchObject({
      symbol: 'OLD',
      kind: 'no_data',
      severity: 'high',
      tradeDate: '1981-03-02',
    });
    expect(stale?.details.sessions_since_listing).toBeGreaterThan(8_000);
  });

  it('a short history (new listing) is measured from its first bar', () => {
    const rows = [full({ first_n: 60, bars: 4, list_date: sessions[59] ?? null })];

    expect(coverageAlerts(rows, sessions, new Map(), C).alerts).toEqual([]);
  });
});

describe('configuration, event and message ids', () => {
  it('overrides merge with the defaults and bad values are refused', () => {
    const cfg = resolveQualityConfig({ volume: { spikeMultiple: 8 }, completeness: { windowSessions: 20 } });

    expect(cfg.volume).toMatchObject({ spikeMultiple: 8, averageSessions: 20, droughtMultiple: 0.1 });
    expect(cfg.completeness.windowSessions).toBe(20);
    expect(() => resolveQualityConfig({ volume: { lookbackSessions: 10 } })).toThrow(
      InvalidQualityConfigError,
    );
    expect(() => resolveQualityConfig({ price: { move: -1 } })).toThrow(InvalidQualityConfigError);
  });

  it('defaults the trade date to the previous NYSE session in New York (Good Friday skipped)', () => {
    const previous = { defaultSession: 'previous' } as const;
    expect(parseStepEvent({}, { ...previous, now: new Date('2025-04-21T14:00:00Z') }).tradeDate).toBe(
      '2025-04-17',
    );
    expect(parseStepEvent({ tradeDate: '2025-03-14' }, previous).tradeDate).toBe('2025-03-14');
    expect(() => parseStepEvent({ tradeDate: '14/03/2025' }, previous)).toThrow(InvalidStepEventError);
  });

  it('message ids are valid envelope UUIDs, stable, and change with the severity', () => {
    const a = {
      alertType: 'stale_data',
      kind: 'stale',
      symbol: 'ABC',
      tradeDate: D,
      severity: 'medium',
    } as const;

    const id = alertMessageId(a);

    expect(EnvelopeSchema.shape.message_id.safeParse(id).success).toBe(true);
    expect(alertMessageId({ ...a })).toBe(id);
    expect(alertMessageId({ ...a, severity: 'high' })).not.toBe(id);
    expect(stableMessageId('x', 1)).not.toBe(stableMessageId('x', 2));
  });
});
