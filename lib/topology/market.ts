import type { ConsumerDefinition } from '../topology';

/** Consumers of the market-data jobs (see lib/topology.ts for what each field drives). */
export const MARKET_CONSUMERS: readonly ConsumerDefinition[] = [
  {
    id: 'Backfill',
    entry: 'lambdas/backfill/handler.ts',
    description: 'History of new listings: 90 calendar days of daily bars per symbol into ohlcv_daily',
    // One provider call per record; 5 records keep a batch well inside the timeout even when the
    // provider throttles (each call may wait out Retry-After), and a failure retries only itself.
    batchSize: 5,
    maxBatchingWindowSeconds: 5,
    // Retriable failures are provider throttling/outages: 5 receives x 6-minute visibility spans
    // ~30 minutes of outage before the DLQ (and its alarm) takes over.
    maxReceiveCount: 5,
    timeoutSeconds: 60,
    memoryMb: 512,
    // The provider's rate limit is per account while the token bucket is per container: 2
    // concurrent batches, each container given half the account's MARKET_API_CALLS_PER_MINUTE.
    maxConcurrency: 2,
    // A burst of IPOs is drained within the 60-minute backfill floor; older means it is stuck.
    maxMessageAgeSeconds: 3600,
    needsInternet: true,
  },
];
