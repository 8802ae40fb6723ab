/**
 * `npm run test:load -- router`: the replaced system's steady profile (8,000 OHLCV symbols, 500 tick,
 * 1,000 FMV, 10,000 stream events/min plus every minute's bar burst) through the router core for 15
 * market minutes, as fast as it goes. Memory must stay flat once the dedup windows are full, and every
 * event must be accounted for: delivered, or counted as duplicate / rejected / conflated.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ClientSession } from '../../lambdas/market/realtime/client';
import { Router } from '../../lambdas/market/realtime/router';
import { CHANNELS } from '../../lambdas/market/realtime/types';
import { PROFILES, RealtimeMarket } from '../../localstack/feed/scenario';

const MINUTES = 15;

// Live heap only (what the router holds), not garbage awaiting collection.
setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;
const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);

describe('router steady load', () => {
  it('keeps memory flat and loses nothing over 15 minutes of the steady profile', () => {
    const market = new RealtimeMarket(PROFILES.steady);
    // Short windows so they fill within the run: memory must stop growing once they are full.
    const router = new Router({
      epoch: 'load',
      historySize: 2_000,
      dedup: {
        trade: { windowMs: 3 * 60_000, maxPerSymbol: 2_000 },
        quote: { windowMs: 60_000, maxPerSymbol: 1_000 },
        secondBar: { windowMs: 60_000, maxPerSymbol: 60 },
        minuteBar: { windowMs: 3 * 60_000, maxPerSymbol: 4 },
        fmv: { windowMs: 3 * 60_000, maxPerSymbol: 1_000 },
        event: { windowMs: 3 * 60_000, maxPerSymbol: 16 },
      },
    });
    let delivered = 0;
    const client = new ClientSession('load', { send: () => {}, bufferedAmount: () => 0 }, undefined, (m) => {
      if (m.kind !== 'control' || m.data.ev === 'minute_complete') delivered += 1;
    });
    router.hub.attach(client);
    for (const c of CHANNELS) router.hub.subscribe(client, c, '*');
    const heapMb: number[] = [];
    const keys: number[] = [];
    let events = 0;

    for (let m = 0; m < MINUTES; m += 1) {
      const start = T0 + m * 60_000;
      for (const f of market.minute(start)) {
        router.ingest('ws', start + f.at, JSON.parse(JSON.stringify(f.frame)));
        router.drain();
        events += f.frame.length;
      }
      gc();
      heapMb.push(process.memoryUsage().heapUsed / 1_048_576);
      keys.push(router.health().dedupKeys);
    }
    router.closeMinutes();
    router.drain();

    const s = router.stats;
    let accounted = 0;
    for (const c of CHANNELS) {
      const rejected = Object.values(s[c].rejected).reduce((a, b) => a + b, 0);
      expect(s[c].delivered + s[c].duplicates + rejected + s[c].conflated, c).toBe(s[c].received);
      if (c !== 'event') accounted += s[c].received;
    }
    const minuteCompletes = MINUTES;
    expect(accounted - minuteCompletes).toBe(events);
    expect(delivered).toBe(CHANNELS.reduce((a, c) => a + s[c].delivered, 0));
    expect(Object.keys(s.ohlcv.rejected)).toEqual([]);
    // Flat: dedup keys stop growing once the windows are full, and the heap of the last third of the
    // run stays within 25 % of the middle third's peak.
    const third = Math.floor(MINUTES / 3);
    const middle = Math.max(...heapMb.slice(third, 2 * third));
    const last = Math.max(...heapMb.slice(2 * third));
    console.log(
      `router load: ${events} events, heap MB per minute ${heapMb.map((h) => h.toFixed(0)).join(' ')}, dedup keys ${keys.join(' ')}`,
    );
    expect(Math.max(...keys.slice(2 * third))).toBeLessThanOrEqual(
      Math.max(...keys.slice(third, 2 * third)) * 1.1,
    );
    expect(last).toBeLessThanOrEqual(middle * 1.25);
  });
});
