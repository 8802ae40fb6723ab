/**
 * What the provider does not say about a new listing, inferred once at the IPO scan: the GICS
 * sector of a stock from its SIC code, the issuer of a fund from its brand, the ETF theme from its
 * name / issuer / underlying index, the market-cap tier, and the universes it belongs to. Pure.
 */
import type { UniverseCategory } from '../sql/universes';
import { type EtfTheme, type SymbolRecord, TICKER_TYPES } from '../types';

type SicRange = readonly [from: number, to: number, sector: string];

// Ordered: the first matching range wins, so narrow exceptions come before the broad division.
const SIC_SECTORS: readonly SicRange[] = [
  [100, 999, 'Consumer Staples'],
  [1000, 1099, 'Materials'],
  [1200, 1399, 'Energy'],
  [1400, 1499, 'Materials'],
  [1500, 1799, 'Industrials'],
  [2000, 2199, 'Consumer Staples'],
  [2200, 2399, 'Consumer Discretionary'],
  [2400, 2499, 'Materials'],
  [2500, 2599, 'Consumer Discretionary'],
  [2600, 2699, 'Materials'],
  [2700, 2799, 'Communication Services'],
  [2830, 2836, 'Health Care'],
  [2840, 2844, 'Consumer Staples'],
  [2800, 2899, 'Materials'],
  [2900, 2999, 'Energy'],
  [3000, 3399, 'Materials'],
  [3400, 3569, 'Industrials'],
  [3570, 3579, 'Information Technology'],
  [3580, 3599, 'Industrials'],
  [3630, 3639, 'Consumer Discretionary'],
  [3600, 3629, 'Industrials'],
  [3640, 3699, 'Information Technology'],
  [3710, 3716, 'Consumer Discretionary'],
  [3700, 3799, 'Industrials'],
  [3812, 3812, 'Industrials'],
  [3840, 3851, 'Health Care'],
  [3800, 3899, 'Information Technology'],
  [3900, 3999, 'Consumer Discretionary'],
  [4800, 4899, 'Communication Services'],
  [4900, 4999, 'Utilities'],
  [4000, 4799, 'Industrials'],
  [5120, 5122, 'Health Care'],
  [5000, 5199, 'Industrials'],
  [5330, 5331, 'Consumer Staples'],
  [5400, 5499, 'Consumer Staples'],
  [5912, 5912, 'Consumer Staples'],
  [5200, 5999, 'Consumer Discretionary'],
  [6500, 6553, 'Real Estate'],
  [6798, 6798, 'Real Estate'],
  [6000, 6799, 'Financials'],
  [7000, 7299, 'Consumer Discretionary'],
  // 7370 (data processing) is where Polygon files the interactive-media platforms.
  [7370, 7370, 'Communication Services'],
  [7371, 7379, 'Information Technology'],
  [7300, 7399, 'Industrials'],
  [7800, 7899, 'Communication Services'],
  [7900, 7999, 'Consumer Discretionary'],
  [8000, 8099, 'Health Care'],
  [8200, 8299, 'Consumer Discretionary'],
  [8731, 8731, 'Health Care'],
  [8700, 8799, 'Industrials'],
];

/** GICS sector of a SIC code; null when the code is missing or unclassifiable. */
export function sectorOfSic(sicCode: string | null | undefined): string | null {
  if (!sicCode || !/^\d{3,4}$/.test(sicCode)) return null;
  const code = Number(sicCode);
  for (const [from, to, sector] of SIC_SECTORS) if (code >= from && code <= to) return sector;
  return null;
}

/** Fund brands as they lead fund names, and the issuing company. */
const BRANDS: readonly [brand: RegExp, issuer: string][] = [
  [/^ishares\b/i, 'BlackRock'],
  [/^vanguard\b/i, 'Vanguard'],
  [/^spdr\b/i, 'State Street Global Advisors'],
  [/^invesco\b/i, 'Invesco'],
  [/^schwab\b/i, 'Charles Schwab'],
  [/^first trust\b/i, 'First Trust'],
  [/^vaneck\b/i, 'VanEck'],
  [/^global x\b/i, 'Global X'],
  [/^wisdomtree\b/i, 'WisdomTree'],
  [/^proshares\b/i, 'ProShares'],
  [/^ipath\b/i, 'Barclays'],
  [/^etracs\b/i, 'UBS'],
  [/^microsectors\b/i, 'Bank of Montreal'],
  [/^velocityshares\b/i, 'Credit Suisse'],
];

export function issuerOfFundName(name: string | null | undefined): string | null {
  if (!name) return null;
  for (const [brand, issuer] of BRANDS) if (brand.test(name.trim())) return issuer;
  return null;
}

