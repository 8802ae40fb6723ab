/**
 * Synthetic symbol universe: common stocks over every sector and market-cap tier, ETFs over the
 * themes the universe sync builds (200+ at the default size), and ETNs. Deterministic for
 * (seed, size). ETF themes are NOT stored in a dedicated field: like Polygon's reference data, the
 * theme must be inferred from issuer / name / underlying index; `etfThemeOf` exposes the intended
 * answer so tests can measure that inference.
 */
import { ETF_THEMES, type EtfTheme, type SymbolRecord } from '../../lambdas/market/types';
import { createRng, type Rng } from './prng';

export { ETF_THEMES, type EtfTheme };

interface Industry {
  readonly sic: string;
  readonly description: string;
  readonly industry: string;
}

/** Polygon reports SIC codes and the SEC's upper-case descriptions; sector follows GICS names. */
const SECTORS: Readonly<Record<string, readonly Industry[]>> = {
  'Information Technology': [
    { sic: '7372', description: 'SERVICES-PREPACKAGED SOFTWARE', industry: 'Software' },
    { sic: '3674', description: 'SEMICONDUCTORS & RELATED DEVICES', industry: 'Semiconductors' },
    { sic: '3571', description: 'ELECTRONIC COMPUTERS', industry: 'Technology Hardware' },
    { sic: '7373', description: 'SERVICES-COMPUTER INTEGRATED SYSTEMS DESIGN', industry: 'IT Services' },
  ],
  'Health Care': [
    { sic: '2834', description: 'PHARMACEUTICAL PREPARATIONS', industry: 'Pharmaceuticals' },
    {
      sic: '2836',
      description: 'BIOLOGICAL PRODUCTS, (NO DIAGNOSTIC SUBSTANCES)',
      industry: 'Biotechnology',
    },
    { sic: '3841', description: 'SURGICAL & MEDICAL INSTRUMENTS & APPARATUS', industry: 'Medical Devices' },
    {
      sic: '8062',
      description: 'SERVICES-GENERAL MEDICAL & SURGICAL HOSPITALS, NEC',
      industry: 'Health Care Providers',
    },
  ],
  Financials: [
    { sic: '6021', description: 'NATIONAL COMMERCIAL BANKS', industry: 'Banks' },
    {
      sic: '6211',
      description: 'SECURITY BROKERS, DEALERS & FLOTATION COMPANIES',
      industry: 'Capital Markets',
    },
    { sic: '6311', description: 'LIFE INSURANCE', industry: 'Insurance' },
    { sic: '6770', description: 'BLANK CHECKS', industry: 'Shell Companies' },
  ],
  'Consumer Discretionary': [
    { sic: '5812', description: 'RETAIL-EATING PLACES', industry: 'Restaurants' },
    { sic: '3711', description: 'MOTOR VEHICLES & PASSENGER CAR BODIES', industry: 'Automobiles' },
    { sic: '5961', description: 'RETAIL-CATALOG & MAIL-ORDER HOUSES', industry: 'Internet Retail' },
    { sic: '7011', description: 'HOTELS & MOTELS', industry: 'Hotels & Leisure' },
  ],
  'Consumer Staples': [
    { sic: '2080', description: 'BEVERAGES', industry: 'Beverages' },
    { sic: '2000', description: 'FOOD AND KINDRED PRODUCTS', industry: 'Food Products' },
    { sic: '5331', description: 'RETAIL-VARIETY STORES', industry: 'Consumer Staples Retail' },
  ],
  Energy: [
    { sic: '1311', description: 'CRUDE PETROLEUM & NATURAL GAS', industry: 'Oil & Gas E&P' },
    { sic: '2911', description: 'PETROLEUM REFINING', industry: 'Oil & Gas Refining' },
    { sic: '1381', description: 'DRILLING OIL & GAS WELLS', industry: 'Energy Equipment & Services' },
  ],
  Industrials: [
    { sic: '3721', description: 'AIRCRAFT', industry: 'Aerospace & Defense' },
    { sic: '4011', description: 'RAILROADS, LINE-HAUL OPERATING', industry: 'Ground Transportation' },
    { sic: '3560', description: 'GENERAL INDUSTRIAL MACHINERY & EQUIPMENT', industry: 'Machinery' },
  ],
  Materials: [
    { sic: '2800', description: 'CHEMICALS & ALLIED PRODUCTS', industry: 'Chemicals' },
    { sic: '1040', description: 'GOLD AND SILVER ORES', industry: 'Metals & Mining' },
  ],
  Utilities: [
    { sic: '4911', description: 'ELECTRIC SERVICES', industry: 'Electric Utilities' },
    { sic: '4924', description: 'NATURAL GAS DISTRIBUTION', industry: 'Gas Utilities' },
  ],
  'Real Estate': [{ sic: '6798', description: 'REAL ESTATE INVESTMENT TRUSTS', industry: 'REITs' }],
  'Communication Services': [
    {
      sic: '4813',
      description: 'TELEPHONE COMMUNICATIONS (NO RADIOTELEPHONE)',
      industry: 'Telecom Services',
    },
    {
      sic: '7370',
      description: 'SERVICES-COMPUTER PROGRAMMING, DATA PROCESSING, ETC.',
      industry: 'Interactive Media',
    },
    { sic: '4841', description: 'CABLE & OTHER PAY TELEVISION SERVICES', industry: 'Media' },
  ],
};
export const SECTOR_NAMES = Object.keys(SECTORS);

