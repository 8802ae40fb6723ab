/**
 * Dispatcher of the equity-types processing queue. For each equity type, highest priority_level
 * first, it claims queued symbols in the type's batch_size (get_symbols_for_processing: FOR UPDATE
 * SKIP LOCKED, status -> processing, lease) and sends one message per batch to the EquityProcessing
 * queue. The type's rate_limit_ms is kept WITHOUT sleeping in the Lambda: consecutive batches of a
 * type get SQS DelaySeconds 0, s, 2s, ... (s = rate_limit_ms rounded UP to whole seconds, SQS's
 * unit, so rounding never shortens the spacing).
 *
 * How far ahead one run schedules is bounded by three things, and a symbol beyond the bound is simply
 * NOT claimed: it stays pending, holds no lease, and the next run takes it.
 * - SQS's DelaySeconds maximum, 900 s.
 * - The run window = the schedule period: a run never schedules a type's batch later than
 *   window - s, so the next run's first batch (delay 0, `window` seconds later) is still s after this
 *   run's last one, and the rate limit holds across runs. Run the dispatcher every `window` seconds.
 * - The type's claim lease (processing_rules.lease_seconds): a batch must reach a worker and finish
 *   before its lease expires, else the next dispatcher run would put the symbols back to pending
 *   while the delayed message is still on its way. So delay <= lease - leaseMargin.
 *
 * Crash safety: a crash after claiming and before (or while) sending leaves claims whose lease
 * expires; the next run after the lease puts them back to pending (or failed after max_attempts). A
 * symbol is never lost, only delayed by one lease.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { type IsoDate, latestSession } from '../calendar';
import { claimSymbolsForProcessing } from '../sql/processing-queue';
import { type EquityBatch, EquityBatchSchema, REFRESH_SESSIONS, refreshWindow } from './message';

/** SQS's maximum DelaySeconds. */
export const SQS_MAX_DELAY_SECONDS = 900;
/** Default run window: a dispatcher scheduled every 15 minutes can use SQS's whole delay range. */
export const DEFAULT_WINDOW_SECONDS = 900;
/**
 * Default time a batch needs between becoming visible and being reported: the worker's timeout
 * (120 s, lib/topology/market.ts) plus a minute for the event source to pick it up.
 */
export const DEFAULT_LEASE_MARGIN_SECONDS = 180;
/** Lease when a type's processing_rules has none (the SQL functions' default). */
export const DEFAULT_LEASE_SECONDS = 900;
/** Upper bound of batches per type per run; matters only for types without a rate limit. */
export const DEFAULT_MAX_BATCHES_PER_TYPE = 200;

export interface EquityTypeSchedule {
  readonly typeName: string;
  readonly priorityLevel: number;
  readonly batchSize: number;
  readonly rateLimitMs: number;
  readonly leaseSeconds: number;
}

export interface DispatchPlanOptions {
  readonly windowSeconds?: number;
  readonly leaseMarginSeconds?: number;
  readonly maxBatchesPerType?: number;
}

export type SlotLimit = 'window' | 'sqs_max_delay' | 'lease' | 'max_batches';

/** What one run may send for one type: a message per delay, each of up to batchSize symbols. */
export interface TypeSlots {
  readonly type: string;
  readonly priorityLevel: number;
  readonly batchSize: number;
  /** Spacing of consecutive batches in seconds (rate_limit_ms rounded up). */
  readonly stepSeconds: number;
  readonly delays: readonly number[];
  /** Which bound cut the slots off. */
  readonly limitedBy: SlotLimit;
}

export class InvalidDispatchOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDispatchOptionsError';
  }
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidDispatchOptionsError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

/**
 * The dispatch plan (pure): types in priority order (ties by name, so the order is stable), each with
 * the delays of the batches this run may send.
 */
