/**
 * Synthetic market scenarios: reproducible symbol universes, daily bars and the expected outcomes
 * of every injected event. Pure (no I/O); loading into PostgreSQL lives in ./load.
 *
 * API
 * - `listScenarios()` -> the named scenarios (name, description, sessions, default start).
 * - `generateUniverse({ seed, size = 8000 })` -> SymbolRecord[] (CS over all sectors and cap
 *   tiers, 200+ ETFs over 9 themes at the default size, ETNs). Same seed + size = same universe.
 * - `createScenarioMarket({ scenario, seed, size?, start?, end? })` -> ScenarioMarket:
 *   - `days`: the scenario's sessions (NYSE trading days only, see ../calendar);
 *   - `universe`: the symbol master as of the last session (IPO list dates, delistings applied);
 *   - `series()`: generator yielding `{ symbol, bars, events }` one symbol at a time, in universe
 *     order; only one symbol's bars are in memory at once (8,000 x 252 streams fine);
 *   - `symbolSeries(symbol)` / `bars(symbol, from?, to?)`: one symbol (what
 *     /v2/aggs/ticker/{T}/range/1/day/{from}/{to} serves), regenerated on demand in ~0.1 ms;
 *   - `groupedBars(date)`: every symbol's bar on one session (what /v2/aggs/grouped/.../{date}
 *     serves); costs one pass over the universe, so `groupedBarsRange(from, to)` exists to
 *     precompute many dates in the same single pass;
 *   - `activeOn(date)`: symbols listed on or before date and not yet delisted (the tickers list);
 *   - `expectedOutcomes()`: every injected event `{ symbol, date, kind, size, anomaly, severity,
 *     ... }`, the market regimes and drawdown, ETF themes and the clean symbols (one pass).
 * Each symbol's series comes from its own PRNG stream (global seed + scenario + symbol), so
 * symbols differ and a symbol is reproducible alone.
 */
import type { IsoDate } from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import {
  SCENARIO_NAMES,
  SCENARIOS,
  type ScenarioDefinition,
  type ScenarioName,
  scenarioDefinition,
  scenarioSteps,
} from './definitions';
import {
  buildMarketPath,
  type EventKind,
  type ExpectedEvent,
  generateSeries,
  type MarketPath,
  planSymbol,
  type RegimeSpan,
  type SymbolPlan,
  type SymbolSeries,
  scenarioDays,
  scenarioRecord,
} from './generator';
import { type EtfTheme, etfThemes, generateProfiles, type SymbolProfile } from './universe';

export type { ScenarioDefinition, ScenarioName } from './definitions';
export { SCENARIO_NAMES, UnknownScenarioError } from './definitions';
export type { EventKind, ExpectedEvent, MarketPath, RegimeSpan, Severity, SymbolSeries } from './generator';
export { barProblems, priceSeverity, QUALITY_RULES } from './generator';
export type { EtfTheme } from './universe';
export { ETF_THEMES, generateUniverse } from './universe';

export interface ScenarioOptions {
  readonly scenario: ScenarioName | string;
  readonly seed: number | string;
  /** Number of symbols (default 8,000). */
  readonly size?: number;
  /** First session (default: the scenario's own); or give `end` to end the window there. */
  readonly start?: IsoDate;
  readonly end?: IsoDate;
}

export interface ExpectedOutcomes {
  readonly scenario: ScenarioName;
  readonly description: string;
  readonly seed: number | string;
  readonly size: number;
  readonly start: IsoDate;
  readonly end: IsoDate;
  readonly sessions: number;
  readonly market: {
    readonly regimes: readonly RegimeSpan[];
    readonly maxDrawdown: MarketPath['maxDrawdown'];
  };
  readonly etfThemes: Record<string, EtfTheme>;
  /** Symbols with no injected event of any kind. */
  readonly cleanSymbols: string[];
  readonly counts: Partial<Record<EventKind, number>>;
  readonly events: ExpectedEvent[];
}

