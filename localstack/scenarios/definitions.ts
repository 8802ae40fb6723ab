/**
 * The named scenarios. A scenario is a market-factor path (regimes with a target total return and
 * a daily volatility) plus an event mix: the probability that a symbol receives each kind of
 * injected event. Every scenario also carries the data-quality anomaly mix, so each one exercises
 * the quality check, and leaves most symbols clean.
 */
import type { IsoDate } from '../../lambdas/market/calendar';

export type ScenarioName =
  | 'crash_2020'
  | 'growth_2021'
  | 'volatility_periods'
  | 'trend_changes'
  | 'high_low_events'
  | 'ipo'
  | 'halts_gaps'
  | 'splits';

export type RegimeKind =
  | 'normal'
  | 'crash'
  | 'recovery'
  | 'uptrend'
  | 'downtrend'
  | 'sideways'
  | 'calm'
  | 'volatile';

export interface RegimeDefinition {
  readonly kind: RegimeKind;
  readonly steps: number;
  /** Market-factor total simple return over the regime (exact: the noise is de-meaned). */
  readonly totalReturn: number;
  /** Daily volatility of the market factor (log-return standard deviation). */
  readonly dailyVol: number;
}

/** Events a symbol can receive; rates are per-symbol probabilities. */
export type InjectedKind =
  | 'price_jump_anomaly'
  | 'big_up'
  | 'big_down'
  | 'price_gap'
  | 'intraday_range'
  | 'volume_spike'
  | 'volume_drought'
  | 'zero_volume'
  | 'breakout'
  | 'data_gap'
  | 'stale'
  | 'split'
  | 'ipo'
  | 'delisting';

export type EventMix = Partial<Record<InjectedKind, number>>;

export interface ScenarioDefinition {
  readonly name: ScenarioName;
  readonly description: string;
  /** Default first session (overridable by start/end options). */
  readonly defaultStart: IsoDate;
  readonly regimes: readonly RegimeDefinition[];
  /** GARCH(1,1) volatility clustering inside regimes. */
  readonly clustering: boolean;
  readonly events: EventMix;
}

/** Injected into every scenario so the quality check always has something to find (and clean symbols). */
export const ANOMALY_MIX: EventMix = {
  price_jump_anomaly: 0.03,
  intraday_range: 0.02,
  volume_spike: 0.03,
  volume_drought: 0.02,
  zero_volume: 0.01,
  data_gap: 0.02,
  stale: 0.01,
  split: 0.01,
  ipo: 0.01,
  delisting: 0.005,
};

const withAnomalies = (extra: EventMix): EventMix => ({ ...ANOMALY_MIX, ...extra });

export const SCENARIOS: Readonly<Record<ScenarioName, ScenarioDefinition>> = {
  crash_2020: {
    name: 'crash_2020',
    description: '252 sessions: normal market, crash to a -35 % drawdown, V-shaped recovery',
    defaultStart: '2020-01-02',
    regimes: [
      { kind: 'normal', steps: 35, totalReturn: 0.04, dailyVol: 0.008 },
      { kind: 'crash', steps: 23, totalReturn: -0.35, dailyVol: 0.03 },
      { kind: 'recovery', steps: 60, totalReturn: 0.42, dailyVol: 0.018 },
      { kind: 'normal', steps: 134, totalReturn: 0.1, dailyVol: 0.009 },
    ],
    clustering: true,
    events: withAnomalies({}),
  },
  growth_2021: {
    name: 'growth_2021',
    description: '252 sessions: steady +25 % trend with breakouts out of consolidations',
    defaultStart: '2021-01-04',
    regimes: [{ kind: 'uptrend', steps: 252, totalReturn: 0.25, dailyVol: 0.008 }],
    clustering: false,
    events: withAnomalies({ breakout: 0.2 }),
  },
  volatility_periods: {
    name: 'volatility_periods',
    description: '126 sessions: calm and volatile periods alternating, with GARCH clustering',
    defaultStart: '2022-01-03',
    regimes: [
      { kind: 'calm', steps: 32, totalReturn: 0.01, dailyVol: 0.005 },
      { kind: 'volatile', steps: 31, totalReturn: -0.02, dailyVol: 0.028 },
      { kind: 'calm', steps: 32, totalReturn: 0.01, dailyVol: 0.005 },
      { kind: 'volatile', steps: 31, totalReturn: 0.02, dailyVol: 0.028 },
    ],
    clustering: true,
    events: withAnomalies({}),
  },
  trend_changes: {
    name: 'trend_changes',
    description: '189 sessions: four regimes (uptrend, downtrend, sideways, uptrend)',
    defaultStart: '2023-01-03',
    regimes: [
      { kind: 'uptrend', steps: 47, totalReturn: 0.18, dailyVol: 0.007 },
      { kind: 'downtrend', steps: 47, totalReturn: -0.16, dailyVol: 0.009 },
      { kind: 'sideways', steps: 47, totalReturn: 0, dailyVol: 0.006 },
      { kind: 'uptrend', steps: 48, totalReturn: 0.14, dailyVol: 0.007 },
    ],
    clustering: false,
    events: withAnomalies({}),
  },
  high_low_events: {
    name: 'high_low_events',
    description: '63 sessions: injected +8-15 % / -8-12 % days, opening gaps and volume spikes',
    defaultStart: '2024-01-02',
    regimes: [{ kind: 'normal', steps: 63, totalReturn: 0.02, dailyVol: 0.009 }],
    clustering: false,
    events: withAnomalies({ big_up: 0.35, big_down: 0.3, price_gap: 0.3, volume_spike: 0.25 }),
  },
  ipo: {
    name: 'ipo',
    description: '126 sessions: a quarter of the symbols list during the period (short histories)',
    defaultStart: '2025-01-02',
    regimes: [{ kind: 'normal', steps: 126, totalReturn: 0.05, dailyVol: 0.009 }],
    clustering: false,
    events: withAnomalies({ ipo: 0.25 }),
  },
  halts_gaps: {
    name: 'halts_gaps',
    description: '126 sessions: trading halts (missing sessions) and stale series',
    defaultStart: '2025-01-02',
    regimes: [{ kind: 'normal', steps: 126, totalReturn: 0.03, dailyVol: 0.009 }],
    clustering: false,
    events: withAnomalies({ data_gap: 0.2, stale: 0.06 }),
  },
  splits: {
    name: 'splits',
    description: '126 sessions: 2:1 and 3:1 stock splits (unadjusted price discontinuities)',
    defaultStart: '2025-01-02',
    regimes: [{ kind: 'normal', steps: 126, totalReturn: 0.04, dailyVol: 0.009 }],
    clustering: false,
    events: withAnomalies({ split: 0.15 }),
  },
};

export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export class UnknownScenarioError extends Error {
  constructor(name: string) {
    super(`unknown scenario ${JSON.stringify(name)}; known: ${SCENARIO_NAMES.join(', ')}`);
    this.name = 'UnknownScenarioError';
  }
}

export function scenarioDefinition(name: string): ScenarioDefinition {
  const def = (SCENARIOS as Record<string, ScenarioDefinition | undefined>)[name];
  if (!def) throw new UnknownScenarioError(name);
  return def;
}

export function scenarioSteps(def: ScenarioDefinition): number {
  return def.regimes.reduce((sum, r) => sum + r.steps, 0);
}
