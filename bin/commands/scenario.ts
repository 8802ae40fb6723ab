import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { createScenarioMarket, listScenarios, type ScenarioMarket } from '../../localstack/scenarios/index';
import { loadScenario, prepareScenarioSchema } from '../../localstack/scenarios/load';
import { validateScenario } from '../../localstack/scenarios/validate';

export const summary =
  'scenario list | generate|load|validate [NAME] [--seed N --size N --start D|--end D] [--out DIR --format ndjson|csv] [--schema S]: synthetic markets';

const USAGE = `usage: npm run pipeline -- scenario <list|generate|load|validate> [NAME] [options]
  list                        the named scenarios
  generate NAME --out DIR     symbols.json, bars.ndjson (or bars.csv with --format csv), expected-outcomes.json
  load NAME                   into its own PostgreSQL schema (--schema, else PG_SCHEMA, else "scenario"),
                              migrations applied there first; never the public schema
  validate NAME               bars valid, NYSE sessions only, injected events visible (exit 1 if not)
options: --scenario NAME (or positional)  --seed N (42)  --size N (8000)  --start YYYY-MM-DD | --end YYYY-MM-DD`;

function marketFrom(
  values: Record<string, string | boolean | undefined>,
  name: string | undefined,
): ScenarioMarket {
  if (!name) throw new Error(`a scenario name is required\n${USAGE}`);
  const size = Number(values.size);
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`--size must be a positive integer, got ${values.size}`);
  const seed = /^\d+$/.test(String(values.seed)) ? Number(values.seed) : String(values.seed);
  return createScenarioMarket({
    scenario: name,
    seed,
    size,
    ...(typeof values.start === 'string' ? { start: values.start } : {}),
    ...(typeof values.end === 'string' ? { end: values.end } : {}),
  });
}

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const chunk of lines) if (!out.write(chunk)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

async function generate(market: ScenarioMarket, outDir: string, format: string): Promise<number> {
  if (format !== 'ndjson' && format !== 'csv')
    throw new Error(`--format must be ndjson or csv, got ${format}`);
  await mkdir(outDir, { recursive: true });
  const started = performance.now();
  await writeFile(join(outDir, 'symbols.json'), `${JSON.stringify(market.universe, null, 1)}\n`);
  let bars = 0;
  // One symbol's bars at a time: the full market never sits in memory.
  function* lines(): Generator<string> {
    if (format === 'csv') yield 'symbol,date,open,high,low,close,volume,vwap,transactions\n';
    for (const s of market.series()) {
      bars += s.bars.length;
      let chunk = '';
      for (const b of s.bars) {
        chunk +=
          format === 'csv'
            ? `${b.symbol},${b.date},${b.open},${b.high},${b.low},${b.close},${b.volume},${b.vwap},${b.transactions}\n`
            : `${JSON.stringify(b)}\n`;
      }
      yield chunk;
    }
  }
  const barsFile = join(outDir, `bars.${format}`);
  await writeLines(barsFile, lines());
  const outcomes = market.expectedOutcomes();
  await writeFile(join(outDir, 'expected-outcomes.json'), `${JSON.stringify(outcomes, null, 1)}\n`);
  console.log(
    JSON.stringify({
      scenario: market.definition.name,
      out: outDir,
      symbols: market.universe.length,
      bars,
      events: outcomes.events.length,
      cleanSymbols: outcomes.cleanSymbols.length,
      from: market.start,
      to: market.end,
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    }),
  );
  return 0;
}

async function load(market: ScenarioMarket, schema: string): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);
  const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR);
  try {
    const result = await loadScenario(pool, market);
    console.log(
      JSON.stringify({
        scenario: market.definition.name,
        ...result,
        seconds: Number(result.seconds.toFixed(2)),
        rowsPerSecond: Math.round(result.bars / result.seconds),
        from: market.start,
        to: market.end,
      }),
    );
    return 0;
  } finally {
    await pool.end();
  }
}

function validate(market: ScenarioMarket): number {
  const report = validateScenario(market);
  console.log(`scenario ${report.scenario}: ${report.symbols} symbols, ${report.bars} bars`);
  for (const check of report.checks)
    console.log(`  ${check.passed ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail}`);
  for (const failure of report.failures) console.log(`    - ${failure}`);
  console.log(report.ok ? 'all injected behaviour is visible' : 'validation FAILED');
  return report.ok ? 0 : 1;
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      scenario: { type: 'string' },
      seed: { type: 'string', default: '42' },
      size: { type: 'string', default: '8000' },
      start: { type: 'string' },
      end: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string', default: 'ndjson' },
      schema: { type: 'string', default: process.env.PG_SCHEMA ?? 'scenario' },
    },
  });
  const [action, positionalName] = positionals;
  const name = values.scenario ?? positionalName;
  switch (action) {
    case 'list':
      for (const s of listScenarios()) {
        console.log(
          `${s.name.padEnd(20)} ${String(s.sessions).padStart(4)} sessions from ${s.defaultStart}  ${s.description}`,
        );
      }
      return 0;
    case 'generate':
      if (!values.out) throw new Error(`generate needs --out DIR\n${USAGE}`);
      return generate(marketFrom(values, name), values.out, values.format);
    case 'load':
      return load(marketFrom(values, name), values.schema);
    case 'validate':
      return validate(marketFrom(values, name));
    default:
      console.error(USAGE);
      return 2;
  }
}
