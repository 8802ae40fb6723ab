/**
 * The plan's reconciliation cases (seed 003: TC-RC-001..015 but 006, 012 and 013, which are the
 * event store's hash chain and recovery) over the wire: scenarios run on the PostgreSQL event store
 * against the broker simulator process (its own, on a free port) through the live adapter; the
 * simulator's `diverge` knob makes the broker differ from us in the ways reconciliation must find.
 * Every case asserts the differences (kind, deterministic id, resolution), that they are events in
 * the store recorded once (a second reconcile and a rebuild from the store add nothing), and the
 * engine's state against the broker's.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildControlReport } from '../../lambdas/trading/control-report';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { differenceId } from '../../lambdas/trading/reconcile';
import type { ReconcileOutcome } from '../../lambdas/trading/reconcile-runner';
import { rebuild } from '../../lambdas/trading/state';
import type { ReconciliationDifference, TradingEvent } from '../../lambdas/trading/types';
import { type ReplayBrokerContext, type ReplayResult, runScenario } from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createWireBroker, type WireBroker } from '../../localstack/trading/wire-broker';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let store: PostgresEventStore;
let sim: SimProcess;

beforeAll(async () => {
  [db, sim] = await Promise.all([createTestSchema('trading_reconcile'), startSimProcess()]);
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
});

type Hook = (n: number, b: WireBroker, ctx: ReplayBrokerContext) => Promise<void>;

interface BrokerState {
  cash: number;
  positions: Record<string, { qty: number; avgPrice: number }>;
  orders: {
    id: string;
    client_order_id: string;
    status: string;
    filled_qty: string;
    filled_avg_price: string | null;
    created_at: string;
  }[];
  activities: { order_id: string; qty: string; price: string; transaction_time: string }[];
}

interface Run {
  result: ReplayResult;
  events: TradingEvent[];
  alerts: { severity: string; source: string; message: string }[];
  outcomes: ReconcileOutcome[];
  broker: BrokerState;
  engine: TradingEngine;
  stream: string;
}

const T0 = '2026-03-02T15:00:00Z';
const at = (s: number) => new Date(Date.parse(T0) + s * 1000).toISOString();
const buy = (id: string, symbol: string, qty: number, extra: Record<string, unknown> = {}) => ({
  submit: { clientOrderId: id, symbol, side: 'buy', qty, type: 'market', tif: 'day', ...extra },
});

/** Prices, B1 (AAPL) and M1 (MSFT) filled, then two reconciles (+10 s, +20 s) and what `extra` adds. */
function scenario(extra: { at: string; [k: string]: unknown }[] = [], options: Record<string, unknown> = {}) {
  return parseScenario({
    start: T0,
    account: { cash: 100_000 },
    broker: { fill: 'immediate', latencyMs: 0 },
    ...options,
    timeline: [
      { at: '+0s', prices: { AAPL: 100, MSFT: 400 } },
      { at: '+1s', ...buy('B1', 'AAPL', 10) },
      { at: '+2s', ...buy('M1', 'MSFT', 5) },
      { at: '+10s', reconcile: true },
      { at: '+20s', reconcile: true },
      ...extra,
    ],
  });
}

/** Runs a scenario over the wire; `hook(n)` runs at the n-th timeline reconcile (default: reconcile). */
async function replay(name: string, s: ReturnType<typeof parseScenario>, hook?: Hook): Promise<Run> {
  const stream = `rc-${name}`;
  const alerts: Run['alerts'] = [];
  const outcomes: ReconcileOutcome[] = [];
  let keyId = '';
  const result = await runScenario(s, {
    store,
    stream,
    onAlert: (a) => alerts.push(a),
    broker: async (ctx) => {
      const b = await createWireBroker(ctx, {
        url: sim.url,
        keepAccount: true,
        reconcileRetry: { baseMs: 5, maxWaitMs: 20 },
      });
      keyId = b.keyId;
      let n = 0;
      return {
        ...b,
        reconcile: async () => {
          n += 1;
          if (hook) await hook(n, b, ctx);
          else await b.reconcile?.();
          const o = b.lastReconcile();
          if (o) outcomes.push(o);
        },
      };
    },
  });
  const broker = (await sim.state(keyId)) as unknown as BrokerState;
  const engine = await TradingEngine.open(store, stream);
  return { result, events: await store.load(stream), alerts, outcomes, broker, engine, stream };
}

