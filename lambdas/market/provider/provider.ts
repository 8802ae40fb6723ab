import type { z } from 'zod';
import { sessionDate } from '../calendar';
import { type DailyBar, type SymbolRecord, TICKER_TYPES, type TickerType } from '../types';
import { resolveApiKey } from './api-key';
import { ProviderConfigError } from './errors';
import { type HttpClientOptions, ProviderHttpClient } from './http';
import { type Clock, systemClock, TokenBucket } from './rate-limiter';
import {
  AggregatesResponseSchema,
  GroupedDailyResponseSchema,
  SplitsResponseSchema,
  TickerDetailsResponseSchema,
  type TickerDetailsSchema,
  TickerListResponseSchema,
} from './schemas';

/** An active ticker as listed by the provider for a date. */
export interface ProviderTicker {
  readonly symbol: string;
  readonly name: string | null;
  /** Provider type code (CS, ETF, ETN, ADRC, ...); may be a code the platform does not track. */
  readonly type: string | null;
  readonly primaryExchange: string | null;
  readonly active: boolean;
}

export interface Split {
  readonly symbol: string;
  /** ISO date YYYY-MM-DD */
  readonly executionDate: string;
  readonly splitFrom: number;
  readonly splitTo: number;
}

export interface SplitQuery {
  readonly symbol?: string;
  readonly from?: string;
  readonly to?: string;
}

export type TickerDetails = z.output<typeof TickerDetailsSchema>;

/** What the jobs need from the market-data provider. */
export interface MarketDataProvider {
  listActiveTickers(date: string): Promise<ProviderTicker[]>;
  tickerDetails(symbol: string): Promise<SymbolRecord | null>;
  dailyBars(symbol: string, from: string, to: string): Promise<DailyBar[]>;
  groupedDaily(date: string): Promise<DailyBar[]>;
  splits(query: SplitQuery): Promise<Split[]>;
}

const TRACKED_TYPES: ReadonlySet<string> = new Set(TICKER_TYPES);

function assertDate(label: string, value: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new RangeError(`${label} must be YYYY-MM-DD, got ${value}`);
}

/** Maps provider details to the symbols row; null for types the platform does not track. */
export function toSymbolRecord(d: TickerDetails): SymbolRecord | null {
  if (!d.type || !TRACKED_TYPES.has(d.type)) return null;
  return {
    symbol: d.ticker,
    name: d.name,
    type: d.type as TickerType,
    market: 'stocks',
    primaryExchange: d.primary_exchange ?? '',
    active: d.active,
    marketCap: d.market_cap ?? null,
    listDate: d.list_date ?? null,
    // The provider has no sector field; sector is derived from the SIC code by the domain code.
    sector: null,
    industry: d.sic_description ?? null,
    sicCode: d.sic_code ?? null,
    sicDescription: d.sic_description ?? null,
    sharesOutstanding: d.share_class_shares_outstanding ?? d.weighted_shares_outstanding ?? null,
    issuer: null,
    aum: null,
    expenseRatio: null,
    underlyingIndex: null,
    delistedAt: d.delisted_utc ? d.delisted_utc.slice(0, 10) : null,
  };
}

type Bar = {
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  vw?: number | null;
  n?: number | null;
  t: number;
};

function toDailyBar(symbol: string, b: Bar): DailyBar {
  return {
    symbol,
    date: sessionDate(b.t),
    open: b.o,
    high: b.h,
    low: b.l,
    close: b.c,
    volume: b.v,
    // Some bars come without vw; the typical price is the standard stand-in for a daily VWAP.
    vwap: b.vw ?? (b.h + b.l + b.c) / 3,
    transactions: b.n ?? 0,
  };
}

export interface PolygonProviderOptions extends Omit<HttpClientOptions, 'rateLimiter' | 'apiKey'> {
  readonly apiKey?: () => Promise<string>;
  /** Client-side limit; omit for none (paid tiers with server-side limits well above our use). */
  readonly callsPerMinute?: number;
  readonly burst?: number;
  /** Page size for the reference endpoints (provider maximum 1000). */
  readonly pageLimit?: number;
  /** Safety stop for paging loops: a provider that keeps returning next_url cannot loop us forever. */
  readonly maxPages?: number;
}

/** Polygon.io / Massive REST adapter. */
export class PolygonProvider implements MarketDataProvider {
  readonly http: ProviderHttpClient;
  private readonly pageLimit: number;
  private readonly maxPages: number;

  constructor(options: PolygonProviderOptions) {
    const clock: Clock = options.clock ?? systemClock;
    this.http = new ProviderHttpClient({
      ...options,
      apiKey: options.apiKey ?? (() => resolveApiKey()),
      ...(options.callsPerMinute
        ? { rateLimiter: new TokenBucket(options.callsPerMinute, options.burst, clock) }
        : {}),
    });
    this.pageLimit = options.pageLimit ?? 1000;
    this.maxPages = options.maxPages ?? 10_000;
  }

