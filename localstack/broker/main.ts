/**
 * Runs the broker simulator as a process (started in the background by `stage up`).
 * Env: BROKER_SIM_PORT (4592), BROKER_SIM_HOST (127.0.0.1), BROKER_SIM_KEY_ID / BROKER_SIM_SECRET (the
 * default account's key, `local-broker-key` / `local-broker-secret`), BROKER_SIM_CASH (100000),
 * BROKER_SIM_HEARTBEAT_MS (1000). Further accounts: POST /_control/accounts.
 */
import { intFromEnv } from '../env';
import { startBrokerSim } from './server';

const sim = await startBrokerSim({
  port: intFromEnv('BROKER_SIM_PORT', 4592),
  host: process.env.BROKER_SIM_HOST || '127.0.0.1',
  heartbeatMs: intFromEnv('BROKER_SIM_HEARTBEAT_MS', 1_000),
  accounts: [
    {
      keyId: process.env.BROKER_SIM_KEY_ID || 'local-broker-key',
      secret: process.env.BROKER_SIM_SECRET || 'local-broker-secret',
      cash: intFromEnv('BROKER_SIM_CASH', 100_000),
    },
  ],
});
console.log(JSON.stringify({ service: 'broker-sim', url: sim.url, stream: sim.wsUrl, port: sim.port }));

const shutdown = () => {
  sim.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
