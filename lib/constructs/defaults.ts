import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * The pipeline's defaults for its queues and alarms, in one place (the Solutions Constructs
 * `core` style): every construct that needs a queue or an alarm builds it here, so a queue cannot be
 * created without KMS, TLS-only access or a dead-letter queue, and an alarm cannot miss its topic.
 */

export interface EncryptedQueueProps {
  /** Encrypts the queue (SSE-KMS). */
  readonly key: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  /**
   * Seconds a received message stays invisible.
   * @default 30 (SQS's default)
   */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * How long an unconsumed message is kept.
   * @default 4 days
   */
  readonly retentionPeriod?: Duration;
}

/**
 * A dead-letter queue: KMS, TLS only, and the longest retention SQS allows, because a dead letter
 * must outlive an operator's weekend.
 */
export function buildDeadLetterQueue(scope: Construct, id: string, props: EncryptedQueueProps): sqs.Queue {
  return new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: props.key,
    enforceSSL: true,
    retentionPeriod: props.retentionPeriod ?? Duration.days(14),
    visibilityTimeout:
      props.visibilityTimeoutSeconds === undefined
        ? undefined
        : Duration.seconds(props.visibilityTimeoutSeconds),
    removalPolicy: props.removalPolicy,
  });
}

export interface QueueWithDeadLetterProps extends EncryptedQueueProps {
  /** Receives before a message moves to the dead-letter queue (1 to 1000, SQS's range). */
  readonly maxReceiveCount: number;
  /**
   * Ids of the two queues under `scope`.
   * @default 'Queue' and 'DeadLetterQueue'
   */
  readonly ids?: { readonly queue: string; readonly deadLetterQueue: string };
}

/** A work queue and its dead-letter queue, both encrypted and TLS-only. */
export function buildQueueWithDeadLetter(
  scope: Construct,
  props: QueueWithDeadLetterProps,
): { queue: sqs.Queue; deadLetterQueue: sqs.Queue } {
  if (!Number.isInteger(props.maxReceiveCount) || props.maxReceiveCount < 1 || props.maxReceiveCount > 1000)
    throw new Error(`maxReceiveCount must be an integer from 1 to 1000 (SQS), got ${props.maxReceiveCount}`);
  const ids = props.ids ?? { queue: 'Queue', deadLetterQueue: 'DeadLetterQueue' };
  const deadLetterQueue = buildDeadLetterQueue(scope, ids.deadLetterQueue, {
    key: props.key,
    removalPolicy: props.removalPolicy,
  });
  const queue = new sqs.Queue(scope, ids.queue, {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: props.key,
    enforceSSL: true,
    visibilityTimeout:
      props.visibilityTimeoutSeconds === undefined
        ? undefined
        : Duration.seconds(props.visibilityTimeoutSeconds),
    retentionPeriod: props.retentionPeriod ?? Duration.days(4),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    removalPolicy: props.removalPolicy,
  });
  return { queue, deadLetterQueue };
}

export interface AlarmProps {
  readonly metric: cloudwatch.IMetric;
  /** Alarms when the metric is at or above this. */
  readonly threshold: number;
  /** Shown in the notification: what it means and what to do. */
  readonly description: string;
  /** Receives the alarm (and, with `notifyOk`, the recovery). */
  readonly topic: sns.ITopic;
  /**
   * Also notify when the alarm returns to OK.
   * @default false
   */
  readonly notifyOk?: boolean;
}

/**
 * An alarm on one period of one metric, at or above a threshold, where missing data (a quiet queue,
 * an idle function) is not breaching.
 */
export function buildAlarm(scope: Construct, id: string, props: AlarmProps): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(scope, id, {
    metric: props.metric,
    threshold: props.threshold,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: props.description,
  });
  const action = new cwActions.SnsAction(props.topic);
  alarm.addAlarmAction(action);
  if (props.notifyOk) alarm.addOkAction(action);
  return alarm;
}
