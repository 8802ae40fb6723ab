import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { buildAlarm } from './defaults';

export interface HealthEtlAlarmsProps {
  /** The health ETL consumer's service name (its POWERTOOLS_SERVICE_NAME, the topology id). */
  readonly service: string;
  readonly topic: sns.ITopic;
  /**
   * Alarm when more than this share of the files decided in an hour was quarantined (percent).
   * @default 20
   */
  readonly quarantinePercent?: number;
  /**
   * Alarm when the hour's average quality score of the files is below this.
   * @default 0.8
   */
  readonly minAverageQuality?: number;
  /**
   * Files an hour must have decided before its quarantine rate counts (one bad file is not a rate).
   * @default 5
   */
  readonly minFilesForRate?: number;
  /**
   * Whether the stage's CloudWatch evaluates metric math. The emulator of the deploy rehearsal
   * (MiniStack) refuses an alarm on a math expression, so there the quarantine-rate alarm is left out
   * (the other alarms, on plain metrics, stay).
   * @default true
   */
  readonly metricMath?: boolean;
}

/**
 * Alarms on what the health ETL handler reports as EMF metrics (lambdas/health-etl/handler.ts), in
 * the `Tickstock` namespace under the consumer's `service` dimension: the quarantine rate (metric
 * math over FilesQuarantined / FilesDecided), low quality scores (QualityScore average), files that
 * failed and went back to the queue (FilesFailed: a failure inside a multi-record batch would
 * otherwise show only when it reaches the DLQ) and files dropped because their object was gone.
 */
export class HealthEtlAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: HealthEtlAlarmsProps) {
    super(scope, id);
    const percent = props.quarantinePercent ?? 20;
    const minQuality = props.minAverageQuality ?? 0.8;
    const minFiles = props.minFilesForRate ?? 5;
    if (percent <= 0 || percent > 100)
      throw new Error(`HealthEtlAlarms: quarantinePercent must be in (0, 100], got ${percent}`);
    if (minQuality <= 0 || minQuality > 1)
      throw new Error(`HealthEtlAlarms: minAverageQuality must be in (0, 1], got ${minQuality}`);
    const hour = Duration.hours(1);
    const metric = (metricName: string, statistic: string, period = hour) =>
      new cloudwatch.Metric({
        namespace: 'Tickstock',
        metricName,
        dimensionsMap: { service: props.service },
        statistic,
        period,
      });
    const action = new cwActions.SnsAction(props.topic);

    const quarantineRate =
      (props.metricMath ?? true)
        ? new cloudwatch.Alarm(this, 'QuarantineRateAlarm', {
            metric: new cloudwatch.MathExpression({
              expression: `IF(decided >= ${minFiles}, 100 * quarantined / decided, 0)`,
              usingMetrics: {
                quarantined: metric('FilesQuarantined', 'Sum'),
                decided: metric('FilesDecided', 'Sum'),
              },
              period: hour,
              label: 'quarantined files (% of files decided)',
            }),
            threshold: percent,
            evaluationPeriods: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
            alarmDescription: `${props.service}: more than ${percent} % of the files of the last hour were quarantined (at least ${minFiles} files): a producer writes bad exports, or the validation rejects good ones. See the quarantine/ sidecars.`,
          })
        : undefined;
    const lowQuality = new cloudwatch.Alarm(this, 'LowQualityAlarm', {
      metric: metric('QualityScore', 'Average'),
      threshold: minQuality,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `${props.service}: the average quality score of the last hour's files is below ${minQuality} (threshold to process: 0.7): exports are degrading.`,
    });
    for (const a of [...(quarantineRate ? [quarantineRate] : []), lowQuality]) {
      a.addAlarmAction(action);
      a.addOkAction(action);
    }
    const fiveMinutes = Duration.minutes(5);
    this.alarms = [
      ...(quarantineRate ? [quarantineRate] : []),
      lowQuality,
      buildAlarm(this, 'FailedFilesAlarm', {
        metric: metric('FilesFailed', 'Sum', fiveMinutes),
        threshold: 1,
        description: `${props.service}: files failed and went back to the queue (retried up to maxReceiveCount, then the DLQ); the log line 'export failed' names them`,
        topic: props.topic,
        notifyOk: true,
      }),
      buildAlarm(this, 'DroppedFilesAlarm', {
        metric: metric('FilesDropped', 'Sum', fiveMinutes),
        threshold: 1,
        description: `${props.service}: announced objects were gone when read and were dropped; the log line 'object is gone; dropped' names them`,
        topic: props.topic,
      }),
    ];
  }
}
