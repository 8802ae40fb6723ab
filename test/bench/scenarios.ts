/**
 * Scenario generation and loading at production scale: 8,000 symbols x 252 sessions (crash_2020)
 * into a throwaway schema, dropped afterwards. Prints figures; asserts nothing (targets: generate +
 * load < 30 s on the 2-core CI machine, floor 2 minutes).
 */
import { randomBytes } from 'node:crypto';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { createScenarioMarket } from '../../localstack/scenarios/index';
import { loadScenario, prepareScenarioSchema } from '../../localstack/scenarios/load';

const SIZE = 8000;

export async function bench(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';
  await ensureDatabase(url);
  const schema = `bench_scenario_${randomBytes(4).toString('hex')}`;

  // Generation alone: one streamed pass over every symbol, nothing kept.
  let t = performance.now();
  const market = createScenarioMarket({ scenario: 'crash_2020', seed: 2020, size: SIZE });
  const setupSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  let bars = 0;
  for (const s of market.series()) bars += s.bars.length;
  const generateSeconds = (performance.now() - t) / 1000;
  const heapMb = process.memoryUsage().heapUsed / 2 ** 20;

  t = performance.now();
  const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR, 4);
  const migrateSeconds = (performance.now() - t) / 1000;
  try {
    // The load regenerates while it writes (streaming), so its time includes generation.
    const first = await loadScenario(pool, market);
    const again = await loadScenario(pool, market);
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM ohlcv_daily');
    const line = (label: string, value: string) => console.log(`  ${label.padEnd(44)} ${value}`);
    console.log(`scenarios: crash_2020, ${SIZE} symbols x ${market.days.length} sessions = ${bars} bars`);
    line('universe + plans (s)', setupSeconds.toFixed(2));
    line('generate bars, streamed, no DB (s)', generateSeconds.toFixed(2));
    line('generate rate (bars/s)', Math.round(bars / generateSeconds).toLocaleString('en-US'));
    line('heap after generation (MB)', heapMb.toFixed(0));
    line('create schema + migrations (s)', migrateSeconds.toFixed(2));
    line('load: generate + insert, streamed (s)', first.seconds.toFixed(2));
    line('load rate (rows/s)', Math.round(first.bars / first.seconds).toLocaleString('en-US'));
    line('insert share, load - generate (s)', (first.seconds - generateSeconds).toFixed(2));
    line('re-load, idempotent (s)', again.seconds.toFixed(2));
    line('total generate + load (s)', (setupSeconds + first.seconds).toFixed(2));
    line('rows in ohlcv_daily after two loads', rows[0]?.n ?? '?');
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  }
}
