/**
 * The data-quality check against real PostgreSQL and Redis on scenario data with injected anomalies:
 * every session of the scenario is checked in order (as the EOD chain would), and the alerts are
 * compared with the generator's expected outcomes. Splits come from the local market API (the real
 * provider adapter over HTTP, /v3/reference/splits).
 */
import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holidays, type IsoDate, nextTradingDay } from '../../lambdas/market/calendar';
import { PolygonProvider } from '../../lambdas/market/provider';
import {
  alertMessageId,
  DEFAULT_QUALITY_CONFIG,
  QualityPublishError,
  type QualitySummary,
  runQualityCheck,
} from '../../lambdas/market/quality';
import { CHANNELS, type Channel, EventBus } from '../../lambdas/platform/event-bus';
import type { OutboxTransport } from '../../lambdas/platform/outbox';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';
import { type MarketApi, startMarketApi } from '../../localstack/market-api/server';
import { createScenarioMarket, type ExpectedEvent, type ScenarioMarket } from '../../localstack/scenarios';
import { loadScenario } from '../../localstack/scenarios/load';
import { createTestSchema, type TestSchema } from '../support/db';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SIZE = 300;

interface AlertRow {
  id: string;
  alert_type: string;
  symbol: string;
  trade_date: string;
  severity: string;
  kind: string;
  resolved_at: Date | null;
  created_at: Date;
}

/** The alert an expected anomaly must produce: [alert_type, kind, trade_date, severity]. */
function expectedAlert(e: ExpectedEvent): [string, string, IsoDate, string] | null {
  if (!e.anomaly) return null;
  switch (e.kind) {
    case 'price_jump':
      return ['price_anomaly', 'price_move', e.date, e.severity ?? '?'];
    case 'intraday_range':
      return ['price_anomaly', 'intraday_range', e.date, e.severity ?? '?'];
    // The provider reports the split: a corporate action, low severity, not a data error.
    case 'split':
      return ['price_anomaly', 'split', e.date, 'low'];
    case 'volume_spike':
    case 'volume_drought':
    case 'zero_volume':
      return ['volume_anomaly', e.kind, e.date, e.severity ?? '?'];
    case 'data_gap':
      return ['data_gap', 'missing_sessions', e.date, e.severity ?? '?'];
    case 'stale':
      return ['stale_data', 'stale', e.date, e.severity ?? '?'];
    default:
      return null;
  }
}

interface Harness {
  db: TestSchema;
  api: MarketApi;
  market: ScenarioMarket;
  redis: RedisClient;
  bus: EventBus;
  transport: OutboxTransport;
  provider: PolygonProvider;
  summaries: QualitySummary[];
}

async function setUp(scenario: string, seed: number): Promise<Harness> {
  const db = await createTestSchema(`quality_${scenario}`);
  const api = await startMarketApi({ port: 0, seed, size: SIZE, scenario });
  const market = createScenarioMarket({ scenario, seed, size: SIZE });
  await loadScenario(db.pool, market);
  const redis = createRedisClient({ url: REDIS_URL });
  await redis.connect();
  const bus = new EventBus({
    client: redis,
    service: 'data-quality-monitor',
    namespace: `test_quality_${randomBytes(4).toString('hex')}`,
  });
  const provider = new PolygonProvider({
    baseUrl: api.url,
    apiKey: async () => 'test-key',
    callsPerMinute: 60_000,
  });
  return { db, api, market, redis, bus, transport: transportOf(bus, redis), provider, summaries: [] };
}

/** The check publishes only to channels: a queue-bound row would be a bug, so it fails loudly. */
function transportOf(bus: EventBus, redis: RedisClient): OutboxTransport {
  return outboxTransport({
    bus,
    redis,
    sqs: new SQSClient({}),
    queueUrl: async (queue) => {
      throw new Error(`the quality check sends to no queue (asked for ${queue})`);
    },
  });
}

const QUALITY_CHANNELS: readonly Channel[] = [
  CHANNELS.qualityPriceAnomaly,
  CHANNELS.qualityVolumeAnomaly,
  CHANNELS.qualityDataGap,
  CHANNELS.qualityStaleData,
  CHANNELS.qualityDailySummary,
];

