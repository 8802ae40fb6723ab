import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import { createOrderApi, type OrderApi } from '../../lambdas/trading/api';
import { buildControlReport, type ControlReport } from '../../lambdas/trading/control-report';
import { type Alert, type CommandOutcome, TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { reconcileOverRest } from '../../lambdas/trading/reconcile-runner';
import { type EventStore, MemoryEventStore } from '../../lambdas/trading/store';
import type { Limits, OrderRequest } from '../../lambdas/trading/types';
import { UsageError as CliUsageError, parseDate } from '../../lib/cli/args';
import { emit, heading, keyValues, table } from '../../lib/cli/output';
import { writeReport } from '../../lib/cli/report';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { brokerSimPort } from '../../localstack/env';
import { ensureDatabase } from '../../localstack/local-database';
import { runScenario } from '../../localstack/trading/replay';
import { parseScenario, ScenarioError } from '../../localstack/trading/scenario';
import { createWireBroker } from '../../localstack/trading/wire-broker';
import { tradingReport } from '../reports/trading';

export const summary =
  'trading replay <scenario.json> --out DIR | init | submit | cancel | modify | status | positions | reset | prices | reconcile | report [--json]: the trading engine';

const USAGE = `usage: npm run pipeline -- trading <subcommand>
  replay <scenario.json> --out DIR [--store postgres|memory] [--keep-schema] [--report FILE.html] [--broker inprocess|sim]
                        run a scenario deterministically (simulated clock and broker); writes DIR/result.json
                        --broker sim: against the broker simulator process (BROKER_BASE_URL) over HTTP/WebSocket
  init --cash N [--limits FILE.json]        open the account (event store of DATABASE_URL)
  submit --id ID --symbol S --side buy|sell --qty N [--type market|limit] [--limit-price P] [--tif day|gtc] [--sizing fit]
  cancel ID
  modify ID [--qty N] [--limit-price P]
  status [ID]                               an order, trading states, breakers, restoration
  positions                                 positions and account
  reset BREAKER --by NAME                   reset a tripped breaker (e.g. daily_loss, volatility:AAPL)
  reconcile [--resolve DIFFERENCE_ID --by NAME [--action accept_broker|dismiss] [--note TEXT]]
                                            reconcile against the broker (BROKER_BASE_URL, BROKER_KEY_ID, BROKER_SECRET_KEY),
                                            or close a dispute; exit 1 while disputes are open
  report --date YYYY-MM-DD [--json]         the daily control report (limits, denials, breakers, resets, states, reconciliation)
  prices SYM=PRICE...                       record last prices (marks; reference for market orders)
  every subcommand but replay takes --account ID (default "default"); the order commands and report
  print short lines and tables, --json the result object alone on stdout`;

/**
 * The migrations a trading event store needs: the roles (0090: 0301 grants to them) and the trading
 * system's own (03xx).
 */
async function tradingMigrations() {
  return (await loadMigrations(MIGRATIONS_DIR)).filter(
    (m) => m.version < '0100' || m.version.startsWith('03'),
  );
}

/**
 * The engine's pool: the trading component's login role (tickstock_trading_login, schemas/sql/0090,
 * 0301, 0310), as the engine connects in production; the user of DATABASE_URL (the owner) only
 * migrates. With DATABASE_COMPONENT_ROLES=false (a server without the roles' logins) it is the
 * DATABASE_URL user.
 */
async function trading(): Promise<{ pool: pg.Pool; store: PostgresEventStore }> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);
  const schema = process.env.PG_SCHEMA ?? 'public';
  const owner = createPool({
    connectionString: url,
    max: 1,
    schema: schema === 'public' ? undefined : schema,
  });
  try {
    await migrate(owner, await loadMigrations(MIGRATIONS_DIR), schema);
  } finally {
    await owner.end();
  }
  const pool = createPool({
    connectionString: localComponentUrl(url, 'trading'),
    max: 2,
    schema: schema === 'public' ? undefined : schema,
  });
  // Announced: a running live service dispatches the command at once, not at its next poll.
  return { pool, store: new PostgresEventStore(pool, { announce: true }) };
}

