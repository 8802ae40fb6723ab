/**
 * The EOD completion signal: ONE definition (channel, event type, payload schema, dedupe rule,
 * where it is recorded) shared by its producer (the EOD complete step) and every consumer (the
 * universe sync, the app, tests). The replaced system's synchronizer waited on a Redis list key that
 * nobody pushed because producer and consumer each spelled the signal their own way.
 *
 * Durable twice over: the row in eod_runs (what the universe sync reads) and the message in the
 * market outbox, which the relay publishes through the event bus (Redis Stream + pub/sub, so an app
 * that was offline catches up). Both are written in one transaction.
 */
import { z } from 'zod';
import { CHANNELS, type Envelope, SEED_SERVICES } from '../../platform/event-bus';
import { enqueueOutbox } from '../../platform/outbox';
import type { IsoDate } from '../calendar';
import type { Queryable } from '../sql/db';

export const EOD_SIGNAL_CHANNEL = CHANNELS.eodCompleted;
export const EOD_SIGNAL_EVENT_TYPE = 'eod_completed';
/** `service` of the envelope. */
export const EOD_SERVICE = SEED_SERVICES.eodPipeline;

export const EodStatusSchema = z.enum(['COMPLETE', 'INCOMPLETE']);
export type EodStatus = z.infer<typeof EodStatusSchema>;

const IsoDateSchema = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD');

export const EodSignalSchema = z.object({
  trade_date: IsoDateSchema,
  /** COMPLETE when coverage >= threshold (and at least one symbol is tracked). */
  status: EodStatusSchema,
  /** Active symbols in the symbol master on the trade date (listed by then, not delisted). */
  tracked_symbols: z.number().int().nonnegative(),
  /** Of those, how many have a bar for the trade date in ohlcv_daily. */
  symbols_with_bar: z.number().int().nonnegative(),
  missing_symbols: z.number().int().nonnegative(),
  /** symbols_with_bar / tracked_symbols, 0..1 (rounded to 4 places). */
  coverage: z.number().min(0).max(1),
  threshold: z.number().min(0).max(1),
  /** Every bar stored for the date, tracked or not (grouped daily covers all US tickers). */
  bars_on_date: z.number().int().nonnegative(),
  /** Up to 50 tracked symbols without a bar, sorted: where an operator starts looking. */
  missing_sample: z.array(z.string()).max(50),
});
export type EodSignal = z.infer<typeof EodSignalSchema>;

export class InvalidEodSignalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidEodSignalError';
  }
}

export function parseEodSignal(value: unknown): EodSignal {
  const parsed = EodSignalSchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidEodSignalError(
      `invalid EOD signal: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** For stream/pub-sub consumers: the signal inside an envelope received on EOD_SIGNAL_CHANNEL. */
export function eodSignalOfEnvelope(envelope: Envelope): EodSignal {
  if (envelope.event_type !== EOD_SIGNAL_EVENT_TYPE) {
    throw new InvalidEodSignalError(`not an EOD signal: event_type ${envelope.event_type}`);
  }
  return parseEodSignal(envelope.data);
}

/**
 * Same outcome for a date = same key = published once: a re-run of the date that finds the same
 * counts publishes nothing, a re-run that turns INCOMPLETE into COMPLETE publishes the new outcome.
 */
export function eodSignalDedupeKey(signal: EodSignal): string {
  return `eod.completed:${signal.trade_date}:${signal.status}:${signal.symbols_with_bar}/${signal.tracked_symbols}`;
}

/**
 * Records the signal for its date and enqueues it for publishing, in the caller's transaction.
 * Returns whether a new message was enqueued (false on an identical re-run).
 */
export async function recordEodSignal(db: Queryable, signal: EodSignal): Promise<boolean> {
  const valid = parseEodSignal(signal);
  const dedupeKey = eodSignalDedupeKey(valid);
  const enqueued = await enqueueOutbox(db, [
    {
      dedupeKey,
      destination: { channel: EOD_SIGNAL_CHANNEL },
      eventType: EOD_SIGNAL_EVENT_TYPE,
      payload: valid,
    },
  ]);
  await db.query(
    `INSERT INTO eod_runs AS r (trade_date, status, tracked_symbols, symbols_with_bar, signal, message_id)
     VALUES ($1::date, $2, $3, $4, $5::jsonb,
             (SELECT message_id FROM market_outbox WHERE dedupe_key = $6))
     ON CONFLICT (trade_date) DO UPDATE
       SET status = EXCLUDED.status,
           tracked_symbols = EXCLUDED.tracked_symbols,
           symbols_with_bar = EXCLUDED.symbols_with_bar,
           signal = EXCLUDED.signal,
           message_id = coalesce(EXCLUDED.message_id, r.message_id),
           signalled_at = CASE WHEN r.signal = EXCLUDED.signal THEN r.signalled_at ELSE now() END`,
    [
      valid.trade_date,
      valid.status,
      valid.tracked_symbols,
      valid.symbols_with_bar,
      JSON.stringify(valid),
      dedupeKey,
    ],
  );
  return enqueued.length > 0;
}

/** The recorded signal of a trade date, null when the EOD chain has not signalled it yet. */
export async function readEodSignal(db: Queryable, tradeDate: IsoDate): Promise<EodSignal | null> {
  const { rows } = await db.query<{ signal: unknown }>(
    'SELECT signal FROM eod_runs WHERE trade_date = $1::date',
    [tradeDate],
  );
  return rows[0] ? parseEodSignal(rows[0].signal) : null;
}
