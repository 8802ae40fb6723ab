/**
 * The live engine catching up with another writer (issue 14, `TradingEngine.refresh`, as the live
 * service's step calls it when the stream's head is above the engine's version) on the real
 * PostgreSQL event store: when the engine is quiet it reads and folds only the events after its
 * version (the chain verified on from the last row the store verified), and the state it gets is
 * the one a whole rebuild gives (orders, positions, cash, breakers, state log, version, the open set
 * in its order), over a seeded random interleaving of another writer's commands (a CLI: an engine
 * opened per command on a store of its own, announcing) and the engine's own (submits alone and in
 * groups, broker reports, prices that trip breakers, resets, timers), including the engine's
 * appends refused because it had not caught up (then rebuilt whole, as before). A tampered or
 * deleted event of the other writer is not folded: the refresh throws the IntegrityError a whole
 * load throws, as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import { IntegrityError } from '../../lambdas/trading/integrity';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { isOpen, projections, rebuild } from '../../lambdas/trading/state';
import { ConcurrencyError } from '../../lambdas/trading/store';
import type { BrokerReport, Order, OrderRequest, TradingEvent } from '../../lambdas/trading/types';
import { mulberry32 } from '../../localstack/scenarios/prng';
import { createTestSchema, type TestSchema } from '../support/db';
import { tamperEvents } from '../support/trading-tamper';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('trading_catchup');
}, 120_000);
afterAll(async () => {
  await db?.drop();
});

const AT = '2026-03-02T15:00:00.000Z';
const T = (s: number) => new Date(Date.parse(AT) + s * 1000).toISOString();
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA'];

/** An integer below n, the same sequence on every run of a seed. */
function random(seed: number): (n: number) => number {
  const next = mulberry32(seed);
  return (n) => Math.floor(next() * n);
}

/** The live engine's store, its reads counted (the reads themselves are the real ones). */
class CountingStore extends PostgresEventStore {
  loads = 0;
  tails = 0;
  refused = 0;
  override async load(stream: string): Promise<TradingEvent[]> {
    this.loads += 1;
    return super.load(stream);
  }
  override async loadAfter(stream: string, version: number): Promise<TradingEvent[] | null> {
    const events = await super.loadAfter(stream, version);
    if (events) this.tails += 1;
    else this.refused += 1;
    return events;
  }
}

async function openAccount(stream: string, store: PostgresEventStore): Promise<TradingEngine> {
  const engine = await TradingEngine.open(store, stream, {
    init: {
      cash: 1_000_000,
      positions: { AAPL: { qty: 100, avgPrice: 100 }, MSFT: { qty: 50, avgPrice: 200 } },
      limits: {
        maxPositionQty: { '*': 300 },
        dailyLossLimit: 4_000,
        volatilityHalt: { windowSeconds: 30, movePct: 6, pauseSeconds: 20 },
        maxOrderNotional: 50_000,
      },
    },
    at: AT,
  });
  // An operator's session override: the test must not depend on the time of day.
  await engine.market({ session: 'open' }, AT);
  await engine.updatePrices({ AAPL: 100, MSFT: 200, NVDA: 50 }, AT);
  return engine;
}

/** The state a whole rebuild gives, read on a store of its own (nothing it knows is reused). */
async function rebuilt(stream: string) {
  return rebuild(await new PostgresEventStore(db.pool).load(stream));
}

async function expectSameAsRebuild(engine: TradingEngine, stream: string): Promise<void> {
  const full = await rebuilt(stream);
  expect(engine.state.version).toBe(full.version);
  expect(engine.state).toStrictEqual(full);
  // The orders the risk checks and the breakers walk, in the same order.
  expect([...engine.state.open]).toEqual([...full.open]);
  expect(engine.state.orderIds).toEqual(full.orderIds);
  expect(engine.projections()).toStrictEqual(projections(full));
}

/** Tampering as the table's owner (test/support/trading-tamper.ts). */
const tamper = (sql: string, values: unknown[]) => tamperEvents(db.pool, sql, values);

