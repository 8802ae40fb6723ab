/**
 * The daily IPO scan: provider tickers for a date -> set-based diff against `symbols` -> details of
 * the new ones (rate-limited by the provider adapter) -> one transaction that inserts, archives,
 * assigns universes and enqueues every message -> outbox relay. Idempotent per date: a second run
 * finds nothing new and publishes nothing (not even a maintenance bracket).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CHANNELS } from '../../platform/event-bus';
import { enqueueOutbox, type OutboxTransport, type RelayResult, relayOutbox } from '../../platform/outbox';
import type { IsoDate } from '../calendar';
import type { ProviderTicker } from '../provider';
import { ProviderNotFoundError } from '../provider';
import type { SymbolRecord } from '../types';
import { applySymbolsDiff, diffSymbols } from './symbols-diff';

/** What the scan needs from the market-data provider (PolygonProvider implements it). */
export interface ScanProvider {
  listActiveTickers(date: string): Promise<ProviderTicker[]>;
  tickerDetails(symbol: string): Promise<SymbolRecord | null>;
}

export interface IpoScanDeps {
  readonly pool: pg.Pool;
  readonly provider: ScanProvider;
  readonly transport: OutboxTransport;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => Date;
}

export interface IpoScanOptions {
  readonly date: IsoDate;
  /** New symbols fetched per run; the rest wait for the next run (a first run on an empty table). */
  readonly maxNew?: number;
  /** Parallel details requests (the adapter's token bucket still paces them). */
  readonly detailsConcurrency?: number;
  /**
   * Refuse to archive more than this share of the active symbols in one run: a truncated ticker
   * list from a provider incident must not delist half the market.
   */
  readonly maxArchiveFraction?: number;
  readonly backfillDays?: number;
}

export interface IpoScanSummary {
  readonly date: IsoDate;
  readonly runId: string;
  /** False when the run found nothing to do (and published nothing). */
  readonly changed: boolean;
  readonly providerTickers: number;
  /** New tickers found (tracked types). */
  readonly found: number;
  /** New symbols inserted. */
  readonly processed: number;
  /** New symbols whose details could not be fetched (retried by the next run). */
  readonly failed: number;
  readonly failures: { symbol: string; error: string }[];
  /** Found but left for the next run (maxNew). */
  readonly deferred: number;
  readonly skippedUntracked: number;
  readonly archived: number;
  readonly reactivated: number;
  /** Existing symbols whose name, type, exchange or SIC code changed (symbols.changed each). */
  readonly updated: number;
  readonly universeAssignments: number;
  readonly messagesEnqueued: number;
  readonly relay: RelayResult;
  readonly durationSeconds: number;
}

export class IpoScanSanityError extends Error {
  constructor(
    readonly wouldArchive: number,
    readonly active: number,
    readonly limit: number,
  ) {
    super(
      `refusing to archive ${wouldArchive} of ${active} active symbols (limit ${(limit * 100).toFixed(1)} %): ` +
        'the provider list looks truncated; nothing was changed',
    );
    this.name = 'IpoScanSanityError';
  }
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  });
  await Promise.all(workers);
  return out;
}

function assignments(assigned: ReadonlyMap<string, readonly string[]>): number {
  return [...assigned.values()].reduce((n, u) => n + u.length, 0);
}

/**
 * The run id of this date's latest scan run that announced its start and never completed: its
 * changes did not commit (they commit with the completed notice), so a new attempt continues it.
 */
