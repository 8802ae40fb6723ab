/**
 * The app's reader for the app-reads bench, in a process of its own (as the app is): the sync's
 * JavaScript work in the bench process never stalls these timings. Started with fork(); receives
 * `{ url, schema, readers, symbols, etfs, phases }` and runs the app's reads on `readers` connections
 * of the app's login role until the parent sends `{ stop: phase }`; then sends that phase's samples.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { createPool } from '../../lambdas/platform/postgres';

interface Start {
  readonly url: string;
  readonly schema: string;
  readonly readers: number;
  readonly symbols: string[];
  readonly etfs: string[];
}

type Samples = Record<string, number[]>;

const THEMES = ['broad_market', 'sector', 'technology', 'bonds', 'international', 'growth'];

async function reader(
  client: pg.PoolClient,
  s: Start,
  out: () => Samples,
  stop: () => boolean,
  offset: number,
) {
  const push = (name: string, ms: number) => {
    const o = out();
    const list = o[name] ?? [];
    list.push(ms);
    o[name] = list;
  };
  let server = false;
  const timed = async (name: string, text: string, values: unknown[]) => {
    if (server) {
      // The database's own execution time of the same read (EXPLAIN ANALYZE): what the read costs
      // on the server, apart from the client's and the machine's scheduling.
      const { rows } = await client.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
        values,
      );
      push(`server: ${name}`, rows[0]?.['QUERY PLAN'][0]['Execution Time'] ?? Number.NaN);
      return;
    }
    const t = performance.now();
    // Named: prepared once per connection, as an app's driver does.
    await client.query({ name, text, values });
    push(name, performance.now() - t);
  };
  for (let i = offset; !stop(); i++) {
    // Every fifth round measures the server's execution time instead of the round trip.
    server = i % 5 === 4;
    await timed('get_etf_universe', 'SELECT * FROM get_etf_universe($1, true)', [THEMES[i % THEMES.length]]);
    await timed('get_etf_universes_summary', 'SELECT get_etf_universes_summary()', []);
    await timed('get_universe_symbols', 'SELECT * FROM get_universe_symbols($1, $2)', [
      'market_cap',
      'top_500',
    ]);
    await timed('get_symbol_universes', 'SELECT * FROM get_symbol_universes($1)', [
      s.symbols[i % s.symbols.length],
    ]);
    await timed('cache_entries', 'SELECT key, value, universe_category FROM cache_entries WHERE type = $1', [
      'etf_universe',
    ]);
    await timed(
      'etf_correlations',
      'SELECT peer, relation, correlation FROM etf_correlations WHERE symbol = $1 ORDER BY relation, correlation DESC',
      [s.etfs[i % Math.max(1, s.etfs.length)] ?? 'SPY'],
    );
  }
}

let samples: Samples = {};
let stopped = false;
let started = false;
// One listener from the first moment: a phase message that arrives while the connections are still
// being opened is not lost.
process.on('message', (m: Start | { phase?: string; stop?: boolean }) => {
  if (!started) {
    started = true;
    void run(m as Start);
    return;
  }
  const c = m as { phase?: string; stop?: boolean };
  if (c.phase !== undefined) {
    // A new phase: hand over what was measured so far (the parent labels it) and start afresh.
    const done = samples;
    samples = {};
    process.send?.({ phase: c.phase, samples: done });
  }
  if (c.stop) stopped = true;
});

async function run(start: Start): Promise<void> {
  const pool = createPool({
    connectionString: componentDatabaseUrl(start.url, 'app'),
    schema: start.schema,
    max: start.readers,
  });
  const clients = await Promise.all(Array.from({ length: start.readers }, () => pool.connect()));
  await Promise.all(
    clients.map((c, k) =>
      reader(
        c,
        start,
        () => samples,
        () => stopped,
        k * 7,
      ),
    ),
  );
  for (const c of clients) c.release();
  await pool.end();
  process.send?.({ done: true }, () => process.exit(0));
}
