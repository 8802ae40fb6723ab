/**
 * Dropped PostgreSQL connections inside a transaction, against the real server: the backend is
 * terminated with pg_terminate_backend while the unit holds its client, idle or mid-statement.
 * The process must survive, the unit must fail with a retriable error, and the retried unit must
 * commit exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransientFault, retryTransient, TransientFaultError } from '../../../lambdas/platform/faults';
import { createPool, withTransaction } from '../../../lambdas/platform/postgres';
import { createTestSchema, type TestSchema } from '../../support/db';

let db: TestSchema;
let admin: pg.Pool;

async function terminate(pid: number): Promise<void> {
  const { rows } = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
  expect(rows[0]?.ok).toBe(true);
}

beforeAll(async () => {
  db = await createTestSchema('pg_faults', { migrate: false });
  await db.pool.query(`CREATE TABLE ${db.schema}.units (id text PRIMARY KEY, n int NOT NULL DEFAULT 1)`);
  admin = createPool({ connectionString: db.url, max: 1 });
});

afterAll(async () => {
  await admin.end();
  await db.drop();
});

describe('withTransaction when the backend is terminated', () => {
  it('fails the unit with a retriable error when the connection drops while the client is idle', async () => {
    const pool = createPool({ connectionString: db.url, schema: db.schema, max: 2 });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('uncaughtException', onUnhandled);
    try {
      const failure = await withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await client.query("INSERT INTO units (id) VALUES ('idle-drop')");
        await terminate(rows[0]?.pid as number);
        // The client is idle here: the termination arrives as an 'error' event, not a rejection.
        await sleep(200);
        await client.query('SELECT 1');
      }).catch((e: unknown) => e);

      expect(failure).toBeInstanceOf(TransientFaultError);
      expect(isTransientFault(failure)).toBe(true);
      expect(unhandled).toEqual([]);
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM units WHERE id = 'idle-drop'");
      expect(rows[0].n).toBe(0);
    } finally {
      process.off('uncaughtException', onUnhandled);
      await pool.end();
    }
  });

  it('fails the unit with a retriable error when the connection drops mid-statement', async () => {
    const pool = createPool({ connectionString: db.url, schema: db.schema, max: 2 });
    try {
      const failure = await withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        const running = client.query('SELECT pg_sleep(5)');
        // Handled from now on: the rejection may arrive while `terminate` is still awaited, before
        // `await running` below, and Node would report it as unhandled.
        running.catch(() => undefined);
        await sleep(100);
        await terminate(rows[0]?.pid as number);
        await running;
      }).catch((e: unknown) => e);

      expect(failure).toBeInstanceOf(TransientFaultError);
      // The broken client was discarded: the pool's next unit works on a fresh connection.
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]?.one).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('a retried unit commits exactly once after its first attempt lost the connection', async () => {
    const pool = createPool({ connectionString: db.url, schema: db.schema, max: 2 });
    const retries: number[] = [];
    try {
      const attempts = await retryTransient(
        (attempt) =>
          withTransaction(pool, async (client) => {
            await client.query(
              "INSERT INTO units (id) VALUES ('retried') ON CONFLICT (id) DO UPDATE SET n = units.n + 1",
            );
            if (attempt === 1) {
              const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
              await terminate(rows[0]?.pid as number);
              await sleep(100);
              await client.query('SELECT 1');
            }
            return attempt;
          }),
        { onRetry: (_e, attempt) => retries.push(attempt) },
      );

      expect(attempts).toBe(2);
      expect(retries).toEqual([1]);
      const { rows } = await pool.query("SELECT n FROM units WHERE id = 'retried'");
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('does not retry an error a retry cannot fix', async () => {
    const pool = createPool({ connectionString: db.url, schema: db.schema, max: 1 });
    let calls = 0;
    try {
      const failure = await retryTransient(() => {
        calls += 1;
        return withTransaction(pool, (client) => client.query('SELECT * FROM no_such_table'));
      }).catch((e: unknown) => e);

      expect((failure as { code?: string }).code).toBe('42P01');
      expect(calls).toBe(1);
    } finally {
      await pool.end();
    }
  });
});

describe('retryTransient', () => {
  it('gives up with the last error once the budget is spent', async () => {
    let calls = 0;
    const clock = { t: 0 };
    const failure = await retryTransient(
      async () => {
        calls += 1;
        throw new TransientFaultError('redis', new Error('The client is offline'));
      },
      {
        budgetMs: 1_000,
        random: () => 1,
        now: () => clock.t,
        sleep: async (ms) => {
          clock.t += ms;
        },
      },
    ).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(TransientFaultError);
    // 100 + 200 + 400 = 700 ms of waits fit in 1 s; the next (800 ms) would not.
    expect(calls).toBe(4);
  });
});
