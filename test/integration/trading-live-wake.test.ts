/**
 * The live service sends a command another writer announced at once, not at its next poll (the
 * `trading` CLI's appends notify OUTBOX_CHANNEL; the service LISTENs). The service runs in-process
 * with a ten-minute poll against the broker simulator (its own process) on a PostgreSQL schema of
 * its own; orders are written as the CLI writes them: the order API over an engine opened per
 * command on an announcing store, a second writer of the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrderApi } from '../../lambdas/trading/api';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import type { OrderRequest } from '../../lambdas/trading/types';
import { LiveService, type ServiceEvent } from '../../lambdas/trading-live/service';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_wake'), startSimProcess()]);
}, 120_000);
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

const STREAM = 'account-wake';
/** Longer than any wait below: an order at the broker before it came from the notification. */
const POLL_MS = 600_000;

const order = (id: string): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty: 1,
  type: 'limit',
  limitPrice: 90,
  tif: 'day',
});

/** One CLI command: an engine opened on the stream, the order API, the store announcing or not. */
async function submitAsCli(id: string, announce: boolean): Promise<void> {
  const engine = await TradingEngine.open(new PostgresEventStore(db.pool, { announce }), STREAM);
  const [outcome] = await createOrderApi(engine).submit(order(id));
  expect(outcome?.denial ?? null).toBeNull();
  await engine.settled();
}

async function atBroker(keyId: string): Promise<string[]> {
  const state = (await sim.state(keyId)) as unknown as { orders: { client_order_id: string }[] };
  return state.orders.map((o) => o.client_order_id).sort();
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

describe('live service: announced commands', () => {
  it('sends an announced order at once; an unannounced one waits for the poll or the next announcement', {
    timeout: 180_000,
  }, async () => {
    const creds = await sim.account({ cash: 100_000 });
    await sim.control(creds.keyId, { prices: { AAPL: 100 } });
    const now = new Date().toISOString();
    const opening = await TradingEngine.open(new PostgresEventStore(db.pool), STREAM, {
      init: { cash: 100_000 },
      at: now,
    });
    // An operator's session override: the test must not depend on the time of day.
    await opening.market({ session: 'open' }, now);
    await opening.updatePrices({ AAPL: 100 }, now);
    await opening.settled();

    const events: ServiceEvent[] = [];
    const service = new LiveService(
      {
        databaseUrl: db.url,
        schema: db.schema,
        brokerBaseUrl: sim.url,
        brokerWsUrl: sim.wsUrl,
        keyId: creds.keyId,
        secret: creds.secret,
        account: 'wake',
        pollMs: POLL_MS,
        reconcileMs: POLL_MS,
        requestTimeoutMs: 2_000,
      },
      (e) => events.push(e),
    );
    await service.start();
    try {
      expect(service.state).toBe('accepting');
      // Once it listens (an order written before that is read by the step the listener triggers).
      expect(await waitFor(async () => events.some((e) => e.event === 'listening'), 30_000)).toBe(true);
      await submitAsCli('W1', true);
      expect(await waitFor(async () => (await atBroker(creds.keyId)).includes('W1'), 60_000)).toBe(true);

      // Without the announcement the order waits in the outbox (the poll is ten minutes away)...
      await submitAsCli('W2', false);
      expect(await waitFor(async () => (await atBroker(creds.keyId)).includes('W2'), 3_000)).toBe(false);
      // ...until the next announced command wakes the service, which sends the whole outbox.
      await submitAsCli('W3', true);
      expect(await waitFor(async () => (await atBroker(creds.keyId)).length === 3, 60_000)).toBe(true);
      expect(await atBroker(creds.keyId)).toEqual(['W1', 'W2', 'W3']);
      expect(events.some((e) => e.event === 'listen_failed')).toBe(false);
    } finally {
      await service.stop();
    }
    expect(service.state).toBe('stopped');
  });
});
