/**
 * The set-based heart of the IPO scan: one statement compares the provider's active tickers with
 * `symbols`, one transaction applies the result (insert new, archive gone, reactivate returned)
 * together with the outbox messages that announce it. No per-symbol round trips: 12,000 tickers go
 * to PostgreSQL as one text[] parameter.
 */
import type pg from 'pg';
import { CHANNELS } from '../../platform/event-bus';
import { enqueueOutbox, type OutboxMessage } from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import { BACKFILL_QUEUE, backfillJob } from '../backfill/job';
import type { IsoDate } from '../calendar';
import type { ProviderTicker } from '../provider';
import type { Queryable } from '../sql/db';
import type { SymbolRecord } from '../types';
import { enrichRecord, TRACKED_TYPES } from './classify';
import { assignUniverses } from './universe-assignment';

export interface SymbolsDiff {
  /** Active on the provider, unknown to `symbols`, of a tracked type, in symbol order. */
  readonly added: ProviderTicker[];
  /** Active in `symbols`, absent from the provider's list for the date. */
  readonly gone: string[];
  /** Inactive (delisted) in `symbols`, active again on the provider. */
  readonly returned: string[];
  /**
   * Active known symbols whose listing differs from `symbols` (name, tracked type, exchange; both
   * sides set), in symbol order. The scan adds the SIC code from the details it fetches for them.
   */
  readonly changed: SymbolUpdate[];
  /**
   * Ticker changes: a gone symbol and a new ticker of the same type under the same (normalised)
   * name on the same date. The old symbol is still archived and the new one inserted and backfilled;
   * this only links the two for consumers.
   */
  readonly renamed: TickerChange[];
  /** Unknown tickers of types the platform does not track (not fetched, not stored). */
  readonly untracked: number;
  readonly providerCount: number;
  readonly activeCount: number;
}

/** The provider's current values for an existing symbol (null = unchanged / not known). */
export interface SymbolUpdate {
  readonly symbol: string;
  readonly name: string | null;
  readonly type: string | null;
  readonly primaryExchange: string | null;
  readonly sicCode?: string | null;
  readonly sicDescription?: string | null;
}

export interface TickerChange {
  readonly from: string;
  readonly to: string;
  readonly name: string;
}

const normaliseName = (name: string) => name.trim().replace(/\s+/g, ' ').toLowerCase();

