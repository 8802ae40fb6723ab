/**
 * Loads a scenario market into PostgreSQL: `symbols` and `ohlcv_daily` of the pool's schema.
 * The pool must point at a scenario schema (createPool({ schema })), never at production tables;
 * `prepareScenarioSchema` creates such a schema and applies every migration to it.
 *
 * A full load streams bars with COPY FROM STDIN (pg-copy-streams): generation runs while the
 * server ingests, and only the stream's buffer is in memory. COPY measured ~2x the rate of large
 * unnest() INSERT batches here (2M rows: ~14 s vs ~29 s on the 2-core machine). load-history's small
 * per-symbol loads use unnest batches with ON CONFLICT instead (COPY cannot upsert).
 *
 * Idempotent: `loadScenario` empties ohlcv_daily and rewrites symbols, so a re-load gives the same
 * rows; `loadSymbolsHistory` replaces those symbols' bars in the date range and nothing else.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { IsoDate } from '../../lambdas/market/calendar';
import type { DailyBar, SymbolRecord } from '../../lambdas/market/types';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { assertSchemaName, createPool, withTransaction } from '../../lambdas/platform/postgres';
import type { ScenarioMarket } from './index';

export class ScenarioLoadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ScenarioLoadError';
  }
}

/** Refuses the production schema: scenario data must never mix with real data. */
export function assertScenarioSchema(schema: string): string {
  assertSchemaName(schema);
  if (schema === 'public') {
    throw new ScenarioLoadError(
      'refusing to load synthetic scenario data into the public (production) schema',
    );
  }
  return schema;
}

/** A pool on `schema` with every migration applied there (the schema is created if needed). */
export async function prepareScenarioSchema(
  connectionString: string,
  schema: string,
  migrationsDir: string,
  max = 3,
): Promise<pg.Pool> {
  assertScenarioSchema(schema);
  const pool = createPool({ connectionString, schema, max });
  try {
    await migrate(pool, await loadMigrations(migrationsDir), schema);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return pool;
}

export async function currentSchema(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ schema: string }>('SELECT current_schema() AS schema');
  return rows[0]?.schema ?? 'public';
}

const SYMBOL_COLUMNS = [
  'symbol',
  'name',
  'type',
  'market',
  'primary_exchange',
  'active',
  'market_cap',
  'list_date',
  'sector',
  'industry',
  'sic_code',
  'sic_description',
  'shares_outstanding',
  'issuer',
  'aum',
  'expense_ratio',
  'underlying_index',
  'delisted_at',
  'first_seen',
  'initial_load_date',
] as const;
const SYMBOL_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'boolean',
  'numeric',
  'date',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'text',
  'numeric',
  'numeric',
  'text',
  'date',
  'date',
  'date',
] as const;

/**
 * Upserts symbol records. first_seen is the list date for symbols listed inside the loaded window
 * (so the IPO assignment sees them as new) and the window's start otherwise; initial_load_date is
 * the window's end (history loaded).
 */
export async function upsertSymbols(
  db: pg.Pool | pg.PoolClient,
  records: readonly SymbolRecord[],
  window: { start: IsoDate; end: IsoDate },
): Promise<number> {
  let written = 0;
  for (let i = 0; i < records.length; i += 5000) {
    const chunk = records.slice(i, i + 5000);
    const columns: unknown[][] = SYMBOL_COLUMNS.map(() => []);
    for (const r of chunk) {
      const firstSeen = r.listDate && r.listDate > window.start ? r.listDate : window.start;
      const row = [
        r.symbol,
        r.name,
        r.type,
        r.market,
        r.primaryExchange,
        r.active,
        r.marketCap,
        r.listDate,
        r.sector,
        r.industry,
        r.sicCode,
        r.sicDescription,
        r.sharesOutstanding,
        r.issuer,
        r.aum,
        r.expenseRatio,
        r.underlyingIndex,
        r.delistedAt,
        firstSeen,
        window.end,
      ];
      row.forEach((v, c) => {
        columns[c]?.push(v);
      });
    }
    const unnest = SYMBOL_TYPES.map((t, c) => `$${c + 1}::${t}[]`).join(', ');
    const updates = SYMBOL_COLUMNS.filter((c) => c !== 'symbol')
      .map((c) => `${c} = EXCLUDED.${c}`)
      .join(', ');
    const result = await db.query(
      `INSERT INTO symbols (${SYMBOL_COLUMNS.join(', ')})
       SELECT * FROM unnest(${unnest})
       ON CONFLICT (symbol) DO UPDATE SET ${updates}, updated_at = now()`,
      columns,
    );
    written += result.rowCount ?? 0;
  }
  return written;
}

