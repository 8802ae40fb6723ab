/**
 * Every seed channel (../shared/seeds 000 and 001) published under its stated condition, with the
 * seeds' envelope: `timestamp` (ISO UTC), `service` (the seeds' producer name), `event_type`,
 * `data.symbol` on every message about one symbol, `data.severity` (= the envelope's severity) on
 * every alert. One EOD run on the scenario market (real PostgreSQL schema, real Redis namespace,
 * the local market API in-process, LocalStack SQS and the real backfill handler behind the local
 * runner) with listings and delistings on the day, and real anomalies in the day's stored bars
 * before the quality check: a +60 % close, a 10x volume, a hole two sessions back, a symbol whose
 * last three bars are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, addTradingDays } from '../../lambdas/market/calendar';
import { runEodChain } from '../../lambdas/market/eod/chain';
import { runUniverseSync } from '../../lambdas/market/universe-sync/sync';
import {
  ALERT_CHANNELS,
  CHANNEL_SERVICE,
  CHANNELS,
  type Channel,
  decodeEnvelope,
  type Envelope,
  EventBus,
} from '../../lambdas/platform/event-bus';
import { pendingOutboxCount } from '../../lambdas/platform/outbox';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { type IpoStage, loadMarketUntil, stageTransportFor, startIpoStage, waitUntil } from './ipo-support';

const D = '2025-07-03';
const HISTORY_FROM = '2025-02-03';

/** The seeds' channels (001's automation and quality list, 000's REDIS_CHANNELS) and the EOD signal. */
const SEED_CHANNELS: readonly Channel[] = [
  CHANNELS.symbolsNew,
  CHANNELS.symbolsChanged,
  CHANNELS.symbolsArchived,
  CHANNELS.backfillStarted,
  CHANNELS.backfillProgress,
  CHANNELS.backfillCompleted,
  CHANNELS.maintenanceStarted,
  CHANNELS.maintenanceCompleted,
  CHANNELS.qualityPriceAnomaly,
  CHANNELS.qualityVolumeAnomaly,
  CHANNELS.qualityDataGap,
  CHANNELS.qualityStaleData,
  CHANNELS.qualityDailySummary,
  CHANNELS.universeUpdated,
  CHANNELS.cacheSyncComplete,
  CHANNELS.cacheIpoAssignment,
  CHANNELS.cacheDelistingCleanup,
  CHANNELS.etfCorrelationUpdate,
  CHANNELS.eodCompleted,
];

/** Channels whose every message is about one symbol (data.symbol). */
const PER_SYMBOL: ReadonlySet<Channel> = new Set<Channel>([
  CHANNELS.symbolsNew,
  CHANNELS.symbolsChanged,
  CHANNELS.symbolsArchived,
  CHANNELS.backfillStarted,
  CHANNELS.backfillProgress,
  CHANNELS.backfillCompleted,
  CHANNELS.qualityPriceAnomaly,
  CHANNELS.qualityVolumeAnomaly,
  CHANNELS.qualityDataGap,
  CHANNELS.qualityStaleData,
  CHANNELS.etfCorrelationUpdate,
]);

