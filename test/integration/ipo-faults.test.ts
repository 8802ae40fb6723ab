import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKFILL_DAYS, backfillWindow } from '../../lambdas/market/backfill/job';
import { tradingDays } from '../../lambdas/market/calendar';
import { type IpoScanSummary, runIpoScan } from '../../lambdas/market/ipo/scan';
import { CHANNELS } from '../../lambdas/platform/event-bus';
import { pendingOutboxCount } from '../../lambdas/platform/outbox';
import { type IpoStage, seedSymbols, startIpoStage, streamEntries, waitUntil } from './ipo-support';

const D = '2025-06-16';
const LISTED = '2025-05-01';

describe('IPO scan and backfill while the provider answers 429 and 5xx for a stretch', () => {
  let stage: IpoStage;

  beforeAll(async () => {
    stage = await startIpoStage({
      label: 'ipo_faults',
      market: { seed: 'ipo-faults-it', size: 300, listings: { [LISTED]: 12 }, delistings: { [D]: 4 } },
      // One retry only, so the stretch outlasts the adapter's budget and the job-level recovery
      // (scan re-run, SQS redelivery) is what gets the work done.
      maxRetries: 1,
      visibilityTimeoutSeconds: 2,
      // Enough receives that the injected stretch cannot push a job into the DLQ by bad luck.
      maxReceiveCount: 10,
    });
    await seedSymbols(stage.db.pool, stage.api.market.activeOn(D), '2025-01-02');
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('finishes, with no duplicate symbols, bars or messages', { timeout: 150_000 }, async () => {
    // Prepare: a stretch of throttling and server errors starting now
    stage.api.control({
      rateLimit: { next: 14, retryAfterSeconds: 0 },
      serverErrors: { next: 10, status: 503 },
    });
    const listings = stage.api.listings();
    const { from } = backfillWindow(D, BACKFILL_DAYS);
    const expectedBars = new Map(
      listings.map((r) => [
        r.symbol,
        tradingDays((r.listDate as string) > from ? (r.listDate as string) : from, D).length,
      ]),
    );

    // Act: the scheduler re-runs a failed or incomplete scan
    const runs: (IpoScanSummary | Error)[] = [];
    for (let attempt = 0; attempt < 15; attempt++) {
      try {
        const summary = await runIpoScan(
          { pool: stage.db.pool, provider: stage.provider, transport: stage.transport },
          { date: D },
        );
        runs.push(summary);
        if (!summary.changed) break;
      } catch (error) {
        runs.push(error as Error);
      }
    }
    // ...and a second stretch hits the backfill consumer, which SQS redelivery has to get through
    stage.api.control({
      rateLimit: { next: 6, retryAfterSeconds: 0 },
      serverErrors: { next: 6, status: 502 },
    });
    const runner = await stage.startBackfillRunner();
    const drained = await waitUntil(async () => {
      const { rows } = await stage.db.pool.query<{ n: number }>(
        'SELECT count(*)::integer AS n FROM symbols WHERE initial_load_date = $1',
        [D],
      );
      return (
        rows[0]?.n === listings.length &&
        (await stage.queueDepth()) === 0 &&
        (await pendingOutboxCount(stage.db.pool)) === 0
      );
    }, 240);
    await runner.stop();
    while ((await stage.app.poll(100)) > 0);

    // Assess: the faults really happened and really got in the way
    const served = (stage.api.control({}).faults as { served: { rateLimited: number; serverErrors: number } })
      .served;
    expect(served.rateLimited).toBe(20);
    expect(served.serverErrors).toBe(16);
    const troubled = runs.filter((r) => r instanceof Error || r.failed > 0).length;
    expect(troubled).toBeGreaterThan(0);
    expect(drained).toBe(true);

    // Assess: exactly the listings, each once, with exactly its sessions of bars
    const { rows: added } = await stage.db.pool.query<{ symbol: string }>(
      'SELECT symbol FROM symbols WHERE first_seen = $1 ORDER BY symbol',
      [D],
    );
    expect(added.map((r) => r.symbol)).toEqual(listings.map((r) => r.symbol).sort());
    const { rows: bars } = await stage.db.pool.query<{ symbol: string; n: number; distinct_dates: number }>(
      `SELECT symbol, count(*)::integer AS n, count(DISTINCT date)::integer AS distinct_dates
       FROM ohlcv_daily GROUP BY symbol`,
    );
    expect(new Map(bars.map((b) => [b.symbol, b.n]))).toEqual(expectedBars);
    expect(bars.every((b) => b.n === b.distinct_dates)).toBe(true);
    const { rows: archived } = await stage.db.pool.query<{ n: number }>(
      'SELECT count(*)::integer AS n FROM symbols WHERE NOT active AND delisted_at = $1',
      [D],
    );
    expect(archived[0]?.n).toBe(4);

    // Assess: one message per fact, whatever the retries
    const entries = await streamEntries(stage.redis, stage.bus);
    const count = (c: string) => entries.get(c as never)?.length ?? 0;
    expect(count(CHANNELS.symbolsNew)).toBe(listings.length);
    expect(count(CHANNELS.symbolsArchived)).toBe(4);
    expect(count(CHANNELS.backfillStarted)).toBe(listings.length);
    expect(count(CHANNELS.backfillCompleted)).toBe(listings.length);
    // Maintenance brackets: one started and one completed per scan run that had work to do.
    const runsWithWork = runs.filter((r) => !(r instanceof Error) && r.changed).length;
    expect(count(CHANNELS.maintenanceCompleted)).toBe(runsWithWork);
    // A failed attempt's start notice is not repeated: the next attempt resumes that run.
    expect(count(CHANNELS.maintenanceStarted)).toBe(runsWithWork);
    const allIds = [...entries.values()].flat();
    expect(new Set(allIds).size).toBe(allIds.length);
    expect(stage.received.map((e) => e.envelope.message_id).sort()).toEqual([...allIds].sort());
    const symbolsNew = stage.received
      .filter((e) => e.channel === CHANNELS.symbolsNew)
      .map((e) => e.envelope.data.symbol);
    expect(new Set(symbolsNew).size).toBe(listings.length);
  });
});
