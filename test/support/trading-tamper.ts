import type pg from 'pg';

/**
 * Rewrites trading events as the table's owner would (the damage the hash chain must name): the
 * append-only trigger is switched off for the one statement, inside one transaction.
 */
export async function tamperEvents(pool: pg.Pool, sql: string, values: unknown[]): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('ALTER TABLE trading_events DISABLE TRIGGER trading_events_no_update');
    await c.query(sql, values);
    await c.query('ALTER TABLE trading_events ENABLE TRIGGER trading_events_no_update');
    await c.query('COMMIT');
  } catch (error) {
    await c.query('ROLLBACK');
    throw error;
  } finally {
    c.release();
  }
}
