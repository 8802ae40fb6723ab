/**
 * The hash chain's verifier, the tail verification of an incremental catch-up and the recovery fold
 * (lambdas/trading/integrity.ts) on the in-memory store.
 */
import { describe, expect, it } from 'vitest';
import { TradingEngine } from '../../../lambdas/trading/engine';
import {
  chainHash,
  eventDigest,
  IntegrityError,
  verifyChain,
  verifyTail,
} from '../../../lambdas/trading/integrity';
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

  it('verifies a tail on from a verified row as the whole chain would, and refuses anything else', async () => {
    const store = new MemoryEventStore();
    const e = await account(store);
    const { rows, head } = await store.readChain('s');
    const all = await store.load('s');
    const k = 3;
    const from = { version: k, hash: rows[k - 1]?.hash ?? null };
    const tail = rows.slice(k);
    expect(verifyTail('s', tail, head, from)).toEqual(all.slice(k));
    expect(verifyTail('s', [], k, from)).toEqual([]);
    // Another start than the row the tail chains on, an edit, a gap, a deleted end: refused.
    expect(verifyTail('s', tail, head, { version: k, hash: rows[k]?.hash ?? null })).toBeNull();
    expect(verifyTail('s', rows.slice(k + 1), head, from)).toBeNull();
    const edited = tail.map((r, i) =>
      i === 1 ? { ...r, data: { ...r.data, at: AT.replace('15:', '16:') } } : r,
    );
    expect(verifyTail('s', edited, head, from)).toBeNull();
    expect(verifyTail('s', tail.slice(0, -1), head, from)).toBeNull();
    // The store: only from the row it verified (here its own last append), and only while that row's
    // stored hash is the one verified.
    expect(await store.loadAfter('s', e.state.version)).toEqual([]);
    expect(await store.loadAfter('s', k)).toBeNull();
    store.tamper('s', (stored) =>
      stored.map((r) => (r.version === e.state.version ? { ...r, hash: '0'.repeat(64) } : r)),
    );
    expect(await store.loadAfter('s', e.state.version)).toBeNull();
  });

  it('leaves a recovery in a tail to the whole verification (its break may lie before the tail)', async () => {
    const store = new MemoryEventStore();
    await account(store);
    const { rows, head } = await store.readChain('s');
    const last = rows.at(-1);
    if (!last) throw new Error('no rows');
    const from = { version: last.version - 1, hash: rows.at(-2)?.hash ?? null };
    // The last row's data claimed as an IntegrityRecovered, its hash recomputed: the chain is clean.
    const data = { ...last.data, type: 'IntegrityRecovered' } as never;
    const recovered = {
      ...last,
      type: 'IntegrityRecovered',
      data,
      hash: chainHash(from.hash, eventDigest('s', last.version, 'IntegrityRecovered', data, last.occurredAt)),
    };
    expect(verifyChain('s', [recovered], head, from).ok).toBe(true);
    expect(verifyTail('s', [recovered], head, from)).toBeNull();
  });
});
