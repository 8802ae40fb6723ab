/**
 * The EOD chain on the local stage over three consecutive trading days around a market holiday
 * (2025-07-02, 07-03, [07-04 Independence Day], 07-07) of a scenario market with IPOs and
 * delistings: real PostgreSQL schema, real Redis (own event-bus namespace), the local market API
 * in-process, LocalStack SQS for the IPO scan's backfill jobs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays } from '../../lambdas/market/calendar';
import { type EodChainDeps, type EodChainResult, runEodChain } from '../../lambdas/market/eod/chain';
import { EOD_SIGNAL_CHANNEL, eodSignalOfEnvelope } from '../../lambdas/market/eod/signal';
import { etfThemeOf } from '../../lambdas/market/ipo/classify';
import { CHANNELS, type Channel, decodeEnvelope, type Envelope } from '../../lambdas/platform/event-bus';
import { type IpoStage, loadMarketUntil, stageTransportFor, startIpoStage } from './ipo-support';

const D1 = '2025-07-02';
const D2 = '2025-07-03';
const HOLIDAY = '2025-07-04';
const D3 = '2025-07-07';
const HISTORY_FROM = '2025-05-01';
const OWNED = new Set(['market_cap', 'sector', 'theme', 'etf', 'ipo']);

type Snapshot = Map<string, string[]>;

async function snapshot(stage: IpoStage): Promise<Snapshot> {
  const { rows } = await stage.db.pool.query<{ key: string; symbols: string[] }>(
    `SELECT u.category || '/' || u.name AS key,
            coalesce(array_agg(m.symbol ORDER BY m.ordinal) FILTER (WHERE m.symbol IS NOT NULL), '{}') AS symbols
     FROM universes u LEFT JOIN universe_members m ON m.universe_id = u.id
     GROUP BY 1 ORDER BY 1`,
  );
  return new Map(rows.map((r) => [r.key, r.symbols]));
}

async function envelopes(stage: IpoStage, channel: Channel): Promise<Envelope[]> {
  const reply = (await stage.redis.sendCommand(['XRANGE', stage.bus.streamKey(channel), '-', '+'])) as [
    string,
    string[],
  ][];
  return reply.map(([, fields]) => decodeEnvelope(channel, fields[fields.indexOf('envelope') + 1] ?? ''));
}

async function allMessageIds(stage: IpoStage): Promise<{ entries: Map<Channel, number>; ids: Set<string> }> {
  const entries = new Map<Channel, number>();
  const ids = new Set<string>();
  for (const channel of Object.values(CHANNELS)) {
    const list = await envelopes(stage, channel);
    entries.set(channel, list.length);
    for (const e of list) ids.add(e.message_id);
  }
  return { entries, ids };
}

// ---- the independent recomputation (plain TS over the symbols table and ohlcv_daily) ----

interface Row {
  symbol: string;
  type: string | null;
  active: boolean;
  delisted_at: string | null;
  list_date: string | null;
  first_seen: string;
  market_cap: string | null;
  sector: string | null;
  sic_code: string | null;
  name: string | null;
  issuer: string | null;
  underlying_index: string | null;
  aum: string | null;
}

const SIC_THEMES: Record<string, [number, number][]> = {
  semiconductors: [[3674, 3674]],
  software: [[7370, 7379]],
  biotech_pharma: [
    [2833, 2836],
    [8731, 8731],
  ],
  medical_devices: [[3841, 3851]],
  banks: [[6020, 6029]],
  oil_gas: [
    [1300, 1399],
    [2911, 2911],
  ],
  autos: [[3711, 3716]],
  reits: [[6798, 6798]],
  ecommerce: [[5961, 5961]],
  utilities: [[4900, 4949]],
};

async function recompute(stage: IpoStage, day: string): Promise<Snapshot> {
  const { rows } = await stage.db.pool.query<Row>(
    `SELECT symbol, type, active, delisted_at::text, list_date::text, first_seen::text, market_cap, sector,
            sic_code, name, issuer, underlying_index, aum FROM symbols`,
  );
  const { rows: bars } = await stage.db.pool.query<{ symbol: string; close: number; volume: string }>(
    'SELECT symbol, close, volume FROM ohlcv_daily ORDER BY symbol, date DESC',
  );
  const last20 = new Map<string, { close: number; volume: number }[]>();
  for (const b of bars) {
    const list = last20.get(b.symbol) ?? [];
    if (list.length < 20) list.push({ close: b.close, volume: Number(b.volume) });
    last20.set(b.symbol, list);
  }
  const ok = (r: Row) =>
    r.active &&
    (r.delisted_at === null || r.delisted_at > day) &&
    (r.list_date === null || r.list_date <= day);
  const cap = (r: Row) => Number(r.market_cap);
  const byCap = (a: Row, b: Row) => cap(b) - cap(a) || (a.symbol < b.symbol ? -1 : 1);
  const stocks = rows
    .filter((r) => ok(r) && r.type === 'CS' && r.market_cap !== null && cap(r) > 0)
    .sort(byCap);
  const out: Snapshot = new Map();
  const put = (key: string, list: Row[]) =>
    out.set(
      key,
      list.map((r) => r.symbol),
    );
  for (const n of [100, 500, 1000, 2000]) put(`market_cap/top_${n}`, stocks.slice(0, n));
  put(
    'market_cap/mega',
    stocks.filter((r) => cap(r) >= 200e9),
  );
  put(
    'market_cap/large',
    stocks.filter((r) => cap(r) >= 10e9 && cap(r) < 200e9),
  );
  put(
    'market_cap/mid',
    stocks.filter((r) => cap(r) >= 2e9 && cap(r) < 10e9),
  );
  put(
    'market_cap/small',
    stocks.filter((r) => cap(r) >= 300e6 && cap(r) < 2e9),
  );
  put(
    'market_cap/micro',
    stocks.filter((r) => cap(r) < 300e6),
  );
  const sectors = new Map<string, Row[]>();
  for (const r of stocks) {
    if (!r.sector) continue;
    const key = r.sector.toLowerCase().replace(/[^a-z0-9]+/g, '_');
    sectors.set(key, [...(sectors.get(key) ?? []), r]);
  }
  for (const [key, list] of sectors) {
    put(`sector/${key}`, list);
    put(`sector/${key}_leaders`, list.slice(0, 10));
  }
  for (const [theme, ranges] of Object.entries(SIC_THEMES)) {
    put(
      `theme/${theme}`,
      stocks.filter((r) => ranges.some(([a, b]) => Number(r.sic_code) >= a && Number(r.sic_code) <= b)),
    );
  }
  const etfs = rows
    .filter((r) => ok(r) && r.type === 'ETF')
    .filter((r) => {
      const b = last20.get(r.symbol) ?? [];
      if (b.length === 0) return false;
      const dollar = b.reduce((s, x) => s + x.close * x.volume, 0) / b.length;
      return dollar >= 2e6 && Number(r.aum) >= 50e6 && r.aum !== null && (b[0]?.close ?? 0) >= 5;
    })
    .sort((a, b) => Number(b.aum) - Number(a.aum) || (a.symbol < b.symbol ? -1 : 1));
  for (const theme of [
    'broad_market',
    'sector',
    'growth',
    'value',
    'dividend',
    'international',
    'commodities',
    'technology',
    'bonds',
  ]) {
    put(
      `etf/${theme}`,
      etfs.filter(
        (r) => etfThemeOf({ name: r.name, issuer: r.issuer, underlyingIndex: r.underlying_index }) === theme,
      ),
    );
  }
  put(
    'ipo/recent',
    rows
      .filter(
        (r) =>
          ok(r) &&
          (r.type === 'CS' || r.type === 'ETF') &&
          r.first_seen > addDays(day, -30) &&
          r.first_seen <= day,
      )
      .sort((a, b) =>
        a.first_seen > b.first_seen ? -1 : a.first_seen < b.first_seen ? 1 : a.symbol < b.symbol ? -1 : 1,
      ),
  );
  return out;
}

/** Change-log rows written by the sync (the IPO scan's own assignments carry another reason). */
async function syncAuditRows(stage: IpoStage): Promise<number> {
  const { rows } = await stage.db.pool.query<{ n: number }>(
    `SELECT count(*)::integer AS n FROM universe_changes
     WHERE change_type IN ('market_cap_rebalance', 'sector_rebalance', 'theme_rebalance', 'etf_universe_update',
                           'ipo_rebalance', 'delisting_cleanup')
        OR (change_type = 'ipo_assignment' AND reason LIKE 'first seen within%')`,
  );
  return rows[0]?.n ?? 0;
}