export async function diffSymbols(
  db: Queryable,
  tickers: readonly ProviderTicker[],
  date: IsoDate,
): Promise<SymbolsDiff> {
  const { rows } = await db.query<{
    kind: 'new' | 'gone' | 'returned' | 'active';
    symbol: string | null;
    n: number;
  }>(
    `WITH p AS (SELECT DISTINCT u.symbol FROM unnest($1::text[]) AS u (symbol))
     SELECT 'new'::text AS kind, p.symbol, NULL::integer AS n
     FROM p WHERE NOT EXISTS (SELECT 1 FROM symbols s WHERE s.symbol = p.symbol)
     UNION ALL
     -- first_seen <= date: a symbol first seen after the scanned date is not "gone" on it.
     SELECT 'gone', s.symbol, NULL FROM symbols s
     WHERE s.active AND s.first_seen <= $2::date
       AND NOT EXISTS (SELECT 1 FROM p WHERE p.symbol = s.symbol)
     UNION ALL
     SELECT 'returned', s.symbol, NULL FROM symbols s JOIN p ON p.symbol = s.symbol WHERE NOT s.active
     UNION ALL
     SELECT 'active', NULL, count(*)::integer FROM symbols s WHERE s.active`,
    [tickers.map((t) => t.symbol), date],
  );
  const tracked = tickers.filter((t) => t.type === null || TRACKED_TYPES.has(t.type));
  // Only values both sides know count: a provider that omits a field does not erase it.
  const { rows: changedRows } = await db.query<{
    symbol: string;
    name: string | null;
    type: string | null;
    primary_exchange: string | null;
  }>(
    `SELECT DISTINCT ON (p.symbol) p.symbol,
            CASE WHEN p.name <> s.name THEN p.name END AS name,
            CASE WHEN p.type <> s.type THEN p.type END AS type,
            CASE WHEN p.primary_exchange <> s.primary_exchange THEN p.primary_exchange END AS primary_exchange
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
            AS p (symbol, name, type, primary_exchange)
     JOIN symbols s ON s.symbol = p.symbol AND s.active
     WHERE p.name <> s.name OR p.type <> s.type OR p.primary_exchange <> s.primary_exchange
     ORDER BY p.symbol`,
    [
      tracked.map((t) => t.symbol),
      tracked.map((t) => (t.name?.trim() ? t.name : null)),
      tracked.map((t) => t.type),
      tracked.map((t) => (t.primaryExchange?.trim() ? t.primaryExchange : null)),
    ],
  );
  const changed: SymbolUpdate[] = changedRows.map((r) => ({
    symbol: r.symbol,
    name: r.name,
    type: r.type,
    primaryExchange: r.primary_exchange,
  }));
  const newSymbols = new Set<string>();
  const gone: string[] = [];
  const returned: string[] = [];
  let activeCount = 0;
  for (const r of rows) {
    if (r.kind === 'new' && r.symbol) newSymbols.add(r.symbol);
    else if (r.kind === 'gone' && r.symbol) gone.push(r.symbol);
    else if (r.kind === 'returned' && r.symbol) returned.push(r.symbol);
    else if (r.kind === 'active') activeCount = r.n;
  }
  const seen = new Set<string>();
  const added: ProviderTicker[] = [];
  let untracked = 0;
  for (const t of tickers) {
    if (!newSymbols.has(t.symbol) || seen.has(t.symbol)) continue;
    seen.add(t.symbol);
    // A listed type the platform does not track would otherwise cost a details call every day.
    if (t.type !== null && !TRACKED_TYPES.has(t.type)) untracked++;
    else added.push(t);
  }
  const bySymbol = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  added.sort((a, b) => bySymbol(a.symbol, b.symbol));
  gone.sort(bySymbol);
  returned.sort(bySymbol);
  const renamed = await pairTickerChanges(db, gone, added);
  return { added, gone, returned, changed, renamed, untracked, providerCount: tickers.length, activeCount };
}

/** Pairs gone symbols with new tickers of the same type and name; ambiguous names pair nothing. */
async function pairTickerChanges(
  db: Queryable,
  gone: readonly string[],
  added: readonly ProviderTicker[],
): Promise<TickerChange[]> {
  if (gone.length === 0 || added.length === 0) return [];
  const { rows } = await db.query<{ symbol: string; name: string | null; type: string | null }>(
    'SELECT symbol, name, type FROM symbols WHERE symbol = ANY($1::text[])',
    [gone],
  );
  const key = (name: string, type: string | null) => `${type ?? ''}|${normaliseName(name)}`;
  const goneByKey = new Map<string, string[]>();
  for (const r of rows) {
    if (!r.name?.trim()) continue;
    const k = key(r.name, r.type);
    goneByKey.set(k, [...(goneByKey.get(k) ?? []), r.symbol]);
  }
  const addedByKey = new Map<string, ProviderTicker[]>();
  for (const t of added) {
    if (!t.name?.trim()) continue;
    const k = key(t.name, t.type);
    addedByKey.set(k, [...(addedByKey.get(k) ?? []), t]);
  }
  const out: TickerChange[] = [];
  for (const [k, olds] of goneByKey) {
    const news = addedByKey.get(k);
    if (olds.length !== 1 || news?.length !== 1) continue;
    const t = news[0] as ProviderTicker;
    out.push({ from: olds[0] as string, to: t.symbol, name: t.name as string });
  }
  return out.sort((a, b) => (a.to < b.to ? -1 : 1));
}

