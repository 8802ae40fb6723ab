import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isTradingDay, nextTradingDay, tradingDays } from '../../../lambdas/market/calendar';
import { compareDetections, detectAnomalies } from '../../../localstack/scenarios/detect';
import {
  barProblems,
  createScenarioMarket,
  ETF_THEMES,
  generateUniverse,
  listScenarios,
  priceSeverity,
  SCENARIO_NAMES,
  type ScenarioMarket,
  type SymbolSeries,
  UnknownScenarioError,
} from '../../../localstack/scenarios/index';
import { generateProfiles } from '../../../localstack/scenarios/universe';
import { validateScenario } from '../../../localstack/scenarios/validate';

const SIZE = 200;

function fingerprint(market: ScenarioMarket): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(market.universe));
  for (const s of market.series()) hash.update(JSON.stringify(s));
  hash.update(JSON.stringify(market.expectedOutcomes()));
  return hash.digest('hex');
}

describe('reproducibility', () => {
  it('gives byte-identical universe, bars and outcomes for the same seed, different for another', () => {
    // Prepare
    const options = { scenario: 'crash_2020', seed: 1234, size: SIZE };

    // Act
    const first = fingerprint(createScenarioMarket(options));
    const second = fingerprint(createScenarioMarket(options));
    const other = fingerprint(createScenarioMarket({ ...options, seed: 1235 }));

    // Assess
    expect(second).toBe(first);
    expect(other).not.toBe(first);
  });

  it('regenerates one symbol alone exactly as in the full stream', () => {
    const market = createScenarioMarket({ scenario: 'high_low_events', seed: 5, size: SIZE });
    const streamed = [...market.series()];
    const pick = streamed[137] as SymbolSeries;
    expect(market.symbolSeries(pick.symbol)).toEqual(pick);
    expect(market.symbolSeries('NOPE_NOT_A_SYMBOL')).toBeNull();
  });

  it('gives every symbol its own series (the replaced generator gave all symbols the same bars)', () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'growth_2021', seed: 9, size: SIZE });

    // Act: the daily return sequence of each symbol, as a string key
    const keys = new Set<string>();
    let full = 0;
    for (const s of market.series()) {
      if (s.bars.length < 100) continue;
      full++;
      const returns = s.bars.slice(1, 60).map((b, i) => (b.close / (s.bars[i]?.close ?? 1)).toFixed(6));
      keys.add(returns.join(','));
    }

    // Assess
    expect(full).toBeGreaterThan(150);
    expect(keys.size).toBe(full);
  });
});

describe('bars', () => {
  for (const scenario of SCENARIO_NAMES) {
    it(`${scenario}: every bar valid, on a trading day, in order, one per session`, () => {
      // Prepare
      const market = createScenarioMarket({ scenario, seed: 77, size: SIZE });

      // Act
      const problems: string[] = [];
      let bars = 0;
      for (const s of market.series()) {
        bars += s.bars.length;
        s.bars.forEach((bar, i) => {
          for (const p of barProblems(bar)) problems.push(`${bar.symbol} ${bar.date} ${p}`);
          if (bar.symbol !== s.symbol) problems.push(`${bar.symbol} in ${s.symbol}'s series`);
          const prev = s.bars[i - 1];
          if (prev && prev.date >= bar.date) problems.push(`${bar.symbol} ${bar.date} out of order`);
        });
      }

      // Assess
      expect(problems).toEqual([]);
      expect(bars).toBeGreaterThan(SIZE * market.days.length * 0.8);
      expect(market.days).toEqual(tradingDays(market.start, market.end));
      expect(market.days.every(isTradingDay)).toBe(true);
    });
  }

  it('uses the requested window and session count', () => {
    const byStart = createScenarioMarket({ scenario: 'crash_2020', seed: 1, size: 20 });
    expect(byStart.days).toHaveLength(252);
    expect(byStart.start).toBe('2020-01-02');
    const byEnd = createScenarioMarket({ scenario: 'high_low_events', seed: 1, size: 20, end: '2025-07-05' });
    expect(byEnd.days).toHaveLength(63);
    expect(byEnd.end).toBe('2025-07-03'); // July 4 holiday and a Saturday are skipped
  });

  it('serves per-symbol ranges and grouped days consistent with the stream', () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'trend_changes', seed: 3, size: 50 });
    const date = market.days[100] as string;
    const all = [...market.series()];

    // Act
    const grouped = market.groupedBars(date);
    const first = all[0] as SymbolSeries;
    const range = market.bars(first.symbol, market.days[10], market.days[19]);

    // Assess
    expect(grouped).toEqual(all.flatMap((s) => s.bars.filter((b) => b.date === date)));
    expect(range).toEqual(
      first.bars.filter(
        (b) => b.date >= (market.days[10] as string) && b.date <= (market.days[19] as string),
      ),
    );
    expect(market.groupedBars('2023-01-01')).toEqual([]); // a Sunday: no session
  });

  it('rejects an unknown scenario with a named error', () => {
    expect(() => createScenarioMarket({ scenario: 'crash_1929', seed: 1 })).toThrow(UnknownScenarioError);
  });
});