/** Every message id in the quality streams, with how many entries carry it. */
async function streamMessageIds(h: Harness): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const channel of QUALITY_CHANNELS) {
    for (const e of (await h.redis.xRange(h.bus.streamKey(channel), '-', '+')) ?? []) {
      const id = (JSON.parse(e.message.envelope ?? '{}') as { message_id: string }).message_id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

async function streamLengths(h: Harness): Promise<number[]> {
  return Promise.all(QUALITY_CHANNELS.map((c) => h.redis.xLen(h.bus.streamKey(c))));
}

async function tearDown(h: Harness | undefined): Promise<void> {
  if (!h) return;
  const keys = await h.redis.keys(`${h.bus.namespace}:*`);
  if (keys.length > 0) await h.redis.del(keys);
  await h.redis.close();
  await h.api.close();
  await h.db.drop();
}

async function alertRows(h: Harness): Promise<AlertRow[]> {
  const { rows } = await h.db.pool.query<AlertRow>(
    `SELECT id, alert_type, symbol, trade_date::text AS trade_date, severity, details->>'kind' AS kind,
            resolved_at, created_at
       FROM data_quality_alerts ORDER BY id`,
  );
  return rows;
}

/** Runs the check on every session after the first, in order, as the daily chain would. */
async function checkEverySession(h: Harness): Promise<void> {
  for (const day of h.market.days.slice(1)) {
    h.summaries.push(
      await runQualityCheck({ pool: h.db.pool, transport: h.transport, provider: h.provider }, day),
    );
  }
}

function precisionRecall(h: Harness, rows: readonly AlertRow[]) {
  const expected = new Map<string, string>();
  for (const e of h.market.expectedOutcomes().events) {
    const a = expectedAlert(e);
    if (a) expected.set(`${a[0]}|${e.symbol}|${a[2]}`, `${a[1]}|${a[3]}`);
  }
  const open = rows.filter((r) => r.resolved_at === null);
  const actual = new Map(
    open.map((r) => [`${r.alert_type}|${r.symbol}|${r.trade_date}`, `${r.kind}|${r.severity}`]),
  );
  const matched = [...actual.keys()].filter((k) => expected.has(k));
  const wrongClass = matched.filter((k) => expected.get(k) !== actual.get(k));
  return {
    expected: expected.size,
    actual: actual.size,
    precision: actual.size === 0 ? 1 : matched.length / actual.size,
    recall: expected.size === 0 ? 1 : matched.length / expected.size,
    missed: [...expected.keys()].filter((k) => !actual.has(k)),
    unexpected: [...actual.keys()].filter((k) => !expected.has(k)),
    wrongClass: wrongClass.map((k) => `${k}: expected ${expected.get(k)} got ${actual.get(k)}`),
  };
}

describe('quality check on halts_gaps (gaps, stale series, price and volume anomalies)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await setUp('halts_gaps', 61);
    await checkEverySession(h);
  }, 240_000);
  afterAll(() => tearDown(h));

  it('reports every injected anomaly with the right kind and severity, and nothing else (precision = recall = 1)', async () => {
    // Prepare: the scenario was checked session by session in beforeAll.
    const rows = await alertRows(h);

    // Act
    const pr = precisionRecall(h, rows);

    // Assess
    console.log(
      `halts_gaps: expected ${pr.expected}, open alerts ${pr.actual}, precision ${pr.precision.toFixed(3)}, recall ${pr.recall.toFixed(3)}`,
    );
    expect(pr.expected).toBeGreaterThan(40);
    expect(pr.missed).toEqual([]);
    expect(pr.unexpected).toEqual([]);
    expect(pr.wrongClass).toEqual([]);
    expect(pr.precision).toBe(1);
    expect(pr.recall).toBe(1);
    const kinds = new Set(rows.map((r) => r.kind));
    for (const k of [
      'price_move',
      'intraday_range',
      'volume_spike',
      'volume_drought',
      'missing_sessions',
      'stale',
    ])
      expect(kinds).toContain(k);
  });

  it('closes the stale alert a halt raised once its bars resume, and only for expected gaps', async () => {
    const rows = await alertRows(h);
    const gaps = h.market.expectedOutcomes().events.filter((e) => e.kind === 'data_gap');

    const resolved = rows.filter((r) => r.resolved_at !== null);

    // A halt of 3+ sessions is stale while it lasts (its last bar is the session before the gap).
    expect(resolved.length).toBe(
      gaps.filter((g) => g.size > DEFAULT_QUALITY_CONFIG.staleness.afterSessions).length,
    );
    for (const r of resolved) {
      expect(r.alert_type).toBe('stale_data');
      expect(gaps.some((g) => g.symbol === r.symbol && g.date === nextTradingDay(r.trade_date))).toBe(true);
    }
  });

  it('raises nothing for clean symbols, and counts gaps in NYSE sessions (holidays are not missing bars)', async () => {
    const rows = await alertRows(h);
    const clean = new Set(h.market.expectedOutcomes().cleanSymbols);
    const inPeriod = holidays(2025).filter((d) => d.date > h.market.start && d.date < h.market.end);
    const expectedGaps = new Map(
      h.market
        .expectedOutcomes()
        .events.filter((e) => e.kind === 'data_gap')
        .map((e) => [`${e.symbol}|${e.date}`, e.size]),
    );
    const { rows: gaps } = await h.db.pool.query<{
      key: string;
      missing: number;
      from: string;
      resumed: string;
    }>(
      `SELECT symbol || '|' || trade_date AS key, (details->>'missing_sessions')::int AS missing,
              details->>'from' AS from, details->>'resumed_on' AS resumed
         FROM data_quality_alerts WHERE alert_type = 'data_gap'`,
    );

    const onClean = rows.filter((r) => clean.has(r.symbol));
    const spanningHoliday = gaps.filter((g) => inPeriod.some((d) => d.date > g.from && d.date < g.resumed));
    const wrongSize = gaps.filter((g) => expectedGaps.get(g.key) !== g.missing);

    expect(clean.size).toBeGreaterThan(SIZE / 3);
    expect(inPeriod.length).toBeGreaterThanOrEqual(4);
    expect(onClean).toEqual([]);
    // Clean symbols trade straight through every holiday above without a gap alert, and a gap that
    // spans a holiday is measured in sessions, exactly the injected length.
    expect(wrongSize).toEqual([]);
    console.log(`halts_gaps: ${gaps.length} gaps, ${spanningHoliday.length} spanning a market holiday`);
  });

  it('skips a market holiday outright: no alerts, no metrics row', async () => {
    const holiday = holidays(2025).find((d) => d.date > h.market.start && d.date < h.market.end);
    const before = (await alertRows(h)).length;

    const summary = await runQualityCheck(
      { pool: h.db.pool, transport: h.transport, provider: h.provider },
      holiday?.date ?? '',
    );

    expect(summary.status).toBe('skipped');
    expect(summary.reason).toContain(holiday?.name);
    expect((await alertRows(h)).length).toBe(before);
    const { rows } = await h.db.pool.query('SELECT 1 FROM data_quality_metrics WHERE trade_date = $1', [
      holiday?.date,
    ]);
    expect(rows).toEqual([]);
  });

  it('writes one metrics row per checked session whose figures match the summary', async () => {
    const { rows } = await h.db.pool.query<{
      trade_date: string;
      total_alerts: number;
      symbols_checked: number;
    }>(
      'SELECT trade_date::text AS trade_date, total_alerts, symbols_checked FROM data_quality_metrics ORDER BY trade_date',
    );

    expect(rows.map((r) => r.trade_date)).toEqual(h.market.days.slice(1));
    for (const s of h.summaries) {
      const row = rows.find((r) => r.trade_date === s.tradeDate);
      expect(row?.total_alerts).toBe(s.totalAlerts);
      expect(row?.symbols_checked).toBe(s.symbolsChecked);
    }
  });

  it('re-running a date that changes nothing inserts no alert, keeps one metrics row and adds no stream entry', async () => {
    // Prepare: the busiest session of the scenario.
    const busiest = [...h.summaries].sort((a, b) => b.totalAlerts - a.totalAlerts)[0] as QualitySummary;
    const date = busiest.tradeDate;
    const rowsBefore = await alertRows(h);
    const lengthsBefore = await streamLengths(h);

    // Act: twice, as a retried step and an operator's re-run would.
    const again = await runQualityCheck(
      { pool: h.db.pool, transport: h.transport, provider: h.provider },
      date,
    );
    const third = await runQualityCheck(
      { pool: h.db.pool, transport: h.transport, provider: h.provider },
      date,
    );

    // Assess
    const rowsAfter = await alertRows(h);
    expect(busiest.published).toBeGreaterThan(1);
    expect([again.inserted, again.updated, again.published]).toEqual([0, 0, 0]);
    expect([third.inserted, third.updated, third.published]).toEqual([0, 0, 0]);
    expect(again.totalAlerts).toBe(busiest.totalAlerts);
    expect(rowsAfter.map((r) => [r.id, r.created_at.getTime()])).toEqual(
      rowsBefore.map((r) => [r.id, r.created_at.getTime()]),
    );
    const { rows: metrics } = await h.db.pool.query(
      'SELECT 1 FROM data_quality_metrics WHERE trade_date = $1',
      [date],
    );
    expect(metrics.length).toBe(1);
    expect(again.summaryMessageId).toBe(busiest.summaryMessageId);
    expect(await streamLengths(h)).toEqual(lengthsBefore);
    // Every message id is in the streams exactly once, the date's summary included.
    const ids = await streamMessageIds(h);
    expect([...ids.values()].filter((n) => n > 1)).toEqual([]);
    expect(ids.get(busiest.summaryMessageId ?? '')).toBe(1);
    // Alert messages carry the id derived from the alert.
    const priceMessages = (
      (await h.redis.xRange(h.bus.streamKey(CHANNELS.qualityPriceAnomaly), '-', '+')) ?? []
    ).map(
      (e) =>
        JSON.parse(e.message.envelope ?? '{}') as {
          message_id: string;
          severity: string;
          data: Record<string, string>;
        },
    );
    expect(priceMessages.length).toBeGreaterThan(0);
    for (const m of priceMessages) {
      expect(m.message_id).toBe(
        alertMessageId({
          alertType: 'price_anomaly',
          kind: m.data.kind as 'price_move',
          symbol: m.data.symbol ?? '',
          tradeDate: m.data.trade_date ?? '',
          severity: m.severity as 'low',
        }),
      );
    }
  });

  it('publishes every alert on its channel with a severity, and one summary per run', async () => {
    const rows = await alertRows(h);
    const byChannel = {
      price_anomaly: CHANNELS.qualityPriceAnomaly,
      volume_anomaly: CHANNELS.qualityVolumeAnomaly,
      data_gap: CHANNELS.qualityDataGap,
      stale_data: CHANNELS.qualityStaleData,
    } as const;

    for (const [type, channel] of Object.entries(byChannel)) {
      const entries = (await h.redis.xRange(h.bus.streamKey(channel), '-', '+')) ?? [];
      const published = new Set(
        entries.map(
          (e) => (JSON.parse(e.message.envelope ?? '{}') as { data: { alert_id: number } }).data.alert_id,
        ),
      );
      const stored = rows.filter((r) => r.alert_type === type).map((r) => Number(r.id));
      expect(stored.filter((id) => !published.has(id))).toEqual([]);
      for (const e of entries) expect(JSON.parse(e.message.envelope ?? '{}').severity).toBeDefined();
    }
    // One summary per run: every session after the first, plus the re-run of the previous test.
    expect(await h.redis.xLen(h.bus.streamKey(CHANNELS.qualityDailySummary))).toBeGreaterThanOrEqual(
      h.summaries.length,
    );
  });

  it('fails loudly when Redis does not confirm a publish, and the retry delivers the kept messages once', async () => {
    // Prepare: forget a date's findings so its run has messages to publish; streams of their own.
    const date = h.summaries.find((s) => s.totalAlerts > 0)?.tradeDate as IsoDate;
    await h.db.pool.query('DELETE FROM data_quality_alerts WHERE trade_date = $1', [date]);
    await h.db.pool.query('DELETE FROM market_outbox');
    const namespace = `${h.bus.namespace}_retry`;
    const bus = new EventBus({ client: h.redis, service: 'data-quality-monitor', namespace });
    const dead = createRedisClient({ url: REDIS_URL });
    await dead.connect();
    await dead.close();
    const deadBus = new EventBus({ client: dead, service: 'data-quality-monitor', namespace });
    const fresh: Harness = { ...h, bus };

    // Act
    const failed = runQualityCheck(
      { pool: h.db.pool, transport: transportOf(deadBus, dead), provider: h.provider },
      date,
    );
    await expect(failed).rejects.toBeInstanceOf(QualityPublishError);
    const { rows: kept } = await h.db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM market_outbox WHERE published_at IS NULL',
    );
    const retry = await runQualityCheck(
      { pool: h.db.pool, transport: transportOf(bus, h.redis), provider: h.provider },
      date,
    );

    // Assess: the failed run committed its rows and messages; the retry enqueued nothing new and
    // relayed what was kept, each message once.
    try {
      expect(kept[0]?.n).toBeGreaterThan(1);
      expect(retry.inserted).toBe(0);
      expect(retry.published).toBe(0);
      expect(retry.relay.delivered).toBe(kept[0]?.n);
      expect((await streamLengths(fresh)).reduce((s, n) => s + n, 0)).toBe(kept[0]?.n);
      expect([...(await streamMessageIds(fresh)).values()].filter((n) => n > 1)).toEqual([]);
    } finally {
      const keys = await h.redis.keys(`${namespace}:*`);
      if (keys.length > 0) await h.redis.del(keys);
    }
  });
});

