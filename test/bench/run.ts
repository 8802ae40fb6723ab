/**
 * `npm run bench`: runs every benchmark module in test/bench (each exports `bench()`, which prints its
 * figures). `npm run bench -- health` runs only the modules whose name contains "health";
 * `--report FILE.html` also writes the figures and charts as an HTML report.
 * Benchmarks print; they never assert timings.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BenchRun, benchReport } from '../../bin/reports/bench';
import { startProgress } from '../../lib/cli/progress';
import type { ReportSection } from '../../lib/cli/report';
import { writeReport } from '../../lib/cli/report';
import { applyLocalDefaults } from '../../localstack/env';

applyLocalDefaults();
const dir = fileURLToPath(new URL('.', import.meta.url));
const USAGE = 'usage: npm run bench -- [NAME] [--report FILE.html]';
let parsed: ReturnType<typeof parseArgs<{ options: { report: { type: 'string' } }; allowPositionals: true }>>;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    options: { report: { type: 'string' } },
    allowPositionals: true,
  });
} catch (error) {
  console.error(`usage error: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
const filter = parsed.positionals[0];
const reportFile = parsed.values.report;
if (reportFile !== undefined && !reportFile.endsWith('.html')) {
  console.error(`usage error: --report ${reportFile}: expected an .html file name\n${USAGE}`);
  process.exit(2);
}
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
if (modules.length === 0) {
  const all = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'));
  console.error(
    `usage error: no benchmark matches '${filter}': one of ${all.map((f) => f.slice(0, -3)).join(', ')}`,
  );
  process.exit(2);
}

const runs: BenchRun[] = [];
for (const [i, file] of modules.entries()) {
  const name = file.replace(/\.ts$/, '');
  // The module's figures are held while its progress line runs, then printed: a spinner and
  // lines printed under it would garble each other on a terminal.
  const lines: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => {
    lines.push(parts.map(String).join(' '));
  };
  const progress = startProgress(`bench ${i + 1}/${modules.length} ${name}`);
  const started = performance.now();
  let ok = true;
  let sections: ReportSection[] | undefined;
  try {
    const module = (await import(`./${file}`)) as { bench?: () => Promise<undefined | ReportSection[]> };
    if (typeof module.bench !== 'function') throw new Error('exports no bench()');
    sections = (await module.bench()) ?? undefined;
    progress.succeed();
  } catch (error) {
    ok = false;
    progress.fail();
    lines.push(`benchmark ${file} failed: ${(error as Error).stack ?? error}`);
  } finally {
    console.log = log;
  }
  console.log(`\n=== ${name}`);
  for (const line of lines) console.log(line);
  runs.push({
    name,
    seconds: (performance.now() - started) / 1_000,
    ok,
    lines,
    ...(sections ? { sections } : {}),
  });
}
if (reportFile) {
  await writeReport(reportFile, benchReport(runs));
  console.log(`\nreport: ${reportFile}`);
}
process.exit(runs.some((r) => !r.ok) ? 1 : 0);
