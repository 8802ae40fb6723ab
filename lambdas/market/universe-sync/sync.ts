/**
 * The universe (cache) sync of one trade date. Consumes the EOD completion signal through its one
 * definition (../eod/signal): runs on COMPLETE, skips on INCOMPLETE unless forced, fails when the
 * date was never signalled (the chain is out of order) unless forced.
 *
 * One transaction applies every universe: under MVCC the app keeps reading the previous membership
 * until COMMIT and never a half-updated set, and never blocks on the sync. Per universe up to three
 * update_universe() calls, so the change log names the real cause of each change:
 *   1. delisting_cleanup - inactive/unknown members leave (every universe, owned or not);
 *   2. ipo_assignment   - recent IPOs the target holds join (not ipo/recent: that is the ipo
 *      rebalance's own list, so its joins and leaves carry one label, ipo_rebalance);
 *   3. the rule's rebalance (market_cap_rebalance, sector_rebalance, ...) - the rest.
 * Messages go into the outbox in the same transaction (exactly once per change; re-runs that change
 * nothing enqueue nothing) and are relayed after COMMIT.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { CHANNELS, SEED_SERVICES } from '../../platform/event-bus';
import {
  enqueueOutbox,
  type OutboxMessage,
  type OutboxTransport,
  type RelayResult,
  relayOutbox,
} from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import { type IsoDate, toDayNumber } from '../calendar';
import { readEodSignal } from '../eod/signal';
import { markToMarket } from '../fundamentals/refresh';
import { toNumberOrNull } from '../sql/db';
import { refreshSymbolLiquidity, type UniverseCategory, updateUniverse } from '../sql/universes';
import {
  buildTargets,
  CHANGE_TYPE,
  cleanupReason,
  DEFAULT_SYNC_RULES,
  isRecentIpo,
  type SyncRulesConfig,
  type SyncSymbol,
  type SyncTask,
  type UniverseTarget,
} from './rules';

export const SYNC_SERVICE = SEED_SERVICES.cacheSync;
/** Categories whose universes the sync rebuilds completely; others only get the delisting cleanup. */
export const OWNED_CATEGORIES: ReadonlySet<string> = new Set(['market_cap', 'sector', 'theme', 'etf', 'ipo']);

export class EodSignalMissingError extends Error {
  constructor(readonly tradeDate: IsoDate) {
    super(
      `no EOD completion signal recorded for ${tradeDate}: run the EOD chain (load, IPO scan, quality, complete) first, or force the sync`,
    );
    this.name = 'EodSignalMissingError';
  }
}

export interface UniverseSyncDeps {
  readonly pool: pg.Pool;
  readonly transport: OutboxTransport;
}

export interface UniverseSyncOptions {
  readonly tradeDate: IsoDate;
  /** Run even without a COMPLETE signal (operator re-sync). */
  readonly force?: boolean;
  readonly rules?: SyncRulesConfig;
}

export interface TaskTotals {
  universes: number;
  added: number;
  removed: number;
}

export interface UniverseDelta {
  readonly category: string;
  readonly universe: string;
  readonly added: string[];
  readonly removed: string[];
  readonly symbolCount: number;
  readonly byTask: Partial<Record<SyncTask, { added: number; removed: number }>>;
}

export interface UniverseSyncSummary {
  readonly tradeDate: IsoDate;
  readonly status: 'synced' | 'skipped';
  readonly reason?: string;
  readonly eodStatus: 'COMPLETE' | 'INCOMPLETE' | null;
  readonly forced: boolean;
  readonly universes: number;
  readonly universesChanged: number;
  readonly totalChanges: number;
  readonly byTask: Partial<Record<SyncTask, TaskTotals>>;
  readonly deltas: UniverseDelta[];
  readonly messagesEnqueued: number;
  /** Symbols whose market cap (or fund assets) the sync re-valued at the session's close. */
  readonly marketCapsMarked: number;
  readonly relay: RelayResult;
  readonly seconds: number;
}

