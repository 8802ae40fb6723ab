import { applyLocalDefaults, TEST_DATABASE_URL } from '../localstack/env';
import { runnerName, stageUp, stopStarted } from '../localstack/stage';

/**
 * Brings the local stage up (idempotent: a warm stage only verifies) before any test file runs, so
 * `npm test` needs nothing started by hand. Integration tests talk to the real LocalStack, PostgreSQL
 * and Redis; unit tests ignore them. The runner this run started is stopped at the end: a test run leaves no runner polling.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Tests run the stage against their own database, never the one `npm start` fills.
  process.env.DATABASE_URL = TEST_DATABASE_URL;
  process.env.LOCAL_STAGE_NAME = 'test';
  applyLocalDefaults();
  const { seconds, started } = await stageUp((line) => console.log(`[stage] ${line}`), {
    disposableDatabase: true,
  });
  console.log(`[stage] local stage ready in ${seconds.toFixed(1)} s`);
  return async () => {
    // Its runner only: a LocalStack or market API it started may already serve other checkouts
    // (they reuse one that answers); `stage down` stops those.
    // The stage's runner also when an earlier, interrupted run started it (this run reused it):
    // the stage is this checkout's own, so a finished run leaves no runner polling.
    const runners = [...new Set([...started.filter((name) => name.startsWith('runner-')), runnerName()])];
    await stopStarted(runners);
    if (runners.length > 0) console.log(`[stage] stopped what the tests started: ${runners.join(', ')}`);
  };
}
