import { parseArgs } from 'node:util';
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
import { MIGRATIONS_DIR } from '../../lib/paths';
import { ensureDatabase } from '../../localstack/local-database';
import { createScenarioMarket, type ScenarioMarket } from '../../localstack/scenarios/index';
import { BarSink, loadSymbolsHistory, prepareScenarioSchema } from '../../localstack/scenarios/load';

export const summary =
  'load-history --symbols A,B | --universe [CATEGORY:]NAME --years N [--scenario NAME --seed N --size N] [--end D] [--schema S]: daily bar history';

const USAGE = `usage: npm run pipeline -- ${summary}
  With --scenario: synthetic history from that scenario into its own schema (--schema, else PG_SCHEMA,
  else "scenario"; never public). --universe all takes every symbol of the scenario.
  Without --scenario: real history from the market-data provider (MARKET_API_BASE_URL, key per the
  provider's configuration) into --schema / PG_SCHEMA / public.`;

export class LoadHistoryUsageError extends Error {
  constructor(message: string) {
    super(`${message}\n${USAGE}`);
    this.name = 'LoadHistoryUsageError';
  }
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
  const { values } = parseArgs({
    args,
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
    throw new LoadHistoryUsageError('give exactly one of --symbols or --universe');
  const years = Number(values.years);
  if (!Number.isInteger(years) || years < 1 || years > 30)
    throw new LoadHistoryUsageError('--years must be an integer 1-30');
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  await ensureDatabase(url);

  if (values.scenario) {
    const size = Number(values.size);
    const seed = /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
    const market = createScenarioMarket({ scenario: values.scenario, seed, size });
    const schema = values.schema ?? process.env.PG_SCHEMA ?? 'scenario';
    const pool = await prepareScenarioSchema(url, schema, MIGRATIONS_DIR);
    try {
      const symbols = values.symbols
        ? values.symbols
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : await universeSymbols(pool, values.universe as string, market);
      // The scenario's window is fixed by its regimes; the requested years are clipped to it.
      const to = values.end && values.end < market.end ? values.end : market.end;
      const requestedFrom = yearsBefore(to, years);
      const from = requestedFrom > market.start ? tradingDayOnOrAfter(requestedFrom) : market.start;
      const result = await loadSymbolsHistory(pool, market, symbols, { from, to });
      console.log(
        JSON.stringify({
          source: `scenario:${market.definition.name}`,
          schema: result.schema,
          symbols: result.symbols,
          bars: result.bars,
          from,
          to,
          clippedToScenario: requestedFrom < market.start,
          unknown: result.unknown,
          seconds: Number(result.seconds.toFixed(2)),
        }),
      );
      return result.unknown.length > 0 ? 1 : 0;
    } finally {
      await pool.end();
    }
  }

  // Real history from the provider (the HTTP adapter in lambdas/market/provider).
  const schema = values.schema ?? process.env.PG_SCHEMA ?? 'public';
  const pool = createPool({ connectionString: url, schema });
  try {
    // Same as `db migrate`: the target schema exists and is current before anything is written
    // (otherwise search_path would silently fall through to public).
    await migrate(pool, await loadMigrations(MIGRATIONS_DIR), schema);
    const provider = providerFromEnv();
    const symbols = values.symbols
      ? values.symbols
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : await universeSymbols(pool, values.universe as string, null);
    // Today's session may still be open; history ends at the last completed one.
    const to = values.end ?? previousTradingDay(todayInNewYork());
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
    console.log(
      JSON.stringify({
        source: 'provider',
        schema,
        symbols: loaded.length,
        bars,
        from,
        to,
        unknown,
        seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      }),
    );
    return unknown.length > 0 ? 1 : 0;
  } finally {
    await pool.end();
  }
}