const NO_RELAY: RelayResult = { delivered: 0, recovered: 0, failed: 0, errors: [] };

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The symbol master with the liquidity snapshot, as the rules see it. */
export async function loadSyncSymbols(
  db: pg.Pool | pg.PoolClient,
  lookbackDays: number,
): Promise<SyncSymbol[]> {
  const { rows } = await db.query<{
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
    avg_volume: number | null;
    avg_dollar_volume: number | null;
    last_close: number | null;
  }>(
    // Dates as text: node-postgres would turn them into local-midnight Dates.
    `SELECT s.symbol, s.type, s.active, s.delisted_at::text, s.list_date::text, s.first_seen::text,
            s.market_cap, s.sector, s.sic_code, s.name, s.issuer, s.underlying_index, s.aum,
            l.avg_volume, l.avg_dollar_volume, l.last_close
     FROM symbols s
     LEFT JOIN symbol_liquidity l ON l.symbol = s.symbol AND l.lookback_days = $1`,
    [lookbackDays],
  );
  return rows.map((r) => ({
    symbol: r.symbol,
    type: r.type,
    active: r.active,
    delistedAt: r.delisted_at,
    listDate: r.list_date,
    firstSeen: r.first_seen,
    marketCap: toNumberOrNull(r.market_cap),
    sector: r.sector,
    sicCode: r.sic_code,
    name: r.name,
    issuer: r.issuer,
    underlyingIndex: r.underlying_index,
    aum: toNumberOrNull(r.aum),
    avgVolume: r.avg_volume,
    avgDollarVolume: r.avg_dollar_volume,
    lastClose: r.last_close,
  }));
}

/** Refreshes the liquidity snapshot unless it already reflects the newest bars with this lookback. */
async function ensureFreshLiquidity(pool: pg.Pool, lookbackDays: number): Promise<void> {
  const { rows } = await pool.query<{ fresh: boolean }>(
    `SELECT coalesce((SELECT max(as_of_date) FROM symbol_liquidity WHERE lookback_days = $1)
                     = (SELECT max(date) FROM ohlcv_daily), false) AS fresh`,
    [lookbackDays],
  );
  if (!rows[0]?.fresh) await refreshSymbolLiquidity(pool, lookbackDays);
}

