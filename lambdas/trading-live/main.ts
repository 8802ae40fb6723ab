/**
 * Entry of the live engine container (lambdas/trading-live/service.ts): configuration from the
 * environment, one JSON line per event on stdout (`{"event":"ready","status":"accepting orders"}`
 * once rebuilt, connected and reconciled), SIGTERM/SIGINT for a graceful stop. Exits 1 on a
 * configuration error or a start-up failure (the orchestrator restarts it); a halt (broken event
 * chain that cannot be recovered) keeps the process up and /health at 503, so it is not restarted
 * into a loop and the alarm stays visible.
 */
import { ConfigError, configFromEnv, LiveService } from './service';

let service: LiveService;
try {
  service = new LiveService(configFromEnv());
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`trading-live: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

const shutdown = () => {
  service.stop().then(
    () => process.exit(0),
    (error: Error) => {
      console.error(`trading-live: stop failed: ${error.message}`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

try {
  await service.start();
} catch (error) {
  console.error(`trading-live: start-up failed: ${(error as Error).message}`);
  await service.stop().catch(() => undefined);
  process.exit(1);
}
