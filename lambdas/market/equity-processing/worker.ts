/**
 * Worker of the equity-types processing queue: one message = one dispatched batch of one type. Each
 * symbol's recent daily bars are refreshed from the provider into ohlcv_daily (upsert) and the
 * outcome is reported with complete_symbol_processing IN THE SAME TRANSACTION, so "completed" always
 * means "the bars are in". The run's figures go to update_processing_stats.
 *
 * Claims are fenced: a symbol is processed and reported only while its queue row is still the claim
 * the message carries (same id, status processing, same attempts). An SQS redelivery therefore skips
 * the symbols a previous delivery already reported, and a message that outlived its lease (the
 * dispatcher put the symbol back and claimed it again) cannot complete the newer claim.
 *
 * Failure mapping (one place):
 * - the symbol has no answer worth retrying now (unknown on the provider, malformed body, no bars in
 *   the window) -> reported as an error: the queue retries it after retry_delay_seconds x attempts,
 *   or marks it failed after max_attempts;
 * - provider throttling/outage still failing after the adapter's retries, or the Lambda running out
 *   of time -> EquityBatchRetriableError: the batch stops, its unreported symbols stay claimed, and
 *   the message is a batch item failure (SQS redelivers; DLQ after maxReceiveCount; the lease puts
 *   the symbols back to pending if the message never comes back);
 * - wrong API key or configuration -> EquityProcessingConfigurationError (the same SQS path, but it
 *   alarms: retrying cannot help).
 */
import type pg from 'pg';
import { withTransaction } from '../../platform/postgres';
import { isTradingDay } from '../calendar';
import {
  ProviderAuthError,
  ProviderConfigError,
  ProviderError,
  ProviderNotFoundError,
  ProviderResponseError,
} from '../provider';
import { barProblem, upsertBars } from '../sql/bars';
import { completeSymbolProcessing, type QueueStatus, updateProcessingStats } from '../sql/processing-queue';
import type { DailyBar } from '../types';
import type { EquityBatch, EquityClaim } from './message';

export interface RefreshProvider {
  dailyBars(symbol: string, from: string, to: string): Promise<DailyBar[]>;
}

export interface WorkerDeps {
  readonly pool: pg.Pool;
  readonly provider: RefreshProvider;
  /** Milliseconds left before the invocation times out (Lambda context); unlimited when absent. */
  readonly remainingMs?: () => number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface WorkerOptions {
  /** Stop starting new symbols when less than this is left of the invocation. */
  readonly deadlineMarginMs?: number;
}

export type SymbolResult =
  | { readonly symbol: string; readonly outcome: 'completed'; readonly bars: number }
  | {
      readonly symbol: string;
      readonly outcome: 'error';
      readonly error: string;
      readonly status: QueueStatus;
    }
  /** Not this message's claim any more (already reported, or re-claimed after the lease). */
  | { readonly symbol: string; readonly outcome: 'stale' }
  /** Left claimed for the redelivery (the batch stopped on a retriable failure). */
  | { readonly symbol: string; readonly outcome: 'deferred' };

export interface BatchOutcome {
  readonly type: string;
  readonly processed: number;
  readonly failed: number;
  readonly stale: number;
  readonly deferred: number;
  readonly barsLoaded: number;
  readonly seconds: number;
  readonly results: readonly SymbolResult[];
}

/** Retrying the batch later can help (provider throttling/outage, out of time). */
export class EquityBatchRetriableError extends Error {
  constructor(
    message: string,
    readonly outcome: BatchOutcome,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'EquityBatchRetriableError';
  }
}

/** Credentials or configuration are wrong: retrying cannot help; the message ends in the DLQ. */
export class EquityProcessingConfigurationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EquityProcessingConfigurationError';
  }
}

type Classified = { kind: 'answer'; error: string } | { kind: 'retriable' | 'configuration'; cause: unknown };

function classify(error: unknown): Classified {
  if (error instanceof ProviderNotFoundError) return { kind: 'answer', error: 'unknown_on_provider' };
  if (error instanceof ProviderResponseError) return { kind: 'answer', error: 'malformed_provider_response' };
  if (error instanceof ProviderAuthError || error instanceof ProviderConfigError) {
    return { kind: 'configuration', cause: error };
  }
  if (error instanceof ProviderError) return { kind: 'retriable', cause: error };
  // Anything else (a bug, the database) is not the symbol's fault: let SQS retry the message.
  return { kind: 'retriable', cause: error };
}

/** The bars to keep: this symbol, inside the window, trading days, valid, one per date (last wins). */
export function refreshBars(symbol: string, from: string, to: string, bars: readonly DailyBar[]): DailyBar[] {
  const byDate = new Map<string, DailyBar>();
  for (const b of bars) {
    if (
      b.symbol === symbol &&
      b.date >= from &&
      b.date <= to &&
      isTradingDay(b.date) &&
      barProblem(b) === null
    ) {
      byDate.set(b.date, b);
    }
  }
  return [...byDate.values()].sort((a, b) => (a.date < b.date ? -1 : 1));
}

