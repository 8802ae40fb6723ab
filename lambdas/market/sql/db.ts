import type pg from 'pg';

/** A pool or a checked-out client: pass the client to run several calls in one transaction. */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** SQLSTATE raised by the market-data SQL functions for a type_name missing from equity_types. */
export const SQLSTATE_UNKNOWN_EQUITY_TYPE = 'TS001';
/** invalid_parameter_value: the functions' answer to malformed arguments. */
export const SQLSTATE_INVALID_PARAMETER = '22023';
export const SQLSTATE_CHECK_VIOLATION = '23514';

export class UnknownEquityTypeError extends Error {
  constructor(
    readonly equityType: string,
    options?: ErrorOptions,
  ) {
    super(`unknown equity type: ${equityType}`, options);
    this.name = 'UnknownEquityTypeError';
  }
}

/** Arguments the database refused (bad symbols, wrong jsonb shape, negative counts, ...). */
export class InvalidMarketSqlArgumentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidMarketSqlArgumentError';
  }
}

function sqlState(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** The one mapping from the functions' SQLSTATEs to this module's error classes. */
export function mapMarketSqlError(error: unknown, equityType?: string): unknown {
  const code = sqlState(error);
  if (code === SQLSTATE_UNKNOWN_EQUITY_TYPE)
    return new UnknownEquityTypeError(equityType ?? '?', { cause: error });
  if (code === SQLSTATE_INVALID_PARAMETER || code === SQLSTATE_CHECK_VIOLATION) {
    return new InvalidMarketSqlArgumentError((error as Error).message, { cause: error });
  }
  return error;
}

/** numeric columns arrive from node-postgres as strings (exactness); the jobs work in numbers. */
export function toNumberOrNull(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'number' ? value : Number(value);
}
