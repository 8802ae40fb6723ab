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
  const timed = async (name: string, text: string, values: unknown[]) => {
    const t = performance.now();
    // Named: prepared once per connection, as an app's driver does.
    await client.query({ name, text, values });
    const ms = performance.now() - t;
    const o = out();
    const list = o[name] ?? [];
    list.push(ms);
    o[name] = list;
  };
  for (let i = offset; !stop(); i++) {
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

process.once('message', async (start: Start) => {
  const pool = createPool({
    connectionString: componentDatabaseUrl(start.url, 'app'),
    schema: start.schema,
    max: start.readers,
  });
  const clients = await Promise.all(Array.from({ length: start.readers }, () => pool.connect()));
  let samples: Samples = {};
  let stopped = false;
  process.on('message', (m: { phase?: string; stop?: boolean }) => {
    if (m.phase !== undefined) {
      // A new phase: hand over what was measured so far (the parent labels it) and start afresh.
      const done = samples;
      samples = {};
      process.send?.({ phase: m.phase, samples: done });
    }
    if (m.stop) stopped = true;
  });
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
});
