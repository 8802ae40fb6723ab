/**
 * The trading bench's broker figures (issue 14), printed by `npm run bench -- trading` after the
 * core's: the path production uses (the engine on the PostgreSQL event store as the trading login
 * role, `dispatchLive` over the real LiveBroker, HTTP and the trade-updates WebSocket) against a
 * broker simulator process of the bench's own (so other users of the stage's simulator do not
 * disturb the figures). Prints; asserts no timing (a wrong outcome, e.g. a reject that did not trip
 * the breaker, fails the bench: a figure of the wrong path is worth nothing).
 *
 * - order flow excluding the broker round trip: our path is the risk check and append (submit), the
 *   outbox dispatch (reading the command, marking it delivered) and the report application (the
 *   ack's and the fill's commits); the broker round trip printed apart (HTTP submit; submit to the
 *   fill frame over the WebSocket);
 * - error propagation from the adapter to the risk manager: a broker reject (403) and an
 *   authentication failure (401), from the answer read to the engine's state reflecting it (order
 *   rejected and the reject breaker tripped; `broker:auth` tripped), decided and committed;
 * - recovery after a broker stream disconnect (the simulator drops it): until the adapter is ready
 *   again with its REST snapshot applied, with 0 and 200 open orders;
 * - reconciliation of 10,000 orders and 1,000 positions: the broker view fetched (paged) and the
 *   differences computed, apart and in total;
 * - fault runs (the load scenario, reduced): fills lost and doubled counted.
 */
import { BrokerOrderSchema, type BrokerTrace, LiveBroker } from '../../lambdas/trading/live-broker';
import { balanceDifferences, orderDifferences } from '../../lambdas/trading/reconcile';
import type { BrokerReport, OrderRequest } from '../../lambdas/trading/types';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { engineNow, LiveAccount, tradingSchema } from '../support/trading-live';
import { loadTable, runTradingLoad } from '../support/trading-load';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** One figure's line; `target` (ms, on p99 unless `on` says p50/max) gives met / not met. */
function line(label: string, ms: number[], target?: { ms: number; on?: 'p50' | 'p99' | 'max' }): void {
  const s = [...ms].sort((a, b) => a - b);
  const p50 = percentile(s, 50);
  const p99 = percentile(s, 99);
  const max = s[s.length - 1] ?? Number.NaN;
  const judged = target ? { p50, p99, max }[target.on ?? 'p99'] : 0;
  const verdict = target
    ? `  [target ${target.on ?? 'p99'} < ${target.ms} ms: ${judged < target.ms ? 'met' : 'not met'}]`
    : '';
  console.log(
    `  ${label.padEnd(50)} p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  max ${max.toFixed(2)} ms  (n=${s.length})${verdict}`,
  );
}

const PRICE = 100;