describe('quality check on splits: provider-reported splits are corporate actions', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await setUp('splits', 7);
    await checkEverySession(h);
  }, 240_000);
  afterAll(() => tearDown(h));

  it('classifies every split as a split (low severity) and still matches every expected anomaly', async () => {
    const rows = await alertRows(h);
    const splits = h.market.expectedOutcomes().events.filter((e) => e.kind === 'split');

    const pr = precisionRecall(h, rows);
    const splitAlerts = rows.filter((r) => r.kind === 'split');

    console.log(
      `splits: ${splits.length} splits, expected ${pr.expected}, open alerts ${pr.actual}, precision ${pr.precision.toFixed(3)}, recall ${pr.recall.toFixed(3)}`,
    );
    expect(splits.length).toBeGreaterThan(20);
    expect(splitAlerts.map((r) => `${r.symbol}|${r.trade_date}`).sort()).toEqual(
      splits.map((s) => `${s.symbol}|${s.date}`).sort(),
    );
    expect(splitAlerts.every((r) => r.severity === 'low' && r.alert_type === 'price_anomaly')).toBe(true);
    expect(pr.missed).toEqual([]);
    expect(pr.unexpected).toEqual([]);
    expect(pr.wrongClass).toEqual([]);
    expect(pr.precision).toBe(1);
    expect(pr.recall).toBe(1);
  });
});

