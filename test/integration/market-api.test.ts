import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { previousTradingDay } from '../../lambdas/market/calendar';
import {
  PolygonProvider,
  type PolygonProviderOptions,
  ProviderAuthError,
  type ProviderTicker,
} from '../../lambdas/market/provider';
import { type MarketApi, startMarketApi } from '../../localstack/market-api/server';

const KEY = 'integration-key';
const SIZE = 3_000;

describe('provider adapter against the local market API', () => {
  let api: MarketApi;
  let date: string;

  function provider(options: Partial<PolygonProviderOptions> = {}): PolygonProvider {
    return new PolygonProvider({
      baseUrl: api.url,
      apiKey: async () => KEY,
      maxRetries: 6,
      baseBackoffMs: 5,
      maxBackoffMs: 50,
      ...options,
    });
  }

  function expectedActive(on: string): string[] {
    const delisted = api.delistings();
    return [
      ...api.market
        .activeOn(on)
        .filter((r) => {
          const d = delisted.get(r.symbol);
          return d === undefined || d > on;
        })
        .map((r) => r.symbol),
      ...api
        .listings()
        .filter((r) => r.listDate !== null && r.listDate <= on)
        .map((r) => r.symbol),
    ].sort();
  }

  beforeAll(async () => {
    api = await startMarketApi({ port: 0, seed: 11, size: SIZE, scenario: 'ipo', apiKeys: [KEY] });
    date = api.market.days.at(-10) ?? api.market.end;
  });
  afterAll(() => api.close());
  beforeEach(() => {
    api.control({ reset: true });
  });

  it('pages through a few thousand active tickers with no duplicates', async () => {
    const before = api.stats()['/v3/reference/tickers'] ?? 0;

    const tickers = await provider().listActiveTickers(date);

    const symbols = tickers.map((t) => t.symbol);
    expect(symbols.length).toBeGreaterThan(2_000);
    expect(new Set(symbols).size).toBe(symbols.length);
    expect([...symbols].sort()).toEqual(expectedActive(date));
    expect((api.stats()['/v3/reference/tickers'] ?? 0) - before).toBe(Math.ceil(symbols.length / 1000));
  });

  it('shows listings and delistings injected on a date', async () => {
    const dayBefore = previousTradingDay(date);
    api.control({ listings: { [date]: 25 }, delistings: { [date]: 10 } });
    const p = provider();

    const beforeList = new Set((await p.listActiveTickers(dayBefore)).map((t) => t.symbol));
    const onList = new Set((await p.listActiveTickers(date)).map((t) => t.symbol));
    const listed = api.listings().map((r) => r.symbol);
    const delisted = [...api.delistings().keys()];
    const newcomer = listed[0] ?? '';
    const details = await p.tickerDetails(newcomer);
    const history = await p.dailyBars(newcomer, api.market.start, api.market.end);
    const grouped = new Set((await p.groupedDaily(date)).map((b) => b.symbol));

    expect(listed).toHaveLength(25);
    expect(delisted).toHaveLength(10);
    expect(listed.filter((s) => beforeList.has(s))).toEqual([]);
    expect(listed.filter((s) => !onList.has(s))).toEqual([]);
    expect(delisted.filter((s) => !beforeList.has(s))).toEqual([]);
    expect(delisted.filter((s) => onList.has(s))).toEqual([]);
    expect(details).toMatchObject({ symbol: newcomer, type: 'CS', listDate: date, active: true });
    expect(history[0]?.date).toBe(date);
    expect(
      history.every((b) => b.high >= Math.max(b.open, b.close) && b.low <= Math.min(b.open, b.close)),
    ).toBe(true);
    expect(listed.every((s) => grouped.has(s))).toBe(true);
    expect(delisted.filter((s) => grouped.has(s))).toEqual([]);
    const gone = await p.tickerDetails(delisted[0] ?? '');
    expect(gone).toMatchObject({ active: false, delistedAt: date });
  });

  // Six failures in a row on one page: within the adapter's retry budget of six retries per request.
  it('survives a 429 burst and a 5xx stretch in the middle of paging without duplicates', async () => {
    const p = provider();
    const tickers: ProviderTicker[] = [];
    let page = 0;

    for await (const batch of p.iterateActiveTickers(date)) {
      tickers.push(...batch);
      if (page++ === 0) {
        api.control({ rateLimit: { next: 3, retryAfterSeconds: 0 }, serverErrors: { next: 3, status: 503 } });
      }
    }

    const symbols = tickers.map((t) => t.symbol);
    expect(new Set(symbols).size).toBe(symbols.length);
    expect([...symbols].sort()).toEqual(expectedActive(date));
    expect(api.control({})).toMatchObject({ faults: { served: { rateLimited: 3, serverErrors: 3 } } });
  });

  it('retries a response slower than the timeout', async () => {
    api.control({ slow: { next: 1, delayMs: 1_000 } });

    const bars = await provider({ timeoutMs: 200 }).groupedDaily(date);

    expect(bars.length).toBeGreaterThan(2_000);
  });

  it('refuses requests without a valid key', async () => {
    await expect(provider({ apiKey: async () => '' }).groupedDaily(date)).rejects.toBeInstanceOf(
      ProviderAuthError,
    );
    await expect(provider({ apiKey: async () => 'wrong' }).groupedDaily(date)).rejects.toBeInstanceOf(
      ProviderAuthError,
    );
  });

  it('serves the splits the scenario injected', async () => {
    const expected = api.market
      .expectedOutcomes()
      .events.filter((e) => e.kind === 'split')
      .map((e) => `${e.symbol}@${e.date}`)
      .sort();

    const splits = await provider({ pageLimit: 5 }).splits({});

    expect(splits.map((s) => `${s.symbol}@${s.executionDate}`).sort()).toEqual(expected);
    expect(splits.every((s) => s.splitFrom > 0 && s.splitTo > 0)).toBe(true);
  });

  it('takes knobs over HTTP and rejects invalid ones', async () => {
    const health = await fetch(`${api.url}/_health`);
    const bad = await fetch(`${api.url}/_control`, {
      method: 'POST',
      body: JSON.stringify({ listings: { tomorrow: 5 } }),
    });
    const good = await fetch(`${api.url}/_control`, {
      method: 'POST',
      body: JSON.stringify({ listings: { [date]: 3 }, rateLimit: { next: 2 } }),
    });

    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', scenario: 'ipo', size: SIZE });
    expect(bad.status).toBe(400);
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ listings: { [date]: 3 }, faults: { rateLimit: { next: 2 } } });
    expect(api.listings()).toHaveLength(3);
  });
});
