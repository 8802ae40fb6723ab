import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Clock,
  PolygonProvider,
  type PolygonProviderOptions,
  ProviderAuthError,
  ProviderConfigError,
  ProviderHttpError,
  ProviderNetworkError,
  ProviderRateLimitedError,
  ProviderResponseError,
  ProviderTimeoutError,
  providerFromEnv,
  redactUrl,
  resolveApiKey,
} from '../../../lambdas/market/provider';

const KEY = 'test-key-3f9a';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

/** A tiny provider stand-in: each test sets `handler`; every request is recorded. */
let server: Server;
let baseUrl: string;
let handler: Handler;
let requests: URL[];

/** Fake clock: sleeping advances time instantly, and every requested wait is recorded. */
let clock: Clock & { t: number; sleeps: number[] };

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function provider(options: Partial<PolygonProviderOptions> = {}): PolygonProvider {
  return new PolygonProvider({
    baseUrl,
    apiKey: async () => KEY,
    clock,
    random: () => 0.5,
    maxRetries: 3,
    ...options,
  });
}

const bar = (t: number, extra: Record<string, unknown> = {}) => ({
  o: 10,
  h: 11,
  l: 9.5,
  c: 10.5,
  v: 1000,
  vw: 10.4,
  n: 42,
  t,
  ...extra,
});
// 2026-03-02 00:00 America/New_York (EST, UTC-5)
const MAR_2_NY = Date.parse('2026-03-02T05:00:00Z');

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(url);
    handler(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests = [];
  const c = {
    t: Date.parse('2026-03-02T21:00:00Z'),
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  clock = c;
});