async function replayCommand(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      store: { type: 'string', default: 'postgres' },
      'keep-schema': { type: 'boolean', default: false },
      broker: { type: 'string', default: 'inprocess' },
      report: { type: 'string' },
    },
  });
  const file = positionals[0];
  const problems: string[] = [];
  if (!file) problems.push('a scenario file is required');
  if (!values.out) problems.push('--out DIR is required');
  if (values.store !== 'postgres' && values.store !== 'memory')
    problems.push('--store must be postgres or memory');
  if (values.broker !== 'inprocess' && values.broker !== 'sim')
    problems.push('--broker must be inprocess or sim');
  if (values.report !== undefined && !values.report.endsWith('.html'))
    problems.push(`--report ${values.report}: expected an .html file name`);
  if (problems.length > 0 || !file || !values.out) {
    for (const p of problems) console.error(`error: ${p}`);
    console.error(USAGE);
    return 2;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    console.error(`error: cannot read ${file}: ${(error as Error).message}`);
    return 2;
  }
  let scenario: ReturnType<typeof parseScenario>;
  try {
    scenario = parseScenario(JSON.parse(text));
  } catch (error) {
    if (error instanceof ScenarioError) {
      console.error(`${file}: ${error.problems.length} problem(s)`);
      for (const p of error.problems) console.error(`  - ${p}`);
    } else console.error(`${file}: not JSON: ${(error as Error).message}`);
    return 2;
  }
  let store: EventStore = new MemoryEventStore();
  let cleanup = async () => undefined as unknown;
  if (values.store === 'postgres') {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is not set');
    await ensureDatabase(url);
    const schema = `trading_replay_${randomBytes(4).toString('hex')}`;
    // The owner creates and drops the throwaway schema; the engine runs as the trading login role.
    const owner = createPool({ connectionString: url, schema, max: 1 });
    const pool = createPool({ connectionString: localComponentUrl(url, 'trading'), schema, max: 2 });
    cleanup = async () => {
      await pool.end();
      if (values['keep-schema']) console.error(`event store kept in schema ${schema}`);
      else await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await owner.end();
    };
    try {
      await migrate(owner, await tradingMigrations(), schema);
    } catch (error) {
      await cleanup();
      throw error;
    }
    store = new PostgresEventStore(pool);
  }
  try {
    return await replayRun();
  } catch (error) {
    if (!(error instanceof ScenarioError)) throw error;
    console.error(`${file}: ${error.problems.length} problem(s)`);
    for (const p of error.problems) console.error(`  - ${p}`);
    return 2;
  } finally {
    await cleanup();
  }

  async function replayRun(): Promise<number> {
    const out = values.out as string;
    const alerts: string[] = [];
    const raised: Alert[] = [];
    const brokerUrl = process.env.BROKER_BASE_URL ?? `http://127.0.0.1:${brokerSimPort()}`;
    const result = await runScenario(scenario, {
      store,
      stream: 'account-replay',
      onAlert: (a) => {
        raised.push(a);
        alerts.push(`${a.at} ${a.severity} ${a.source}: ${a.message}`);
      },
      ...(values.broker === 'sim' ? { broker: (ctx) => createWireBroker(ctx, { url: brokerUrl }) } : {}),
    });
    if (values.report) {
      await writeReport(values.report, tradingReport(result, raised, `${file}, store ${values.store}`));
      console.error(`report: ${values.report}`);
    }
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    const statuses: Record<string, number> = {};
    for (const o of Object.values(result.orders)) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
    for (const a of alerts) console.log(`alert ${a}`);
    console.log(
      `${Object.keys(result.orders).length} orders ${JSON.stringify(statuses)}, ${result.breakers.length} breaker trips, ` +
        `${result.events} events, ${result.brokerCommands} broker commands` +
        (result.reconciliation ? `, ${result.reconciliation.length} reconciliation differences` : '') +
        ` -> ${join(out, 'result.json')}`,
    );
    return 0;
  }
}

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`${name} must be a number, not ${JSON.stringify(value)}`);
  return n;
}

