import { parseArgs } from 'node:util';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';

export const summary = 'db migrate [--schema NAME]: apply schemas/sql migrations to DATABASE_URL';

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { schema: { type: 'string', default: process.env.PG_SCHEMA ?? 'public' } },
  });
  if (positionals[0] !== 'migrate') {
    console.error(`usage: npm run pipeline -- ${summary}`);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);
  const pool = createPool({ connectionString: url });
  try {
    const result = await migrate(pool, await loadMigrations(MIGRATIONS_DIR), values.schema);
    console.log(
      JSON.stringify({
        schema: values.schema,
        applied: result.applied,
        alreadyApplied: result.alreadyApplied.length,
      }),
    );
    return 0;
  } finally {
    await pool.end();
  }
}
