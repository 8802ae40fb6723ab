import type pg from 'pg';
import {
  type IsoDate,
  previousTradingDay,
  todayInNewYork,
  tradingDayOnOrAfter,
} from '../../lambdas/market/calendar';
import { ProviderNotFoundError, providerFromEnv } from '../../lambdas/market/provider/index';
import { getUniverseSymbols, type UniverseCategory } from '../../lambdas/market/sql/universes';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { createPool } from '../../lambdas/platform/postgres';
import {
  EXIT,
  oneOf,
  parseCommandArgs,
  parseDate,
  parseInteger,
  parseSchema,
  UsageError,
} from '../../lib/cli/args';
import { emit, keyValues } from '../../lib/cli/output';
import { parseSymbolList } from '../../lib/cli/run';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { SCENARIO_NAMES } from '../../localstack/scenarios/definitions';
import { createScenarioMarket, type ScenarioMarket } from '../../localstack/scenarios/index';
import { BarSink, loadSymbolsHistory, prepareScenarioSchema } from '../../localstack/scenarios/load';

export const summary =
  'load-history --symbols A,B | --universe [CATEGORY:]NAME --years N [--scenario NAME --seed N --size N] [--end D] [--schema S] [--json]: daily bar history';

const USAGE = `usage: npm run pipeline -- ${summary}
  With --scenario: synthetic history from that scenario into its own schema (--schema, else PG_SCHEMA,
  else "scenario"; never public). --universe all takes every symbol of the scenario.
  Without --scenario: real history from the market-data provider (MARKET_API_BASE_URL, key per the
  provider's configuration) into --schema / PG_SCHEMA / public.`;

/** A usage error of load-history (exit 2), with the command's usage. */
export class LoadHistoryUsageError extends UsageError {
  constructor(message: string) {
    super(message, USAGE);
  }
}

const CATEGORIES = ['market_cap', 'sector', 'industry', 'theme', 'etf', 'ipo', 'custom'] as const;

export interface LoadHistoryResult {
  readonly source: string;
  readonly schema: string;
  readonly symbols: number;
  readonly bars: number;
  readonly from: string;
  readonly to: string;
  readonly clippedToScenario?: boolean;
  readonly unknown: string[];
  readonly seconds: number;
}

function print(r: LoadHistoryResult): void {
  console.log(
    keyValues([
      ['source', r.source],
      ['schema', r.schema],
      ['window', `${r.from} .. ${r.to}${r.clippedToScenario ? ' (clipped to the scenario)' : ''}`],
      ['symbols loaded', r.symbols],
      ['bars', r.bars],
      [
        'unknown symbols',
        r.unknown.length === 0
          ? 0
          : `${r.unknown.length}: ${r.unknown.slice(0, 20).join(', ')}${r.unknown.length > 20 ? ', ...' : ''} (exit 1)`,
      ],
      ['took', `${r.seconds} s`],
    ]),
  );
}

/** The same calendar date `years` earlier (Feb 29 -> Feb 28). */
function yearsBefore(date: IsoDate, years: number): IsoDate {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const target = new Date(Date.UTC(y - years, m - 1, d));
  if (target.getUTCMonth() !== m - 1) target.setUTCDate(0);
  return target.toISOString().slice(0, 10);
}