describe('expected outcomes', () => {
  for (const scenario of SCENARIO_NAMES) {
    it(`${scenario}: re-detection from the bars finds exactly the injected anomalies`, () => {
      // Prepare
      const market = createScenarioMarket({ scenario, seed: 2024, size: SIZE });
      const records = new Map(market.universe.map((r) => [r.symbol, r]));

      // Act
      const outcomes = market.expectedOutcomes();
      const detected = [...market.series()].flatMap((s) =>
        detectAnomalies(s.symbol, s.bars, market.end, records.get(s.symbol)),
      );
      const comparison = compareDetections(outcomes.events, detected);

      // Assess
      expect(comparison.expected).toBeGreaterThan(0);
      expect(comparison.missed).toEqual([]);
      expect(comparison.unexpected).toEqual([]);
      expect(comparison.sizeMismatches).toEqual([]);
      const clean = new Set(outcomes.cleanSymbols);
      expect(clean.size).toBeGreaterThan(SIZE * 0.3);
      expect(detected.filter((d) => clean.has(d.symbol))).toEqual([]);
    });
  }

  it('records non-anomaly events as they are in the bars (IPO, delisting, gaps, splits, big days)', () => {
    // Prepare: scenarios where those events are frequent
    const checked: Record<string, number> = {};
    for (const scenario of ['ipo', 'splits', 'high_low_events', 'halts_gaps'] as const) {
      const market = createScenarioMarket({ scenario, seed: 11, size: SIZE });
      const records = new Map(market.universe.map((r) => [r.symbol, r]));

      // Act / Assess
      for (const s of market.series()) {
        const byDate = new Map(s.bars.map((b, i) => [b.date, i]));
        for (const e of s.events) {
          checked[e.kind] = (checked[e.kind] ?? 0) + 1;
          const i = byDate.get(e.date);
          const bar = i === undefined ? undefined : s.bars[i];
          const prev = i === undefined ? undefined : s.bars[i - 1];
          switch (e.kind) {
            case 'ipo':
              expect(s.bars[0]?.date).toBe(e.date);
              expect(records.get(s.symbol)?.listDate).toBe(e.date);
              break;
            case 'delisting':
              expect(records.get(s.symbol)?.delistedAt).toBe(e.date);
              expect(records.get(s.symbol)?.active).toBe(false);
              expect(nextTradingDay(s.bars[s.bars.length - 1]?.date as string)).toBe(e.date);
              break;
            case 'price_gap':
              expect(Math.abs((bar?.open ?? 0) / (prev?.close ?? 1) - 1 - e.size)).toBeLessThan(1e-5);
              expect(Math.abs(e.size)).toBeGreaterThanOrEqual(0.03);
              break;
            case 'price_jump':
            case 'split':
              expect(Math.abs((bar?.close ?? 0) / (prev?.close ?? 1) - 1 - e.size)).toBeLessThan(1e-5);
              expect(e.severity).toBe(e.anomaly ? priceSeverity(e.size) : null);
              if (e.kind === 'split') expect([2, 3]).toContain(e.ratio);
              if (!e.anomaly)
                expect(
                  e.size > 0 ? e.size >= 0.08 && e.size <= 0.15 : e.size >= -0.12 && e.size <= -0.08,
                ).toBe(true);
              break;
            case 'data_gap':
              expect(bar).toBeUndefined();
              expect(tradingDays(e.date, e.to as string)).toHaveLength(e.size);
              break;
            default:
              break;
          }
        }
      }
    }
    for (const kind of ['ipo', 'delisting', 'price_gap', 'price_jump', 'split', 'data_gap', 'stale']) {
      expect(checked[kind] ?? 0, kind).toBeGreaterThan(0);
    }
  });

  it('reports the crash drawdown and the regimes of the market factor', () => {
    const outcomes = createScenarioMarket({ scenario: 'crash_2020', seed: 1, size: 10 }).expectedOutcomes();
    expect(outcomes.market.maxDrawdown.size).toBeLessThan(-0.33);
    expect(outcomes.market.maxDrawdown.size).toBeGreaterThan(-0.45);
    expect(outcomes.market.regimes.map((r) => r.kind)).toEqual(['normal', 'crash', 'recovery', 'normal']);
    expect(outcomes.sessions).toBe(252);
  });
});