class UsageError extends Error {}

async function apiCommand(sub: string, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      account: { type: 'string', default: 'default' },
      cash: { type: 'string' },
      limits: { type: 'string' },
      id: { type: 'string' },
      symbol: { type: 'string' },
      side: { type: 'string' },
      qty: { type: 'string' },
      type: { type: 'string', default: 'market' },
      'limit-price': { type: 'string' },
      tif: { type: 'string', default: 'day' },
      sizing: { type: 'string' },
      by: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const stream = `account-${values.account}`;
  const { pool, store } = await trading();
  // Human lines by default; --json prints the API's result object alone on stdout.
  const show = <T>(value: T, human: (v: T) => string) =>
    emit(values.json, value, (v) => console.log(human(v)));
  const outcomeLine = (o: CommandOutcome) =>
    `${o.ok ? 'ok' : 'refused'}${o.code ? ` ${o.code}` : ''}: ${o.detail}`;
  const positionsText = (p: Awaited<ReturnType<OrderApi['positions']>>) =>
    [
      table(
        ['symbol', 'qty', 'avg price'],
        Object.entries(p.positions).map(([symbol, pos]) => [symbol, pos.qty, pos.avgPrice]),
      ),
      keyValues([
        ['cash', p.account.cash],
        ['equity', p.account.equity],
        ['realized P&L', p.account.realizedPnl],
        ['unrealized P&L', p.account.unrealizedPnl],
        ['daily P&L', p.account.dailyPnl],
      ]),
    ].join('\n');
  const healthText = (h: ReturnType<TradingEngine['health']>) =>
    [
      keyValues([
        ['session', h.session],
        ['open orders', h.openOrders],
        ['limits version', h.limitsVersion],
        ['active breakers', h.activeBreakers.join(', ') || 'none'],
      ]),
      table(
        ['scope', 'state', 'cause'],
        Object.entries(h.states).map(([scope, st]) => [scope, st.state, st.cause]),
      ),
    ].join('\n');
  try {
    if (sub === 'init') {
      const cash = num(values.cash, '--cash');
      if (cash === undefined) throw new UsageError('init needs --cash');
      const limits = values.limits ? (JSON.parse(await readFile(values.limits, 'utf8')) as Limits) : {};
      const engine = await TradingEngine.open(store, stream, {
        init: { cash, limits },
        at: new Date().toISOString(),
      });
      show(engine.health(), (h) => `account ${values.account} opened with cash ${cash}\n${healthText(h)}`);
      return 0;
    }
    const api = createOrderApi(
      await TradingEngine.open(store, stream, {
        onAlert: (a) => console.error(`alert ${a.severity} ${a.source}: ${a.message}`),
      }),
    );
    switch (sub) {
      case 'submit': {
        if (!values.id || !values.symbol || !values.side || values.qty === undefined)
          throw new UsageError('submit needs --id, --symbol, --side and --qty');
        const order: OrderRequest = {
          clientOrderId: values.id,
          symbol: values.symbol,
          side: values.side,
          qty: num(values.qty, '--qty') as number,
          type: values.type,
          limitPrice: num(values['limit-price'], '--limit-price'),
          tif: values.tif,
          sizing: values.sizing === 'fit' ? 'fit' : undefined,
        };
        const [outcome] = await api.submit(order);
        show(outcome, (o) =>
          o
            ? o.denial
              ? `${o.clientOrderId}: denied ${o.denial.code}: ${o.denial.detail}`
              : `${o.clientOrderId}: ${o.status}, qty ${o.qty}`
            : 'no outcome',
        );
        return outcome?.denial ? 1 : 0;
      }
      case 'cancel':
      case 'modify': {
        const id = positionals[0];
        if (!id) throw new UsageError(`${sub} needs an order id`);
        const outcome =
          sub === 'cancel'
            ? await api.cancel(id)
            : await api.modify({
                clientOrderId: id,
                qty: num(values.qty, '--qty'),
                limitPrice: num(values['limit-price'], '--limit-price'),
              });
        show(outcome, outcomeLine);
        return outcome.ok ? 0 : 1;
      }
      case 'status':
        show(await api.status(positionals[0]), (st) =>
          [
            st.order
              ? keyValues([
                  ['order', st.order.clientOrderId],
                  ['status', st.order.status],
                  [
                    'symbol',
                    `${st.order.side} ${st.order.qty} ${st.order.symbol} ${st.order.type}${st.order.limitPrice === null ? '' : ` @ ${st.order.limitPrice}`} ${st.order.tif}`,
                  ],
                  [
                    'filled',
                    `${st.order.filledQty}${st.order.avgFillPrice === null ? '' : ` @ ${st.order.avgFillPrice}`}`,
                  ],
                  ['denial', st.order.denial ? `${st.order.denial.code}: ${st.order.denial.detail}` : 'none'],
                ])
              : positionals[0]
                ? `order ${positionals[0]}: not found`
                : '',
            healthText(st.health),
          ]
            .filter(Boolean)
            .join('\n'),
        );
        return 0;
      case 'positions':
        show(await api.positions(), positionsText);
        return 0;
      case 'reset': {
        const breaker = positionals[0];
        if (!breaker || !values.by) throw new UsageError('reset needs BREAKER and --by NAME');
        const outcome = await api.reset(breaker, values.by);
        show(outcome, outcomeLine);
        return outcome.ok ? 0 : 1;
      }
      case 'prices': {
        const prices: Record<string, number> = {};
        for (const p of positionals) {
          const [symbol, price] = p.split('=');
          const n = num(price, p);
          if (!symbol || n === undefined) throw new UsageError(`expected SYM=PRICE, not ${p}`);
          prices[symbol] = n;
        }
        await api.prices(prices);
        show(await api.positions(), positionsText);
        return 0;
      }
    }
    throw new UsageError(`unknown subcommand ${sub}`);
  } finally {
    await pool.end();
  }
}

