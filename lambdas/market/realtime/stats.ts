import { CHANNELS, type RouterChannel } from './types';

/** Per-channel accounting: received = delivered + duplicates + sum(rejected) + conflated + pending. */
export interface ChannelCounters {
  received: number;
  delivered: number;
  duplicates: number;
  corrections: number;
  conflated: number;
  rejected: Record<string, number>;
}

export type ChannelStats = Record<RouterChannel, ChannelCounters>;

export function emptyChannelStats(): ChannelStats {
  const out = {} as ChannelStats;
  for (const c of CHANNELS) {
    out[c] = { received: 0, delivered: 0, duplicates: 0, corrections: 0, conflated: 0, rejected: {} };
  }
  return out;
}

export function reject(counters: ChannelCounters, reason: string, n = 1): void {
  counters.rejected[reason] = (counters.rejected[reason] ?? 0) + n;
}

export function rejectedTotal(counters: ChannelCounters): number {
  let n = 0;
  for (const v of Object.values(counters.rejected)) n += v;
  return n;
}
