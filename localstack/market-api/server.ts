import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { addDays, type IsoDate } from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import { createScenarioMarket, type ScenarioMarket } from '../scenarios';
import { type FaultKnobs, FaultKnobsSchema, Faults } from './faults';
import { Overlay, type OverlayKnobs } from './overlay';

/**
 * Local stand-in for the Polygon/Massive REST API, serving a synthetic scenario so the real HTTP
 * adapter is what the tests and the local stage exercise. Endpoints and shapes follow the provider;
 * knobs (POST /_control) add listings/delistings and faults (429 bursts, 5xx, slow responses).
 */
export interface MarketApiOptions {
  readonly port?: number;
  readonly host?: string;
  readonly seed?: number | string;
  readonly size?: number;
  readonly scenario?: string;
  readonly start?: IsoDate;
  readonly end?: IsoDate;
  /** Accepted keys; when omitted any non-empty key is accepted (a missing one is still refused). */
  readonly apiKeys?: readonly string[];
  readonly listings?: Record<IsoDate, number>;
  readonly delistings?: Record<IsoDate, number>;
  readonly faults?: FaultKnobs;
}

export const ControlSchema = FaultKnobsSchema.extend({
  reset: z.boolean().optional(),
  listings: z.record(z.string().regex(/^\d{4}-\d{2}-\d{2}$/), z.number().int().nonnegative()).optional(),
  delistings: z.record(z.string().regex(/^\d{4}-\d{2}-\d{2}$/), z.number().int().nonnegative()).optional(),
});
export type ControlKnobs = z.infer<typeof ControlSchema>;

export interface MarketApi {
  readonly url: string;
  readonly port: number;
  readonly market: ScenarioMarket;
  /** Same as POST /_control: returns the state after applying the knobs. */
  control(knobs: ControlKnobs): Record<string, unknown>;
  /** The overlay listings currently injected (what an IPO scan should find). */
  listings(): readonly SymbolRecord[];
  /** Symbol -> delisting date of the overlay delistings. */
  delistings(): ReadonlyMap<string, IsoDate>;
  /** API requests served, by route. */
  stats(): Record<string, number>;
  close(): Promise<void>;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const AGGS =
  /^\/v2\/aggs\/ticker\/([^/]+)\/range\/(\d+)\/([a-z]+)\/(\d{4}-\d{2}-\d{2})\/(\d{4}-\d{2}-\d{2})$/;
const GROUPED = /^\/v2\/aggs\/grouped\/locale\/us\/market\/stocks\/(\d{4}-\d{2}-\d{2})$/;
const DETAILS = /^\/v3\/reference\/tickers\/([^/]+)$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const NY_OFFSET = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  timeZoneName: 'shortOffset',
});

/** Unix ms of midnight America/New_York on a session date, as the provider stamps daily bars. */
export function sessionStartMs(date: IsoDate): number {
  // Noon UTC is the same New York day, and trading days never contain a DST switch (Sundays).
  const noon = new Date(`${date}T12:00:00Z`);
  const offset = NY_OFFSET.formatToParts(noon).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT-5';
  const hours = Number(offset.replace('GMT', '')) || -5;
  return Date.parse(`${date}T00:00:00Z`) - hours * 3_600_000;
}

function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor(cursor: string): Record<string, string | number> {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, string | number>;
  } catch {
    throw new HttpError(400, 'invalid cursor');
  }
}

function aggregate(b: DailyBar): Record<string, number> {
  return {
    v: b.volume,
    vw: b.vwap,
    o: b.open,
    c: b.close,
    h: b.high,
    l: b.low,
    t: sessionStartMs(b.date),
    n: b.transactions,
  };
}

function tickerItem(r: SymbolRecord, date: IsoDate): Record<string, unknown> {
  return {
    ticker: r.symbol,
    name: r.name,
    market: 'stocks',
    locale: 'us',
    primary_exchange: r.primaryExchange,
    type: r.type,
    active: r.delistedAt === null || r.delistedAt > date,
    currency_name: 'usd',
    last_updated_utc: `${date}T00:00:00Z`,
    ...(r.delistedAt ? { delisted_utc: `${r.delistedAt}T00:00:00Z` } : {}),
  };
}

