/**
 * Scheduled reconciliation (TradingReconcile in lib/topology/trading.ts, EventBridge Scheduler):
 * each account of TRADING_ACCOUNTS against the broker over REST, as the trading login, through the
 * same runner as `trading reconcile` (lambdas/trading/reconcile-runner.ts). Differences become
 * events with deterministic ids, so this run and the engine service's own never record one twice.
 * An account not opened yet is skipped. Fails (the alarm counts failed runs) when a run cannot read
 * the broker's view or the event store's chain does not verify; disputes are not failures: they
 * are recorded, block their symbol and are counted in `ReconciliationDifferences`.
 */
import { z } from 'zod';
import { databaseEnv, readConfig } from '../platform/config';
import { secretString, sharedPool } from '../platform/connections';
import { logger, metrics } from '../platform/powertools';
import { withTelemetry } from '../platform/telemetry';
import { AccountNotFoundError } from '../trading/engine';
import { PostgresEventStore } from '../trading/pg-store';
import { reconcileOverRest } from '../trading/reconcile-runner';

const config = readConfig({
  ...databaseEnv,
  BROKER_BASE_URL: z.string().url(),
  /** `{"keyId", "secretKey"}` (the data stack's BrokerCredentials). */
  BROKER_CREDENTIALS_SECRET_ARN: z.string().min(1),
  /** Account ids (the CLI's `--account`), comma-separated. */
  TRADING_ACCOUNTS: z.string().default('default'),
});

const Credentials = z.object({ keyId: z.string().min(1), secretKey: z.string().min(1) });

export interface AccountRun {
  readonly account: string;
  readonly status: 'complete' | 'incomplete' | 'not_opened';
  readonly differences: number;
  readonly recorded: number;
  readonly openDisputes: number;
}

async function run(): Promise<{ accounts: AccountRun[] }> {
  const credentials = Credentials.parse(JSON.parse(await secretString(config.BROKER_CREDENTIALS_SECRET_ARN)));
  const store = new PostgresEventStore(await sharedPool(config, 'trading'));
  const accounts: AccountRun[] = [];
  let failed: string | null = null;
  for (const account of config.TRADING_ACCOUNTS.split(',')
    .map((a) => a.trim())
    .filter(Boolean)) {
    const run = await reconcileOverRest(
      store,
      `account-${account}`,
      { baseUrl: config.BROKER_BASE_URL, keyId: credentials.keyId, secret: credentials.secretKey },
      { onAlert: (a) => logger.warn('trading alert', { account, ...a }) },
    ).catch((error: unknown) => {
      // Not opened yet (`trading init`): nothing to reconcile.
      if (error instanceof AccountNotFoundError) return null;
      throw error;
    });
    if (!run) {
      accounts.push({ account, status: 'not_opened', differences: 0, recorded: 0, openDisputes: 0 });
      continue;
    }
    const { outcome, openDisputes } = run;
    const recorded = outcome.status === 'complete' ? outcome.recorded.length : 0;
    metrics.addMetric('ReconciliationDifferences', 'Count', recorded);
    const row: AccountRun = {
      account,
      status: outcome.status,
      differences: outcome.status === 'complete' ? outcome.found.length : 0,
      recorded,
      openDisputes: openDisputes.length,
    };
    accounts.push(row);
    if (outcome.status === 'incomplete') failed ??= `${account}: ${outcome.reason}`;
    logger.info('reconciliation run', { ...row });
  }
  if (failed) throw new Error(`reconciliation incomplete for ${failed}`);
  return { accounts };
}

export const handler = withTelemetry('trading-reconcile', run);
