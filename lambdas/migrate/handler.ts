import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { databaseEnv, readConfig } from '../platform/config';
import {
  componentLoginRole,
  DATABASE_COMPONENTS,
  type DatabaseComponent,
  sharedPool,
} from '../platform/connections';
import { setLoginPassword } from '../platform/database-roles';
import { loadMigrations, type MigrationResult, migrate } from '../platform/migrations';
import { logger } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';

const config = readConfig({
  ...databaseEnv,
  MIGRATIONS_DIR: z.string(),
  /**
   * JSON object: component -> ARN of its login secret ({ username, password }), the secrets RDS
   * Proxy uses to reach PostgreSQL as each component. Unset locally (loopback is trusted).
   */
  DB_LOGIN_SECRET_ARNS: z
    .string()
    .optional()
    .transform((v) => (v ? z.record(z.enum(DATABASE_COMPONENTS), z.string()).parse(JSON.parse(v)) : {})),
});
const secrets = new SecretsManagerClient({});

export interface MigrateResult extends MigrationResult {
  /** Components whose login password was (re)set from their secret. */
  readonly passwordsSet: string[];
}

/**
 * Deploy-time step (invoked by the CDK trigger): applies pending migrations bundled next to the
 * handler, then sets each component's login-role password from its own secret (only the SCRAM
 * verifier is sent), so a rotated or new secret takes effect on the next deploy. Throwing fails the
 * deployment, which is what a broken migration or an unusable secret should do.
 */
async function run(): Promise<MigrateResult> {
  const pool = await sharedPool(config);
  const result = await migrate(
    pool,
    await loadMigrations(config.MIGRATIONS_DIR),
    config.PG_SCHEMA ?? 'public',
  );
  const passwordsSet: string[] = [];
  const logins = Object.entries(config.DB_LOGIN_SECRET_ARNS) as [DatabaseComponent, string][];
  for (const [component, arn] of logins) {
    const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
    const secret = z
      .object({ username: z.string(), password: z.string().min(16) })
      .parse(JSON.parse(SecretString ?? '{}'));
    const c = component as (typeof DATABASE_COMPONENTS)[number];
    if (secret.username !== componentLoginRole(c)) {
      throw new Error(
        `secret of ${component} names user ${secret.username}, expected ${componentLoginRole(c)}`,
      );
    }
    await setLoginPassword(pool, c, secret.password);
    passwordsSet.push(component);
  }
  logger.info('migrations applied', {
    applied: result.applied,
    alreadyApplied: result.alreadyApplied.length,
    passwordsSet,
  });
  return { ...result, passwordsSet };
}

export const handler = withTelemetry('migrate', run);
