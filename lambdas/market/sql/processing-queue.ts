/**
 * Typed calls of the equity-type SQL functions (schemas/sql/0110_equity_types.sql, 0250_processing_read_and_claim.sql): configuration,
 * the per-type processing queue and its statistics. Parameterised queries only.
 */
import { z } from 'zod';
import { mapMarketSqlError, type Queryable } from './db';

export type QueueStatus = 'pending' | 'processing' | 'completed' | 'failed';

const statsSchema = z.object({
  total_runs: z.number(),
  total_processed: z.number(),
  total_failed: z.number(),
  total_processing_seconds: z.number(),
  last_run_processed: z.number().nullable(),
  last_run_failed: z.number().nullable(),
  last_run_seconds: z.number().nullable(),
  last_processed_at: z.string().nullable(),
});

const configSchema = z.object({
  type_name: z.string(),
  description: z.string().nullable(),
  update_frequency: z.enum(['realtime', 'intraday', 'daily', 'weekly', 'manual']),
  processing_rules: z.record(z.string(), z.unknown()),
  priority_level: z.number().int(),
  batch_size: z.number().int(),
  rate_limit_ms: z.number().int(),
  requires_eod_validation: z.boolean(),
  stats: statsSchema,
  queue: z.object({ pending: z.number().int(), processing: z.number().int() }),
});

export type ProcessingStats = z.infer<typeof statsSchema>;
export type EquityProcessingConfig = z.infer<typeof configSchema>;

export interface ClaimedSymbol {
  readonly queueId: string;
  readonly symbol: string;
  readonly priority: number;
  readonly scheduledTime: Date;
  /** Attempts including this claim (1 on the first try). */
  readonly attempts: number;
}

async function call<T>(equityType: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw mapMarketSqlError(error, equityType);
  }
}

/** The type's configuration, statistics and queue depth; null for an unknown type. */
export async function getEquityProcessingConfig(
  db: Queryable,
  equityType: string,
): Promise<EquityProcessingConfig | null> {
  const { rows } = await db.query<{ config: unknown }>('SELECT get_equity_processing_config($1) AS config', [
    equityType,
  ]);
  const config = rows[0]?.config;
  return config === null || config === undefined ? null : configSchema.parse(config);
}

/**
 * Queues symbols for a type; returns how many were actually queued (a symbol already pending or
 * processing for that type is not queued again).
 */
export async function queueSymbolsForProcessing(
  db: Queryable,
  equityType: string,
  symbols: readonly string[],
  options: { priority?: number; scheduledTime?: Date } = {},
): Promise<number> {
  return call(equityType, async () => {
    const { rows } = await db.query<{ queued: number }>(
      'SELECT queue_symbols_for_processing($1, $2::text[], $3::integer, $4::timestamptz) AS queued',
      [equityType, symbols, options.priority ?? null, options.scheduledTime ?? null],
    );
    return rows[0]?.queued ?? 0;
  });
}

/**
 * Reads (does not claim) up to `limit` due pending symbols of a type (default: the type's batch
 * size) in dispatch order: the seeds' get_symbols_for_processing. Two calls see the same rows.
 */
export async function getSymbolsForProcessing(
  db: Queryable,
  equityType: string,
  limit?: number,
): Promise<ClaimedSymbol[]> {
  return queuedSymbols(db, 'get_symbols_for_processing', equityType, limit);
}

/** The symbols a processing type takes today (symbols_for_processing_type, 0250). */
export async function symbolsForProcessingType(db: Queryable, equityType: string): Promise<string[]> {
  return call(equityType, async () => {
    const { rows } = await db.query<{ symbol: string }>(
      'SELECT symbol FROM symbols_for_processing_type($1)',
      [equityType],
    );
    return rows.map((r) => r.symbol);
  });
}

/**
 * Queues the type's symbols for a session, once per symbol and session (a symbol with a row for the
 * type scheduled on or after the session is skipped). Returns how many were queued.
 */
export async function queueTypeSymbolsForSession(
  db: Queryable,
  equityType: string,
  session: string,
): Promise<number> {
  return call(equityType, async () => {
    const { rows } = await db.query<{ queued: number }>(
      'SELECT queue_type_symbols_for_session($1, $2::date) AS queued',
      [equityType, session],
    );
    return rows[0]?.queued ?? 0;
  });
}

/**
 * Claims up to `limit` due symbols (default: the type's batch size), highest priority first, and
 * marks them processing. Safe to call from concurrent dispatchers: claims are disjoint.
 */
export async function claimSymbolsForProcessing(
  db: Queryable,
  equityType: string,
  limit?: number,
): Promise<ClaimedSymbol[]> {
  return queuedSymbols(db, 'claim_symbols_for_processing', equityType, limit);
}

/**
 * Reports one claimed symbol's outcome: no error = completed; an error = retried later or failed
 * after max_attempts. Returns the new status, or null when the symbol held no claim.
 */
export async function completeSymbolProcessing(
  db: Queryable,
  equityType: string,
  symbol: string,
  error?: string,
): Promise<QueueStatus | null> {
  return call(equityType, async () => {
    const { rows } = await db.query<{ status: QueueStatus | null }>(
      'SELECT complete_symbol_processing($1, $2, $3) AS status',
      [equityType, symbol, error ?? null],
    );
    return rows[0]?.status ?? null;
  });
}

/** Adds one run's figures to the type's statistics; returns the new totals. */
export async function updateProcessingStats(
  db: Queryable,
  equityType: string,
  run: { processed: number; failed: number; seconds: number },
): Promise<ProcessingStats> {
  return call(equityType, async () => {
    const { rows } = await db.query<{ stats: unknown }>(
      'SELECT update_processing_stats($1, $2::integer, $3::integer, $4::double precision) AS stats',
      [equityType, run.processed, run.failed, run.seconds],
    );
    return statsSchema.parse(rows[0]?.stats);
  });
}

/** The reading and the claiming function return the same rows; only the claim marks them. */
function queuedSymbols(
  db: Queryable,
  fn: 'get_symbols_for_processing' | 'claim_symbols_for_processing',
  equityType: string,
  limit: number | undefined,
): Promise<ClaimedSymbol[]> {
  return call(equityType, async () => {
    const { rows } = await db.query<{
      queue_id: string;
      symbol: string;
      priority: number;
      scheduled_time: Date;
      attempts: number;
    }>(
      // fn is one of two fixed names (the type above), never input; the values are parameters.
      `SELECT queue_id, symbol, priority, scheduled_time, attempts FROM ${fn}($1, $2::integer)`,
      [equityType, limit ?? null],
    );
    return rows.map((r) => ({
      queueId: r.queue_id,
      symbol: r.symbol,
      priority: r.priority,
      scheduledTime: r.scheduled_time,
      attempts: r.attempts,
    }));
  });
}
