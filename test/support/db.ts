import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { TEST_DATABASE_URL } from '../../localstack/env';
import { ensureDatabase } from '../../localstack/local-database';

export { TEST_DATABASE_URL };

export interface TestSchema {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A fresh schema with every migration applied, so test files running in parallel against the real
 * PostgreSQL never see each other's rows. `drop()` removes it.
 */
export async function createTestSchema(
  label: string,
  options: { migrate?: boolean } = {},
): Promise<TestSchema> {
  await ensureDatabase(TEST_DATABASE_URL);
  const schema = `t_${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(4).toString('hex')}`.slice(0, 63);
  const pool = createPool({ connectionString: TEST_DATABASE_URL, schema, max: 4 });
  if (options.migrate ?? true) {
    await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
  } else {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  }
  return {
    pool,
    schema,
    url: TEST_DATABASE_URL,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}
