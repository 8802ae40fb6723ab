/**
 * The `trading` CLI end to end, as a user runs it: `trading replay` (both stores, bad input) and the
 * order API subcommands against a PostgreSQL schema of their own.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TradingEngine } from '../../lambdas/trading/engine';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { MemoryEventStore } from '../../lambdas/trading/store';
import { runScenario } from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createTestSchema, type TestSchema } from '../support/db';

const run = promisify(execFile);

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run('node_modules/.bin/tsx', ['bin/pipeline.ts', 'trading', ...args], {
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let dir: string;
let db: TestSchema;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trading-cli-'));
  db = await createTestSchema('trading_cli', { migrate: false });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await db.drop();
});

describe('trading replay', () => {
  it('writes the same result.json on the PostgreSQL store as the in-process run, twice', {
    timeout: 180_000,
  }, async () => {
    const file = 'test/fixtures/trading/TC-CB-001.json';
    const expected = await runScenario(parseScenario(JSON.parse(await readFile(file, 'utf8'))), {
      store: new MemoryEventStore(),
      stream: 'x',
    });
    for (const [store, out] of [
      ['postgres', 'pg'],
      ['memory', 'mem'],
    ] as const) {
      const r = await cli(['replay', file, '--out', join(dir, out), '--store', store]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(await readFile(join(dir, out, 'result.json'), 'utf8'))).toEqual(expected);
    }
  });

  it('exits 2 naming every problem of a bad scenario', { timeout: 120_000 }, async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({
        start: 'noon',
        account: {},
        timeline: [{ at: '+1s', sell: 'everything' }, { prices: {} }],
      }),
    );
    const r = await cli(['replay', bad, '--out', join(dir, 'bad')]);
    expect(r.code).toBe(2);
    for (const part of ['start:', 'account.cash', 'timeline[0].sell: unknown action', 'timeline[1].at'])
      expect(r.stderr).toContain(part);
    const missing = await cli(['replay', bad]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--out DIR is required');
  });
});

describe('trading order API', () => {
  it('init, prices, submit, status, positions, cancel and reset against the event store', {
    timeout: 300_000,
  }, async () => {
    const env = { PG_SCHEMA: db.schema, DATABASE_URL: db.url };
    const account = ['--account', `cli_${randomBytes(3).toString('hex')}`];
    expect((await cli(['init', '--cash', '100000', ...account], env)).code).toBe(0);
    expect((await cli(['prices', 'AAPL=100', ...account], env)).code).toBe(0);
    // The CLI stamps its commands with the wall clock, and the market-hours rule refuses orders while
    // the market is closed: an operator's session override holds the session open, so what this test
    // checks does not depend on the hour it runs at (it failed from 20:00 to 04:00 New York time).
    const engine = await TradingEngine.open(new PostgresEventStore(db.pool), `account-${account[1]}`);
    await engine.market({ session: 'open' }, new Date().toISOString());
    await engine.settled();
    const submit = await cli(
      [
        'submit',
        '--id',
        'C1',
        '--symbol',
        'AAPL',
        '--side',
        'buy',
        '--qty',
        '10',
        '--type',
        'limit',
        '--limit-price',
        '100',
        '--tif',
        'gtc',
        ...account,
        '--json',
      ],
      env,
    );
    expect(submit.code).toBe(0);
    expect(JSON.parse(submit.stdout)).toMatchObject({
      clientOrderId: 'C1',
      status: 'pending_new',
      denial: null,
    });
    const duplicate = await cli(
      ['submit', '--id', 'C1', '--symbol', 'AAPL', '--side', 'buy', '--qty', '1', ...account],
      env,
    );
    expect(duplicate.code).toBe(1);
    // Human output by default: the order, its status and the denial's code and detail on one line.
    expect(duplicate.stdout).toMatch(/^C1: denied DUPLICATE_CLIENT_ORDER_ID: \S/);
    const status = JSON.parse((await cli(['status', 'C1', ...account, '--json'], env)).stdout);
    expect(status.order).toMatchObject({ clientOrderId: 'C1', status: 'pending_new', qty: 10 });
    const humanStatus = (await cli(['status', 'C1', ...account], env)).stdout;
    expect(humanStatus).toMatch(/^order\s+C1$/m);
    expect(humanStatus).toMatch(/^status\s+pending_new$/m);
    const cancel = await cli(['cancel', 'C1', ...account, '--json'], env);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ ok: true });
    const positions = JSON.parse((await cli(['positions', ...account, '--json'], env)).stdout);
    expect(positions.account.cash).toBe(100000);
    expect((await cli(['positions', ...account], env)).stdout).toMatch(/^cash\s+100,000/m);
    const reset = await cli(['reset', 'daily_loss', '--by', 'tester', ...account], env);
    expect(reset.code).toBe(1);
    expect(reset.stdout).toMatch(/^refused.*not tripped/);
    const { rows } = await db.pool.query<{ kind: string }>(
      `SELECT command->>'kind' AS kind FROM ${db.schema}.trading_outbox ORDER BY id`,
    );
    expect(rows.map((r) => r.kind)).toEqual(['submit', 'cancel']);
  });
});
