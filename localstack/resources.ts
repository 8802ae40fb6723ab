import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { localQueueName } from '../lambdas/platform/queues';
import { CONSUMERS, type ConsumerDefinition, visibilityTimeoutSeconds } from '../lib/topology';

/**
 * Local resources, created from the same topology the CDK compute stack deploys (lib/topology.ts):
 * per consumer a queue with its dead-letter queue and redrive policy, and the S3 notifications that
 * feed them. Names are fixed here because LocalStack has no CloudFormation-generated names to look up.
 */
export function queueName(consumer: Pick<ConsumerDefinition, 'id'>): string {
  return localQueueName(consumer.id);
}

export function deadLetterQueueName(consumer: Pick<ConsumerDefinition, 'id'>): string {
  return `${queueName(consumer)}-dlq`;
}

export interface LocalQueue {
  readonly url: string;
  readonly arn: string;
  readonly deadLetterUrl: string;
}

/** Creates (or finds) a queue and its DLQ with the consumer's redrive policy and visibility timeout. */
export async function ensureQueue(
  sqs: SQSClient,
  consumer: Pick<ConsumerDefinition, 'id' | 'maxReceiveCount' | 'timeoutSeconds'>,
  visibilityTimeout = visibilityTimeoutSeconds(consumer as ConsumerDefinition),
): Promise<LocalQueue> {
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: deadLetterQueueName(consumer),
      Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) },
    }),
  );
  const dlqArn = await queueArn(sqs, dlq.QueueUrl);
  const attributes = {
    VisibilityTimeout: String(visibilityTimeout),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: dlqArn,
      maxReceiveCount: consumer.maxReceiveCount,
    }),
  };
  const queueUrl = await sqs
    .send(new CreateQueueCommand({ QueueName: queueName(consumer), Attributes: attributes }))
    .then((q) => required(q.QueueUrl))
    .catch(async (error: { name?: string; Code?: string }) => {
      // The queue exists from before a topology change (a new timeout, another receive count):
      // bring its attributes to the topology's, as a CloudFormation update would.
      if (error.name !== 'QueueNameExists' && error.Code !== 'QueueAlreadyExists') throw error;
      const url = await localQueueUrl(sqs, queueName(consumer));
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
      return url;
    });
  return {
    url: queueUrl,
    arn: await queueArn(sqs, queueUrl),
    deadLetterUrl: required(dlq.QueueUrl),
  };
}

async function queueArn(sqs: SQSClient, url: string | undefined): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: required(url), AttributeNames: ['QueueArn'] }),
  );
  return required(Attributes?.QueueArn);
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('LocalStack returned an incomplete answer');
  return value;
}

export async function localQueueUrl(sqs: SQSClient, name: string): Promise<string> {
  return required((await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl);
}

/** The whole local topology: data bucket, every consumer's queues, S3 -> SQS notifications. */
export async function bootstrapResources(
  clients: { s3: S3Client; sqs: SQSClient },
  bucket: string,
  consumers: readonly ConsumerDefinition[] = CONSUMERS,
): Promise<Record<string, LocalQueue>> {
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((error: { name?: string }) => {
    if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
  });
  // Versioned, as in AWS: notifications then carry the version id that identifies an upload.
  await clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  const queues: Record<string, LocalQueue> = {};
  for (const consumer of consumers) queues[consumer.id] = await ensureQueue(clients.sqs, consumer);
  const notified = consumers.filter((c) => c.s3Prefix);
  await clients.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        QueueConfigurations: notified.map((c) => ({
          Id: c.id,
          QueueArn: required(queues[c.id]).arn,
          Events: ['s3:ObjectCreated:*'],
          Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: c.s3Prefix as string }] } },
        })),
      },
    }),
  );
  return queues;
}

/** Messages on a queue, visible and in flight (LocalStack's approximate counts are exact). */
export async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible)
  );
}

/** Every consumer's queue and dead-letter queue on this stage, by topology id (`<id>DeadLetter`). */
export async function localQueueUrls(
  sqs: SQSClient,
  consumers: readonly ConsumerDefinition[] = CONSUMERS,
): Promise<Record<string, string>> {
  const entries = await Promise.all(
    consumers.flatMap((c) => [
      localQueueUrl(sqs, queueName(c)).then((url) => [c.id, url] as const),
      localQueueUrl(sqs, deadLetterQueueName(c)).then((url) => [`${c.id}DeadLetter`, url] as const),
    ]),
  );
  return Object.fromEntries(entries);
}
