import { HEALTH_CONSUMERS } from './topology/health';
import { EOD_CHAIN, SCHEDULED_JOBS } from './topology/jobs';
import { MARKET_CONSUMERS } from './topology/market';
import { OPERATIONS } from './topology/operations';
import { REALTIME_CONSUMERS } from './topology/realtime';
import { TRADING_JOBS } from './topology/trading';
import type { ConsumerDefinition, FunctionDefinition } from './topology/types';

export type {
  ConsumerDefinition,
  FunctionDefinition,
  JobDefinition,
  OperationDefinition,
} from './topology/types';

/**
 * AWS recommends a visibility timeout of at least six times the function timeout for SQS event
 * sources, so a batch retried by Lambda's poller is not redelivered while still running.
 */
export function visibilityTimeoutSeconds(consumer: ConsumerDefinition): number {
  return consumer.timeoutSeconds * 6;
}

/**
 * The SQS-driven consumers of the pipeline. This one list is read by the CDK compute stack, by the
 * local stage bootstrap and by the local runner, so the local stage cannot drift from what is deployed.
 */
export const CONSUMERS: readonly ConsumerDefinition[] = [
  ...HEALTH_CONSUMERS,
  ...MARKET_CONSUMERS,
  ...REALTIME_CONSUMERS,
];

/** Every function the CDK app deploys: consumers, EOD steps, scheduled jobs, operations. */
export const FUNCTIONS: readonly FunctionDefinition[] = [
  ...CONSUMERS,
  ...EOD_CHAIN,
  ...SCHEDULED_JOBS,
  ...TRADING_JOBS,
  ...OPERATIONS,
];

/**
 * Consumers whose queues the market outbox addresses (`{ queue: ... }` destinations, e.g. the
 * backfill jobs the IPO scan enqueues). A relay drains every pending message whoever enqueued it,
 * so every function that relays needs all of them.
 */
export const OUTBOX_QUEUES: readonly string[] = ['Backfill'];

/**
 * The queues a function sends to: its own `sendsTo` plus, when it relays the outbox, every outbox
 * queue. The one place the compute stack takes queue URLs and send rights from.
 */
export function queuesSentToBy(definition: FunctionDefinition): string[] {
  return [...new Set([...(definition.sendsTo ?? []), ...(definition.relaysOutbox ? OUTBOX_QUEUES : [])])];
}