describe('quality check while the provider split lookup is unreachable', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await setUp('splits', 7);
    await checkEverySession(h);
  }, 240_000);
  afterAll(() => tearDown(h));

  it('records the price alerts as unverified instead of failing, and the next run re-classifies them and tells the app', async () => {
    // Prepare: a split date followed by another session; a provider that does not retry.
    const split = h.market
      .expectedOutcomes()
      .events.find((e) => e.kind === 'split' && h.market.days.indexOf(e.date) < h.market.days.length - 1);
    if (!split) throw new Error('the splits scenario has no split before its last session');
    const next = nextTradingDay(split.date);
    const flaky = new PolygonProvider({ baseUrl: h.api.url, apiKey: async () => 'test-key', maxRetries: 0 });
    const alertOf = async (date: string) =>
      (
        await h.db.pool.query<{ kind: string; severity: string; split_check: string | null }>(
          `SELECT details->>'kind' AS kind, severity, details->>'split_check' AS split_check
             FROM data_quality_alerts WHERE alert_type = 'price_anomaly' AND symbol = $1 AND trade_date = $2`,
          [split.symbol, date],
        )
      ).rows[0];

    // Act: the split date again while the provider answers 503, then the next session once it is back.
    h.api.control({ serverErrors: { next: 1000 } });
    let during: QualitySummary;
    try {
      during = await runQualityCheck(
        { pool: h.db.pool, transport: h.transport, provider: flaky },
        split.date,
      );
    } finally {
      h.api.control({ reset: true });
    }
    const whileDown = await alertOf(split.date);
    const after = await runQualityCheck(
      { pool: h.db.pool, transport: h.transport, provider: h.provider },
      next,
    );
    const reclassified = await alertOf(split.date);

    // Assess
    expect(during.status).toBe('checked');
    expect(during.unverified).toBeGreaterThan(0);
    expect(during.splitLookupError).toMatch(/503|server/i);
    expect(whileDown).toMatchObject({ kind: 'price_move', split_check: 'unverified' });
    expect(after.reclassified).toBeGreaterThanOrEqual(during.unverified);
    expect(reclassified).toEqual({ kind: 'split', severity: 'low', split_check: 'rechecked' });
    const id = alertMessageId({
      alertType: 'price_anomaly',
      symbol: split.symbol,
      tradeDate: split.date,
      kind: 'split',
      severity: 'low',
      details: { split_check: 'rechecked' },
    });
    expect((await streamMessageIds(h)).get(id)).toBe(1);
    const { rows: open } = await h.db.pool.query(
      `SELECT 1 FROM data_quality_alerts WHERE details->>'split_check' = 'unverified' AND resolved_at IS NULL`,
    );
    expect(open).toEqual([]);
  });
});
