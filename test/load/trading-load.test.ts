/**
 * `npm run test:load -- trading`: the plan's load scenario. 12 accounts, each with its own broker
 * simulator key and engine stream, run 300 operations each (submit, cancel, modify, price moves,
 * the broker filling part of a working order) concurrently against a simulator process of their
 * own, over the real live adapter and the PostgreSQL event store, while a fault is injected on
 * every account every ~400 ms (429 storms, maintenance, 500s, timeouts, cuts mid-request, stream
 * drops, auth failures, lost fill frames, truncated answers, fills racing cancels). Then every
 * account is reconciled and the accounting must hold (test/support/trading-load.ts): nothing lost,
 * nothing doubled. The summary table is printed; the run fails when the accounting does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { tradingSchema } from '../support/trading-live';
import { loadTable, runTradingLoad } from '../support/trading-load';

const ACCOUNTS = Number(process.env.TRADING_LOAD_ACCOUNTS ?? 12);
const OPS = Number(process.env.TRADING_LOAD_OPS ?? 300);

let sim: SimProcess;
let db: Awaited<ReturnType<typeof tradingSchema>>;

beforeAll(async () => {
  // This checkout's load database (vitest.load.config.ts), a throwaway schema in it.
  const url = process.env.DATABASE_URL as string;
  [sim, db] = await Promise.all([startSimProcess(), tradingSchema(url, 'load_trading')]);
});
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

describe('trading load', () => {
  it(`${ACCOUNTS} concurrent order flows x ${OPS} operations with faults injected: every order and fill accounted for`, async () => {
    const summary = await runTradingLoad({
      store: db.store,
      sim,
      accounts: ACCOUNTS,
      opsPerAccount: OPS,
      faultEveryMs: 400,
      paceMs: 20,
      label: `load${Date.now().toString(36)}`,
    });
    console.log(`trading load:\n${loadTable(summary).join('\n')}`);
    expect(summary.accounts.flatMap((a) => a.problems.map((p) => `${a.account}: ${p}`))).toEqual([]);
    expect(summary.accounts.reduce((a, s) => a + s.lost + s.doubled, 0)).toBe(0);
    expect(Object.keys(summary.faultsByKind).sort()).toEqual([
      'auth',
      'disconnect',
      'fill_race_cancel',
      'http429',
      'invalid',
      'lost_fill',
      'maintenance',
      'server_error',
      'timeout',
    ]);
    expect(summary.ok).toBe(true);
  });
});
