import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Exit codes of every command: 0 success, 1 failure (the work ran and failed), 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A bad invocation: the message names the argument and what would be valid. Exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command's usage line, printed after the message. */
    readonly usage?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

function describeOptions(options: Options): string {
  return Object.entries(options)
    .map(([name, o]) => (o.type === 'boolean' ? `--${name}` : `--${name} <${name}>`))
    .join(', ');
}

/**
 * node:util parseArgs with every command's conventions: `--json` is always accepted, and an
 * unknown option, a missing value or a stray positional is a UsageError naming it and listing
 * what the command accepts.
 */
export function parseCommandArgs<const O extends Options>(
  args: string[],
  config: { options: O; allowPositionals?: boolean; usage: string },
) {
  const options = { json: { type: 'boolean' as const, default: false }, ...config.options };
  try {
    return parseArgs({ args, options, allowPositionals: config.allowPositionals ?? false, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '([^']+)'/.exec(message);
    const positional = /Unexpected argument '([^']+)'/.exec(message);
    const missing = /Option '(-[^ ]*)(?: [^']*)?' argument missing/.exec(message);
    const valid = `valid options: ${describeOptions(options)}`;
    if (unknown) throw new UsageError(`unknown option ${unknown[1]}; ${valid}`, config.usage);
    if (positional) throw new UsageError(`unexpected argument '${positional[1]}'`, config.usage);
    if (missing) throw new UsageError(`${missing[1]} needs a value`, config.usage);
    throw new UsageError(message.split('\n')[0] ?? message, config.usage);
  }
}

/** A calendar date YYYY-MM-DD that exists (2025-02-30 does not). */
export function parseDate(flag: string, value: string | undefined): string {
  const expected = 'expected a date YYYY-MM-DD, e.g. 2025-07-03';
  if (value === undefined || value === '') throw new UsageError(`${flag} is required: ${expected}`);
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const date = match ? new Date(`${value}T00:00:00Z`) : undefined;
  if (!match || !date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value) {
    throw new UsageError(`${flag} ${value} is not a date: ${expected}`);
  }
  return value;
}

/** An integer within bounds, named in the error when it is not. */
export function parseInteger(
  flag: string,
  value: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}-${max}`;
    throw new UsageError(`${flag} ${value} is not valid: expected a whole number ${range}`);
  }
  return n;
}

/** One of a fixed set of words (a sub-command, a mode). */
export function oneOf<const T extends string>(
  what: string,
  value: string | undefined,
  valid: readonly T[],
): T {
  if (value !== undefined && (valid as readonly string[]).includes(value)) return value as T;
  throw new UsageError(
    value === undefined
      ? `${what} is missing: one of ${valid.join(', ')}`
      : `unknown ${what} '${value}': one of ${valid.join(', ')}`,
  );
}

/** A PostgreSQL schema name as the market commands accept it (it is interpolated into SQL). */
export function parseSchema(flag: string, value: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
    throw new UsageError(
      `${flag} ${value} is not a schema name: lower-case letters, digits and _ (e.g. market_local)`,
    );
  }
  return value;
}

/** The schema the market commands and `npm start` keep the local market in, unless told otherwise. */
export const DEFAULT_MARKET_SCHEMA = 'market_local';

/** --schema, else PG_SCHEMA, else market_local; with the line every market command prints. */
export function marketSchema(flag: string | undefined): { schema: string; line: string } {
  const schema = parseSchema('--schema', flag ?? process.env.PG_SCHEMA ?? DEFAULT_MARKET_SCHEMA);
  const source = flag ? '--schema' : process.env.PG_SCHEMA ? 'PG_SCHEMA' : 'default; --schema S to change';
  return { schema, line: `market schema: ${schema} (${source})` };
}
