/**
 * Universe assignment of new listings through the universe SQL functions (update_universe keeps the
 * change log). Runs inside the scan's transaction, so the symbols, their universes and the
 * announcements commit together.
 */
import type pg from 'pg';
import type { IsoDate } from '../calendar';
import { getUniverseSymbols, type UniverseCategory, updateUniverse } from '../sql/universes';
import type { SymbolRecord } from '../types';
import { type UniverseRef, universesFor } from './classify';

/**
 * Adds each record to the universes `universesFor` names. update_universe replaces a membership, so
 * each universe row is locked first and its members read under that lock: a universe sync running
 * at the same time cannot be overwritten by a membership read before it committed.
 * Returns symbol -> ["category/name", ...] of the universes it actually joined.
 */
export async function assignUniverses(
  client: pg.PoolClient,
  records: readonly SymbolRecord[],
  date: IsoDate,
): Promise<Map<string, string[]>> {
  const wanted = new Map<string, { ref: UniverseRef; symbols: string[] }>();
  for (const r of records) {
    for (const ref of universesFor(r)) {
      const key = `${ref.category}/${ref.name}`;
      const entry = wanted.get(key) ?? { ref, symbols: [] };
      entry.symbols.push(r.symbol);
      wanted.set(key, entry);
    }
  }
  const joined = new Map<string, string[]>();
  // Sorted keys: two scans lock universes in the same order, so they cannot deadlock.
  for (const key of [...wanted.keys()].sort()) {
    const { ref, symbols } = wanted.get(key) as { ref: UniverseRef; symbols: string[] };
    await client.query('SELECT 1 FROM universes WHERE category = $1 AND name = $2 FOR UPDATE', [
      ref.category,
      ref.name,
    ]);
    const current = await getUniverseSymbols(client, ref.category as UniverseCategory, ref.name);
    const members = new Set(current);
    const next = [...current, ...symbols.filter((s) => !members.has(s)).sort()];
    if (next.length === current.length) continue;
    const change = await updateUniverse(client, {
      category: ref.category,
      name: ref.name,
      symbols: next,
      changeType: 'ipo_assignment',
      reason: `new listing detected by the IPO scan of ${date}`,
    });
    for (const s of change.added) joined.set(s, [...(joined.get(s) ?? []), key]);
  }
  return joined;
}
