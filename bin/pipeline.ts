#!/usr/bin/env -S npx tsx
/**
 * The `pipeline` CLI: `npm run pipeline -- <command> [args]`.
 * Each command is a module in bin/commands/<command>.ts exporting `summary` and `run(args)`;
 * new commands need no registration here.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, UsageError } from '../lib/cli/args';
import { printUsageError } from '../lib/cli/run';
import { applyLocalDefaults } from '../localstack/env';

export interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS_DIR = fileURLToPath(new URL('./commands', import.meta.url));

function commandNames(): string[] {
  return readdirSync(COMMANDS_DIR)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
}

async function usage(): Promise<void> {
  const lines = await Promise.all(
    commandNames().map(async (name) => {
      const command = (await import(`./commands/${name}.ts`)) as Command;
      return `  ${name.padEnd(14)} ${command.summary}`;
    }),
  );
  console.log(['usage: npm run pipeline -- <command> [args]', '', 'commands:', ...lines].join('\n'));
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  // No command is a request for the list (the README's way to see the commands): exit 0.
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    await usage();
    return EXIT.ok;
  }
  if (!commandNames().includes(name)) {
    console.error(`unknown command '${name}': one of ${commandNames().join(', ')}`);
    return EXIT.usage;
  }
  try {
    applyLocalDefaults();
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const command = (await import(`./commands/${name}.ts`)) as Command;
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: npm run pipeline -- ${command.summary}`);
    return EXIT.ok;
  }
  return command.run(args);
}

// The AWS SDK's notice that its releases after January 2027 need Node 22 would follow every
// command (package.json engines say >=20.15); the test configs turn it off the same way.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      printUsageError(error);
      process.exit(EXIT.usage);
    }
    console.error(error instanceof Error ? `error: ${error.message}` : error);
    process.exit(EXIT.failure);
  },
);
