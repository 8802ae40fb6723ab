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
  /** Unknown tickers of types the platform does not track (not fetched, not stored). */
  readonly untracked: number;
  readonly providerCount: number;
  readonly activeCount: number;
}

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
  return { added, gone, returned, untracked, providerCount: tickers.length, activeCount };
}

export interface ApplyInput {
  readonly date: IsoDate;
  /** Details of new symbols (fetched from the provider). */
  readonly records: readonly SymbolRecord[];
  readonly gone: readonly string[];
  readonly returned: readonly string[];
  readonly backfillDays?: number;
  readonly now?: Date;
}

export interface ApplyResult {
  /** Symbols this transaction inserted (a concurrent scan's inserts are not counted twice). */
  readonly inserted: string[];
  readonly archived: string[];
  readonly reactivated: string[];
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
  const enqueued = await enqueueOutbox(client, messages);
  return {
    inserted,
    archived: archived.map((a) => a.symbol),
    reactivated: reactivated.map((r) => r.symbol),
    assigned,
    messages: enqueued.length,
  };
}
