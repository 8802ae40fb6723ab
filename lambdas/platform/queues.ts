import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** Environment variable carrying the URL of a consumer's queue, e.g. `QUEUE_URL_BACKFILL`. */
export function queueUrlVariable(consumerId: string): string {
  return `QUEUE_URL_${consumerId.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

const cache = new Map<string, string>();

/**
 * The URL of the queue of a consumer in lib/topology.ts. In AWS the CDK app sets QUEUE_URL_<ID>; on
 * the local stage the queue is looked up by the name the local bootstrap gives it.
 */
export async function queueUrl(sqs: SQSClient, consumerId: string): Promise<string> {
  const fromEnv = process.env[queueUrlVariable(consumerId)];
  if (fromEnv) return fromEnv;
  const cached = cache.get(consumerId);
  if (cached) return cached;
  if (!process.env.AWS_ENDPOINT_URL) throw new Error(`${queueUrlVariable(consumerId)} is not set`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: localQueueName(consumerId) }));
  if (!QueueUrl) throw new Error(`no local queue for consumer ${consumerId}`);
  cache.set(consumerId, QueueUrl);
  return QueueUrl;
}

/**
 * The local stage's name for a consumer's queue (localstack/resources.ts creates it). LOCAL_STAGE_ID
 * (set by localstack/env.ts: the stage name and the checkout) keeps stages apart on one LocalStack.
 */
export function localQueueName(consumerId: string): string {
  return `tickstock-${process.env.LOCAL_STAGE_ID ?? 'local'}-${consumerId.toLowerCase()}`;
}
