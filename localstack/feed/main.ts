/**
 * The local provider WebSocket feed as a process (`router up` starts it):
 * REALTIME_FEED_PORT (4581), REALTIME_FEED_PROFILE (steady|surge|surge10x, default steady),
 * REALTIME_FEED_SPEED (market ms per real ms, default 1), REALTIME_FEED_SYMBOLS (caps the OHLCV
 * symbols, default the profile's).
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
const feed = await startFeed({
  port: Number(process.env.REALTIME_FEED_PORT ?? 4581),
  profile,
  speed: Number(process.env.REALTIME_FEED_SPEED ?? 1),
  startAt: now - (now % 60_000),
});
console.log(`provider feed on ${feed.wsUrl} (REST ${feed.restUrl}), profile ${name}, ${symbols} symbols`);
const stop = async (): Promise<void> => {
  await feed.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
