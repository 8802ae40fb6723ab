/**
 * `npm run test:load [-- --report FILE.html]`: the load tests (vitest, on the `load` stage); with
 * --report, the measured figures and charts are also written as an HTML report.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run test:load -- [--report FILE.html]';
let report: string | undefined;
try {
  report = parseArgs({ args: process.argv.slice(2), options: { report: { type: 'string' } } }).values.report;
} catch (error) {
  console.error(`usage error: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (report !== undefined && !report.endsWith('.html')) {
  console.error(`usage error: --report ${report}: expected an .html file name\n${USAGE}`);
  process.exit(2);
}
const result = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.load.config.ts'], {
  stdio: 'inherit',
  env: { ...process.env, ...(report ? { LOAD_REPORT: resolve(report) } : {}) },
});
if (report && result.status === 0) console.log(`report: ${report}`);
process.exit(result.status ?? 1);
