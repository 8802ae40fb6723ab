/**
 * `npm run test:load [-- NAME...] [--report FILE.html]`: the load tests (vitest, on the `load`
 * stage); NAME runs only test/load/NAME-load.test.ts (`router`, `health`, `trading`), no name runs
 * them all. With --report, the measured figures and charts are also written as an HTML report.
 * The trading load test needs only PostgreSQL and a broker simulator process of its own: run alone,
 * it does not bring the load stage up.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run test:load -- [NAME...] [--report FILE.html]';
const dir = fileURLToPath(new URL('.', import.meta.url));
/** Load tests that need no local stage (LocalStack, runner): only PostgreSQL and what they start. */
const STAGELESS = new Set(['trading']);
let report: string | undefined;
let names: string[];
try {
  const parsed = parseArgs({
    args: process.argv.slice(2),
    options: { report: { type: 'string' } },
    allowPositionals: true,
  });
  report = parsed.values.report;
  names = parsed.positionals;
} catch (error) {
  console.error(`usage error: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (report !== undefined && !report.endsWith('.html')) {
  console.error(`usage error: --report ${report}: expected an .html file name\n${USAGE}`);
  process.exit(2);
}
const known = readdirSync(dir)
  .filter((f) => f.endsWith('-load.test.ts'))
  .map((f) => f.replace(/-load\.test\.ts$/, ''));
const unknown = names.filter((n) => !existsSync(resolve(dir, `${n}-load.test.ts`)));
if (unknown.length > 0) {
  console.error(
    `usage error: no load test named ${unknown.join(', ')}: one of ${known.join(', ')}\n${USAGE}`,
  );
  process.exit(2);
}
const files = names.map((n) => `test/load/${n}-load.test.ts`);
const stageless = names.length > 0 && names.every((n) => STAGELESS.has(n));
const result = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.load.config.ts', ...files], {
  stdio: 'inherit',
  env: {
    ...process.env,
    ...(report ? { LOAD_REPORT: resolve(report) } : {}),
    ...(stageless ? { LOAD_WITHOUT_STAGE: 'true' } : {}),
  },
});
if (report && result.status === 0) console.log(`report: ${report}`);
process.exit(result.status ?? 1);
