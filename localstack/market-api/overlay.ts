import type { IsoDate } from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import { hash32, rng } from './random';

/**
 * Listings and delistings injected on top of a scenario through the control knobs, so the IPO scan
 * can be exercised on any date: new tickers (with details and a short history from their listing
 * date) and delisted ones, both chosen deterministically from the seed and the date.
 */
export interface OverlayKnobs {
  /** date -> number of new listings on that date */
  readonly listings: Readonly<Record<IsoDate, number>>;
  /** date -> number of symbols delisted on that date */
  readonly delistings: Readonly<Record<IsoDate, number>>;
}

export interface OverlayBase {
  readonly seed: string | number;
  readonly days: readonly IsoDate[];
  readonly universe: readonly SymbolRecord[];
  activeOn(date: IsoDate): readonly SymbolRecord[];
}

const SIC: readonly [string, string][] = [
  ['7372', 'SERVICES-PREPACKAGED SOFTWARE'],
  ['2834', 'PHARMACEUTICAL PREPARATIONS'],
  ['3674', 'SEMICONDUCTORS & RELATED DEVICES'],
  ['6022', 'STATE COMMERCIAL BANKS'],
  ['4911', 'ELECTRIC SERVICES'],
  ['5812', 'RETAIL-EATING PLACES'],
  ['1311', 'CRUDE PETROLEUM & NATURAL GAS'],
  ['3711', 'MOTOR VEHICLES & PASSENGER CAR BODIES'],
];
const WORDS = [
  'Apex',
  'Northwind',
  'Bluefin',
  'Cobalt',
  'Evergreen',
  'Lumen',
  'Quarry',
  'Summit',
  'Vertex',
  'Harbor',
];
const SUFFIXES = [
  'Holdings',
  'Therapeutics',
  'Systems',
  'Bancorp',
  'Energy',
  'Labs',
  'Group',
  'Technologies',
];
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export class Overlay {
  private readonly listed = new Map<string, SymbolRecord>();
  private readonly listedBars = new Map<string, DailyBar[]>();
  /** symbol -> delisting date (the first date it is no longer active) */
  readonly delisted = new Map<string, IsoDate>();

  constructor(
    private readonly base: OverlayBase,
    readonly knobs: OverlayKnobs,
  ) {
    const taken = new Set(base.universe.map((r) => r.symbol));
    for (const date of Object.keys(knobs.listings).sort()) {
      const count = knobs.listings[date] ?? 0;
      for (let i = 0; i < count; i++) {
        const record = this.newListing(date, i, taken);
        taken.add(record.symbol);
        this.listed.set(record.symbol, record);
      }
    }
    for (const date of Object.keys(knobs.delistings).sort()) {
      const count = knobs.delistings[date] ?? 0;
      const candidates = base
        .activeOn(date)
        .filter((r) => !this.delisted.has(r.symbol))
        .map((r) => ({ symbol: r.symbol, rank: hash32(`${base.seed}|delist|${date}|${r.symbol}`) }))
        .sort((a, b) => a.rank - b.rank || (a.symbol < b.symbol ? -1 : 1));
      for (const c of candidates.slice(0, count)) this.delisted.set(c.symbol, date);
    }
  }

  get listings(): readonly SymbolRecord[] {
    return [...this.listed.values()];
  }

  listing(symbol: string): SymbolRecord | undefined {
    return this.listed.get(symbol);
  }

  /** A base record as the overlay changes it (delisted symbols become inactive). */
  apply(record: SymbolRecord): SymbolRecord {
    const date = this.delisted.get(record.symbol);
    return date === undefined ? record : { ...record, active: false, delistedAt: date };
  }

  isDelistedOn(symbol: string, date: IsoDate): boolean {
    const d = this.delisted.get(symbol);
    return d !== undefined && d <= date;
  }

  /** Daily bars of an overlay listing, from its listing date to the end of the scenario window. */
  listingBars(symbol: string): DailyBar[] {
    const cached = this.listedBars.get(symbol);
    if (cached) return cached;
    const record = this.listed.get(symbol);
    if (!record?.listDate) return [];
    const listDate = record.listDate;
    const random = rng(`${this.base.seed}|bars|${symbol}`);
    let close = 10 + random() * 50;
    const shares = record.sharesOutstanding ?? 50_000_000;
    const bars: DailyBar[] = [];
    for (const date of this.base.days) {
      if (date < listDate) continue;
      const open = round2(close * (1 + (random() - 0.5) * 0.02));
      close = round2(Math.max(0.5, close * (1 + (random() + random() + random() - 1.5) * 0.04)));
      const high = round2(Math.max(open, close) * (1 + random() * 0.02));
      const low = round2(Math.min(open, close) * (1 - random() * 0.02));
      const volume = Math.round(shares * (0.002 + random() * 0.02) * (bars.length === 0 ? 5 : 1));
      bars.push({
        symbol,
        date,
        open,
        high: Math.max(high, open, close),
        low: Math.min(low, open, close),
        close,
        volume,
        vwap: round2((high + low + close) / 3),
        transactions: Math.max(1, Math.round(volume / 150)),
      });
    }
    this.listedBars.set(symbol, bars);
    return bars;
  }

  private newListing(date: IsoDate, index: number, taken: ReadonlySet<string>): SymbolRecord {
    for (let attempt = 0; ; attempt++) {
      const random = rng(`${this.base.seed}|listing|${date}|${index}|${attempt}`);
      const length = 3 + Math.floor(random() * 2);
      let symbol = '';
      for (let i = 0; i < length; i++) symbol += LETTERS[Math.floor(random() * 26)];
      if (taken.has(symbol)) continue;
      const [sicCode, sicDescription] = SIC[Math.floor(random() * SIC.length)] ?? SIC[0] ?? ['', ''];
      // Log-uniform between $150M and $30B: most IPOs small, a few large.
      const marketCap = Math.round(150e6 * 200 ** random());
      const price = 10 + random() * 40;
      return {
        symbol,
        name: `${WORDS[Math.floor(random() * WORDS.length)]} ${SUFFIXES[Math.floor(random() * SUFFIXES.length)]} Inc.`,
        type: 'CS',
        market: 'stocks',
        primaryExchange: random() < 0.6 ? 'XNAS' : 'XNYS',
        active: true,
        marketCap,
        listDate: date,
        sector: null,
        industry: sicDescription,
        sicCode,
        sicDescription,
        sharesOutstanding: Math.round(marketCap / price),
        issuer: null,
        aum: null,
        expenseRatio: null,
        underlyingIndex: null,
        delistedAt: null,
      };
    }
  }
}
