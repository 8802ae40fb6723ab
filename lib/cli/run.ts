import { EXIT, UsageError } from './args';

/**
 * Runs one command the way `bin/pipeline.ts` does: a UsageError is printed (`usage error: ...`
 * and the command's usage) and becomes exit 2; anything else propagates (exit 1 in the CLI).
 * The CLI tests call commands through this, so they see the exit code an operator sees.
 */
export async function runCommand(run: (args: string[]) => Promise<number>, args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    printUsageError(error);
    return EXIT.usage;
  }
}

export function printUsageError(error: UsageError): void {
  console.error(`usage error: ${error.message}`);
  if (error.usage) console.error(error.usage);
}

/** `A,B, c` -> ['A', 'B', 'C']; an empty list is a UsageError naming the flag. */
export function parseSymbolList(flag: string, value: string | undefined, usage?: string): string[] {
  const symbols = (value ?? '')
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s) => s.length > 0);
  if (symbols.length === 0) {
    throw new UsageError(
      `${flag} is required: a comma-separated list of symbols, e.g. ${flag} AAPL,MSFT`,
      usage,
    );
  }
  const bad = symbols.find((s) => !/^[A-Z0-9][A-Z0-9._\-/]{0,19}$/.test(s));
  if (bad !== undefined) {
    throw new UsageError(
      `${flag}: '${bad}' is not a symbol (letters, digits, '.', '_', '-', '/'; at most 20)`,
      usage,
    );
  }
  return symbols;
}
