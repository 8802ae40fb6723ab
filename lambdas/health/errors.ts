/**
 * Named errors of the health domain and the ONE mapping from any error to an outcome.
 *
 * Data errors (the file itself is bad) are terminal: the object is quarantined with the reason and
 * never retried. Everything else is classified by what a retry could change.
 */

/** Base of every error caused by the content of an export: retrying cannot help, quarantine it. */
export class HealthDataError extends Error {
  /** Short machine-readable reason, used in sidecars and summaries. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HealthDataError';
    this.reason = reason;
  }
}

/** Not an Avro object container, or a damaged one (magic, header, truncation, sync marker, codec). */
export class AvroFormatError extends HealthDataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unreadable_container', message, options);
    this.name = 'AvroFormatError';
  }
}

/** The container exceeds a hard limit (size, block size, record count, inflated size). */
export class AvroLimitError extends HealthDataError {
  readonly limit: string;
  readonly value: number;
  readonly max: number;
  constructor(limit: string, value: number, max: number) {
    super('limit_exceeded', `${limit} ${value} exceeds the limit of ${max}`);
    this.name = 'AvroLimitError';
    this.limit = limit;
    this.value = value;
    this.max = max;
  }
}

/** The embedded schema names a record type the pipeline does not know. */
export class UnknownRecordTypeError extends HealthDataError {
  readonly schemaName: string;
  constructor(schemaName: string, detail?: string) {
    super(
      'unknown_record_type',
      `unknown record type ${JSON.stringify(schemaName)}${detail ? `: ${detail}` : ''}`,
    );
    this.name = 'UnknownRecordTypeError';
    this.schemaName = schemaName;
  }
}

/** The writer schema cannot be resolved against our reader schema for its type. */
export class SchemaResolutionError extends HealthDataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('schema_unresolvable', message, options);
    this.name = 'SchemaResolutionError';
  }
}

/** The file name / object key says one record type, the embedded schema another. */
export class RecordTypeMismatchError extends HealthDataError {
  constructor(fromKey: string, fromSchema: string) {
    super(
      'record_type_mismatch',
      `object key says ${fromKey} but the embedded schema is ${fromSchema}; refusing to guess which is right`,
    );
    this.name = 'RecordTypeMismatchError';
  }
}

export type ErrorDisposition = 'quarantine' | 'retry' | 'drop' | 'alarm';

const RETRIABLE_CODES = new Set([
  // Node / network
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  // PostgreSQL: serialization failure, deadlock, lock timeout, too many connections, shutdown
  '40001',
  '40P01',
  '55P03',
  '53300',
  '57P01',
  '57P02',
  '57P03',
]);

const RETRIABLE_NAMES = new Set([
  'SlowDown',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ServiceUnavailable',
  'InternalError',
  'InternalServerError',
  'AbortError',
]);

const MISSING_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchVersion']);
const ACCESS_NAMES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'Forbidden',
  'InvalidAccessKeyId',
  'KMS.AccessDeniedException',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: unknown;
}

/**
 * The single mapping from an error to what the caller does with the message:
 * - quarantine: bad data (unreadable, invalid, unknown type); copy to quarantine/ and finish.
 * - drop: the object is gone (deleted before we read it); record the reason and finish.
 * - alarm: access denied / misconfiguration; a retry cannot fix it, a human must.
 * - retry: network, throttling, timeouts, a dependency down, and anything unrecognised (a retry is
 *   cheap; after maxReceiveCount the queue moves it to the DLQ, whose alarm brings a human).
 */
export function classifyError(error: unknown): ErrorDisposition {
  if (error instanceof HealthDataError) return 'quarantine';
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  if (MISSING_NAMES.has(name) || MISSING_NAMES.has(code)) return 'drop';
  if (ACCESS_NAMES.has(name) || ACCESS_NAMES.has(code) || status === 403) return 'alarm';
  if (status === 404) return 'drop';
  return 'retry';
}

/** True for the transient failures the fact sheet lists (network, throttling, timeouts, dependency down). */
export function isTransientError(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';
  // PostgreSQL class 08 = connection exceptions.
  return (
    RETRIABLE_NAMES.has(name) || RETRIABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || !!e.$retryable
  );
}
