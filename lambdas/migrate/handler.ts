import { z } from 'zod';
import { databaseEnv, readConfig } from '../platform/config';
import { sharedPool } from '../platform/connections';
import { loadMigrations, type MigrationResult, migrate } from '../platform/migrations';
import { logger } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({ ...databaseEnv, MIGRATIONS_DIR: z.string() });

/**
 * Deploy-time step (invoked by the CDK trigger): applies pending migrations bundled next to the
 * handler. Throwing fails the deployment, which is what a broken migration should do.
 */
async function run(): Promise<MigrationResult> {
  const pool = await sharedPool(config);
  const result = await migrate(
    pool,
    await loadMigrations(config.MIGRATIONS_DIR),
    config.PG_SCHEMA ?? 'public',
  );
  logger.info('migrations applied', {
    applied: result.applied,
    alreadyApplied: result.alreadyApplied.length,
  });
  return result;
}

export const handler = withTelemetry('migrate', run);