/** Column-wise batch of bars, the shape unnest() takes. */
class BarBatch {
  symbol: string[] = [];
  date: string[] = [];
  open: number[] = [];
  high: number[] = [];
  low: number[] = [];
  close: number[] = [];
  volume: number[] = [];
  vwap: number[] = [];
  transactions: number[] = [];
  get size(): number {
    return this.symbol.length;
  }
  add(b: DailyBar): void {
    this.symbol.push(b.symbol);
    this.date.push(b.date);
    this.open.push(b.open);
    this.high.push(b.high);
    this.low.push(b.low);
    this.close.push(b.close);
    this.volume.push(b.volume);
    this.vwap.push(b.vwap);
    this.transactions.push(b.transactions);
  }
  params(): unknown[] {
    return [
      this.symbol,
      this.date,
      this.open,
      this.high,
      this.low,
      this.close,
      this.volume,
      this.vwap,
      this.transactions,
    ];
  }
}

const INSERT_BARS = `INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume, vwap, transactions)
  SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                       $7::bigint[], $8::float8[], $9::int[])`;

export interface BarSinkOptions {
  /** Rows per INSERT (default 20,000). */
  readonly batchSize?: number;
  /** INSERTs in flight at once (default 2: one per core of the database host). */
  readonly concurrency?: number;
  /** ON CONFLICT DO UPDATE (re-loading rows that may exist) instead of a plain INSERT. */
  readonly upsert?: boolean;
}

/** Accepts bars one at a time and writes them in batches with bounded concurrency. */
export class BarSink {
  private batch = new BarBatch();
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;
  private readonly sql: string;
  private readonly batchSize: number;
  private readonly concurrency: number;
  rows = 0;

  constructor(
    private readonly pool: pg.Pool,
    options: BarSinkOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 20_000;
    this.concurrency = options.concurrency ?? 2;
    this.sql = options.upsert
      ? `${INSERT_BARS} ON CONFLICT (symbol, date) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
           low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, vwap = EXCLUDED.vwap,
           transactions = EXCLUDED.transactions`
      : INSERT_BARS;
  }

  async add(bars: readonly DailyBar[]): Promise<void> {
    for (const bar of bars) {
      this.batch.add(bar);
      if (this.batch.size >= this.batchSize) await this.flushBatch();
    }
  }

