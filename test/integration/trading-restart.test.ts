/**
 * Restart property: for every recorded scenario, an engine restarted (rebuilt from the PostgreSQL
 * events) after every command holds, at each restart, exactly what the running engine held and what
 * the projection tables hold, and ends with exactly the result of an uninterrupted run. A command's
 * events are one transaction, so between commands is every point a crash can leave.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../lambdas/trading/pg-store';
import { replayScenario } from '../../localstack/trading/replay';
import { parseScenario } from '../../localstack/trading/scenario';
import { createTestSchema, type TestSchema } from '../support/db';

const DIR = 'test/fixtures/trading';
const CASES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

let db: TestSchema;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestSchema('trading_restart');
  store = new PostgresEventStore(db.pool);
});
afterAll(async () => {
  await db.drop();
});

describe('restarting the engine after every command rebuilds identical projections', () => {
  it('covers every plan case', () => {
    expect(CASES).toHaveLength(49);
  });

  it.each(CASES)('%s: restarted after every command = uninterrupted run', async (id) => {
    const scenario = parseScenario(JSON.parse(readFileSync(`${DIR}/${id}.json`, 'utf8')));
    const straight = await replayScenario(scenario, { store, stream: `straight-${id}` });
    const restarted = await replayScenario(scenario, {
      store,
      stream: `restarted-${id}`,
      restartEveryStep: true,
    });
    expect(restarted.restarts).toBeGreaterThan(straight.restarts);
    expect(restarted.result).toEqual(straight.result);
    const again = await replayScenario(scenario, { store, stream: `again-${id}` });
    expect(again.result).toEqual(straight.result);
  });
});
