/**
 * Human-readable output shared by every command: short aligned tables (numbers right-aligned),
 * numbers with units. `--json` prints the command's result object instead, on stdout alone.
 */

export type Cell = string | number | null | undefined;

export interface TableOptions {
  /** Indent of every line. */
  readonly indent?: number;
  /** Columns to right-align even though they hold text (e.g. "12 ms"). */
  readonly right?: readonly number[];
}

/** An aligned table with a header row; numeric cells are right-aligned. */
export function table(
  header: readonly string[],
  rows: readonly (readonly Cell[])[],
  options: TableOptions = {},
): string {
  const text = (c: Cell) =>
    c === null || c === undefined ? '' : typeof c === 'number' ? formatNumber(c) : c;
  const cells = rows.map((r) => header.map((_, i) => text(r[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const rightAligned = header.map(
    (_, i) =>
      options.right?.includes(i) ||
      (rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined)),
  );
  const pad = ' '.repeat(options.indent ?? 0);
  const line = (r: readonly string[]) =>
    pad +
    r
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...cells.map(line)].join('\n');
}

/** Label/value lines, values aligned. */
export function keyValues(pairs: readonly (readonly [string, Cell])[], indent = 0): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs
    .map(
      ([k, v]) =>
        `${' '.repeat(indent)}${k.padEnd(width)}  ${v === null || v === undefined ? '' : typeof v === 'number' ? formatNumber(v) : v}`,
    )
    .join('\n');
}

/** Thousands separated, at most `digits` decimals. */
export function formatNumber(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { maximumFractionDigits: Number.isInteger(n) ? 0 : digits });
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  return ms >= 10_000 ? `${(ms / 1_000).toFixed(1)} s` : `${formatNumber(Math.round(ms))} ms`;
}

export function formatSeconds(s: number): string {
  return s >= 120 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

/** A ratio 0..1 as a percentage. */
export function formatPercent(ratio: number, digits = 1): string {
  return `${(ratio * 100).toFixed(digits)} %`;
}

export function formatRate(perSecond: number, unit: string): string {
  return `${formatNumber(perSecond, 1)} ${unit}/s`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u += 1;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** A heading line of a human-readable section. */
export function heading(text: string): string {
  return `\n== ${text}`;
}

/** Prints the result as JSON (--json) or through the human-readable printer. */
export function emit<T>(json: boolean, result: T, human: (result: T) => void): void {
  if (json) console.log(JSON.stringify(result, null, 2));
  else human(result);
}