export interface ApplyInput {
  readonly date: IsoDate;
  /** Details of new symbols (fetched from the provider). */
  readonly records: readonly SymbolRecord[];
  readonly gone: readonly string[];
  readonly returned: readonly string[];
  /** Existing symbols whose provider values changed (from the diff, with SIC from details). */
  readonly changed?: readonly SymbolUpdate[];
  /** Ticker changes among the gone and inserted symbols. */
  readonly renamed?: readonly TickerChange[];
  readonly backfillDays?: number;
  readonly now?: Date;
  /**
   * Messages that close the run (the scan's maintenance.completed), built from what this
   * transaction applied and enqueued after its announcements in the same transaction: the changes
   * and the notice that ends the run commit together, so a retry never finds one without the other.
   */
  readonly closing?: (applied: Omit<ApplyResult, 'messages'>) => OutboxMessage[];
}

export interface ApplyResult {
  /** Symbols this transaction inserted (a concurrent scan's inserts are not counted twice). */
  readonly inserted: string[];
  readonly archived: string[];
  readonly reactivated: string[];
  /** Existing symbols this transaction updated (one symbols.changed each). */
  readonly updated: string[];
  /** symbol -> universes it joined */
  readonly assigned: Map<string, string[]>;
  readonly messages: number;
}

const SERVICE_FIELDS = { source: 'ipo_scan' } as const;

function symbolRow(r: SymbolRecord): Record<string, unknown> {
  return {
    symbol: r.symbol,
    name: r.name,
    type: r.type,
    primary_exchange: r.primaryExchange || null,
    market_cap: r.marketCap,
    list_date: r.listDate,
    sector: r.sector,
    industry: r.industry,
    sic_code: r.sicCode,
    sic_description: r.sicDescription,
    shares_outstanding: r.sharesOutstanding === null ? null : Math.round(r.sharesOutstanding),
    issuer: r.issuer,
    aum: r.aum,
    expense_ratio: r.expenseRatio,
    underlying_index: r.underlyingIndex,
  };
}

/**
 * Applies a diff in one transaction: inserts new symbols (first_seen = date), archives gone ones,
 * reactivates returned ones, assigns universes, and enqueues every announcement (symbols.new,
 * symbols.changed, symbols.archived) and backfill job in the outbox. Only rows this transaction
 * actually changed get messages, and dedupe keys make a repeat a no-op.
 */
export async function applySymbolsDiff(pool: pg.Pool, input: ApplyInput): Promise<ApplyResult> {
  return withTransaction(pool, (client) => applyInTransaction(client, input));
}

