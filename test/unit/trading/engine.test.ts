import { describe, expect, it } from 'vitest';
import {
  AccountNotFoundError,
  type Alert,
  MAX_GROUP_COMMANDS,
  TradingEngine,
} from '../../../lambdas/trading/engine';
import { rebuild } from '../../../lambdas/trading/state';
import { type AppendRequest, ConcurrencyError, MemoryEventStore } from '../../../lambdas/trading/store';
import type { Limits, OrderRequest } from '../../../lambdas/trading/types';

const AT = '2026-03-02T15:00:00.000Z';
const T = (s: number) => new Date(Date.parse(AT) + s * 1000).toISOString();
const order = (id: string, qty = 10, extra: Partial<OrderRequest> = {}): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty,
  type: 'limit',
  limitPrice: 100,
  tif: 'day',
  ...extra,
});

async function engine(limits: Limits = {}, alerts: Alert[] = [], store = new MemoryEventStore()) {
  const e = await TradingEngine.open(store, 'acct', {
    init: { cash: 100_000, positions: { AAPL: { qty: 100, avgPrice: 100 } }, limits },
    at: AT,
    onAlert: (a) => alerts.push(a),
  });
  await e.updatePrices({ AAPL: 100 }, AT);
  return { e, store };
}

describe('trading engine', () => {
  it('needs an opened account', async () => {
    await expect(TradingEngine.open(new MemoryEventStore(), 'none')).rejects.toThrow(AccountNotFoundError);
  });

  it('a second submit with the same client order id is denied and changes nothing', async () => {
    const { e, store } = await engine();
    await e.submit(order('O1'), T(1));
    const before = e.projections();
    const outbox = (await store.counts('acct')).brokerCommands;
    const again = await e.submit(order('O1', 50, { side: 'sell' }), T(2));
    expect(again.denial?.code).toBe('DUPLICATE_CLIENT_ORDER_ID');
    expect(again.status).toBe('pending_new');
    expect(e.projections()).toEqual(before);
    expect((await store.counts('acct')).brokerCommands).toBe(outbox);
  });

  it('writes a broker command to the outbox for every submit, cancel and replace, none for a denial', async () => {
    const { e, store } = await engine({ maxOrderNotional: 5_000 });
    await e.submit(order('O1'), T(1));
    await e.submit(order('O2', 1000), T(1));
    await e.onBrokerReport({ kind: 'accepted', clientOrderId: 'O1' }, T(2));
    await e.modify({ clientOrderId: 'O1', qty: 20 }, T(3));
    await e.cancel('O1', T(4));
    expect((await store.pendingCommands('acct')).map((c) => c.command.kind)).toEqual([
      'submit',
      'replace',
      'cancel',
    ]);
  });

  it('a fill for an order that is no longer open is recorded as ignored and alerts', async () => {
    const alerts: Alert[] = [];
    const { e } = await engine({}, alerts);
    await e.submit(order('O1'), T(1));
    await e.onBrokerReport({ kind: 'rejected', clientOrderId: 'O1', reason: 'no' }, T(2));
    expect(await e.onBrokerReport({ kind: 'fill', clientOrderId: 'O1', qty: 10, price: 100 }, T(3))).toBe(
      'ignored',
    );
    expect(e.state.orders.O1?.status).toBe('rejected');
    expect(alerts.map((a) => a.severity)).toEqual(['warning', 'critical']);
  });

  it('a custom breaker that halts cancels every open order and refuses new ones', async () => {
    const { e } = await engine({
      customBreakers: [{ name: 'cap', metric: 'openOrders', above: 1, action: 'halted' }],
    });
    await e.submit(order('O1'), T(1));
    await e.onBrokerReport({ kind: 'accepted', clientOrderId: 'O1' }, T(1));
    await e.submit(order('O2'), T(2));
    expect(e.health().states.account?.state).toBe('halted');
    expect([e.state.orders.O1?.status, e.state.orders.O2?.status]).toEqual([
      'pending_cancel',
      'pending_cancel',
    ]);
    expect((await e.submit(order('O3'), T(3))).denial?.code).toBe('TRADING_HALTED');
  });

  it('a breaker stays tripped until reset, and the reset records who and when', async () => {
    const { e } = await engine({ dailyLossLimit: 500 });
    await e.updatePrices({ AAPL: 90 }, T(1));
    expect(await e.reset('daily_loss', 'ann', T(2))).toMatchObject({ ok: false });
    await e.updatePrices({ AAPL: 99 }, T(3));
    expect(e.health().activeBreakers).toEqual(['daily_loss']);
    expect(await e.reset('daily_loss', 'ann', T(4))).toMatchObject({ ok: true });
    expect(e.projections().breakers[0]).toMatchObject({ resetBy: 'ann', resetAt: T(4) });
    expect(e.health()).toMatchObject({ activeBreakers: [], restoring: { account: 0.25 } });
    await e.advanceTo(T(4 + 900));
    expect(e.health().restoring).toEqual({});
  });

  it('refuses a stale writer with a concurrency error and keeps its state consistent', async () => {
    const store = new MemoryEventStore();
    const { e: first } = await engine({}, [], store);
    const second = await TradingEngine.open(store, 'acct');
    await first.submit(order('O1'), T(1));
    await expect(second.submit(order('O2'), T(1))).rejects.toThrow(ConcurrencyError);
    expect(second.state.orders.O1?.status).toBe('pending_new');
    expect(second.state.orders.O2).toBeUndefined();
  });

  it('rolls the in-memory state back when the append fails', async () => {
    class FailingStore extends MemoryEventStore {
      fail = false;
      override async append(request: AppendRequest): Promise<void> {
        if (this.fail) throw new Error('disk full');
        return super.append(request);
      }
    }
    const store = new FailingStore();
    const { e } = await engine({}, [], store);
    store.fail = true;
    await expect(e.submit(order('O1'), T(1))).rejects.toThrow('disk full');
    expect(e.state.orders.O1).toBeUndefined();
    store.fail = false;
    expect((await e.submit(order('O1'), T(2))).status).toBe('pending_new');
  });
});