describe('PolygonProvider', () => {
  it('pages through next_url, sending the key on every request', async () => {
    const pages = [['AAA', 'AAB'], ['AAC', 'AAD'], ['AAE']];
    handler = (_req, res, url) => {
      const page = Number(url.searchParams.get('cursor') ?? '0');
      const results = (pages[page] ?? []).map((ticker) => ({
        ticker,
        name: `${ticker} Inc`,
        market: 'stocks',
        type: 'CS',
        active: true,
        primary_exchange: 'XNAS',
      }));
      const next = page + 1 < pages.length ? `${baseUrl}/v3/reference/tickers?cursor=${page + 1}` : undefined;
      json(res, 200, { status: 'OK', results, ...(next ? { next_url: next } : {}) });
    };

    const tickers = await provider().listActiveTickers('2026-03-02');

    expect(tickers.map((t) => t.symbol)).toEqual(['AAA', 'AAB', 'AAC', 'AAD', 'AAE']);
    expect(requests).toHaveLength(3);
    expect(requests.every((u) => u.searchParams.get('apiKey') === KEY)).toBe(true);
    expect(requests[0]?.searchParams.get('date')).toBe('2026-03-02');
    expect(requests[0]?.searchParams.get('active')).toBe('true');
    expect(requests.slice(1).map((u) => u.searchParams.get('cursor'))).toEqual(['1', '2']);
  });

  it('waits as long as Retry-After says (seconds) and then succeeds', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls <= 2) json(res, 429, { status: 'ERROR' }, { 'retry-after': '7' });
      else json(res, 200, { status: 'OK', results: [{ ...bar(MAR_2_NY), T: 'AAA' }] });
    };

    const bars = await provider().groupedDaily('2026-03-02');

    expect(bars).toHaveLength(1);
    expect(calls).toBe(3);
    expect(clock.sleeps).toEqual([7000, 7000]);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) json(res, 429, {}, { 'retry-after': new Date(clock.t + 30_000).toUTCString() });
      else json(res, 200, { status: 'OK', results: [] });
    };

    await provider().groupedDaily('2026-03-02');

    expect(clock.sleeps).toEqual([30_000]);
  });

  it('gives up on a 429 that never ends with a named error', async () => {
    handler = (_req, res) => json(res, 429, {}, { 'retry-after': '1' });

    await expect(provider({ maxRetries: 2 }).groupedDaily('2026-03-02')).rejects.toBeInstanceOf(
      ProviderRateLimitedError,
    );
    expect(requests).toHaveLength(3);
  });

  it('retries 5xx with growing jittered back-off, then succeeds', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls <= 2) json(res, calls === 1 ? 502 : 503, { status: 'ERROR' });
      else json(res, 200, { status: 'OK', results: [] });
    };

    await provider({ baseBackoffMs: 500 }).groupedDaily('2026-03-02');

    expect(calls).toBe(3);
    // random() = 0.5 -> half of the ceiling plus a quarter: 500 -> 375, 1000 -> 750
    expect(clock.sleeps).toEqual([375, 750]);
  });

  it('reports a persistent 5xx after the retry budget as ProviderHttpError', async () => {
    handler = (_req, res) => json(res, 500, {});

    const attempt = provider({ maxRetries: 2 }).groupedDaily('2026-03-02');

    await expect(attempt).rejects.toBeInstanceOf(ProviderHttpError);
    await expect(attempt).rejects.toMatchObject({ status: 500, attempts: 3 });
  });

  it('times a request out and retries it', async () => {
    handler = (_req, res, url) => {
      // Never answers the first request (the client must abort it); answers the retry.
      if (requests.length === 1) return;
      json(res, 200, {
        status: 'OK',
        results: {
          ticker: url.pathname.split('/').at(-1),
          name: 'Slow Co',
          market: 'stocks',
          type: 'CS',
          active: true,
        },
      });
    };

    const details = await provider({ timeoutMs: 150 }).tickerDetails('SLOW');

    expect(details?.symbol).toBe('SLOW');
    expect(requests).toHaveLength(2);
  });

  it('reports a provider that never answers as ProviderTimeoutError', async () => {
    handler = () => undefined;

    await expect(provider({ timeoutMs: 100, maxRetries: 1 }).tickerDetails('SLOW')).rejects.toBeInstanceOf(
      ProviderTimeoutError,
    );
    expect(requests).toHaveLength(2);
  });

  it('rejects a malformed payload with ProviderResponseError and never shows the key', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        status: 'OK',
        results: [{ T: 'AAA', o: 'ten', h: 11, l: 9, c: 10, v: 5, t: MAR_2_NY }],
      });

    const error = await provider()
      .groupedDaily('2026-03-02')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ProviderResponseError);
    expect((error as Error).message).toContain('results.0.o');
    expect((error as Error).message).not.toContain(KEY);
    expect((error as Error).message).toContain('apiKey=REDACTED');
  });

  it('rejects a body that is not JSON with ProviderResponseError', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>maintenance</html>');
    };

    await expect(provider().groupedDaily('2026-03-02')).rejects.toBeInstanceOf(ProviderResponseError);
  });

  it('does not retry a refused key', async () => {
    handler = (_req, res) => json(res, 401, { status: 'ERROR', error: 'Unknown API Key' });

    const error = await provider()
      .groupedDaily('2026-03-02')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ProviderAuthError);
    expect((error as Error).message).not.toContain(KEY);
    expect(requests).toHaveLength(1);
  });

  it('reports an unreachable provider as ProviderNetworkError after retrying', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const attempt = provider({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 2 }).groupedDaily(
      '2026-03-02',
    );

    await expect(attempt).rejects.toBeInstanceOf(ProviderNetworkError);
    expect(clock.sleeps).toHaveLength(2);
  });

  it('keeps to the configured calls per minute (token bucket)', async () => {
    handler = (_req, res) => json(res, 200, { status: 'OK', results: [] });

    const p = provider({ callsPerMinute: 5 });
    const start = clock.t;
    await Promise.all(Array.from({ length: 12 }, () => p.groupedDaily('2026-03-02')));

    expect(requests).toHaveLength(12);
    // A burst of 5 without waiting, then one wait of 60 s / 5 before each further call.
    expect(clock.sleeps).toEqual(Array.from({ length: 7 }, () => 12_000));
    expect(clock.t - start).toBe(84_000);
  });

  it('counts retries against the rate limit too', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) json(res, 503, {});
      else json(res, 200, { status: 'OK', results: [] });
    };

    const p = provider({ callsPerMinute: 1, burst: 1, baseBackoffMs: 1 });
    const start = clock.t;
    await p.groupedDaily('2026-03-02');

    expect(requests).toHaveLength(2);
    // 1 ms of back-off, then the rest of the minute waiting for the bucket's next token.
    expect(clock.sleeps).toEqual([1, 59_999]);
    expect(clock.t - start).toBe(60_000);
  });

  it('maps daily aggregates to DailyBar on New York session dates, following next_url', async () => {
    handler = (_req, res, url) => {
      if (url.searchParams.get('cursor') === null) {
        json(res, 200, {
          status: 'OK',
          ticker: 'AAA',
          results: [bar(MAR_2_NY)],
          next_url: `${baseUrl}/v2/aggs/ticker/AAA/range/1/day/2026-03-02/2026-03-03?cursor=b`,
        });
      } else {
        json(res, 200, {
          status: 'OK',
          ticker: 'AAA',
          results: [bar(MAR_2_NY + 86_400_000, { vw: undefined, n: undefined })],
        });
      }
    };

    const bars = await provider().dailyBars('AAA', '2026-03-02', '2026-03-03');

    expect(bars).toEqual([
      {
        symbol: 'AAA',
        date: '2026-03-02',
        open: 10,
        high: 11,
        low: 9.5,
        close: 10.5,
        volume: 1000,
        vwap: 10.4,
        transactions: 42,
      },
      {
        symbol: 'AAA',
        date: '2026-03-03',
        open: 10,
        high: 11,
        low: 9.5,
        close: 10.5,
        volume: 1000,
        vwap: (11 + 9.5 + 10.5) / 3,
        transactions: 0,
      },
    ]);
    expect(requests[0]?.pathname).toBe('/v2/aggs/ticker/AAA/range/1/day/2026-03-02/2026-03-03');
    expect(requests[0]?.searchParams.get('adjusted')).toBe('true');
  });

  it('returns no bars when the provider omits results', async () => {
    handler = (_req, res) => json(res, 200, { status: 'OK', ticker: 'AAA', queryCount: 0, resultsCount: 0 });

    expect(await provider().dailyBars('AAA', '2026-03-02', '2026-03-03')).toEqual([]);
  });

  it('maps ticker details to a SymbolRecord and skips untracked types', async () => {
    handler = (_req, res, url) => {
      const symbol = url.pathname.split('/').at(-1);
      json(res, 200, {
        status: 'OK',
        results: {
          ticker: symbol,
          name: 'Widget Corp',
          market: 'stocks',
          type: symbol === 'IDX' ? 'INDEX' : 'CS',
          active: true,
          primary_exchange: 'XNYS',
          market_cap: 12_500_000_000,
          list_date: '2026-02-20',
          sic_code: '3571',
          sic_description: 'ELECTRONIC COMPUTERS',
          share_class_shares_outstanding: 250_000_000,
        },
      });
    };

    const p = provider();
    const record = await p.tickerDetails('WDGT');
    const untracked = await p.tickerDetails('IDX');

    expect(record).toMatchObject({
      symbol: 'WDGT',
      type: 'CS',
      primaryExchange: 'XNYS',
      marketCap: 12_500_000_000,
      listDate: '2026-02-20',
      sicCode: '3571',
      sharesOutstanding: 250_000_000,
      active: true,
      delistedAt: null,
    });
    expect(untracked).toBeNull();
  });

  it('lists splits with the date window as query parameters', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        status: 'OK',
        results: [{ ticker: 'AAA', execution_date: '2026-03-02', split_from: 1, split_to: 4 }],
      });

    const splits = await provider().splits({ symbol: 'AAA', from: '2026-01-01', to: '2026-03-31' });

    expect(splits).toEqual([{ symbol: 'AAA', executionDate: '2026-03-02', splitFrom: 1, splitTo: 4 }]);
    expect(requests[0]?.searchParams.get('ticker')).toBe('AAA');
    expect(requests[0]?.searchParams.get('execution_date.gte')).toBe('2026-01-01');
    expect(requests[0]?.searchParams.get('execution_date.lte')).toBe('2026-03-31');
  });
});

describe('configuration', () => {
  it('reads the key from POLYGON_API_KEY and fails clearly without one', async () => {
    expect(await resolveApiKey({ POLYGON_API_KEY: 'abc' })).toBe('abc');
    await expect(resolveApiKey({})).rejects.toBeInstanceOf(ProviderConfigError);
  });

  it('rejects a bad base URL or rate limit at construction', () => {
    expect(() => providerFromEnv({ MARKET_API_BASE_URL: 'not a url' })).toThrow(ProviderConfigError);
    expect(() => providerFromEnv({ MARKET_API_CALLS_PER_MINUTE: '-1' })).toThrow(ProviderConfigError);
  });

  it('redacts the key in URLs', () => {
    expect(redactUrl('https://x/v3?a=1&apiKey=secret&b=2')).toBe('https://x/v3?a=1&apiKey=REDACTED&b=2');
  });
});
