/**
 * The local provider WebSocket feed as a process (`router up` starts it):
 * REALTIME_FEED_PORT (4581), REALTIME_FEED_PROFILE (steady|surge|surge10x, default steady),
 * REALTIME_FEED_SPEED (market ms per real ms, default 1), REALTIME_FEED_SYMBOLS (caps the OHLCV
 * symbols, default the profile's), REALTIME_FEED_MINUTES (market minutes to serve, then silent; default
 * unbounded), REALTIME_FEED_START (`minute`: from the current minute's start, the default, so the
 * first pump catches up to now; `now`: the market starts now, paced from the first frame),
 * REALTIME_FEED_DUPLICATE_EVERY (every Nth frame sent twice). `GET /stats` answers its counters.
 */

import { PROFILES } from './scenario';
import { startFeed } from './server';

const name = (process.env.REALTIME_FEED_PROFILE ?? 'steady') as keyof typeof PROFILES;
const base = PROFILES[name];
if (!base) throw new Error(`REALTIME_FEED_PROFILE must be one of ${Object.keys(PROFILES).join(', ')}`);
const symbols = Number(process.env.REALTIME_FEED_SYMBOLS ?? base.ohlcvSymbols);
const profile = {
  ...base,
  ohlcvSymbols: symbols,
  tickSymbols: Math.min(base.tickSymbols, symbols),
  fmvSymbols: Math.min(base.fmvSymbols, symbols),
};
const now = Date.now();
const minutes = Number(process.env.REALTIME_FEED_MINUTES ?? 0);
const duplicateEvery = Number(process.env.REALTIME_FEED_DUPLICATE_EVERY ?? 0);
const feed = await startFeed({
  port: Number(process.env.REALTIME_FEED_PORT ?? 4581),
  profile,
  speed: Number(process.env.REALTIME_FEED_SPEED ?? 1),
  startAt: now - (now % 60_000),
  startOnRequest: process.env.REALTIME_FEED_START === 'request',
  stampSentAt: process.env.REALTIME_FEED_STAMP === '1',
  ...(minutes > 0 ? { minutes } : {}),
  ...(duplicateEvery > 0 ? { faults: { duplicateEvery } } : {}),
});
console.log(`provider feed on ${feed.wsUrl} (REST ${feed.restUrl}), profile ${name}, ${symbols} symbols`);
const stop = async (): Promise<void> => {
  await feed.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
