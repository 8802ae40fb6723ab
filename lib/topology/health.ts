import type { ConsumerDefinition } from './types';

/** Consumers of the health ETL (see lib/topology.ts for what each field drives). */
export const HEALTH_CONSUMERS: readonly ConsumerDefinition[] = [
  {
    id: 'HealthEtl',
    entry: 'lambdas/health-etl/handler.ts',
    description: 'Health Connect exports: decode, validate, quarantine, process, training JSONL',
    // Ten files per batch; a poison file costs one record. The handler starts a file after the
    // first only if its worst case fits the time left (lambdas/health/budget.ts).
    batchSize: 10,
    maxBatchingWindowSeconds: 1,
    // Five receives ride out a dependency restart; then the DLQ (and its alarm) keeps the message.
    maxReceiveCount: 5,
    // The largest export the decode limits accept (160 MiB, 1,000,000 records) takes at most ~340 s
    // at the worst-case speeds of budget.ts: it fits one invocation (test/unit/health/budget.test.ts).
    timeoutSeconds: 450,
    memoryMb: 1024,
    maxConcurrency: 10,
    maxMessageAgeSeconds: 900,
    s3Prefix: 'raw/',
    // An export deferred for lack of time goes back to this queue as a new message: deferring never
    // uses up one of the five receives, which are kept for real attempts (lambdas/health/budget.ts).
    sendsTo: ['HealthEtl'],
  },
];
