/**
 * Benchmark of the IPO scan's database step (prints figures, asserts nothing): the set-based diff of
 * 12,000 provider tickers against `symbols`, then the one-transaction apply (insert the new symbols
 * with universe assignment and outbox messages, archive the gone ones). Provider calls are not
 * part of it: their cost is the provider's rate limit, not ours. Target: diff + apply < 2 s.
 */
import { performance } from 'node:perf_hooks';
import { applySymbolsDiff, diffSymbols } from '../../lambdas/market/ipo/symbols-diff';
import type { ProviderTicker } from '../../lambdas/market/provider';
import type { SymbolRecord } from '../../lambdas/market/types';
import { generateUniverse } from '../../localstack/scenarios';
import { createTestSchema } from '../support/db';

const PROVIDER_TICKERS = 12_000;
const NEW_LISTINGS = 300;
const DELISTED = 120;
const ROUNDS = 5;

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export async function bench(): Promise<void> {
  const universe = generateUniverse({ seed: 'bench-ipo', size: PROVIDER_TICKERS + DELISTED });
  // Known = everything but the NEW_LISTINGS last; the provider lists everything but DELISTED first.
  const known = universe.slice(0, universe.length - NEW_LISTINGS);
  const listed = universe.slice(DELISTED);
  const tickers: ProviderTicker[] = listed.map((r) => ({
    symbol: r.symbol,
    name: r.name,
    type: r.type,
    primaryExchange: r.primaryExchange,
    active: true,
  }));
  const fresh = new Set(universe.slice(universe.length - NEW_LISTINGS).map((r) => r.symbol));
  const details: SymbolRecord[] = listed.filter((r) => fresh.has(r.symbol));
  const date = '2025-06-16';

  const diffMs: number[] = [];
  const applyMs: number[] = [];
  let last = { added: 0, gone: 0, inserted: 0, archived: 0, messages: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const db = await createTestSchema(`bench_ipo_${round}`);
    try {
      await db.pool.query(
        `INSERT INTO symbols (symbol, name, type, market_cap, sic_code, sector, first_seen)
         SELECT r.symbol, r.name, r.type, r.market_cap, r.sic_code, r.sector, '2025-01-02'
         FROM jsonb_to_recordset($1::jsonb) AS r (symbol text, name text, type text, market_cap numeric,
           sic_code text, sector text)`,
        [
          JSON.stringify(
            known.map((r) => ({
              symbol: r.symbol,
              name: r.name,
              type: r.type,
              market_cap: r.marketCap,
              sic_code: r.sicCode,
              sector: r.sector,
            })),
          ),
        ],
      );
      await db.pool.query('ANALYZE symbols');
      const t0 = performance.now();
      const diff = await diffSymbols(db.pool, tickers, date);
      const t1 = performance.now();
      const applied = await applySymbolsDiff(db.pool, {
        date,
        records: details,
        gone: diff.gone,
        returned: diff.returned,
      });
      const t2 = performance.now();
      diffMs.push(t1 - t0);
      applyMs.push(t2 - t1);
      last = {
        added: diff.added.length,
        gone: diff.gone.length,
        inserted: applied.inserted.length,
        archived: applied.archived.length,
        messages: applied.messages,
      };
    } finally {
      await db.drop();
    }
  }
  const total = diffMs.map((d, i) => d + (applyMs[i] ?? 0));
  console.log(
    `ipo-scan: ${PROVIDER_TICKERS} provider tickers vs ${known.length} symbols; found ${last.added} new, ` +
      `${last.gone} gone; applied ${last.inserted} inserts, ${last.archived} archives, ${last.messages} outbox messages`,
  );
  console.log(
    `ipo-scan: diff   median ${pct(diffMs, 50).toFixed(1)} ms, max ${Math.max(...diffMs).toFixed(1)} ms (${ROUNDS} rounds)`,
  );
  console.log(
    `ipo-scan: apply  median ${pct(applyMs, 50).toFixed(1)} ms, max ${Math.max(...applyMs).toFixed(1)} ms`,
  );
  console.log(
    `ipo-scan: diff + apply median ${pct(total, 50).toFixed(1)} ms, max ${Math.max(...total).toFixed(1)} ms (target < 2000 ms)`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await bench();
}
