import type pg from 'pg';
import { componentLoginRole, type DatabaseComponent } from './connections';
import { scramSha256Verifier } from './scram';

/**
 * Sets a component's login-role password (the migration owner runs this after the migrations,
 * with the password from the component's own secret). Only the SCRAM verifier is sent: the
 * password never reaches the server or its logs. The role must exist (0090_roles.sql).
 */
export async function setLoginPassword(
  pool: pg.Pool,
  component: DatabaseComponent,
  password: string,
): Promise<void> {
  const client = await pool.connect();
  try {
    const role = client.escapeIdentifier(componentLoginRole(component));
    await client.query(
      `ALTER ROLE ${role} WITH PASSWORD ${client.escapeLiteral(scramSha256Verifier(password))}`,
    );
  } finally {
    client.release();
  }
}
