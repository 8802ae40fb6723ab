/**
 * What counts as a transient fault (a dependency went away and will come back), and the one
 * in-process retry every idempotent unit of work uses before falling back to the queue's
 * visibility timeout or the Step Functions retry.
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
} from '@redis/client';

/** Marks an error a retry can fix; anything carrying `retriable: true` is retried. */
export interface Retriable {
  readonly retriable: true;
}

/**
 * A unit of work failed because a dependency (PostgreSQL, Redis, S3/SQS) was unreachable or dropped
 * the connection. The unit did not commit; retrying it is safe when the unit is idempotent.
 */
export class TransientFaultError extends Error implements Retriable {
  readonly retriable = true as const;
  constructor(
    readonly dependency: 'postgres' | 'redis' | 'aws',
    cause: unknown,
  ) {
    super(`${dependency} unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'TransientFaultError';
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

// PostgreSQL SQLSTATEs a retry can fix: admin/crash shutdown (pg_terminate_backend, restart),
// starting up, too many connections, serialization failure, deadlock. Class 08 is matched below.
const PG_TRANSIENT_STATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);

// node-postgres reports a dropped socket and a pool checkout timeout by message only.
const PG_TRANSIENT_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Client was closed and is not queryable',
];

interface ErrorShape {
  readonly code?: unknown;
  readonly name?: unknown;
  readonly message?: unknown;
  readonly retriable?: unknown;
  readonly $retryable?: unknown;
  readonly cause?: unknown;
}

function shape(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
}

/** A PostgreSQL connection was lost, refused or shut down (the statement did not complete). */
export function isPostgresConnectionFault(error: unknown): boolean {
  const e = shape(error);
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  return (
    PG_TRANSIENT_STATES.has(code) ||
    /^08[0-9A-Z]{3}$/.test(code) ||
    NETWORK_CODES.has(code) ||
    PG_TRANSIENT_MESSAGES.some((m) => message.startsWith(m))
  );
}

/** The Redis client is disconnected, reconnecting, or lost the socket mid-command. */
export function isRedisConnectionFault(error: unknown): boolean {
  return (
    error instanceof ClientOfflineError ||
    error instanceof ClientClosedError ||
    error instanceof SocketClosedUnexpectedlyError ||
    error instanceof ConnectionTimeoutError ||
    error instanceof SocketTimeoutError ||
    shape(error).name === 'EventBusUnavailableError'
  );
}

/**
 * True when a retry of the same idempotent unit can succeed: connection faults of PostgreSQL,
 * Redis and the AWS endpoints, or an error marked retriable. Searches the cause chain, since
 * domain code wraps errors with context.
 */
export function isTransientFault(error: unknown, depth = 0): boolean {
  if (depth > 5 || error === undefined || error === null) return false;
  const e = shape(error);
  if (e.retriable === true) return true;
  if (isPostgresConnectionFault(error) || isRedisConnectionFault(error)) return true;
  // AWS SDK: network errors it gave up on carry $retryable or a Node network code.
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.$retryable) return true;
  return isTransientFault(e.cause, depth + 1);
}

export interface RetryOptions {
  /** Total time the retries may take before the last error is thrown (default 30 s). */
  readonly budgetMs?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly isRetriable?: (error: unknown) => boolean;
  /** Called before each wait: where the retry is logged (never with payloads). */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * Runs an idempotent unit, retrying it after transient faults with jittered exponential back-off
 * (100 ms doubling to 2 s) until it succeeds or the budget is spent. The budget keeps a unit inside
 * its Lambda timeout; after it the error goes to the caller (queue redelivery, Step Functions
 * retry, DLQ), so a dependency that stays down still ends in a recorded state.
 */
export async function retryTransient<T>(
  unit: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const budget = options.budgetMs ?? 30_000;
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 2_000;
  const retriable = options.isRetriable ?? isTransientFault;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const deadline = now() + budget;
  for (let attempt = 1; ; attempt++) {
    try {
      return await unit(attempt);
    } catch (error) {
      const ceiling = Math.min(max, base * 2 ** (attempt - 1));
      const delay = Math.round(ceiling / 2 + random() * (ceiling / 2));
      if (!retriable(error) || now() + delay > deadline) throw error;
      options.onRetry?.(error, attempt, delay);
      await sleep(delay);
    }
  }
}

/** Name and message of a fault for logs (no payloads, no connection strings). */
export function faultSummary(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * retryTransient for a named unit, logging each retry as a warning: what an operator reading the
 * logs after an outage wants to see (which unit, which attempt, why).
 */
export function retryUnit<T>(
  unit: string,
  run: (attempt: number) => Promise<T>,
  warn: (message: string, fields: Record<string, unknown>) => void,
  options: Omit<RetryOptions, 'onRetry'> = {},
): Promise<T> {
  return retryTransient(run, {
    ...options,
    onRetry: (error, attempt, delayMs) =>
      warn('transient fault; retrying the unit', { unit, attempt, delayMs, fault: faultSummary(error) }),
  });
}