/** A store whose appends wait until released, recording each append's commands. */
class HeldStore extends MemoryEventStore {
  readonly appends: AppendRequest[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  failNext: Error | null = null;
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  override async append(request: AppendRequest): Promise<void> {
    this.appends.push(request);
    await this.gate;
    const failure = this.failNext;
    this.failNext = null;
    if (failure) throw failure;
    return super.append(request);
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('group commit', () => {
  it('commits the commands that arrive during an append together, answering each with its own outcome', async () => {
    const store = new HeldStore();
    const { e } = await engine({ maxOrderNotional: 5_000 }, [], store);
    const before = store.appends.length;
    store.hold();
    const first = e.submit(order('G0'), T(1));
    await tick();
    const rest = Array.from({ length: 9 }, (_, i) =>
      e.submit(order(`G${i + 1}`, i % 3 === 0 ? 100 : 10), T(1)),
    );
    let answered = 0;
    for (const p of [first, ...rest]) void p.then(() => answered++);
    await tick();
    // Decided at once, answered only after the commit.
    expect(e.state.orders.G9?.status).toBe('pending_new');
    expect(answered).toBe(0);
    store.release();
    const outcomes = [await first, ...(await Promise.all(rest))];
    // One transaction for the first, one for the nine that arrived while it was written.
    expect(store.appends.length - before).toBe(2);
    expect(store.appends.at(-1)?.events).toHaveLength(9);
    expect(outcomes.map((o) => o.denial?.code ?? o.status)).toEqual([
      'pending_new',
      'MAX_ORDER_NOTIONAL',
      'pending_new',
      'pending_new',
      'MAX_ORDER_NOTIONAL',
      'pending_new',
      'pending_new',
      'MAX_ORDER_NOTIONAL',
      'pending_new',
      'pending_new',
    ]);
    // Versions consecutive, and the stored projections are those of a rebuild.
    const events = await store.load('acct');
    expect(rebuild(events).version).toBe(e.state.version);
    expect(await store.readProjections('acct')).toEqual(e.projections());
    expect((await store.pendingCommands('acct')).map((c) => c.command.clientOrderId)).toEqual([
      'G0',
      'G2',
      'G3',
      'G5',
      'G6',
      'G8',
      'G9',
    ]);
  });

  it(`caps a group at ${MAX_GROUP_COMMANDS} commands`, async () => {
    const store = new HeldStore();
    const { e } = await engine({}, [], store);
    const before = store.appends.length;
    store.hold();
    const all = Array.from({ length: MAX_GROUP_COMMANDS + 11 }, (_, i) => e.submit(order(`C${i}`, 1), T(1)));
    await tick();
    store.release();
    await Promise.all(all);
    expect(store.appends.slice(before).map((a) => a.events.length)).toEqual([MAX_GROUP_COMMANDS, 11]);
  });

  it('a breaker trip refuses the very next order before the trip is committed; the refusal is answered after it', async () => {
    const store = new HeldStore();
    const { e } = await engine({ dailyLossLimit: 500 }, [], store);
    store.hold();
    const price = e.updatePrices({ AAPL: 90 }, T(1));
    const submit = e.submit(order('X'), T(1));
    let answered = false;
    void submit.then(() => {
      answered = true;
    });
    await tick();
    expect(e.health().activeBreakers).toEqual(['daily_loss']);
    expect(answered).toBe(false);
    store.release();
    await price;
    expect((await submit).denial?.code).toBe('REDUCE_ONLY');
    // Issued together, the tick, the trip and the refusal share one commit.
    const types = store.appends.at(-1)?.events.map((ev) => ev.type);
    expect(types).toEqual(expect.arrayContaining(['PricesUpdated', 'BreakerTripped', 'OrderDenied']));
  });

  it('when a group fails, its callers get the error and the commands decided after it are decided again', async () => {
    const store = new HeldStore();
    const { e } = await engine({ maxPositionQty: { AAPL: 130 } }, [], store);
    store.hold();
    store.failNext = new Error('connection lost');
    // 100 shares held, limit 130. A (20) is in flight when B (20) and C (15) arrive: on top of A, both
    // are denied. A's append fails: B and C are decided again without A, B fits and C does not.
    const a = e.submit(order('A', 20), T(1));
    void a.catch(() => undefined);
    await tick();
    const b = e.submit(order('B', 20), T(1));
    const c = e.submit(order('C', 15), T(1));
    await tick();
    expect([e.state.orders.B?.status, e.state.orders.C?.status]).toEqual(['denied', 'denied']);
    store.release();
    await expect(a).rejects.toThrow('connection lost');
    expect((await b).status).toBe('pending_new');
    expect((await c).denial?.code).toBe('MAX_POSITION');
    expect(e.state.orders.A).toBeUndefined();
    expect(await store.readProjections('acct')).toEqual(e.projections());
    expect(rebuild(await store.load('acct')).version).toBe(e.state.version);
  });

  it('settled() waits for everything decided so far', async () => {
    const store = new HeldStore();
    const { e } = await engine({}, [], store);
    store.hold();
    void e.submit(order('S1'), T(1));
    void e.submit(order('S2'), T(1));
    let done = false;
    const settled = e.settled().then(() => {
      done = true;
    });
    await tick();
    expect(done).toBe(false);
    store.release();
    await settled;
    expect((await store.counts('acct')).brokerCommands).toBe(2);
  });
});