function printControlReport(r: ControlReport): void {
  const j = (v: unknown) => JSON.stringify(v);
  console.log(`Control report ${r.date} (${r.stream})`);
  console.log(heading('Limits in force'));
  console.log(
    table(
      ['at', 'version', 'limits'],
      r.limits.map((l) => [l.at, l.version, j(l.limits)]),
    ),
  );
  console.log(heading(`Denials (${r.denials.length})`));
  console.log(
    table(
      ['at', 'order', 'code', 'detail', 'inputs'],
      r.denials.map((d) => [d.at, d.clientOrderId, d.code, d.detail, j(d.inputs)]),
    ),
  );
  console.log(heading(`Breaker trips (${r.breakerTrips.length})`));
  console.log(
    table(
      ['at', 'breaker', 'scope', 'limits v', 'inputs', 'actions'],
      r.breakerTrips.map((b) => [
        b.at,
        b.breaker,
        b.scope,
        b.limitsVersion,
        j(b.inputs),
        b.actions.join(', '),
      ]),
    ),
  );
  console.log(heading(`Resets (${r.resets.length})`));
  console.log(
    table(
      ['at', 'breaker', 'by', 'outcome', 'reason'],
      r.resets.map((x) => [x.at, x.breaker, x.by, x.outcome, x.reason]),
    ),
  );
  console.log(heading(`Trading-state changes (${r.stateChanges.length})`));
  console.log(
    table(
      ['at', 'scope', 'state', 'cause'],
      r.stateChanges.map((x) => [x.at, x.scope, x.state, x.cause]),
    ),
  );
  console.log(heading(`Reconciliation differences (${r.reconciliation.length})`));
  console.log(
    table(
      ['at', 'id', 'kind', 'scope', 'detail', 'resolution', 'resolved'],
      r.reconciliation.map((x) => [
        x.at,
        x.id,
        x.kind,
        x.scope ?? '',
        x.detail,
        x.resolution,
        x.resolved ? `${x.resolved.action} by ${x.resolved.by} at ${x.resolved.at}` : '',
      ]),
    ),
  );
}

