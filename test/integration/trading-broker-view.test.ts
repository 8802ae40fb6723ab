/**
 * The broker's view for reconciliation (LiveBroker.brokerView) against the broker simulator process:
 * the order list is paged by creation time, and orders that share a creation time across a page
 * boundary are neither skipped nor counted twice; more orders at one instant than a page holds is an
 * error, never a silently short view.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveBroker } from '../../lambdas/trading/live-broker';
import { type SimProcess, startSimProcess } from '../support/broker-sim';

let sim: SimProcess;
beforeAll(async () => {
  sim = await startSimProcess();
});
afterAll(async () => {
  await sim?.stop();
});

async function account() {
  const key = await sim.account({
    cash: 1e9,
    clock: '2026-03-02T15:00:00.000Z',
    rateLimitPerMinute: 1_000_000,
  });
  await sim.control(key.keyId, { prices: { AAPL: 100 } });
  return key;
}

/** `n` resting limit orders created at the simulator's clock `at` (they share their creation time). */
async function orders(key: { keyId: string; secret: string }, at: string, prefix: string, n: number) {
  await sim.control(key.keyId, { clock: at });
  for (let k = 0; k < n; k += 25)
    await Promise.all(
      Array.from({ length: Math.min(25, n - k) }, async (_, i) => {
        const res = await sim.submitOrder(key, {
          symbol: 'AAPL',
          qty: '1',
          side: 'buy',
          type: 'limit',
          limit_price: '50',
          time_in_force: 'gtc',
          client_order_id: `${prefix}${k + i}`,
        });
        expect(res.status).toBe(200);
      }),
    );
}

function broker(key: { keyId: string; secret: string }): LiveBroker {
  return new LiveBroker({
    baseUrl: sim.url,
    wsUrl: sim.wsUrl,
    ...key,
    lookup: () => undefined,
    openOrders: () => [],
    onReport: async () => undefined,
  });
}

describe('the broker view for reconciliation', () => {
  it('orders sharing a creation time across a page boundary are each in the view once', async () => {
    const key = await account();
    // 499 orders at one instant, 3 at the next: the first page (500) ends inside the second instant.
    await orders(key, '2026-03-02T15:00:01.000Z', 'A', 499);
    await orders(key, '2026-03-02T15:00:02.000Z', 'B', 3);
    const view = await broker(key).brokerView();
    const cids = view.orders.map((o) => o.client_order_id);
    expect(cids).toHaveLength(502);
    expect(new Set(cids).size).toBe(502);
    expect(cids.filter((c) => c.startsWith('B')).sort()).toEqual(['B0', 'B1', 'B2']);
  });

  it('more orders at one instant than a page holds: an error, not a short view', async () => {
    const key = await account();
    await orders(key, '2026-03-02T15:00:01.000Z', 'C', 501);
    await expect(broker(key).brokerView()).rejects.toThrow(/more than 500 orders created at/);
  });
});
