/**
 * Rolling return correlation, pure: daily log returns over a window of sessions and the Pearson
 * correlation of two return series over the sessions where both have a return.
 */
import type { IsoDate } from '../calendar';

/**
 * Log returns aligned to sessions[1..]: entry i-1 is ln(close[i] / close[i-1]), or null when either
 * close is missing (a halt, a gap, a fund listed inside the window). A missing bar never bridges two
 * sessions into one return, so every return is exactly one session long.
 */
export function logReturns(
  closes: ReadonlyMap<IsoDate, number>,
  sessions: readonly IsoDate[],
): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 1; i < sessions.length; i++) {
    const a = closes.get(sessions[i - 1] as IsoDate);
    const b = closes.get(sessions[i] as IsoDate);
    out.push(a !== undefined && b !== undefined && a > 0 && b > 0 ? Math.log(b / a) : null);
  }
  return out;
}

export interface Correlation {
  /** Pearson r rounded to 4 decimals (stored and compared as such: re-runs are bit-identical). */
  readonly r: number;
  /** Sessions where both series had a return. */
  readonly n: number;
}

/** Pearson correlation over the common sessions; null below minObservations or with a flat series. */
export function correlate(
  a: readonly (number | null)[],
  b: readonly (number | null)[],
  minObservations: number,
): Correlation | null {
  let n = 0;
  let sa = 0;
  let sb = 0;
  const len = Math.min(a.length, b.length);
  for (let i = 0; i < len; i++) {
    const x = a[i];
    const y = b[i];
    if (x === null || x === undefined || y === null || y === undefined) continue;
    n++;
    sa += x;
    sb += y;
  }
  if (n < Math.max(2, minObservations)) return null;
  const ma = sa / n;
  const mb = sb / n;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < len; i++) {
    const x = a[i];
    const y = b[i];
    if (x === null || x === undefined || y === null || y === undefined) continue;
    cov += (x - ma) * (y - mb);
    va += (x - ma) ** 2;
    vb += (y - mb) ** 2;
  }
  if (va <= 0 || vb <= 0) return null;
  const r = Math.max(-1, Math.min(1, cov / Math.sqrt(va * vb)));
  return { r: Math.round(r * 1e4) / 1e4 + 0, n };
}
