import { describe, expect, it } from 'vitest';
import { tradingDays } from '../../../lambdas/market/calendar';
import {
  type EquityTypeSchedule,
  InvalidDispatchOptionsError,
  planDispatch,
  SQS_MAX_DELAY_SECONDS,
} from '../../../lambdas/market/equity-processing/dispatch';
import { EquityBatchSchema, refreshWindow } from '../../../lambdas/market/equity-processing/message';
import { refreshBars } from '../../../lambdas/market/equity-processing/worker';
import type { DailyBar } from '../../../lambdas/market/types';

// The six seeded types of schemas/sql/0110_equity_types.sql (priority, batch, rate limit, lease).
const SEEDS: EquityTypeSchedule[] = [
  { typeName: 'DEV_TESTING', priorityLevel: 10, batchSize: 10, rateLimitMs: 6000, leaseSeconds: 300 },
  { typeName: 'ETF', priorityLevel: 90, batchSize: 50, rateLimitMs: 12000, leaseSeconds: 900 },
  { typeName: 'ETN', priorityLevel: 70, batchSize: 25, rateLimitMs: 15000, leaseSeconds: 900 },
  { typeName: 'PENNY_STOCK', priorityLevel: 30, batchSize: 50, rateLimitMs: 20000, leaseSeconds: 900 },
  { typeName: 'STOCK_EOD', priorityLevel: 50, batchSize: 100, rateLimitMs: 12000, leaseSeconds: 900 },
  { typeName: 'STOCK_REALTIME', priorityLevel: 100, batchSize: 25, rateLimitMs: 6000, leaseSeconds: 300 },
];

function seed(name: string): EquityTypeSchedule {
  const s = SEEDS.find((t) => t.typeName === name);
  if (!s) throw new Error(`no seed ${name}`);
  return s;
}

describe('dispatch plan', () => {
  it('orders the seeded types by priority and keeps each type batch size', () => {
    // Prepare / Act
    const plan = planDispatch(SEEDS);

    // Assess
    expect(plan.map((p) => p.type)).toEqual([
      'STOCK_REALTIME',
      'ETF',
      'ETN',
      'STOCK_EOD',
      'PENNY_STOCK',
      'DEV_TESTING',
    ]);
    expect(plan.map((p) => p.batchSize)).toEqual([25, 50, 25, 100, 50, 10]);
    expect(plan.map((p) => p.stepSeconds)).toEqual([6, 12, 15, 12, 20, 6]);
  });

  it('spaces consecutive batches of a type by its rate limit and stays inside the window, SQS and the lease', () => {
    // Prepare
    const windowSeconds = 900;
    const leaseMarginSeconds = 180;

    // Act
    const plan = planDispatch(SEEDS, { windowSeconds, leaseMarginSeconds });

    // Assess: by hand for two types (a 300 s lease and a 900 s lease)
    const realtime = plan.find((p) => p.type === 'STOCK_REALTIME');
    expect(realtime?.delays).toEqual(Array.from({ length: 21 }, (_, k) => k * 6)); // 0..120 = 300 - 180
    expect(realtime?.limitedBy).toBe('lease');
    const penny = plan.find((p) => p.type === 'PENNY_STOCK');
    expect(penny?.delays.at(-1)).toBe(720); // 900 - 180, a multiple of 20
    expect(penny?.delays).toHaveLength(37);

    // Assess: the rules for every type
    for (const p of plan) {
      const t = seed(p.type);
      expect(p.delays[0]).toBe(0);
      for (let k = 1; k < p.delays.length; k++) {
        expect((p.delays[k] as number) - (p.delays[k - 1] as number)).toBeGreaterThanOrEqual(
          t.rateLimitMs / 1000,
        );
      }
      const last = p.delays.at(-1) as number;
      expect(last).toBeLessThanOrEqual(SQS_MAX_DELAY_SECONDS);
      expect(last).toBeLessThanOrEqual(t.leaseSeconds - leaseMarginSeconds);
      // The next run starts `window` later with delay 0: still at least one step after this run's last.
      expect(windowSeconds - last).toBeGreaterThanOrEqual(t.rateLimitMs / 1000);
      // Maximal: one more batch would break a bound.
      expect(
        last + p.stepSeconds > Math.min(windowSeconds - p.stepSeconds, t.leaseSeconds - leaseMarginSeconds),
      ).toBe(true);
    }
  });

  it('keeps the rate limit across runs when the window binds (a 5-minute schedule)', () => {
    // Prepare / Act
    const [etf] = planDispatch([seed('ETF')], { windowSeconds: 300, leaseMarginSeconds: 180 });

    // Assess: 0, 12, ..., 288; the next run's first batch at 300 is 12 s after 288
    expect(etf?.limitedBy).toBe('window');
    expect(etf?.delays).toHaveLength(25);
    expect(etf?.delays.at(-1)).toBe(288);
  });

  it('never asks SQS for more than 900 s of delay', () => {
    // Prepare: a window and lease longer than SQS allows
    const long: EquityTypeSchedule = {
      typeName: 'SLOW',
      priorityLevel: 1,
      batchSize: 5,
      rateLimitMs: 7000,
      leaseSeconds: 7200,
    };

    // Act
    const [p] = planDispatch([long], { windowSeconds: 3600, leaseMarginSeconds: 0 });

    // Assess: 0, 7, ..., 896 (floor(900 / 7) = 128)
    expect(p?.limitedBy).toBe('sqs_max_delay');
    expect(p?.delays).toHaveLength(129);
    expect(p?.delays.at(-1)).toBe(896);
  });

  it('rounds sub-second rate limits up to whole seconds, so SQS granularity never shortens the spacing', () => {
    // Prepare
    const t: EquityTypeSchedule = {
      typeName: 'X',
      priorityLevel: 5,
      batchSize: 3,
      rateLimitMs: 1500,
      leaseSeconds: 900,
    };

    // Act
    const [p] = planDispatch([t], { windowSeconds: 10, leaseMarginSeconds: 0 });

    // Assess
    expect(p?.stepSeconds).toBe(2);
    expect(p?.delays).toEqual([0, 2, 4, 6, 8]);
  });

  it('bounds a type without a rate limit by maxBatchesPerType, all at once', () => {
    // Prepare
    const t: EquityTypeSchedule = {
      typeName: 'FREE',
      priorityLevel: 5,
      batchSize: 3,
      rateLimitMs: 0,
      leaseSeconds: 900,
    };

    // Act
    const [p] = planDispatch([t], { maxBatchesPerType: 4 });

    // Assess
    expect(p?.delays).toEqual([0, 0, 0, 0]);
    expect(p?.limitedBy).toBe('max_batches');
  });

  it('still sends one batch per run for a type whose step exceeds the window or whose lease is short', () => {
    // Prepare
    const slow: EquityTypeSchedule = {
      typeName: 'A',
      priorityLevel: 2,
      batchSize: 3,
      rateLimitMs: 120_000,
      leaseSeconds: 900,
    };
    const shortLease: EquityTypeSchedule = {
      typeName: 'B',
      priorityLevel: 1,
      batchSize: 3,
      rateLimitMs: 6000,
      leaseSeconds: 60,
    };

    // Act
    const plan = planDispatch([shortLease, slow], { windowSeconds: 60, leaseMarginSeconds: 180 });

    // Assess
    expect(plan.map((p) => [p.type, p.delays])).toEqual([
      ['A', [0]],
      ['B', [0]],
    ]);
  });

  it('breaks priority ties by type name, and refuses nonsense options', () => {
    // Prepare
    const a: EquityTypeSchedule = {
      typeName: 'BBB',
      priorityLevel: 50,
      batchSize: 1,
      rateLimitMs: 0,
      leaseSeconds: 900,
    };
    const b: EquityTypeSchedule = { ...a, typeName: 'AAA' };

    // Act / Assess
    expect(planDispatch([a, b]).map((p) => p.type)).toEqual(['AAA', 'BBB']);
    expect(() => planDispatch([a], { windowSeconds: 0 })).toThrow(InvalidDispatchOptionsError);
    expect(() => planDispatch([a], { maxBatchesPerType: 1.5 })).toThrow(InvalidDispatchOptionsError);
    expect(() => planDispatch([a], { leaseMarginSeconds: -1 })).toThrow(InvalidDispatchOptionsError);
  });
});

