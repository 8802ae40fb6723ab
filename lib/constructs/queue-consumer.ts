import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type ConsumerDefinition, visibilityTimeoutSeconds } from '../topology';
import { PipelineFunction, type PipelineFunctionProps } from './pipeline-function';

export interface QueueConsumerProps {
  readonly definition: ConsumerDefinition;
  /** Encrypts both queues (SSE-KMS). */
  readonly queueKey: kms.IKey;
  /** Encrypts the function's log group and environment. */
  readonly encryptionKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  readonly environment: Record<string, string>;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
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
  readonly function: lambda.Function;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: QueueConsumerProps) {
    super(scope, id);
    const { definition } = props;
    this.definition = definition;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.queueKey,
      enforceSSL: true,
      // The longest SQS allows: a dead letter must outlive an operator's weekend.
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.queueKey,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(definition)),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
      removalPolicy: props.removalPolicy,
    });

    const functionProps: PipelineFunctionProps = {
      entry: definition.entry,
      description: definition.description,
      timeout: Duration.seconds(definition.timeoutSeconds),
      memorySize: definition.memoryMb,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment: props.environment,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      encryptionKey: props.encryptionKey,
      // Bounded by the event source's maximum concurrency; reserving it also keeps one consumer
      // from starving the account's other functions.
      reservedConcurrentExecutions: definition.maxConcurrency,
    };
    this.function = new PipelineFunction(this, 'Function', functionProps).function;
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

    const action = new cwActions.SnsAction(props.alarmTopic);
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, description: string) => {
      const created = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${definition.id}: ${description}`,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      return created;
    };
    const period = Duration.minutes(1);
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