async function applyInTransaction(client: pg.PoolClient, input: ApplyInput): Promise<ApplyResult> {
  const { date } = input;
  const records = input.records.map(enrichRecord);
  const byBySymbol = new Map(records.map((r) => [r.symbol, r]));
  const inserted =
    records.length === 0
      ? []
      : (
          await client.query<{ symbol: string }>(
            `INSERT INTO symbols AS s
               (symbol, name, type, market, primary_exchange, active, market_cap, list_date, sector,
                industry, sic_code, sic_description, shares_outstanding, first_seen, issuer, aum,
                expense_ratio, underlying_index, updated_at)
             SELECT r.symbol, r.name, r.type, 'stocks', r.primary_exchange, true, r.market_cap,
                    r.list_date, r.sector, r.industry, r.sic_code, r.sic_description,
                    r.shares_outstanding, $2::date, r.issuer, r.aum, r.expense_ratio,
                    r.underlying_index, now()
             FROM jsonb_to_recordset($1::jsonb) AS r (
               symbol text, name text, type text, primary_exchange text, market_cap numeric,
               list_date date, sector text, industry text, sic_code text, sic_description text,
               shares_outstanding bigint, issuer text, aum numeric, expense_ratio numeric,
               underlying_index text)
             ORDER BY r.symbol
             ON CONFLICT (symbol) DO NOTHING
             RETURNING s.symbol`,
            [JSON.stringify(records.map(symbolRow)), date],
          )
        ).rows
          .map((r) => r.symbol)
          .sort();

  const archived =
    input.gone.length === 0
      ? []
      : (
          await client.query<{ symbol: string; name: string | null; type: string | null }>(
            `UPDATE symbols SET active = false, delisted_at = $2::date, updated_at = now()
             WHERE symbol = ANY($1::text[]) AND active
             RETURNING symbol, name, type`,
            [input.gone, date],
          )
        ).rows.sort((a, b) => (a.symbol < b.symbol ? -1 : 1));

  const reactivated =
    input.returned.length === 0
      ? []
      : (
          await client.query<{ symbol: string; delisted_at: string | null }>(
            `UPDATE symbols s SET active = true, delisted_at = NULL, updated_at = now()
             FROM symbols old
             WHERE old.symbol = s.symbol AND s.symbol = ANY($1::text[]) AND NOT s.active
             RETURNING s.symbol, old.delisted_at::text AS delisted_at`,
            [input.returned],
          )
        ).rows.sort((a, b) => (a.symbol < b.symbol ? -1 : 1));

  const changed = input.changed ?? [];
  // One statement; RETURNING old and new values so only fields this transaction changed are told.
  const updated =
    changed.length === 0
      ? []
      : (
          await client.query<{
            symbol: string;
            old_name: string | null;
            new_name: string | null;
            old_type: string | null;
            new_type: string | null;
            old_exchange: string | null;
            new_exchange: string | null;
            old_sic: string | null;
            new_sic: string | null;
          }>(
            `UPDATE symbols s SET
               name = COALESCE(c.name, s.name),
               type = COALESCE(c.type, s.type),
               primary_exchange = COALESCE(c.primary_exchange, s.primary_exchange),
               sic_code = COALESCE(c.sic_code, s.sic_code),
               sic_description = COALESCE(c.sic_description, s.sic_description),
               updated_at = now()
             FROM symbols old,
                  jsonb_to_recordset($1::jsonb) AS c (symbol text, name text, type text,
                    primary_exchange text, sic_code text, sic_description text)
             WHERE old.symbol = s.symbol AND c.symbol = s.symbol AND s.active
               AND (c.name IS NOT NULL AND c.name <> s.name
                 OR c.type IS NOT NULL AND c.type <> s.type
                 OR c.primary_exchange IS NOT NULL AND c.primary_exchange <> s.primary_exchange
                 OR c.sic_code IS NOT NULL AND c.sic_code IS DISTINCT FROM s.sic_code)
             RETURNING s.symbol, old.name AS old_name, s.name AS new_name, old.type AS old_type,
                       s.type AS new_type, old.primary_exchange AS old_exchange,
                       s.primary_exchange AS new_exchange, old.sic_code AS old_sic, s.sic_code AS new_sic`,
            [
              JSON.stringify(
                changed.map((c) => ({
                  symbol: c.symbol,
                  name: c.name,
                  type: c.type,
                  primary_exchange: c.primaryExchange,
                  sic_code: c.sicCode ?? null,
                  sic_description: c.sicDescription ?? null,
                })),
              ),
            ],
          )
        ).rows.sort((a, b) => (a.symbol < b.symbol ? -1 : 1));

  const insertedRecords = inserted.map((s) => byBySymbol.get(s)).filter((r): r is SymbolRecord => !!r);
  const assigned = await assignUniverses(client, insertedRecords, date);

  const messages: OutboxMessage[] = [];
  for (const r of insertedRecords) {
    messages.push({
      dedupeKey: `symbols.new:${r.symbol}`,
      destination: { channel: CHANNELS.symbolsNew },
      eventType: 'new_symbol',
      payload: {
        ...SERVICE_FIELDS,
        symbol: r.symbol,
        name: r.name,
        type: r.type,
        exchange: r.primaryExchange || null,
        ipo_date: r.listDate,
        list_date: r.listDate,
        detection_date: date,
        market_cap: r.marketCap,
        sector: r.sector,
        issuer: r.issuer,
      },
    });
    messages.push({
      dedupeKey: `backfill.job:${r.symbol}:${date}`,
      destination: { queue: BACKFILL_QUEUE },
      eventType: 'backfill_job',
      payload: backfillJob(r.symbol, date, 'ipo', {
        ...(input.backfillDays ? { days: input.backfillDays } : {}),
        ...(input.now ? { now: input.now } : {}),
      }),
    });
    const universes = assigned.get(r.symbol) ?? [];
    if (universes.length > 0) {
      messages.push({
        dedupeKey: `symbols.changed:ipo_assignment:${r.symbol}:${date}`,
        destination: { channel: CHANNELS.symbolsChanged },
        eventType: 'universe_assignment',
        payload: {
          ...SERVICE_FIELDS,
          symbol: r.symbol,
          change: 'universe_assignment',
          universes_added: universes,
          detection_date: date,
        },
      });
    }
  }
  for (const a of archived) {
    messages.push({
      dedupeKey: `symbols.archived:${a.symbol}:${date}`,
      destination: { channel: CHANNELS.symbolsArchived },
      eventType: 'symbol_archived',
      payload: {
        ...SERVICE_FIELDS,
        symbol: a.symbol,
        name: a.name,
        type: a.type,
        delisted_at: date,
        detection_date: date,
        reason: 'no_longer_active_on_provider',
      },
    });
  }
  for (const r of reactivated) {
    messages.push({
      dedupeKey: `symbols.changed:reactivated:${r.symbol}:${date}`,
      destination: { channel: CHANNELS.symbolsChanged },
      eventType: 'symbol_reactivated',
      payload: {
        ...SERVICE_FIELDS,
        symbol: r.symbol,
        change: 'reactivated',
        previous_delisted_at: r.delisted_at,
        detection_date: date,
      },
    });
  }
  for (const u of updated) {
    const changes: Record<string, { old: string | null; new: string | null }> = {};
    if (u.old_name !== u.new_name) changes.name = { old: u.old_name, new: u.new_name };
    if (u.old_type !== u.new_type) changes.type = { old: u.old_type, new: u.new_type };
    if (u.old_exchange !== u.new_exchange) changes.exchange = { old: u.old_exchange, new: u.new_exchange };
    if (u.old_sic !== u.new_sic) changes.sic_code = { old: u.old_sic, new: u.new_sic };
    const fields = Object.keys(changes).sort();
    messages.push({
      // The new values are in the key: the same change on a re-run dedupes, a later one does not.
      dedupeKey: `symbols.changed:update:${u.symbol}:${date}:${fields.map((f) => `${f}=${changes[f]?.new}`).join(',')}`,
      destination: { channel: CHANNELS.symbolsChanged },
      eventType: 'symbol_updated',
      payload: {
        ...SERVICE_FIELDS,
        symbol: u.symbol,
        change: 'updated',
        fields,
        changes,
        detection_date: date,
      },
    });
  }
  const insertedSet = new Set(inserted);
  const archivedSet = new Set(archived.map((a) => a.symbol));
  for (const r of input.renamed ?? []) {
    // Told only when this transaction archived the old ticker and inserted the new one.
    if (!insertedSet.has(r.to) || !archivedSet.has(r.from)) continue;
    messages.push({
      dedupeKey: `symbols.changed:ticker_change:${r.from}:${r.to}:${date}`,
      destination: { channel: CHANNELS.symbolsChanged },
      eventType: 'ticker_change',
      payload: {
        ...SERVICE_FIELDS,
        symbol: r.to,
        change: 'ticker_change',
        previous_symbol: r.from,
        new_symbol: r.to,
        name: r.name,
        detection_date: date,
      },
    });
  }
  const applied = {
    inserted,
    archived: archived.map((a) => a.symbol),
    reactivated: reactivated.map((r) => r.symbol),
    updated: updated.map((u) => u.symbol),
    assigned,
  };
  const enqueued = await enqueueOutbox(client, messages);
  await enqueueOutbox(client, input.closing?.(applied) ?? []);
  return { ...applied, messages: enqueued.length };
}
