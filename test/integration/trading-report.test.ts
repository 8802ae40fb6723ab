/**
 * `trading report --date D`: the daily control report from a PostgreSQL event store after a scenario
 * (denials, a breaker trip, a reset) run through the engine; and the CLI's bad-date exit.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildControlReport } from '../../lambdas/trading/control-report';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { runScenario } from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createTestSchema, type TestSchema } from '../support/db';

const run = promisify(execFile);
let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('trading_report');
});
afterAll(async () => {
  await db.drop();
});

describe('trading report', () => {
  it('lists limits, denials, the breaker trip, the reset and state changes from the PostgreSQL store', {
    timeout: 120_000,
  }, async () => {
    const scenario = parseScenario(
      JSON.parse(await readFile('test/fixtures/trading/TC-CB-002.json', 'utf8')),
    );
    const store = new PostgresEventStore(db.pool);
    await runScenario(scenario, { store, stream: 'acct-r' });
    const events = await store.load('acct-r');
    const report = buildControlReport('acct-r', '2026-03-02', events);

    expect(report.limits[0]).toMatchObject({
      version: 1,
      limits: { liquidationBuffer: 0.3, maxLeverage: 3 },
    });
    const denied = events.filter((e) => e.type === 'OrderDenied');
    expect(denied.length).toBeGreaterThan(0);
    expect(report.denials.map((d) => d.clientOrderId)).toEqual(
      expect.arrayContaining(denied.map((e) => (e.type === 'OrderDenied' ? e.order.clientOrderId : ''))),
    );
    for (const d of report.denials) {
      expect(d.code).not.toBe('UNKNOWN');
      expect(d.detail.length).toBeGreaterThan(0);
    }
    expect(
      report.denials.find((d) => d.clientOrderId === denied[0]?.order?.clientOrderId)?.inputs,
    ).toMatchObject({
      symbol: 'AAPL',
    });
    expect(report.breakerTrips.length).toBeGreaterThan(0);
    for (const t of report.breakerTrips) {
      expect(Object.keys(t.inputs).length).toBeGreaterThan(0);
      expect(t.actions.length).toBeGreaterThan(0);
    }
    expect(report.resets.length).toBeGreaterThan(0);
    for (const r of report.resets) expect(r.by.length).toBeGreaterThan(0);
    expect(report.stateChanges.length).toBeGreaterThan(0);
    expect(report.reconciliation).toEqual([]);

    // Another day: nothing happened, the limits in force carry over.
    const next = buildControlReport('acct-r', '2026-03-03', events);
    expect(next.denials).toEqual([]);
    expect(next.breakerTrips).toEqual([]);
    expect(next.limits).toHaveLength(1);
  });

  it('exits 2 naming a bad date', { timeout: 60_000 }, async () => {
    const r = await run('node_modules/.bin/tsx', [
      'bin/pipeline.ts',
      'trading',
      'report',
      '--date',
      '2026-02-30',
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(2);
    expect((r as { stderr: string }).stderr).toContain('2026-02-30');
  });
});