/** Owned universes as stored, with empty (never created) ones dropped on both sides. */
function owned(s: Snapshot): Snapshot {
  return new Map([...s].filter(([k, v]) => OWNED.has(k.split('/')[0] as string) && v.length > 0).sort());
}

function diff(before: Snapshot, after: Snapshot): Map<string, { added: string[]; removed: string[] }> {
  const out = new Map<string, { added: string[]; removed: string[] }>();
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const b = new Set(before.get(key) ?? []);
    const a = new Set(after.get(key) ?? []);
    const added = [...a].filter((x) => !b.has(x)).sort();
    const removed = [...b].filter((x) => !a.has(x)).sort();
    if (added.length + removed.length > 0) out.set(key, { added, removed });
  }
  return out;
}

describe('eod run: three trading days around a holiday with IPOs and delistings', () => {
  let stage: IpoStage;
  let deps: EodChainDeps;
  let beforeSync: Snapshot = new Map();
  let auditBeforeSync = 0;

  beforeAll(async () => {
    stage = await startIpoStage({
      label: 'eod_chain',
      market: {
        seed: 'eod-chain-it',
        size: 500,
        listings: { [D1]: 3, [D2]: 2, [D3]: 3 },
        delistings: { [D2]: 4, [D3]: 3 },
      },
    });
    // The market as of the evening before D1: symbol master and ~2 months of bars.
    await loadMarketUntil(stage, HISTORY_FROM, addDays(D1, -1));
    deps = {
      pool: stage.db.pool,
      provider: stage.provider,
      transportFor: stageTransportFor(stage),
      beforeStep: async (step) => {
        if (step === 'sync') {
          beforeSync = await snapshot(stage);
          auditBeforeSync = await syncAuditRows(stage);
        }
      },
    };
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('syncs universes equal to an independent recomputation, announces exactly the changes, skips the holiday, and a re-run changes and publishes nothing', async () => {
    const seenSignals: string[] = [];
    for (const day of [D1, D2, HOLIDAY, D3]) {
      // Prepare
      const streamsBefore = await allMessageIds(stage);
      const updatedBefore = (await envelopes(stage, CHANNELS.universeUpdated)).length;
      const completeBefore = (await envelopes(stage, CHANNELS.cacheSyncComplete)).length;
      const unchangedBefore = await snapshot(stage);

      // Act
      const result: EodChainResult = await runEodChain(deps, { tradeDate: day });

      // Assess: the holiday is skipped and touches nothing
      if (day === HOLIDAY) {
        expect(result.status).toBe('skipped');
        expect(result.reason).toContain('Independence Day');
        expect(await snapshot(stage)).toEqual(unchangedBefore);
        expect((await allMessageIds(stage)).entries).toEqual(streamsBefore.entries);
        const { rows } = await stage.db.pool.query('SELECT 1 FROM eod_runs WHERE trade_date = $1', [day]);
        expect(rows).toHaveLength(0);
        continue;
      }
      expect(result.ok).toBe(true);
      expect(result.status).toBe('COMPLETE');
      expect(result.sync?.status).toBe('synced');
      expect(result.sync?.eodStatus).toBe('COMPLETE');

      // Assess: the universes equal the recomputation from the symbols table
      const after = await snapshot(stage);
      expect(owned(after)).toEqual(owned(await recompute(stage, day)));
      // Every member of every universe is a known, active symbol (delisting cleanup).
      const { rows: invalid } = await stage.db.pool.query('SELECT * FROM validate_universe_symbols()');
      expect(invalid).toEqual([]);

      // Assess: one universe.updated per changed universe, describing exactly its change
      const changes = diff(beforeSync, after);
      expect(changes.size).toBeGreaterThan(0);
      const updated = (await envelopes(stage, CHANNELS.universeUpdated)).slice(updatedBefore);
      expect(
        new Map(
          updated.map((e) => [
            `${e.data.category}/${e.data.universe}`,
            {
              added: [...(e.data.added as string[])].sort(),
              removed: [...(e.data.removed as string[])].sort(),
            },
          ]),
        ),
      ).toEqual(changes);
      expect(updated).toHaveLength(changes.size);
      expect(updated.every((e) => e.data.trade_date === day && e.service === 'cache_sync')).toBe(true);
      const complete = (await envelopes(stage, CHANNELS.cacheSyncComplete)).slice(completeBefore);
      expect(complete).toHaveLength(1);
      const totalChanges = [...changes.values()].reduce((n, c) => n + c.added.length + c.removed.length, 0);
      expect(complete[0]?.data).toMatchObject({
        trade_date: day,
        total_changes: totalChanges,
        universes_changed: changes.size,
      });
      // Audit log: one row per change the sync made (the net diff: no symbol churns within a run).
      expect((await syncAuditRows(stage)) - auditBeforeSync).toBe(totalChanges);
      // The IPO universe's joins and leaves carry one label (ipo), never ipo_assignment in one run
      // and ipo in the next; ipo_assignment is a recent IPO joining its other universes.
      const ipoRecent = updated.find((e) => e.data.category === 'ipo' && e.data.universe === 'recent');
      if (ipoRecent) expect(Object.keys(ipoRecent.data.by_task as object)).toEqual(['ipo']);
      const { rows: ipoLabels } = await stage.db.pool.query<{ change_type: string }>(
        `SELECT DISTINCT change_type FROM universe_changes
          WHERE category = 'ipo' AND universe = 'recent' AND reason NOT LIKE 'new listing detected%'`,
      );
      expect(ipoLabels.map((r) => r.change_type)).not.toContain('ipo_assignment');
      expect(ipoLabels.map((r) => r.change_type)).toContain('ipo_rebalance');

      // Assess: the EOD signal, one definition on both ends, published once for the date
      const signals = (await envelopes(stage, EOD_SIGNAL_CHANNEL)).map(eodSignalOfEnvelope);
      seenSignals.push(day);
      expect(signals.map((s) => s.trade_date)).toEqual(seenSignals);
      expect(signals.at(-1)).toMatchObject({ trade_date: day, status: 'COMPLETE' });

      // Assess: IPOs and delistings of the day reached the universes
      if (day !== D1) {
        const delisted = [...stage.api.delistings()].filter(([, d]) => d === day).map(([s]) => s);
        expect(delisted.length).toBeGreaterThan(0);
        for (const s of delisted) expect([...after.values()].some((m) => m.includes(s))).toBe(false);
      }
      const listed = stage.api
        .listings()
        .filter((r) => r.listDate === day && r.type === 'CS')
        .map((r) => r.symbol);
      for (const s of listed) expect(after.get('ipo/recent')).toContain(s);

      // Act: re-run the same day
      const idsBefore = await allMessageIds(stage);
      const rerun = await runEodChain(deps, { tradeDate: day });

      // Assess: nothing changes, nothing new is published
      expect(rerun.load).toMatchObject({ inserted: 0, updated: 0 });
      expect(rerun.ipoScan?.changed).toBe(false);
      expect(rerun.complete?.signalEnqueued).toBe(false);
      expect(rerun.sync).toMatchObject({ totalChanges: 0, messagesEnqueued: 0 });
      expect(await snapshot(stage)).toEqual(after);
      const idsAfter = await allMessageIds(stage);
      // The quality check re-publishes its findings with the same message ids (its at-least-once
      // contract); no message id is new and no EOD/universe/cache stream grew.
      expect(idsAfter.ids).toEqual(idsBefore.ids);
      for (const c of [
        EOD_SIGNAL_CHANNEL,
        CHANNELS.universeUpdated,
        CHANNELS.cacheSyncComplete,
        CHANNELS.cacheIpoAssignment,
        CHANNELS.cacheDelistingCleanup,
        CHANNELS.symbolsNew,
        CHANNELS.symbolsArchived,
      ]) {
        expect(idsAfter.entries.get(c)).toBe(idsBefore.entries.get(c));
      }
    }
  });
});
