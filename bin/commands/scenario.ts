import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  EXIT,
  oneOf,
  parseCommandArgs,
  parseDate,
  parseInteger,
  parseSchema,
  UsageError,
} from '../../lib/cli/args';
import { emit, formatNumber, keyValues, table } from '../../lib/cli/output';
import { startProgress } from '../../lib/cli/progress';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { SCENARIO_NAMES } from '../../localstack/scenarios/definitions';
import { createScenarioMarket, listScenarios, type ScenarioMarket } from '../../localstack/scenarios/index';
import { loadScenario, prepareScenarioSchema } from '../../localstack/scenarios/load';
import { validateScenario } from '../../localstack/scenarios/validate';

export const summary =
  'scenario list | generate|load|validate [NAME] [--seed N --size N --start D|--end D] [--out DIR --format ndjson|csv] [--schema S] [--json]: synthetic markets';

const USAGE = `usage: npm run pipeline -- scenario <list|generate|load|validate> [NAME] [options] [--json]
  list                        the named scenarios
  generate NAME --out DIR     symbols.json, bars.ndjson (or bars.csv with --format csv), expected-outcomes.json
  load NAME                   into its own PostgreSQL schema (--schema, else PG_SCHEMA, else "scenario"),
                              migrations applied there first; never the public schema
  validate NAME               bars valid, NYSE sessions only, injected events visible (exit 1 if not)
options: --scenario NAME (or positional)  --seed N (42)  --size N (8000)  --start YYYY-MM-DD | --end YYYY-MM-DD
names: ${SCENARIO_NAMES.join(', ')}`;

const ACTIONS = ['list', 'generate', 'load', 'validate'] as const;
const FORMATS = ['ndjson', 'csv'] as const;

interface MarketArgs {
  readonly seed: string;
  readonly size: string;
  readonly start?: string;
  readonly end?: string;
}

/** The market the arguments describe; every bad one is a UsageError naming it. */
function marketFrom(values: MarketArgs, name: string | undefined): ScenarioMarket {
  const scenario = oneOf('scenario', name, SCENARIO_NAMES);
  const size = parseInteger('--size', values.size, 1, 100_000);
  if (values.start !== undefined && values.end !== undefined) {
    throw new UsageError(
      'give --start or --end, not both (the scenario fixes its number of sessions)',
      USAGE,
    );
  }
  const start = values.start === undefined ? undefined : parseDate('--start', values.start);
  const end = values.end === undefined ? undefined : parseDate('--end', values.end);
  if (values.seed === '') throw new UsageError('--seed needs a value: a number or a word', USAGE);
  const seed = /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
  return createScenarioMarket({
    scenario,
    seed,
    size,
    ...(start ? { start } : {}),
    ...(end ? { end } : {}),
  });
}

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const chunk of lines) if (!out.write(chunk)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

async function generate(
  market: ScenarioMarket,
  outDir: string,
  format: string,
  json: boolean,
): Promise<number> {
  await mkdir(outDir, { recursive: true });
  const started = performance.now();
  const progress = startProgress(`scenario generate ${market.definition.name}`, {
    total: market.universe.length,
  });
  await writeFile(join(outDir, 'symbols.json'), `${JSON.stringify(market.universe, null, 1)}\n`);
  let bars = 0;
  let symbols = 0;
  // One symbol's bars at a time: the full market never sits in memory.
  function* lines(): Generator<string> {
    if (format === 'csv') yield 'symbol,date,open,high,low,close,volume,vwap,transactions\n';
    for (const s of market.series()) {
      bars += s.bars.length;
      symbols += 1;
      if (symbols % 250 === 0) progress.step(symbols, `${formatNumber(bars)} bars`);
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
  const seconds = (performance.now() - started) / 1000;
  progress.succeed(`${formatNumber(bars)} bars written`);
  const result = {
    scenario: market.definition.name,
    out: outDir,
    symbols: market.universe.length,
    bars,
    events: outcomes.events.length,
    cleanSymbols: outcomes.cleanSymbols.length,
    from: market.start,
    to: market.end,
    seconds: Number(seconds.toFixed(2)),
  };
  emit(json, result, (r) =>
    console.log(
      keyValues([
        ['scenario', `${r.scenario} (${r.from} .. ${r.to})`],
        ['written to', `${r.out} (symbols.json, bars.${format}, expected-outcomes.json)`],
        ['symbols', r.symbols],
        ['bars', r.bars],
        ['injected events', r.events],
        ['clean symbols', r.cleanSymbols],
        ['took', `${r.seconds} s`],
      ]),
    ),
  );
  return EXIT.ok;
}

async function load(market: ScenarioMarket, schema: string, json: boolean): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);
  const progress = startProgress(`scenario load ${market.definition.name} into ${schema}`);
  progress.update('migrations');
  const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR);
  try {
    progress.update(`${market.universe.length} symbols x ${market.days.length} sessions (one COPY)`);
    const result = await loadScenario(pool, market).catch((error: unknown) => {
      progress.fail();
      throw error;
    });
    progress.succeed(`${formatNumber(result.bars)} bars`);
    const out = {
      scenario: market.definition.name,
      ...result,
      seconds: Number(result.seconds.toFixed(2)),
      rowsPerSecond: Math.round(result.bars / result.seconds),
      from: market.start,
      to: market.end,
    };
    emit(json, out, (r) =>
      console.log(
        keyValues([
          ['scenario', `${r.scenario} (${r.from} .. ${r.to})`],
          ['schema', r.schema],
          ['symbols', r.symbols],
          ['bars', r.bars],
          ['took', `${r.seconds} s (${formatNumber(r.rowsPerSecond)} bars/s)`],
        ]),
      ),
    );
    return EXIT.ok;
  } finally {
    await pool.end();
  }
}

