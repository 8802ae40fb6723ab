/**
 * The plan's load scenario: many concurrent order flows against the broker simulator with faults
 * injected, then reconciliation and the accounting. Each account has its own simulator key and its
 * own engine stream; its flow submits (market and resting limit orders), cancels, modifies, moves
 * prices (resting orders fill) and has the broker fill part of a working order, while a fault
 * injector turns the simulator's knobs on that account (429 storms, maintenance, 500s, timeouts,
 * a connection cut mid-request, stream drops, an auth failure, lost fill frames, truncated answers,
 * a fill racing a cancel). Afterwards every account is brought to rest and reconciled, and the
 * accounting must hold:
 *
 * - every order ends in a recorded terminal state, or open at the broker and here alike (nothing
 *   left pending, the stored projections equal a rebuild from the events);
 * - our fills equal the broker's, order by order, in the engine and in the recorded OrderFilled
 *   events (none lost, none doubled);
 * - positions and cash equal the broker's; no reconciliation dispute; the outbox is empty.
 *
 * Used by `npm run test:load -- trading` (full size), test/integration/trading-load.test.ts
 * (reduced) and the trading bench (its fault runs).
 */
import { TradingEngine } from '../../lambdas/trading/engine';
import type { PostgresEventStore } from '../../lambdas/trading/pg-store';
import type { TradingEvent } from '../../lambdas/trading/types';
import { mulberry32 } from '../../localstack/scenarios/prng';
import { assertSameState } from '../../localstack/trading/replay';
import type { SimProcess } from './broker-sim';
import { engineNow, LiveAccount } from './trading-live';

export interface LoadOptions {
  readonly store: PostgresEventStore;
  readonly sim: SimProcess;
  readonly accounts: number;
  readonly opsPerAccount: number;
  /** Inject faults during the run (default true). */
  readonly faults?: boolean;
  /** Mean time between two faults on one account. */
  readonly faultEveryMs?: number;
  readonly seed?: number;
  /** Mean pause between two operations of one flow (a strategy's pace), default 20 ms. */
  readonly paceMs?: number;
  /** Prefix of streams and client order ids (unique per run). */
  readonly label: string;
}

export interface AccountSummary {
  readonly account: string;
  readonly orders: number;
  readonly denied: number;
  /** Risk denials by code (an auth failure halts the account: TRADING_HALTED). */
  readonly denials: Record<string, number>;
  readonly cancels: number;
  readonly modifies: number;
  readonly brokerOrders: number;
  readonly filledQty: number;
  readonly faults: number;
  readonly retryable: number;
  readonly ambiguous: number;
  readonly reconnects: number;
  /** Fill frames the broker swallowed (lost_fill), and fills reconciliation booked from its record. */
  readonly framesLost: number;
  readonly bookedByReconcile: number;
  readonly lost: number;
  readonly doubled: number;
  readonly problems: string[];
}

export interface LoadSummary {
  readonly accounts: AccountSummary[];
  readonly seconds: number;
  readonly faultsByKind: Record<string, number>;
  readonly ok: boolean;
}

const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF'];
const BROKER_TO_ENGINE: Record<string, string> = {
  new: 'new',
  accepted: 'new',
  partially_filled: 'partially_filled',
  filled: 'filled',
  canceled: 'canceled',
  replaced: 'replaced',
  rejected: 'rejected',
  expired: 'expired',
};

type FaultPick = (nextCid: string) => { kind: string; body: Record<string, unknown> };
const FAULTS: FaultPick[] = [
  () => ({ kind: 'http429', body: { kind: 'http429', durationSeconds: 1 } }),
  () => ({ kind: 'maintenance', body: { kind: 'maintenance', durationSeconds: 1 } }),
  () => ({ kind: 'server_error', body: { kind: 'server_error', count: 2 } }),
  () => ({ kind: 'timeout', body: { kind: 'timeout', count: 1 } }),
  (cid) => ({ kind: 'disconnect', body: { kind: 'disconnect', clientOrderId: cid } }),
  () => ({ kind: 'disconnect', body: { kind: 'disconnect', durationSeconds: 0.5 } }),
  () => ({ kind: 'auth', body: { kind: 'auth', durationSeconds: 1 } }),
  () => ({ kind: 'lost_fill', body: { kind: 'lost_fill', count: 1 } }),
  () => ({ kind: 'invalid', body: { kind: 'invalid', count: 1 } }),
  () => ({ kind: 'fill_race_cancel', body: { kind: 'fill_race_cancel', count: 1 } }),
];

interface FlowCounts {
  orders: number;
  cancels: number;
  modifies: number;
}