describe('live engine: incremental catch-up with another writer', () => {
  it.each([7, 23])(
    'folds only the new events and decides on the state a whole rebuild gives (seed %i)',
    {
      timeout: 240_000,
    },
    async (seed) => {
      const stream = `catchup-${seed}`;
      const rand = random(seed);
      const store = new CountingStore(db.pool);
      const live = await openAccount(stream, store);
      const prices: Record<string, number> = { AAPL: 100, MSFT: 200, NVDA: 50 };
      let clock = 1;
      let ids = 0;
      const pick = <V>(xs: readonly V[]): V | undefined => xs[rand(xs.length)];
      const request = (prefix: string): OrderRequest => {
        const symbol = pick(SYMBOLS) as string;
        const market = rand(4) === 0;
        return {
          clientOrderId: `${prefix}${ids++}`,
          symbol,
          side: rand(2) === 0 ? 'buy' : 'sell',
          qty: 1 + rand(80),
          type: market ? 'market' : 'limit',
          limitPrice: market
            ? undefined
            : Math.round((prices[symbol] as number) * (0.97 + rand(7) / 100) * 100) / 100,
          tif: rand(3) === 0 ? 'gtc' : 'day',
        };
      };
      const openOrders = (engine: TradingEngine): Order[] =>
        [...engine.state.open].map((id) => engine.state.orders[id] as Order).filter(isOpen);

      // The other writer: one command per process, as `trading submit/cancel/modify` does.
      const cli = async (): Promise<void> => {
        const other = await TradingEngine.open(new PostgresEventStore(db.pool, { announce: true }), stream);
        const at = T(clock++);
        await other.advanceTo(at);
        const target = pick(openOrders(other));
        const kind = rand(5);
        if (kind === 0 && target) await other.cancel(target.clientOrderId, at);
        else if (kind === 1 && target)
          await other.modify(
            { clientOrderId: target.clientOrderId, qty: target.filledQty + 1 + rand(40) },
            at,
          );
        else if (kind === 2) await other.submitPortfolio([request('P'), request('P')], at);
        else await other.submit(request('C'), at);
        await other.settled();
      };

      const report = (): BrokerReport | null => {
        const o = pick(openOrders(live));
        if (!o) return null;
        switch (rand(7)) {
          case 0:
          case 1:
            return { kind: 'accepted', clientOrderId: o.clientOrderId };
          case 2:
          case 3: {
            const left = o.qty - o.filledQty;
            if (left <= 0) return { kind: 'accepted', clientOrderId: o.clientOrderId };
            const price = o.limitPrice ?? (prices[o.symbol] as number);
            return { kind: 'fill', clientOrderId: o.clientOrderId, qty: 1 + rand(left), price };
          }
          case 4:
            return { kind: 'canceled', clientOrderId: o.clientOrderId };
          case 5:
            return o.replaces === null && o.status === 'pending_replace'
              ? {
                  kind: 'replaced',
                  clientOrderId: o.clientOrderId,
                  newClientOrderId: `${o.clientOrderId}.r1`,
                }
              : { kind: 'expired', clientOrderId: o.clientOrderId };
          default:
            return { kind: 'rejected', clientOrderId: o.clientOrderId, reason: 'test' };
        }
      };

      // One of the engine's own commands (the broker's reports, the market, an operator), retried
      // once when its append is refused because the other writer appended first (the engine has
      // rebuilt whole meanwhile), as the service applies a report again.
      const own = async (): Promise<void> => {
        const at = T(clock++);
        const once = async (): Promise<unknown> => {
          switch (rand(9)) {
            case 0:
            case 1: {
              const r = report();
              return r ? live.onBrokerReport(r, at) : live.submit(request('L'), at);
            }
            case 2: {
              const symbol = pick(SYMBOLS) as string;
              prices[symbol] = Math.round((prices[symbol] as number) * (0.92 + rand(17) / 100) * 100) / 100;
              return live.updatePrices({ [symbol]: prices[symbol] as number }, at);
            }
            case 3:
              // A group commit: several commands decided while one append is in flight.
              return Promise.all([
                live.submit(request('G'), at),
                live.submit(request('G'), at),
                (async () => {
                  const r = report();
                  return r ? live.onBrokerReport(r, at) : null;
                })(),
              ]);
            case 4: {
              const active = live.health().activeBreakers;
              const breaker = pick(active);
              return breaker ? live.reset(breaker, 'ops', at) : live.advanceTo(at);
            }
            case 5: {
              const o = pick(openOrders(live));
              return o ? live.cancel(o.clientOrderId, at) : live.advanceTo(at);
            }
            case 6:
              return live.advanceTo(at);
            default:
              return live.submit(request('L'), at);
          }
        };
        for (let attempt = 0; ; attempt++) {
          try {
            await once();
            return;
          } catch (error) {
            if (!(error instanceof ConcurrencyError) || attempt >= 3) throw error;
          }
        }
      };

      let catchUps = 0;
      const headVersion = async () =>
        Number(
          (
            await db.pool.query<{ v: number }>(
              'SELECT coalesce(max(version), 0)::int AS v FROM trading_events WHERE stream = $1',
              [stream],
            )
          ).rows[0]?.v,
        );
      for (let step = 0; step < 160; step++) {
        const r = rand(10);
        if (r < 4) await cli();
        else await own();
        await live.settled();
        // The service's step: a head above the engine's version is another writer's.
        if (rand(3) !== 0 && (await headVersion()) > live.state.version) {
          const loads = store.loads;
          const tails = store.tails;
          await live.refresh();
          // Quiet (every command answered): only the tail was read, never the whole stream.
          expect(store.loads).toBe(loads);
          expect(store.tails).toBe(tails + 1);
          catchUps += 1;
          await expectSameAsRebuild(live, stream);
          // And it decides on: the next command's append continues the chain the tail ended.
          await own();
          await live.settled();
          await expectSameAsRebuild(live, stream);
        }
      }
      if ((await headVersion()) > live.state.version) await live.refresh();
      await expectSameAsRebuild(live, stream);
      // The projection rows the two writers wrote agree with the fold.
      expect(await store.readProjections(stream)).toEqual(live.projections());
      // The interleaving reached what it is meant to: many catch-ups, appends refused and rebuilt
      // whole, breakers tripped and state changes logged.
      expect(catchUps).toBeGreaterThan(20);
      expect(store.loads).toBeGreaterThan(1);
      expect(live.state.breakers.length).toBeGreaterThan(0);
      expect(live.state.stateLog.length).toBeGreaterThan(0);
      console.log(
        `seed ${seed}: ${live.state.version} events, ${catchUps} incremental catch-ups, ${store.loads - 1} whole rebuilds after a refused append, ${live.state.breakers.length} breakers, ${live.state.stateLog.length} state changes, ${live.state.orderIds.length} orders`,
      );
    },
  );

  it.each([
    ['an edited event', 'corrupted'],
    ['a deleted event', 'missing'],
  ])(
    'a tail with %s is not folded: refresh throws the IntegrityError a whole load throws',
    {
      timeout: 60_000,
    },
    async (what, kind) => {
      const stream = `catchup-tamper-${kind}`;
      const store = new CountingStore(db.pool);
      const live = await openAccount(stream, store);
      await live.submit({ ...baseOrder, clientOrderId: 'L1' }, T(1));
      const other = async (id: string) => {
        const cli = await TradingEngine.open(new PostgresEventStore(db.pool, { announce: true }), stream);
        await cli.submit({ ...baseOrder, clientOrderId: id }, T(2));
        await cli.settled();
      };
      // A clean catch-up first: the store verified the chain up to here.
      await other('C1');
      await live.refresh();
      expect(store.tails).toBe(1);
      const verifiedTo = live.state.version;
      await other('C2');
      await other('C3');
      const victim = verifiedTo + 1;
      const { rows: original } = await db.pool.query(
        'SELECT * FROM trading_events WHERE stream = $1 AND version = $2',
        [stream, victim],
      );
      if (what === 'an edited event')
        await tamper(
          `UPDATE trading_events SET data = jsonb_set(data, '{order,qty}', '5000') WHERE stream = $1 AND version = $2`,
          [stream, victim],
        );
      else await tamper('DELETE FROM trading_events WHERE stream = $1 AND version = $2', [stream, victim]);
      const expected = await new PostgresEventStore(db.pool).load(stream).then(
        () => null,
        (e: unknown) => e,
      );
      expect(expected).toBeInstanceOf(IntegrityError);
      const loads = store.loads;
      const error = await live.refresh().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(IntegrityError);
      const failure = (error as IntegrityError).failure;
      expect(failure).toEqual((expected as IntegrityError).failure);
      expect(failure).toMatchObject({ kind, firstBadVersion: victim });
      // The tail was refused, the whole stream loaded (its verification threw); nothing was folded
      // and the engine decides nothing until a rebuild succeeds.
      expect(store.refused).toBe(1);
      expect(store.loads).toBeGreaterThan(loads);
      expect(live.state.version).toBe(verifiedTo);
      expect(live.state.orders.C2).toBeUndefined();
      expect(live.decidesAtOnce()).toBe(false);
      await expect(live.submit({ ...baseOrder, clientOrderId: 'L2' }, T(3))).rejects.toThrow(IntegrityError);

      // The row put back as it was: the next refresh rebuilds whole (the last rebuild failed), and
      // the catch-up after it is incremental again.
      const row = original[0];
      await tamper(
        `INSERT INTO trading_events (event_id, stream, version, type, data, occurred_at, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (stream, version) DO UPDATE SET data = EXCLUDED.data`,
        [row.event_id, stream, victim, row.type, row.data, row.occurred_at, row.hash],
      );
      const before = { loads: store.loads, tails: store.tails };
      await live.refresh();
      expect(store.loads).toBe(before.loads + 1);
      await expectSameAsRebuild(live, stream);
      expect(live.state.orders.C3?.status).toBe('pending_new');
      await other('C4');
      await live.refresh();
      expect(store).toMatchObject({ loads: before.loads + 1, tails: before.tails + 1 });
      await expectSameAsRebuild(live, stream);
    },
  );
});

const baseOrder: OrderRequest = {
  clientOrderId: 'X',
  symbol: 'AAPL',
  side: 'buy',
  qty: 10,
  type: 'limit',
  limitPrice: 99,
  tif: 'day',
};
