/**
 * The EOD chain's ETF correlation step on the scenario market: real PostgreSQL schema, real Redis
 * (own namespace), the local market API in-process. Stored correlations are checked against an
 * independent computation in SQL (corr() over the log returns of the same sessions); a re-run
 * publishes nothing; a real change of one fund's prices publishes exactly the ETFs whose
 * correlations moved beyond the threshold; a failing step (observer) leaves the chain COMPLETE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays } from '../../lambdas/market/calendar';
import { type EodChainDeps, runEodChain } from '../../lambdas/market/eod/chain';
import { DEFAULT_CORRELATION_CONFIG, windowSessionsOf } from '../../lambdas/market/etf-correlation/run';
import { CHANNELS, decodeEnvelope, type Envelope } from '../../lambdas/platform/event-bus';
import { type IpoStage, loadMarketUntil, stageTransportFor, startIpoStage } from './ipo-support';

const D1 = '2025-07-02';
const D2 = '2025-07-03';
const HISTORY_FROM = '2025-02-03';

interface Stored {
  symbol: string;
  peer: string;
  relation: 'theme' | 'market';
  theme: string;
  correlation: number;
  observations: number;
  published_correlation: number | null;
}

describe('etf correlation step (EOD 6/6)', () => {
  let stage: IpoStage;
  let deps: EodChainDeps;

  async function published(): Promise<Envelope[]> {
    const reply = (await stage.redis.sendCommand([
      'XRANGE',
      stage.bus.streamKey(CHANNELS.etfCorrelationUpdate),
      '-',
      '+',
    ])) as [string, string[]][];
    return reply.map(([, f]) =>
      decodeEnvelope(CHANNELS.etfCorrelationUpdate, f[f.indexOf('envelope') + 1] ?? ''),
    );
  }

  async function stored(): Promise<Stored[]> {
    const { rows } = await stage.db.pool.query<Stored>(
      `SELECT symbol, peer, relation, theme, correlation, observations, published_correlation
       FROM etf_correlations ORDER BY symbol, relation, peer`,
    );
    return rows;
  }

  /** corr() of PostgreSQL over the log returns of consecutive window sessions, every ordered pair. */
  async function independent(day: string): Promise<Map<string, { c: number; n: number }>> {
    const sessions = windowSessionsOf(day, DEFAULT_CORRELATION_CONFIG.windowSessions);
    const { rows } = await stage.db.pool.query<{ symbol: string; peer: string; c: number | null; n: number }>(
      `WITH sess AS (SELECT d::date AS d, ord FROM unnest($1::text[]) WITH ORDINALITY AS t (d, ord)),
            etfs AS (SELECT DISTINCT m.symbol FROM universe_members m JOIN universes u ON u.id = m.universe_id
                     WHERE u.category = 'etf'),
            px AS (SELECT b.symbol, s.ord, b.close::float8 AS close FROM ohlcv_daily b JOIN sess s ON s.d = b.date
                   WHERE b.symbol IN (SELECT symbol FROM etfs)),
            ret AS (SELECT a.symbol, a.ord, ln(a.close / p.close) AS r FROM px a
                    JOIN px p ON p.symbol = a.symbol AND p.ord = a.ord - 1)
       SELECT x.symbol, y.symbol AS peer, corr(x.r, y.r) AS c, count(*)::integer AS n
       FROM ret x JOIN ret y ON x.ord = y.ord AND x.symbol <> y.symbol GROUP BY 1, 2`,
      [sessions],
    );
    return new Map(
      rows.filter((r) => r.c !== null).map((r) => [`${r.symbol}|${r.peer}`, { c: r.c as number, n: r.n }]),
    );
  }

  beforeAll(async () => {
    stage = await startIpoStage({ label: 'etf_corr', market: { seed: 'etf-corr-it', size: 1500 } });
    await loadMarketUntil(stage, HISTORY_FROM, addDays(D1, -1));
    deps = {
      pool: stage.db.pool,
      provider: stage.provider,
      transportFor: stageTransportFor(stage),
    };
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('stores every theme pair and the benchmark correlation equal to corr() in SQL, announces each ETF once, and a re-run publishes nothing', async () => {
    // Act
    const result = await runEodChain(deps, { tradeDate: D1 });

    // Assess: the step ran after the sync and covered the ETF universes
    expect(result.status).toBe('COMPLETE');
    expect(result.correlationError).toBeUndefined();
    const c = result.correlation;
    expect(c?.status).toBe('computed');
    expect(c?.windowSessions).toBe(60);
    const { rows: members } = await stage.db.pool.query<{ theme: string; symbol: string }>(
      `SELECT u.name AS theme, m.symbol FROM universes u JOIN universe_members m ON m.universe_id = u.id
       WHERE u.category = 'etf'`,
    );
    expect(members.length).toBeGreaterThan(20);
    const themeOf = new Map(members.map((m) => [m.symbol, m.theme]));
    // The scenario has no SPY: the benchmark is the largest fund of etf/broad_market.
    const { rows: broad } = await stage.db.pool.query<{ symbol: string }>(
      `SELECT m.symbol FROM universes u JOIN universe_members m ON m.universe_id = u.id
       WHERE u.category = 'etf' AND u.name = 'broad_market' ORDER BY m.ordinal LIMIT 1`,
    );
    expect(c?.benchmark).toBe(broad[0]?.symbol);

    const rows = await stored();
    const truth = await independent(D1);
    // Every ordered pair of one theme with >= 40 common returns, and every ETF against the benchmark.
    const expectedKeys = new Set<string>();
    for (const [k, v] of truth) {
      const [a, b] = k.split('|') as [string, string];
      if (v.n < 40) continue;
      if (themeOf.get(a) === themeOf.get(b)) expectedKeys.add(`${a}|theme|${b}`);
      if (b === c?.benchmark) expectedKeys.add(`${a}|market|${b}`);
    }
    expect(new Set(rows.map((r) => `${r.symbol}|${r.relation}|${r.peer}`))).toEqual(expectedKeys);
    for (const r of rows) {
      const t = truth.get(`${r.symbol}|${r.peer}`);
      expect(Math.abs(r.correlation - (t?.c ?? Number.NaN)), `${r.symbol}/${r.peer}`).toBeLessThan(1.5e-4);
      expect(r.observations).toBe(t?.n);
      expect(r.published_correlation).toBe(r.correlation);
    }
    expect(c?.pairs).toBe(rows.length);

    // Assess: one message per ETF with the seed envelope
    const first = await published();
    const etfs = [...new Set(rows.map((r) => r.symbol))].sort();
    expect(first.map((e) => e.data.symbol).sort()).toEqual(etfs);
    for (const e of first) {
      expect(e.service).toBe('etf_universe_manager');
      expect(e.event_type).toBe('correlation_update');
      expect(e.timestamp).toMatch(/Z$/);
      expect(e.data).toMatchObject({
        trade_date: D1,
        window_sessions: 60,
        theme: themeOf.get(e.data.symbol as string),
      });
    }

    // Act: re-run the day
    const rerun = await runEodChain(deps, { tradeDate: D1 });

    // Assess: same values, nothing published
    expect(rerun.correlation?.published).toBe(0);
    expect(await published()).toHaveLength(first.length);
    expect(await stored()).toEqual(rows);
  });

  it('publishes exactly the ETFs whose correlations moved beyond the threshold after a real price change', async () => {
    // Arrange: one fund of a theme with peers now tracks the benchmark's returns exactly (prices
    // rewritten over the whole window), as a fund changing its index would.
    const before = await stored();
    const bench = before.find((r) => r.relation === 'market')?.peer as string;
    const target = before.find((r) => r.relation === 'theme' && r.symbol !== bench && r.peer !== bench)
      ?.symbol as string;
    const sessions = windowSessionsOf(D2, 60);
    const rewrite = async (step: string) => {
      // Just before the step, so D2's bar (loaded by the chain from the provider) is rewritten too.
      if (step !== 'correlation') return;
      await stage.db.pool.query(
        `UPDATE ohlcv_daily t SET close = b.close * 0.5, open = b.open * 0.5, high = b.high * 0.5, low = b.low * 0.5
         FROM ohlcv_daily b WHERE t.symbol = $1 AND b.symbol = $2 AND b.date = t.date AND t.date >= $3::date`,
        [target, bench, sessions[0]],
      );
    };
    const countBefore = (await published()).length;

    // Act: the next session
    const result = await runEodChain({ ...deps, beforeStep: rewrite }, { tradeDate: D2 });

    // Assess: announced = ETFs with a pair at >= 0.10 from its last published value
    expect(result.correlationError).toBeUndefined();
    const after = await stored();
    const prior = new Map(
      before.map((r) => [`${r.symbol}|${r.relation}|${r.peer}`, r.published_correlation]),
    );
    const moved = new Set(
      after
        .filter((r) => {
          const p = prior.get(`${r.symbol}|${r.relation}|${r.peer}`);
          return p === undefined || p === null || Math.abs(r.correlation - p) >= 0.1 - 1e-9;
        })
        .map((r) => r.symbol),
    );
    expect(moved.has(target)).toBe(true);
    const news = (await published()).slice(countBefore);
    expect(new Set(news.map((e) => e.data.symbol))).toEqual(moved);
    expect(news).toHaveLength(moved.size);
    const mine = news.find((e) => e.data.symbol === target);
    expect((mine?.data.benchmark as { correlation: number } | undefined)?.correlation).toBeGreaterThan(0.99);
    // Pairs below the threshold keep the value the app was last told.
    for (const r of after) {
      const p = prior.get(`${r.symbol}|${r.relation}|${r.peer}`);
      if (p !== undefined && p !== null && Math.abs(r.correlation - p) < 0.1 - 1e-9)
        expect(r.published_correlation).toBe(p);
    }
  });

  it('is an observer: when it fails the chain still completes and reports the error', async () => {
    // Act: a configuration the step refuses
    const result = await runEodChain({ ...deps, correlationConfig: { threshold: -1 } }, { tradeDate: D2 });

    // Assess
    expect(result.status).toBe('COMPLETE');
    expect(result.sync?.status).toBe('synced');
    expect(result.correlation).toBeUndefined();
    expect(result.correlationError).toContain('threshold');
  });
});