export interface ScenarioMarket {
  readonly definition: ScenarioDefinition;
  readonly seed: number | string;
  readonly days: readonly IsoDate[];
  readonly start: IsoDate;
  readonly end: IsoDate;
  readonly market: MarketPath;
  readonly universe: readonly SymbolRecord[];
  series(): Generator<SymbolSeries>;
  symbolSeries(symbol: string): SymbolSeries | null;
  bars(symbol: string, from?: IsoDate, to?: IsoDate): DailyBar[];
  groupedBars(date: IsoDate): DailyBar[];
  groupedBarsRange(from: IsoDate, to: IsoDate): Map<IsoDate, DailyBar[]>;
  activeOn(date: IsoDate): SymbolRecord[];
  expectedOutcomes(): ExpectedOutcomes;
}

export function listScenarios(): {
  name: ScenarioName;
  description: string;
  sessions: number;
  defaultStart: IsoDate;
}[] {
  return SCENARIO_NAMES.map((name) => {
    const def = SCENARIOS[name];
    return {
      name,
      description: def.description,
      sessions: scenarioSteps(def),
      defaultStart: def.defaultStart,
    };
  });
}

export function createScenarioMarket(options: ScenarioOptions): ScenarioMarket {
  const definition = scenarioDefinition(options.scenario);
  const size = options.size ?? 8000;
  const { seed } = options;
  const days = scenarioDays(definition, options);
  const market = buildMarketPath(definition, seed, days);
  const profiles = generateProfiles({ seed, size });
  const plans = new Map<string, { profile: SymbolProfile; plan: SymbolPlan }>();
  const universe: SymbolRecord[] = [];
  for (const profile of profiles) {
    const plan = planSymbol(definition, seed, days, profile);
    plans.set(profile.record.symbol, { profile, plan });
    universe.push(scenarioRecord(profile, plan, days));
  }
  const start = days[0] as IsoDate;
  const end = days[days.length - 1] as IsoDate;

  function symbolSeries(symbol: string): SymbolSeries | null {
    const entry = plans.get(symbol);
    return entry ? generateSeries(definition, seed, market, entry.profile, entry.plan) : null;
  }

  function* series(): Generator<SymbolSeries> {
    for (const profile of profiles) yield symbolSeries(profile.record.symbol) as SymbolSeries;
  }

  function groupedBarsRange(from: IsoDate, to: IsoDate): Map<IsoDate, DailyBar[]> {
    const out = new Map<IsoDate, DailyBar[]>();
    for (const d of days) if (d >= from && d <= to) out.set(d, []);
    if (out.size === 0) return out;
    for (const s of series()) {
      for (const bar of s.bars) if (bar.date >= from && bar.date <= to) out.get(bar.date)?.push(bar);
    }
    return out;
  }

  return {
    definition,
    seed,
    days,
    start,
    end,
    market,
    universe,
    series,
    symbolSeries,
    bars(symbol, from = start, to = end) {
      return (symbolSeries(symbol)?.bars ?? []).filter((b) => b.date >= from && b.date <= to);
    },
    groupedBars(date) {
      return groupedBarsRange(date, date).get(date) ?? [];
    },
    groupedBarsRange,
    activeOn(date) {
      return universe.filter(
        (r) => (r.listDate === null || r.listDate <= date) && (r.delistedAt === null || r.delistedAt > date),
      );
    },
    expectedOutcomes() {
      const events: ExpectedEvent[] = [];
      const cleanSymbols: string[] = [];
      const counts: Partial<Record<EventKind, number>> = {};
      for (const s of series()) {
        if (s.events.length === 0) cleanSymbols.push(s.symbol);
        for (const e of s.events) {
          events.push(e);
          counts[e.kind] = (counts[e.kind] ?? 0) + 1;
        }
      }
      return {
        scenario: definition.name,
        description: definition.description,
        seed,
        size,
        start,
        end,
        sessions: days.length,
        market: { regimes: market.regimes, maxDrawdown: market.maxDrawdown },
        etfThemes: etfThemes(profiles),
        cleanSymbols,
        counts,
        events,
      };
    },
  };
}