// Ordered by specificity: "High Yield Dividend Aristocrats" is a dividend fund, not a bond fund;
// "Technology Sector" is technology, not a generic sector fund; "Russell 1000 Growth" is growth.
const THEME_RULES: readonly [EtfTheme, RegExp][] = [
  ['dividend', /\bdividend|aristocrat/],
  [
    'bonds',
    /\bbond|treasur|\btips\b|aggregate|fixed income|high yield|investment grade|municipal|\bcredit\b/,
  ],
  ['commodities', /\bgold\b|silver|crude|\boil\b|natural gas|commodit|precious metal|platinum|copper/],
  [
    'international',
    /international|emerging|\beafe\b|ex[- ]us|europe|japan|china|\bindia\b|developed|world|global ex/,
  ],
  ['growth', /\bgrowth\b/],
  ['value', /\bvalue\b/],
  [
    'technology',
    /technolog|semiconductor|cloud|cyber|robotic|artificial intelligence|\bsoftware\b|internet|fintech/,
  ],
  [
    'sector',
    /\bsector\b|financial|health care|healthcare|energy|utilit|industrial|consumer|real estate|materials|biotech|bank/,
  ],
  [
    'broad_market',
    /s&p 500|s&p midcap|total (stock )?market|russell|dow jones industrial|dow industrials|mid-?cap|small-?cap|large-?cap|nasdaq-100|broad market|crsp us/,
  ],
];

/** Theme of an ETF from whatever text the provider (or the symbol master) has; null when unknown. */
export function etfThemeOf(fund: {
  readonly name?: string | null;
  readonly issuer?: string | null;
  readonly underlyingIndex?: string | null;
}): EtfTheme | null {
  const text = [fund.name, fund.underlyingIndex, fund.issuer].filter(Boolean).join(' | ').toLowerCase();
  if (text === '') return null;
  for (const [theme, pattern] of THEME_RULES) if (pattern.test(text)) return theme;
  return null;
}

export type CapTier = 'mega' | 'large' | 'mid' | 'small' | 'micro';

/** Market-cap tier by the universe sync's thresholds: mega >= $200B, large $10-200B, mid $2-10B, small $300M-2B, micro < $300M. */
export function capTierOf(marketCap: number | null | undefined): CapTier | null {
  if (marketCap === null || marketCap === undefined || !Number.isFinite(marketCap) || marketCap <= 0)
    return null;
  if (marketCap >= 200e9) return 'mega';
  if (marketCap >= 10e9) return 'large';
  if (marketCap >= 2e9) return 'mid';
  if (marketCap >= 300e6) return 'small';
  return 'micro';
}

/** Universe name of a sector: lower snake case ("Health Care" -> "health_care"). */
export function sectorUniverseName(sector: string): string {
  return sector
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

export interface UniverseRef {
  readonly category: UniverseCategory;
  readonly name: string;
}

/**
 * The universes a newly listed symbol joins: common stocks (and ADRs) their market-cap tier
 * (category market_cap) and their sector (category sector); ETFs their theme (category etf).
 * Ranked lists (top_100, sector leaders) are rebuilt by the universe sync, not here.
 */
export function universesFor(
  record: Pick<
    SymbolRecord,
    'type' | 'marketCap' | 'sector' | 'name' | 'issuer' | 'underlyingIndex' | 'sicCode'
  >,
): UniverseRef[] {
  // Common stock only, as the universe sync rebuilds them (market-data.md: tiers are CS only); an
  // ADR assigned here would be taken out again by the next sync.
  if (record.type === 'CS') {
    const out: UniverseRef[] = [];
    const tier = capTierOf(record.marketCap);
    if (tier) out.push({ category: 'market_cap', name: tier });
    const sector = record.sector ?? sectorOfSic(record.sicCode);
    if (sector) out.push({ category: 'sector', name: sectorUniverseName(sector) });
    return out;
  }
  if (record.type === 'ETF') {
    const theme = etfThemeOf(record);
    return theme ? [{ category: 'etf', name: theme }] : [];
  }
  return [];
}

/** Fills what the scan infers (sector, issuer) into a provider record. */
export function enrichRecord(record: SymbolRecord): SymbolRecord {
  const fund = record.type === 'ETF' || record.type === 'ETN';
  return {
    ...record,
    sector: record.sector ?? (fund ? null : sectorOfSic(record.sicCode)),
    issuer: record.issuer ?? (fund ? issuerOfFundName(record.name) : null),
  };
}

/** Provider type codes the platform tracks; tickers of other types are not fetched or stored. */
export const TRACKED_TYPES: ReadonlySet<string> = new Set(TICKER_TYPES);