function validate(market: ScenarioMarket, json: boolean): number {
  const report = validateScenario(market);
  emit(json, report, (r) => {
    console.log(`scenario ${r.scenario}: ${formatNumber(r.symbols)} symbols, ${formatNumber(r.bars)} bars`);
    console.log(
      table(
        ['check', 'result', 'detail'],
        r.checks.map((c) => [c.name, c.passed ? 'ok' : 'FAIL', c.detail]),
        { indent: 2 },
      ),
    );
    for (const failure of r.failures) console.log(`    - ${failure}`);
    console.log(r.ok ? 'all injected behaviour is visible' : 'validation FAILED');
  });
  return report.ok ? EXIT.ok : EXIT.failure;
}

/** `scenario list`: the description without its leading "N sessions:" (the sessions column says it). */
export function scenarioRows() {
  return listScenarios().map((s) => ({
    ...s,
    description: s.description.replace(/^\d+ sessions:\s*/, ''),
  }));
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: {
      scenario: { type: 'string' },
      seed: { type: 'string', default: '42' },
      size: { type: 'string', default: '8000' },
      start: { type: 'string' },
      end: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string', default: 'ndjson' },
      schema: { type: 'string' },
    },
    usage: USAGE,
  });
  const [actionArg, positionalName, extra] = positionals;
  const action = oneOf('scenario action', actionArg, ACTIONS);
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, USAGE);
  if (values.scenario !== undefined && positionalName !== undefined && values.scenario !== positionalName) {
    throw new UsageError(`two scenario names: '${positionalName}' and --scenario ${values.scenario}`, USAGE);
  }
  const name = values.scenario ?? positionalName;
  const format = oneOf('--format', values.format, FORMATS);
  switch (action) {
    case 'list':
      if (name !== undefined) throw new UsageError(`list takes no scenario name (got '${name}')`, USAGE);
      emit(values.json, scenarioRows(), (rows) =>
        console.log(
          table(
            ['scenario', 'sessions', 'from', 'what it contains'],
            rows.map((s) => [s.name, s.sessions, s.defaultStart, s.description]),
          ),
        ),
      );
      return EXIT.ok;
    case 'generate':
      if (!values.out) throw new UsageError('generate needs --out DIR (where the files are written)', USAGE);
      return generate(marketFrom(values, name), values.out, format, values.json);
    case 'load': {
      const schema = parseSchema('--schema', values.schema ?? process.env.PG_SCHEMA ?? 'scenario');
      if (schema === 'public') {
        throw new UsageError(
          '--schema public: scenario data never goes to the public schema; e.g. --schema scenario',
          USAGE,
        );
      }
      return load(marketFrom(values, name), schema, values.json);
    }
    case 'validate':
      return validate(marketFrom(values, name), values.json);
  }
}
