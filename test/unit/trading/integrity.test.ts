/** The hash chain's verifier and the recovery fold (lambdas/trading/integrity.ts) on the in-memory store. */
import { describe, expect, it } from 'vitest';
import { TradingEngine } from '../../../lambdas/trading/engine';
import { IntegrityError, verifyChain } from '../../../lambdas/trading/integrity';
import { MemoryEventStore } from '../../../lambdas/trading/store';

const AT = '2026-03-02T15:00:00.000Z';

async function account(store: MemoryEventStore, stream = 's') {
  const e = await TradingEngine.open(store, stream, { init: { cash: 10_000 }, at: AT });
  await e.market({ session: 'open' }, AT);
  await e.updatePrices({ AAPL: 100 }, AT);
  await e.submit(
    { clientOrderId: 'A', symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 100, tif: 'day' },
    AT,
  );
  await e.onBrokerReport({ kind: 'accepted', clientOrderId: 'A' }, AT);
  await e.onBrokerReport({ kind: 'fill', clientOrderId: 'A', qty: 4, price: 100 }, AT);
  return e;
}

describe('event store hash chain', () => {
  it('accepts a leading run of rows without a hash (written before the chain), not a hash removed later', async () => {
    const store = new MemoryEventStore();
    await account(store);
    const { rows, head } = await store.readChain('s');
    const legacy = rows.map((r, i) => (i < 2 ? { ...r, hash: null } : r));
    // Row 3 chained on row 2's hash, which is gone: only a store written wholly before 0320 is legacy.
    expect(verifyChain('s', legacy, head)).toMatchObject({ ok: false, failure: { firstBadVersion: 3 } });
    const v = verifyChain(
      's',
      rows.map((r) => ({ ...r, hash: null })),
      head,
    );
    expect(v.ok && v.legacy).toBe(rows.length);
    const removed = rows.map((r) => (r.version === 4 ? { ...r, hash: null } : r));
    expect(verifyChain('s', removed, head)).toMatchObject({
      ok: false,
      failure: { kind: 'corrupted', firstBadVersion: 4 },
    });
  });

  it('recovers from the broker: the fold skips the damaged rows, the broker state applies, and the next load verifies', async () => {
    const store = new MemoryEventStore();
    await account(store);
    // The fill row (version 7) is lost.
    store.tamper('s', (rows) => rows.filter((r) => r.version !== 7));
    const error = await store.load('s').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    const failure = (error as IntegrityError).failure;
    expect(failure).toMatchObject({ kind: 'missing', firstBadVersion: 7, storedVersion: 6 });
    const engine = await TradingEngine.recoverIntegrity(
      store,
      failure,
      {
        orders: [
          {
            id: 'b1',
            client_order_id: 'A',
            symbol: 'AAPL',
            side: 'buy',
            qty: 10,
            filled_qty: 4,
            filled_avg_price: 100,
            status: 'partially_filled',
            replaced_by: null,
            replaces: null,
          },
        ],
        positions: { AAPL: { qty: 4, avgPrice: 100 } },
        cash: 9_600,
      },
      AT,
    );
    expect(engine.state.orders.A).toMatchObject({ status: 'partially_filled', filledQty: 4 });
    expect(engine.state.positions.AAPL).toEqual({ qty: 4, avgPrice: 100 });
    expect(engine.state.cash).toBe(9_600);
    const reopened = await TradingEngine.open(store, 's');
    expect(reopened.state.version).toBe(engine.state.version);
    expect(reopened.projections()).toEqual(engine.projections());
    expect(reopened.state.alerts.at(-1)).toMatchObject({ severity: 'critical', source: 'integrity' });
    // Trading goes on after the recovery, chained on it.
    await reopened.onBrokerReport({ kind: 'fill', clientOrderId: 'A', qty: 6, price: 100 }, AT);
    expect((await TradingEngine.open(store, 's')).state.orders.A?.status).toBe('filled');
  });
});
