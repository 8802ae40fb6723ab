/**
 * Shapes shared by the market-data modules (scenario generator, provider adapter, local market API,
 * loaders, jobs). Column names of the PostgreSQL tables `symbols` and `ohlcv_daily` match these
 * fields in snake_case.
 */

/** Polygon ticker types the platform tracks (CS common stock, ETF, ETN, ADRC, PFD, WARRANT, ...). */
export const TICKER_TYPES = [
  'CS',
  'ETF',
  'ETN',
  'ADRC',
  'PFD',
  'WARRANT',
  'UNIT',
  'RIGHT',
  'FUND',
  'OS',
] as const;
export type TickerType = (typeof TICKER_TYPES)[number];

/** The themes ETF universes are built by (the app offers one universe per theme). */
export const ETF_THEMES = [
  'broad_market',
  'sector',
  'growth',
  'value',
  'dividend',
  'international',
  'commodities',
  'technology',
  'bonds',
] as const;
export type EtfTheme = (typeof ETF_THEMES)[number];

export interface SymbolRecord {
  readonly symbol: string;
  readonly name: string;
  readonly type: TickerType;
  readonly market: 'stocks';
  readonly primaryExchange: string;
  readonly active: boolean;
  readonly marketCap: number | null;
  /** ISO date YYYY-MM-DD */
  readonly listDate: string | null;
  readonly sector: string | null;
  readonly industry: string | null;
  readonly sicCode: string | null;
  readonly sicDescription: string | null;
  readonly sharesOutstanding: number | null;
  /** ETF/ETN fields; null for stocks. */
  readonly issuer: string | null;
  readonly aum: number | null;
  readonly expenseRatio: number | null;
  readonly underlyingIndex: string | null;
  /** ISO date the symbol stops trading (delisting), null while active. */
  readonly delistedAt: string | null;
}

export interface DailyBar {
  readonly symbol: string;
  /** ISO trading date YYYY-MM-DD (America/New_York session date). */
  readonly date: string;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
  readonly vwap: number;
  readonly transactions: number;
}
