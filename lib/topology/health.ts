import type { ConsumerDefinition } from './types';

/** Consumers of the health ETL (see lib/topology.ts for what each field drives). */
export const HEALTH_CONSUMERS: readonly ConsumerDefinition[] = [
  {
    id: 'HealthEtl',
    entry: 'lambdas/health-etl/handler.ts',
    description: 'Health Connect exports: decode, validate, quarantine, process, training JSONL',
    // Ten files per batch: a 100 MB export still fits the timeout, and a poison file costs one record.
    batchSize: 10,
    maxBatchingWindowSeconds: 1,
    // Five receives ride out a dependency restart; then the DLQ (and its alarm) keeps the message.
    maxReceiveCount: 5,
    timeoutSeconds: 120,
    memoryMb: 1024,
    maxConcurrency: 10,
    maxMessageAgeSeconds: 900,
    s3Prefix: 'raw/',
  },
];