export function planDispatch(
  types: readonly EquityTypeSchedule[],
  options: DispatchPlanOptions = {},
): TypeSlots[] {
  const window = positiveInteger('windowSeconds', options.windowSeconds ?? DEFAULT_WINDOW_SECONDS, 1);
  const margin = positiveInteger(
    'leaseMarginSeconds',
    options.leaseMarginSeconds ?? DEFAULT_LEASE_MARGIN_SECONDS,
    0,
  );
  const maxBatches = positiveInteger(
    'maxBatchesPerType',
    options.maxBatchesPerType ?? DEFAULT_MAX_BATCHES_PER_TYPE,
    1,
  );
  const ordered = [...types].sort(
    (a, b) =>
      b.priorityLevel - a.priorityLevel || (a.typeName < b.typeName ? -1 : a.typeName > b.typeName ? 1 : 0),
  );
  return ordered.map((t) => {
    const step = Math.ceil(t.rateLimitMs / 1000);
    // The latest delay each bound allows; the smallest wins.
    const bounds: [SlotLimit, number][] = [
      ['window', window - step],
      ['sqs_max_delay', SQS_MAX_DELAY_SECONDS],
      ['lease', t.leaseSeconds - margin],
    ];
    let [limitedBy, latest] = bounds[0] as [SlotLimit, number];
    for (const [name, value] of bounds) {
      if (value < latest) [limitedBy, latest] = [name, value];
    }
    // One batch at delay 0 is always allowed: even a type whose step exceeds the window (run the
    // dispatcher less often than that) or whose lease is shorter than the margin makes progress.
    let count = step === 0 ? maxBatches : Math.max(1, Math.floor(Math.max(0, latest) / step) + 1);
    if (count >= maxBatches) {
      count = maxBatches;
      limitedBy = 'max_batches';
    }
    return {
      type: t.typeName,
      priorityLevel: t.priorityLevel,
      batchSize: t.batchSize,
      stepSeconds: step,
      delays: Array.from({ length: count }, (_, k) => k * step),
      limitedBy,
    };
  });
}

/** Where batches go: an SQS queue in the handler, anything with the same contract in a test. */
export interface BatchSender {
  /** Sends the messages; returns the ids of those that were not accepted, with the reason. */
  send(
    messages: readonly { id: string; body: string; delaySeconds: number }[],
  ): Promise<{ failed: readonly { id: string; reason: string }[] }>;
}

/** Some messages were not accepted: their symbols stay claimed until the lease expires. */
export class DispatchSendError extends Error {
  constructor(
    readonly failed: readonly { id: string; reason: string }[],
    readonly summary: DispatchSummary,
  ) {
    super(
      `${failed.length} equity batch message(s) not sent (first: ${failed[0]?.reason ?? '?'}); ` +
        'their symbols return to pending when the claim lease expires',
    );
    this.name = 'DispatchSendError';
  }
}

