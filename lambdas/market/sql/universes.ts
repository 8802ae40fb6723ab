/**
 * Typed calls of the universe SQL functions (schemas/sql/0120_universes.sql). A sync that must
 * switch several universes at once passes one transaction's client (withTransaction) as `db`.
 */
import { z } from 'zod';
import { mapMarketSqlError, type Queryable, toNumberOrNull } from './db';

export type UniverseCategory = 'market_cap' | 'sector' | 'industry' | 'theme' | 'etf' | 'ipo' | 'custom';

/** Keys get_etf_universe() applies when asked to filter; absent keys filter nothing. */
export interface LiquidityFilter {
  readonly min_avg_volume?: number;
  readonly min_avg_dollar_volume?: number;
  readonly min_price?: number;
  readonly min_aum?: number;
  readonly lookback_days?: number;
}

const changeSchema = z.object({
  category: z.string(),
  universe: z.string(),
  created: z.boolean(),
  added: z.array(z.string()),
  removed: z.array(z.string()),
  symbol_count: z.number().int(),
});
export type UniverseChange = z.infer<typeof changeSchema>;

const summarySchema = z.object({
  universe_count: z.number().int(),
  total_memberships: z.number().int(),
  distinct_symbols: z.number().int(),
  last_universe_update: z.string().nullable(),
  universes: z.array(
    z.object({
      theme: z.string(),
      symbol_count: z.number().int(),
      last_universe_update: z.string(),
      liquidity_filter: z.record(z.string(), z.unknown()),
      metadata: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type EtfUniversesSummary = z.infer<typeof summarySchema>;

export interface EtfUniverseMember {
  readonly symbol: string;
  readonly ordinal: number;
  /** null when the symbol is not in `symbols`. */
  readonly name: string | null;
  readonly type: string | null;
  readonly active: boolean | null;
  readonly aum: number | null;
  readonly expenseRatio: number | null;
  readonly avgVolume: number | null;
  readonly avgDollarVolume: number | null;
  readonly lastClose: number | null;
  /** ISO date of the newest bar, null without bars. */
  readonly lastBarDate: string | null;
}

export interface UniverseSymbolIssue {
  readonly category: string;
  readonly universe: string;
  readonly symbol: string;
  readonly issue: 'unknown' | 'inactive';
}

export interface UpdateUniverseInput {
  readonly category: UniverseCategory;
  readonly name: string;
  /** The complete new membership, in list order. */
  readonly symbols: readonly string[];
  /** Replaces stored metadata when given. */
  readonly metadata?: Record<string, unknown>;
  /** Replaces the stored liquidity filter when given. */
  readonly liquidityFilter?: LiquidityFilter;
  /** Change-log cause, e.g. market_cap_rebalance, ipo_assignment, delisting_cleanup. */
  readonly changeType?: string;
  readonly reason?: string;
}

async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw mapMarketSqlError(error);
  }
}

const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

/** Replaces a universe's membership; returns what was added and removed (logged in universe_changes). */
export async function updateUniverse(db: Queryable, input: UpdateUniverseInput): Promise<UniverseChange> {
  return call(async () => {
    const { rows } = await db.query<{ change: unknown }>(
      `SELECT update_universe($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7) AS change`,
      [
        input.category,
        input.name,
        JSON.stringify(input.symbols),
        json(input.metadata),
        json(input.liquidityFilter),
        input.changeType ?? null,
        input.reason ?? null,
      ],
    );
    return changeSchema.parse(rows[0]?.change);
  });
}

/**
 * The app's ETF form: `metadata.liquidity_filter` becomes the theme's filter, `metadata.reason` the
 * change-log reason.
 */
export async function updateEtfUniverse(
  db: Queryable,
  theme: string,
  symbols: readonly string[],
  metadata?: Record<string, unknown> & { liquidity_filter?: LiquidityFilter; reason?: string },
): Promise<UniverseChange> {
  return call(async () => {
    const { rows } = await db.query<{ change: unknown }>(
      'SELECT update_etf_universe($1, $2::jsonb, $3::jsonb) AS change',
      [theme, JSON.stringify(symbols), json(metadata)],
    );
    return changeSchema.parse(rows[0]?.change);
  });
}

export async function getEtfUniverse(
  db: Queryable,
  theme: string,
  options: { applyLiquidityFilter?: boolean } = {},
): Promise<EtfUniverseMember[]> {
  const { rows } = await db.query<{
    symbol: string;
    ordinal: number;
    name: string | null;
    type: string | null;
    active: boolean | null;
    aum: string | null;
    expense_ratio: string | null;
    avg_volume: number | null;
    avg_dollar_volume: number | null;
    last_close: number | null;
    last_bar_date: string | null;
  }>(
    // date as text: node-postgres would turn it into a local-midnight Date.
    `SELECT symbol, ordinal, name, type, active, aum, expense_ratio, avg_volume, avg_dollar_volume,
            last_close, last_bar_date::text AS last_bar_date
     FROM get_etf_universe($1, $2::boolean)`,
    [theme, options.applyLiquidityFilter ?? false],
  );
  return rows.map((r) => ({
    symbol: r.symbol,
    ordinal: r.ordinal,
    name: r.name,
    type: r.type,
    active: r.active,
    aum: toNumberOrNull(r.aum),
    expenseRatio: toNumberOrNull(r.expense_ratio),
    avgVolume: r.avg_volume,
    avgDollarVolume: r.avg_dollar_volume,
    lastClose: r.last_close,
    lastBarDate: r.last_bar_date,
  }));
}

export async function getEtfUniversesSummary(db: Queryable): Promise<EtfUniversesSummary> {
  const { rows } = await db.query<{ summary: unknown }>('SELECT get_etf_universes_summary() AS summary');
  return summarySchema.parse(rows[0]?.summary);
}

/** Members of any universe in list order; empty for an unknown universe. */
export async function getUniverseSymbols(
  db: Queryable,
  category: UniverseCategory,
  name: string,
): Promise<string[]> {
  const { rows } = await db.query<{ symbol: string }>('SELECT symbol FROM get_universe_symbols($1, $2)', [
    category,
    name,
  ]);
  return rows.map((r) => r.symbol);
}

export async function getSymbolUniverses(
  db: Queryable,
  symbol: string,
): Promise<{ category: string; universe: string }[]> {
  const { rows } = await db.query<{ category: string; universe: string }>(
    'SELECT category, universe FROM get_symbol_universes($1)',
    [symbol],
  );
  return rows;
}

/** Universe members that are unknown to or inactive in `symbols` (all categories unless one is named). */
export async function validateUniverseSymbols(
  db: Queryable,
  category?: UniverseCategory,
): Promise<UniverseSymbolIssue[]> {
  const { rows } = await db.query<UniverseSymbolIssue>(
    'SELECT category, universe, symbol, issue FROM validate_universe_symbols($1)',
    [category ?? null],
  );
  return rows;
}

/** The app's ETF form: members of ETF themes that are unknown to or inactive in `symbols`. */
export async function validateEtfUniverseSymbols(
  db: Queryable,
): Promise<{ theme: string; symbol: string; issue: 'unknown' | 'inactive' }[]> {
  const { rows } = await db.query<{ theme: string; symbol: string; issue: 'unknown' | 'inactive' }>(
    'SELECT theme, symbol, issue FROM validate_etf_universe_symbols()',
  );
  return rows;
}

/**
 * Recomputes the per-symbol liquidity snapshot the universe reads use (call after each EOD load,
 * before rebuilding universes). Reads stay correct without it, only slower: a member without a
 * fresh snapshot row is computed live. Returns the number of symbols written.
 */
export async function refreshSymbolLiquidity(db: Queryable, lookbackDays = 20): Promise<number> {
  return call(async () => {
    const { rows } = await db.query<{ written: number }>(
      'SELECT refresh_symbol_liquidity($1::integer) AS written',
      [lookbackDays],
    );
    return rows[0]?.written ?? 0;
  });
}
