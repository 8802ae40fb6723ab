/**
 * `npm run bench`: runs every benchmark module in test/bench (each exports `bench()`, which prints its
 * figures). `npm run bench -- health` runs only the modules whose name contains "health".
 * Benchmarks print; they never assert timings.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { applyLocalDefaults } from '../../localstack/env';

applyLocalDefaults();
const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2];
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => !filter || f.includes(filter))
  .sort();

let failed = 0;
for (const file of modules) {
  console.log(`\n=== ${file.replace(/\.ts$/, '')}`);
  try {
    const module = (await import(`./${file}`)) as { bench?: () => Promise<void> };
    if (typeof module.bench !== 'function') throw new Error('exports no bench()');
    await module.bench();
  } catch (error) {
    failed += 1;
    console.error(`benchmark ${file} failed: ${(error as Error).stack ?? error}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
