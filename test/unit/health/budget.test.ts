import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ExportBudget,
  exportBudget,
  reserveMillis,
  startsNow,
  WORST_CASE_BYTES_PER_SECOND,
  worstCaseMillis,
} from '../../../lambdas/health/budget';
import { DEFAULT_LIMITS } from '../../../lambdas/health/decode';
import { processExport } from '../../../lambdas/health/pipeline';
import { MemoryRecordStore } from '../../../lambdas/health/record-store';
import { rawKeyFor } from '../../../lambdas/health/source';
import { HEALTH_CONSUMERS } from '../../../lib/topology/health';
import { SAMPLES_DIR } from '../../fixtures/health/generator';
import { NOW } from './helpers';

const etl = HEALTH_CONSUMERS.find((c) => c.id === 'HealthEtl');
if (!etl) throw new Error('no HealthEtl consumer in lib/topology/health.ts');
const timeoutMs = etl.timeoutSeconds * 1000;

describe('health ETL time budget (issue 15, point 7)', () => {
  it('the largest export the decode limits accept fits one invocation with a fifth to spare', () => {
    // A file at every limit at once: the most bytes and the most records.
    const worst = worstCaseMillis({ bytes: DEFAULT_LIMITS.maxFileBytes, records: DEFAULT_LIMITS.maxRecords });
    expect(worst).toBeLessThanOrEqual(timeoutMs * 0.8);
  });

  it('inflated data (deflate, snappy) is bounded too: the total inflated limit fits the timeout', () => {
    // Decoding works on inflated bytes; a compressed export can hold more than its stored size.
    const perRecordInflated = DEFAULT_LIMITS.maxInflatedTotalBytes / DEFAULT_LIMITS.maxRecords;
    const worst = worstCaseMillis({
      bytes: DEFAULT_LIMITS.maxFileBytes,
      records: Math.min(DEFAULT_LIMITS.maxRecords, DEFAULT_LIMITS.maxInflatedTotalBytes / perRecordInflated),
    });
    expect(worst).toBeLessThanOrEqual(timeoutMs * 0.8);
  });

  it('the first object of an invocation always starts; later ones only when their worst case fits', () => {
    const big = DEFAULT_LIMITS.maxFileBytes;
    expect(startsNow({ first: true, remainingMs: 1_000, bytes: big })).toBe(true);
    expect(startsNow({ first: false, remainingMs: 1_000, bytes: big })).toBe(false);
    expect(startsNow({ first: false, remainingMs: timeoutMs, bytes: big })).toBe(true);
    // A real export (~30 KB) starts with a few seconds left, not with one.
    expect(startsNow({ first: false, remainingMs: 6_000, bytes: 30_000 })).toBe(true);
    expect(startsNow({ first: false, remainingMs: 4_000, bytes: 30_000 })).toBe(false);
  });

  it('a deferred object is not lost: it would fit a whole invocation of its own', () => {
    // Every object startsNow refuses is one the limits admit, so it starts as the first of a later
    // invocation; only an object over the limits could not, and the decoder quarantines those.
    for (const bytes of [1_000, 10 * 1024 * 1024, DEFAULT_LIMITS.maxFileBytes]) {
      expect(worstCaseMillis({ bytes })).toBeLessThan(timeoutMs);
    }
    expect(WORST_CASE_BYTES_PER_SECOND).toBeGreaterThan(0);
  });
});

describe('an object that runs out of its time budget (issue 15, point 7)', () => {
  const file = 'StepsRecord_1762261227317.avro';
  const input = (store: MemoryRecordStore, budget: ExportBudget) => ({
    bytes: readFileSync(join(SAMPLES_DIR, file)),
    source: { bucket: 'b', key: rawKeyFor(file), etag: file },
    store,
    now: new Date(NOW),
    budget,
  });

  it('keeps a quarter of the time left (at most 30 s) to end it cleanly', () => {
    expect(reserveMillis(timeoutMs)).toBe(30_000);
    expect(reserveMillis(8_000)).toBe(2_000);
    expect(exportBudget({ first: true, remainingMs: 8_000, now: 1_000 })).toEqual({
      deadline: 7_000,
      terminal: true,
    });
  });

  it('with a whole invocation to itself: quarantined at once as too_large_for_budget, nothing stored', async () => {
    const store = new MemoryRecordStore();
    const r = await processExport(input(store, { deadline: Date.now() - 1, terminal: true }));
    expect(r.status).toBe('quarantined');
    expect(r.reasons[0]).toMatch(/^too_large_for_budget: /);
    expect(r.quarantine?.sidecarBody).toMatch(/too_large_for_budget/);
    expect(await store.countRecords()).toBe(0);
    expect(await store.getIngest(r.sourceId)).toBeUndefined();
  });

  it('after another object: a failure the handler defers (a new message), nothing stored', async () => {
    const store = new MemoryRecordStore();
    const r = await processExport(input(store, { deadline: Date.now() - 1, terminal: false }));
    expect(r.status).toBe('failed');
    expect(r.error?.name).toBe('BudgetExceededError');
    expect(await store.countRecords()).toBe(0);
    // And the next attempt, in time, processes it.
    const again = await processExport(input(store, { deadline: Date.now() + 60_000, terminal: true }));
    expect(again.status).toBe('processed');
  });
});