describe('equity batch message and refresh window', () => {
  it('refreshes the last five NYSE sessions by default, holidays skipped', () => {
    // Prepare / Act: 2025-06-19 (Juneteenth) is a holiday
    const { from, to } = refreshWindow('2025-06-23');

    // Assess
    expect(tradingDays(from, to)).toEqual([
      '2025-06-16',
      '2025-06-17',
      '2025-06-18',
      '2025-06-20',
      '2025-06-23',
    ]);
  });

  it('rejects a batch without claims or with a malformed claim', () => {
    // Prepare
    const batch = {
      type: 'ETF',
      dispatch_id: 'd1',
      batch_index: 0,
      delay_seconds: 0,
      claimed_at: '2025-06-16T21:00:00.000Z',
      as_of: '2025-06-16',
      from: '2025-06-10',
      to: '2025-06-16',
      symbols: [{ symbol: 'SPY', queue_id: '17', attempts: 1 }],
    };

    // Act / Assess
    expect(EquityBatchSchema.safeParse(batch).success).toBe(true);
    expect(EquityBatchSchema.safeParse({ ...batch, symbols: [] }).success).toBe(false);
    expect(
      EquityBatchSchema.safeParse({ ...batch, symbols: [{ symbol: 'SPY', queue_id: 'x', attempts: 1 }] })
        .success,
    ).toBe(false);
    expect(EquityBatchSchema.safeParse({ ...batch, delay_seconds: 901 }).success).toBe(false);
    expect(EquityBatchSchema.safeParse({ ...batch, from: '2025-06-17' }).success).toBe(false);
  });

  it('keeps only valid bars of the symbol on trading days inside the window, one per date', () => {
    // Prepare
    const bar = (date: string, over: Partial<DailyBar> = {}): DailyBar => ({
      symbol: 'SPY',
      date,
      open: 10,
      high: 11,
      low: 9,
      close: 10.5,
      volume: 1000,
      vwap: 10.2,
      transactions: 50,
      ...over,
    });
    const bars = [
      bar('2025-06-09'), // before the window
      bar('2025-06-16', { close: 10.1 }),
      bar('2025-06-16', { close: 10.4 }), // a later duplicate wins
      bar('2025-06-14'), // Saturday
      bar('2025-06-17', { high: 9.5 }), // high below open: invalid
      bar('2025-06-18', { symbol: 'QQQ' }),
      bar('2025-06-18'),
    ];

    // Act
    const kept = refreshBars('SPY', '2025-06-10', '2025-06-18', bars);

    // Assess
    expect(kept.map((b) => [b.date, b.close])).toEqual([
      ['2025-06-16', 10.4],
      ['2025-06-18', 10.5],
    ]);
  });
});