const recordedEvents = (r: Run) =>
  r.events.filter(
    (e): e is Extract<TradingEvent, { type: 'ReconciliationDifferenceRecorded' }> =>
      e.type === 'ReconciliationDifferenceRecorded',
  );
const differences = (r: Run): ReconciliationDifference[] => recordedEvents(r).map((e) => e.difference);
const trips = (r: Run) =>
  r.events
    .filter((e) => e.type === 'BreakerTripped')
    .map((e) => (e as { record: { breaker: string } }).record.breaker);
const reconcileOnce =
  (first: (b: WireBroker) => Promise<unknown>): Hook =>
  async (n, b) => {
    if (n === 1) await first(b);
    await b.reconcile?.();
  };

/** The engine's orders, positions and cash equal the broker's. */
function expectAgreesWithBroker(r: Run) {
  for (const o of r.broker.orders) {
    const local = r.engine.state.orders[o.client_order_id];
    expect(local?.filledQty, o.client_order_id).toBe(Number(o.filled_qty));
    expect(local?.status, o.client_order_id).toBe(o.status);
  }
  const positions = Object.fromEntries(
    Object.entries(r.engine.state.positions)
      .filter(([, p]) => p.qty !== 0)
      .map(([s, p]) => [s, p.qty]),
  );
  expect(positions).toEqual(
    Object.fromEntries(Object.entries(r.broker.positions).map(([s, p]) => [s, p.qty])),
  );
  expect(r.engine.state.cash).toBeCloseTo(r.broker.cash, 6);
}

