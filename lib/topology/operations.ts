import type { OperationDefinition } from './types';

/** Health report of every dependency, invoked on demand (console, CLI, a canary). */
export const STATUS: OperationDefinition = {
  id: 'Status',
  entry: 'lambdas/status/handler.ts',
  description: 'Pipeline health: PostgreSQL via the proxy, Redis, S3, SQS and the ElastiCache group',
  timeoutSeconds: 30,
  memoryMb: 256,
  reservedConcurrency: 2,
};

/** Applies schemas/sql during every deploy (lib/constructs/migration-trigger.ts). */
export const MIGRATE: OperationDefinition = {
  id: 'Migrate',
  entry: 'lambdas/migrate/handler.ts',
  description: 'Applies schemas/sql migrations (deploy-time trigger)',
  timeoutSeconds: 300,
  memoryMb: 256,
  // Two migrations at once would race on the schema; the trigger invokes it once per deploy.
  reservedConcurrency: 1,
  assetDirs: [{ from: 'schemas/sql', to: 'sql' }],
};

export const OPERATIONS: readonly OperationDefinition[] = [STATUS, MIGRATE];

/** How often the status check runs on its schedule (EventBridge rule in the compute stack). */
export const STATUS_EVERY_MINUTES = 5;
