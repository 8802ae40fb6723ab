import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { EXIT, oneOf, parseCommandArgs, parseSchema, UsageError } from '../../lib/cli/args';
import { emit, keyValues } from '../../lib/cli/output';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';

export const summary = 'db migrate [--schema NAME] [--json]: apply schemas/sql migrations to DATABASE_URL';

const USAGE = `usage: npm run pipeline -- ${summary}`;

/** The database URL without its credentials, for output. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

export interface MigrateResult {
  readonly database: string;
  readonly schema: string;
  readonly applied: string[];
  readonly alreadyApplied: number;
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: { schema: { type: 'string' } },
    usage: USAGE,
  });
  oneOf('db action', positionals[0], ['migrate'] as const);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`, USAGE);
  const schema = parseSchema('--schema', values.schema ?? process.env.PG_SCHEMA ?? 'public');
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);
  const pool = createPool({ connectionString: url });
  try {
    const result = await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
    const out: MigrateResult = {
      database: redactUrl(url),
      schema,
      applied: result.applied,
      alreadyApplied: result.alreadyApplied.length,
    };
    emit(values.json, out, (r) =>
      console.log(
        keyValues([
          ['database', r.database],
          ['schema', r.schema],
          [
            'applied now',
            r.applied.length === 0 ? '0 (up to date)' : `${r.applied.length}: ${r.applied.join(', ')}`,
          ],
          ['already applied', r.alreadyApplied],
        ]),
      ),
    );
    return EXIT.ok;
  } finally {
    await pool.end();
  }
}