/** Market-cap tiers (USD) as the universe sync defines them; share of common stocks per tier. */
const CAP_TIERS = [
  { name: 'mega', min: 200e9, max: 3.2e12, share: 0.004 },
  { name: 'large', min: 10e9, max: 200e9, share: 0.09 },
  { name: 'mid', min: 2e9, max: 10e9, share: 0.16 },
  { name: 'small', min: 300e6, max: 2e9, share: 0.27 },
  { name: 'micro', min: 5e6, max: 300e6, share: 0.476 },
] as const;

const ISSUERS = [
  { issuer: 'BlackRock', brand: 'iShares' },
  { issuer: 'Vanguard', brand: 'Vanguard' },
  { issuer: 'State Street Global Advisors', brand: 'SPDR' },
  { issuer: 'Invesco', brand: 'Invesco' },
  { issuer: 'Charles Schwab', brand: 'Schwab' },
  { issuer: 'First Trust', brand: 'First Trust' },
  { issuer: 'VanEck', brand: 'VanEck' },
  { issuer: 'Global X', brand: 'Global X' },
  { issuer: 'WisdomTree', brand: 'WisdomTree' },
  { issuer: 'ProShares', brand: 'ProShares' },
] as const;

/** Underlying indexes per theme; the index (and the fund name built from it) carries the theme. */
const THEME_INDEXES: Readonly<Record<EtfTheme, readonly { index: string; label: string }[]>> = {
  broad_market: [
    { index: 'S&P 500 Index', label: 'S&P 500' },
    { index: 'CRSP US Total Market Index', label: 'Total Stock Market' },
    { index: 'Russell 1000 Index', label: 'Russell 1000' },
    { index: 'Russell 2000 Index', label: 'Russell 2000 Small-Cap' },
    { index: 'S&P MidCap 400 Index', label: 'Mid-Cap 400' },
    { index: 'Dow Jones Industrial Average', label: 'Dow Industrials' },
  ],
  sector: [
    { index: 'Financial Select Sector Index', label: 'Financials Sector' },
    { index: 'Health Care Select Sector Index', label: 'Health Care Sector' },
    { index: 'Energy Select Sector Index', label: 'Energy Sector' },
    { index: 'Utilities Select Sector Index', label: 'Utilities Sector' },
    { index: 'Industrial Select Sector Index', label: 'Industrials Sector' },
    { index: 'Consumer Staples Select Sector Index', label: 'Consumer Staples Sector' },
    { index: 'Real Estate Select Sector Index', label: 'Real Estate Sector' },
    { index: 'Materials Select Sector Index', label: 'Materials Sector' },
  ],
  growth: [
    { index: 'Russell 1000 Growth Index', label: 'Russell 1000 Growth' },
    { index: 'S&P 500 Growth Index', label: 'S&P 500 Growth' },
    { index: 'CRSP US Large Cap Growth Index', label: 'Large-Cap Growth' },
    { index: 'Russell 2000 Growth Index', label: 'Small-Cap Growth' },
  ],
  value: [
    { index: 'Russell 1000 Value Index', label: 'Russell 1000 Value' },
    { index: 'S&P 500 Value Index', label: 'S&P 500 Value' },
    { index: 'CRSP US Large Cap Value Index', label: 'Large-Cap Value' },
    { index: 'Russell 2000 Value Index', label: 'Small-Cap Value' },
  ],
  dividend: [
    { index: 'Dow Jones U.S. Select Dividend Index', label: 'Select Dividend' },
    { index: 'S&P High Yield Dividend Aristocrats Index', label: 'Dividend Aristocrats' },
    { index: 'NASDAQ US Dividend Achievers Select Index', label: 'Dividend Appreciation' },
  ],
  international: [
    { index: 'MSCI EAFE Index', label: 'MSCI EAFE International' },
    { index: 'MSCI Emerging Markets Index', label: 'Emerging Markets' },
    { index: 'FTSE Developed All Cap ex US Index', label: 'Developed Markets ex-US' },
    { index: 'MSCI Japan Index', label: 'MSCI Japan' },
    { index: 'MSCI Europe Index', label: 'Europe' },
  ],
  commodities: [
    { index: 'LBMA Gold Price', label: 'Gold Trust' },
    { index: 'LBMA Silver Price', label: 'Silver Trust' },
    { index: 'WTI Crude Oil Futures', label: 'Crude Oil' },
    { index: 'Bloomberg Commodity Index', label: 'Broad Commodity' },
    { index: 'Henry Hub Natural Gas Futures', label: 'Natural Gas' },
  ],
  technology: [
    { index: 'Technology Select Sector Index', label: 'Technology Sector' },
    { index: 'PHLX Semiconductor Index', label: 'Semiconductor' },
    { index: 'ISE Cloud Computing Index', label: 'Cloud Computing' },
    { index: 'Nasdaq CTA Cybersecurity Index', label: 'Cybersecurity' },
    { index: 'Indxx Global Robotics & Artificial Intelligence Index', label: 'Robotics & AI' },
    { index: 'Nasdaq-100 Technology Sector Index', label: 'Nasdaq Technology' },
  ],
  bonds: [
    { index: 'Bloomberg US Aggregate Bond Index', label: 'Core US Aggregate Bond' },
    { index: 'ICE US Treasury 20+ Year Index', label: '20+ Year Treasury Bond' },
    { index: 'ICE US Treasury 1-3 Year Index', label: '1-3 Year Treasury Bond' },
    { index: 'Markit iBoxx USD Liquid Investment Grade Index', label: 'Investment Grade Corporate Bond' },
    { index: 'Markit iBoxx USD Liquid High Yield Index', label: 'High Yield Corporate Bond' },
    { index: 'ICE US Treasury Inflation Linked Bond Index', label: 'TIPS Bond' },
  ],
};