export async function orderFlow(
  sim: SimProcess,
  schema: Awaited<ReturnType<typeof tradingSchema>>,
): Promise<void> {
  const traces: BrokerTrace[] = [];
  const reports: { report: BrokerReport; ms: number; durable: number }[] = [];
  const account = await LiveAccount.open({
    store: schema.store,
    stream: `bench-flow-${Math.random().toString(36).slice(2, 8)}`,
    sim,
    cash: 1e9,
    prices: { AAA: PRICE },
    worker: false,
    onTrace: (t) => traces.push(t),
    onReport: (report, started, _decided, durable) =>
      reports.push({ report, ms: durable - started, durable }),
  });
  const submit: number[] = [];
  const outbox: number[] = [];
  const applied: number[] = [];
  const ours: number[] = [];
  const http: number[] = [];
  const frame: number[] = [];
  const total: number[] = [];
  const commit: number[] = [];
  try {
    for (let i = 0; i < 330; i++) {
      const cid = `F${i}`;
      traces.length = 0;
      reports.length = 0;
      const t0 = performance.now();
      await account.engine.submit(
        {
          clientOrderId: cid,
          symbol: 'AAA',
          side: i % 2 ? 'sell' : 'buy',
          qty: 1,
          type: 'market',
          tif: 'day',
        },
        engineNow(),
      );
      const t1 = performance.now();
      let sending = 0;
      await account.dispatch({
        send: async (c) => {
          const s0 = performance.now();
          await account.live.send(c);
          sending += performance.now() - s0;
        },
      });
      const t2 = performance.now();
      // The fill arrives over the stream (the simulator fills a market order on arrival).
      for (let k = 0; k < 2_000 && account.engine.state.orders[cid]?.status !== 'filled'; k++)
        await new Promise((r) => setTimeout(r, 1));
      await account.engine.settled();
      const filledAt = reports.find((r) => r.report.kind === 'fill')?.durable ?? Number.NaN;
      const post = traces.find((t) => t.kind === 'http' && t.method === 'POST');
      const fillFrame = traces.find((t) => t.kind === 'frame' && t.event === 'fill');
      if (
        account.engine.state.orders[cid]?.status !== 'filled' ||
        !post ||
        post.kind !== 'http' ||
        !fillFrame
      )
        throw new Error(
          `order ${cid} did not go the whole way: ${JSON.stringify(account.engine.state.orders[cid])}`,
        );
      // The machine's commit floor, measured between the orders (same conditions).
      const floor = await schema.commit();
      if (i < 30) continue; // warm-up
      // Each report's commit wait, from the gate handing it over to its commit (overlapping waits
      // counted once: reports decided together share a commit).
      const spans = reports.map((r) => [r.durable - r.ms, r.durable] as const).sort((a, b) => a[0] - b[0]);
      let reportMs = 0;
      let reach = Number.NEGATIVE_INFINITY;
      for (const [from, to] of spans) {
        reportMs += Math.max(0, to - Math.max(from, reach));
        reach = Math.max(reach, to);
      }
      const brokerMs = (fillFrame as { at: number }).at - post.startedAt;
      submit.push(t1 - t0);
      outbox.push(t2 - t1 - sending);
      applied.push(reportMs);
      // Ours: the whole order, submit called -> fill committed, less the broker's part (our POST
      // sent -> the fill frame received). What the order waits on and the broker does not.
      ours.push(filledAt - t0 - brokerMs);
      http.push(post.endedAt - post.startedAt);
      frame.push(brokerMs);
      total.push(filledAt - t0);
      commit.push(floor);
    }
  } finally {
    await account.close();
  }
  const p = (ms: number[], q: number) =>
    percentile(
      [...ms].sort((a, b) => a - b),
      q,
    );
  console.log('order flow over the live adapter, one order at a time (submit -> filled):');
  line('ours: submit -> fill committed, less the broker', ours, { ms: 10 });
  line('  submit (risk check + append, committed)', submit);
  line('  outbox dispatch (read, mark delivered; after the send)', outbox);
  line('  report application (ack and fill, commit waits)', applied);
  line('broker round trip: HTTP submit', http);
  line('broker round trip: submit -> fill frame (WebSocket)', frame);
  line('end to end: submit -> fill committed', total);
  line('for scale: one single-row INSERT, committed', commit);
  console.log(
    `  ours in commits of this run: p50 ${(p(ours, 50) / p(commit, 50)).toFixed(2)}x the commit p50, p99 ${(p(ours, 99) / p(commit, 99)).toFixed(2)}x the commit p99; ours p99/p50 ${(p(ours, 99) / p(ours, 50)).toFixed(2)}`,
  );
}

async function errorPropagation(
  sim: SimProcess,
  schema: Awaited<ReturnType<typeof tradingSchema>>,
): Promise<void> {
  const rejectDecided: number[] = [];
  const rejectDurable: number[] = [];
  const authDecided: number[] = [];
  const authDurable: number[] = [];
  const order = (cid: string): OrderRequest => ({
    clientOrderId: cid,
    symbol: 'AAA',
    side: 'buy',
    qty: 1,
    type: 'market',
    tif: 'day',
  });
  for (let i = 0; i < 60; i++) {
    const auth = i % 2 === 1;
    const traces: BrokerTrace[] = [];
    let reject: { decided: number; durable: number } | undefined;
    let trip: { decided: number; durable: number } | undefined;
    const account = await LiveAccount.open({
      store: schema.store,
      stream: `bench-error-${i}`,
      sim,
      cash: 1e9,
      prices: { AAA: PRICE },
      worker: false,
      // The risk manager's reaction to broker rejects: the first one halts the account.
      limits: {
        customBreakers: [{ name: 'broker-rejects', metric: 'brokerRejects', above: 0, action: 'halted' }],
      },
      onTrace: (t) => traces.push(t),
      onReport: (r, _s, decided, durable) => {
        if (r.kind === 'rejected') reject = { decided, durable };
      },
      onAuthTrip: (decided, durable) => {
        trip = { decided, durable };
      },
    });
    try {
      await sim.control(account.keyId, {
        fault: auth ? { kind: 'auth', count: 1 } : { kind: 'reject', reason: 'buying_power', count: 1 },
      });
      await account.engine.submit(order(`E${i}`), engineNow());
      await account.dispatch();
      const answer = traces.find((t) => t.kind === 'http' && (t.status === 401 || t.status === 403));
      const breaker = auth ? 'broker:auth' : 'custom:broker-rejects';
      const tripped = account.engine.state.activeBreakers.some(
        (id) => account.engine.state.breakers[id]?.breaker === breaker,
      );
      const next = await account.engine.submit(order(`N${i}`), engineNow());
      const reached = auth ? trip : reject;
      if (answer?.kind !== 'http' || !reached || !tripped || next.denial?.code !== 'TRADING_HALTED')
        throw new Error(
          `the ${auth ? 'auth failure' : 'reject'} did not reach the risk manager: ${JSON.stringify({ tripped, next })}`,
        );
      if (i < 4) continue;
      (auth ? authDecided : rejectDecided).push(reached.decided - answer.endedAt);
      (auth ? authDurable : rejectDurable).push(reached.durable - answer.endedAt);
    } finally {
      await account.close();
    }
  }
  console.log('error propagation, adapter -> risk manager (answer read -> engine state reflects it):');
  line('broker reject (403) -> order rejected + breaker, decided', rejectDecided, { ms: 5 });
  line('  same, committed', rejectDurable);
  line('auth failure (401) -> broker:auth tripped, decided', authDecided, { ms: 5 });
  line('  same, committed', authDurable);
}

