import { describe, expect, it } from 'vitest';
import { notTradingReason } from '../../../lambdas/market/eod/load';
import {
  eodSignalDedupeKey,
  InvalidEodSignalError,
  parseEodSignal,
} from '../../../lambdas/market/eod/signal';
import { barProblem } from '../../../lambdas/market/sql/bars';
import {
  buildTargets,
  cleanupReason,
  DEFAULT_SYNC_RULES,
  isEligible,
  isRecentIpo,
  passesLiquidity,
  type SyncSymbol,
  stockThemesOf,
  type UniverseTarget,
} from '../../../lambdas/market/universe-sync/rules';

const D = '2025-07-02';

function stock(symbol: string, marketCap: number | null, extra: Partial<SyncSymbol> = {}): SyncSymbol {
  return {
    symbol,
    type: 'CS',
    active: true,
    delistedAt: null,
    listDate: '2010-01-04',
    firstSeen: '2025-01-02',
    marketCap,
    sector: 'Information Technology',
    sicCode: '7372',
    name: `${symbol} Inc.`,
    issuer: null,
    underlyingIndex: null,
    aum: null,
    avgVolume: 1e6,
    avgDollarVolume: 5e7,
    lastClose: 50,
    ...extra,
  };
}

function etf(symbol: string, name: string, aum: number, extra: Partial<SyncSymbol> = {}): SyncSymbol {
  return stock(symbol, null, {
    type: 'ETF',
    name,
    sector: null,
    sicCode: null,
    issuer: 'BlackRock',
    aum,
    ...extra,
  });
}

function target(targets: UniverseTarget[], key: string): string[] {
  const t = targets.find((x) => `${x.category}/${x.name}` === key);
  if (!t) throw new Error(`no target ${key}`);
  return t.symbols;
}

describe('universe rules', () => {
  it('puts common stocks in exactly one tier by the thresholds (mega >= 200B, large 10-200B, mid 2-10B, small 300M-2B, micro < 300M)', () => {
    // Prepare: values on both sides of every boundary
    const symbols = [
      stock('MEGA', 200e9),
      stock('LRGH', 199.99e9),
      stock('LRGL', 10e9),
      stock('MIDH', 9.99e9),
      stock('MIDL', 2e9),
      stock('SMLH', 1.99e9),
      stock('SMLL', 300e6),
      stock('MICR', 299.99e6),
      stock('NOCP', null),
    ];

    // Act
    const t = buildTargets(symbols, D);

    // Assess
    expect(target(t, 'market_cap/mega')).toEqual(['MEGA']);
    expect(target(t, 'market_cap/large')).toEqual(['LRGH', 'LRGL']);
    expect(target(t, 'market_cap/mid')).toEqual(['MIDH', 'MIDL']);
    expect(target(t, 'market_cap/small')).toEqual(['SMLH', 'SMLL']);
    expect(target(t, 'market_cap/micro')).toEqual(['MICR']);
    expect(target(t, 'market_cap/top_100')).not.toContain('NOCP');
  });

  it('ranks top-N by market cap (ties by ticker), common stocks only, eligible only', () => {
    // Prepare
    const symbols = [
      ...Array.from({ length: 120 }, (_, i) => stock(`S${String(i).padStart(3, '0')}`, (200 - i) * 1e9)),
      stock('TIEA', 150e9),
      etf('BIGE', 'iShares Core S&P 500 ETF', 500e9),
      stock('GONE', 900e9, { active: false, delistedAt: '2025-07-01' }),
      stock('LATE', 800e9, { listDate: '2025-07-03' }),
    ];

    // Act
    const t = buildTargets(symbols, D);

    // Assess
    const top = target(t, 'market_cap/top_100');
    expect(top).toHaveLength(100);
    expect(top[0]).toBe('S000');
    expect(top.indexOf('S050')).toBe(50);
    expect(top.indexOf('TIEA')).toBe(51); // 150e9 ties S050, ticker order
    expect(top).not.toContain('BIGE');
    expect(top).not.toContain('GONE');
    expect(top).not.toContain('LATE');
    expect(target(t, 'market_cap/top_500')).toHaveLength(121);
  });

  it('builds sector universes, their top-10 leaders and SIC themes', () => {
    // Prepare
    const tech = Array.from({ length: 12 }, (_, i) => stock(`T${i}`, (i + 1) * 1e9, { sicCode: '3674' }));
    const banks = [stock('BNK', 5e9, { sector: null, sicCode: '6021' })];

    // Act
    const t = buildTargets([...tech, ...banks], D);

    // Assess
    expect(target(t, 'sector/information_technology')).toHaveLength(12);
    expect(target(t, 'sector/information_technology_leaders')).toEqual([
      'T11',
      'T10',
      'T9',
      'T8',
      'T7',
      'T6',
      'T5',
      'T4',
      'T3',
      'T2',
    ]);
    // Sector inferred from the SIC code when the master has none, as the IPO scan does.
    expect(target(t, 'sector/financials')).toEqual(['BNK']);
    expect(target(t, 'theme/semiconductors')).toHaveLength(12);
    expect(target(t, 'theme/banks')).toEqual(['BNK']);
    expect(stockThemesOf('7372')).toEqual(['software']);
    expect(stockThemesOf(null)).toEqual([]);
  });

  it('fills ETF themes by inferred theme and liquidity filter, ordered by AUM', () => {
    // Prepare
    const f = DEFAULT_SYNC_RULES.etfLiquidityFilter;
    const symbols = [
      etf('GRW1', 'iShares Russell 1000 Growth ETF', 80e9),
      etf('GRW2', 'Vanguard Growth ETF', 90e9),
      etf('THIN', 'iShares Russell 2000 Growth ETF', 90e9, { avgDollarVolume: 1000 }),
      etf('TINY', 'SPDR Growth ETF', 1e6),
      etf('NOBR', 'iShares Core Growth ETF', 10e9, { avgDollarVolume: null }),
      etf('BOND', 'iShares Core US Aggregate Bond ETF', 100e9),
    ];

    // Act
    const t = buildTargets(symbols, D);

    // Assess
    expect(target(t, 'etf/growth')).toEqual(['GRW2', 'GRW1']);
    expect(target(t, 'etf/bonds')).toEqual(['BOND']);
    expect(t.find((x) => x.name === 'growth')?.liquidityFilter).toEqual(f);
    expect(passesLiquidity(symbols[4] as SyncSymbol, f)).toBe(false); // missing data fails a threshold
    expect(t.filter((x) => x.category === 'etf')).toHaveLength(9);
  });

  it('collects recent IPOs (first seen within 30 days up to the date) and decides who leaves', () => {
    // Prepare
    const fresh = stock('NEW1', 1e9, { firstSeen: '2025-06-03', listDate: '2025-06-03' });
    const old = stock('OLD1', 1e9, { firstSeen: '2025-06-02' });
    const future = stock('NEXT', 1e9, { firstSeen: '2025-07-03', listDate: '2025-07-03' });
    const dead = stock('DEAD', 1e9, { active: false, delistedAt: '2025-07-01' });

    // Act
    const t = buildTargets([fresh, old, future, dead], D);

    // Assess
    expect(isRecentIpo(fresh, D, 30)).toBe(true);
    expect(isRecentIpo(old, D, 30)).toBe(false);
    expect(target(t, 'ipo/recent')).toEqual(['NEW1']);
    expect(isEligible(future, D)).toBe(false);
    expect(cleanupReason(dead, D)).toBe('inactive');
    expect(cleanupReason(undefined, D)).toBe('unknown');
    expect(cleanupReason(fresh, D)).toBeNull();
    // Delisted in the future: still trades on D.
    expect(cleanupReason(stock('LEAV', 1e9, { delistedAt: '2025-07-10' }), D)).toBeNull();
  });
});

