import { z } from 'zod';
import { createPool } from '../../lambdas/platform/postgres';
import { DEFAULT_MARKET_SCHEMA, UsageError } from '../../lib/cli/args';
import { stageUp } from '../../localstack/stage';
import { run as eod } from './eod';
import { run as replay } from './replay';
import { liveBurst } from './router';
import { run as scenario } from './scenario';
import { run as status } from './status';

export const summary = 'start: bring the local stage up and run the main job (what `npm start` does)';

/** The schema `npm start` keeps the local market in (scenario data never goes to public tables). */
const MARKET_SCHEMA = DEFAULT_MARKET_SCHEMA;

const marketApiHealth = z.object({
  scenario: z.string(),
  seed: z.union([z.number(), z.string()]),
  size: z.number(),
  end: z.string(),
});

async function symbolsLoaded(): Promise<number> {
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 1 });
  try {
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${MARKET_SCHEMA}.symbols`,
    );
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0; // no schema yet
  } finally {
    await pool.end();
  }
}

/**
 * The main job: the stage's health report, the health ETL replay of the sample exports, then one EOD
 * run (bars, IPO scan, quality, signal, universe sync) over the scenario market the local market API
 * serves, for its last session, then a few seconds of live market through the real-time router.
 */
export async function run(args: string[] = []): Promise<number> {
  if (args.length > 0)
    throw new UsageError(
      `start takes no arguments (got ${args.join(' ')})`,
      `usage: npm run pipeline -- ${summary}`,
    );
  const { seconds } = await stageUp();
  console.log(`local stage up in ${seconds.toFixed(1)} s\n\n== pipeline health`);
  const healthy = await status([]);

  console.log('\n== health ETL replay (test/fixtures/health: 26 samples + bad files)');
  const replayed = await replay([]);

  const response = await fetch(`${process.env.MARKET_API_BASE_URL}/_health`);
  const market = marketApiHealth.parse(await response.json());
  console.log(
    `\n== EOD run over the local market (scenario ${market.scenario}, ${market.size} symbols, ${market.end})`,
  );
  let loaded = 0;
  if ((await symbolsLoaded()) === 0) {
    loaded = await scenario([
      'load',
      market.scenario,
      '--seed',
      String(market.seed),
      '--size',
      String(market.size),
      '--schema',
      MARKET_SCHEMA,
    ]);
  }
  // market_local is the market commands' default: passed only when PG_SCHEMA would override it.
  const eodRun = await eod([
    'run',
    '--date',
    market.end,
    ...(process.env.PG_SCHEMA ? ['--schema', MARKET_SCHEMA] : []),
  ]);

  console.log(
    '\n== real-time router: a live burst (feed -> router -> client WebSocket, SQS bars, S3 archive)',
  );
  const burst = await liveBurst();
  return Math.max(healthy, replayed, loaded, eodRun, burst);
}
