import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import type { QueueConsumer } from './queue-consumer';

export interface DashboardProps {
  /** One row per consumer: its queue (depth, dead letters, oldest age) and its function. */
  readonly consumers: readonly QueueConsumer[];
  /**
   * Alarms shown in the status row besides the consumers' own.
   * @default none
   */
  readonly alarms?: readonly cloudwatch.IAlarm[];
  /**
   * Time range shown when the dashboard opens.
   * @default 6 hours
   */
  readonly defaultInterval?: Duration;
}

/** The pipeline's CloudWatch dashboard: every consumer's queue and function, then every alarm. */
export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    if (props.consumers.length === 0)
      throw new Error('dashboard: consumers is empty: there would be nothing to show');
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: props.defaultInterval ?? Duration.hours(6),
    });
    for (const consumer of props.consumers) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `${consumer.node.id}: queue`,
          left: [
            consumer.queue.metricApproximateNumberOfMessagesVisible(),
            consumer.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'dead letters' }),
          ],
          right: [consumer.queue.metricApproximateAgeOfOldestMessage()],
        }),
        new cloudwatch.GraphWidget({
          title: `${consumer.node.id}: function`,
          left: [
            consumer.function.metricInvocations(),
            consumer.function.metricErrors(),
            consumer.function.metricThrottles(),
          ],
          right: [consumer.function.metricDuration({ statistic: 'p95' })],
        }),
      );
    }
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'alarms',
        alarms: [...props.consumers.flatMap((c) => c.alarms), ...(props.alarms ?? [])],
        width: 24,
      }),
    );
  }
}