async function flow(
  account: LiveAccount,
  prefix: string,
  ops: number,
  rand: () => number,
  at: (j: number) => void,
  paceMs: number,
): Promise<FlowCounts> {
  const { engine } = account;
  const prices: Record<string, number> = Object.fromEntries(SYMBOLS.map((s) => [s, 100]));
  const counts: FlowCounts = { orders: 0, cancels: 0, modifies: 0 };
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(rand() * xs.length)];
  const working = (acked = true) =>
    [...engine.state.open]
      .map((id) => engine.state.orders[id])
      .filter(
        (o) =>
          o &&
          (o.status === 'new' || o.status === 'partially_filled' || (!acked && o.status === 'pending_new')),
      );
  for (let j = 0; j < ops; j++) {
    const r = rand();
    const symbol = pick(SYMBOLS) as string;
    const price = prices[symbol] as number;
    const cid = `${prefix}-o${j}`;
    at(j);
    if (r < 0.4) {
      counts.orders += 1;
      await engine.submit(
        {
          clientOrderId: cid,
          symbol,
          side: rand() < 0.7 ? 'buy' : 'sell',
          qty: 1 + Math.floor(rand() * 5),
          type: 'market',
          tif: 'day',
        },
        engineNow(),
      );
    } else if (r < 0.7) {
      counts.orders += 1;
      const buy = rand() < 0.7;
      await engine.submit(
        {
          clientOrderId: cid,
          symbol,
          side: buy ? 'buy' : 'sell',
          qty: 1 + Math.floor(rand() * 8),
          type: 'limit',
          limitPrice: Math.round(price * (buy ? 0.95 : 1.05) * 100) / 100,
          tif: 'gtc',
        },
        engineNow(),
      );
    } else if (r < 0.82) {
      // A cancel may overtake the broker's ack (cancel of a pending order).
      const o = pick(working(false));
      if (!o) continue;
      counts.cancels += 1;
      await engine.cancel(o.clientOrderId, engineNow());
    } else if (r < 0.92) {
      const o = pick(working());
      if (o?.type !== 'limit') continue;
      counts.modifies += 1;
      await engine.modify(
        {
          clientOrderId: o.clientOrderId,
          qty: o.qty + 1 + Math.floor(rand() * 3),
          limitPrice: Math.round((o.limitPrice as number) * (o.side === 'buy' ? 1.01 : 0.99) * 100) / 100,
        },
        engineNow(),
      );
    } else if (r < 0.97) {
      // The market fills part of a working order (at its limit): the broker's side, not a command of ours.
      const o = pick(working());
      if (!o) continue;
      await account.options.sim.control(account.keyId, {
        fill: { clientOrderId: o.clientOrderId, qty: 1, price: o.limitPrice ?? price },
      });
    } else {
      // The price moves: resting orders that cross it fill at the broker.
      const next = Math.round(price * (0.93 + rand() * 0.14) * 100) / 100;
      prices[symbol] = next;
      await engine.updatePrices({ [symbol]: next }, engineNow());
      await account.options.sim.control(account.keyId, { prices: { [symbol]: next } });
    }
    account.kick();
    // A strategy's pace, not a tight loop: faults land between and during its orders.
    await new Promise((r) => setTimeout(r, paceMs * (0.5 + rand())));
  }
  return counts;
}

