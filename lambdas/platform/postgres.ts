import pg from 'pg';
import { isPostgresConnectionFault, TransientFaultError } from './faults';

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
  // The pool listens for errors on idle clients only. A checked-out client whose backend is
  // terminated (restart, failover, pg_terminate_backend) emits 'error' with nobody listening, which
  // kills the process; the same fault also rejects the statement in flight, which is where the
  // unit of work learns of it. The pool discards the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}

/**
 * Runs fn in one transaction; rolls back on any error. A lost connection fails the unit with a
 * TransientFaultError (retriable: nothing was committed unless COMMIT itself was cut off, which an
 * idempotent unit tolerates), and the broken client is destroyed instead of going back to the pool.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect().catch((error: unknown) => {
    throw isPostgresConnectionFault(error) ? new TransientFaultError('postgres', error) : error;
  });
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    if (isPostgresConnectionFault(error)) lost ??= error as Error;
    if (!lost) await client.query('ROLLBACK').catch(() => undefined);
    throw lost && isPostgresConnectionFault(error) ? new TransientFaultError('postgres', error) : error;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}