  /** Follows next_url until the provider stops returning one. */
  private async *pages<T extends { next_url?: string | null | undefined }>(
    first: string,
    fetchPage: (url: string) => Promise<T>,
  ): AsyncGenerator<T> {
    let url: string | null | undefined = first;
    for (let page = 0; url; page++) {
      if (page >= this.maxPages) throw new RangeError(`more than ${this.maxPages} pages from ${first}`);
      const body: T = await fetchPage(url);
      yield body;
      url = body.next_url;
    }
  }

  /** Every ticker active on `date`, one page at a time (for callers that stream into the database). */
  async *iterateActiveTickers(date: string): AsyncGenerator<ProviderTicker[]> {
    assertDate('date', date);
    const first = this.http.url('v3/reference/tickers', {
      market: 'stocks',
      active: true,
      date,
      limit: this.pageLimit,
      order: 'asc',
      sort: 'ticker',
    });
    for await (const body of this.pages(first, (u) => this.http.getJson(u, TickerListResponseSchema))) {
      yield body.results.map((t) => ({
        symbol: t.ticker,
        name: t.name ?? null,
        type: t.type ?? null,
        primaryExchange: t.primary_exchange ?? null,
        active: t.active,
      }));
    }
  }

  async listActiveTickers(date: string): Promise<ProviderTicker[]> {
    const all: ProviderTicker[] = [];
    for await (const page of this.iterateActiveTickers(date)) all.push(...page);
    return all;
  }

  /**
   * Raw details (all provider fields the pipeline reads); with `date`, as of that date (the
   * provider's point-in-time details: market_cap valued at that day's close).
   */
  async tickerDetailsRaw(symbol: string, date?: string): Promise<TickerDetails> {
    if (date !== undefined) assertDate('date', date);
    const body = await this.http.getJson(
      this.http.url(`v3/reference/tickers/${encodeURIComponent(symbol)}`, date === undefined ? {} : { date }),
      TickerDetailsResponseSchema,
    );
    return body.results;
  }

  async tickerDetails(symbol: string): Promise<SymbolRecord | null> {
    return toSymbolRecord(await this.tickerDetailsRaw(symbol));
  }

  async dailyBars(symbol: string, from: string, to: string): Promise<DailyBar[]> {
    assertDate('from', from);
    assertDate('to', to);
    const first = this.http.url(`v2/aggs/ticker/${encodeURIComponent(symbol)}/range/1/day/${from}/${to}`, {
      adjusted: true,
      sort: 'asc',
      limit: 50_000,
    });
    const bars: DailyBar[] = [];
    for await (const body of this.pages(first, (u) => this.http.getJson(u, AggregatesResponseSchema))) {
      for (const b of body.results) bars.push(toDailyBar(symbol, b));
    }
    return bars;
  }

  async groupedDaily(date: string): Promise<DailyBar[]> {
    assertDate('date', date);
    const body = await this.http.getJson(
      this.http.url(`v2/aggs/grouped/locale/us/market/stocks/${date}`, { adjusted: true }),
      GroupedDailyResponseSchema,
    );
    return body.results.map((b) => toDailyBar(b.T, b));
  }

  async splits(query: SplitQuery = {}): Promise<Split[]> {
    if (query.from) assertDate('from', query.from);
    if (query.to) assertDate('to', query.to);
    const first = this.http.url('v3/reference/splits', {
      ticker: query.symbol,
      'execution_date.gte': query.from,
      'execution_date.lte': query.to,
      limit: this.pageLimit,
      order: 'asc',
      sort: 'execution_date',
    });
    const out: Split[] = [];
    for await (const body of this.pages(first, (u) => this.http.getJson(u, SplitsResponseSchema))) {
      for (const s of body.results) {
        out.push({
          symbol: s.ticker,
          executionDate: s.execution_date,
          splitFrom: s.split_from,
          splitTo: s.split_to,
        });
      }
    }
    return out;
  }
}

function numberFromEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number | undefined,
  min: number,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min)
    throw new ProviderConfigError(`${name} must be a number >= ${min}, got ${raw}`);
  return n;
}

/**
 * Provider from environment: MARKET_API_BASE_URL (default the public API), MARKET_API_CALLS_PER_MINUTE
 * (default 5, the free tier), MARKET_API_TIMEOUT_MS, MARKET_API_MAX_RETRIES; the key per resolveApiKey.
 */
export function providerFromEnv(env: NodeJS.ProcessEnv = process.env): PolygonProvider {
  const baseUrl = env.MARKET_API_BASE_URL || 'https://api.polygon.io';
  try {
    new URL(baseUrl);
  } catch {
    throw new ProviderConfigError(`MARKET_API_BASE_URL is not a URL: ${baseUrl}`);
  }
  const callsPerMinute = numberFromEnv(env, 'MARKET_API_CALLS_PER_MINUTE', 5, 0.001);
  const timeoutMs = numberFromEnv(env, 'MARKET_API_TIMEOUT_MS', undefined, 1);
  const maxRetries = numberFromEnv(env, 'MARKET_API_MAX_RETRIES', undefined, 0);
  return new PolygonProvider({
    baseUrl,
    apiKey: () => resolveApiKey(env),
    ...(callsPerMinute !== undefined ? { callsPerMinute } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(maxRetries !== undefined ? { maxRetries } : {}),
  });
}