/** Locks the claim's row if it is still this claim; false when it is not (stale message). */
async function lockClaim(db: pg.PoolClient, type: string, claim: EquityClaim): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM equity_processing_queue
     WHERE id = $1::bigint AND type = $2 AND symbol = $3 AND status = 'processing' AND attempts = $4
     FOR UPDATE`,
    [claim.queue_id, type, claim.symbol, claim.attempts],
  );
  return (rowCount ?? 0) > 0;
}

/** The claims of the batch that are still live (one query, before any provider call is spent). */
async function liveClaims(pool: pg.Pool, batch: EquityBatch): Promise<Set<string>> {
  const { rows } = await pool.query<{ id: string; attempts: number }>(
    `SELECT id::text AS id, attempts FROM equity_processing_queue
     WHERE id = ANY ($1::bigint[]) AND type = $2 AND status = 'processing'`,
    [batch.symbols.map((c) => c.queue_id), batch.type],
  );
  const attempts = new Map(rows.map((r) => [r.id, r.attempts]));
  return new Set(batch.symbols.filter((c) => attempts.get(c.queue_id) === c.attempts).map((c) => c.queue_id));
}

export async function processEquityBatch(
  deps: WorkerDeps,
  batch: EquityBatch,
  options: WorkerOptions = {},
): Promise<BatchOutcome> {
  const started = performance.now();
  const margin = options.deadlineMarginMs ?? 15_000;
  const results: SymbolResult[] = [];
  let stop: { error: Error } | undefined;

  const live = await liveClaims(deps.pool, batch);
  for (const claim of batch.symbols) {
    if (stop) {
      results.push({ symbol: claim.symbol, outcome: 'deferred' });
      continue;
    }
    if (!live.has(claim.queue_id)) {
      results.push({ symbol: claim.symbol, outcome: 'stale' });
      continue;
    }
    if (deps.remainingMs && deps.remainingMs() < margin) {
      stop = { error: new Error(`less than ${margin} ms left of the invocation`) };
      results.push({ symbol: claim.symbol, outcome: 'deferred' });
      continue;
    }

    let bars: DailyBar[] = [];
    let answer: string | undefined;
    try {
      bars = refreshBars(
        claim.symbol,
        batch.from,
        batch.to,
        await deps.provider.dailyBars(claim.symbol, batch.from, batch.to),
      );
      if (bars.length === 0) answer = 'no_recent_bars';
    } catch (error) {
      const c = classify(error);
      if (c.kind === 'answer') {
        answer = c.error;
      } else {
        const err =
          c.kind === 'configuration'
            ? new EquityProcessingConfigurationError(
                `equity batch ${batch.type}: ${(c.cause as Error).message}`,
                { cause: c.cause },
              )
            : c.cause instanceof Error
              ? c.cause
              : new Error(String(c.cause));
        stop = { error: err };
        results.push({ symbol: claim.symbol, outcome: 'deferred' });
        continue;
      }
    }

    try {
      const result = await withTransaction(deps.pool, async (client): Promise<SymbolResult> => {
        if (!(await lockClaim(client, batch.type, claim))) return { symbol: claim.symbol, outcome: 'stale' };
        if (answer !== undefined) {
          const status = await completeSymbolProcessing(client, batch.type, claim.symbol, answer);
          return { symbol: claim.symbol, outcome: 'error', error: answer, status: status ?? 'failed' };
        }
        await upsertBars(client, bars);
        const loaded = bars.length;
        await completeSymbolProcessing(client, batch.type, claim.symbol);
        return { symbol: claim.symbol, outcome: 'completed', bars: loaded };
      });
      results.push(result);
    } catch (error) {
      // The database failed (the transaction rolled back): the symbol stays claimed for the retry,
      // and what was already reported still reaches the statistics below if the database allows.
      stop = { error: error instanceof Error ? error : new Error(String(error)) };
      results.push({ symbol: claim.symbol, outcome: 'deferred' });
    }
  }

  const count = (o: SymbolResult['outcome']) => results.filter((r) => r.outcome === o).length;
  const outcome: BatchOutcome = {
    type: batch.type,
    processed: count('completed'),
    failed: count('error'),
    stale: count('stale'),
    deferred: count('deferred'),
    barsLoaded: results.reduce((n, r) => n + (r.outcome === 'completed' ? r.bars : 0), 0),
    seconds: (performance.now() - started) / 1000,
    results,
  };
  // A run that reported nothing (every claim stale, or a failure before the first symbol) is not a
  // processing run of the type; counting it would dilute the statistics.
  if (outcome.processed + outcome.failed > 0) {
    await updateProcessingStats(deps.pool, batch.type, {
      processed: outcome.processed,
      failed: outcome.failed,
      seconds: outcome.seconds,
    });
  }
  deps.log?.('equity batch processed', {
    type: batch.type,
    dispatchId: batch.dispatch_id,
    batchIndex: batch.batch_index,
    processed: outcome.processed,
    failed: outcome.failed,
    stale: outcome.stale,
    deferred: outcome.deferred,
    barsLoaded: outcome.barsLoaded,
  });
  if (stop) {
    if (stop.error instanceof EquityProcessingConfigurationError) throw stop.error;
    throw new EquityBatchRetriableError(
      `equity batch ${batch.type}#${batch.batch_index} stopped with ${outcome.deferred} symbol(s) left for redelivery: ${stop.error.name}: ${stop.error.message}`,
      outcome,
      { cause: stop.error },
    );
  }
  return outcome;
}
