/**
 * Named errors of the health domain and the ONE mapping from any error to an outcome.
 *
 * Data errors (the file itself is bad) are terminal: the object is quarantined with the reason and
 * never retried. Everything else is classified by what a retry could change.
 */

import { storageErrorKind } from '../platform/aws-errors';

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
  const kind = storageErrorKind(error);
  if (kind === 'missing') return 'drop';
  if (kind === 'access') return 'alarm';
  return 'retry';
}
