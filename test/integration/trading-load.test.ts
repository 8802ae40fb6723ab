/**
 * The load scenario reduced (3 accounts x 30 operations at ~100 ms each, a fault injected on each account every ~250 ms): concurrent
 * order flows against a broker simulator process of its own, over the real live adapter and the
 * PostgreSQL event store, then reconciliation; the accounting must hold (see
 * test/support/trading-load.ts). The full size is `npm run test:load -- trading`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';
import { loadTable, runTradingLoad } from '../support/trading-load';

let db: TestSchema;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_load'), startSimProcess()]);
});
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

describe('the load scenario, reduced', () => {
  it('3 concurrent order flows with faults injected: every order accounted for, no fill lost or doubled, positions and cash equal the broker', async () => {
    const summary = await runTradingLoad({
      store: new PostgresEventStore(db.pool),
      sim,
      accounts: 3,
      opsPerAccount: 30,
      faultEveryMs: 250,
      paceMs: 100,
      label: `tl${Date.now().toString(36)}`,
    });
    console.log(loadTable(summary).join('\n'));
    expect(summary.accounts.flatMap((a) => a.problems.map((p) => `${a.account}: ${p}`))).toEqual([]);
    expect(summary.accounts.map((a) => [a.lost, a.doubled])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    // The run did meet faults: the accounting held under them, not beside them.
    expect(Object.values(summary.faultsByKind).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(summary.accounts.reduce((a, s) => a + s.brokerOrders, 0)).toBeGreaterThan(0);
    expect(summary.ok).toBe(true);
  }, 180_000);
});
