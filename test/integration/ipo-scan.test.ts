import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKFILL_DAYS, backfillWindow } from '../../lambdas/market/backfill/job';
import { tradingDays } from '../../lambdas/market/calendar';
import { runIpoScan } from '../../lambdas/market/ipo/scan';
import { CHANNELS } from '../../lambdas/platform/event-bus';
import { pendingOutboxCount } from '../../lambdas/platform/outbox';
import { type IpoStage, seedSymbols, startIpoStage, streamEntries, waitUntil } from './ipo-support';

// Scan date, and the listing dates of the 25 new symbols: some listed long before the 90-day
// window (history clipped to the window), some inside it, some on the scan date itself.
const D = '2025-06-16';
const LISTED_EARLY = '2025-02-03';
const LISTED_MID = '2025-05-19';

describe('IPO scan on the local stage: 25 listings and 10 delistings', () => {
  let stage: IpoStage;

  beforeAll(async () => {
    stage = await startIpoStage({
      label: 'ipo_scan',
      market: {
        seed: 'ipo-scan-it',
        size: 400,
        listings: { [LISTED_EARLY]: 5, [LISTED_MID]: 15, [D]: 5 },
        delistings: { [D]: 10 },
      },
    });
    // The symbol master as of the day before: every base-scenario symbol active on D.
    await seedSymbols(stage.db.pool, stage.api.market.activeOn(D), '2025-01-02');
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('adds exactly the listings, archives the delistings, backfills each over the window, and every message reaches an offline consumer exactly once', async () => {
    // Prepare
    const listings = stage.api.listings();
    const delisted = [...stage.api.delistings().keys()].sort();
    expect(listings).toHaveLength(25);
    expect(delisted).toHaveLength(10);
    const { from } = backfillWindow(D, BACKFILL_DAYS);
    const expectedBars = new Map(
      listings.map((r) => [
        r.symbol,
        tradingDays((r.listDate as string) > from ? (r.listDate as string) : from, D).length,
      ]),
    );

    // Act: the scan, then the backfill consumer drains the jobs it enqueued
    const summary = await runIpoScan(
      { pool: stage.db.pool, provider: stage.provider, transport: stage.transport },
      { date: D },
    );
    const runner = await stage.startBackfillRunner();
    const drained = await waitUntil(async () => {
      const { rows } = await stage.db.pool.query<{ n: number }>(
        'SELECT count(*)::integer AS n FROM symbols WHERE initial_load_date = $1',
        [D],
      );
      return (
        rows[0]?.n === 25 &&
        (await stage.queueDepth()) === 0 &&
        (await pendingOutboxCount(stage.db.pool)) === 0
      );
    });
    await runner.stop();
    // The app comes back online and reads what it missed.
    while ((await stage.app.poll(100)) > 0);

    // Assess: symbols
    expect(drained).toBe(true);
    expect(summary).toMatchObject({ changed: true, found: 25, processed: 25, failed: 0, archived: 10 });
    const { rows: added } = await stage.db.pool.query<{ symbol: string; first_seen: string }>(
      `SELECT symbol, first_seen::text FROM symbols WHERE first_seen = $1 ORDER BY symbol`,
      [D],
    );
    expect(added.map((r) => r.symbol)).toEqual(listings.map((r) => r.symbol).sort());
    const { rows: archived } = await stage.db.pool.query<{ symbol: string }>(
      `SELECT symbol FROM symbols WHERE NOT active AND delisted_at = $1 ORDER BY symbol`,
      [D],
    );
    expect(archived.map((r) => r.symbol)).toEqual(delisted);

    // Assess: bars = the NYSE sessions from max(list date, window start) to D, per symbol
    const { rows: bars } = await stage.db.pool.query<{
      symbol: string;
      n: number;
      first: string;
      last: string;
    }>(
      `SELECT symbol, count(*)::integer AS n, min(date)::text AS first, max(date)::text AS last
       FROM ohlcv_daily GROUP BY symbol`,
    );
    expect(new Map(bars.map((b) => [b.symbol, b.n]))).toEqual(expectedBars);
    expect(new Set([...expectedBars.values()])).toEqual(
      new Set([1, tradingDays(LISTED_MID, D).length, tradingDays(from, D).length]),
    );
    expect(bars.every((b) => b.last === D && b.first >= from)).toBe(true);

    // Assess: messages, each exactly once in the streams and delivered once to the offline consumer
    const entries = await streamEntries(stage.redis, stage.bus);
    const count = (c: string) => entries.get(c as never)?.length ?? 0;
    expect(count(CHANNELS.symbolsNew)).toBe(25);
    expect(count(CHANNELS.symbolsArchived)).toBe(10);
    expect(count(CHANNELS.backfillStarted)).toBe(25);
    expect(count(CHANNELS.backfillCompleted)).toBe(25);
    expect(count(CHANNELS.maintenanceStarted)).toBe(1);
    expect(count(CHANNELS.maintenanceCompleted)).toBe(1);
    expect(count(CHANNELS.symbolsChanged)).toBe(25); // every new CS listing joins a cap tier and sector
    const allIds = [...entries.values()].flat();
    expect(new Set(allIds).size).toBe(allIds.length);
    const { rows: outbox } = await stage.db.pool.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM market_outbox WHERE destination LIKE 'channel:%'`,
    );
    expect(allIds.length).toBe(outbox[0]?.n);
    expect(stage.received.map((e) => e.envelope.message_id).sort()).toEqual([...allIds].sort());

    const completed = stage.received.filter((e) => e.channel === CHANNELS.backfillCompleted);
    expect(
      new Map(
        completed.map((e) => [e.envelope.data.symbol as string, e.envelope.data.records_loaded as number]),
      ),
    ).toEqual(expectedBars);
    expect(completed.every((e) => e.envelope.data.success === true)).toBe(true);
    const news = stage.received.filter((e) => e.channel === CHANNELS.symbolsNew);
    expect(
      news.every((e) => e.envelope.data.detection_date === D && e.envelope.event_type === 'new_symbol'),
    ).toBe(true);
    const done = stage.received.find((e) => e.channel === CHANNELS.maintenanceCompleted);
    expect(done?.envelope.data.results).toMatchObject({ found: 25, processed: 25, failed: 0, archived: 10 });
    // Causal order for the app: a symbol is announced before its backfill starts.
    const seq = (channel: string, symbol: string) =>
      stage.received.findIndex((e) => e.channel === channel && e.envelope.data.symbol === symbol);
    for (const r of listings)
      expect(seq(CHANNELS.symbolsNew, r.symbol)).toBeLessThan(seq(CHANNELS.backfillStarted, r.symbol));

    // Assess: universe assignment went through the change log
    const { rows: changes } = await stage.db.pool.query<{ n: number }>(
      `SELECT count(DISTINCT symbol)::integer AS n FROM universe_changes WHERE change_type = 'ipo_assignment'`,
    );
    expect(changes[0]?.n).toBe(25);
  });

  it('a second run for the same date changes nothing and publishes nothing', async () => {
    // Prepare
    const before = await streamEntries(stage.redis, stage.bus);
    const { rows: snapshot } = await stage.db.pool.query(
      'SELECT symbol, active, delisted_at, first_seen, updated_at FROM symbols ORDER BY symbol',
    );

    // Act
    const summary = await runIpoScan(
      { pool: stage.db.pool, provider: stage.provider, transport: stage.transport },
      { date: D },
    );

    // Assess
    expect(summary).toMatchObject({
      changed: false,
      found: 0,
      processed: 0,
      archived: 0,
      messagesEnqueued: 0,
    });
    expect(await streamEntries(stage.redis, stage.bus)).toEqual(before);
    const { rows: after } = await stage.db.pool.query(
      'SELECT symbol, active, delisted_at, first_seen, updated_at FROM symbols ORDER BY symbol',
    );
    expect(after).toEqual(snapshot);
    expect(await stage.queueDepth()).toBe(0);
  });
});