async function recovery(sim: SimProcess, schema: Awaited<ReturnType<typeof tradingSchema>>): Promise<void> {
  console.log(
    'recovery after a broker stream disconnect (dropped by the broker -> ready, snapshot applied):',
  );
  for (const open of [0, 200]) {
    let applied: (() => void) | null = null;
    const account = await LiveAccount.open({
      store: schema.store,
      stream: `bench-recovery-${open}`,
      sim,
      cash: 1e9,
      prices: { AAA: PRICE },
      worker: false,
      onIncident: (i) => {
        if (i.stream === 'snapshot_applied') applied?.();
      },
    });
    const samples: number[] = [];
    try {
      if (open > 0) {
        await account.engine.submitPortfolio(
          Array.from({ length: open }, (_, k) => ({
            clientOrderId: `R${k}`,
            symbol: 'AAA',
            side: 'buy' as const,
            qty: 1,
            type: 'limit' as const,
            limitPrice: PRICE / 2,
            tif: 'gtc' as const,
          })),
          engineNow(),
        );
        await account.dispatch();
        await account.settle();
      }
      for (let k = 0; k < 8; k++) {
        const done = new Promise<void>((resolve) => {
          applied = resolve;
        });
        const t0 = performance.now();
        await sim.control(account.keyId, { fault: { kind: 'disconnect' } });
        await done;
        if (!account.live.isReady()) throw new Error('snapshot applied but the adapter is not ready');
        samples.push(performance.now() - t0);
      }
    } finally {
      await account.close();
    }
    line(`${open} open orders resolved by the snapshot`, samples, { ms: 5_000, on: 'max' });
  }
}