/** Reconciliation is idempotent across a rebuild: the fold of the stored events holds each difference once. */
function expectRecordedOnce(r: Run) {
  const ids = differences(r).map((d) => d.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(Object.keys(rebuild(r.events).reconciliation).sort()).toEqual([...ids].sort());
  expect(r.result.reconciliation).toHaveLength(ids.length);
}

describe('4.5.1 state reconciliation (TC-RC-001..005)', () => {
  it('TC-RC-001: portfolio state: with nothing diverged the engine and the broker agree and no difference is recorded', async () => {
    const r = await replay('001', scenario());
    expect(r.outcomes.map((o) => o.status)).toEqual(['complete', 'complete']);
    expect(r.outcomes.flatMap((o) => (o.status === 'complete' ? o.found : []))).toEqual([]);
    expect(r.result.reconciliation).toEqual([]);
    expect(recordedEvents(r)).toEqual([]);
    expectAgreesWithBroker(r);
    expect(r.result.positions).toEqual({ AAPL: { qty: 10, avgPrice: 100 }, MSFT: { qty: 5, avgPrice: 400 } });
    expect(r.result.account.cash).toBe(97_000);
  });

  it('TC-RC-002: positions: a broker position we were never told about is a dispute with a deterministic id, recorded once, MSFT blocked', async () => {
    const r = await replay(
      '002',
      scenario([
        { at: '+21s', ...buy('B2', 'AAPL', 1) },
        { at: '+22s', ...buy('M2', 'MSFT', 1) },
      ]),
      reconcileOnce((b) =>
        sim.control(b.keyId, { diverge: { position: { symbol: 'MSFT', qty: 8, avgPrice: 400 } } }),
      ),
    );
    const id = differenceId('position', 'MSFT', { local: 5, remote: 8 });
    expect(differences(r)).toEqual([
      {
        id,
        kind: 'position',
        key: 'MSFT',
        detail: 'MSFT: we hold 5, the broker 8',
        resolution: 'manual_intervention',
        scope: 'MSFT',
        broker: { qty: 8, avgPrice: 400 },
      },
    ]);
    expect(recordedEvents(r)[0]?.at).toBe(at(10));
    // The second reconcile found it again (same id) and recorded nothing.
    const second = r.outcomes[1];
    expect(second?.status === 'complete' && second.found.map((d) => d.id)).toEqual([id]);
    expect(second?.status === 'complete' && second.recorded).toEqual([]);
    expect(trips(r)).toEqual(['reconcile:MSFT']);
    expect(r.result.orders.M2?.denial?.code).toBe('SYMBOL_HALTED');
    expect(r.result.orders.B2).toMatchObject({ status: 'filled', filledQty: 1 });
    expectRecordedOnce(r);
  });

  it('TC-RC-003: balance: cash beyond the tolerance is an account dispute; within the tolerance it is not', async () => {
    const r = await replay(
      '003',
      scenario([{ at: '+21s', ...buy('B2', 'AAPL', 1) }]),
      reconcileOnce((b) => sim.control(b.keyId, { diverge: { cash: -250 } })),
    );
    expect(differences(r).map(({ id, kind, detail, scope }) => ({ id, kind, detail, scope }))).toEqual([
      {
        id: differenceId('balance', 'account', { local: 97_000, remote: 96_750 }),
        kind: 'balance',
        detail: "cash: ours 97000, the broker's 96750",
        scope: 'account',
      },
    ]);
    expect(trips(r)).toEqual(['reconcile:account']);
    expect(r.result.orders.B2?.denial?.code).toBe('TRADING_HALTED');
    expectRecordedOnce(r);

    const small = await replay(
      '003-tolerance',
      scenario(),
      reconcileOnce((b) => sim.control(b.keyId, { diverge: { cash: -0.005 } })),
    );
    expect(recordedEvents(small)).toEqual([]);
    expect(trips(small)).toEqual([]);
  });

  it('TC-RC-004: order status: an order the broker ended without a frame is booked from the broker (its end state), once', async () => {
    const s = parseScenario({
      start: T0,
      account: { cash: 100_000 },
      broker: { fill: 'none', latencyMs: 0 },
      timeline: [
        { at: '+0s', prices: { AAPL: 100 } },
        { at: '+1s', ...buy('L1', 'AAPL', 10, { type: 'limit', limitPrice: 95 }) },
        { at: '+10s', reconcile: true },
        { at: '+20s', reconcile: true },
      ],
    });
    const r = await replay(
      '004',
      s,
      reconcileOnce((b) => sim.control(b.keyId, { expire: ['L1'] })),
    );
    expect(differences(r)).toEqual([
      {
        id: differenceId('order_status', 'L1', { broker: 'expired', local: 'new' }),
        kind: 'order_status',
        key: 'L1',
        detail: 'L1: the broker says expired, we had new',
        resolution: 'book_from_broker',
        scope: 'AAPL',
      },
    ]);
    expect(r.result.orders.L1?.status).toBe('expired');
    expect(r.events.filter((e) => e.type === 'OrderExpired')).toHaveLength(1);
    expect(trips(r)).toEqual([]); // booked from the broker: nothing blocked
    expectAgreesWithBroker(r);
    expectRecordedOnce(r);
  });

  it("TC-RC-005: trade history: the broker's executions (FILL activities) agree with our fills; a trade the broker corrected afterwards is a dispute", async () => {
    // A lost fill frame: booked from the broker's record; the trade history then agrees.
    const lost = parseScenario({
      start: T0,
      account: { cash: 100_000 },
      broker: { fill: 'none', latencyMs: 0 },
      timeline: [
        { at: '+0s', prices: { AAPL: 100 } },
        { at: '+1s', ...buy('L1', 'AAPL', 10, { type: 'limit', limitPrice: 99 }) },
        // Both fill frames are swallowed (one fault per frame).
        { at: '+2s', broker: { fault: 'lost_fill', clientOrderId: 'L1' } },
        { at: '+2s', broker: { fault: 'lost_fill', clientOrderId: 'L1' } },
        { at: '+3s', fill: { clientOrderId: 'L1', qty: 4, price: 99 } },
        { at: '+4s', fill: { clientOrderId: 'L1', qty: 6, price: 98 } },
        { at: '+10s', reconcile: true },
        { at: '+20s', reconcile: true },
      ],
    });
    const a = await replay('005-lost', lost);
    expect(a.broker.activities.map((x) => [x.qty, x.price])).toEqual([
      ['4', '99'],
      ['6', '98'],
    ]);
    expect(differences(a).map((d) => [d.kind, d.resolution])).toEqual([['missing_fill', 'book_from_broker']]);
    expect(a.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10, avgFillPrice: 98.4 });
    expectAgreesWithBroker(a);
    expectRecordedOnce(a);

    // The activities endpoint in Alpaca's shape, paged.
    const keyId = `T-act-${Date.now()}`;
    const { secret } = await sim.account({ keyId, cash: 10_000 });
    await sim.control(keyId, { prices: { AAPL: 100 } });
    const headers = { 'APCA-API-KEY-ID': keyId, 'APCA-API-SECRET-KEY': secret };
    for (const cid of ['X1', 'X2', 'X3'])
      await sim.submitOrder(
        { keyId, secret },
        { client_order_id: cid, symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' },
      );
    const page = async (q: string) =>
      (await (
        await fetch(`${sim.url}/v2/account/activities?activity_types=FILL&${q}`, { headers })
      ).json()) as {
        id: string;
        activity_type: string;
        qty: string;
        order_status: string;
      }[];
    const first = await page('direction=asc&page_size=2');
    expect(first.map((x) => [x.activity_type, x.qty, x.order_status])).toEqual([
      ['FILL', '1', 'filled'],
      ['FILL', '1', 'filled'],
    ]);
    const rest = await page(`direction=asc&page_size=2&page_token=${encodeURIComponent(first[1]?.id ?? '')}`);
    expect(rest).toHaveLength(1);
    expect((await page('')).map((x) => x.id)).toEqual([...first, ...rest].map((x) => x.id).reverse());

    // A trade correction: the same quantity at another price; the cash follows at the broker.
    const r = await replay(
      '005-corrected',
      scenario(),
      reconcileOnce((b) =>
        sim.control(b.keyId, { diverge: { correctFill: { clientOrderId: 'B1', price: 101 } } }),
      ),
    );
    expect(differences(r).map((d) => [d.kind, d.key, d.detail, d.scope])).toEqual([
      ['balance', 'account', "cash: ours 97000, the broker's 96990", 'account'],
      ['trade_history', 'B1', "B1: we booked 10 for 1000, the broker's 1 execution(s) for 1010", 'AAPL'],
    ]);
    expect(trips(r)).toEqual(['reconcile:account', 'reconcile:AAPL']);
    expectRecordedOnce(r);
  });
});

describe('4.5.2 data consistency (TC-RC-007..010)', () => {
  it('TC-RC-007: telemetry: a dispute found by two runs raises its breaker, alert and state change once each', async () => {
    const r = await replay(
      '007',
      scenario([{ at: '+30s', reconcile: true }]),
      reconcileOnce((b) =>
        sim.control(b.keyId, { diverge: { position: { symbol: 'MSFT', qty: 6, avgPrice: 400 } } }),
      ),
    );
    expect(r.outcomes).toHaveLength(3);
    expect(trips(r)).toEqual(['reconcile:MSFT']);
    const alertEvents = r.events.filter((e) => e.type === 'AlertRaised' && e.source === 'reconcile:MSFT');
    expect(alertEvents).toHaveLength(1);
    expect(r.alerts.filter((a) => a.source === 'reconcile:MSFT')).toHaveLength(1);
    expect(r.result.tradingState.filter((s) => s.scope === 'MSFT')).toHaveLength(1);
    // The alert the operator sees names the difference the event store holds.
    const [d] = differences(r);
    expect(alertEvents[0]?.type === 'AlertRaised' && alertEvents[0].message).toContain(d?.detail ?? '?');
    expect(r.result.breakers[0]?.breaker).toBe('reconcile:MSFT');
  });

  it('TC-RC-008: runtime settings: the dispute trip, the engine and the control report agree on the limits version in force', async () => {
    const r = await replay(
      '008',
      scenario([], { limits: { maxOrderNotional: 50_000 } }),
      async (n, b, ctx) => {
        if (n === 1) {
          await ctx.engine().updateLimits({ maxOrderNotional: 60_000 }, at(10));
          await sim.control(b.keyId, { diverge: { cash: 100 } });
        }
        await b.reconcile?.();
      },
    );
    const trip = r.events.find((e) => e.type === 'BreakerTripped');
    expect(trip?.type === 'BreakerTripped' && trip.record.limitsVersion).toBe(2);
    expect(r.engine.health().limitsVersion).toBe(2);
    const report = buildControlReport(r.stream, '2026-03-02', r.events);
    expect(report.limits.map((l) => l.version)).toEqual([1, 2]);
    expect(report.limits.at(-1)?.limits).toMatchObject({ maxOrderNotional: 60_000 });
    expect(report.breakerTrips.map((t) => [t.breaker, t.limitsVersion])).toEqual([['reconcile:account', 2]]);
  });

  it("TC-RC-009: risk metrics: exposure recomputed from the broker's positions equals the engine's and the rebuilt fold's, after an accepted correction too", async () => {
    const r = await replay('009', scenario([{ at: '+30s', reconcile: true }]), async (n, b, ctx) => {
      if (n === 1)
        await sim.control(b.keyId, { diverge: { position: { symbol: 'AAPL', qty: 12, avgPrice: 100 } } });
      if (n === 2) {
        const [d] = Object.values(ctx.engine().state.reconciliation);
        await ctx
          .engine()
          .resolveReconciliation(
            d?.id ?? '',
            'ops:risk',
            'accept_broker',
            new Date(ctx.clock.now).toISOString(),
          );
      }
      await b.reconcile?.();
    });
    const prices: Record<string, number> = { AAPL: 100, MSFT: 400 };
    const brokerGross = Object.entries(r.broker.positions).reduce(
      (sum, [s, p]) => sum + Math.abs(p.qty) * (prices[s] ?? 0),
      0,
    );
    expect(brokerGross).toBe(12 * 100 + 5 * 400);
    expect(r.engine.metric('grossExposure')).toBe(brokerGross);
    const rebuilt = await TradingEngine.open(store, r.stream);
    expect(rebuilt.metric('grossExposure')).toBe(brokerGross);
    expect(rebuilt.metric('leverage')).toBe(r.engine.metric('leverage'));
    // Resolved before the second run: it and the third find nothing.
    expect(r.outcomes.map((o) => o.status === 'complete' && o.disputes.length)).toEqual([1, 0, 0]);
    expect(r.engine.health().activeBreakers).toEqual([]);
  });

  it("TC-RC-010: timestamps: event times never go back, the broker's execution and order times map to ours, differences carry the run's time", async () => {
    const r = await replay(
      '010',
      scenario(),
      reconcileOnce((b) => sim.control(b.keyId, { diverge: { cash: 1 } })),
    );
    const times = r.events.map((e) => Date.parse(e.at));
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1] as number);
    const brokerIdOf = new Map(r.broker.orders.map((o) => [o.id, o.client_order_id]));
    for (const x of r.broker.activities) {
      const cid = brokerIdOf.get(x.order_id) as string;
      const fill = r.events.find((e) => e.type === 'OrderFilled' && e.clientOrderId === cid);
      // Booked at the broker's transaction time (the replay's clock is the broker's) and never before it.
      expect(fill?.at).toBe(x.transaction_time);
    }
    for (const o of r.broker.orders)
      expect(r.engine.state.orders[o.client_order_id]?.submittedAt).toBe(o.created_at);
    expect(recordedEvents(r).map((e) => e.at)).toEqual([at(10)]);
    const report = buildControlReport(r.stream, '2026-03-02', r.events);
    expect(report.reconciliation.map((x) => x.at)).toEqual([at(10)]);
  });
});

