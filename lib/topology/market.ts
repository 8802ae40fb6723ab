import type { ConsumerDefinition } from './types';

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
    // Publishes each symbol's completion through the outbox, relaying whatever else is pending.
    relaysOutbox: true,
  },
  {
    id: 'EquityProcessing',
    entry: 'lambdas/equity-processing/handler.ts',
    description:
      'Equity-types processing queue: refreshes recent daily bars of a dispatched batch of one type and reports each symbol',
    // One record is already a batch of up to batch_size symbols (100 for STOCK_EOD); one record per
    // invocation keeps the dispatcher's per-type spacing (DelaySeconds) from being bunched together,
    // and a retriable failure redelivers only its own batch.
    batchSize: 1,
    // Waiting to fill a batch of one would only shift the batches the dispatcher spaced.
    maxBatchingWindowSeconds: 0,
    // Retriable failures are provider throttling/outages: 5 receives x 12-minute visibility span
    // an hour of outage before the DLQ; a message that never comes back still cannot lose symbols,
    // the claim lease returns them to pending.
    maxReceiveCount: 5,
    // The worker stops starting symbols 15 s before this and leaves the rest to the redelivery; the
    // dispatcher's lease margin (180 s) is this timeout plus a minute of pickup.
    timeoutSeconds: 120,
    memoryMb: 512,
    // Per-account provider limit shared by container token buckets, as for Backfill.
    maxConcurrency: 2,
    // The dispatcher delays batches by at most 900 s; a message older than the delay plus a few
    // timeouts means the consumer is behind or failing.
    maxMessageAgeSeconds: 1800,
    needsInternet: true,
  },
];
