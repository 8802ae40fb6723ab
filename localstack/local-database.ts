import pg from 'pg';

/**
 * Creates the database named in `url` if it does not exist yet (local stage and tests only: in AWS
 * the database is created with the RDS instance). Connects to the server's `postgres` database to
 * do so, because a connection needs an existing database.
 */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name in DATABASE_URL: ${name}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  // A dropped connection surfaces on the query in flight; unheard, the event would end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE ${name}`).catch((error: { code?: string }) => {
        // Two processes racing to create it: the loser's 42P04 (duplicate_database) is success.
        if (error.code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
}