/** Share of ETFs per theme (sector and broad market dominate real listings). */
const THEME_WEIGHTS: Readonly<Record<EtfTheme, number>> = {
  broad_market: 0.15,
  sector: 0.16,
  growth: 0.1,
  value: 0.1,
  dividend: 0.08,
  international: 0.12,
  commodities: 0.08,
  technology: 0.11,
  bonds: 0.1,
};

const NAME_WORDS_A = [
  'Apex',
  'Blue',
  'Cedar',
  'Delta',
  'Evergreen',
  'First',
  'Global',
  'Harbor',
  'Iron',
  'Juniper',
  'Keystone',
  'Lumen',
  'Meridian',
  'North',
  'Orion',
  'Pioneer',
  'Quantum',
  'River',
  'Summit',
  'Titan',
  'United',
  'Vertex',
  'West',
  'Xeno',
  'Yellowstone',
  'Zenith',
  'Atlas',
  'Beacon',
  'Crest',
  'Dynamic',
];
const NAME_WORDS_B = [
  'Systems',
  'Holdings',
  'Technologies',
  'Industries',
  'Group',
  'Partners',
  'Networks',
  'Labs',
  'Resources',
  'Therapeutics',
  'Capital',
  'Energy',
  'Brands',
  'Dynamics',
  'Solutions',
  'Bancorp',
];
const EXCHANGES = ['XNAS', 'XNYS', 'XNAS', 'XNYS', 'XNAS', 'ARCX', 'XASE'] as const;

/** Per-symbol parameters of the price model, derived with the record. */
export interface SymbolProfile {
  readonly record: SymbolRecord;
  readonly theme: EtfTheme | null;
  /** Price at the start of a scenario. */
  readonly startPrice: number;
  /** Typical daily share volume. */
  readonly baseVolume: number;
  /** Sensitivity to the market factor. */
  readonly beta: number;
  /** Daily idiosyncratic volatility (log-return standard deviation). */
  readonly idioVol: number;
  /** Daily drift on top of beta x market. */
  readonly alpha: number;
}

