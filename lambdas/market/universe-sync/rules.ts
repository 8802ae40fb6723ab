/**
 * The universe rules, pure: from the symbol master (+ liquidity figures) on a trade date to the
 * complete target membership of every universe the sync owns. Names follow the IPO scan's
 * (lambdas/market/ipo/classify.ts): market_cap/{top_N, mega, large, mid, small, micro},
 * sector/<snake_case sector> (+ sector/<sector>_leaders), theme/<theme>, etf/<theme>, ipo/recent.
 */
import type { IsoDate } from '../calendar';
import { addDays } from '../calendar';
import { capTierOf, etfThemeOf, sectorOfSic, sectorUniverseName } from '../ipo/classify';
import type { LiquidityFilter, UniverseCategory } from '../sql/universes';
import { ETF_THEMES } from '../types';

export interface SyncSymbol {
  readonly symbol: string;
  readonly type: string | null;
  readonly active: boolean;
  readonly delistedAt: IsoDate | null;
  readonly listDate: IsoDate | null;
  readonly firstSeen: IsoDate;
  readonly marketCap: number | null;
  readonly sector: string | null;
  readonly sicCode: string | null;
  readonly name: string | null;
  readonly issuer: string | null;
  readonly underlyingIndex: string | null;
  readonly aum: number | null;
  /** Over the last lookback bars (symbol_liquidity); null without bars. */
  readonly avgVolume: number | null;
  readonly avgDollarVolume: number | null;
  readonly lastClose: number | null;
}

/** The sync's tasks: one per rule family, plus the two cross-cutting ones. */
export type SyncTask =
  | 'market_cap'
  | 'sector'
  | 'theme'
  | 'etf'
  | 'ipo'
  | 'ipo_assignment'
  | 'delisting_cleanup';

/** Change-log cause (universe_changes.change_type) of each task. */
export const CHANGE_TYPE: Readonly<Record<SyncTask, string>> = {
  market_cap: 'market_cap_rebalance',
  sector: 'sector_rebalance',
  theme: 'theme_rebalance',
  etf: 'etf_universe_update',
  ipo: 'ipo_rebalance',
  ipo_assignment: 'ipo_assignment',
  delisting_cleanup: 'delisting_cleanup',
};

export interface UniverseTarget {
  readonly category: UniverseCategory;
  readonly name: string;
  readonly task: Exclude<SyncTask, 'ipo_assignment' | 'delisting_cleanup'>;
  /** Complete membership in list order. */
  readonly symbols: string[];
  readonly liquidityFilter?: LiquidityFilter;
  readonly metadata: Record<string, unknown>;
}

export interface SyncRulesConfig {
  readonly tops: readonly number[];
  readonly sectorLeaders: number;
  /** A symbol first seen within this many calendar days up to the trade date is a recent IPO. */
  readonly ipoWindowDays: number;
  readonly etfLiquidityFilter: LiquidityFilter;
}

/**
 * ETF liquidity: $2M average daily dollar volume, $50M AUM and a $5 price keep the app's ETF lists
 * to funds a retail order can enter and leave; at the synthetic 8,000-symbol market this keeps
 * >= 200 ETFs across the 9 themes (see the benchmark's figures).
 */
export const DEFAULT_SYNC_RULES: SyncRulesConfig = {
  tops: [100, 500, 1000, 2000],
  sectorLeaders: 10,
  ipoWindowDays: 30,
  etfLiquidityFilter: {
    min_avg_dollar_volume: 2_000_000,
    min_aum: 50_000_000,
    min_price: 5,
    lookback_days: 20,
  },
};

/**
 * Stock themes by SIC code ranges (inclusive). SIC is what the provider reports for every listing,
 * so a theme never depends on a hand-maintained ticker list.
 */
export const STOCK_THEMES: readonly (readonly [
  name: string,
  ranges: readonly (readonly [number, number])[],
])[] = [
  ['semiconductors', [[3674, 3674]]],
  ['software', [[7370, 7379]]],
  [
    'biotech_pharma',
    [
      [2833, 2836],
      [8731, 8731],
    ],
  ],
  ['medical_devices', [[3841, 3851]]],
  ['banks', [[6020, 6029]]],
  [
    'oil_gas',
    [
      [1300, 1399],
      [2911, 2911],
    ],
  ],
  ['autos', [[3711, 3716]]],
  ['reits', [[6798, 6798]]],
  ['ecommerce', [[5961, 5961]]],
  ['utilities', [[4900, 4949]]],
];

export function stockThemesOf(sicCode: string | null): string[] {
  if (!sicCode || !/^\d{3,4}$/.test(sicCode)) return [];
  const code = Number(sicCode);
  return STOCK_THEMES.filter(([, ranges]) => ranges.some(([a, b]) => code >= a && code <= b)).map(
    ([name]) => name,
  );
}

/** Trades on the date: active, listed by then, not delisted by then. */
export function isEligible(s: SyncSymbol, tradeDate: IsoDate): boolean {
  return (
    s.active &&
    (s.delistedAt === null || s.delistedAt > tradeDate) &&
    (s.listDate === null || s.listDate <= tradeDate)
  );
}

/** Why a member must leave every universe; null when it may stay. */
export function cleanupReason(s: SyncSymbol | undefined, tradeDate: IsoDate): 'unknown' | 'inactive' | null {
  if (!s) return 'unknown';
  if (!s.active || (s.delistedAt !== null && s.delistedAt <= tradeDate)) return 'inactive';
  return null;
}