async function universeSymbols(
  pool: pg.Pool,
  spec: string,
  market: ScenarioMarket | null,
): Promise<string[]> {
  if (spec === 'all' && market) return market.universe.map((r) => r.symbol);
  const [category, name] = spec.includes(':') ? (spec.split(':', 2) as [string, string]) : [null, spec];
  let categories: string[];
  if (category) categories = [category];
  else {
    const { rows } = await pool.query<{ category: string }>(
      'SELECT category FROM universes WHERE name = $1',
      [name],
    );
    categories = rows.map((r) => r.category);
  }
  if (categories.length > 1) {
    throw new LoadHistoryUsageError(
      `universe "${name}" exists in several categories (${categories.join(', ')}); use CATEGORY:NAME`,
    );
  }
  const symbols = categories[0]
    ? await getUniverseSymbols(pool, categories[0] as UniverseCategory, name)
    : [];
  if (symbols.length === 0) {
    throw new LoadHistoryUsageError(
      `universe "${spec}" is unknown or empty in this schema (has the universe sync run?)`,
    );
  }
  return symbols;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    usage: USAGE,
    options: {
      symbols: { type: 'string' },
      universe: { type: 'string' },
      years: { type: 'string', default: '1' },
      scenario: { type: 'string' },
      seed: { type: 'string', default: '42' },
      size: { type: 'string', default: '8000' },
      end: { type: 'string' },
      schema: { type: 'string' },
    },
  });
  if (!values.symbols === !values.universe)
    throw new LoadHistoryUsageError(
      'give exactly one of --symbols or --universe (--symbols A,B or --universe [CATEGORY:]NAME)',
    );
  const years = parseInteger('--years', values.years, 1, 30);
  const listed =
    values.symbols === undefined ? undefined : parseSymbolList('--symbols', values.symbols, USAGE);
  const end = values.end === undefined ? undefined : parseDate('--end', values.end);
  const schemaFlag = values.schema === undefined ? undefined : parseSchema('--schema', values.schema);
  if (values.scenario !== undefined) oneOf('--scenario', values.scenario, SCENARIO_NAMES);
  const size = parseInteger('--size', values.size, 1, 100_000);
  if (values.universe?.includes(':')) oneOf('--universe category', values.universe.split(':')[0], CATEGORIES);
  if (values.scenario === undefined && (args.includes('--seed') || args.includes('--size'))) {
    throw new LoadHistoryUsageError('--seed and --size apply to --scenario only');
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);

  if (values.scenario) {
    const seed = /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
    const market = createScenarioMarket({ scenario: values.scenario, seed, size });
    const schema = schemaFlag ?? process.env.PG_SCHEMA ?? 'scenario';
    if (schema === 'public') {
      throw new LoadHistoryUsageError(
        'scenario data never goes to the public schema: --schema scenario, for example',
      );
    }
    const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR);
    try {
      const symbols = listed ?? (await universeSymbols(pool, values.universe as string, market));
      // The scenario's window is fixed by its regimes; the requested years are clipped to it.
      const to = end && end < market.end ? end : market.end;
      const requestedFrom = yearsBefore(to, years);
      const from = requestedFrom > market.start ? tradingDayOnOrAfter(requestedFrom) : market.start;
      const result = await loadSymbolsHistory(pool, market, symbols, { from, to });
      emit(
        values.json,
        {
          source: `scenario:${market.definition.name}`,
          schema: result.schema,
          symbols: result.symbols,
          bars: result.bars,
          from,
          to,
          clippedToScenario: requestedFrom < market.start,
          unknown: result.unknown,
          seconds: Number(result.seconds.toFixed(2)),
        },
        print,
      );
      return result.unknown.length > 0 ? EXIT.failure : EXIT.ok;
    } finally {
      await pool.end();
    }
  }

  // Real history from the provider (the HTTP adapter in lambdas/market/provider).
  const schema = schemaFlag ?? process.env.PG_SCHEMA ?? 'public';
  const pool = createPool({ connectionString: url, schema });
  try {
    // Same as `db migrate`: the target schema exists and is current before anything is written
    // (otherwise search_path would silently fall through to public).
    await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
    const provider = providerFromEnv();
    const symbols = listed ?? (await universeSymbols(pool, values.universe as string, null));
    // Today's session may still be open; history ends at the last completed one.
    const to = end ?? previousTradingDay(todayInNewYork());
    const from = tradingDayOnOrAfter(yearsBefore(to, years));
    const started = performance.now();
    const sink = new BarSink(pool, { upsert: true });
    const unknown: string[] = [];
    const loaded: string[] = [];
    for (const symbol of symbols) {
      try {
        const bars = await provider.dailyBars(symbol, from, to);
        if (bars.length === 0) unknown.push(symbol);
        else loaded.push(symbol);
        await sink.add(bars);
      } catch (error) {
        if (!(error instanceof ProviderNotFoundError)) throw error;
        unknown.push(symbol);
      }
    }
    const bars = await sink.close();
    await pool.query(
      'UPDATE symbols SET initial_load_date = $2, updated_at = now() WHERE symbol = ANY($1::text[])',
      [loaded, to],
    );
    emit(
      values.json,
      {
        source: 'provider',
        schema,
        symbols: loaded.length,
        bars,
        from,
        to,
        unknown,
        seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      },
      print,
    );
    return unknown.length > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    await pool.end();
  }
}