describe('EOD signal and load helpers', () => {
  it('parses the one signal definition and keys its dedupe on the outcome', () => {
    // Prepare
    const signal = {
      trade_date: D,
      status: 'COMPLETE',
      tracked_symbols: 100,
      symbols_with_bar: 97,
      missing_symbols: 3,
      coverage: 0.97,
      threshold: 0.95,
      bars_on_date: 120,
      missing_sample: ['A', 'B', 'C'],
    };

    // Act
    const parsed = parseEodSignal(signal);

    // Assess
    expect(eodSignalDedupeKey(parsed)).toBe(`eod.completed:${D}:COMPLETE:97/100`);
    expect(() => parseEodSignal({ ...signal, status: 'DONE' })).toThrow(InvalidEodSignalError);
    expect(() => parseEodSignal({ ...signal, coverage: 1.5 })).toThrow(InvalidEodSignalError);
  });

  it('refuses impossible bars and explains non-trading days', () => {
    // Prepare
    const bar = {
      symbol: 'AAA',
      date: D,
      open: 10,
      high: 11,
      low: 9,
      close: 10.5,
      volume: 100,
      vwap: 10,
      transactions: 5,
    };

    // Act / Assess
    expect(barProblem(bar, D)).toBeNull();
    expect(barProblem({ ...bar, high: 10.2 }, D)).toBe('high below open/close');
    expect(barProblem({ ...bar, low: 0 }, D)).toBe('non-positive or non-finite price');
    expect(barProblem({ ...bar, date: '2025-07-01' }, D)).toBe('bar dated 2025-07-01');
    expect(notTradingReason('2025-07-04')).toContain('Independence Day');
    expect(notTradingReason('2025-07-05')).toContain('weekend');
    // The same rule for loaders without a trade date (backfill, equity worker): any date, and a
    // present vwap must be positive while an absent one is allowed.
    expect(barProblem({ ...bar, date: '2025-07-01' })).toBeNull();
    expect(barProblem({ ...bar, vwap: 0 })).toBe('non-positive vwap');
    expect(barProblem({ ...bar, vwap: Number.NaN })).toBeNull();
  });
});
