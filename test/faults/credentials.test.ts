/**
 * Component credentials against a PostgreSQL cluster that checks passwords (the machine's server
 * trusts loopback, so this runs on a throwaway cluster with scram-sha-256 TCP authentication):
 * the migrate function's setLoginPassword sends only a SCRAM verifier, and the component then
 * logs in with its password as its own role, and with nothing else.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setLoginPassword } from '../../lambdas/platform/database-roles';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ThrowawayPostgres } from './services';

let server: ThrowawayPostgres;
let admin: pg.Pool;

async function login(user: string, password: string): Promise<string> {
  const client = new pg.Client({
    connectionString: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/postgres`,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ who: string }>('SELECT current_user AS who');
    return rows[0]?.who ?? '';
  } finally {
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  server = await ThrowawayPostgres.start({ hostAuth: 'scram-sha-256' });
  admin = createPool({ connectionString: server.adminUrl(), max: 2 });
  await migrate(admin, await loadMigrations(MIGRATIONS_DIR));
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await server?.stop();
});

describe('component login passwords', () => {
  it('a component logs in with the password from its secret, as its own role', async () => {
    const password = randomBytes(24).toString('base64url');

    await setLoginPassword(admin, 'market', password);

    expect(await login('tickstock_market_login', password)).toBe('tickstock_market_login');
  });

  it('stores only the verifier, never the password', async () => {
    const password = randomBytes(24).toString('base64url');

    await setLoginPassword(admin, 'health', password);
    const { rows } = await admin.query<{ stored: string }>(
      "SELECT rolpassword AS stored FROM pg_authid WHERE rolname = 'tickstock_health_login'",
    );

    expect(rows[0]?.stored.startsWith('SCRAM-SHA-256$4096:')).toBe(true);
    expect(rows[0]?.stored.includes(password)).toBe(false);
  });

  it('a wrong password, another component role or the group role is refused', async () => {
    const password = randomBytes(24).toString('base64url');
    await setLoginPassword(admin, 'app', password);

    await expect(login('tickstock_app_login', `${password}x`)).rejects.toThrow(
      /password authentication failed/,
    );
    await expect(login('tickstock_market_login', password)).rejects.toThrow(/password authentication failed/);
    // The group role cannot log in at all.
    await expect(login('tickstock_app', password)).rejects.toThrow();
  });
});