export interface UniverseOptions {
  readonly seed: number | string;
  /** Number of symbols (default 8,000). */
  readonly size?: number;
}

const round = (value: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

function uniqueTicker(rng: Rng, taken: Set<string>, length: number): string {
  for (;;) {
    let ticker = '';
    for (let i = 0; i < length; i++) ticker += String.fromCharCode(65 + rng.int(0, 25));
    if (!taken.has(ticker)) {
      taken.add(ticker);
      return ticker;
    }
    // Short tickers run out (26^2 = 676); grow the length instead of looping forever.
    if (rng.chance(0.05)) length = Math.min(length + 1, 5);
  }
}

function isoFromYearFraction(rng: Rng, fromYear: number, toYear: number): string {
  const from = Date.UTC(fromYear, 0, 1);
  const to = Date.UTC(toYear, 11, 31);
  return new Date(from + Math.floor(rng.next() * ((to - from) / 86_400_000)) * 86_400_000)
    .toISOString()
    .slice(0, 10);
}

function weightedPick<T extends string>(rng: Rng, weights: Readonly<Record<T, number>>): T {
  const entries = Object.entries(weights) as [T, number][];
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  let x = rng.next() * total;
  for (const [key, w] of entries) {
    x -= w;
    if (x < 0) return key;
  }
  return (entries[entries.length - 1] as [T, number])[0];
}

/** Symbol profiles (record + price-model parameters), deterministic for (seed, size). */
export function generateProfiles(options: UniverseOptions): SymbolProfile[] {
  const size = options.size ?? 8000;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`universe size must be a positive integer`);
  const rng = createRng('universe', options.seed, size);
  const taken = new Set<string>();
  const etfCount = Math.round(size * 0.035);
  const etnCount = Math.round(size * 0.005);
  const stockCount = size - etfCount - etnCount;
  const profiles: SymbolProfile[] = [];

  // Stocks: tiers by exact share so a tier is never empty at the default size.
  let remaining = stockCount;
  CAP_TIERS.forEach((tier, t) => {
    const n = t === CAP_TIERS.length - 1 ? remaining : Math.max(1, Math.round(stockCount * tier.share));
    remaining -= n;
    for (let i = 0; i < n && profiles.length < stockCount; i++) {
      const marketCap = Math.round(Math.exp(rng.uniform(Math.log(tier.min), Math.log(tier.max))));
      const sector = rng.pick(SECTOR_NAMES);
      const industry = rng.pick(SECTORS[sector] as readonly Industry[]);
      const price =
        tier.name === 'micro'
          ? Math.exp(rng.uniform(Math.log(0.8), Math.log(40)))
          : Math.exp(rng.uniform(Math.log(8), Math.log(600)));
      const symbol = uniqueTicker(
        rng,
        taken,
        tier.name === 'mega' || tier.name === 'large' ? rng.int(2, 4) : rng.int(3, 4),
      );
      const name = `${rng.pick(NAME_WORDS_A)} ${rng.pick(NAME_WORDS_B)} ${symbol.slice(0, 2)} Inc.`;
      const shares = Math.max(1000, Math.round(marketCap / price));
      // Daily turnover 0.2-1.5 % of shares; micro caps trade thinner.
      const turnover = rng.uniform(0.002, tier.name === 'micro' ? 0.008 : 0.015);
      profiles.push({
        record: {
          symbol,
          name,
          type: 'CS',
          market: 'stocks',
          primaryExchange: rng.pick(EXCHANGES.slice(0, 5)),
          active: true,
          marketCap,
          listDate: isoFromYearFraction(rng, 1980, 2019),
          sector,
          industry: industry.industry,
          sicCode: industry.sic,
          sicDescription: industry.description,
          sharesOutstanding: shares,
          issuer: null,
          aum: null,
          expenseRatio: null,
          underlyingIndex: null,
          delistedAt: null,
        },
        theme: null,
        startPrice: round(price, price < 1 ? 4 : 2),
        baseVolume: Math.max(200, Math.round(shares * turnover)),
        beta: rng.uniform(0.6, 1.6),
        idioVol: tier.name === 'micro' ? rng.uniform(0.012, 0.03) : rng.uniform(0.006, 0.018),
        alpha: rng.normal() * (0.12 / 252),
      });
    }
  });

  for (let i = 0; i < etfCount; i++) {
    // The first ETFs walk the themes in order so every theme exists even in small universes.
    const theme = i < ETF_THEMES.length ? (ETF_THEMES[i] as EtfTheme) : weightedPick(rng, THEME_WEIGHTS);
    const { issuer, brand } = rng.pick(ISSUERS);
    const { index, label } = rng.pick(THEME_INDEXES[theme]);
    const symbol = uniqueTicker(rng, taken, rng.int(3, 4));
    const price = Math.exp(rng.uniform(Math.log(15), Math.log(450)));
    const aum = Math.round(Math.exp(rng.uniform(Math.log(20e6), Math.log(400e9))));
    const shares = Math.max(10_000, Math.round(aum / price));
    const bonds = theme === 'bonds';
    profiles.push({
      record: {
        symbol,
        name: `${brand} ${label} ETF`,
        type: 'ETF',
        market: 'stocks',
        primaryExchange: rng.pick(['ARCX', 'ARCX', 'XNAS', 'BATS'] as const),
        active: true,
        marketCap: null,
        listDate: isoFromYearFraction(rng, 1993, 2019),
        sector: null,
        industry: null,
        sicCode: null,
        sicDescription: null,
        sharesOutstanding: shares,
        issuer,
        aum,
        expenseRatio: round(rng.uniform(0.0003, theme === 'commodities' ? 0.0095 : 0.0075), 4),
        underlyingIndex: index,
        delistedAt: null,
      },
      theme,
      startPrice: round(price, 2),
      baseVolume: Math.max(1_000, Math.round(shares * rng.uniform(0.004, 0.03))),
      beta: bonds
        ? rng.uniform(-0.1, 0.2)
        : theme === 'commodities'
          ? rng.uniform(0.1, 0.6)
          : rng.uniform(0.8, 1.2),
      idioVol: bonds ? rng.uniform(0.002, 0.005) : rng.uniform(0.003, 0.009),
      alpha: 0,
    });
  }

  for (let i = 0; i < etnCount; i++) {
    const { index, label } = rng.pick([
      ...THEME_INDEXES.commodities,
      { index: 'S&P 500 VIX Short-Term Futures Index', label: 'VIX Short-Term Futures' },
    ]);
    const symbol = uniqueTicker(rng, taken, 4);
    const price = Math.exp(rng.uniform(Math.log(5), Math.log(120)));
    const aum = Math.round(Math.exp(rng.uniform(Math.log(5e6), Math.log(3e9))));
    profiles.push({
      record: {
        symbol,
        name: `${rng.pick(['iPath', 'ETRACS', 'MicroSectors', 'VelocityShares'])} ${label} ETN`,
        type: 'ETN',
        market: 'stocks',
        primaryExchange: 'ARCX',
        active: true,
        marketCap: null,
        listDate: isoFromYearFraction(rng, 2006, 2019),
        sector: null,
        industry: null,
        sicCode: null,
        sicDescription: null,
        sharesOutstanding: Math.max(10_000, Math.round(aum / price)),
        issuer: rng.pick(['Barclays', 'UBS', 'Bank of Montreal', 'Credit Suisse']),
        aum,
        expenseRatio: round(rng.uniform(0.0075, 0.0095), 4),
        underlyingIndex: index,
        delistedAt: null,
      },
      theme: null,
      startPrice: round(price, 2),
      baseVolume: rng.int(5_000, 400_000),
      beta: rng.uniform(-0.5, 0.8),
      idioVol: rng.uniform(0.01, 0.03),
      alpha: 0,
    });
  }
  return profiles;
}

/** The symbol master of a synthetic market: `size` records (CS, ETF, ETN), deterministic for the seed. */
export function generateUniverse(options: UniverseOptions): SymbolRecord[] {
  return generateProfiles(options).map((p) => p.record);
}

/** The theme an ETF was generated for (what theme inference should find), null for non-ETFs. */
export function etfThemes(profiles: readonly SymbolProfile[]): Record<string, EtfTheme> {
  const out: Record<string, EtfTheme> = {};
  for (const p of profiles) if (p.theme) out[p.record.symbol] = p.theme;
  return out;
}
