import { applyLocalDefaults } from '../localstack/env';
import { stageUp } from '../localstack/stage';

/**
 * Brings the local stage up (idempotent: a warm stage only verifies) before any test file runs, so
 * `npm test` needs nothing started by hand. Integration tests talk to the real LocalStack, PostgreSQL
 * and Redis; unit tests ignore them.
 */
export default async function setup(): Promise<void> {
  applyLocalDefaults();
  const { seconds } = await stageUp((line) => console.log(`[stage] ${line}`));
  console.log(`[stage] local stage ready in ${seconds.toFixed(1)} s`);
}