/**
 * `trading reconcile`: one reconciliation run of an account's PostgreSQL event store against the
 * broker at BROKER_BASE_URL (the stage's simulator by default) with BROKER_KEY_ID / BROKER_SECRET_KEY
 * (default the stage's `local-broker-key` / `local-broker-secret`), over REST only (the engine
 * service owns the key's one trade-updates stream). `--resolve ID --by NAME` closes a dispute
 * instead (`--action accept_broker|dismiss`, `--note`). Exit 0: complete and no dispute open;
 * 1: disputes open, the run incomplete or the resolution refused.
 */
async function reconcileCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      account: { type: 'string', default: 'default' },
      resolve: { type: 'string' },
      by: { type: 'string' },
      action: { type: 'string', default: 'dismiss' },
      note: { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.resolve !== undefined && !values.by) throw new UsageError('--resolve needs --by NAME');
  if (values.action !== 'dismiss' && values.action !== 'accept_broker')
    throw new UsageError('--action must be accept_broker or dismiss');
  const stream = `account-${values.account}`;
  const { pool, store } = await trading();
  const onAlert = (a: Alert) => console.error(`alert ${a.severity} ${a.source}: ${a.message}`);
  try {
    if (values.resolve !== undefined) {
      const engine = await TradingEngine.open(store, stream, { onAlert });
      const outcome = await engine.resolveReconciliation(
        values.resolve,
        values.by as string,
        values.action,
        new Date().toISOString(),
        values.note,
      );
      emit(values.json, outcome, (o) => console.log(`${o.ok ? 'ok' : 'refused'}: ${o.detail}`));
      return outcome.ok ? 0 : 1;
    }
    const { outcome, openDisputes: open } = await reconcileOverRest(
      store,
      stream,
      {
        baseUrl: process.env.BROKER_BASE_URL ?? `http://127.0.0.1:${brokerSimPort()}`,
        keyId: process.env.BROKER_KEY_ID || 'local-broker-key',
        secret: process.env.BROKER_SECRET_KEY || 'local-broker-secret',
      },
      { onAlert },
    );
    const recordedNow = new Set(outcome.status === 'complete' ? outcome.recorded.map((d) => d.id) : []);
    emit(values.json, { ...outcome, openDisputes: open }, (o) => {
      if (o.status === 'incomplete') {
        console.log(`incomplete after ${o.attempts} attempt(s): ${o.reason}; nothing applied`);
        return;
      }
      console.log(
        `reconciled ${stream} in ${o.attempts} attempt(s): ${o.found.length} difference(s), ${o.recorded.length} new, ${open.length} dispute(s) open`,
      );
      console.log(
        table(
          ['id', 'kind', 'scope', 'detail', 'resolution', 'recorded'],
          o.found.map((d) => [
            d.id,
            d.kind,
            d.scope,
            d.detail,
            d.resolution,
            recordedNow.has(d.id) ? 'now' : 'before',
          ]),
        ),
      );
    });
    return outcome.status === 'complete' && open.length === 0 ? 0 : 1;
  } finally {
    await pool.end();
  }
}

async function reportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      account: { type: 'string', default: 'default' },
      date: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const date = parseDate('--date', values.date);
  const stream = `account-${values.account}`;
  const { pool, store } = await trading();
  try {
    emit(values.json, buildControlReport(stream, date, await store.load(stream)), printControlReport);
    return 0;
  } finally {
    await pool.end();
  }
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === 'report') return await reportCommand(rest);
    if (sub === 'replay') return await replayCommand(rest);
    if (sub === 'reconcile') return await reconcileCommand(rest);
    if (sub && ['init', 'submit', 'cancel', 'modify', 'status', 'positions', 'reset', 'prices'].includes(sub))
      return await apiCommand(sub, rest);
    console.error(USAGE);
    return 2;
  } catch (error) {
    if (
      error instanceof UsageError ||
      error instanceof CliUsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`error: ${(error as Error).message}`);
      console.error(USAGE);
      return 2;
    }
    throw error;
  }
}
