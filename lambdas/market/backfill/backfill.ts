/**
 * Backfill of one symbol's daily history into ohlcv_daily, announced through the outbox:
 * backfill.started, backfill.progress (per chunk, for long loads) and backfill.completed with the
 * records loaded. Safe to run twice for the same job (SQS redelivers): bars are upserted and every
 * message has a dedupe key, so a repeat loads the same rows and publishes nothing new.
 */
import type pg from 'pg';
import { CHANNELS } from '../../platform/event-bus';
import { assertDelivered, enqueueOutbox, type OutboxTransport, relayOutbox } from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import { isTradingDay, tradingDays } from '../calendar';
import {
  ProviderAuthError,
  ProviderConfigError,
  ProviderError,
  ProviderNotFoundError,
  ProviderResponseError,
} from '../provider';
import { barProblem, upsertBars } from '../sql/bars';
import type { DailyBar } from '../types';
import type { BackfillJob } from './job';

export interface BackfillProvider {
  dailyBars(symbol: string, from: string, to: string): Promise<DailyBar[]>;
}

export interface BackfillDeps {
  readonly pool: pg.Pool;
  readonly provider: BackfillProvider;
  readonly transport: OutboxTransport;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface BackfillOptions {
  /** Bars per upsert transaction; a load of more bars publishes backfill.progress after each chunk. */
  readonly chunkSize?: number;
}

export interface BackfillOutcome {
  readonly symbol: string;
  readonly asOf: string;
  readonly success: boolean;
  readonly recordsLoaded: number;
  /** Bars the provider sent that failed the valid-bar rules or fell outside the window's sessions. */
  readonly rejected: number;
  /** Trading sessions in the window (NYSE calendar). */
  readonly windowTradingDays: number;
  readonly reason?: string;
}

/** A failure worth retrying (provider throttling/outage, database unavailable): SQS redelivers. */
export class BackfillRetriableError extends Error {
  constructor(
    readonly symbol: string,
    options: { cause: unknown },
  ) {
    const cause = options.cause;
    super(
      `backfill of ${symbol} failed, will be retried: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}`,
      options,
    );
    this.name = 'BackfillRetriableError';
  }
}

/** Configuration or credentials are wrong: retrying cannot help; the message goes to the DLQ and alarms. */
export class BackfillConfigurationError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'BackfillConfigurationError';
  }
}

/** Outcome of a provider failure: a definitive "no history" answer, or an error to throw. */
function classifyProviderFailure(symbol: string, error: unknown): { reason: string } | Error {
  if (error instanceof ProviderNotFoundError) return { reason: 'unknown_on_provider' };
  if (error instanceof ProviderResponseError) return { reason: 'malformed_provider_response' };
  if (error instanceof ProviderAuthError || error instanceof ProviderConfigError) {
    return new BackfillConfigurationError(`backfill of ${symbol}: ${error.message}`, { cause: error });
  }
  if (error instanceof ProviderError) return new BackfillRetriableError(symbol, { cause: error });
  return error instanceof Error ? error : new Error(String(error));
}

export async function runBackfill(
  deps: BackfillDeps,
  job: BackfillJob,
  options: BackfillOptions = {},
): Promise<BackfillOutcome> {
  const chunkSize = options.chunkSize ?? 1000;
  const { symbol } = job;
  const keyBase = `${symbol}:${job.as_of}`;
  const windowTradingDays = tradingDays(job.from, job.to).length;
  const started = performance.now();

  await enqueueOutbox(deps.pool, [
    {
      dedupeKey: `backfill.started:${keyBase}`,
      destination: { channel: CHANNELS.backfillStarted },
      eventType: 'backfill_started',
      payload: {
        symbol,
        as_of: job.as_of,
        from: job.from,
        to: job.to,
        reason: job.reason,
        window_trading_days: windowTradingDays,
      },
    },
  ]);
  await relayOutbox(deps.pool, deps.transport);

  let bars: DailyBar[] = [];
  let failure: string | undefined;
  try {
    bars = await deps.provider.dailyBars(symbol, job.from, job.to);
  } catch (error) {
    const classified = classifyProviderFailure(symbol, error);
    if (classified instanceof Error) throw classified;
    failure = classified.reason;
  }

  const inWindow = bars.filter(
    (b) => b.symbol === symbol && b.date >= job.from && b.date <= job.to && isTradingDay(b.date),
  );
  const valid = inWindow.filter((b) => barProblem(b) === null);
  // One bar per date: the last one the provider sent wins, as in an upsert.
  const byDate = new Map(valid.map((b) => [b.date, b]));
  const unique = [...byDate.values()].sort((a, b) => (a.date < b.date ? -1 : 1));
  const rejected = bars.length - unique.length;
  if (failure === undefined && unique.length === 0) failure = 'no_history';

  let loaded = 0;
  const chunks = Math.ceil(unique.length / chunkSize);
  for (let i = 0; i < chunks; i++) {
    const chunk = unique.slice(i * chunkSize, (i + 1) * chunkSize);
    const last = i === chunks - 1;
    await withTransaction(deps.pool, async (client) => {
      await upsertBars(client, chunk);
      loaded += chunk.length;
      if (!last) {
        await enqueueOutbox(client, [
          {
            dedupeKey: `backfill.progress:${keyBase}:${i + 1}`,
            destination: { channel: CHANNELS.backfillProgress },
            eventType: 'backfill_progress',
            payload: {
              symbol,
              as_of: job.as_of,
              records_loaded: loaded,
              records_total: unique.length,
              chunk: i + 1,
              chunks,
              percent: Math.round((loaded / unique.length) * 100),
            },
          },
        ]);
      }
    });
    if (!last) await relayOutbox(deps.pool, deps.transport);
  }

  const outcome: BackfillOutcome = {
    symbol,
    asOf: job.as_of,
    success: failure === undefined,
    recordsLoaded: loaded,
    rejected,
    windowTradingDays,
    ...(failure === undefined ? {} : { reason: failure }),
  };
  await withTransaction(deps.pool, async (client) => {
    if (outcome.success) {
      // initial_load_date marks the history as loaded (null = backfill still owed).
      await client.query(
        `UPDATE symbols SET initial_load_date = $2::date, updated_at = now()
         WHERE symbol = $1 AND (initial_load_date IS NULL OR initial_load_date < $2::date)`,
        [symbol, job.as_of],
      );
    }
    await enqueueOutbox(client, [
      {
        dedupeKey: `backfill.completed:${keyBase}`,
        destination: { channel: CHANNELS.backfillCompleted },
        eventType: 'backfill_completed',
        payload: {
          symbol,
          as_of: job.as_of,
          from: job.from,
          to: job.to,
          success: outcome.success,
          records_loaded: loaded,
          records_rejected: rejected,
          window_trading_days: windowTradingDays,
          first_bar_date: unique[0]?.date ?? null,
          last_bar_date: unique.at(-1)?.date ?? null,
          duration_seconds: Math.round(performance.now() - started) / 1000,
          ...(failure === undefined ? {} : { reason: failure }),
        },
      },
    ]);
  });
  const relay = await relayOutbox(deps.pool, deps.transport);
  deps.log?.('backfill done', { ...outcome });
  // The bars and messages are committed; failing the job makes SQS redeliver it, and the repeat
  // (idempotent) relays what Redis or SQS did not take this time.
  assertDelivered(relay);
  return outcome;
}
