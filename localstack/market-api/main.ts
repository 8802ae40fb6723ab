/**
 * Runs the local market-data API as a process (started in the background by `stage up`).
 * Env: MARKET_API_PORT (4580), MARKET_API_HOST (127.0.0.1), MARKET_API_SEED (1), MARKET_API_SIZE
 * (8000), MARKET_API_SCENARIO (ipo), MARKET_API_START / MARKET_API_END (the scenario's window).
 */
import { intFromEnv } from '../env';
import { startMarketApi } from './server';

const api = await startMarketApi({
  port: intFromEnv('MARKET_API_PORT', 4580),
  host: process.env.MARKET_API_HOST || '127.0.0.1',
  seed: process.env.MARKET_API_SEED
    ? Number.isFinite(Number(process.env.MARKET_API_SEED))
      ? Number(process.env.MARKET_API_SEED)
      : process.env.MARKET_API_SEED
    : 1,
  size: intFromEnv('MARKET_API_SIZE', 8000),
  scenario: process.env.MARKET_API_SCENARIO || 'ipo',
  ...(process.env.MARKET_API_START ? { start: process.env.MARKET_API_START } : {}),
  ...(process.env.MARKET_API_END ? { end: process.env.MARKET_API_END } : {}),
});
console.log(
  JSON.stringify({
    service: 'market-api',
    url: api.url,
    scenario: api.market.definition.name,
    start: api.market.start,
    end: api.market.end,
  }),
);

const shutdown = () => {
  api.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