/** Checks one account against the broker after reconciliation; returns its summary. */
async function account_summary(
  account: LiveAccount,
  name: string,
  counts: FlowCounts,
  faults: number,
  booked: number,
  disputes: string[],
  quiesced: boolean,
): Promise<AccountSummary> {
  const { engine, options } = account;
  const problems: string[] = [];
  if (!quiesced) problems.push('did not come to rest (outbox or in-flight orders left)');
  for (const d of disputes) problems.push(`dispute: ${d}`);
  for (const e of account.errors) problems.push(`worker error: ${e}`);
  const broker = (await options.sim.state(account.keyId)) as unknown as {
    orders: { client_order_id: string; status: string; filled_qty: string }[];
    positions: Record<string, { qty: number }>;
    cash: number;
    stats: Record<string, number>;
  };
  const events: TradingEvent[] = await options.store.load(options.stream);
  const recorded = new Map<string, number>();
  for (const e of events)
    if (e.type === 'OrderFilled') recorded.set(e.clientOrderId, (recorded.get(e.clientOrderId) ?? 0) + e.qty);
  // A replace left pending: what became of its replacement here (to explain the failure).
  const successor = (cid: string) => {
    const r = Object.values(engine.state.orders).find((x) => x.replaces === cid);
    if (!r) return '';
    const ended = events
      .filter((e) => 'clientOrderId' in e && e.clientOrderId === r.clientOrderId)
      .map((e) => e.type);
    return `; its replacement ${r.clientOrderId} is ${r.status} here (events: ${ended.join(', ')}; adapter: ${(account.history.get(r.clientOrderId) ?? []).join(', ')})`;
  };
  let lost = 0;
  let doubled = 0;
  let filledQty = 0;
  const atBroker = new Set<string>();
  for (const b of broker.orders) {
    const cid = b.client_order_id;
    atBroker.add(cid);
    const filled = Number(b.filled_qty);
    filledQty += filled;
    const ours = recorded.get(cid) ?? 0;
    if (ours < filled) lost += 1;
    if (ours > filled) doubled += 1;
    const o = engine.state.orders[cid];
    if (!o) {
      problems.push(`${cid}: at the broker (${b.status}), unknown here`);
      continue;
    }
    if (o.filledQty !== filled) problems.push(`${cid}: filled ${o.filledQty} here, ${filled} at the broker`);
    const want = BROKER_TO_ENGINE[b.status] ?? b.status;
    if (o.status !== want)
      problems.push(
        `${cid}: ${o.status} here, ${b.status} at the broker (adapter: ${(account.history.get(cid) ?? []).join(', ')})${successor(cid)}`,
      );
  }
  let denied = 0;
  const denials: Record<string, number> = {};
  for (const o of Object.values(engine.state.orders)) {
    if (o.status === 'denied') {
      denied += 1;
      const code = o.denial?.code ?? 'unknown';
      denials[code] = (denials[code] ?? 0) + 1;
    }
    if (atBroker.has(o.clientOrderId)) continue;
    // Never at the broker: only a risk denial or a broker reject (403: the broker created nothing).
    if (o.status !== 'denied' && o.status !== 'rejected')
      problems.push(`${o.clientOrderId}: ${o.status} here, never reached the broker`);
  }
  for (const symbol of new Set([...Object.keys(engine.state.positions), ...Object.keys(broker.positions)])) {
    const ours = engine.state.positions[symbol]?.qty ?? 0;
    const theirs = broker.positions[symbol]?.qty ?? 0;
    if (ours !== theirs) problems.push(`position ${symbol}: ${ours} here, ${theirs} at the broker`);
  }
  if (Math.abs(engine.state.cash - broker.cash) > 0.01)
    problems.push(`cash: ${engine.state.cash} here, ${broker.cash} at the broker`);
  const pending = await options.store.pendingCommands(options.stream);
  if (pending.length > 0) problems.push(`${pending.length} commands still in the outbox`);
  // Recorded: a rebuild from the events holds what the running engine holds, and so do the stored projections.
  try {
    await assertSameState(
      engine.projections(),
      await TradingEngine.open(options.store, options.stream),
      options.store,
      options.stream,
    );
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (lost > 0) problems.push(`${lost} orders with fills lost`);
  if (doubled > 0) problems.push(`${doubled} orders with fills doubled`);
  return {
    account: name,
    orders: counts.orders,
    denied,
    denials,
    cancels: counts.cancels,
    modifies: counts.modifies,
    brokerOrders: broker.orders.length,
    filledQty,
    faults,
    retryable: account.incidents.retryable,
    ambiguous: account.incidents.ambiguous,
    reconnects: account.incidents.reconnects,
    framesLost: broker.stats.lost_fill_frames ?? 0,
    bookedByReconcile: booked,
    lost,
    doubled,
    problems,
  };
}

export async function runTradingLoad(options: LoadOptions): Promise<LoadSummary> {
  const started = performance.now();
  const seed = options.seed ?? 14;
  const accounts = await Promise.all(
    Array.from({ length: options.accounts }, (_, i) =>
      LiveAccount.open({
        store: options.store,
        stream: `${options.label}-a${i}`,
        sim: options.sim,
        cash: 10_000_000,
        prices: Object.fromEntries(SYMBOLS.map((s) => [s, 100])),
        autoResetAuth: true,
      }),
    ),
  );
  const faultsByKind: Record<string, number> = {};
  const injected = accounts.map(() => 0);
  const position = accounts.map(() => 0);
  const lastAuth = accounts.map(() => 0);
  let running = true;
  const injectors = accounts.map(async (account, i) => {
    if (options.faults === false) return;
    const rand = mulberry32(seed * 7919 + i);
    const every = options.faultEveryMs ?? 400;
    while (running) {
      await new Promise((r) => setTimeout(r, every * (0.5 + rand())));
      if (!running) return;
      // A mid-request cut is aimed at an order a few ahead of the flow (if it turns out a cancel or a
      // modify, the fault stays unused).
      let f = (FAULTS[Math.floor(rand() * FAULTS.length)] as FaultPick)(
        `${options.label}-a${i}-o${(position[i] as number) + 3}`,
      );
      // An auth failure halts the account until the key works again (its orders are denied
      // meanwhile): at most one every 5 s, so the flow mostly trades through the other faults.
      if (f.kind === 'auth') {
        if (Date.now() - (lastAuth[i] as number) < 5_000) f = (FAULTS[0] as FaultPick)('');
        else lastAuth[i] = Date.now();
      }
      await options.sim.control(account.keyId, { fault: f.body });
      faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
      injected[i] = (injected[i] as number) + 1;
    }
  });
  const flows = await Promise.all(
    accounts.map(async (account, i) => {
      const rand = mulberry32(seed * 104729 + i);
      return flow(
        account,
        `${options.label}-a${i}`,
        options.opsPerAccount,
        rand,
        (j) => {
          position[i] = j;
        },
        options.paceMs ?? 20,
      );
    }),
  );
  running = false;
  await Promise.all(injectors);
  // The faults end; every account comes to rest, then is reconciled and checked.
  await Promise.all(accounts.map((a) => options.sim.control(a.keyId, { clearFaults: true })));
  const summaries: AccountSummary[] = [];
  try {
    const rested = await Promise.all(accounts.map((a) => a.quiesce(60_000)));
    for (const [i, account] of accounts.entries()) {
      const r = await account.reconcile();
      const quiet = await account.quiesce(10_000);
      summaries.push(
        await account_summary(
          account,
          `a${i}`,
          flows[i] as FlowCounts,
          injected[i] as number,
          r.booked.filter((d) => d.kind === 'missing_fill').length,
          r.disputes.map((d) => `${d.kind} ${d.detail}`),
          Boolean(rested[i]) && quiet,
        ),
      );
    }
  } finally {
    await Promise.all(accounts.map((a) => a.close()));
  }
  return {
    accounts: summaries,
    seconds: (performance.now() - started) / 1000,
    faultsByKind,
    ok: summaries.every((s) => s.problems.length === 0),
  };
}

/** The summary table, one line per account and a total. */
export function loadTable(summary: LoadSummary): string[] {
  const cols = [
    ['account', 8],
    ['orders', 7],
    ['denied', 7],
    ['cancels', 8],
    ['modifies', 9],
    ['at broker', 10],
    ['filled qty', 11],
    ['faults', 7],
    ['retryable', 10],
    ['ambiguous', 10],
    ['reconnects', 11],
    ['frames lost', 12],
    ['reconciled', 11],
    ['lost', 5],
    ['doubled', 8],
    ['result', 7],
  ] as const;
  const row = (values: (string | number)[]) =>
    values.map((v, i) => String(v).padStart((cols[i] as readonly [string, number])[1])).join(' ');
  const line = (s: AccountSummary) => [
    s.account,
    s.orders,
    s.denied,
    s.cancels,
    s.modifies,
    s.brokerOrders,
    s.filledQty,
    s.faults,
    s.retryable,
    s.ambiguous,
    s.reconnects,
    s.framesLost,
    s.bookedByReconcile,
    s.lost,
    s.doubled,
    s.problems.length === 0 ? 'ok' : 'FAIL',
  ];
  const sum = (k: keyof AccountSummary) => summary.accounts.reduce((a, s) => a + (s[k] as number), 0);
  const out = [row(cols.map((c) => c[0])), ...summary.accounts.map((s) => row(line(s)))];
  out.push(
    row([
      'total',
      sum('orders'),
      sum('denied'),
      sum('cancels'),
      sum('modifies'),
      sum('brokerOrders'),
      sum('filledQty'),
      sum('faults'),
      sum('retryable'),
      sum('ambiguous'),
      sum('reconnects'),
      sum('framesLost'),
      sum('bookedByReconcile'),
      sum('lost'),
      sum('doubled'),
      summary.ok ? 'ok' : 'FAIL',
    ]),
  );
  out.push(
    `faults injected: ${Object.entries(summary.faultsByKind)
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}; ${summary.seconds.toFixed(1)} s`,
  );
  const denials: Record<string, number> = {};
  for (const s of summary.accounts)
    for (const [code, n] of Object.entries(s.denials)) denials[code] = (denials[code] ?? 0) + n;
  if (Object.keys(denials).length > 0)
    out.push(
      `risk denials: ${Object.entries(denials)
        .sort()
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  for (const s of summary.accounts) for (const p of s.problems.slice(0, 20)) out.push(`  ${s.account}: ${p}`);
  return out;
}
