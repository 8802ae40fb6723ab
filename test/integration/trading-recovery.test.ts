/**
 * Restart recovery, a crash at every step (issue 14 §4): the live service as its container runs it
 * (the bundle of lambdas/trading-live/build.mjs, the Dockerfile's build, with its CMD's flags) runs
 * as a child process against the broker simulator (its own process) and a PostgreSQL schema of its own; orders are written to the event store as the `trading` CLI writes them (the
 * order API over an engine opened per command, a second writer of the stream). The first process
 * dies with exit 137 at a crash point (TRADING_CRASH_AT, as SIGKILL would leave it); a second one
 * starts on the same store and must rebuild, connect, reconcile and only then accept orders; in the
 * end every order is in the broker's state, every fill booked once (our fills, positions and cash
 * equal the broker's) and nothing doubled (one broker order per client order id).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrderApi } from '../../lambdas/trading/api';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { ConcurrencyError } from '../../lambdas/trading/store';
import type { OrderRequest } from '../../lambdas/trading/types';
import type { CrashPoint } from '../../lambdas/trading-live/service';
import { REPO_ROOT } from '../../lib/paths';
import { type SimProcess, startSimProcess } from '../support/broker-sim';
import { createTestSchema, type TestSchema } from '../support/db';

let db: TestSchema;
let store: PostgresEventStore;
let sim: SimProcess;
/** The container's bundle, built once for the file. */
let bundle: string;

