import type { ConsumerDefinition } from './types';

/** Consumers of the real-time router (issue 12; see lib/topology.ts for what each field drives). */
export const REALTIME_CONSUMERS: readonly ConsumerDefinition[] = [
  {
    id: 'RouterBars',
    entry: 'lambdas/router-bars/handler.ts',
    description:
      'Minute bars the real-time router delivered (corrections included) into realtime_minute_bars',
    // 8,000 bars arrive within a few hundred ms each minute: 100 per batch (one upsert statement), the
    // window gathering a burst into full batches.
    batchSize: 100,
    maxBatchingWindowSeconds: 1,
    // Failures are the database (retried) or a message that is not a bar (never succeeds): 3 receives
    // is enough for the first and sends the second to the DLQ quickly.
    maxReceiveCount: 3,
    timeoutSeconds: 30,
    memoryMb: 256,
    maxConcurrency: 4,
    // A minute's bars stored within a few minutes; older means the consumer is failing.
    maxMessageAgeSeconds: 300,
    databaseComponent: 'router',
  },
];
