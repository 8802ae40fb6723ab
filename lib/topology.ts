import { HEALTH_CONSUMERS } from './topology/health';
import { MARKET_CONSUMERS } from './topology/market';

/**
 * The SQS-driven consumers of the pipeline. This one list is read by the CDK compute stack (queue +
 * DLQ + function + event source mapping), by the local stage bootstrap (the same queues, redrive
 * policies and S3 notifications in LocalStack) and by the local runner (the same batch settings and
 * handler modules), so the local stage cannot drift from what is deployed.
 */
export interface ConsumerDefinition {
  /** Construct id and the base of local queue names. */
  readonly id: string;
  /** Handler module, relative to the repository root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** Upper bound of concurrent batches (SQS event source maximum concurrency, >= 2). */
  readonly maxConcurrency: number;
  /** Alarm when the oldest message waits longer than this. */
  readonly maxMessageAgeSeconds: number;
  /** Objects created under this prefix of the data bucket are announced on this queue. */
  readonly s3Prefix?: string;
  /** Needs the internet (NAT) to call the market-data provider. */
  readonly needsInternet?: boolean;
}

/**
 * AWS recommends a visibility timeout of at least six times the function timeout for SQS event
 * sources, so a batch retried by Lambda's poller is not redelivered while still running.
 */
export function visibilityTimeoutSeconds(consumer: ConsumerDefinition): number {
  return consumer.timeoutSeconds * 6;
}

export const CONSUMERS: readonly ConsumerDefinition[] = [...HEALTH_CONSUMERS, ...MARKET_CONSUMERS];
