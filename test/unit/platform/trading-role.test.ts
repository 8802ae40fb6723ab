/**
 * The trading system's database role (schemas/sql/0090_roles.sql, 0301_trading_grants.sql,
 * 0310_trading_least_privilege.sql), proven on the real PostgreSQL: the engine runs end to end as
 * tickstock_trading_login (open, risk-checked orders, group commit, broker reports, outbox dispatch,
 * restart, stored projections) and that login can do nothing else: no market table written, no
 * health table read, no event rewritten, no projection row deleted, no outbox command altered.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentDatabaseUrl } from '../../../lambdas/platform/connections';
import { createPool } from '../../../lambdas/platform/postgres';
import { dispatchOutbox } from '../../../lambdas/trading/broker';
import { TradingEngine } from '../../../lambdas/trading/engine';
import { PostgresEventStore } from '../../../lambdas/trading/pg-store';
import type { BrokerCommand, OrderRequest } from '../../../lambdas/trading/types';
import { createTestSchema, type TestSchema } from '../../support/db';

const INSUFFICIENT_PRIVILEGE = '42501';
const AT = '2026-03-02T15:00:00.000Z';
const T = (s: number) => new Date(Date.parse(AT) + s * 1000).toISOString();

let db: TestSchema;
let trading: pg.Pool;

async function refused(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<string | undefined> {
  const error = await pool.query(sql, params).then(
    () => undefined,
    (e: { code?: string }) => e,
  );
  return error?.code;
}

const order = (id: string, qty = 10): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty,
  type: 'limit',
  limitPrice: 100,
  tif: 'day',
});

beforeAll(async () => {
  db = await createTestSchema('trading_role');
  trading = createPool({
    connectionString: componentDatabaseUrl(db.url, 'trading'),
    schema: db.schema,
    max: 4,
  });
  await db.pool.query(
    `INSERT INTO symbols (symbol, name, type, active, first_seen) VALUES ('ACME', 'Acme Corp', 'CS', true, '2025-01-02')`,
  );
});

afterAll(async () => {
  await trading.end();
  await db.drop();
});

describe('the trading login role', () => {
  it('is who the engine connects as', async () => {
    const { rows } = await trading.query<{ user: string }>('SELECT current_user AS user');
    expect(rows[0]?.user).toBe('tickstock_trading_login');
  });

  it('runs the engine end to end: orders, group commit, reports, outbox, restart and projections', async () => {
    const store = new PostgresEventStore(trading);
    const engine = await TradingEngine.open(store, 'account-role', {
      init: { cash: 100_000, limits: { maxOrderNotional: 5_000, dailyLossLimit: 500 } },
      at: AT,
    });
    await engine.updatePrices({ AAPL: 100 }, AT);
    const outcomes = await Promise.all([
      engine.submit(order('A'), T(1)),
      engine.submit(order('B'), T(1)),
      engine.submit(order('BIG', 100), T(1)),
    ]);
    expect(outcomes.map((o) => o.denial?.code ?? o.status)).toEqual([
      'pending_new',
      'pending_new',
      'MAX_ORDER_NOTIONAL',
    ]);
    const sent: BrokerCommand[] = [];
    expect(await dispatchOutbox(store, 'account-role', { send: async (c) => void sent.push(c) })).toBe(2);
    await engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'A' }, T(2));
    await engine.onBrokerReport({ kind: 'accepted', clientOrderId: 'B' }, T(2));
    await engine.onBrokerReport({ kind: 'fill', clientOrderId: 'A', qty: 10, price: 100 }, T(3));
    await engine.modify({ clientOrderId: 'B', qty: 20 }, T(4));
    await engine.cancel('B', T(5));
    // A breaker trip: its state log, breaker row and cancels are written by the same role.
    await engine.updatePrices({ AAPL: 40 }, T(6));
    expect(engine.health().activeBreakers).toEqual(['daily_loss']);
    await dispatchOutbox(store, 'account-role', { send: async (c) => void sent.push(c) });
    expect(sent.map((c) => c.kind)).toEqual(['submit', 'submit', 'replace', 'cancel']);

    const restarted = await TradingEngine.open(store, 'account-role');
    expect(restarted.projections()).toEqual(engine.projections());
    expect(await store.readProjections('account-role')).toEqual(engine.projections());
    expect(await store.counts('account-role')).toEqual({
      events: engine.state.version,
      brokerCommands: sent.length,
    });
  });

  it('cannot write market tables nor run the market functions', async () => {
    expect(
      await refused(
        trading,
        `INSERT INTO symbols (symbol, name, type, active, first_seen) VALUES ('EVIL', 'x', 'CS', true, '2025-01-02')`,
      ),
    ).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, "UPDATE symbols SET name = 'x' WHERE symbol = 'ACME'")).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
    expect(await refused(trading, "DELETE FROM symbols WHERE symbol = 'ACME'")).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'SELECT count(*) FROM symbols')).toBe(INSUFFICIENT_PRIVILEGE);
    const { rows } = await db.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'trading\\_%'`,
      [db.schema],
    );
    expect(rows.length).toBeGreaterThan(5);
    // No table outside the trading system's own is writable (or readable) by the role.
    const { rows: rights } = await db.pool.query<{ table_name: string; privilege: string }>(
      `SELECT t.table_name, p.privilege
         FROM information_schema.tables t
        CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
        WHERE t.table_schema = $1 AND t.table_name NOT LIKE 'trading\\_%'
          AND has_table_privilege('tickstock_trading_login', format('%I.%I', t.table_schema, t.table_name), p.privilege)`,
      [db.schema],
    );
    expect(rights).toEqual([]);
  });

  it('cannot read health tables', async () => {
    expect(await refused(trading, 'SELECT count(*) FROM health_records')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'SELECT count(*) FROM health_ingests')).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('cannot rewrite its history: no event changed or deleted, no projection row deleted, no command altered', async () => {
    expect(await refused(trading, "UPDATE trading_events SET type = 'x'")).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'DELETE FROM trading_events')).toBe(INSUFFICIENT_PRIVILEGE);
    for (const table of [
      'trading_orders',
      'trading_positions',
      'trading_accounts',
      'trading_states',
      'trading_state_log',
      'trading_breakers',
      'trading_outbox',
    ])
      expect(await refused(trading, `DELETE FROM ${table}`), table).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, "UPDATE trading_state_log SET cause = 'x'")).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, "UPDATE trading_outbox SET command = '{}'")).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, "UPDATE trading_outbox SET stream = 'x'")).toBe(INSUFFICIENT_PRIVILEGE);
    // What the dispatcher does is allowed.
    await trading.query('UPDATE trading_outbox SET delivered_at = now() WHERE false');
  });

  it('cannot become another role or create objects', async () => {
    expect(await refused(trading, 'SET ROLE tickstock_market')).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await refused(trading, 'CREATE TABLE trading_sneaky (x int)')).toBe(INSUFFICIENT_PRIVILEGE);
  });
});
