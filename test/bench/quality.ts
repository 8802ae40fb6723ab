/**
 * The daily data-quality check at production scale: 8,000 symbols x 252 sessions (crash_2020) in a
 * throwaway schema, checked on its last sessions against real PostgreSQL and Redis, splits from the
 * local market API in-process. Prints figures; asserts nothing (target <= 10 s per check, floor 60 s).
 */
import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { PolygonProvider } from '../../lambdas/market/provider';
import { runQualityCheck } from '../../lambdas/market/quality';
import { EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createRedisClient } from '../../lambdas/platform/redis';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { startMarketApi } from '../../localstack/market-api/server';
import { createScenarioMarket } from '../../localstack/scenarios/index';
import { loadScenario, prepareScenarioSchema } from '../../localstack/scenarios/load';

const SIZE = 8000;
const SCENARIO = 'crash_2020';
const SEED = 2020;
const RUNS = 5;

export async function bench(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';
  await ensureDatabase(url);
  const suffix = randomBytes(4).toString('hex');
  const schema = `bench_quality_${suffix}`;
  const market = createScenarioMarket({ scenario: SCENARIO, seed: SEED, size: SIZE });
  const api = await startMarketApi({ port: 0, seed: SEED, size: SIZE, scenario: SCENARIO });
  const redis = createRedisClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
  await redis.connect();
  const bus = new EventBus({
    client: redis,
    service: 'data-quality-monitor',
    namespace: `bench_quality_${suffix}`,
  });
  // The check only publishes to channels; its own schema holds no queue-bound outbox rows.
  const transport = outboxTransport({
    bus,
    redis,
    sqs: new SQSClient({}),
    queueUrl: async (queue) => {
      throw new Error(`the quality bench sends to no queue (asked for ${queue})`);
    },
  });
  const provider = new PolygonProvider({
    baseUrl: api.url,
    apiKey: async () => 'bench',
    callsPerMinute: 60_000,
  });
  const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR, 4);
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(44)} ${value}`);
  try {
    const load = await loadScenario(pool, market);
    // The local API builds its split list on first use (one pass over the scenario): not the check's cost.
    await provider.splits({ from: market.start, to: market.start });
    const dates = market.days.slice(-RUNS);
    const times: number[] = [];
    let alerts = 0;
    let checked = 0;
    for (const date of dates) {
      const summary = await runQualityCheck({ pool, transport, provider }, date);
      times.push(summary.seconds);
      alerts += summary.totalAlerts;
      checked = summary.symbolsChecked;
    }
    const rerun = await runQualityCheck({ pool, transport, provider }, dates[dates.length - 1] as string);
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    console.log(
      `quality check: ${SCENARIO}, ${SIZE} symbols x ${market.days.length} sessions = ${load.bars} bars`,
    );
    line('load scenario (s)', load.seconds.toFixed(2));
    line(`check, ${RUNS} last sessions (s each)`, times.map((t) => t.toFixed(3)).join(' '));
    line('check, median (s)', median.toFixed(3));
    line('symbols checked per run', String(checked));
    line('symbols/s (median run)', Math.round(checked / median).toLocaleString('en-US'));
    line('alerts over the runs', String(alerts));
    line(
      're-run of the last date (s, inserted rows, messages)',
      `${rerun.seconds.toFixed(3)}, ${rerun.inserted}, ${rerun.published}`,
    );
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
    const keys = await redis.keys(`${bus.namespace}:*`);
    if (keys.length > 0) await redis.del(keys);
    await redis.close();
    await api.close();
  }
}
