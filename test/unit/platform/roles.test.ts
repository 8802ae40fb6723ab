/**
 * The components' database rights (schemas/sql/0090_roles.sql, 0210_role_grants.sql), proven
 * against the real PostgreSQL: each component logs in as its own login role on a freshly migrated
 * schema and is refused what it must not do, and allowed what it must.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSleepSpans } from '../../../lambdas/health/sleep-spans';
import { componentDatabaseUrl, DATABASE_COMPONENTS } from '../../../lambdas/platform/connections';
import { createPool } from '../../../lambdas/platform/postgres';
import { MIGRATIONS_DIR } from '../../../lib/paths';
import { createTestSchema, type TestSchema } from '../../support/db';

let db: TestSchema;
const pools = new Map<string, pg.Pool>();

function as(component: (typeof DATABASE_COMPONENTS)[number]): pg.Pool {
  const pool = pools.get(component);
  if (!pool) throw new Error(`no pool for ${component}`);
  return pool;
}

async function refused(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<string | undefined> {
  const error = await pool.query(sql, params).then(
    () => undefined,
    (e: { code?: string }) => e,
  );
  return error?.code;
}

const INSUFFICIENT_PRIVILEGE = '42501';

beforeAll(async () => {
  db = await createTestSchema('roles');
  for (const component of DATABASE_COMPONENTS) {
    pools.set(
      component,
      createPool({ connectionString: componentDatabaseUrl(db.url, component), schema: db.schema, max: 1 }),
    );
  }
  await db.pool.query(
    `INSERT INTO symbols (symbol, name, type, active, first_seen) VALUES ('ACME', 'Acme Corp', 'CS', true, '2025-01-02')`,
  );
});

afterAll(async () => {
  await Promise.all([...pools.values()].map((p) => p.end()));
  await db.drop();
});

describe('the roles', () => {
  it('are group roles that cannot log in, each with one login role that is a member of it alone', async () => {
    const { rows } = await db.pool.query<{ rolname: string; rolcanlogin: boolean; member_of: string[] }>(
      `SELECT r.rolname, r.rolcanlogin,
              coalesce(array_agg(g.rolname::text ORDER BY g.rolname) FILTER (WHERE g.rolname IS NOT NULL), '{}')::text[] AS member_of
       FROM pg_roles r
       LEFT JOIN pg_auth_members m ON m.member = r.oid
       LEFT JOIN pg_roles g ON g.oid = m.roleid AND g.rolname <> 'rds_iam'
       WHERE r.rolname LIKE 'tickstock\\_%'
       GROUP BY 1, 2 ORDER BY 1`,
    );
    const byName = new Map(rows.map((r) => [r.rolname, r]));

    for (const component of ['app', 'market', 'health', 'trading', 'router']) {
      expect(byName.get(`tickstock_${component}`)).toMatchObject({ rolcanlogin: false, member_of: [] });
      expect(byName.get(`tickstock_${component}_login`)).toMatchObject({
        rolcanlogin: true,
        member_of: [`tickstock_${component}`],
      });
    }
  });

  it('no component can become the migration owner or another component', async () => {
    const owner = (await db.pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u as string;

    expect(await refused(as('app'), `SET ROLE ${owner}`)).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(as('health'), 'SET ROLE tickstock_market')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(as('market'), 'SET ROLE tickstock_health')).toBe(INSUFFICIENT_PRIVILEGE);
    const { rows } = await as('market').query<{ super: boolean }>(
      'SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user',
    );
    expect(rows).toEqual([{ super: false }]);
  });

  it('the role migration is idempotent and safe to run concurrently (roles are cluster-wide)', async () => {
    const sql = await readFile(join(MIGRATIONS_DIR, '0090_roles.sql'), 'utf8');
    const admins = Array.from({ length: 4 }, () => createPool({ connectionString: db.url, max: 1 }));
    try {
      const results = await Promise.allSettled(admins.map((p) => p.query(sql)));

      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    } finally {
      await Promise.all(admins.map((p) => p.end()));
    }
  });
});

describe('the app (read-only)', () => {
  it('cannot write symbols, bars or the outbox, nor run the writing functions', async () => {
    const app = as('app');

    expect(await refused(app, "UPDATE symbols SET name = 'x' WHERE symbol = 'ACME'")).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
    expect(await refused(app, "INSERT INTO symbols (symbol, first_seen) VALUES ('EVIL', '2025-01-02')")).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
    expect(await refused(app, 'DELETE FROM ohlcv_daily')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(app, 'SELECT * FROM market_outbox')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(app, 'SELECT refresh_symbol_liquidity(20)')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('cannot read health data', async () => {
    expect(await refused(as('app'), 'SELECT count(*) FROM health_records')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('reads market data, runs its read functions and writes its own preferences', async () => {
    const app = as('app');

    const symbols = await app.query("SELECT symbol FROM symbols WHERE symbol = 'ACME'");
    const bars = await app.query('SELECT count(*)::int AS n FROM ohlcv_daily');
    const universes = await app.query("SELECT * FROM get_universe_symbols('market_cap', 'large_cap')");
    await app.query(
      `INSERT INTO app_preferences (user_id, key, value) VALUES ('u1', 'watchlist', '["ACME"]')
       ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
    );
    const prefs = await app.query("SELECT value FROM app_preferences WHERE user_id = 'u1'");

    expect(symbols.rows).toEqual([{ symbol: 'ACME' }]);
    expect(bars.rows).toEqual([{ n: 0 }]);
    expect(universes.rows).toEqual([]);
    expect(prefs.rows).toEqual([{ value: ['ACME'] }]);
  });
});

describe('the health ETL and the market jobs are kept apart', () => {
  it('the health ETL cannot read or write market tables', async () => {
    const health = as('health');

    expect(await refused(health, 'SELECT count(*) FROM ohlcv_daily')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(health, 'SELECT count(*) FROM symbols')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(health, "DELETE FROM symbols WHERE symbol = 'ACME'")).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('the health ETL writes its record store', async () => {
    const health = as('health');

    await health.query(
      `INSERT INTO health_ingests (source_id, bucket, object_key, record_type, status, processed_at)
       VALUES ('s1', 'b', 'raw/steps/x.avro', 'steps', 'pending', now())`,
    );
    const { rows } = await health.query('SELECT status FROM health_ingests');

    expect(rows).toEqual([{ status: 'pending' }]);
    expect(await refused(health, 'DELETE FROM health_ingests')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('the health ETL keeps sleep sessions (0270); the market jobs cannot read them', async () => {
    const health = as('health');
    const sleep = new PostgresSleepSpans(health);
    const span = {
      origin: 'com.ouraring.oura',
      sessionId: 's',
      start: 1,
      end: 2,
      zone: '-05:00',
      kind: 'main' as const,
      nightOf: '2025-11-03',
      lastModified: 1,
    };

    await sleep.save('u', 'src', [span]);
    await sleep.save('u', 'src', [{ ...span, end: 3, lastModified: 2 }]);

    expect(await sleep.overlapping('u', 0, 10)).toEqual([{ ...span, end: 3, lastModified: 2 }]);
    expect(await refused(health, 'DELETE FROM health_sleep_spans')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(as('market'), 'SELECT count(*) FROM health_sleep_spans')).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
  });

  it('the market jobs cannot read health data', async () => {
    expect(await refused(as('market'), 'SELECT count(*) FROM health_records')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(as('market'), 'SELECT count(*) FROM health_ingests')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('the market jobs write symbols and bars and run the universe functions', async () => {
    const market = as('market');

    await market.query(
      `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)
       VALUES ('ACME', '2025-01-02', 1, 2, 0.5, 1.5, 1000)`,
    );
    await market.query("UPDATE symbols SET name = 'Acme Corporation' WHERE symbol = 'ACME'");
    const { rows } = await market.query("SELECT * FROM get_symbol_universes('ACME')");

    expect(rows).toEqual([]);
    expect(await refused(market, 'SELECT * FROM app_preferences')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('the router role reads no market or trading table', async () => {
    expect(await refused(as('router'), 'SELECT count(*) FROM ohlcv_daily')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(as('router'), 'SELECT count(*) FROM trading_orders')).toBe(INSUFFICIENT_PRIVILEGE);
  });
});

describe('the trading system', () => {
  it('appends to and reads its event store but can never rewrite an event', async () => {
    const trading = as('trading');

    await trading.query(
      `INSERT INTO trading_events (event_id, stream, version, type, data, occurred_at)
       VALUES (gen_random_uuid(), 'account-roles', 1, 'AccountOpened', '{}', now())`,
    );
    const { rows } = await trading.query("SELECT type FROM trading_events WHERE stream = 'account-roles'");

    expect(rows).toEqual([{ type: 'AccountOpened' }]);
    expect(await refused(trading, "UPDATE trading_events SET type = 'x'")).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'DELETE FROM trading_events')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('writes its projections and outbox, and reads no market or health table', async () => {
    const trading = as('trading');

    await trading.query('SELECT count(*) FROM trading_orders');
    await trading.query('UPDATE trading_outbox SET delivered_at = now() WHERE false');

    expect(await refused(trading, 'SELECT count(*) FROM symbols')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'SELECT count(*) FROM health_records')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('is invisible to the app, the market jobs and the health ETL', async () => {
    for (const component of ['app', 'market', 'health'] as const) {
      expect(await refused(as(component), 'SELECT count(*) FROM trading_orders')).toBe(
        INSUFFICIENT_PRIVILEGE,
      );
      expect(await refused(as(component), 'SELECT count(*) FROM trading_events')).toBe(
        INSUFFICIENT_PRIVILEGE,
      );
    }
  });
});
