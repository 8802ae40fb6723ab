import pg from 'pg';

export interface PostgresOptions {
  /** postgres://user:password@host:port/db (locally DATABASE_URL; in AWS built from the RDS secret). */
  readonly connectionString: string;
  /**
   * Schema the session works in. Scenario markets and tests use their own schema so they can never
   * write into the production tables; unset means the database's default (public).
   */
  readonly schema?: string;
  readonly max?: number;
  /** Require TLS (RDS Proxy in AWS); local servers speak plain TCP on loopback. */
  readonly ssl?: boolean;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
  return schema;
}

export function createPool(options: PostgresOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 4,
    ssl: options.ssl ? { rejectUnauthorized: true } : undefined,
    // The schema is set per connection so every query, including those in SQL functions, resolves
    // unqualified names there first.
    options: options.schema ? `-c search_path=${assertSchemaName(options.schema)},public` : undefined,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 10_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** Runs fn in one transaction; rolls back on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
