import { describe, expect, it } from 'vitest';
import { BackfillJobSchema, backfillJob, backfillWindow } from '../../../lambdas/market/backfill/job';
import { tradingDays } from '../../../lambdas/market/calendar';
import {
  capTierOf,
  etfThemeOf,
  issuerOfFundName,
  sectorOfSic,
  universesFor,
} from '../../../lambdas/market/ipo/classify';
import { createScenarioMarket, generateUniverse } from '../../../localstack/scenarios';

describe('IPO classification', () => {
  it('maps the SIC codes of the synthetic universe to the sectors it was generated with', () => {
    // Prepare
    const stocks = generateUniverse({ seed: 'classify', size: 2000 }).filter((r) => r.type === 'CS');

    // Act
    const wrong = stocks.filter((r) => sectorOfSic(r.sicCode) !== r.sector);

    // Assess
    expect(stocks.length).toBeGreaterThan(1500);
    expect(wrong.map((r) => `${r.sicCode} ${r.sector}`)).toEqual([]);
  });

  it('infers ETF themes from name, issuer and index for at least 95 % of the generated funds', () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'ipo', seed: 'classify', size: 8000 });
    const expected = market.expectedOutcomes().etfThemes;
    const funds = market.universe.filter((r) => r.type === 'ETF');

    // Act
    const hits = funds.filter((r) => etfThemeOf(r) === expected[r.symbol]).length;
    // What the provider's details give: the name only (no issuer, no index).
    const nameOnly = funds.filter((r) => etfThemeOf({ name: r.name }) === expected[r.symbol]).length;

    // Assess
    expect(funds.length).toBeGreaterThan(200);
    expect(hits / funds.length).toBeGreaterThanOrEqual(0.95);
    expect(nameOnly / funds.length).toBeGreaterThanOrEqual(0.9);
  });

  it('keeps the specific theme where keywords overlap', () => {
    expect(
      etfThemeOf({
        name: 'SPDR Dividend Aristocrats ETF',
        underlyingIndex: 'S&P High Yield Dividend Aristocrats Index',
      }),
    ).toBe('dividend');
    expect(etfThemeOf({ name: 'Invesco Technology Sector ETF' })).toBe('technology');
    expect(etfThemeOf({ name: 'iShares Russell 1000 Growth ETF' })).toBe('growth');
    expect(etfThemeOf({ name: 'Schwab 20+ Year Treasury Bond ETF' })).toBe('bonds');
    expect(etfThemeOf({ name: 'Acme Holdings' })).toBeNull();
  });

  it('tiers market caps on the universe sync thresholds', () => {
    expect([250e9, 200e9, 199e9, 10e9, 2e9, 300e6, 299e6, 0, null].map(capTierOf)).toEqual([
      'mega',
      'mega',
      'large',
      'large',
      'mid',
      'small',
      'micro',
      null,
      null,
    ]);
  });

  it('names issuers from fund brands and assigns stocks to tier and sector, ETFs to their theme', () => {
    expect(issuerOfFundName('iShares MSCI Japan ETF')).toBe('BlackRock');
    expect(issuerOfFundName('Apex Holdings Inc.')).toBeNull();
    const base = {
      name: 'X',
      issuer: null,
      underlyingIndex: null,
      sector: null,
      marketCap: 5e9,
      sicCode: '2834',
    };
    expect(universesFor({ ...base, type: 'CS' })).toEqual([
      { category: 'market_cap', name: 'mid' },
      { category: 'sector', name: 'health_care' },
    ]);
    expect(universesFor({ ...base, type: 'ETF', name: 'VanEck Semiconductor ETF', marketCap: null })).toEqual(
      [{ category: 'etf', name: 'technology' }],
    );
    expect(universesFor({ ...base, type: 'WARRANT' })).toEqual([]);
  });
});

describe('backfill job', () => {
  it('covers 90 calendar days ending on the scan date', () => {
    // Act
    const window = backfillWindow('2025-06-16');
    const job = backfillJob('ABCD', '2025-06-16', 'ipo', { now: new Date('2025-06-16T21:00:00Z') });

    // Assess
    expect(window).toEqual({ from: '2025-03-19', to: '2025-06-16' });
    expect(tradingDays(window.from, window.to)).toHaveLength(62);
    expect(BackfillJobSchema.parse(job)).toEqual({
      symbol: 'ABCD',
      as_of: '2025-06-16',
      ...window,
      reason: 'ipo',
      requested_at: '2025-06-16T21:00:00.000Z',
    });
    expect(BackfillJobSchema.safeParse({ ...job, from: '2025-07-01' }).success).toBe(false);
  });
});