async function reconciliation(
  sim: SimProcess,
  schema: Awaited<ReturnType<typeof tradingSchema>>,
): Promise<void> {
  const ORDERS = 10_000;
  const POSITIONS = 1_000;
  const symbols = Array.from({ length: POSITIONS }, (_, i) => `P${String(i).padStart(4, '0')}`);
  const prices = Object.fromEntries(symbols.map((s) => [s, PRICE]));
  const T = Date.parse('2026-03-02T15:00:00Z');
  const { keyId, secret } = await sim.account({
    cash: 1e9,
    rateLimitPerMinute: 1_000_000,
    clock: new Date(T).toISOString(),
  });
  await sim.control(keyId, { prices });
  const requests: OrderRequest[] = Array.from({ length: ORDERS }, (_, i) =>
    i < POSITIONS
      ? {
          clientOrderId: `C${i}`,
          symbol: symbols[i] as string,
          side: 'buy',
          qty: 1 + (i % 5),
          type: 'market',
          tif: 'day',
        }
      : {
          clientOrderId: `C${i}`,
          symbol: symbols[i % POSITIONS] as string,
          side: 'buy',
          qty: 1,
          type: 'limit',
          limitPrice: PRICE / 2,
          tif: 'gtc',
        },
  );
  // The broker's side: the orders sent over HTTP, 400 per simulator clock second (the simulator's
  // clock is manual: orders created in one second share their creation time, and the list, paged by
  // creation time 500 at a time, cannot page past more than 500 at one instant).
  for (let b = 0; b < ORDERS / 400; b++) {
    await sim.control(keyId, { clock: new Date(T + b * 1000).toISOString() });
    const batch = requests.slice(b * 400, (b + 1) * 400);
    for (let k = 0; k < batch.length; k += 25)
      await Promise.all(
        batch.slice(k, k + 25).map(async (r) => {
          const res = await sim.submitOrder(
            { keyId, secret },
            {
              symbol: r.symbol,
              qty: String(r.qty),
              side: r.side,
              type: r.type,
              time_in_force: r.tif,
              ...(r.limitPrice ? { limit_price: String(r.limitPrice) } : {}),
              client_order_id: r.clientOrderId,
            },
          );
          BrokerOrderSchema.parse(await res.json());
        }),
      );
  }
  // Ours: the same orders in the engine, acknowledged and filled as the broker's stream would say.
  const { TradingEngine } = await import('../../lambdas/trading/engine');
  const engine = await TradingEngine.open(schema.store, 'bench-reconcile', {
    init: { cash: 1e9 },
    at: engineNow(),
  });
  await engine.updatePrices(prices, engineNow());
  for (let b = 0; b < ORDERS / 500; b++)
    await engine.submitPortfolio(requests.slice(b * 500, (b + 1) * 500), engineNow());
  await Promise.all(
    requests.flatMap((r, i) => [
      engine.onBrokerReport({ kind: 'accepted', clientOrderId: r.clientOrderId }, engineNow()),
      ...(i < POSITIONS
        ? [
            engine.onBrokerReport(
              { kind: 'fill', clientOrderId: r.clientOrderId, qty: r.qty, price: PRICE },
              engineNow(),
            ),
          ]
        : []),
    ]),
  );
  // What reconciliation must find: 10 fills the stream never told us about.
  for (let k = 0; k < 10; k++)
    await sim.control(keyId, {
      diverge: { fill: { clientOrderId: `C${POSITIONS + k}`, qty: 1, price: PRICE / 2 } },
    });
  const live = new LiveBroker({
    baseUrl: sim.url,
    wsUrl: sim.wsUrl,
    keyId,
    secret,
    lookup: (cid) => engine.state.orders[cid],
    openOrders: () => [],
    onReport: async () => undefined,
  });
  const fetchMs: number[] = [];
  const diffMs: number[] = [];
  const totalMs: number[] = [];
  let found = { orders: 0, positions: 0, differences: 0 };
  for (let k = 0; k < 6; k++) {
    const t0 = performance.now();
    const view = await live.brokerView();
    const t1 = performance.now();
    const differences = [...orderDifferences(engine.state, view), ...balanceDifferences(engine.state, view)];
    const t2 = performance.now();
    found = {
      orders: view.orders.length,
      positions: Object.keys(view.positions).length,
      differences: differences.length,
    };
    if (k === 0) continue; // warm-up
    fetchMs.push(t1 - t0);
    diffMs.push(t2 - t1);
    totalMs.push(t2 - t0);
  }
  await live.close();
  console.log(
    `reconciliation of ${ORDERS.toLocaleString('en-US')} orders and ${POSITIONS.toLocaleString('en-US')} positions (the broker view: ${found.orders} orders, ${found.positions} positions; ${found.differences} differences found, 10 fills + their position and cash expected):`,
  );
  line('broker view fetched (orders paged by 500, positions, account)', fetchMs);
  line('differences (orders, fills, positions, cash)', diffMs);
  line('total', totalMs, { ms: 5_000, on: 'max' });
  if (found.orders !== ORDERS) throw new Error(`the broker view holds ${found.orders} orders, not ${ORDERS}`);
}

async function faultRuns(sim: SimProcess, schema: Awaited<ReturnType<typeof tradingSchema>>): Promise<void> {
  const summary = await runTradingLoad({
    store: schema.store,
    sim,
    accounts: 4,
    opsPerAccount: 100,
    faultEveryMs: 300,
    paceMs: 20,
    label: `bench${Date.now().toString(36)}`,
  });
  const lost = summary.accounts.reduce((a, s) => a + s.lost, 0);
  const doubled = summary.accounts.reduce((a, s) => a + s.doubled, 0);
  console.log(
    'fault runs (the load scenario reduced: 4 accounts x 100 operations, a fault every ~300 ms each):',
  );
  for (const l of loadTable(summary)) console.log(`  ${l}`);
  console.log(
    `  fills lost ${lost}, doubled ${doubled}, accounting ${summary.ok ? 'holds' : 'FAILS'}  [target 0 lost, 0 doubled: ${lost + doubled === 0 && summary.ok ? 'met' : 'not met'}]`,
  );
}

export async function brokerBench(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';
  const [sim, schema] = await Promise.all([startSimProcess(), tradingSchema(url, 'bench_broker')]);
  try {
    console.log("--- broker path (issue 14), against a broker simulator process of the bench's own ---");
    await orderFlow(sim, schema);
    await errorPropagation(sim, schema);
    await recovery(sim, schema);
    await reconciliation(sim, schema);
    await faultRuns(sim, schema);
  } finally {
    await sim.stop();
    await schema.drop();
  }
}