export function isRecentIpo(s: SyncSymbol, tradeDate: IsoDate, windowDays: number): boolean {
  return s.firstSeen > addDays(tradeDate, -windowDays) && s.firstSeen <= tradeDate;
}

/** Meets every threshold present (missing data fails one), as get_etf_universe(theme, true) does. */
export function passesLiquidity(s: SyncSymbol, f: LiquidityFilter): boolean {
  const atLeast = (v: number | null, min: number | undefined) =>
    min === undefined || (v !== null && v >= min);
  return (
    atLeast(s.avgVolume, f.min_avg_volume) &&
    atLeast(s.avgDollarVolume, f.min_avg_dollar_volume) &&
    atLeast(s.lastClose, f.min_price) &&
    atLeast(s.aum, f.min_aum)
  );
}

const bySymbol = (a: SyncSymbol, b: SyncSymbol) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
/** Largest first; ties (and equal caps) by ticker, so the order is total and reproducible. */
const byCapDesc = (a: SyncSymbol, b: SyncSymbol) =>
  (b.marketCap ?? -1) - (a.marketCap ?? -1) || bySymbol(a, b);
const byAumDesc = (a: SyncSymbol, b: SyncSymbol) => (b.aum ?? -1) - (a.aum ?? -1) || bySymbol(a, b);

export function sectorOf(s: SyncSymbol): string | null {
  return s.sector ?? sectorOfSic(s.sicCode);
}

/** Every target universe for the date. Universes with no member are still returned (emptied). */
export function buildTargets(
  symbols: readonly SyncSymbol[],
  tradeDate: IsoDate,
  config: SyncRulesConfig = DEFAULT_SYNC_RULES,
): UniverseTarget[] {
  const eligible = symbols.filter((s) => isEligible(s, tradeDate));
  const stocks = eligible
    .filter((s) => s.type === 'CS' && s.marketCap !== null && s.marketCap > 0)
    .sort(byCapDesc);
  const out: UniverseTarget[] = [];
  const list = (xs: readonly SyncSymbol[]) => xs.map((s) => s.symbol);

  for (const n of config.tops) {
    out.push({
      category: 'market_cap',
      name: `top_${n}`,
      task: 'market_cap',
      symbols: list(stocks.slice(0, n)),
      metadata: { rule: `largest ${n} common stocks by market cap` },
    });
  }
  for (const tier of ['mega', 'large', 'mid', 'small', 'micro'] as const) {
    out.push({
      category: 'market_cap',
      name: tier,
      task: 'market_cap',
      symbols: list(stocks.filter((s) => capTierOf(s.marketCap) === tier)),
      metadata: { rule: `common stocks in the ${tier} market-cap tier` },
    });
  }

  const sectors = new Map<string, SyncSymbol[]>();
  for (const s of stocks) {
    const sector = sectorOf(s);
    if (!sector) continue;
    const key = sectorUniverseName(sector);
    if (key === '') continue;
    sectors.set(key, [...(sectors.get(key) ?? []), s]);
  }
  for (const [key, members] of [...sectors.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push({
      category: 'sector',
      name: key,
      task: 'sector',
      symbols: list(members),
      metadata: { rule: 'common stocks of the sector by market cap' },
    });
    out.push({
      category: 'sector',
      name: `${key}_leaders`,
      task: 'sector',
      symbols: list(members.slice(0, config.sectorLeaders)),
      metadata: { rule: `top ${config.sectorLeaders} of the sector by market cap` },
    });
  }

  for (const [theme] of STOCK_THEMES) {
    out.push({
      category: 'theme',
      name: theme,
      task: 'theme',
      symbols: list(stocks.filter((s) => stockThemesOf(s.sicCode).includes(theme))),
      metadata: {
        rule: 'common stocks by SIC code',
        sic_ranges: STOCK_THEMES.find(([t]) => t === theme)?.[1],
      },
    });
  }

  const etfs = eligible.filter((s) => s.type === 'ETF').sort(byAumDesc);
  const themes = new Map<string, SyncSymbol[]>();
  for (const s of etfs) {
    const theme = etfThemeOf(s);
    if (!theme || !passesLiquidity(s, config.etfLiquidityFilter)) continue;
    themes.set(theme, [...(themes.get(theme) ?? []), s]);
  }
  for (const theme of ETF_THEMES) {
    out.push({
      category: 'etf',
      name: theme,
      task: 'etf',
      symbols: list(themes.get(theme) ?? []),
      liquidityFilter: config.etfLiquidityFilter,
      metadata: { rule: 'ETFs of the theme passing the liquidity filter, by AUM' },
    });
  }

  const recent = eligible
    .filter((s) => (s.type === 'CS' || s.type === 'ETF') && isRecentIpo(s, tradeDate, config.ipoWindowDays))
    .sort((a, b) => (a.firstSeen > b.firstSeen ? -1 : a.firstSeen < b.firstSeen ? 1 : bySymbol(a, b)));
  out.push({
    category: 'ipo',
    name: 'recent',
    task: 'ipo',
    symbols: list(recent),
    metadata: { rule: `stocks and ETFs first seen in the last ${config.ipoWindowDays} days, newest first` },
  });
  return out;
}