export async function openRunId(pool: pg.Pool, date: IsoDate): Promise<string | undefined> {
  const { rows } = await pool.query<{ run_id: string }>(
    `SELECT s.payload ->> 'run_id' AS run_id
     FROM market_outbox s
     WHERE s.dedupe_key LIKE 'maintenance.started:ipo_scan:' || $1 || ':%'
       AND NOT EXISTS (
         SELECT 1 FROM market_outbox c
         WHERE c.dedupe_key = 'maintenance.completed:ipo_scan:' || $1 || ':' || (s.payload ->> 'run_id'))
     ORDER BY s.id DESC
     LIMIT 1`,
    [date],
  );
  return rows[0]?.run_id;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** New symbols one scan takes at most; the rest are `deferred` to the next run. */
export const DEFAULT_MAX_NEW = 500;

export async function runIpoScan(deps: IpoScanDeps, options: IpoScanOptions): Promise<IpoScanSummary> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const started = performance.now();
  const { date } = options;

  // Leftovers of a run that died after its commit go out first, in their original order.
  const leftover = await relayOutbox(deps.pool, deps.transport);

  const tickers = await deps.provider.listActiveTickers(date);
  const diff = await diffSymbols(deps.pool, tickers, date);
  const maxArchiveFraction = options.maxArchiveFraction ?? 0.05;
  if (diff.activeCount > 0 && diff.gone.length > Math.max(1, diff.activeCount * maxArchiveFraction)) {
    throw new IpoScanSanityError(diff.gone.length, diff.activeCount, maxArchiveFraction);
  }
  const maxNew = options.maxNew ?? DEFAULT_MAX_NEW;
  const toFetch = diff.added.slice(0, maxNew);
  const base = {
    date,
    // Replaced below by the id of an open run of this date when there is one to resume.
    runId: randomUUID() as string,
    providerTickers: diff.providerCount,
    found: diff.added.length,
    deferred: diff.added.length - toFetch.length,
    skippedUntracked: diff.untracked,
  };
  log('ipo scan diff', {
    date,
    providerTickers: diff.providerCount,
    new: diff.added.length,
    gone: diff.gone.length,
    returned: diff.returned.length,
    changed: diff.changed.length,
    renamed: diff.renamed.length,
  });

  if (
    toFetch.length === 0 &&
    diff.gone.length === 0 &&
    diff.returned.length === 0 &&
    diff.changed.length === 0
  ) {
    return {
      ...base,
      changed: false,
      processed: 0,
      failed: 0,
      failures: [],
      archived: 0,
      reactivated: 0,
      updated: 0,
      universeAssignments: 0,
      messagesEnqueued: 0,
      relay: leftover,
      durationSeconds: (performance.now() - started) / 1000,
    };
  }

  // A run whose start notice went out but whose changes never committed (the connection dropped,
  // the process died) is resumed, not started again: the retry reuses its run id, so its start
  // notice dedupes and one completed notice closes it.
  const runId = (await openRunId(deps.pool, date)) ?? base.runId;
  base.runId = runId;
  await enqueueOutbox(deps.pool, [
    {
      dedupeKey: `maintenance.started:ipo_scan:${date}:${runId}`,
      destination: { channel: CHANNELS.maintenanceStarted },
      eventType: 'maintenance_started',
      payload: {
        task: 'ipo_scan',
        run_id: runId,
        date,
        provider_tickers: diff.providerCount,
        new_found: diff.added.length,
        to_archive: diff.gone.length,
      },
    },
  ]);
  // Counted: the run's delivery figure covers every message it sent, the start notice included.
  const startNotice = await relayOutbox(deps.pool, deps.transport);

  const failures: { symbol: string; error: string }[] = [];
  const fetched = await mapLimited(
    toFetch,
    options.detailsConcurrency ?? 4,
    async (t): Promise<SymbolRecord | null> => {
      try {
        const record = await deps.provider.tickerDetails(t.symbol);
        // Details of a type the platform does not track (the list said otherwise): skip quietly.
        return record ? { ...record, active: true, delistedAt: null } : null;
      } catch (error) {
        // Not found (listed and withdrawn the same day) or a provider failure after the adapter's
        // retries: counted, and the next run tries again because the symbol is still unknown.
        failures.push({
          symbol: t.symbol,
          error: error instanceof ProviderNotFoundError ? 'not_found' : describe(error),
        });
        return null;
      }
    },
  );
  const records = fetched.filter((r): r is SymbolRecord => r !== null);
  // A symbol whose listing changed gets its details read too: the SIC code is only there. A failed
  // read keeps the list's values (the SIC is checked again on the symbol's next change).
  const changed = await mapLimited(diff.changed, options.detailsConcurrency ?? 4, async (c) => {
    try {
      const d = await deps.provider.tickerDetails(c.symbol);
      return d?.sicCode ? { ...c, sicCode: d.sicCode, sicDescription: d.sicDescription } : c;
    } catch (error) {
      log('ipo scan: details of a changed symbol unavailable', { symbol: c.symbol, error: describe(error) });
      return c;
    }
  });

  const failureCount = failures.length;
  failures.sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
  let durationSeconds = 0;
  const applied = await applySymbolsDiff(deps.pool, {
    date,
    records,
    gone: diff.gone,
    returned: diff.returned,
    changed,
    renamed: diff.renamed,
    now: now(),
    ...(options.backfillDays ? { backfillDays: options.backfillDays } : {}),
    // The completed notice commits with the changes it reports (see ApplyInput.closing).
    closing: (a) => {
      durationSeconds = (performance.now() - started) / 1000;
      return [
        {
          dedupeKey: `maintenance.completed:ipo_scan:${date}:${runId}`,
          destination: { channel: CHANNELS.maintenanceCompleted },
          eventType: 'maintenance_completed',
          payload: {
            task: 'ipo_scan',
            run_id: runId,
            date,
            success: failureCount === 0,
            results: {
              found: base.found,
              processed: a.inserted.length,
              failed: failureCount,
              deferred: base.deferred,
              archived: a.archived.length,
              reactivated: a.reactivated.length,
              updated: a.updated.length,
              universe_assignments: assignments(a.assigned),
              duration_seconds: Math.round(durationSeconds * 1000) / 1000,
            },
            failed_symbols: failures.slice(0, 50).map((f) => f.symbol),
          },
        },
      ];
    },
  });
  const universeAssignments = assignments(applied.assigned);
  const summary = {
    ...base,
    changed: true,
    processed: applied.inserted.length,
    failed: failures.length,
    failures,
    archived: applied.archived.length,
    reactivated: applied.reactivated.length,
    updated: applied.updated.length,
    universeAssignments,
    messagesEnqueued: applied.messages,
  };
  const relay = await relayOutbox(deps.pool, deps.transport);
  log('ipo scan done', { ...summary, failures: failures.length });
  return {
    ...summary,
    relay: {
      delivered: relay.delivered + startNotice.delivered + leftover.delivered,
      recovered: relay.recovered + startNotice.recovered + leftover.recovered,
      failed: relay.failed,
      errors: [...startNotice.errors, ...relay.errors],
    },
    durationSeconds,
  };
}
