import pg from 'pg';
import { applyLocalDefaults, checkoutDatabaseUrl, databaseNameOf } from '../../localstack/env';
import { stopBackground } from '../../localstack/processes';
import { runnerName, stageUp, stopStarted } from '../../localstack/stage';

/**
 * A fresh `load` stage: its runner stopped, its database recreated, then the stage brought up.
 * What it started is stopped when the load test ends.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.LOCAL_STAGE_NAME = 'load';
  if (process.env.LOAD_WITHOUT_STAGE === 'true') {
    // Only load tests that start what they need (`npm run test:load -- trading`): no stage, and the
    // load database is kept (they work in throwaway schemas of it).
    process.env.DATABASE_URL = checkoutDatabaseUrl('load');
    return async () => undefined;
  }
  // This checkout's own load database (tickstock_load_<checkout tag>): another checkout's load test
  // running at the same time never has its database dropped under it.
  process.env.DATABASE_URL = checkoutDatabaseUrl('load');
  applyLocalDefaults();
  await stopBackground('runner-load');
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${databaseNameOf(process.env.DATABASE_URL)} WITH (FORCE)`);
  await admin.end();
  const { seconds, started } = await stageUp((line) => console.log(`[stage] ${line}`));
  console.log(
    `[stage] load stage ready in ${seconds.toFixed(1)} s (database ${databaseNameOf(process.env.DATABASE_URL)})`,
  );
  return async () => {
    // Its runner only: a LocalStack or market API it started may already serve other checkouts
    // (they reuse one that answers); `stage down` stops those.
    // The stage's runner also when an earlier, interrupted run started it (this run reused it):
    // the stage is this checkout's own, so a finished run leaves no runner polling.
    const runners = [...new Set([...started.filter((name) => name.startsWith('runner-')), runnerName()])];
    await stopStarted(runners);
    if (runners.length > 0) console.log(`[stage] stopped what the load test started: ${runners.join(', ')}`);
  };
}