  private async flushBatch(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.batch.size === 0) return;
    const batch = this.batch;
    this.batch = new BarBatch();
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const p: Promise<void> = this.pool
      .query(this.sql, batch.params())
      .then((r) => {
        this.rows += r.rowCount ?? 0;
      })
      .catch((error: unknown) => {
        this.failure ??= new ScenarioLoadError(`bar batch failed: ${(error as Error).message}`, {
          cause: error,
        });
      })
      .finally(() => {
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  /** Writes what is left and waits for every batch; throws the first failure. */
  async close(): Promise<number> {
    await this.flushBatch();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    return this.rows;
  }
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** COPY text format: tab-separated, backslash escapes (symbols are the only text column). */
const copyText = (value: string) =>
  value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );

function* copyLines(series: Iterator<{ bars: readonly DailyBar[] }>): Generator<string> {
  for (let next = series.next(); !next.done; next = series.next()) {
    let chunk = '';
    for (const b of next.value.bars) {
      chunk += `${copyText(b.symbol)}\t${b.date}\t${b.open}\t${b.high}\t${b.low}\t${b.close}\t${b.volume}\t${b.vwap}\t${b.transactions}\n`;
    }
    if (chunk) yield chunk;
  }
}

/** Streams every series' bars into ohlcv_daily with one COPY on the given connection. */
export async function copyBars(
  client: pg.PoolClient | pg.Client,
  series: Iterable<{ bars: readonly DailyBar[] }>,
): Promise<number> {
  const sink = client.query(
    copyFrom(
      'COPY ohlcv_daily (symbol, date, open, high, low, close, volume, vwap, transactions) FROM STDIN',
    ),
  );
  try {
    await pipeline(Readable.from(copyLines(series[Symbol.iterator]()), { objectMode: false }), sink);
  } catch (error) {
    throw new ScenarioLoadError(`COPY into ohlcv_daily failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return sink.rowCount;
}

export interface LoadResult {
  readonly schema: string;
  readonly symbols: number;
  readonly bars: number;
  readonly seconds: number;
}

/**
 * Full scenario load (idempotent, atomic): in one transaction, ohlcv_daily is emptied and refilled
 * by COPY from the streamed series, symbols are upserted and symbols of an earlier, different load
 * removed. Readers see the old scenario or the new one, never half of it. One COPY stream: two
 * parallel streams measured slower here (the generator and two backends share two cores).
 */
export async function loadScenario(pool: pg.Pool, market: ScenarioMarket): Promise<LoadResult> {
  const started = performance.now();
  const schema = assertScenarioSchema(await currentSchema(pool));
  const window = { start: market.start, end: market.end };
  const { symbols, bars } = await withTransaction(pool, async (client) => {
    await client.query('TRUNCATE ohlcv_daily');
    // Secondary indexes are rebuilt once after the load rather than maintained row by row; they
    // are read from the catalog, so whatever the migrations define comes back exactly as defined.
    const { rows: indexes } = await client.query<{ name: string; def: string }>(
      `SELECT i.indexname AS name, i.indexdef AS def
         FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = 'ohlcv_daily'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                           WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)`,
    );
    for (const index of indexes) await client.query(`DROP INDEX ${quoteIdent(index.name)}`);
    const bars = await copyBars(client, market.series());
    for (const index of indexes) await client.query(index.def);
    const symbols = await upsertSymbols(client, market.universe, window);
    await client.query('DELETE FROM symbols WHERE NOT (symbol = ANY($1::text[]))', [
      market.universe.map((r) => r.symbol),
    ]);
    return { symbols, bars };
  });
  // Fresh statistics so the first queries on the new data get sensible plans.
  await pool.query('ANALYZE symbols');
  await pool.query('ANALYZE ohlcv_daily');
  return { schema, symbols, bars, seconds: (performance.now() - started) / 1000 };
}

/**
 * Loads some symbols' synthetic history (load-history --scenario): their records upserted and
 * their bars in [from, to] replaced, nothing else touched.
 */
export async function loadSymbolsHistory(
  pool: pg.Pool,
  market: ScenarioMarket,
  symbols: readonly string[],
  range: { from: IsoDate; to: IsoDate },
): Promise<LoadResult & { unknown: string[] }> {
  const started = performance.now();
  const schema = assertScenarioSchema(await currentSchema(pool));
  const wanted = new Set(symbols);
  const records = market.universe.filter((r) => wanted.has(r.symbol));
  const known = new Set(records.map((r) => r.symbol));
  const unknown = symbols.filter((s) => !known.has(s));
  await upsertSymbols(pool, records, { start: range.from, end: range.to });
  await pool.query('DELETE FROM ohlcv_daily WHERE symbol = ANY($1::text[]) AND date BETWEEN $2 AND $3', [
    [...known],
    range.from,
    range.to,
  ]);
  const sink = new BarSink(pool, { upsert: true });
  for (const r of records) await sink.add(market.bars(r.symbol, range.from, range.to));
  const bars = await sink.close();
  return { schema, symbols: records.length, bars, seconds: (performance.now() - started) / 1000, unknown };
}