describe('universe', () => {
  it('has 200+ ETFs over at least 8 themes with issuer, AUM, expense ratio and index at 8,000 symbols', () => {
    // Prepare / Act
    const profiles = generateProfiles({ seed: 42 });
    const etfs = profiles.filter((p) => p.record.type === 'ETF');

    // Assess
    expect(profiles).toHaveLength(8000);
    expect(new Set(profiles.map((p) => p.record.symbol)).size).toBe(8000);
    expect(etfs.length).toBeGreaterThanOrEqual(200);
    const themes = new Set(etfs.map((p) => p.theme));
    expect(themes.size).toBeGreaterThanOrEqual(8);
    expect([...themes].every((t) => (ETF_THEMES as readonly (string | null)[]).includes(t))).toBe(true);
    for (const { record } of etfs) {
      expect(record.issuer).toBeTruthy();
      expect(record.underlyingIndex).toBeTruthy();
      expect(record.name).toMatch(/ETF$/);
      expect(record.aum).toBeGreaterThan(0);
      expect(record.expenseRatio).toBeGreaterThan(0);
      expect(record.expenseRatio).toBeLessThan(0.01);
    }
    expect(profiles.some((p) => p.record.type === 'ETN')).toBe(true);
  });

  it('spans every market-cap tier and sector with SIC codes for common stocks', () => {
    const stocks = generateUniverse({ seed: 42 }).filter((r) => r.type === 'CS');
    const caps = stocks.map((r) => r.marketCap ?? 0);
    expect(caps.filter((c) => c >= 200e9).length).toBeGreaterThan(0);
    expect(caps.filter((c) => c >= 10e9 && c < 200e9).length).toBeGreaterThan(100);
    expect(caps.filter((c) => c >= 2e9 && c < 10e9).length).toBeGreaterThan(100);
    expect(caps.filter((c) => c >= 300e6 && c < 2e9).length).toBeGreaterThan(100);
    expect(caps.filter((c) => c < 300e6).length).toBeGreaterThan(100);
    expect(new Set(stocks.map((r) => r.sector)).size).toBe(11);
    expect(
      stocks.every((r) => /^\d{4}$/.test(r.sicCode ?? '') && r.sicDescription && r.sharesOutstanding),
    ).toBe(true);
  });

  it('lists every scenario with its session count', () => {
    const sessions = Object.fromEntries(listScenarios().map((s) => [s.name, s.sessions]));
    expect(sessions).toMatchObject({
      crash_2020: 252,
      growth_2021: 252,
      volatility_periods: 126,
      trend_changes: 189,
      high_low_events: 63,
    });
  });
});

describe('validation with technical indicators', () => {
  for (const scenario of [
    'crash_2020',
    'growth_2021',
    'volatility_periods',
    'trend_changes',
    'high_low_events',
  ]) {
    it(`${scenario}: injected behaviour is visible`, () => {
      const report = validateScenario(createScenarioMarket({ scenario, seed: 31, size: SIZE }));
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.checks.length).toBeGreaterThanOrEqual(5);
    });
  }

  it('fails when an injected volume spike is flattened out of the bars', () => {
    // Prepare: the same market, but each volume spike replaced by an ordinary volume
    const market = createScenarioMarket({ scenario: 'high_low_events', seed: 31, size: SIZE });
    const tampered: ScenarioMarket = {
      ...market,
      *series() {
        for (const s of market.series()) {
          const spikes = new Set(s.events.filter((e) => e.kind === 'volume_spike').map((e) => e.date));
          yield {
            ...s,
            bars: s.bars.map((b, i) =>
              spikes.has(b.date) ? { ...b, volume: s.bars[i - 1]?.volume ?? 0 } : b,
            ),
          };
        }
      },
    };

    // Act
    const report = validateScenario(tampered);

    // Assess
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name.startsWith('volume spikes'))?.passed).toBe(false);
    expect(report.checks.find((c) => c.name.startsWith('anomalies'))?.passed).toBe(false);
  });
});