/**
 * `marketCap` overrides the record's static value: with `?date=` the provider values the listing
 * at that date (shares outstanding x the close of the latest session on or before it; for a fund
 * that is its net assets), as the provider's point-in-time details do.
 */
function details(r: SymbolRecord, marketCap: number | null = r.marketCap): Record<string, unknown> {
  return {
    ticker: r.symbol,
    name: r.name,
    market: 'stocks',
    locale: 'us',
    primary_exchange: r.primaryExchange,
    type: r.type,
    active: r.active && r.delistedAt === null,
    currency_name: 'usd',
    ...(marketCap === null ? {} : { market_cap: marketCap }),
    ...(r.listDate === null ? {} : { list_date: r.listDate }),
    ...(r.sicCode === null ? {} : { sic_code: r.sicCode }),
    ...(r.sicDescription === null ? {} : { sic_description: r.sicDescription }),
    ...(r.sharesOutstanding === null
      ? {}
      : {
          share_class_shares_outstanding: r.sharesOutstanding,
          weighted_shares_outstanding: r.sharesOutstanding,
        }),
    ...(r.delistedAt ? { delisted_utc: `${r.delistedAt}T00:00:00Z` } : {}),
  };
}

export async function startMarketApi(options: MarketApiOptions = {}): Promise<MarketApi> {
  const seed = options.seed ?? 1;
  const market = createScenarioMarket({
    scenario: options.scenario ?? 'ipo',
    seed,
    size: options.size ?? 8000,
    ...(options.start ? { start: options.start } : {}),
    ...(options.end ? { end: options.end } : {}),
  });
  const bySymbol = new Map(market.universe.map((r) => [r.symbol, r]));
  const base = {
    seed,
    days: market.days,
    universe: market.universe,
    activeOn: (d: IsoDate) => market.activeOn(d),
  };
  let knobs: OverlayKnobs = { listings: { ...options.listings }, delistings: { ...options.delistings } };
  let overlay = new Overlay(base, knobs);
  const faults = new Faults();
  if (options.faults) faults.set(options.faults);
  const acceptedKeys = options.apiKeys ? new Set(options.apiKeys) : undefined;
  const stats: Record<string, number> = {};
  // Per-date caches: a grouped day costs one pass over the universe, a ticker list a sort.
  const groupedCache = new Map<IsoDate, DailyBar[]>();
  const activeCache = new Map<IsoDate, SymbolRecord[]>();
  let splitsCache: { symbol: string; date: IsoDate; ratio: number }[] | undefined;

  function remember<V>(cache: Map<IsoDate, V>, key: IsoDate, make: () => V): V {
    const hit = cache.get(key);
    if (hit) return hit;
    const value = make();
    if (cache.size >= 16) cache.delete(cache.keys().next().value as IsoDate);
    cache.set(key, value);
    return value;
  }

  function rebuild(next: OverlayKnobs): void {
    knobs = next;
    overlay = new Overlay(base, knobs);
    groupedCache.clear();
    activeCache.clear();
  }

  function record(symbol: string): SymbolRecord | undefined {
    const r = bySymbol.get(symbol);
    return r ? overlay.apply(r) : overlay.listing(symbol);
  }

  function activeOn(date: IsoDate): SymbolRecord[] {
    return remember(activeCache, date, () =>
      [
        ...market.activeOn(date).filter((r) => !overlay.isDelistedOn(r.symbol, date)),
        ...overlay.listings.filter((r) => r.listDate !== null && r.listDate <= date),
      ].sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0)),
    );
  }

  function barsOf(symbol: string, from: IsoDate, to: IsoDate): DailyBar[] {
    const listed = overlay.listing(symbol);
    const all = listed
      ? overlay.listingBars(symbol)
      : bySymbol.has(symbol)
        ? market.bars(symbol, from, to)
        : [];
    return all.filter((b) => b.date >= from && b.date <= to && !overlay.isDelistedOn(symbol, b.date));
  }

  function grouped(date: IsoDate): DailyBar[] {
    return remember(groupedCache, date, () => [
      ...market.groupedBars(date).filter((b) => !overlay.isDelistedOn(b.symbol, date)),
      ...overlay.listings.flatMap((r) => overlay.listingBars(r.symbol).filter((b) => b.date === date)),
    ]);
  }

  function splits(): { symbol: string; date: IsoDate; ratio: number }[] {
    splitsCache ??= market
      .expectedOutcomes()
      .events.filter((e) => e.kind === 'split' && e.ratio !== undefined)
      .map((e) => ({ symbol: e.symbol, date: e.date, ratio: e.ratio as number }))
      .sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.symbol < b.symbol ? -1 : 1));
    return splitsCache;
  }

  function control(input: ControlKnobs): Record<string, unknown> {
    if (input.reset) {
      faults.reset();
      rebuild({ listings: {}, delistings: {} });
    }
    if (input.listings || input.delistings) {
      rebuild({
        listings: { ...knobs.listings, ...input.listings },
        delistings: { ...knobs.delistings, ...input.delistings },
      });
    }
    faults.set(input);
    return state();
  }

  function state(): Record<string, unknown> {
    return {
      scenario: market.definition.name,
      seed,
      size: market.universe.length,
      start: market.start,
      end: market.end,
      listings: knobs.listings,
      delistings: knobs.delistings,
      faults: faults.snapshot(),
      requests: { ...stats },
    };
  }

  function route(url: URL, origin: string): unknown {
    const path = url.pathname;
    const q = url.searchParams;
    if (path === '/v3/reference/tickers') {
      const cursor = q.get('cursor');
      const params = cursor ? decodeCursor(cursor) : undefined;
      const date = String(params?.date ?? q.get('date') ?? market.end);
      if (!DATE.test(date)) throw new HttpError(400, 'date must be YYYY-MM-DD');
      const limit = Math.min(1000, Math.max(1, Number(params?.limit ?? q.get('limit') ?? 100) || 100));
      const after = String(params?.after ?? '');
      const all = activeOn(date);
      // Cursor = last ticker served, so a page boundary is stable even if the list is re-sorted.
      let startIndex = 0;
      if (after) {
        while (startIndex < all.length && (all[startIndex]?.symbol ?? '') <= after) startIndex++;
      }
      const page = all.slice(startIndex, startIndex + limit);
      const last = page.at(-1);
      const more = startIndex + limit < all.length && last !== undefined;
      return {
        status: 'OK',
        count: page.length,
        results: page.map((r) => tickerItem(r, date)),
        ...(more
          ? {
              next_url: `${origin}/v3/reference/tickers?cursor=${encodeCursor({ date, limit, after: last.symbol })}`,
            }
          : {}),
      };
    }
    const detailsMatch = DETAILS.exec(path);
    if (detailsMatch) {
      const symbol = decodeURIComponent(detailsMatch[1] ?? '');
      const r = record(symbol);
      if (!r) throw new HttpError(404, 'Ticker not found.');
      const date = q.get('date');
      if (date === null) return { status: 'OK', results: details(r) };
      if (!DATE.test(date)) throw new HttpError(400, 'date must be YYYY-MM-DD');
      const last = barsOf(symbol, addDays(date, -10), date).at(-1);
      const value =
        last && r.sharesOutstanding !== null ? Math.round(r.sharesOutstanding * last.close) : r.marketCap;
      return { status: 'OK', results: details(r, value) };
    }
    const aggs = AGGS.exec(path);
    if (aggs) {
      const [, rawSymbol, multiplier, timespan, from, to] = aggs;
      if (multiplier !== '1' || timespan !== 'day')
        throw new HttpError(400, 'only 1/day aggregates are served');
      const symbol = decodeURIComponent(rawSymbol ?? '');
      const bars = barsOf(symbol, from ?? '', to ?? '');
      const sorted = q.get('sort') === 'desc' ? [...bars].reverse() : bars;
      return {
        ticker: symbol,
        queryCount: sorted.length,
        resultsCount: sorted.length,
        adjusted: q.get('adjusted') !== 'false',
        status: 'OK',
        ...(sorted.length > 0 ? { results: sorted.map(aggregate), count: sorted.length } : {}),
      };
    }
    const groupedMatch = GROUPED.exec(path);
    if (groupedMatch) {
      const bars = grouped(groupedMatch[1] ?? '');
      return {
        queryCount: bars.length,
        resultsCount: bars.length,
        adjusted: q.get('adjusted') !== 'false',
        status: 'OK',
        ...(bars.length > 0 ? { results: bars.map((b) => ({ T: b.symbol, ...aggregate(b) })) } : {}),
      };
    }
    if (path === '/v3/reference/splits') {
      const cursor = q.get('cursor');
      const params = cursor ? decodeCursor(cursor) : undefined;
      const ticker = (params?.ticker ?? q.get('ticker') ?? '') as string;
      const gte = (params?.gte ?? q.get('execution_date.gte') ?? '') as string;
      const lte = (params?.lte ?? q.get('execution_date.lte') ?? '') as string;
      const limit = Math.min(1000, Math.max(1, Number(params?.limit ?? q.get('limit') ?? 10) || 10));
      const offset = Number(params?.offset ?? 0);
      const all = splits().filter(
        (s) => (!ticker || s.symbol === ticker) && (!gte || s.date >= gte) && (!lte || s.date <= lte),
      );
      const page = all.slice(offset, offset + limit);
      const more = offset + limit < all.length;
      return {
        status: 'OK',
        results: page.map((s) => ({
          ticker: s.symbol,
          execution_date: s.date,
          // ratio = shares after / before: 2 -> 1-for-2 forward split, 0.25 -> 4-to-1 reverse.
          split_from: s.ratio >= 1 ? 1 : Math.round(1 / s.ratio),
          split_to: s.ratio >= 1 ? Math.round(s.ratio * 1000) / 1000 : 1,
        })),
        ...(more
          ? {
              next_url: `${origin}/v3/reference/splits?cursor=${encodeCursor({ ticker, gte, lte, limit, offset: offset + limit })}`,
            }
          : {}),
      };
    }
    throw new HttpError(404, 'Route not found');
  }

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(400, 'control body is not JSON');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = `http://${req.headers.host ?? `127.0.0.1`}`;
    const url = new URL(req.url ?? '/', origin);
    const request_id = randomBytes(16).toString('hex');
    if (url.pathname === '/_health') return send(res, 200, { status: 'ok', ...state() });
    if (url.pathname === '/_control') {
      if (req.method === 'GET') return send(res, 200, state());
      if (req.method !== 'POST') return send(res, 405, { error: 'GET or POST' });
      const parsed = ControlSchema.safeParse(await readBody(req));
      if (!parsed.success) return send(res, 400, { error: 'invalid knobs', issues: parsed.error.issues });
      return send(res, 200, control(parsed.data));
    }
    if (req.method !== 'GET') return send(res, 405, { status: 'ERROR', request_id, error: 'GET only' });
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const key = url.searchParams.get('apiKey') ?? bearer;
    if (!key) {
      return send(res, 401, { status: 'ERROR', request_id, error: 'API Key was not provided' });
    }
    if (acceptedKeys && !acceptedKeys.has(key)) {
      return send(res, 401, { status: 'ERROR', request_id, error: 'Unknown API Key' });
    }
    const routeName = url.pathname
      .replace(/\/(\d{4}-\d{2}-\d{2})/g, '/{date}')
      .replace(/ticker\/[^/]+/, 'ticker/{T}');
    stats[routeName] = (stats[routeName] ?? 0) + 1;
    const fault = faults.decide();
    if (fault.delayMs > 0) await sleep(fault.delayMs);
    if (fault.kind === 'rateLimit') {
      return send(
        res,
        429,
        { status: 'ERROR', request_id, error: "You've exceeded the maximum requests per minute." },
        { 'retry-after': String(fault.retryAfterSeconds) },
      );
    }
    if (fault.kind === 'serverError') {
      return send(res, fault.status, { status: 'ERROR', request_id, error: 'injected server error' });
    }
    const body = route(url, origin) as Record<string, unknown>;
    send(res, 200, { ...body, request_id });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      if (error instanceof HttpError) {
        const status = error.status === 404 ? 'NOT_FOUND' : 'ERROR';
        return send(res, error.status, { status, error: error.message });
      }
      console.error('market-api: internal error', error);
      send(res, 500, { status: 'ERROR', error: 'internal error' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    market,
    control,
    listings: () => overlay.listings,
    delistings: () => overlay.delisted,
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
