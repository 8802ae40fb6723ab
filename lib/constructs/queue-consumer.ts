import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type ConsumerDefinition, visibilityTimeoutSeconds } from '../topology';
import { buildAlarm, buildQueueWithDeadLetter } from './defaults';
import { type FunctionPlatform, JobFunction } from './job-function';

export interface QueueConsumerProps {
  /** The consumer's entry in lib/topology: handler, batch settings, receives, alarms. */
  readonly definition: ConsumerDefinition;
  readonly platform: FunctionPlatform;
  /** Encrypts both queues (SSE-KMS). */
  readonly queueKey: kms.IKey;
  /** Receives every alarm and its recovery. */
  readonly alarmTopic: sns.ITopic;
}

/**
 * One architectural task: an SQS queue whose messages a Lambda function consumes in batches with
 * partial failures. Safe defaults that every consumer of the pipeline needs: a dead-letter queue
 * after `maxReceiveCount` receives, KMS encryption and TLS-only access on both queues, the event
 * source mapping with ReportBatchItemFailures, and alarms on DLQ depth, oldest-message age, errors
 * and throttles.
 */
export class QueueConsumer extends Construct {
  readonly definition: ConsumerDefinition;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  /** The function construct, for `sendTo()` and `bindSecrets()`. */
  readonly job: JobFunction;
  readonly function: lambda.Function;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: QueueConsumerProps) {
    super(scope, id);
    const { definition } = props;
    validateConsumer(definition);
    this.definition = definition;

    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = buildQueueWithDeadLetter(this, {
      key: props.queueKey,
      removalPolicy: props.platform.removalPolicy,
      visibilityTimeoutSeconds: visibilityTimeoutSeconds(definition),
      maxReceiveCount: definition.maxReceiveCount,
    }));

    this.job = new JobFunction(this, 'Function', {
      definition,
      platform: props.platform,
      // Bounded by the event source's maximum concurrency; reserving it also keeps one consumer
      // from starving the account's other functions.
      reservedConcurrentExecutions: definition.maxConcurrency,
    });
    this.function = this.job.function;
    this.function.addEventSource(
      new lambdaEventSources.SqsEventSource(this.queue, {
        batchSize: definition.batchSize,
        maxBatchingWindow:
          definition.maxBatchingWindowSeconds > 0
            ? Duration.seconds(definition.maxBatchingWindowSeconds)
            : undefined,
        reportBatchItemFailures: true,
        maxConcurrency: definition.maxConcurrency,
      }),
    );

    const period = Duration.minutes(1);
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, description: string) =>
      buildAlarm(this, name, {
        metric,
        threshold,
        description: `${definition.id}: ${description}`,
        topic: props.alarmTopic,
        notifyOk: true,
      });
    this.alarms = [
      alarm(
        'DeadLetterAlarm',
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        1,
        'messages in the dead-letter queue: inspect, fix, then redrive',
      ),
      alarm(
        'OldestMessageAlarm',
        this.queue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
        definition.maxMessageAgeSeconds,
        `oldest message older than ${definition.maxMessageAgeSeconds} s: the consumer is behind or failing`,
      ),
      alarm('ErrorsAlarm', this.function.metricErrors({ period, statistic: 'Sum' }), 1, 'function errors'),
      alarm(
        'ThrottlesAlarm',
        this.function.metricThrottles({ period, statistic: 'Sum' }),
        1,
        'function throttled',
      ),
    ];
  }
}

/** The combinations SQS event sources reject at deploy time, rejected at synth instead. */
function validateConsumer(d: ConsumerDefinition): void {
  const name = `consumer "${d.id}"`;
  if (!Number.isInteger(d.batchSize) || d.batchSize < 1 || d.batchSize > 10_000)
    throw new Error(`${name}: batchSize must be an integer from 1 to 10000, got ${d.batchSize}`);
  if (d.maxBatchingWindowSeconds < 0 || d.maxBatchingWindowSeconds > 300)
    throw new Error(
      `${name}: maxBatchingWindowSeconds must be from 0 to 300, got ${d.maxBatchingWindowSeconds}`,
    );
  if (d.batchSize > 10 && d.maxBatchingWindowSeconds === 0)
    throw new Error(
      `${name}: batchSize ${d.batchSize} > 10 needs maxBatchingWindowSeconds > 0 (SQS event source rule)`,
    );
  if (!Number.isInteger(d.maxConcurrency) || d.maxConcurrency < 2 || d.maxConcurrency > 1000)
    throw new Error(
      `${name}: maxConcurrency must be an integer from 2 to 1000 (SQS event source), got ${d.maxConcurrency}`,
    );
  if (!(d.maxMessageAgeSeconds > 0))
    throw new Error(`${name}: maxMessageAgeSeconds must be positive, got ${d.maxMessageAgeSeconds}`);
  if (d.s3Prefix !== undefined && (d.s3Prefix === '' || d.s3Prefix.startsWith('/')))
    throw new Error(
      `${name}: s3Prefix must be a non-empty key prefix without a leading "/", got "${d.s3Prefix}"`,
    );
}