export interface DispatchDeps {
  readonly pool: pg.Pool;
  readonly sender: BatchSender;
  readonly now?: () => Date;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface DispatchOptions extends DispatchPlanOptions {
  /** Only these types (default: every type in equity_types). */
  readonly types?: readonly string[];
  /** Session whose bars the workers refresh (default: the latest NYSE session on or before today). */
  readonly asOf?: IsoDate;
  readonly refreshSessions?: number;
}

export interface TypeDispatch {
  readonly type: string;
  readonly priorityLevel: number;
  readonly batchSize: number;
  readonly stepSeconds: number;
  readonly slots: number;
  readonly limitedBy: SlotLimit;
  /** Batches sent: delay and symbol count of each. */
  readonly batches: readonly { readonly delaySeconds: number; readonly symbols: number }[];
  readonly claimed: number;
  /** True when every slot was filled: more may be pending for the next run. */
  readonly slotsExhausted: boolean;
}

export interface DispatchSummary {
  readonly dispatchId: string;
  readonly asOf: IsoDate;
  readonly from: IsoDate;
  readonly to: IsoDate;
  readonly types: readonly TypeDispatch[];
  readonly messages: number;
  readonly claimed: number;
}

/** The types as scheduled by the database (the seeds or an operator's changes). */
export async function loadTypeSchedules(
  db: pg.Pool | pg.PoolClient,
  only?: readonly string[],
): Promise<EquityTypeSchedule[]> {
  const { rows } = await db.query<{
    type_name: string;
    priority_level: number;
    batch_size: number;
    rate_limit_ms: number;
    lease_seconds: string | null;
  }>(
    `SELECT type_name, priority_level, batch_size, rate_limit_ms,
            processing_rules ->> 'lease_seconds' AS lease_seconds
     FROM equity_types
     WHERE $1::text[] IS NULL OR type_name = ANY ($1::text[])`,
    [only ?? null],
  );
  return rows.map((r) => ({
    typeName: r.type_name,
    priorityLevel: r.priority_level,
    batchSize: r.batch_size,
    rateLimitMs: r.rate_limit_ms,
    leaseSeconds: r.lease_seconds === null ? DEFAULT_LEASE_SECONDS : Number(r.lease_seconds),
  }));
}

/** SendMessageBatch takes at most 10 entries. */
const SEND_CHUNK = 10;

export async function dispatchEquityBatches(
  deps: DispatchDeps,
  options: DispatchOptions = {},
): Promise<DispatchSummary> {
  const now = deps.now ?? (() => new Date());
  const asOf = options.asOf ?? latestSession(now());
  const { from, to } = refreshWindow(asOf, options.refreshSessions ?? REFRESH_SESSIONS);
  const schedules = await loadTypeSchedules(deps.pool, options.types);
  if (options.types) {
    const known = new Set(schedules.map((s) => s.typeName));
    const unknown = options.types.filter((t) => !known.has(t));
    if (unknown.length > 0)
      throw new InvalidDispatchOptionsError(`unknown equity type(s): ${unknown.join(', ')}`);
  }
  const plan = planDispatch(schedules, options);
  const dispatchId = randomUUID();
  const results: TypeDispatch[] = [];
  const failures: { id: string; reason: string }[] = [];
  let messages = 0;
  let claimedTotal = 0;

  for (const slots of plan) {
    const outgoing: { id: string; body: string; delaySeconds: number }[] = [];
    const batches: { delaySeconds: number; symbols: number }[] = [];
    for (const [index, delaySeconds] of slots.delays.entries()) {
      const claims = await claimSymbolsForProcessing(deps.pool, slots.type, slots.batchSize);
      if (claims.length === 0) break;
      const batch: EquityBatch = EquityBatchSchema.parse({
        type: slots.type,
        dispatch_id: dispatchId,
        batch_index: index,
        delay_seconds: delaySeconds,
        claimed_at: now().toISOString(),
        as_of: asOf,
        from,
        to,
        symbols: claims.map((c) => ({ symbol: c.symbol, queue_id: c.queueId, attempts: c.attempts })),
      });
      outgoing.push({ id: `${slots.type}-${index}`, body: JSON.stringify(batch), delaySeconds });
      batches.push({ delaySeconds, symbols: claims.length });
      claimedTotal += claims.length;
      // A short claim means the type's due queue is empty for now.
      if (claims.length < slots.batchSize) break;
    }
    for (let i = 0; i < outgoing.length; i += SEND_CHUNK) {
      const { failed } = await deps.sender.send(outgoing.slice(i, i + SEND_CHUNK));
      failures.push(...failed);
    }
    messages += outgoing.length;
    const claimed = batches.reduce((n, b) => n + b.symbols, 0);
    results.push({
      type: slots.type,
      priorityLevel: slots.priorityLevel,
      batchSize: slots.batchSize,
      stepSeconds: slots.stepSeconds,
      slots: slots.delays.length,
      limitedBy: slots.limitedBy,
      batches,
      claimed,
      slotsExhausted:
        batches.length === slots.delays.length && (batches.at(-1)?.symbols ?? 0) === slots.batchSize,
    });
    if (claimed > 0) {
      deps.log?.('equity batches dispatched', {
        type: slots.type,
        batches: batches.length,
        claimed,
        lastDelaySeconds: batches.at(-1)?.delaySeconds ?? 0,
      });
    }
  }

  const summary: DispatchSummary = {
    dispatchId,
    asOf,
    from,
    to,
    types: results,
    messages: messages - failures.length,
    claimed: claimedTotal,
  };
  if (failures.length > 0) throw new DispatchSendError(failures, summary);
  return summary;
}