/** JSON with sorted keys: jsonb returns keys in its own order. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export async function runUniverseSync(
  deps: UniverseSyncDeps,
  options: UniverseSyncOptions,
): Promise<UniverseSyncSummary> {
  const started = performance.now();
  const { tradeDate } = options;
  toDayNumber(tradeDate);
  const rules = options.rules ?? DEFAULT_SYNC_RULES;
  const forced = options.force ?? false;
  const signal = await readEodSignal(deps.pool, tradeDate);
  const base = { tradeDate, eodStatus: signal?.status ?? null, forced };
  if (!signal && !forced) throw new EodSignalMissingError(tradeDate);
  if (signal?.status === 'INCOMPLETE' && !forced) {
    return {
      ...base,
      status: 'skipped',
      reason: `EOD for ${tradeDate} is INCOMPLETE (${signal.symbols_with_bar}/${signal.tracked_symbols} symbols with a bar, threshold ${signal.threshold}); universes left as they were`,
      universes: 0,
      universesChanged: 0,
      totalChanges: 0,
      byTask: {},
      deltas: [],
      messagesEnqueued: 0,
      marketCapsMarked: 0,
      relay: await relayOutbox(deps.pool, deps.transport),
      seconds: (performance.now() - started) / 1000,
    };
  }
  const lookback = rules.etfLiquidityFilter.lookback_days ?? 20;
  await ensureFreshLiquidity(deps.pool, lookback);

  const result = await withTransaction(deps.pool, async (client) => {
    // Two syncs (a retry racing a slow attempt) take turns instead of diffing the same old state.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('universe-sync'))");
    // Fresh values first: market caps and fund assets at the session's close (shares x close), so
    // the tiers, top-N lists and the ETF AUM filter re-tier from today's prices.
    const marked = await markToMarket(client, tradeDate);
    const symbols = await loadSyncSymbols(client, lookback);
    const master = new Map(symbols.map((s) => [s.symbol, s]));
    const targets = new Map<string, UniverseTarget>(
      buildTargets(symbols, tradeDate, rules).map((t) => [`${t.category}/${t.name}`, t]),
    );

    // Every universe row locked in one (category, name) order, the order the IPO scan uses too.
    const { rows: current } = await client.query<{
      category: UniverseCategory;
      name: string;
      liquidity_filter: Record<string, unknown>;
      symbols: string[];
    }>(
      `WITH locked AS (
         SELECT id, category, name, liquidity_filter FROM universes ORDER BY category, name FOR UPDATE
       )
       SELECT l.category, l.name, l.liquidity_filter,
              coalesce(array_agg(m.symbol ORDER BY m.ordinal) FILTER (WHERE m.symbol IS NOT NULL), '{}') AS symbols
       FROM locked l LEFT JOIN universe_members m ON m.universe_id = l.id
       GROUP BY l.category, l.name, l.liquidity_filter`,
    );
    const existing = new Map(current.map((r) => [`${r.category}/${r.name}`, r]));
    const keys = [...new Set([...existing.keys(), ...targets.keys()])].sort();

    const deltas: UniverseDelta[] = [];
    const ipoAssigned = new Map<string, string[]>();
    const cleaned = new Map<string, { reason: string; universes: string[] }>();

    for (const key of keys) {
      const cur = existing.get(key);
      const [category, name] = key.split('/') as [UniverseCategory, string];
      const owned = OWNED_CATEGORIES.has(category);
      const target = owned ? targets.get(key) : undefined;
      const before = cur?.symbols ?? [];
      if (!cur && (!target || target.symbols.length === 0)) continue; // never create an empty universe
      const byTask: UniverseDelta['byTask'] = {};
      let list = before;
      const apply = async (next: string[], task: SyncTask, reason: string, t?: UniverseTarget) => {
        const change = await updateUniverse(client, {
          category,
          name,
          symbols: next,
          changeType: CHANGE_TYPE[task],
          reason,
          ...(t ? { metadata: t.metadata } : {}),
          ...(t?.liquidityFilter ? { liquidityFilter: t.liquidityFilter } : {}),
        });
        if (change.added.length + change.removed.length > 0) {
          const slot = byTask[task] ?? { added: 0, removed: 0 };
          slot.added += change.added.length;
          slot.removed += change.removed.length;
          byTask[task] = slot;
        }
        list = next;
        return change;
      };

      const leaving = list.filter((s) => cleanupReason(master.get(s), tradeDate) !== null);
      if (leaving.length > 0) {
        const gone = new Set(leaving);
        await apply(
          list.filter((s) => !gone.has(s)),
          'delisting_cleanup',
          `inactive or unknown in the symbol master on ${tradeDate}`,
        );
        for (const s of leaving) {
          const entry = cleaned.get(s) ?? {
            reason: cleanupReason(master.get(s), tradeDate) as string,
            universes: [],
          };
          entry.universes.push(key);
          cleaned.set(s, entry);
        }
      }
      if (target) {
        const t = target;
        const have = new Set(list);
        // The IPO universe is the ipo task's own list: a recent IPO joins it, and later leaves it,
        // as `ipo` (one label both ways). ipo_assignment is a recent IPO joining its other universes
        // before their rebalance would take it.
        const ipos = (t.task === 'ipo' ? [] : t.symbols).filter((s) => {
          const rec = master.get(s);
          return !have.has(s) && rec !== undefined && isRecentIpo(rec, tradeDate, rules.ipoWindowDays);
        });
        if (ipos.length > 0) {
          await apply(
            [...list, ...ipos],
            'ipo_assignment',
            `first seen within ${rules.ipoWindowDays} days of ${tradeDate}`,
            t,
          );
          for (const s of ipos) ipoAssigned.set(s, [...(ipoAssigned.get(s) ?? []), key]);
        }
        const filterChanged =
          t.liquidityFilter !== undefined &&
          canonical(cur?.liquidity_filter ?? null) !== canonical(t.liquidityFilter);
        if (!sameList(list, t.symbols) || !cur || filterChanged) {
          await apply(t.symbols, t.task, `${t.metadata.rule as string} on ${tradeDate}`, t);
        }
      } else if (owned && list.length > 0) {
        // An owned universe no rule produces any more (e.g. a sector with no stock left): emptied.
        await apply(
          [],
          category === 'etf' ? 'etf' : (category as SyncTask),
          `no longer produced by the rules on ${tradeDate}`,
        );
      }
      const beforeSet = new Set(before);
      const afterSet = new Set(list);
      const added = list.filter((s) => !beforeSet.has(s));
      const removed = before.filter((s) => !afterSet.has(s)).sort();
      if (added.length + removed.length > 0) {
        deltas.push({ category, universe: name, added, removed, symbolCount: list.length, byTask });
      }
    }

    const byTask: Partial<Record<SyncTask, TaskTotals>> = {};
    for (const d of deltas) {
      for (const [task, n] of Object.entries(d.byTask) as [SyncTask, { added: number; removed: number }][]) {
        const slot = byTask[task] ?? { universes: 0, added: 0, removed: 0 };
        slot.universes += 1;
        slot.added += n.added;
        slot.removed += n.removed;
        byTask[task] = slot;
      }
    }
    const totalChanges = deltas.reduce((n, d) => n + d.added.length + d.removed.length, 0);
    const totals = {
      trade_date: tradeDate,
      eod_status: signal?.status ?? null,
      forced,
      universe_count: keys.filter((k) => existing.has(k) || (targets.get(k)?.symbols.length ?? 0) > 0).length,
      universes_changed: deltas.length,
      total_changes: totalChanges,
      by_task: byTask,
      by_universe: Object.fromEntries(
        deltas.map((d) => [
          `${d.category}/${d.universe}`,
          { added: d.added.length, removed: d.removed.length, symbol_count: d.symbolCount },
        ]),
      ),
    };

    const messages: OutboxMessage[] = deltas.map((d) => ({
      dedupeKey: `universe.updated:${tradeDate}:${d.category}/${d.universe}:${digest([d.added, d.removed])}`,
      destination: { channel: CHANNELS.universeUpdated },
      eventType: 'universe_updated',
      payload: {
        trade_date: tradeDate,
        category: d.category,
        universe: d.universe,
        added: d.added,
        removed: d.removed,
        symbol_count: d.symbolCount,
        by_task: d.byTask,
      },
    }));
    if (ipoAssigned.size > 0) {
      const assignments = [...ipoAssigned.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      messages.push({
        dedupeKey: `cache.ipo_assignment:${tradeDate}:${digest(assignments)}`,
        destination: { channel: CHANNELS.cacheIpoAssignment },
        eventType: 'ipo_assignment',
        payload: {
          trade_date: tradeDate,
          symbols: assignments.map(([symbol, universes]) => ({
            symbol,
            first_seen: master.get(symbol)?.firstSeen,
            universes,
          })),
        },
      });
    }
    if (cleaned.size > 0) {
      const removals = [...cleaned.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      messages.push({
        dedupeKey: `cache.delisting_cleanup:${tradeDate}:${digest(removals)}`,
        destination: { channel: CHANNELS.cacheDelistingCleanup },
        eventType: 'delisting_cleanup',
        payload: {
          trade_date: tradeDate,
          symbols: removals.map(([symbol, e]) => ({ symbol, reason: e.reason, universes: e.universes })),
        },
      });
    }
    // sync_complete: once per sync that changed something, and once for the first sync of a date
    // even when nothing changed (the app learns the date is settled); never for a no-op re-run.
    const { rows: prior } = await client.query<{ runs: number }>(
      `INSERT INTO universe_sync_runs AS r (trade_date, last_changes, last_totals)
       VALUES ($1::date, $2, $3::jsonb)
       ON CONFLICT (trade_date) DO UPDATE
         SET runs = r.runs + 1, last_changes = EXCLUDED.last_changes,
             last_totals = EXCLUDED.last_totals, last_synced_at = now()
       RETURNING runs`,
      [tradeDate, totalChanges, JSON.stringify(totals)],
    );
    if (totalChanges > 0 || prior[0]?.runs === 1) {
      messages.push({
        dedupeKey: `cache.sync_complete:${tradeDate}:${totalChanges > 0 ? digest(totals.by_universe) : 'unchanged'}`,
        destination: { channel: CHANNELS.cacheSyncComplete },
        eventType: 'sync_complete',
        payload: totals,
      });
    }
    const enqueued = await enqueueOutbox(client, messages);
    return {
      deltas,
      byTask,
      totalChanges,
      universes: totals.universe_count,
      enqueued: enqueued.length,
      marked: marked.updated,
    };
  });

  const relay = await relayOutbox(deps.pool, deps.transport);
  return {
    ...base,
    status: 'synced',
    universes: result.universes,
    universesChanged: result.deltas.length,
    totalChanges: result.totalChanges,
    byTask: result.byTask,
    deltas: result.deltas,
    messagesEnqueued: result.enqueued,
    marketCapsMarked: result.marked,
    relay: relay.failed === 0 && relay.delivered === 0 && relay.recovered === 0 ? NO_RELAY : relay,
    seconds: (performance.now() - started) / 1000,
  };
}
