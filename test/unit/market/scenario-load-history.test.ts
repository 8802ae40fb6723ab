import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../../bin/commands/load-history';
import { type MarketApi, startMarketApi } from '../../../localstack/market-api/server';
import { createScenarioMarket } from '../../../localstack/scenarios/index';
import { createTestSchema, type TestSchema } from '../../support/db';

let db: TestSchema;
let api: MarketApi;
const saved = { ...process.env };

beforeAll(async () => {
  db = await createTestSchema('load_history');
  api = await startMarketApi({
    port: 0,
    seed: 6,
    size: 60,
    scenario: 'trend_changes',
    apiKeys: ['test-key'],
  });
  process.env.DATABASE_URL = db.url;
  process.env.MARKET_API_BASE_URL = api.url;
  process.env.POLYGON_API_KEY = 'test-key';
  process.env.MARKET_API_CALLS_PER_MINUTE = '60000';
});

afterAll(async () => {
  process.env = saved;
  await api.close();
  await db.drop();
});

async function barCount(symbols: string[]): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM ohlcv_daily WHERE symbol = ANY($1::text[])',
    [symbols],
  );
  return rows[0]?.n ?? -1;
}

describe('load-history', () => {
  it('loads synthetic history for some symbols from a scenario, clipped to its window, idempotently', async () => {
    // Prepare
    const market = createScenarioMarket({ scenario: 'trend_changes', seed: 6, size: 60 });
    const symbols = market.universe.slice(0, 4).map((r) => r.symbol);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const args = ['--symbols', symbols.join(','), '--years', '5', '--scenario', 'trend_changes'];
    const common = ['--seed', '6', '--size', '60', '--schema', db.schema, '--json'];

    // Act
    const first = await run([...args, ...common]);
    const countAfterFirst = await barCount(symbols);
    const second = await run([...args, ...common]);
    const output = JSON.parse(String(log.mock.calls.at(-1)?.[0]));
    log.mockRestore();

    // Assess
    const expected = symbols.reduce((n, s) => n + market.bars(s).length, 0);
    expect(first).toBe(0);
    expect(second).toBe(0);
    expect(countAfterFirst).toBe(expected);
    expect(await barCount(symbols)).toBe(expected);
    expect(output).toMatchObject({
      source: 'scenario:trend_changes',
      bars: expected,
      from: market.start,
      clippedToScenario: true,
    });
  });

  it('loads real history through the provider HTTP adapter when no scenario is given', async () => {
    // Prepare: the local market API serves the same synthetic market over the provider's endpoints
    const symbols = api.market.universe.slice(10, 13).map((r) => r.symbol);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);

    // Act
    const code = await run([
      '--symbols',
      [...symbols, 'NOPE_404'].join(','),
      '--years',
      '1',
      '--end',
      api.market.end,
      '--schema',
      db.schema,
      '--json',
    ]);
    const output = JSON.parse(String(log.mock.calls.at(-1)?.[0]));
    log.mockRestore();

    // Assess: bars equal to the generator's, the unknown symbol reported (exit 1), nothing faked
    expect(code).toBe(1);
    expect(output.source).toBe('provider');
    expect(output.unknown).toEqual(['NOPE_404']);
    const expected = symbols.reduce((n, s) => n + api.market.bars(s, output.from, output.to).length, 0);
    expect(expected).toBeGreaterThan(0);
    expect(output.bars).toBe(expected);
  });

  it('refuses ambiguous input', async () => {
    await expect(run(['--years', '1'])).rejects.toThrow(/exactly one of --symbols or --universe/);
    await expect(run(['--symbols', 'A', '--years', '0'])).rejects.toThrow(/--years/);
  });
});