describe('4.5.3 reconciliation error handling (TC-RC-011, 014, 015)', () => {
  it('TC-RC-011: dispute resolution: in one run the broker wins on fills (booked), the position left over is a dispute whose breaker cannot be reset while it is open', async () => {
    const s = parseScenario({
      start: T0,
      account: { cash: 100_000 },
      broker: { fill: 'none', latencyMs: 0 },
      timeline: [
        { at: '+0s', prices: { AAPL: 100, MSFT: 400 } },
        { at: '+1s', ...buy('L1', 'AAPL', 10, { type: 'limit', limitPrice: 99 }) },
        { at: '+2s', broker: { fault: 'lost_fill', clientOrderId: 'L1' } },
        { at: '+3s', fill: { clientOrderId: 'L1', qty: 10, price: 99 } },
        { at: '+10s', reconcile: true },
        { at: '+11s', reset: { breaker: 'reconcile:MSFT', by: 'ops:bob' } },
        { at: '+20s', reconcile: true },
      ],
    });
    const r = await replay(
      '011',
      s,
      reconcileOnce((b) =>
        sim.control(b.keyId, { diverge: { position: { symbol: 'MSFT', qty: 3, avgPrice: 410 } } }),
      ),
    );
    expect(differences(r).map((d) => [d.kind, d.key, d.resolution])).toEqual([
      ['missing_fill', 'L1', 'book_from_broker'],
      ['position', 'MSFT', 'manual_intervention'],
    ]);
    expect(r.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(trips(r)).toEqual(['reconcile:MSFT']); // the booked fill blocks nothing
    const refused = r.events.find((e) => e.type === 'BreakerResetRefused');
    expect(refused?.type === 'BreakerResetRefused' && [refused.by, refused.reason]).toEqual([
      'ops:bob',
      expect.stringContaining('1 reconciliation dispute(s) of MSFT are not resolved'),
    ]);
    expect(r.engine.health().activeBreakers).toEqual(['reconcile:MSFT']);
    expect(r.result.reconciliation).toEqual([
      {
        kind: 'missing_fill',
        detail: 'L1: the broker filled 10 @ 99, we had booked 0',
        resolution: 'book_from_broker',
      },
      { kind: 'position', detail: 'MSFT: we hold 0, the broker 3', resolution: 'manual_intervention' },
    ]);
    expectRecordedOnce(r);
  });

  it('TC-RC-014: retry: a failed view fetch (500, 429) is retried with backoff; a run that cannot read the view applies nothing and says so', async () => {
    const s = parseScenario({
      start: T0,
      account: { cash: 100_000 },
      broker: { fill: 'none', latencyMs: 0 },
      timeline: [
        { at: '+0s', prices: { AAPL: 100 } },
        { at: '+1s', ...buy('L1', 'AAPL', 10, { type: 'limit', limitPrice: 99 }) },
        { at: '+2s', broker: { fault: 'lost_fill', clientOrderId: 'L1' } },
        { at: '+3s', fill: { clientOrderId: 'L1', qty: 10, price: 99 } },
        { at: '+10s', reconcile: true },
        { at: '+20s', reconcile: true },
      ],
    });
    let filledAfterFailedRun: number | undefined;
    const r = await replay('014', s, async (n, b, ctx) => {
      if (n === 1) await sim.control(b.keyId, { fault: { kind: 'maintenance', count: 10 } });
      if (n === 2) {
        filledAfterFailedRun = ctx.engine().state.orders.L1?.filledQty;
        await sim.control(b.keyId, { clearFaults: true });
        await sim.control(b.keyId, { fault: { kind: 'server_error', count: 1 } });
        await sim.control(b.keyId, { fault: { kind: 'http429', count: 1 } });
      }
      await b.reconcile?.();
      if (n === 1) await sim.control(b.keyId, { clearFaults: true });
    });
    const [failed, retried] = r.outcomes;
    expect(failed).toMatchObject({ status: 'incomplete', attempts: 4 });
    expect(failed?.status === 'incomplete' && failed.reason).toContain('503');
    expect(filledAfterFailedRun).toBe(0); // nothing applied half-way
    expect(
      r.events.filter((e) => e.type === 'AlertRaised' && e.source === 'reconcile').map((e) => e.at),
    ).toEqual([at(10)]);
    expect(retried).toMatchObject({ status: 'complete', attempts: 3 });
    expect(differences(r).map((d) => d.kind)).toEqual(['missing_fill']);
    expect(recordedEvents(r)[0]?.at).toBe(at(20));
    expect(r.result.orders.L1).toMatchObject({ status: 'filled', filledQty: 10 });
    expectRecordedOnce(r);
  });

  it('TC-RC-015: manual intervention: an operator takes the broker position over, recorded with who; the symbol trades again and nothing is found twice', async () => {
    let resolveOutcomes: { ok: boolean; detail: string }[] = [];
    const r = await replay(
      '015',
      scenario([
        { at: '+21s', ...buy('M2', 'MSFT', 1) },
        { at: '+30s', reconcile: true },
      ]),
      async (n, b, ctx) => {
        if (n === 1)
          await sim.control(b.keyId, { diverge: { position: { symbol: 'MSFT', qty: 7, avgPrice: 400 } } });
        if (n === 2) {
          const id = differenceId('position', 'MSFT', { local: 5, remote: 7 });
          const when = new Date(ctx.clock.now).toISOString();
          const e = ctx.engine();
          resolveOutcomes = [
            await e.resolveReconciliation('nope', 'ops:alice', 'dismiss', when),
            await e.resolveReconciliation(id, 'ops:alice', 'accept_broker', when, 'broker statement checked'),
            await e.resolveReconciliation(id, 'ops:carol', 'dismiss', when),
          ];
        }
        await b.reconcile?.();
      },
    );
    expect(resolveOutcomes.map((o) => o.ok)).toEqual([false, true, false]);
    expect(resolveOutcomes[2]?.detail).toContain('resolved by ops:alice');
    const resolved = r.events.filter((e) => e.type === 'ReconciliationDifferenceResolved');
    expect(resolved).toEqual([
      {
        type: 'ReconciliationDifferenceResolved',
        at: at(20),
        differenceId: differenceId('position', 'MSFT', { local: 5, remote: 7 }),
        by: 'ops:alice',
        action: 'accept_broker',
        note: 'broker statement checked',
      },
    ]);
    expect(r.result.breakers.map((b) => [b.breaker, b.resetBy])).toEqual([['reconcile:MSFT', 'ops:alice']]);
    expect(r.result.orders.M2).toMatchObject({ status: 'filled', filledQty: 1 });
    expect(r.result.positions.MSFT?.qty).toBe(8);
    expect(r.outcomes.map((o) => o.status === 'complete' && o.found.length)).toEqual([1, 0, 0]);
    expectAgreesWithBroker(r);
    expectRecordedOnce(r);
    const report = buildControlReport(r.stream, '2026-03-02', r.events);
    expect(report.reconciliation).toEqual([
      expect.objectContaining({
        kind: 'position',
        scope: 'MSFT',
        resolved: { at: at(20), by: 'ops:alice', action: 'accept_broker', note: 'broker statement checked' },
      }),
    ]);
    expect(report.resets).toContainEqual(
      expect.objectContaining({ breaker: 'reconcile:MSFT', by: 'ops:alice', outcome: 'reset' }),
    );
  });
});

describe('trading reconcile (CLI) against the PostgreSQL event store and the simulator', () => {
  it('TC-RC-015: finds a dispute once across runs (processes), an operator resolves it by id with --by, the next run is clean and the report shows who', {
    timeout: 240_000,
  }, async () => {
    const cliDb = await createTestSchema('trading_reconcile_cli', { migrate: false });
    try {
      const keyId = `T-cli-${randomBytes(4).toString('hex')}`;
      await sim.account({
        keyId,
        secret: 'cli-secret',
        cash: 100_000,
        positions: { MSFT: { qty: 3, avgPrice: 400 } },
      });
      const env = {
        ...process.env,
        PG_SCHEMA: cliDb.schema,
        DATABASE_URL: cliDb.url,
        BROKER_BASE_URL: sim.url,
        BROKER_KEY_ID: keyId,
        BROKER_SECRET_KEY: 'cli-secret',
      };
      const cli = async (...args: string[]) => {
        try {
          const r = await promisify(execFile)(
            'node_modules/.bin/tsx',
            ['bin/pipeline.ts', 'trading', ...args, '--account', 'rc'],
            {
              env,
              timeout: 120_000,
            },
          );
          return { code: 0, stdout: r.stdout, stderr: r.stderr };
        } catch (error) {
          const e = error as { code?: number; stdout?: string; stderr?: string };
          return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
        }
      };
      expect((await cli('init', '--cash', '100000')).code).toBe(0);
      const first = await cli('reconcile', '--json');
      expect(first.code).toBe(1);
      const a = JSON.parse(first.stdout) as {
        status: string;
        found: ReconciliationDifference[];
        recorded: unknown[];
      };
      const id = differenceId('position', 'MSFT', { local: 0, remote: 3 });
      expect(a.status).toBe('complete');
      expect(a.found.map((d) => [d.id, d.kind, d.detail])).toEqual([
        [id, 'position', 'MSFT: we hold 0, the broker 3'],
      ]);
      expect(a.recorded).toHaveLength(1);
      const second = await cli('reconcile');
      expect(second.code).toBe(1);
      expect(second.stdout).toContain('1 difference(s), 0 new, 1 dispute(s) open');
      expect((await cli('reconcile', '--resolve', id)).code).toBe(2); // --by is required
      const resolved = await cli(
        'reconcile',
        '--resolve',
        id,
        '--by',
        'ops:dana',
        '--action',
        'accept_broker',
      );
      expect(resolved.stdout).toContain(`difference ${id} (position) resolved by ops:dana: accept_broker`);
      expect(resolved.code).toBe(0);
      const clean = await cli('reconcile');
      expect(clean.stdout).toContain('0 difference(s), 0 new, 0 dispute(s) open');
      expect(clean.code).toBe(0);
      const events = await new PostgresEventStore(cliDb.pool).load('account-rc');
      expect(events.filter((e) => e.type === 'ReconciliationDifferenceRecorded')).toHaveLength(1);
      const date = events.at(-1)?.at.slice(0, 10) as string;
      const report = JSON.parse((await cli('report', '--date', date, '--json')).stdout) as ReturnType<
        typeof buildControlReport
      >;
      expect(report.reconciliation).toEqual([
        expect.objectContaining({
          id,
          kind: 'position',
          resolved: expect.objectContaining({ by: 'ops:dana', action: 'accept_broker' }),
        }),
      ]);
      expect(report.resets).toContainEqual(
        expect.objectContaining({ breaker: 'reconcile:MSFT', by: 'ops:dana' }),
      );
    } finally {
      await cliDb.drop();
    }
  });
});
