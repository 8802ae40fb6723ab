import { describe, expect, it } from 'vitest';
import { BACKFILL_PROGRESS_STEPS, progressChunks } from '../../../lambdas/market/backfill/backfill';

describe('backfill progress steps', () => {
  it('splits a standard 90-day load (62 sessions) into four steps that cover every bar', () => {
    // Prepare / Act
    const sizes = progressChunks(62, 1000);

    // Assess
    expect(sizes).toEqual([16, 16, 15, 15]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(62);
    expect(BACKFILL_PROGRESS_STEPS).toBe(4);
  });

  it('gives one step per bar to a load smaller than the step count', () => {
    expect(progressChunks(1, 1000)).toEqual([1]);
    expect(progressChunks(3, 1000)).toEqual([1, 1, 1]);
  });

  it('never exceeds the chunk size on a long load', () => {
    // Prepare / Act
    const sizes = progressChunks(5000, 1000);

    // Assess
    expect(sizes).toHaveLength(5);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5000);
  });

  it('has no step for an empty load', () => {
    expect(progressChunks(0, 1000)).toEqual([]);
  });
});