beforeAll(async () => {
  bundle = mkdtempSync(join(tmpdir(), 'trading-live-bundle-'));
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'lambdas/trading-live/build.mjs'), bundle], {
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`build.mjs failed: ${built.stderr}`);
  [db, sim] = await Promise.all([createTestSchema('trading_recovery'), startSimProcess()]);
  store = new PostgresEventStore(db.pool);
}, 120_000);
afterAll(async () => {
  await sim?.stop();
  await db?.drop();
  if (bundle) rmSync(bundle, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  readonly events: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** Resolves with the first event of that name (rejects if the process exits first). */
  until(event: string): Promise<Record<string, unknown>>;
}

/** How long a wait for one of the service's events may take (a busy CI machine starts it slowly). */
const UNTIL_MS = 90_000;

function service(account: string, creds: { keyId: string; secret: string }, crashAt?: CrashPoint): Run {
  const child = spawn(
    process.execPath,
    // The Dockerfile's CMD: node --enable-source-maps main.mjs.
    ['--enable-source-maps', join(bundle, 'main.mjs')],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        PG_SCHEMA: db.schema,
        BROKER_BASE_URL: sim.url,
        BROKER_STREAM_URL: sim.wsUrl,
        BROKER_KEY_ID: creds.keyId,
        BROKER_SECRET_KEY: creds.secret,
        TRADING_ACCOUNT: account,
        TRADING_HEALTH_PORT: '0',
        TRADING_POLL_MS: '50',
        TRADING_RECONCILE_MS: '60000',
        TRADING_CRASH_POINTS: 'enabled',
        TRADING_CRASH_AT: crashAt ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  child.stdout?.on('data', (d) => {
    buffer += String(d);
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push(e);
      for (const w of waiters.filter((x) => x.event === e.event)) w.resolve(e);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    events,
    exited,
    until: (event) =>
      new Promise((resolve, reject) => {
        const seen = events.find((e) => e.event === event);
        if (seen) return resolve(seen);
        // A bound on the wait, so a stuck service fails with what it said rather than a bare timeout.
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no "${event}" from the service in ${UNTIL_MS} ms; its events: ${JSON.stringify(events).slice(-3000)}; stderr: ${stderr.slice(-2000)}`,
              ),
            ),
          UNTIL_MS,
        );
        waiters.push({
          event,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
        void exited.then((code) =>
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`service exited (${code}) before "${event}": ${stderr.slice(-2000)}`));
          }, 100),
        );
      }),
  };
}

async function stopped(run: Run): Promise<number | null> {
  if (run.child.exitCode === null) run.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(
        new Error(
          `the service did not stop on SIGTERM in ${UNTIL_MS} ms; its events: ${JSON.stringify(run.events).slice(-3000)}`,
        ),
      );
    }, UNTIL_MS);
  });
  try {
    return await Promise.race([run.exited, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/** One command as the CLI runs it: an engine opened on the stream, the order API, a retry if another writer won. */
async function cli<T>(
  stream: string,
  command: (api: ReturnType<typeof createOrderApi>) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await command(createOrderApi(await TradingEngine.open(store, stream)));
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || attempt > 10) throw error;
    }
  }
}

const buy = (id: string, over: Partial<OrderRequest> = {}): OrderRequest => ({
  clientOrderId: id,
  symbol: 'AAPL',
  side: 'buy',
  qty: 5,
  type: 'market',
  tif: 'day',
  ...over,
});

/** Polls the store until the predicate holds (a wait for the service, not a timed assertion). */
async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const statusOf = async (stream: string, id: string) =>
  (await TradingEngine.open(store, stream)).state.orders[id]?.status;

async function account(name: string) {
  const stream = `account-${name}`;
  const creds = await sim.account({ cash: 100_000 });
  await sim.control(creds.keyId, { prices: { AAPL: 100 } });
  const at = new Date().toISOString();
  const engine = await TradingEngine.open(store, stream, { init: { cash: 100_000 }, at });
  await engine.market({ session: 'open' }, at);
  await engine.updatePrices({ AAPL: 100 }, at);
  return { stream, creds };
}

/** The end state: ours equals the broker's, order by order, and nothing was doubled. */
async function assertConverged(stream: string, keyId: string) {
  await waitFor('the outbox to drain', async () => (await store.pendingCommands(stream)).length === 0);
  const broker = (await sim.state(keyId)) as unknown as {
    cash: number;
    positions: Record<string, { qty: number }>;
    orders: { client_order_id: string; status: string; filled_qty: string }[];
  };
  await waitFor('our orders to match the broker', async () => {
    const s = (await TradingEngine.open(store, stream)).state;
    const now = (await sim.state(keyId)) as unknown as typeof broker;
    return now.orders.every(
      (o) =>
        s.orders[o.client_order_id]?.filledQty === Number(o.filled_qty) &&
        s.orders[o.client_order_id]?.status === (o.status === 'accepted' ? 'new' : o.status),
    );
  });
  const engine = await TradingEngine.open(store, stream);
  const ids = broker.orders.map((o) => o.client_order_id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const o of broker.orders) {
    const ours = engine.state.orders[o.client_order_id];
    expect(ours?.filledQty, o.client_order_id).toBe(Number(o.filled_qty));
    expect(ours?.status, o.client_order_id).toBe(o.status === 'accepted' ? 'new' : o.status);
  }
  // Every order we sent is at the broker; every order is terminal or open as the broker has it.
  for (const id of engine.state.orderIds)
    if (engine.state.orders[id]?.status !== 'denied') expect(ids, id).toContain(id);
  expect(engine.state.cash).toBeCloseTo(Number(broker.cash), 6);
  for (const symbol of new Set([...Object.keys(broker.positions), ...Object.keys(engine.state.positions)]))
    expect(engine.state.positions[symbol]?.qty ?? 0, symbol).toBe(Number(broker.positions[symbol]?.qty ?? 0));
  return { engine, broker };
}

/** The restarted process: rebuilt, connected, reconciled, and only then ready and dispatching. */
async function restart(stream: string, creds: { keyId: string; secret: string }): Promise<Run> {
  const run = service(stream.replace(/^account-/, ''), creds);
  await run.until('ready');
  const order = run.events.map((e) => e.event);
  const at = (name: string) => order.indexOf(name);
  expect(at('rebuilt')).toBeGreaterThanOrEqual(0);
  expect(at('rebuilt')).toBeLessThan(at('connected'));
  expect(at('connected')).toBeLessThan(at('reconciled'));
  expect(at('reconciled')).toBeLessThan(at('ready'));
  expect(order.slice(0, at('ready'))).not.toContain('dispatched');
  const port = run.events.find((e) => e.event === 'health')?.port as number;
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'accepting orders' });
  return run;
}

async function crashed(run: Run, point: CrashPoint): Promise<void> {
  await run.until('crash');
  expect(await run.exited).toBe(137);
  expect(run.events.find((e) => e.event === 'crash')).toEqual({ event: 'crash', point });
}

describe('restart recovery: a crash at every step', { timeout: 300_000 }, () => {
  it('before_submit: the command is in the outbox, nothing sent: sent once after the restart', async () => {
    const { stream, creds } = await account('crash-outbox');
    const first = service('crash-outbox', creds, 'before_submit');
    await first.until('ready');
    await cli(stream, (api) => api.submit(buy('O1')));
    await crashed(first, 'before_submit');
    expect(((await sim.state(creds.keyId)) as { orders: unknown[] }).orders).toHaveLength(0);
    const second = await restart(stream, creds);
    try {
      const { engine } = await assertConverged(stream, creds.keyId);
      expect(engine.state.orders.O1).toMatchObject({ status: 'filled', filledQty: 5 });
    } finally {
      expect(await stopped(second)).toBe(0);
    }
  });

  it('submit_answered: the broker created (and filled) the order, the answer was lost: booked once, never sent twice', async () => {
    const { stream, creds } = await account('crash-submit');
    const first = service('crash-submit', creds, 'submit_answered');
    await first.until('ready');
    await cli(stream, (api) => api.submit(buy('S1')));
    await crashed(first, 'submit_answered');
    const second = await restart(stream, creds);
    try {
      const { engine, broker } = await assertConverged(stream, creds.keyId);
      expect(broker.orders.filter((o) => o.client_order_id === 'S1')).toHaveLength(1);
      expect(engine.state.orders.S1).toMatchObject({ status: 'filled', filledQty: 5 });
      expect(engine.state.positions.AAPL?.qty).toBe(5);
    } finally {
      expect(await stopped(second)).toBe(0);
    }
  });

  it('fill_unbooked: the broker filled, the fill was not booked: booked once from the broker after the restart', async () => {
    const { stream, creds } = await account('crash-fill');
    const first = service('crash-fill', creds, 'fill_unbooked');
    await first.until('ready');
    // A resting limit: it fills later, by the broker alone.
    await cli(stream, (api) => api.submit(buy('F1', { type: 'limit', limitPrice: 90, qty: 4 })));
    await waitFor('F1 accepted', async () => (await statusOf(stream, 'F1')) === 'new');
    await sim.control(creds.keyId, { fill: { clientOrderId: 'F1', qty: 3, price: 90 } });
    await crashed(first, 'fill_unbooked');
    expect((await TradingEngine.open(store, stream)).state.orders.F1?.filledQty).toBe(0);
    const second = await restart(stream, creds);
    try {
      const { engine } = await assertConverged(stream, creds.keyId);
      expect(engine.state.orders.F1).toMatchObject({
        status: 'partially_filled',
        filledQty: 3,
        avgFillPrice: 90,
      });
      expect(engine.state.positions.AAPL?.qty).toBe(3);
      const fills = (await store.load(stream)).filter((e) => e.type === 'OrderFilled');
      expect(fills).toHaveLength(1);
    } finally {
      expect(await stopped(second)).toBe(0);
    }
  });

  it('cancel_answered: the broker took the cancel, its answer unread: canceled once after the restart', async () => {
    const { stream, creds } = await account('crash-cancel');
    const first = service('crash-cancel', creds, 'cancel_answered');
    await first.until('ready');
    await cli(stream, (api) => api.submit(buy('C1', { type: 'limit', limitPrice: 90, qty: 2 })));
    await waitFor('C1 accepted', async () => (await statusOf(stream, 'C1')) === 'new');
    await cli(stream, (api) => api.cancel('C1'));
    await crashed(first, 'cancel_answered');
    // The stream's `canceled` frame may have been booked before the answer arrived: either is a crash state.
    expect(['pending_cancel', 'canceled']).toContain(await statusOf(stream, 'C1'));
    const second = await restart(stream, creds);
    try {
      const { engine } = await assertConverged(stream, creds.keyId);
      expect(engine.state.orders.C1?.status).toBe('canceled');
    } finally {
      expect(await stopped(second)).toBe(0);
    }
  });

  it('replace_answered: the broker replaced the order, the answer was lost: one replacement, working after the restart', async () => {
    const { stream, creds } = await account('crash-replace');
    const first = service('crash-replace', creds, 'replace_answered');
    await first.until('ready');
    await cli(stream, (api) => api.submit(buy('R1', { type: 'limit', limitPrice: 90, qty: 2 })));
    await waitFor('R1 accepted', async () => (await statusOf(stream, 'R1')) === 'new');
    const modified = await cli(stream, (api) => api.modify({ clientOrderId: 'R1', qty: 6 }));
    expect(modified.ok).toBe(true);
    await crashed(first, 'replace_answered');
    const second = await restart(stream, creds);
    try {
      const { engine, broker } = await assertConverged(stream, creds.keyId);
      expect(engine.state.orders.R1?.status).toBe('replaced');
      const next = engine.state.orders.R1?.replacedBy as string;
      expect(engine.state.orders[next]).toMatchObject({ status: 'new', qty: 6 });
      expect(broker.orders.filter((o) => o.status === 'new')).toHaveLength(1);
    } finally {
      expect(await stopped(second)).toBe(0);
    }
  });

  it('a second writer (the CLI) while the service runs: its orders are picked up and sent once', async () => {
    const { stream, creds } = await account('two-writers');
    const run = service('two-writers', creds);
    await run.until('ready');
    try {
      await Promise.all([1, 2, 3].map((i) => cli(stream, (api) => api.submit(buy(`W${i}`, { qty: i })))));
      const { engine } = await assertConverged(stream, creds.keyId);
      expect(engine.state.positions.AAPL?.qty).toBe(6);
    } finally {
      expect(await stopped(run)).toBe(0);
    }
    expect(run.events.at(-1)).toMatchObject({ event: 'stopped' });
  });
});