describe('every seed channel under its condition, with the seed envelope', () => {
  let stage: IpoStage;
  const injected = { move: '', spike: '', gap: '', stale: '' };

  async function envelopes(channel: Channel): Promise<Envelope[]> {
    const reply = (await stage.redis.sendCommand(['XRANGE', stage.bus.streamKey(channel), '-', '+'])) as [
      string,
      string[],
    ][];
    return reply.map(([, f]) => decodeEnvelope(channel, f[f.indexOf('envelope') + 1] ?? ''));
  }

  beforeAll(async () => {
    stage = await startIpoStage({
      label: 'seed_channels',
      market: { seed: 'seed-channels-it', size: 500, listings: { [D]: 3 }, delistings: { [D]: 3 } },
    });
    const eve = addDays(D, -1);
    await loadMarketUntil(stage, HISTORY_FROM, eve);
    // Four liquid common stocks that stay listed carry the anomalies.
    const delisted = new Set(stage.api.delistings().keys());
    const { rows } = await stage.db.pool.query<{ symbol: string }>(
      `SELECT b.symbol FROM ohlcv_daily b JOIN symbols s USING (symbol)
       WHERE b.date = $1::date AND s.type = 'CS' ORDER BY b.volume DESC, b.symbol LIMIT 20`,
      [addTradingDays(D, -1)],
    );
    const [move, spike, gap, stale] = rows.map((r) => r.symbol).filter((s) => !delisted.has(s)) as string[];
    Object.assign(injected, { move, spike, gap, stale });
    // The universes as they stood before D (built from the master; their messages go to a
    // namespace of their own), so D's delistings have universes to leave.
    const preNamespace = `${stage.namespace}_pre`;
    const preBus = new EventBus({ client: stage.redis, service: 'pre', namespace: preNamespace });
    await runUniverseSync(
      {
        pool: stage.db.pool,
        transport: outboxTransport({
          bus: preBus,
          redis: stage.redis,
          sqs: stage.sqs,
          queueUrl: async () => stage.queue.url,
        }),
      },
      { tradeDate: addTradingDays(D, -1), force: true },
    );
    const preKeys = await stage.redis.keys(`${preNamespace}:*`);
    if (preKeys.length > 0) await stage.redis.del(preKeys);
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('publishes each seed channel with timestamp, service, event_type, data.symbol and data.severity', async () => {
    // Act: the EOD run of D; the backfill worker drains the IPO scan's jobs
    const runner = await stage.startBackfillRunner();
    const result = await runEodChain(
      {
        pool: stage.db.pool,
        provider: stage.provider,
        transportFor: stageTransportFor(stage),
        beforeStep: async (step) => {
          if (step !== 'quality') return;
          // Real anomalies in the stored bars the check reads (the day's bars are loaded by now).
          const db = stage.db.pool;
          await db.query(
            `UPDATE ohlcv_daily SET close = close * 1.6, high = greatest(high, close * 1.6) WHERE symbol = $1 AND date = $2::date`,
            [injected.move, D],
          );
          await db.query(
            'UPDATE ohlcv_daily SET volume = volume * 10 WHERE symbol = $1 AND date = $2::date',
            [injected.spike, D],
          );
          await db.query('DELETE FROM ohlcv_daily WHERE symbol = $1 AND date = $2::date', [
            injected.gap,
            addTradingDays(D, -2),
          ]);
          await db.query('DELETE FROM ohlcv_daily WHERE symbol = $1 AND date > $2::date', [
            injected.stale,
            addTradingDays(D, -3),
          ]);
        },
      },
      { tradeDate: D },
    );
    const drained = await waitUntil(
      async () =>
        (await stage.queueDepth()) === 0 &&
        (await pendingOutboxCount(stage.db.pool)) === 0 &&
        (await envelopes(CHANNELS.backfillCompleted)).length === 3,
    );
    await runner.stop();

    // Assess: the run
    expect(result.status).toBe('COMPLETE');
    expect(result.correlationError).toBeUndefined();
    expect(drained).toBe(true);
    const listed = stage.api.listings().map((r) => r.symbol);
    const delisted = [...stage.api.delistings().keys()];
    expect(listed).toHaveLength(3);

    const by = new Map<Channel, Envelope[]>();
    for (const c of SEED_CHANNELS) by.set(c, await envelopes(c));
    const symbolsOf = (c: Channel) => new Set((by.get(c) ?? []).map((e) => e.data.symbol));

    // Assess: every seed channel carried the seed envelope
    for (const c of SEED_CHANNELS) {
      const list = by.get(c) ?? [];
      expect(list.length, c).toBeGreaterThan(0);
      for (const e of list) {
        expect(e.timestamp, c).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
        expect(e.service, c).toBe(CHANNEL_SERVICE[c]);
        expect(e.event_type, c).toMatch(/^[a-z_]+$/);
        if (PER_SYMBOL.has(c)) expect(typeof e.data.symbol, `${c} data.symbol`).toBe('string');
        if (ALERT_CHANNELS.has(c)) {
          expect(['low', 'medium', 'high', 'critical'], `${c} data.severity`).toContain(e.data.severity);
          expect(e.severity, c).toBe(e.data.severity);
        }
      }
    }

    // Assess: each under its condition
    expect(symbolsOf(CHANNELS.symbolsNew)).toEqual(new Set(listed));
    expect(symbolsOf(CHANNELS.symbolsArchived)).toEqual(new Set(delisted));
    for (const c of [CHANNELS.backfillStarted, CHANNELS.backfillProgress, CHANNELS.backfillCompleted]) {
      expect(symbolsOf(c), c).toEqual(new Set(listed));
    }
    for (const e of by.get(CHANNELS.backfillCompleted) ?? []) {
      expect(Number(e.data.records_loaded ?? e.data.records), 'records loaded').toBeGreaterThan(0);
    }
    // New common stocks join their universes (universe assignment): symbols.changed about them.
    const listedCs = stage.api
      .listings()
      .filter((r) => r.type === 'CS')
      .map((r) => r.symbol);
    for (const s of listedCs) expect(symbolsOf(CHANNELS.symbolsChanged)).toContain(s);
    expect(by.get(CHANNELS.maintenanceStarted)).toHaveLength(1);
    expect(by.get(CHANNELS.maintenanceCompleted)).toHaveLength(1);

    const alert = (c: Channel, symbol: string) => (by.get(c) ?? []).find((e) => e.data.symbol === symbol);
    expect(alert(CHANNELS.qualityPriceAnomaly, injected.move)?.data.severity).toBe('critical');
    expect(alert(CHANNELS.qualityVolumeAnomaly, injected.spike)?.data.severity).toBe('high');
    expect(alert(CHANNELS.qualityDataGap, injected.gap)).toBeDefined();
    expect(alert(CHANNELS.qualityStaleData, injected.stale)).toBeDefined();
    expect((by.get(CHANNELS.qualityDailySummary) ?? []).map((e) => e.data.trade_date ?? e.data.date)).toEqual(
      [D],
    );

    expect((by.get(CHANNELS.universeUpdated) ?? []).every((e) => e.data.trade_date === D)).toBe(true);
    expect(by.get(CHANNELS.cacheSyncComplete)).toHaveLength(1);
    const assigned = new Set(
      (by.get(CHANNELS.cacheIpoAssignment) ?? []).flatMap((e) =>
        (e.data.symbols as { symbol: string }[]).map((x) => x.symbol),
      ),
    );
    for (const s of listedCs) expect(assigned).toContain(s);
    const cleaned = new Set(
      (by.get(CHANNELS.cacheDelistingCleanup) ?? []).flatMap((e) =>
        (e.data.symbols as { symbol: string }[]).map((x) => x.symbol),
      ),
    );
    expect([...cleaned].every((s) => delisted.includes(s))).toBe(true);
    expect(cleaned.size).toBeGreaterThan(0);
    const { rows: etfs } = await stage.db.pool.query<{ symbol: string }>(
      `SELECT DISTINCT symbol FROM etf_correlations`,
    );
    expect(symbolsOf(CHANNELS.etfCorrelationUpdate)).toEqual(new Set(etfs.map((r) => r.symbol)));
    expect((by.get(CHANNELS.eodCompleted) ?? []).map((e) => [e.data.trade_date, e.data.status])).toEqual([
      [D, 'COMPLETE'],
    ]);
  });
});
